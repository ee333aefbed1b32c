//! The one-layer transformer, query position only, forward and hand-derived backward.
//!
//! With t_j the tokens ([item, one-hot label], the query's label part zero), the model is
//!
//! ```text
//! xhat_j = (t_j - mean t_j) / sqrt(var t_j + 1e-5)      u_j = gamma . xhat_j + beta   (all j)
//! q = W_Q u_N     r = W_K^T q     s_j = u_j . r  (scale 1)     a = softmax(s) over j = 1..N
//! z = sum_j a_j u_j     h0 = u_N + W_V z     logit = MLP(h0)
//! ```
//!
//! which is the authors' full causal attention evaluated at the last position (the only one the
//! loss reads). Per sequence this costs O(N E + E^2) instead of O(N^2 E + N E^2).
//!
//! Backward, per sequence (with dz = W_V^T dh0, dz' = gamma . dz):
//!
//! ```text
//! da_j = u_j . dz = xhat_j . dz' + beta . dz        ds_j = a_j (da_j - sum_k a_k da_k)
//! ghat = sum_j ds_j xhat_j     S = sum_j ds_j       dr = sum_j ds_j u_j = gamma . ghat + beta S
//! dW_V = dh0 z^T   dq = W_K dr   dW_K = q dr^T   dW_Q = dq u_N^T   dres = dh0 + W_Q^T dq
//! du_j = a_j dz + ds_j r + [j = N] dres
//! dgamma = sum_j du_j . xhat_j = dz . zhat + r . ghat + dres . xhat_N    (zhat = sum_j a_j xhat_j)
//! dbeta  = sum_j du_j = dz sum_j a_j + r S + dres
//! ```
//!
//! The E x E products are batched over the sequences as `gemm` calls.

use icl_datagen::Batch;

use super::isa::{dispatch, isa_methods, Isa};
use super::linalg::{matmul, rm, tr};
use super::mlp::{logistic, MlpGrad, MlpRef, MlpWs};
use super::simd::{Kernels, Scalar};
use crate::model::Params;

pub const LN_EPS: f32 = 1e-5;

/// Workspace of the one-layer transformer for batches of up to `b_max` sequences of up to
/// `n_max` tokens. Allocated once; nothing is allocated per step.
///
/// Normalized tokens are never stored: with t_j = [x_j, lo_j, hi_j] and its LayerNorm statistics
/// (m_j, rho_j = 1/sqrt(var_j + eps)), xhat_j = rho_j (t_j - m_j), so any product with xhat_j is
/// rho_j (t_j . v - m_j sum(v)), read straight from the batch's items. Per token that is a few
/// passes over D floats, with only (m_j, rho_j) kept for the backward pass.
pub struct Transformer {
    isa: Isa,
    d: usize,
    e: usize,
    b_max: usize,
    n_max: usize,
    mean: Vec<f32>,
    rstd: Vec<f32>,
    /// xhat of each query token, `[b][E]`.
    xq: Vec<f32>,
    un: Vec<f32>,
    q: Vec<f32>,
    r: Vec<f32>,
    s: Vec<f32>,
    a: Vec<f32>,
    asum: Vec<f32>,
    zhat: Vec<f32>,
    z: Vec<f32>,
    h0: Vec<f32>,
    pub mlp: MlpWs,
    dh0: Vec<f32>,
    dz: Vec<f32>,
    dr: Vec<f32>,
    dq: Vec<f32>,
    dres: Vec<f32>,
    /// Two E-vectors of per-sequence scratch.
    v1: Vec<f32>,
    v2: Vec<f32>,
    da: Vec<f32>,
    last: (usize, usize),
}

