//! Claims of the transition and its kinetics: C1, C2, C9 (K sweeps: the transition, abrupt
//! acquisition, bimodality near K*) and C7, C8 (t_ICL at K = infinity, one-layer and two-layer
//! models). Run summaries and learning curves in, one claim row and one figure (PNG + SVG) per
//! claim out. What the claims share (record, checks, statistics, K*, the ladder, the stage
//! body) is `icl-claim`, re-exported here under the same module names.
//!
//! - [`c1`], [`c2`], [`c7`], [`c8`], [`c9`]: one module per claim: analysis, verdict rules,
//!   figure. C1, C2 and C9 are judged at each context length N of their runs ([`ladder`]).
//! - [`params`]: the commands' parameters.
//! - [`CLAIMS`], [`STAGE`]: the claims this binary runs, and the stage itself.

pub mod c1;
pub mod c2;
pub mod c7;
pub mod c8;
pub mod c9;
pub mod params;
pub use icl_claim::frame::run_labels;
pub use icl_claim::{claim, floor, frame, kstar, ladder, sigmoid, stage, stats};

use icl_claim::stage::{ClaimStage, Command};

/// The claims of this family, one line each: the stage's commands.
pub static CLAIMS: &[&dyn Command] = &[&c1::C1, &c2::C2, &c7::C7, &c8::C8, &c9::C9];

/// The `icl-eval` stage (`icl-eval run --task F`, `icl-eval check`).
pub const STAGE: ClaimStage = ClaimStage {
    bin: "icl-eval",
    claims: CLAIMS,
};
