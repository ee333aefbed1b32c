//! The four models on candle autograd, written as the authors wrote them: full causal attention
//! over every position (then the query row is taken), LayerNorm and softmax composed from
//! differentiable ops (candle's fused `layer_norm` / `softmax_last_dim` have no backward and would
//! silently cut the graph). Generic over the dtype, so tests run it in f64 as the gradient oracle
//! of the fast path (every model, the two-layer one included, trains on `crate::fast`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device, Tensor, Var, D};
use icl_datagen::Batch;

use crate::fast::transformer::{one_hot, LN_EPS};
use crate::model::{Arch, Params};
use crate::params::ModelKind;

/// A model's parameters as candle `Var`s in `Arch::specs` order.
pub struct Reference {
    pub arch: Arch,
    pub dtype: DType,
    pub vars: Vec<Var>,
}

/// What one forward pass returns.
pub struct RefOut {
    /// One logit per sequence.
    pub logits: Tensor,
    /// The query row of the last attention layer's scores (before the softmax), `[rows, N]`,
    /// for models with attention.
    pub query_scores: Option<Tensor>,
}

impl Reference {
    pub fn new(p: &Params, dtype: DType) -> anyhow::Result<Self> {
        let vars = p
            .specs
            .iter()
            .zip(&p.data)
            .map(|(s, d)| {
                let t = Tensor::from_vec(d.clone(), s.shape.as_slice(), &Device::Cpu)?
                    .to_dtype(dtype)?;
                Var::from_tensor(&t)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Reference {
            arch: p.arch,
            dtype,
            vars,
        })
    }

    /// Load new values (same layout) into the variables.
    pub fn set(&self, p: &Params) -> anyhow::Result<()> {
        for ((v, s), d) in self.vars.iter().zip(&p.specs).zip(&p.data) {
            let t = Tensor::from_vec(d.clone(), s.shape.as_slice(), &Device::Cpu)?
                .to_dtype(self.dtype)?;
            v.set(&t)?;
        }
        Ok(())
    }

    fn p(&self, i: usize) -> &Tensor {
        self.vars[i].as_tensor()
    }

    /// `[rows, N, E]` tokens: item then one-hot label, the query's label part zero.
    pub fn tokens(&self, batch: &Batch, rows: usize) -> anyhow::Result<Tensor> {
        let (n, d) = (batch.n, batch.d);
        let e = d + 2;
        let mut t = vec![0f32; rows * n * e];
        for b in 0..rows {
            for j in 0..n {
                let o = (b * n + j) * e;
                t[o..o + d].copy_from_slice(batch.token(b, j));
                if j + 1 < n {
                    let (lo, hi) = one_hot(batch.labels[b * n + j]);
                    t[o + d] = lo;
                    t[o + d + 1] = hi;
                }
            }
        }
        Ok(Tensor::from_vec(t, (rows, n, e), &Device::Cpu)?.to_dtype(self.dtype)?)
    }

    fn items(&self, batch: &Batch, rows: usize) -> anyhow::Result<Tensor> {
        let x: Vec<f32> = (0..rows * batch.n)
            .flat_map(|t| batch.token(t / batch.n, t % batch.n))
            .copied()
            .collect();
        Ok(Tensor::from_vec(x, (rows, batch.n, batch.d), &Device::Cpu)?.to_dtype(self.dtype)?)
    }

    fn vec_of(&self, v: Vec<f32>, shape: &[usize]) -> anyhow::Result<Tensor> {
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(self.dtype)?)
    }

