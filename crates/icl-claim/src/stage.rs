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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::Verdict;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    /// A toy claim: its number is `x`, judged once per N of `ns` when there are several.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ToyParams {
        profile: String,
        x: f64,
        #[serde(default)]
        ns: Vec<u64>,
    }
    impl Validate for ToyParams {
        fn validate(&self) -> Vec<ParamError> {
            let mut c = crate::params::Checker::default();
            c.profile(&self.profile);
            c.prob("x", self.x);
            c.errors()
        }
    }
    struct ToyAnalysis(f64);
    impl ClaimAnalysis<ToyParams> for ToyAnalysis {
        fn claim(&self, p: &ToyParams) -> Claim {
            Claim {
                claim: "C99".into(),
                figure: "none".into(),
                statement: "toy".into(),
                paper_value: "-".into(),
                value: self.0,
                low: f64::NAN,
                high: f64::NAN,
                unit: "".into(),
                profile: p.profile.clone(),
                verdict: Verdict::Reproduced,
                n_runs: 1,
                details: serde_json::json!({"x": self.0, "third": 1.0 / 3.0, "bad": f64::NAN})
                    .to_string(),
            }
        }
        fn figure(&self, _: &ToyParams) -> Figure {
            Figure::new("toy")
        }
    }
    struct Toy;
    impl PaperClaim for Toy {
        const COMMAND: &'static str = "c99";
        type Params = ToyParams;
        type Analysis = ToyAnalysis;
        fn analyze(_: &TaskSpec, p: &ToyParams) -> Result<Rungs<ToyAnalysis>> {
            Ok(match p.ns.as_slice() {
                [_, _, ..] => Rungs::PerN(
                    p.ns.iter()
                        .map(|&n| (n, ToyAnalysis(p.x * n as f64)))
                        .collect(),
                ),
                _ => Rungs::Whole(ToyAnalysis(p.x)),
            })
        }
    }
    static CLAIMS: &[&dyn Command] = &[&Toy];
    const STAGE: ClaimStage = ClaimStage {
        bin: "icl-toy",
        claims: CLAIMS,
    };

    fn task(dir: &Path, params: serde_json::Value, outputs: &[&str]) -> TaskSpec {
        TaskSpec {
            stage: "claim_c99".into(),
            command: "c99".into(),
            params,
            inputs: BTreeMap::new(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            out_dir: dir.to_path_buf(),
            resume_dir: None,
            threads: 1,
        }
    }

    #[test]
    fn a_registered_claim_is_checked_run_and_written_by_the_generic_stage() {
        // check: unknown command, unknown key, bad value, all named.
        let e = STAGE.check("c98", &serde_json::json!({}));
        assert_eq!(e[0].key, "command");
        assert!(e[0].message.contains("allowed: c99"), "{}", e[0].message);
        let e = STAGE.check(
            "c99",
            &serde_json::json!({"profile": "q", "x": 0.5, "y": 1}),
        );
        assert_eq!(e[0].key, "y");
        let e = STAGE.check("c99", &serde_json::json!({"profile": "q", "x": 1.5}));
        assert_eq!((e[0].key.as_str(), e.len()), ("x", 1));
        assert!(STAGE
            .check("c99", &serde_json::json!({"profile": "q", "x": 0.5}))
            .is_empty());

        // run: declared outputs only, details normalized, one rung judged as itself.
        let dir = tempfile::tempdir().unwrap();
        let ok = serde_json::json!({"profile": "q", "x": 0.25});
        let bad = task(dir.path(), ok.clone(), &["claim", "checkpoint"]);
        let err = format!("{:#}", STAGE.run(&bad).unwrap_err());
        assert!(
            err.contains("`checkpoint` is not produced by icl-toy"),
            "{err}"
        );
        assert!(STAGE
            .run(&task(dir.path(), ok.clone(), &["figure_png"]))
            .is_err());
        STAGE.run(&task(dir.path(), ok, &["claim"])).unwrap();
        let rows = claim::read(&dir.path().join("claim.parquet")).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].value, 0.25);
        assert_eq!(rows[0].details, r#"{"bad":null,"third":0.333333,"x":0.25}"#);

        // several N: the largest N's number is the claim's, every rung in details.ladder.
        let (c, fig) = STAGE
            .evaluate(&task(
                dir.path(),
                serde_json::json!({"profile": "q", "x": 0.25, "ns": [8, 16]}),
                &["claim"],
            ))
            .unwrap();
        assert_eq!(c.value, 4.0);
        let d: serde_json::Value = serde_json::from_str(&c.details).unwrap();
        assert_eq!(d["ladder"]["headline_N"], 16);
        assert_eq!(d["ladder"]["rows"].as_array().unwrap().len(), 2);
        assert!(fig.title.unwrap().contains("N = 16"));
    }
}
