//! Transience and equalized contexts: claims C10, C11, C12.
//!
//! - [`analysis`]: per-run analysis of a learning curve (acquisition, peak, time of loss,
//!   classification transient / not transient / no ICL) and the theory's post-acquisition
//!   relation (w_tr e^(w_tr) = c3 / lambda, ICL loss ~ e^(-w), IWL loss ~ c3).
//! - [`c10`], [`c11`], [`c12`]: one module per claim: analysis, verdict rules, figure.
//!   C10 and C12 are judged at each context length N of their runs (`icl_claim::ladder`).
//! - [`CLAIMS`], [`STAGE`]: the claims this binary runs, and the stage itself.
//!
//! Statistics, the claim record and DataFrame helpers come from `icl-claim` (one copy).

pub mod analysis;
pub mod c10;
pub mod c11;
pub mod c12;
pub mod params;

use analysis::Curve;
use anyhow::{ensure, Result};
use icl_claim::frame::{self, f64s};
use icl_claim::stage::{input_paths, ClaimStage, Command};
use icl_store::task::TaskSpec;

/// The claims of this family, one line each: the stage's commands.
pub static CLAIMS: &[&dyn Command] = &[&c10::C10, &c11::C11, &c12::C12];

/// The `icl-transience` stage (`icl-transience run --task F`, `icl-transience check`).
pub const STAGE: ClaimStage = ClaimStage {
    bin: "icl-transience",
    claims: CLAIMS,
};

/// One training run: its curve and, from its summary, the attention weight decay, seed and
/// context length (which sets the label-count floor of its ICL test).
#[derive(Debug, Clone)]
pub struct Run {
    pub curve: Curve,
    pub wd_attn: f64,
    pub seed: f64,
    pub n: u64,
}

/// Curves paired (in declared order) with their summaries, which give each run's `wd_attn`,
/// seed and label.
pub fn read_runs(task: &TaskSpec) -> Result<Vec<Run>> {
    let curves = input_paths(task, "curves")?;
    let sums = input_paths(task, "summaries")?;
    ensure!(
        curves.len() == sums.len(),
        "stage {}: {} summaries for {} curves; they must pair up in order",
        task.stage,
        sums.len(),
        curves.len()
    );
    let df = frame::read_stacked(&sums)?;
    runs_from(&df, |i, label| Curve::read(&curves[i], label))
}

/// Pair stacked summaries with curves given by `curve(i, label)`.
pub fn runs_from<F: FnMut(usize, String) -> Result<Curve>>(
    df: &polars::prelude::DataFrame,
    mut curve: F,
) -> Result<Vec<Run>> {
    let labels = icl_claim::frame::run_labels(df)?;
    let wd = f64s(df, "wd_attn")?;
    let ns = f64s(df, "N")?;
    let seed = if df.column("seed").is_ok() {
        f64s(df, "seed")?
    } else {
        vec![f64::NAN; df.height()]
    };
    (0..df.height())
        .map(|i| {
            ensure!(
                wd[i].is_finite() && wd[i] >= 0.0,
                "summary {i} has no valid wd_attn ({})",
                wd[i]
            );
            let label = format!("{}, wd={}", labels[i], icl_plot::format_number(wd[i]));
            ensure!(
                ns[i].is_finite() && ns[i] >= 2.0,
                "summary {i} has no valid N ({})",
                ns[i]
            );
            Ok(Run {
                curve: curve(i, label)?,
                wd_attn: wd[i],
                seed: seed[i],
                n: ns[i] as u64,
            })
        })
        .collect()
}