impl Transformer {
    pub fn new(d: usize, width: usize, b_max: usize, n_max: usize) -> Self {
        let e = d + 2;
        let be = b_max * e;
        Transformer {
            isa: Isa::detect(),
            d,
            e,
            b_max,
            n_max,
            mean: vec![0.0; b_max * n_max],
            rstd: vec![0.0; b_max * n_max],
            xq: vec![0.0; be],
            un: vec![0.0; be],
            q: vec![0.0; be],
            r: vec![0.0; be],
            s: vec![0.0; b_max * n_max],
            a: vec![0.0; b_max * n_max],
            asum: vec![0.0; b_max],
            zhat: vec![0.0; be],
            z: vec![0.0; be],
            h0: vec![0.0; be],
            mlp: MlpWs::new(e, width, b_max),
            dh0: vec![0.0; be],
            dz: vec![0.0; be],
            dr: vec![0.0; be],
            dq: vec![0.0; be],
            dres: vec![0.0; be],
            v1: vec![0.0; e],
            v2: vec![0.0; e],
            da: vec![0.0; n_max],
            last: (0, 0),
        }
    }

    /// Logits of the first `rows` sequences of `batch` (also kept for the backward pass).
    pub fn forward(&mut self, p: &Params, batch: &Batch, rows: usize) -> &[f32] {
        assert!(
            rows <= self.b_max
                && rows <= batch.b
                && batch.n <= self.n_max
                && batch.n >= 1
                && batch.d == self.d
        );
        dispatch!(
            self.isa,
            self.forward_body / forward_v4 / forward_v3(p, batch, rows)
        );
        &self.mlp.out[..rows]
    }

    isa_methods!(forward_body, forward_v4, forward_v3, (p: &Params, batch: &Batch, rows: usize));

    #[inline(always)]
    fn forward_body<K: Kernels>(&mut self, p: &Params, batch: &Batch, rows: usize) {
        let (d, e, n) = (self.d, self.e, batch.n);
        let (gamma, beta, qkv) = (&p.data[0], &p.data[1], &p.data[2]);
        let (wq, wk, wv) = (&qkv[..e * e], &qkv[e * e..2 * e * e], &qkv[2 * e * e..]);

        // u_N per sequence (LayerNorm of the query token), then q and r for all sequences.
        for b in 0..rows {
            let x = token_x(batch, b, n - 1);
            let (m, rho) = ln_stats::<K>(x, 0.0, 0.0, e);

            let xq = &mut self.xq[b * e..(b + 1) * e];
            for (o, v) in xq[..d].iter_mut().zip(x) {
                *o = (v - m) * rho;
            }
            xq[d] = -m * rho;
            xq[d + 1] = -m * rho;
            for (((u, x), g), bb) in self.un[b * e..(b + 1) * e]
                .iter_mut()
                .zip(xq.iter())
                .zip(gamma)
                .zip(beta)
            {
                *u = g * x + bb;
            }
        }
        matmul(rows, e, e, &mut self.q, false, rm(&self.un, e), tr(wq, e));
        matmul(rows, e, e, &mut self.r, false, rm(&self.q, e), rm(wk, e));

        // Per sequence: LayerNorm statistics and scores of every token, softmax, attended token.
        for b in 0..rows {
            let r = &self.r[b * e..(b + 1) * e];
            let rg = &mut self.v1[..e];
            for ((o, g), x) in rg.iter_mut().zip(gamma).zip(r) {
                *o = g * x;
            }
            let rg_sum = K::sum(rg);
            let c0 = K::dot(beta, r);
            let inv_e = 1.0 / e as f32;
            for j in 0..n {
                prefetch_token(batch, b, j + PREFETCH_AHEAD);
                let x = token_x(batch, b, j);
                let (lo, hi) = label_part(batch, b, j);
                // One pass over the item: its sum, sum of squares and product with gamma . r.
                let (s1, s2, sr) = K::moments(x, &rg[..d]);
                let m = (s1 + lo + hi) * inv_e;
                let var = ((s2 + lo * lo + hi * hi) * inv_e - m * m).max(0.0);
                let rho = 1.0 / (var + LN_EPS).sqrt();
                self.mean[b * n + j] = m;
                self.rstd[b * n + j] = rho;
                let t_dot = sr + lo * rg[d] + hi * rg[d + 1];
                self.s[b * n + j] = rho * (t_dot - m * rg_sum) + c0;
            }
            let a = &mut self.a[b * n..(b + 1) * n];
            let asum = softmax(&self.s[b * n..(b + 1) * n], a);
            self.asum[b] = asum;
            // zhat = sum_j a_j rho_j (t_j - m_j).
            let zx = &mut self.v2[..e];
            zx.fill(0.0);
            let (mut wm, mut wlo, mut whi) = (0f32, 0f32, 0f32);
            let wts = &mut self.da[..n];
            for (j, (w, aj)) in wts.iter_mut().zip(a.iter()).enumerate() {
                *w = aj * self.rstd[b * n + j];
                let (lo, hi) = label_part(batch, b, j);
                wm += *w * self.mean[b * n + j];
                wlo += *w * lo;
                whi += *w * hi;
            }
            K::axpy_rows(wts, |j| token_x(batch, b, j), &mut zx[..d]);
            let zh = &mut self.zhat[b * e..(b + 1) * e];
            for (o, v) in zh[..d].iter_mut().zip(&zx[..d]) {
                *o = v - wm;
            }
            zh[d] = wlo - wm;
            zh[d + 1] = whi - wm;
            for (((z, zh), g), bb) in self.z[b * e..(b + 1) * e]
                .iter_mut()
                .zip(zh.iter())
                .zip(gamma)
                .zip(beta)
            {
                *z = g * zh + bb * asum;
            }
        }
        self.h0[..rows * e].copy_from_slice(&self.un[..rows * e]);
        matmul(rows, e, e, &mut self.h0, true, rm(&self.z, e), tr(wv, e));

        self.mlp
            .forward::<K>(&MlpRef::from_slice(&p.data[3..9]), &self.h0, rows);
        self.last = (rows, n);
    }

