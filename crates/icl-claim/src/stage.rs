//! A claim as a stage command, written once for every claim crate.
//!
//! Each claim implements [`PaperClaim`] in its own file (name, parameters, analyze, claim,
//! figure); its family's binary lists the claims in one slice and hands it to [`ClaimStage`],
//! which is the whole stage: `check` (parse + validate, errors mapped to the YAML line by the
//! runner) and `run` (declared outputs, parameters, analysis, claim row, figures).

use crate::claim::{self, Claim};
use crate::ladder::Rungs;
use crate::params::{check, Validate};
use anyhow::{bail, ensure, Result};
use icl_plot::Figure;
use icl_store::task::{ParamError, Stage, TaskSpec};
use std::path::{Path, PathBuf};

/// Outputs a claim task may declare; `claim` is required.
pub const OUTPUTS: [&str; 3] = ["claim", "figure_png", "figure_svg"];

/// One paper claim. Implement it on a unit struct in the claim's file and add that struct to
/// its family's `CLAIMS` slice (ARCHITECTURE.md, "Adding a claim").
pub trait PaperClaim: Sync {
    /// Its command in pipeline.yaml (`c1`).
    const COMMAND: &'static str;
    /// Its parameters: unknown keys are rejected, then [`Validate`] checks the values.
    type Params: serde::de::DeserializeOwned + Validate;
    /// What the claim row and the figure are built from.
    type Analysis: ClaimAnalysis<Self::Params>;
    /// Read the task's inputs and analyse them: one analysis, or one per context length N for a
    /// claim judged on the scale ladder ([`crate::ladder`]).
    fn analyze(task: &TaskSpec, p: &Self::Params) -> Result<Rungs<Self::Analysis>>;
}

/// A claim's analysis states the claim and draws its figure.
pub trait ClaimAnalysis<P> {
    /// The claim row: number, interval, checks and verdict.
    fn claim(&self, p: &P) -> Claim;
    /// The claim's figure.
    fn figure(&self, p: &P) -> Figure;
}

/// A [`PaperClaim`] behind a vtable, so one slice can list a family's claims.
pub trait Command: Sync {
    fn name(&self) -> &'static str;
    fn check(&self, params: &serde_json::Value) -> Vec<ParamError>;
    /// Analyse and judge: the claim row and its figure.
    fn evaluate(&self, task: &TaskSpec) -> Result<(Claim, Figure)>;
}

impl<C: PaperClaim> Command for C {
    fn name(&self) -> &'static str {
        C::COMMAND
    }
    fn check(&self, params: &serde_json::Value) -> Vec<ParamError> {
        check::<C::Params>(params).err().unwrap_or_default()
    }
    fn evaluate(&self, task: &TaskSpec) -> Result<(Claim, Figure)> {
        let p: C::Params = params(task)?;
        Ok(C::analyze(task, &p)?.judge(|a| (a.claim(&p), a.figure(&p))))
    }
}

/// A claim family's stage binary: `main` is `stage_main(ClaimStage { bin, claims })`.
pub struct ClaimStage {
    /// The binary's name, for errors.
    pub bin: &'static str,
    pub claims: &'static [&'static dyn Command],
}

impl ClaimStage {
    fn find(&self, command: &str) -> Result<&'static dyn Command, String> {
        self.claims
            .iter()
            .copied()
            .find(|c| c.name() == command)
            .ok_or_else(|| {
                let names: Vec<&str> = self.claims.iter().map(|c| c.name()).collect();
                format!("unknown command `{command}`; allowed: {}", names.join(", "))
            })
    }

    /// The claim row and figure of a task, without writing them.
    pub fn evaluate(&self, task: &TaskSpec) -> Result<(Claim, Figure)> {
        match self.find(&task.command) {
            Ok(c) => c.evaluate(task),
            Err(e) => bail!("stage {}: {e}", task.stage),
        }
    }
}

impl Stage for ClaimStage {
    fn check(&self, command: &str, params: &serde_json::Value) -> Vec<ParamError> {
        match self.find(command) {
            Ok(c) => c.check(params),
            Err(e) => vec![ParamError::new("command", e)],
        }
    }

    /// Reject outputs a claim does not produce, evaluate, write the declared outputs.
    fn run(&self, task: &TaskSpec) -> Result<()> {
        check_outputs(task, self.bin, &OUTPUTS)?;
        ensure!(
            task.outputs.iter().any(|o| o == "claim"),
            "stage {}: declare output `claim`",
            task.stage
        );
        let (mut c, figure) = self.evaluate(task)?;
        c.details = claim::normalize_details(&c.details)?;
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

/// An optional single input: `None` when undeclared or empty, an error when given more than once.
pub fn optional_input<'a>(task: &'a TaskSpec, name: &str) -> Result<Option<&'a Path>> {
    match task.inputs_all(name) {
        [] => Ok(None),
        [one] => Ok(Some(&one.path)),
        many => bail!(
            "stage {}: input `{name}` has {} artifacts, expected at most one",
            task.stage,
            many.len()
        ),
    }
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
