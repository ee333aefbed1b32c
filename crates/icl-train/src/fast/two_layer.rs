//! The two-layer transformer (paper Fig A5), forward and hand-derived backward, every parameter
//! trained (the reference code never updates its output MLP; here it is trained like the rest).
//!
//! ```text
//! u   = LayerNorm(t)                                   (every token)
//! x1  = u + CausalAttn_1(u)                            (every position: layer 2 reads them all)
//! x2  = MLP_mid(x1)                                    (65-w-w-65 on every token, replacing x1)
//! h   = x2_N + W_V2 sum_j a_j x2_j,  a = softmax_j(x2_j . W_K2^T W_Q2 x2_N)   (query only)
//! logit = MLP_out(h)
//! ```
//!
//! Layer 1 is full causal attention (scale 1) per sequence through `gemm` (N x N scores); the
//! second layer is needed at the query only, exactly as in the one-layer model. The backward
//! pass mirrors it: layer 2 at the query spreads its gradient over every x2_j, MLP_mid and
//! layer 1 run backward on all B*N tokens.

use icl_datagen::Batch;

use super::isa::{dispatch, isa_methods, Isa};
use super::linalg::{col_sums, matmul, rm, tr, transpose};
use super::mlp::{logistic, MlpGrad, MlpRef, MlpWs};
use super::simd::{Kernels, Scalar};
use super::transformer::{ln_stats, softmax, token_x};
use crate::model::Params;

/// Workspace of the two-layer transformer for up to `b_max` sequences of up to `n_max` tokens.
pub struct TwoLayer {
    isa: Isa,
    d: usize,
    e: usize,
    h: usize,
    b_max: usize,
    n_max: usize,
    // Layer 1 and MLP_mid, `[B*N][*]`.
    xh: Vec<f32>,
    u: Vec<f32>,
    q1: Vec<f32>,
    k1: Vec<f32>,
    v1: Vec<f32>,
    /// Attention weights per sequence, `[b][i][j]` (zero for j > i).
    att: Vec<f32>,
    x1: Vec<f32>,
    m1: Vec<f32>,
    m2: Vec<f32>,
    x2: Vec<f32>,
    w2t: Vec<f32>,
    // Layer 2 at the query, `[b][*]`.
    x2n: Vec<f32>,
    q2: Vec<f32>,
    r2: Vec<f32>,
    s2: Vec<f32>,
    a2: Vec<f32>,
    z2: Vec<f32>,
    hq: Vec<f32>,
    pub out: MlpWs,
    // Gradients.
    dhq: Vec<f32>,
    dz2: Vec<f32>,
    dr2: Vec<f32>,
    dq2: Vec<f32>,
    dtmp: Vec<f32>,
    dx2: Vec<f32>,
    dm2: Vec<f32>,
    dm1: Vec<f32>,
    dx1: Vec<f32>,
    du: Vec<f32>,
    dq1: Vec<f32>,
    dk1: Vec<f32>,
    dv1: Vec<f32>,
    ds: Vec<f32>,
    last: (usize, usize),
}

