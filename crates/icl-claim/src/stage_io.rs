//! What every claim stage does around its analysis, written once for the claim crates
//! (`icl-eval`, `icl-transience`): check the declared outputs, parse and validate the
//! parameters, resolve inputs to object paths, write the claim row and the figure.

use crate::claim::{self, Claim};
use crate::params::{check, Validate};
use anyhow::{ensure, Result};
use icl_store::task::{ParamError, TaskSpec};
use std::path::PathBuf;

/// Outputs a claim task may declare; `claim` is required.
pub const OUTPUTS: [&str; 3] = ["claim", "figure_png", "figure_svg"];

/// The parameter errors of a `check`, empty when the parameters are valid.
pub fn errs<T>(r: Result<T, Vec<ParamError>>) -> Vec<ParamError> {
    r.err().unwrap_or_default()
}

/// The error for a command a claim binary does not have.
pub fn unknown_command(c: &str, commands: &[&str]) -> String {
    format!("unknown command `{c}`; allowed: {}", commands.join(", "))
}

/// Parse and validate a task's parameters, naming the stage in the error.
pub fn params<T: serde::de::DeserializeOwned + Validate>(task: &TaskSpec) -> Result<T> {
    check::<T>(&task.params).map_err(|e| {
        let msgs: Vec<String> = e.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "stage {}: invalid parameters: {}",
            task.stage,
            msgs.join("; ")
        )
    })
}

/// The object paths of input `name` (a single reference or a gather), which must be non-empty.
pub fn input_paths(task: &TaskSpec, name: &str) -> Result<Vec<PathBuf>> {
    let refs = task.inputs_all(name);
    ensure!(
        !refs.is_empty(),
        "stage {}: input `{name}` is missing or empty (declared: {})",
        task.stage,
        task.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(refs.iter().map(|r| r.path.clone()).collect())
}

/// Reject a declared output `bin` does not produce (`allowed` lists what it does).
pub fn check_outputs(task: &TaskSpec, bin: &str, allowed: &[&str]) -> Result<()> {
    for o in &task.outputs {
        ensure!(
            allowed.contains(&o.as_str()),
            "stage {}: output `{o}` is not produced by {bin} (allowed: {})",
            task.stage,
            allowed.join(", ")
        );
    }
    Ok(())
}

/// The body of a claim stage's `run`: reject outputs `bin` does not produce, compute the claim
/// and its figure with `analyze`, and write the declared outputs.
pub fn run_claim(
    task: &TaskSpec,
    bin: &str,
    analyze: impl FnOnce(&TaskSpec) -> Result<(Claim, icl_plot::Figure)>,
) -> Result<()> {
    check_outputs(task, bin, &OUTPUTS)?;
    ensure!(
        task.outputs.iter().any(|o| o == "claim"),
        "stage {}: declare output `claim`",
        task.stage
    );
    let (c, figure) = analyze(task)?;
    claim::write(
        &task.output_path("claim", "parquet"),
        std::slice::from_ref(&c),
    )?;
    if task.outputs.iter().any(|o| o == "figure_png") {
        figure.save_png(&task.output_path("figure_png", "png"))?;
    }
    if task.outputs.iter().any(|o| o == "figure_svg") {
        figure.save_svg(&task.output_path("figure_svg", "svg"))?;
    }
    Ok(())
}
