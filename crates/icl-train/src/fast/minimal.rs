//! The minimal model and the MLP-only memorizer, forward and hand-derived backward.
//!
//! Minimal model (paper.md "Models"): with x_q the query item and (x_j, l_j) the N-1 context
//! items and labels,
//!
//! ```text
//! g_j = x_j . x_q     a = softmax_j(beta g_j)     m = sum_j a_j l_j     logit = phi(x_q) + w m
//! dw = dlogit m       dbeta = dlogit w sum_j a_j (l_j - m) g_j
//! ```
//!
//! The softmax runs over the context tokens only (the query has no label to copy). With N = 1
//! (no context) m = 0 and the logit is phi(x_q): that is how phi is evaluated on bare items.
//! MLP-only: logit = phi(x_q), nothing else.

use icl_datagen::Batch;

use super::isa::{dispatch, isa_methods, Isa};
use super::mlp::{logistic, MlpGrad, MlpRef, MlpWs};
use super::simd::Kernels;
use super::transformer::softmax_in_place;
use super::transformer::token_x;
use crate::model::Params;

/// Workspace of the minimal model (`attention = true`) or the MLP-only model (`false`).
pub struct Minimal {
    isa: Isa,
    d: usize,
    b_max: usize,
    n_max: usize,
    attention: bool,
    x0: Vec<f32>,
    g: Vec<f32>,
    a: Vec<f32>,
    m: Vec<f32>,
    pub mlp: MlpWs,
    logits: Vec<f32>,
    rows: usize,
}

impl Minimal {
    pub fn new(d: usize, width: usize, b_max: usize, n_max: usize, attention: bool) -> Self {
        Minimal {
            isa: Isa::detect(),
            d,
            b_max,
            n_max,
            attention,
            x0: vec![0.0; b_max * d],
            g: vec![0.0; b_max * n_max],
            a: vec![0.0; b_max * n_max],
            m: vec![0.0; b_max],
            mlp: MlpWs::new(d, width, b_max),
            logits: vec![0.0; b_max],
            rows: 0,
        }
    }

    fn mlp_range(&self) -> std::ops::Range<usize> {
        if self.attention {
            2..8
        } else {
            0..6
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
        &self.logits[..rows]
    }

    isa_methods!(forward_body, forward_v4, forward_v3, (p: &Params, batch: &Batch, rows: usize));

    #[inline(always)]
    fn forward_body<K: Kernels>(&mut self, p: &Params, batch: &Batch, rows: usize) {
        let (d, n) = (self.d, batch.n);
        for b in 0..rows {
            self.x0[b * d..(b + 1) * d].copy_from_slice(token_x(batch, b, n - 1));
        }
        self.mlp.forward::<K>(
            &MlpRef::from_slice(&p.data[self.mlp_range()]),
            &self.x0,
            rows,
        );
        if !self.attention {
            self.logits[..rows].copy_from_slice(&self.mlp.out[..rows]);
        } else {
            let (beta, w) = (p.data[0][0], p.data[1][0]);
            let c = n - 1;
            for b in 0..rows {
                let xq = &self.x0[b * d..(b + 1) * d];
                let g = &mut self.g[b * c..(b + 1) * c];
                for (j, gj) in g.iter_mut().enumerate() {
                    *gj = K::dot(token_x(batch, b, j), xq);
                }
                let a = &mut self.a[b * c..(b + 1) * c];
                for (aj, gj) in a.iter_mut().zip(g.iter()) {
                    *aj = beta * gj;
                }
                let mut m = 0f32;
                if c > 0 {
                    softmax_in_place(a);
                    for (j, aj) in a.iter().enumerate() {
                        m += aj * batch.labels[b * n + j];
                    }
                }
                self.m[b] = m;
                self.logits[b] = self.mlp.out[b] + w * m;
            }
        }
        self.rows = rows;
    }

    /// phi(x_q) of the last forward (the MLP's output on the query item).
    pub fn phi(&self) -> &[f32] {
        &self.mlp.out[..self.rows]
    }

    pub fn loss_and_grad(&mut self, p: &Params, batch: &Batch, g: &mut Params) -> (f64, usize) {
        let rows = batch.b;
        self.forward(p, batch, rows);
        let (loss, correct) = logistic(
            &self.logits,
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
        let range = self.mlp_range();
        if self.attention {
            let (beta_w, _) = g.data.split_at_mut(2);
            let w = p.data[1][0];
            let c = batch.n - 1;
            let (mut dw, mut dbeta) = (0f64, 0f64);
            for b in 0..rows {
                let dl = self.mlp.dout[b] as f64;
                let m = self.m[b];
                dw += dl * m as f64;
                let mut acc = 0f32;
                for j in 0..c {
                    let aj = self.a[b * c + j];
                    acc += aj * (batch.labels[b * batch.n + j] - m) * self.g[b * c + j];
                }
                dbeta += dl * w as f64 * acc as f64;
            }
            beta_w[0][0] = dbeta as f32;
            beta_w[1][0] = dw as f32;
        }
        self.mlp.backward::<K>(
            &MlpRef::from_slice(&p.data[range.clone()]),
            &mut MlpGrad::from_slice(&mut g.data[range]),
            &self.x0,
            rows,
            None,
        );
    }
}
