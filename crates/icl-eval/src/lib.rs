//! Claims of the transition and its kinetics: C1, C2, C9 (K sweeps: the transition, abrupt
//! acquisition, bimodality near K*) and C7, C8 (t_ICL at K = infinity, one-layer and two-layer
//! models). Run summaries and learning curves in, one claim row and one figure (PNG + SVG) per
//! claim out. What the claims share (record, checks, statistics, K*, the ladder, the stage
//! body) is `icl-claim`, re-exported here under the same module names.
//!
//! - [`c1`], [`c2`], [`c7`], [`c8`], [`c9`]: one module per claim: analysis, verdict rules,
//!   figure. C1, C2 and C9 are judged at each context length N of their runs ([`ladder`]).
//! - [`params`]: the commands' parameters.
//! - [`EvalStage`]: the pipeline stage (`icl-eval run --task F`, `icl-eval check`).

pub mod c1;
pub mod c2;
pub mod c7;
pub mod c8;
pub mod c9;
pub mod params;
pub use icl_claim::frame::run_labels;
pub use icl_claim::{claim, floor, frame, kstar, ladder, sigmoid, stage_io, stats};

use anyhow::{bail, ensure, Context, Result};
use icl_store::task::{ParamError, Stage, TaskSpec};
use params::{check, C1Params, C2Params, C7Params, C9Params};
use stage_io::{errs, input_paths, params, unknown_command};
use std::path::PathBuf;

pub const COMMANDS: [&str; 5] = ["c1", "c2", "c7", "c8", "c9"];
/// The `icl-eval` stage.
pub struct EvalStage;

impl Stage for EvalStage {
    fn check(&self, command: &str, params: &serde_json::Value) -> Vec<ParamError> {
        match command {
            "c1" => errs(check::<C1Params>(params)),
            "c2" => errs(check::<C2Params>(params)),
            "c7" | "c8" => errs(check::<C7Params>(params)),
            "c9" => errs(check::<C9Params>(params)),
            other => vec![ParamError::new(
                "command",
                unknown_command(other, &COMMANDS),
            )],
        }
    }

    fn run(&self, task: &TaskSpec) -> Result<()> {
        stage_io::run_claim(task, "icl-eval", run_command)
    }
}

/// Run one claim command on a task's inputs: the claim row and its figure.
pub fn run_command(task: &TaskSpec) -> Result<(claim::Claim, icl_plot::Figure)> {
    Ok(match task.command.as_str() {
        "c1" => {
            let p: C1Params = params(task)?;
            let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
            ladder::judge_frame(&df, |df, _| {
                let a = c1::analyze(df, &p)?;
                Ok((a.claim(&p), a.figure(&p.profile)))
            })?
        }
        "c2" => {
            let p: C2Params = params(task)?;
            // Each curve keeps its N inside the rung too: C2's floor check needs the N values.
            let curves = read_curves(task, p.min_k)?;
            let tagged = curves.into_iter().map(|(n, c)| (n, (n, c))).collect();
            ladder::judge_by_n(tagged, |runs: Vec<(u64, c2::Curve)>| {
                let mut ns: Vec<u64> = runs.iter().map(|(n, _)| *n).collect();
                ns.sort_unstable();
                ns.dedup();
                let a = c2::analyze(runs.into_iter().map(|(_, c)| c).collect(), &ns, &p)?;
                Ok((a.claim(&p), a.figure(&p)))
            })?
        }
        "c7" => {
            let p: C7Params = params(task)?;
            let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
            let a = c7::analyze(&df, &p)?;
            (a.claim(&p), a.figure(&p))
        }
        "c8" => {
            let p: C7Params = params(task)?;
            let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
            let a = c8::analyze(&df, &p)?;
            (a.claim(&p), a.figure(&p))
        }
        "c9" => {
            let p: C9Params = params(task)?;
            let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
            ladder::judge_frame(&df, |df, _| {
                let a = c9::analyze(df, &p)?;
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

/// C2's curves, each with its run's context length N.
type CurvesWithN = Vec<(u64, c2::Curve)>;

/// Curves of `c2` with their run's N, labelled and selected (see [`params::C2Params::min_k`])
/// from the summaries (same order and count as the curves).
fn read_curves(task: &TaskSpec, min_k: Option<i64>) -> Result<CurvesWithN> {
    let paths = input_paths(task, "curves")?;
    let selected: Vec<(PathBuf, String, u64)> = match task.inputs_all("summaries") {
        [] => bail!(
            "stage {}: c2 needs the runs' `summaries` (same order as the curves): their N sets the label-count floor the plateau threshold must clear",
            task.stage
        ),
        refs => {
            ensure!(
                refs.len() == paths.len(),
                "stage {}: {} summaries for {} curves; they must pair up in order",
                task.stage,
                refs.len(),
                paths.len()
            );
            let df = frame::read_stacked(&refs.iter().map(|r| r.path.clone()).collect::<Vec<_>>())?;
            let labels = run_labels(&df)?;
            let keep = select_by_k(&df, min_k)?;
            ensure!(
                keep.iter().any(|&k| k),
                "stage {}: no run has K >= {} (min_k)",
                task.stage,
                min_k.unwrap_or(0)
            );
            let n = frame::f64s(&df, "N")?;
            paths
                .iter()
                .zip(labels)
                .zip(keep)
                .zip(n)
                .filter(|((_, k), _)| *k)
                .map(|(((p, l), _), n)| (p.clone(), l, n as u64))
                .collect()
        }
    };
    let curves = selected
        .into_iter()
        .map(|(p, l, n)| {
            let df = frame::read_df(&p)?;
            Ok((
                n,
                c2::Curve::from_frame(&df, l).with_context(|| format!("curve {}", p.display()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(curves)
}

/// Which runs `c2` uses: K >= `min_k` (K = inf, a null K, counts as above); without `min_k`,
/// the runs at the largest K (inf if present). All runs when there is no K column.
pub fn select_by_k(df: &polars::prelude::DataFrame, min_k: Option<i64>) -> Result<Vec<bool>> {
    let Ok(k) = frame::f64s(df, "K") else {
        return Ok(vec![true; df.height()]);
    };
    let k: Vec<f64> = k
        .into_iter()
        .map(|v| if v.is_nan() { f64::INFINITY } else { v })
        .collect();
    Ok(match min_k {
        Some(m) => k.iter().map(|&v| v >= m as f64).collect(),
        None => {
            let top = k.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            k.iter().map(|&v| v == top).collect()
        }
    })
}
