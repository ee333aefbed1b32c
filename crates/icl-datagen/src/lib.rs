//! Task data for the in-context classification task of Nguyen & Reddy (ICLR 2025):
//! item sets, label assignment, the online training-sequence sampler, and the ICL / IWL test sets.
//!
//! # Seeds and streams
//! Every random draw comes from a `ChaCha8Rng::seed_from_u64(seed)` put on a fixed stream
//! (`set_stream`), so that draws for different purposes never overlap even when two seeds are
//! equal. The streams are part of the data contract (changing one changes every artifact):
//!
//! | what | seed | stream |
//! |---|---|---|
//! | training items x_k ([`generate_items`]) | `data_seed` | [`STREAM_ITEMS`] |
//! | per-run label permutation ([`assign_labels`]) | run seed | [`STREAM_LABELS`] |
//! | training sequences ([`Sampler::new`]) | run seed | [`STREAM_TRAIN`] |
//! | novel (ICL test) items | `test_seed` | [`STREAM_NOVEL_ITEMS`] |
//! | novel items' labels | `test_seed` | [`STREAM_NOVEL_LABELS`] |
//! | ICL test sequences | `test_seed` | [`STREAM_ICL_TEST`] |
//! | IWL test sequences | `test_seed` | [`STREAM_IWL_TEST`] |
//!
//! Normal draws use a 32-bit ziggurat on these ChaCha8 streams; at K = inf, 16 xoshiro128++ lanes
//! per sequence seeded from the run's ChaCha8 stream (see `normal.rs`).
//!
//! The trainer and the IWL evaluation must both call [`assign_labels`]`(k, run_seed)` to agree on
//! which training item carries which label; the test sets themselves never depend on the run seed.

mod error;
mod items;
mod normal;
mod num_items;
mod sampler;
pub mod stage;
mod testsets;

pub use error::DatagenError;
pub use items::{assign_labels, generate_items, ItemSet, DEFAULT_D};
pub use normal::{kinf_kernels, KinfDraw};
pub use num_items::NumItems;
pub use sampler::{Batch, ContextMode, Sampler, SamplerState, TrainData, NO_ITEM};
pub use testsets::{
    make_icl_test, make_iwl_test, make_novel, IclTest, IwlTest, NovelSet, DEFAULT_N_TEST, NOVEL_CAP,
};

/// Stream of the training item vectors (seeded by `data_seed`).
pub const STREAM_ITEMS: u64 = 1;
/// Stream of the per-run label permutation (seeded by the run seed).
pub const STREAM_LABELS: u64 = 2;
/// Stream of the online training sequences (seeded by the run seed).
pub const STREAM_TRAIN: u64 = 3;
/// Stream of the novel items of the ICL test set (seeded by `test_seed`).
pub const STREAM_NOVEL_ITEMS: u64 = 4;
/// Stream of the novel items' labels (seeded by `test_seed`).
pub const STREAM_NOVEL_LABELS: u64 = 5;
/// Stream of the ICL test sequences (seeded by `test_seed`).
pub const STREAM_ICL_TEST: u64 = 6;
/// Stream of the IWL test sequences (seeded by `test_seed`).
pub const STREAM_IWL_TEST: u64 = 7;

/// The one way this crate builds an RNG: ChaCha8 from an explicit seed, on a fixed stream.
pub fn rng_for(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
