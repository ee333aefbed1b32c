//! The training fast path: forward and hand-derived backward on plain f32 buffers, computing only
//! what reaches the loss (the query position), with the MLP products on `gemm`. Single-threaded,
//! deterministic, and allocation-free per step (every buffer lives in a workspace built once).
//!
//! [`Net`] is what the training loop and the evaluation see: the fast transformer, the fast
//! two-layer transformer, the fast minimal / MLP-only model, or (for cross-checks) the candle
//! autograd reference.

pub mod isa;
pub mod linalg;
pub mod minimal;
pub mod mlp;
pub mod simd;
pub mod transformer;
pub mod two_layer;

use candle_core::DType;
use icl_datagen::Batch;

use crate::model::{Arch, Params};
use crate::params::ModelKind;
use crate::reference::Reference;
use minimal::Minimal;
use transformer::Transformer;
use two_layer::TwoLayer;

/// One model's compute engine with its workspace, for batches of up to `b_max` sequences of up to
/// `n_max` tokens.
pub struct Net {
    engine: Engine,
    b_max: usize,
    n_max: usize,
    logits: Vec<f32>,
    scores: Vec<f32>,
    no_attention: Vec<f32>,
}

enum Engine {
    Transformer(Box<Transformer>),
    TwoLayer(Box<TwoLayer>),
    Minimal(Box<Minimal>),
    /// candle autograd at f32 (any model; a cross-check of the fast path).
    Candle(Option<Reference>),
}

/// Outputs of [`Net::eval_chunk`] for its `rows` sequences.
pub struct EvalChunk<'a> {
    pub logits: &'a [f32],
    /// The query's (last-layer) attention scores over the N positions, `rows x N`; `None` for
    /// the minimal model (whose beta is read directly) and the MLP-only model.
    pub scores: Option<&'a [f32]>,
    /// Logits with the (last) attention output at the query removed; `None` without attention.
    pub no_attention: Option<&'a [f32]>,
    /// For the minimal and MLP-only models: phi(x_q).
    pub phi: Option<&'a [f32]>,
}

impl Net {
    /// The fast engine for `arch`.
    pub fn new(arch: Arch, b_max: usize, n_max: usize) -> Self {
        let engine = match arch.kind {
            ModelKind::Transformer => {
                Engine::Transformer(Box::new(Transformer::new(arch.d, arch.width, b_max, n_max)))
            }
            ModelKind::Minimal => Engine::Minimal(Box::new(Minimal::new(
                arch.d, arch.width, b_max, n_max, true,
            ))),
            ModelKind::MlpOnly => Engine::Minimal(Box::new(Minimal::new(
                arch.d, arch.width, b_max, n_max, false,
            ))),
            ModelKind::TwoLayer => {
                Engine::TwoLayer(Box::new(TwoLayer::new(arch.d, arch.width, b_max, n_max)))
            }
        };
        Self::with_engine(engine, b_max, n_max)
    }

    /// The candle autograd engine for any model (slow; for cross-checks).
    pub fn candle(b_max: usize, n_max: usize) -> Self {
        Self::with_engine(Engine::Candle(None), b_max, n_max)
    }

    fn with_engine(engine: Engine, b_max: usize, n_max: usize) -> Self {
        Net {
            engine,
            b_max,
            n_max,
            logits: vec![0.0; b_max],
            scores: vec![0.0; b_max * n_max],
            no_attention: vec![0.0; b_max],
        }
    }

    pub fn is_fast(&self) -> bool {
        !matches!(self.engine, Engine::Candle(_))
    }