impl TwoLayer {
    pub fn new(d: usize, h: usize, b_max: usize, n_max: usize) -> Self {
        let e = d + 2;
        let (re, rh, be) = (b_max * n_max * e, b_max * n_max * h, b_max * e);
        let z = |n: usize| vec![0f32; n];
        TwoLayer {
            isa: Isa::detect(),
            d,
            e,
            h,
            b_max,
            n_max,
            xh: z(re),
            u: z(re),
            q1: z(re),
            k1: z(re),
            v1: z(re),
            att: z(b_max * n_max * n_max),
            x1: z(re),
            m1: z(rh),
            m2: z(rh),
            x2: z(re),
            w2t: z(h * h),
            x2n: z(be),
            q2: z(be),
            r2: z(be),
            s2: z(b_max * n_max),
            a2: z(b_max * n_max),
            z2: z(be),
            hq: z(be),
            out: MlpWs::new(e, h, b_max),
            dhq: z(be),
            dz2: z(be),
            dr2: z(be),
            dq2: z(be),
            dtmp: z(be),
            dx2: z(re),
            dm2: z(rh),
            dm1: z(rh),
            dx1: z(re),
            du: z(re),
            dq1: z(re),
            dk1: z(re),
            dv1: z(re),
            ds: z(n_max * n_max),
            last: (0, 0),
        }
    }

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
        &self.out.out[..rows]
    }

    isa_methods!(forward_body, forward_v4, forward_v3, (p: &Params, batch: &Batch, rows: usize));

    #[inline(always)]
    fn forward_body<K: Kernels>(&mut self, p: &Params, batch: &Batch, rows: usize) {
        let (d, e, h, n) = (self.d, self.e, self.h, batch.n);
        let rr = rows * n;
        let (gamma, beta) = (&p.data[0], &p.data[1]);
        let (wq1, wk1, wv1) = split3(&p.data[2], e);
        let (wq2, wk2, wv2) = split3(&p.data[3], e);
        let mid = &p.data[4..10];

        // LayerNorm of every token.
        for b in 0..rows {
            for j in 0..n {
                let r = b * n + j;
                let x = token_x(batch, b, j);
                let (lo, hi) = if j + 1 < n {
                    super::transformer::one_hot(batch.labels[r])
                } else {
                    (0.0, 0.0)
                };
                let (m, rho) = ln_stats::<K>(x, lo, hi, e);
                let xh = &mut self.xh[r * e..(r + 1) * e];
                for (o, v) in xh[..d].iter_mut().zip(x) {
                    *o = (v - m) * rho;
                }
                xh[d] = (lo - m) * rho;
                xh[d + 1] = (hi - m) * rho;
                for (((u, x), g), bb) in self.u[r * e..(r + 1) * e]
                    .iter_mut()
                    .zip(xh.iter())
                    .zip(gamma)
                    .zip(beta)
                {
                    *u = g * x + bb;
                }
            }
        }

        // Layer 1: full causal attention, x1 = u + A V.
        matmul(rr, e, e, &mut self.q1, false, rm(&self.u, e), tr(wq1, e));
        matmul(rr, e, e, &mut self.k1, false, rm(&self.u, e), tr(wk1, e));
        matmul(rr, e, e, &mut self.v1, false, rm(&self.u, e), tr(wv1, e));
        self.x1[..rr * e].copy_from_slice(&self.u[..rr * e]);
        for b in 0..rows {
            let (o, a) = (b * n * e, &mut self.att[b * n * n..(b + 1) * n * n]);
            matmul(
                n,
                n,
                e,
                a,
                false,
                rm(&self.q1[o..], e),
                tr(&self.k1[o..], e),
            );
            for i in 0..n {
                let row = &mut a[i * n..(i + 1) * n];
                causal_softmax_row(row, i);
            }
            matmul(
                n,
                e,
                n,
                &mut self.x1[o..o + n * e],
                true,
                rm(a, n),
                rm(&self.v1[o..], e),
            );
        }

        // MLP_mid on every token.
        let (w1, b1, w2, b2, w3, b3) = (&mid[0], &mid[1], &mid[2], &mid[3], &mid[4], &mid[5]);
        bias_rows(&mut self.m1, b1, rr);
        matmul(rr, h, e, &mut self.m1, true, rm(&self.x1, e), tr(w1, e));
        relu(&mut self.m1[..rr * h]);
        transpose(w2, h, h, &mut self.w2t);
        bias_rows(&mut self.m2, b2, rr);
        matmul(
            rr,
            h,
            h,
            &mut self.m2,
            true,
            rm(&self.m1, h),
            rm(&self.w2t, h),
        );
        relu(&mut self.m2[..rr * h]);
        bias_rows(&mut self.x2, b3, rr);
        matmul(rr, e, h, &mut self.x2, true, rm(&self.m2, h), tr(w3, h));

        // Layer 2 at the query.
        for b in 0..rows {
            let r = b * n + n - 1;
            self.x2n[b * e..(b + 1) * e].copy_from_slice(&self.x2[r * e..(r + 1) * e]);
        }
        matmul(
            rows,
            e,
            e,
            &mut self.q2,
            false,
            rm(&self.x2n, e),
            tr(wq2, e),
        );
        matmul(rows, e, e, &mut self.r2, false, rm(&self.q2, e), rm(wk2, e));
        for b in 0..rows {
            let r2 = &self.r2[b * e..(b + 1) * e];
            let s = &mut self.s2[b * n..(b + 1) * n];
            for (j, sj) in s.iter_mut().enumerate() {
                *sj = K::dot(&self.x2[(b * n + j) * e..(b * n + j + 1) * e], r2);
            }
            let a = &mut self.a2[b * n..(b + 1) * n];
            softmax(s, a);
            let z = &mut self.z2[b * e..(b + 1) * e];
            z.fill(0.0);
            for (j, aj) in a.iter().enumerate() {
                K::axpy(*aj, &self.x2[(b * n + j) * e..(b * n + j + 1) * e], z);
            }
        }
        self.hq[..rows * e].copy_from_slice(&self.x2n[..rows * e]);
        matmul(rows, e, e, &mut self.hq, true, rm(&self.z2, e), tr(wv2, e));

        self.out
            .forward::<K>(&MlpRef::from_slice(&p.data[10..16]), &self.hq, rows);
        self.last = (rows, n);
    }

    /// The query's second-layer attention scores of the last forward, `rows x N`.
    pub fn scores(&self) -> &[f32] {
        let (rows, n) = self.last;
        &self.s2[..rows * n]
    }

    /// Logits of the last forward with the second layer's attention output at the query removed.
    pub fn logits_without_attention(&mut self, p: &Params) -> &[f32] {
        let rows = self.last.0;
        self.out
            .forward::<Scalar>(&MlpRef::from_slice(&p.data[10..16]), &self.x2n, rows);
        &self.out.out[..rows]
    }

    pub fn loss_and_grad(&mut self, p: &Params, batch: &Batch, g: &mut Params) -> (f64, usize) {
        let rows = batch.b;
        self.forward(p, batch, rows);
        let (loss, correct) = logistic(
            &self.out.out,
            |r| batch.target(r),
            rows,
            Some(&mut self.out.dout[..rows]),
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
        let (e, h, n, rows) = (self.e, self.h, batch.n, batch.b);
        let rr = rows * n;
        let (wq1, wk1, wv1) = split3(&p.data[2], e);
        let (wq2, wk2, wv2) = split3(&p.data[3], e);
        let mid = &p.data[4..10];
        let (front, dout) = g.data.split_at_mut(10);
        let [dgamma, dbeta, dqkv1, dqkv2, dmid @ ..] = front else {
            unreachable!()
        };

        // Output MLP.
        self.out.backward::<K>(
            &MlpRef::from_slice(&p.data[10..16]),
            &mut MlpGrad::from_slice(dout),
            &self.hq,
            rows,
            Some(&mut self.dhq[..rows * e]),
        );

        // Layer 2 at the query: its gradient reaches every x2_j.
        let (dwq2, dkv2) = dqkv2.split_at_mut(e * e);
        let (dwk2, dwv2) = dkv2.split_at_mut(e * e);
        matmul(
            rows,
            e,
            e,
            &mut self.dz2,
            false,
            rm(&self.dhq, e),
            rm(wv2, e),
        );
        matmul(e, e, rows, dwv2, false, tr(&self.dhq, e), rm(&self.z2, e));
        for b in 0..rows {
            let dz = &self.dz2[b * e..(b + 1) * e];
            let r2 = &self.r2[b * e..(b + 1) * e];
            let a = &self.a2[b * n..(b + 1) * n];
            let da = &mut self.ds[..n];
            let mut abar = 0f32;
            for (j, (daj, aj)) in da.iter_mut().zip(a).enumerate() {
                *daj = K::dot(&self.x2[(b * n + j) * e..(b * n + j + 1) * e], dz);
                abar += aj * *daj;
            }
            let dr = &mut self.dr2[b * e..(b + 1) * e];
            dr.fill(0.0);
            for (j, (daj, aj)) in da.iter().zip(a).enumerate() {
                let ds = aj * (daj - abar);
                let r = b * n + j;
                for ((o, z), q) in self.dx2[r * e..(r + 1) * e].iter_mut().zip(dz).zip(r2) {
                    *o = aj * z + ds * q;
                }
                K::axpy(ds, &self.x2[r * e..(r + 1) * e], dr);
            }
        }
        matmul(
            rows,
            e,
            e,
            &mut self.dq2,
            false,
            rm(&self.dr2, e),
            tr(wk2, e),
        );
        matmul(e, e, rows, dwk2, false, tr(&self.q2, e), rm(&self.dr2, e));
        matmul(e, e, rows, dwq2, false, tr(&self.dq2, e), rm(&self.x2n, e));
        self.dtmp[..rows * e].copy_from_slice(&self.dhq[..rows * e]);
        matmul(
            rows,
            e,
            e,
            &mut self.dtmp,
            true,
            rm(&self.dq2, e),
            rm(wq2, e),
        );
        for b in 0..rows {
            let r = b * n + n - 1;
            for (o, v) in self.dx2[r * e..(r + 1) * e]
                .iter_mut()
                .zip(&self.dtmp[b * e..(b + 1) * e])
            {
                *o += v;
            }
        }

        // MLP_mid on every token.
        let [dw1, db1, dw2, db2, dw3, db3] = dmid else {
            unreachable!()
        };
        let (w1, w2, w3) = (&mid[0], &mid[2], &mid[4]);
        matmul(e, h, rr, dw3, false, tr(&self.dx2, e), rm(&self.m2, h));
        col_sums(&self.dx2, rr, e, db3);
        matmul(rr, h, e, &mut self.dm2, false, rm(&self.dx2, e), rm(w3, h));
        relu_mask(&mut self.dm2[..rr * h], &self.m2[..rr * h]);
        matmul(h, h, rr, dw2, false, tr(&self.dm2, h), rm(&self.m1, h));
        col_sums(&self.dm2, rr, h, db2);
        matmul(rr, h, h, &mut self.dm1, false, rm(&self.dm2, h), rm(w2, h));
        relu_mask(&mut self.dm1[..rr * h], &self.m1[..rr * h]);
        matmul(h, e, rr, dw1, false, tr(&self.dm1, h), rm(&self.x1, e));
        col_sums(&self.dm1, rr, h, db1);
        matmul(rr, e, h, &mut self.dx1, false, rm(&self.dm1, h), rm(w1, e));

        // Layer 1: x1 = u + A V per sequence, then the three projections.
        for b in 0..rows {
            let o = b * n * e;
            let a = &self.att[b * n * n..(b + 1) * n * n];
            let ds = &mut self.ds[..n * n];
            matmul(
                n,
                n,
                e,
                ds,
                false,
                rm(&self.dx1[o..], e),
                tr(&self.v1[o..], e),
            );
            matmul(
                n,
                e,
                n,
                &mut self.dv1[o..o + n * e],
                false,
                tr(a, n),
                rm(&self.dx1[o..], e),
            );
            for i in 0..n {
                let (ar, dr) = (&a[i * n..(i + 1) * n], &mut ds[i * n..(i + 1) * n]);
                let mut rowdot = 0f32;
                for j in 0..=i {
                    rowdot += ar[j] * dr[j];
                }
                for j in 0..n {
                    dr[j] = if j <= i {
                        ar[j] * (dr[j] - rowdot)
                    } else {
                        0.0
                    };
                }
            }
            matmul(
                n,
                e,
                n,
                &mut self.dq1[o..o + n * e],
                false,
                rm(ds, n),
                rm(&self.k1[o..], e),
            );
            matmul(
                n,
                e,
                n,
                &mut self.dk1[o..o + n * e],
                false,
                tr(ds, n),
                rm(&self.q1[o..], e),
            );
        }
        let (dwq1, dkv1) = dqkv1.split_at_mut(e * e);
        let (dwk1, dwv1) = dkv1.split_at_mut(e * e);
        matmul(e, e, rr, dwq1, false, tr(&self.dq1, e), rm(&self.u, e));
        matmul(e, e, rr, dwk1, false, tr(&self.dk1, e), rm(&self.u, e));
        matmul(e, e, rr, dwv1, false, tr(&self.dv1, e), rm(&self.u, e));
        self.du[..rr * e].copy_from_slice(&self.dx1[..rr * e]);
        matmul(rr, e, e, &mut self.du, true, rm(&self.dq1, e), rm(wq1, e));
        matmul(rr, e, e, &mut self.du, true, rm(&self.dk1, e), rm(wk1, e));
        matmul(rr, e, e, &mut self.du, true, rm(&self.dv1, e), rm(wv1, e));

        // LayerNorm affine parameters.
        dgamma.fill(0.0);
        dbeta.fill(0.0);
        for r in 0..rr {
            let (du, xh) = (&self.du[r * e..(r + 1) * e], &self.xh[r * e..(r + 1) * e]);
            for i in 0..e {
                dgamma[i] += du[i] * xh[i];
                dbeta[i] += du[i];
            }
        }
    }
}