    /// The query's attention scores s_j (j = 1..N) of the last forward, `rows x N`.
    pub fn scores(&self) -> &[f32] {
        let (rows, n) = self.last;
        &self.s[..rows * n]
    }

    /// Logits of the last forward's sequences with the attention output removed (MLP(u_N)).
    /// Overwrites the MLP activations, so call it after everything else.
    pub fn logits_without_attention(&mut self, p: &Params) -> &[f32] {
        let rows = self.last.0;
        self.mlp
            .forward::<Scalar>(&MlpRef::from_slice(&p.data[3..9]), &self.un, rows);
        &self.mlp.out[..rows]
    }

    /// One training step's gradients (overwritten into `g`) on the whole batch: mean loss and
    /// number of correct rows.
    pub fn loss_and_grad(&mut self, p: &Params, batch: &Batch, g: &mut Params) -> (f64, usize) {
        let rows = batch.b;
        self.forward(p, batch, rows);
        let (loss, correct) = logistic(
            &self.mlp.out,
            |r| batch.target(r),
            rows,
            Some(&mut self.mlp.dout[..rows]),
        );
        dispatch!(
            self.isa,
            self.backward_body / backward_v4 / backward_v3(p, batch, g)
        );
        (loss, correct)
    }

    isa_methods!(backward_body, backward_v4, backward_v3, (p: &Params, batch: &Batch, g: &mut Params));