    /// Gradients of the mean loss on `batch` into `g` (overwritten); returns (mean loss, correct).
    pub fn loss_and_grad(
        &mut self,
        p: &Params,
        batch: &Batch,
        g: &mut Params,
    ) -> anyhow::Result<(f64, usize)> {
        anyhow::ensure!(
            batch.b <= self.b_max && batch.n <= self.n_max,
            "batch larger than the workspace"
        );
        match &mut self.engine {
            Engine::Transformer(t) => Ok(t.loss_and_grad(p, batch, g)),
            Engine::TwoLayer(t) => Ok(t.loss_and_grad(p, batch, g)),
            Engine::Minimal(m) => Ok(m.loss_and_grad(p, batch, g)),
            Engine::Candle(r) => {
                let r = sync_reference(r, p)?;
                let (loss, correct, grads) = r.loss_and_grads(batch)?;
                for (dst, src) in g.data.iter_mut().zip(grads) {
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = s as f32;
                    }
                }
                Ok((loss, correct))
            }
        }
    }

    /// Forward on the first `rows` sequences of `batch`; with `extras`, also the query's
    /// attention scores and the logits without attention.
    pub fn eval_chunk(
        &mut self,
        p: &Params,
        batch: &Batch,
        rows: usize,
        extras: bool,
    ) -> anyhow::Result<EvalChunk<'_>> {
        anyhow::ensure!(
            rows <= self.b_max && batch.n <= self.n_max,
            "chunk larger than the workspace"
        );
        let n = batch.n;
        match &mut self.engine {
            Engine::Transformer(t) => {
                let l = t.forward(p, batch, rows);
                self.logits[..rows].copy_from_slice(l);
                if !extras {
                    return Ok(EvalChunk {
                        logits: &self.logits[..rows],
                        scores: None,
                        no_attention: None,
                        phi: None,
                    });
                }
                self.scores[..rows * n].copy_from_slice(t.scores());
                let l0 = t.logits_without_attention(p);
                self.no_attention[..rows].copy_from_slice(l0);
                Ok(EvalChunk {
                    logits: &self.logits[..rows],
                    scores: Some(&self.scores[..rows * n]),
                    no_attention: Some(&self.no_attention[..rows]),
                    phi: None,
                })
            }
            Engine::TwoLayer(t) => {
                let l = t.forward(p, batch, rows);
                self.logits[..rows].copy_from_slice(l);
                if !extras {
                    return Ok(EvalChunk {
                        logits: &self.logits[..rows],
                        scores: None,
                        no_attention: None,
                        phi: None,
                    });
                }
                self.scores[..rows * n].copy_from_slice(t.scores());
                let l0 = t.logits_without_attention(p);
                self.no_attention[..rows].copy_from_slice(l0);
                Ok(EvalChunk {
                    logits: &self.logits[..rows],
                    scores: Some(&self.scores[..rows * n]),
                    no_attention: Some(&self.no_attention[..rows]),
                    phi: None,
                })
            }
            Engine::Minimal(m) => {
                let l = m.forward(p, batch, rows);
                self.logits[..rows].copy_from_slice(l);
                self.no_attention[..rows].copy_from_slice(m.phi());
                Ok(EvalChunk {
                    logits: &self.logits[..rows],
                    scores: None,
                    no_attention: None,
                    phi: Some(&self.no_attention[..rows]),
                })
            }
            Engine::Candle(r) => {
                let r = sync_reference(r, p)?;
                let out = r.forward(batch, rows, false)?;
                copy_tensor(&out.logits, &mut self.logits[..rows])?;
                let kind = r.arch.kind;
                let phi_like = matches!(kind, ModelKind::Minimal | ModelKind::MlpOnly);
                if !extras && !phi_like {
                    return Ok(EvalChunk {
                        logits: &self.logits[..rows],
                        scores: None,
                        no_attention: None,
                        phi: None,
                    });
                }
                let mut scores = None;
                if let Some(s) = &out.query_scores {
                    let len = s.elem_count();
                    copy_tensor(&s.flatten_all()?, &mut self.scores[..len])?;
                    scores = Some(&self.scores[..len]);
                }
                let ablated = r.forward(batch, rows, true)?;
                copy_tensor(&ablated.logits, &mut self.no_attention[..rows])?;
                if phi_like {
                    return Ok(EvalChunk {
                        logits: &self.logits[..rows],
                        scores: None,
                        no_attention: None,
                        phi: Some(&self.no_attention[..rows]),
                    });
                }
                Ok(EvalChunk {
                    logits: &self.logits[..rows],
                    scores,
                    no_attention: Some(&self.no_attention[..rows]),
                    phi: None,
                })
            }
        }
    }
}

fn sync_reference<'a>(r: &'a mut Option<Reference>, p: &Params) -> anyhow::Result<&'a Reference> {
    match r {
        Some(r) if r.arch == p.arch => {
            r.set(p)?;
        }
        _ => *r = Some(Reference::new(p, DType::F32)?),
    }
    Ok(r.as_ref().expect("just set"))
}

fn copy_tensor(t: &candle_core::Tensor, dst: &mut [f32]) -> anyhow::Result<()> {
    let v: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    anyhow::ensure!(
        v.len() == dst.len(),
        "tensor has {} values, expected {}",
        v.len(),
        dst.len()
    );
    dst.copy_from_slice(&v);
    Ok(())
}
