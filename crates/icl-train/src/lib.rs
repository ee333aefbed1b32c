//! Training for the reproduction of Nguyen & Reddy (ICLR 2025): the paper's four models, a fused
//! query-only forward/backward on plain f32 buffers + `gemm` (the hot path for every model; the
//! two-layer model's full causal attention in `fast::two_layer`), candle autograd reference
//! models (the gradient oracle the fast path is tested against, checkpoints), SGD with per-group L2,
//! evaluation and learning curves, and the `icl-train` stage.
//!
//! - [`params`]: [`TrainParams`], every hyperparameter of one run, validated.
//! - [`model`]: parameter layout, PyTorch-default init from the seed, [`model::sgd_step`].
//! - [`fast`]: the fast path ([`fast::Net`]): transformer, minimal, MLP-only, two-layer.
//! - [`reference`]: the candle models with full causal attention; safetensors IO.
//! - [`data`], [`eval`], [`train`]: training source, test sets, metrics, the loop and resume.
//! - [`stage`]: the pipeline stage and the artifact tables; [`fit`]: the standalone front end;
//!   [`bench`]: the speed benchmark.

pub mod bench;
pub mod data;
pub mod eval;
pub mod fast;
pub mod fit;
pub mod model;
pub mod params;
pub mod reference;
pub mod stage;
pub mod train;

pub use params::{ModelKind, TrainParams};
pub use train::{train, CurveRow, Event, RunInputs, RunResult, Summary};