    #[inline(always)]
    fn backward_body<K: Kernels>(&mut self, p: &Params, batch: &Batch, g: &mut Params) {
        let rows = batch.b;
        let (d, e, n) = (self.d, self.e, batch.n);
        let (gamma, beta, qkv) = (&p.data[0], &p.data[1], &p.data[2]);
        let (wq, wk, wv) = (&qkv[..e * e], &qkv[e * e..2 * e * e], &qkv[2 * e * e..]);
        let [dgamma, dbeta, dqkv, rest @ ..] = g.data.as_mut_slice() else {
            unreachable!()
        };
        self.mlp.backward::<K>(
            &MlpRef::from_slice(&p.data[3..9]),
            &mut MlpGrad::from_slice(rest),
            &self.h0,
            rows,
            Some(&mut self.dh0[..rows * e]),
        );
        let (dwq, dkv) = dqkv.split_at_mut(e * e);
        let (dwk, dwv) = dkv.split_at_mut(e * e);

        // Through W_V.
        matmul(rows, e, e, &mut self.dz, false, rm(&self.dh0, e), rm(wv, e));
        matmul(e, e, rows, dwv, false, tr(&self.dh0, e), rm(&self.z, e));

        // Through the softmax, per sequence.
        dgamma.fill(0.0);
        dbeta.fill(0.0);
        for b in 0..rows {
            let dz = &self.dz[b * e..(b + 1) * e];
            let dzp = &mut self.v1[..e];
            for ((o, g), x) in dzp.iter_mut().zip(gamma).zip(dz) {
                *o = g * x;
            }
            let dzp_sum = K::sum(dzp);
            let c = K::dot(beta, dz);
            let a = &self.a[b * n..(b + 1) * n];
            let da = &mut self.da[..n];
            let mut abar = 0f32;
            for (j, (daj, aj)) in da.iter_mut().zip(a).enumerate() {
                prefetch_token(batch, b, j + PREFETCH_AHEAD);
                let (lo, hi) = label_part(batch, b, j);
                let t_dot = K::dot(token_x(batch, b, j), &dzp[..d]) + lo * dzp[d] + hi * dzp[d + 1];
                *daj = self.rstd[b * n + j] * (t_dot - self.mean[b * n + j] * dzp_sum) + c;
                abar += aj * *daj;
            }
            // ghat = sum_j ds_j xhat_j = sum_j ds_j rho_j (t_j - m_j).
            let gx = &mut self.v2[..e];
            gx.fill(0.0);
            let (mut ssum, mut vm, mut vlo, mut vhi) = (0f32, 0f32, 0f32, 0f32);
            for (j, (daj, aj)) in da.iter_mut().zip(a).enumerate() {
                let ds = aj * (*daj - abar);
                ssum += ds;
                let v = ds * self.rstd[b * n + j];
                let (lo, hi) = label_part(batch, b, j);
                vm += v * self.mean[b * n + j];
                vlo += v * lo;
                vhi += v * hi;
                *daj = v; // da_j is not needed again: its slot holds row j's weight
            }
            K::axpy_rows(da, |j| token_x(batch, b, j), &mut gx[..d]);
            for o in gx[..d].iter_mut() {
                *o -= vm;
            }
            gx[d] = vlo - vm;
            gx[d + 1] = vhi - vm;
            let ghat = &*gx;
            let r = &self.r[b * e..(b + 1) * e];
            let zh = &self.zhat[b * e..(b + 1) * e];
            let asum = self.asum[b];
            let dr = &mut self.dr[b * e..(b + 1) * e];
            for i in 0..e {
                dr[i] = gamma[i] * ghat[i] + beta[i] * ssum;
                dgamma[i] += dz[i] * zh[i] + r[i] * ghat[i];
                dbeta[i] += dz[i] * asum + r[i] * ssum;
            }
        }

        // Through r = W_K^T W_Q u_N, then the residual path into u_N.
        matmul(rows, e, e, &mut self.dq, false, rm(&self.dr, e), tr(wk, e));
        matmul(e, e, rows, dwk, false, tr(&self.q, e), rm(&self.dr, e));
        matmul(e, e, rows, dwq, false, tr(&self.dq, e), rm(&self.un, e));
        self.dres[..rows * e].copy_from_slice(&self.dh0[..rows * e]);
        matmul(rows, e, e, &mut self.dres, true, rm(&self.dq, e), rm(wq, e));
        for b in 0..rows {
            let xq = &self.xq[b * e..(b + 1) * e];
            let dres = &self.dres[b * e..(b + 1) * e];
            for i in 0..e {
                dgamma[i] += dres[i] * xq[i];
                dbeta[i] += dres[i];
            }
        }
    }
}

