//! The stage binary's commands. Each reads declared inputs, computes a claim with a verdict from
//! the data, and writes `claim` (Parquet), `figure_png` and `figure_svg`.
//!
//! | command | claim | inputs |
//! |---|---|---|
//! | `c3` | minimal model: transition in K, abrupt acquisition, transience | `summaries`, `curves` (K sweep); `transient_summaries`, `transient_curves` (optional) |
//! | `c4` | loss landscape over (w, beta) | none; or `curves` + `summaries` of MLP-only runs to set the memorized distribution |
//! | `c5` | memorization law I_K(inf) ~ K^nu | `curves`, `summaries` (MLP-only, K x seed) |
//! | `c6` | K* ~ N^(1/nu) | `summaries` (transformer, K x N x seed); `nu_claim` (optional, the c5 claim) |
//! | `c13` | t_ICL ~ N e^-beta0, K* ~ N^(1/nu) e^(-beta0/nu) | `summaries` (minimal, K = inf, beta0 x N x seed); `curves` (optional); `kstar_summaries` + `mlp_curves` + `mlp_summaries` (optional) |

mod c13;
mod c3;
mod c4;
mod c5;
mod c6;
mod common;

pub use c13::C13Params;
pub use c3::C3Params;
pub use c4::C4Params;
pub use c5::C5Params;
pub use c6::C6Params;

use icl_claim::stage::{ClaimStage, Command};

/// The claims of this family, one line each: the stage's commands.
pub static CLAIMS: &[&dyn Command] = &[&c3::C3, &c4::C4, &c5::C5, &c6::C6, &c13::C13];

/// The `icl-fit-nu` stage (`icl-fit-nu run --task F`, `icl-fit-nu check`).
pub const STAGE: ClaimStage = ClaimStage {
    bin: "icl-fit-nu",
    claims: CLAIMS,
};