    /// Forward pass on the first `rows` sequences. `ablate` zeroes the last attention layer's
    /// output at the query (the "no attention" logit used for the effective w).
    pub fn forward(&self, batch: &Batch, rows: usize, ablate: bool) -> anyhow::Result<RefOut> {
        let n = batch.n;
        match self.arch.kind {
            ModelKind::Transformer => {
                let u = layer_norm(&self.tokens(batch, rows)?, self.p(0), self.p(1))?;
                let (sa, scores) = causal_attention(&u, self.p(2))?;
                let uq = last(&u)?;
                let h0 = if ablate { uq } else { (uq + last(&sa)?)? };
                Ok(RefOut {
                    logits: mlp(&h0, &self.vars[3..9])?.squeeze(1)?,
                    query_scores: Some(last(&scores)?),
                })
            }
            ModelKind::TwoLayer => {
                let u = layer_norm(&self.tokens(batch, rows)?, self.p(0), self.p(1))?;
                let (sa1, _) = causal_attention(&u, self.p(2))?;
                let x = mlp(&(u + sa1)?, &self.vars[4..10])?;
                let (sa2, scores) = causal_attention(&x, self.p(3))?;
                let xq = last(&x)?;
                let h = if ablate { xq } else { (xq + last(&sa2)?)? };
                Ok(RefOut {
                    logits: mlp(&h, &self.vars[10..16])?.squeeze(1)?,
                    query_scores: Some(last(&scores)?),
                })
            }
            ModelKind::Minimal => {
                let x = self.items(batch, rows)?;
                let xq = last(&x)?;
                let phi = mlp(&xq, &self.vars[2..8])?.squeeze(1)?;
                if n == 1 || ablate {
                    return Ok(RefOut {
                        logits: phi,
                        query_scores: None,
                    });
                }
                let ctx = x.narrow(1, 0, n - 1)?;
                let g = ctx.matmul(&xq.unsqueeze(2)?)?.squeeze(2)?; // [rows, N-1]
                let s = g.broadcast_mul(self.p(0))?;
                let a = softmax_last(&s)?;
                let mut l = Vec::with_capacity(rows * (n - 1));
                for b in 0..rows {
                    l.extend_from_slice(&batch.labels[b * n..b * n + n - 1]);
                }
                let l = self.vec_of(l, &[rows, n - 1])?;
                let m = (a * l)?.sum(1)?;
                Ok(RefOut {
                    logits: (phi + m.broadcast_mul(self.p(1))?)?,
                    query_scores: Some(s),
                })
            }
            ModelKind::MlpOnly => {
                let xq = last(&self.items(batch, rows)?)?;
                Ok(RefOut {
                    logits: mlp(&xq, &self.vars[0..6])?.squeeze(1)?,
                    query_scores: None,
                })
            }
        }
    }

    /// Mean `softplus(-l * logit)` over the first `rows` sequences (a scalar tensor).
    pub fn loss(&self, logits: &Tensor, batch: &Batch, rows: usize) -> anyhow::Result<Tensor> {
        let l: Vec<f32> = (0..rows).map(|r| batch.target(r)).collect();
        let z = (logits * self.vec_of(l, &[rows])?)?;
        Ok(softplus(&z.neg()?)?.mean_all()?)
    }

    /// Loss, correct count and the gradient of every parameter (f64 on the host; zeros where
    /// the graph does not reach a parameter, which the tests catch).
    pub fn loss_and_grads(&self, batch: &Batch) -> anyhow::Result<(f64, usize, Vec<Vec<f64>>)> {
        let rows = batch.b;
        let out = self.forward(batch, rows, false)?;
        let loss = self.loss(&out.logits, batch, rows)?;
        let grads = loss.backward()?;
        let logits: Vec<f64> = out.logits.to_dtype(DType::F64)?.to_vec1()?;
        let correct = logits
            .iter()
            .enumerate()
            .filter(|(r, z)| batch.target(*r) as f64 * **z > 0.0)
            .count();
        let g = self
            .vars
            .iter()
            .map(|v| match grads.get(v.as_tensor()) {
                Some(g) => Ok(g.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?),
                None => Ok(vec![0.0; v.as_tensor().elem_count()]),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, correct, g))
    }
}

/// Last position along dim 1: `[B, N, X] -> [B, X]`.
fn last(t: &Tensor) -> candle_core::Result<Tensor> {
    let n = t.dim(1)?;
    t.narrow(1, n - 1, 1)?.squeeze(1)
}

