//! The three-layer MLP `Linear(din, h) - ReLU - Linear(h, h) - ReLU - Linear(h, 1)` on a batch of
//! rows, forward and hand-derived backward, with its activations kept in a preallocated workspace.
//! The two big products per direction go through `gemm`; everything else is a simple loop.

use super::linalg::{col_sums, matmul, rm, tr, transpose};
use super::simd::Kernels;

/// The six tensors of one MLP, in `Arch::specs` order (w1 [h, din], b1 [h], w2 [h, h], b2 [h],
/// w3 [1, h], b3 [1]).
pub struct MlpRef<'a> {
    pub w1: &'a [f32],
    pub b1: &'a [f32],
    pub w2: &'a [f32],
    pub b2: &'a [f32],
    pub w3: &'a [f32],
    pub b3: &'a [f32],
}

impl<'a> MlpRef<'a> {
    pub fn from_slice(t: &'a [Vec<f32>]) -> Self {
        MlpRef {
            w1: &t[0],
            b1: &t[1],
            w2: &t[2],
            b2: &t[3],
            w3: &t[4],
            b3: &t[5],
        }
    }
}

pub struct MlpGrad<'a> {
    pub w1: &'a mut [f32],
    pub b1: &'a mut [f32],
    pub w2: &'a mut [f32],
    pub b2: &'a mut [f32],
    pub w3: &'a mut [f32],
    pub b3: &'a mut [f32],
}

impl<'a> MlpGrad<'a> {
    pub fn from_slice(t: &'a mut [Vec<f32>]) -> Self {
        let [w1, b1, w2, b2, w3, b3] = t else {
            panic!("an MLP has six tensors (got {})", t.len())
        };
        MlpGrad {
            w1,
            b1,
            w2,
            b2,
            w3,
            b3,
        }
    }
}

/// Activations and gradients of one MLP for up to `b_max` rows.
pub struct MlpWs {
    pub din: usize,
    pub h: usize,
    /// relu(x W1^T + b1), then relu(h1 W2^T + b2): the masks of the backward pass are `h > 0`.
    pub h1: Vec<f32>,
    pub h2: Vec<f32>,
    /// Outputs (logits), one per row.
    pub out: Vec<f32>,
    /// d loss / d out, one per row (set by the caller before [`MlpWs::backward`]).
    pub dout: Vec<f32>,
    dp2: Vec<f32>,
    dp1: Vec<f32>,
    /// W2^T: `gemm` runs h1 W2^T about 1.7x faster from a transposed copy than from a transposed
    /// view of W2 (its packing of that layout is slow; measured by examples/gemm_shapes.rs).
    w2t: Vec<f32>,
}

impl MlpWs {
    pub fn new(din: usize, h: usize, b_max: usize) -> Self {
        MlpWs {
            din,
            h,
            h1: vec![0.0; b_max * h],
            h2: vec![0.0; b_max * h],
            out: vec![0.0; b_max],
            dout: vec![0.0; b_max],
            dp2: vec![0.0; b_max * h],
            dp1: vec![0.0; b_max * h],
            w2t: vec![0.0; h * h],
        }
    }

    /// `out[r] = MLP(x[r])` for the first `rows` rows of `x` (row-major, `din` columns).
    #[inline(always)]
    pub fn forward<K: Kernels>(&mut self, p: &MlpRef, x: &[f32], rows: usize) {
        let (din, h) = (self.din, self.h);
        let h1 = &mut self.h1[..rows * h];
        for r in 0..rows {
            h1[r * h..(r + 1) * h].copy_from_slice(p.b1);
        }
        matmul(rows, h, din, h1, true, rm(x, din), tr(p.w1, din));
        relu(h1);
        let h2 = &mut self.h2[..rows * h];
        for r in 0..rows {
            h2[r * h..(r + 1) * h].copy_from_slice(p.b2);
        }
        transpose(p.w2, h, h, &mut self.w2t);
        matmul(rows, h, h, h2, true, rm(&self.h1, h), rm(&self.w2t, h));
        relu(h2);
        for r in 0..rows {
            self.out[r] = p.b3[0] + K::dot(&self.h2[r * h..(r + 1) * h], p.w3);
        }
    }

    /// Gradients of every MLP tensor (overwritten) from `self.dout`, and `dx` (overwritten) if
    /// asked. Uses the activations of the last [`MlpWs::forward`] on the same `x` and `rows`.
    #[inline(always)]
    pub fn backward<K: Kernels>(
        &mut self,
        p: &MlpRef,
        g: &mut MlpGrad,
        x: &[f32],
        rows: usize,
        dx: Option<&mut [f32]>,
    ) {
        let (din, h) = (self.din, self.h);
        g.w3.fill(0.0);
        let mut db3 = 0f32;
        for r in 0..rows {
            let d = self.dout[r];
            db3 += d;
            K::axpy(d, &self.h2[r * h..(r + 1) * h], g.w3);
        }
        g.b3[0] = db3;
        let dp2 = &mut self.dp2[..rows * h];
        for r in 0..rows {
            let d = self.dout[r];
            let row = &mut dp2[r * h..(r + 1) * h];
            for ((o, w), a) in row.iter_mut().zip(p.w3).zip(&self.h2[r * h..(r + 1) * h]) {
                *o = if *a > 0.0 { d * *w } else { 0.0 };
            }
        }
        matmul(h, h, rows, g.w2, false, tr(&self.dp2, h), rm(&self.h1, h));
        col_sums(&self.dp2, rows, h, g.b2);
        let dp1 = &mut self.dp1[..rows * h];
        matmul(rows, h, h, dp1, false, rm(&self.dp2, h), rm(p.w2, h));
        for (d, a) in dp1.iter_mut().zip(&self.h1[..rows * h]) {
            if *a <= 0.0 {
                *d = 0.0;
            }
        }
        matmul(h, din, rows, g.w1, false, tr(&self.dp1, h), rm(x, din));
        col_sums(&self.dp1, rows, h, g.b1);
        if let Some(dx) = dx {
            matmul(rows, din, h, dx, false, rm(&self.dp1, h), rm(p.w1, din));
        }
    }
}

#[inline(always)]
fn relu(v: &mut [f32]) {
    for x in v {
        *x = x.max(0.0);
    }
}

/// Mean logistic loss `softplus(-l * logit)` over `rows` rows, the number of rows with
/// `l * logit > 0`, and (if given) `dlogit[r] = d mean loss / d logit[r] = -l sigma(-l logit) / rows`.
pub fn logistic(
    logits: &[f32],
    targets: impl Fn(usize) -> f32,
    rows: usize,
    dlogit: Option<&mut [f32]>,
) -> (f64, usize) {
    let mut loss = 0f64;
    let mut correct = 0usize;
    let mut dl = dlogit;
    for r in 0..rows {
        let l = targets(r) as f64;
        let m = l * logits[r] as f64;
        loss += softplus(-m);
        if m > 0.0 {
            correct += 1;
        }
        if let Some(d) = dl.as_deref_mut() {
            d[r] = (-l * sigmoid(-m) / rows as f64) as f32;
        }
    }
    (loss / rows.max(1) as f64, correct)
}

/// `ln(1 + e^x)` without overflow.
#[inline]
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `1 / (1 + e^-x)` without overflow.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