/// The item of token j of sequence b.
#[inline(always)]
pub fn token_x(batch: &Batch, b: usize, j: usize) -> &[f32] {
    batch.token(b, j)
}

/// How many tokens ahead the per-token loops prefetch: the items are random rows of a table
/// larger than L2, so the hardware's stream prefetcher cannot see the next one coming.
const PREFETCH_AHEAD: usize = 6;

/// Starts loading token j of sequence b (the next sequence's tokens past the end; nothing past
/// the batch). Only for tokens read by reference: a batch's own `x` is contiguous, which the
/// hardware prefetches by itself (prefetching it too cost K = inf 3-8% of its rate).
#[inline(always)]
fn prefetch_token(batch: &Batch, b: usize, j: usize) {
    if batch.items.is_none() {
        return;
    }
    // Past the end of sequence b: the next sequence (clamped to its last token when N <=
    // PREFETCH_AHEAD), with no division per token.
    let (b, j) = if j < batch.n {
        (b, j)
    } else {
        (b + 1, (j - batch.n).min(batch.n - 1))
    };
    if b < batch.b {
        let x = batch.token(b, j);
        #[cfg(target_arch = "x86_64")]
        for off in (0..x.len()).step_by(16) {
            // SAFETY: a prefetch has no architectural effect; the address is inside `x`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    x.as_ptr().add(off) as *const i8,
                )
            };
        }
    }
}

/// The one-hot label part of token j (zero for the query, the last token).
#[inline(always)]
fn label_part(batch: &Batch, b: usize, j: usize) -> (f32, f32) {
    if j + 1 < batch.n {
        one_hot(batch.labels[b * batch.n + j])
    } else {
        (0.0, 0.0)
    }
}

/// LayerNorm statistics of the token [x, lo, hi] of dimension e: its mean and
/// 1/sqrt(var + eps) with the biased variance (PyTorch's LayerNorm), from one pass over x
/// (var = mean of squares - square of mean; the items are N(0, I/D) draws and the label part is
/// 0/1, so the cancellation costs nothing at f32 precision).
#[inline(always)]
pub fn ln_stats<K: Kernels>(x: &[f32], lo: f32, hi: f32, e: usize) -> (f32, f32) {
    let inv_e = 1.0 / e as f32;
    let (s1, s2, _) = K::moments(x, x);
    let m = (s1 + lo + hi) * inv_e;
    let var = ((s2 + lo * lo + hi * hi) * inv_e - m * m).max(0.0);
    (m, 1.0 / (var + LN_EPS).sqrt())
}

/// The reference's label encoding: label y in {0, 1} one-hot, with l = 2y - 1; so l = -1 is
/// (1, 0) and l = +1 is (0, 1).
#[inline(always)]
pub fn one_hot(l: f32) -> (f32, f32) {
    if l > 0.0 {
        (0.0, 1.0)
    } else {
        (1.0, 0.0)
    }
}

/// `a = softmax(s)`; returns `sum a` (1 up to rounding; kept for exactness of z = sum a_j u_j).
#[inline(always)]
pub fn softmax(s: &[f32], a: &mut [f32]) -> f32 {
    let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut tot = 0f32;
    for (a, s) in a.iter_mut().zip(s) {
        *a = (s - m).exp();
        tot += *a;
    }
    let inv = 1.0 / tot;
    let mut asum = 0f32;
    for a in a.iter_mut() {
        *a *= inv;
        asum += *a;
    }
    asum
}

/// `s <- softmax(s)`.
#[inline(always)]
pub fn softmax_in_place(s: &mut [f32]) {
    let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut tot = 0f32;
    for v in s.iter_mut() {
        *v = (*v - m).exp();
        tot += *v;
    }
    let inv = 1.0 / tot;
    for v in s.iter_mut() {
        *v *= inv;
    }
}