/// LayerNorm over the last dim (biased variance, eps 1e-5), from differentiable ops.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let c = x.broadcast_sub(&mean)?;
    let var = c.sqr()?.mean_keepdim(D::Minus1)?;
    let xhat = c.broadcast_div(&(var + LN_EPS as f64)?.sqrt()?)?;
    xhat.broadcast_mul(gamma)?.broadcast_add(beta)
}

/// Softmax over the last dim; the max is a constant shift (detached: it changes nothing but
/// overflow).
pub fn softmax_last(s: &Tensor) -> candle_core::Result<Tensor> {
    let m = s.max_keepdim(D::Minus1)?.detach();
    let e = s.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// One head of causal self-attention with scale 1 and a packed `[3E, E]` W_QKV, at every
/// position (as `F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0)`).
/// Returns the output `[B, N, E]` and the raw scores `[B, N, N]`.
pub fn causal_attention(u: &Tensor, wqkv: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let e = u.dim(2)?;
    let n = u.dim(1)?;
    let q = u.broadcast_matmul(&wqkv.narrow(0, 0, e)?.t()?)?;
    let k = u.broadcast_matmul(&wqkv.narrow(0, e, e)?.t()?)?;
    let v = u.broadcast_matmul(&wqkv.narrow(0, 2 * e, e)?.t()?)?;
    let scores = q.matmul(&k.t()?.contiguous()?)?;
    let mask: Vec<f64> = (0..n * n)
        .map(|i| {
            if i % n > i / n {
                f64::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, (n, n), u.device())?.to_dtype(u.dtype())?;
    let a = softmax_last(&scores.broadcast_add(&mask)?)?;
    Ok((a.matmul(&v.contiguous()?)?, scores))
}

/// `Linear - ReLU - Linear - ReLU - Linear` on the last dim, with the six tensors of `vars`.
pub fn mlp(x: &Tensor, vars: &[Var]) -> candle_core::Result<Tensor> {
    let lin = |x: &Tensor, w: &Var, b: &Var| {
        x.broadcast_matmul(&w.as_tensor().t()?)?
            .broadcast_add(b.as_tensor())
    };
    let h = lin(x, &vars[0], &vars[1])?.relu()?;
    let h = lin(&h, &vars[2], &vars[3])?.relu()?;
    lin(&h, &vars[4], &vars[5])
}

/// `ln(1 + e^x) = relu(x) + ln(1 + e^-|x|)`, stable for large |x|.
pub fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    x.relu()? + ((x.abs()?.neg()?.exp()? + 1.0)?.log()?)
}

/// Writes `p` as safetensors (f32, tensors sorted by name: the bytes depend only on the values).
pub fn save_safetensors(p: &Params, path: &Path) -> anyhow::Result<()> {
    let mut map = HashMap::new();
    for (s, d) in p.specs.iter().zip(&p.data) {
        map.insert(
            s.name.clone(),
            Tensor::from_vec(d.clone(), s.shape.as_slice(), &Device::Cpu)?,
        );
    }
    candle_core::safetensors::save(&map, path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a checkpoint written by [`save_safetensors`] into a layout (names and shapes must match).
pub fn load_safetensors(path: &Path, into: &mut Params) -> anyhow::Result<()> {
    let map = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        map.len() == into.specs.len(),
        "{}: {} tensors, expected {}",
        path.display(),
        map.len(),
        into.specs.len()
    );
    for (s, d) in into.specs.iter().zip(into.data.iter_mut()) {
        let t = map
            .get(&s.name)
            .with_context(|| format!("{}: no tensor {}", path.display(), s.name))?;
        anyhow::ensure!(
            t.dims() == s.shape.as_slice(),
            "{}: {} has shape {:?}, expected {:?}",
            path.display(),
            s.name,
            t.dims(),
            s.shape
        );
        *d = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    }
    Ok(())
}
