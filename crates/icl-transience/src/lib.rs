//! Transience and equalized contexts: claims C10, C11, C12.
//!
//! - [`analysis`]: per-run analysis of a learning curve (acquisition, peak, time of loss,
//!   classification transient / not transient / no ICL) and the theory's post-acquisition
//!   relation (w_tr e^(w_tr) = c3 / lambda, ICL loss ~ e^(-w), IWL loss ~ c3).
//! - [`c10`], [`c11`], [`c12`]: one module per claim: analysis, verdict rules, figure.
//!   C10 and C12 are judged at each context length N of their runs (`icl_claim::ladder`).
//! - [`TransienceStage`]: the pipeline stage (`icl-transience run --task F`, `icl-transience check`).
//!
//! Statistics, the claim record and DataFrame helpers come from `icl-claim` (one copy).

pub mod analysis;
pub mod c10;
pub mod c11;
pub mod c12;
pub mod params;

use analysis::Curve;
use anyhow::{bail, ensure, Result};
use icl_claim::claim::Claim;
use icl_claim::frame::{self, f64s};
use icl_claim::ladder;
use icl_claim::params::check;
use icl_claim::stage_io::{self, errs, input_paths, params, unknown_command};
use icl_store::task::{ParamError, Stage, TaskSpec};
use params::{C10Params, C11Params, C12Params};

pub const COMMANDS: [&str; 3] = ["c10", "c11", "c12"];
/// The `icl-transience` stage.
pub struct TransienceStage;

impl Stage for TransienceStage {
    fn check(&self, command: &str, params: &serde_json::Value) -> Vec<ParamError> {
        match command {
            "c10" => errs(check::<C10Params>(params)),
            "c11" => errs(check::<C11Params>(params)),
            "c12" => errs(check::<C12Params>(params)),
            other => vec![ParamError::new(
                "command",
                unknown_command(other, &COMMANDS),
            )],
        }
    }

    fn run(&self, task: &TaskSpec) -> Result<()> {
        stage_io::run_claim(task, "icl-transience", run_command)
    }
}

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

/// Run one claim command on a task's inputs: the claim row and its figure.
pub fn run_command(task: &TaskSpec) -> Result<(Claim, icl_plot::Figure)> {
    Ok(match task.command.as_str() {
        "c10" => {
            let p: C10Params = params(task)?;
            let runs = read_runs(task)?;
            ladder::judge_by_n(runs.into_iter().map(|r| (r.n, r)).collect(), |runs| {
                let a = c10::analyze(runs, &p)?;
                Ok((a.claim(&p), a.figure(&p)))
            })?
        }
        "c11" => {
            let p: C11Params = params(task)?;
            let a = c11::analyze(read_runs(task)?, &p)?;
            (a.claim(&p), a.figure(&p))
        }
        "c12" => {
            let p: C12Params = params(task)?;
            let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
            // Optional curves (same runs, same order): the final beta_eff of each run.
            let beta = match task.inputs_all("curves") {
                [] => None,
                refs => Some(
                    refs.iter()
                        .map(|r| {
                            Ok(f64s(&frame::read_df(&r.path)?, "beta_eff")?
                                .last()
                                .copied()
                                .unwrap_or(f64::NAN))
                        })
                        .collect::<Result<Vec<f64>>>()?,
                ),
            };
            ladder::judge_frame(&df, |df, rows| {
                // The beta_eff of the rows judged (all of them when judged whole).
                let beta: Option<Vec<f64>> = beta.as_ref().map(|b| match rows {
                    Some(mask) => b
                        .iter()
                        .zip(mask)
                        .filter(|(_, m)| **m)
                        .map(|(v, _)| *v)
                        .collect(),
                    None => b.clone(),
                });
                let a = c12::analyze(df, beta.as_deref(), &p)?;
                Ok((a.claim(&p), a.figure(&p)))
            })?
        }
        other => bail!(
            "stage {}: {}",
            task.stage,
            unknown_command(other, &COMMANDS)
        ),
    })
}
