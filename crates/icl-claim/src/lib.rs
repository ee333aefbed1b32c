//! The claim library: what every claim crate (`icl-eval`: transition and kinetics,
//! `icl-fit-nu`: theory, `icl-transience`: transience and contexts) shares, so that a claim
//! crate holds only its claims and editing one claim reruns only its own crate's claim tasks
//! (the code fingerprint covers a crate and its workspace dependencies).
//!
//! - [`claim`]: the claim record (one row), the one `Check` and `Verdict`.
//! - [`params`]: parse + validate, range helpers, the keys every claim command accepts.
//! - [`floor`]: the label-count floor every accuracy threshold is checked against.
//! - [`frame`]: run artifacts (summaries, curves) as polars DataFrames.
//! - [`stats`]: censoring-aware quantiles, moments, least squares, Wilson and bootstrap intervals.
//! - [`sigmoid`], [`kstar`]: the sigmoid fit and the one K* definition (C1, C3, C6, C13).
//! - [`ladder`]: a claim judged at each context length N (headline = the largest N).
//! - [`stage`]: the `PaperClaim` trait every claim implements and `ClaimStage`, the generic
//!   stage binary (check, outputs, claim row, figures).

pub mod claim;
pub mod floor;
pub mod frame;
pub mod kstar;
pub mod ladder;
pub mod params;
pub mod sigmoid;
pub mod stage;
pub mod stats;