/// W_Q, W_K, W_V of a packed `[3E, E]` tensor.
#[inline(always)]
fn split3(qkv: &[f32], e: usize) -> (&[f32], &[f32], &[f32]) {
    (
        &qkv[..e * e],
        &qkv[e * e..2 * e * e],
        &qkv[2 * e * e..3 * e * e],
    )
}

/// Row i of a causal score matrix: softmax over j <= i, zero for j > i (scale 1).
#[inline(always)]
fn causal_softmax_row(row: &mut [f32], i: usize) {
    let (live, masked) = row.split_at_mut(i + 1);
    let m = live.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut tot = 0f32;
    for v in live.iter_mut() {
        *v = (*v - m).exp();
        tot += *v;
    }
    let inv = 1.0 / tot;
    for v in live.iter_mut() {
        *v *= inv;
    }
    masked.fill(0.0);
}

#[inline(always)]
fn bias_rows(dst: &mut [f32], bias: &[f32], rows: usize) {
    let w = bias.len();
    for r in 0..rows {
        dst[r * w..(r + 1) * w].copy_from_slice(bias);
    }
}

#[inline(always)]
fn relu(v: &mut [f32]) {
    for x in v {
        *x = x.max(0.0);
    }
}

/// `d[i] = 0` where the ReLU was inactive (`act[i] <= 0`).
#[inline(always)]
fn relu_mask(d: &mut [f32], act: &[f32]) {
    for (d, a) in d.iter_mut().zip(act) {
        if *a <= 0.0 {
            *d = 0.0;
        }
    }
}
