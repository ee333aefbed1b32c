//! The stage protocol: what the `icl` runner hands a stage binary, and how a stage binary answers.
//!
//! `BIN run --task TASK.json` runs one task; `BIN check` reads `[{"command", "params"}, ...]` on
//! stdin and prints `[{"index", "key", "message"}, ...]` (see ARCHITECTURE.md).

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One task, as written by the runner to `TASK.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Stage name in pipeline.yaml.
    pub stage: String,
    /// Sub-job of the binary, e.g. `items`.
    pub command: String,
    /// Resolved parameters: a flat JSON object.
    pub params: serde_json::Value,
    /// One entry per declared input; a gathered input (`stage.output[*]`) has many refs.
    pub inputs: BTreeMap<String, Vec<InputRef>>,
    /// Declared output names; each must be written as `out_dir/<name>.<ext>`.
    pub outputs: Vec<String>,
    /// Scratch folder, empty at start; the runner moves its files into the store on success.
    pub out_dir: PathBuf,
    /// A folder that survives an interrupted task (for mid-run checkpoints); removed on success.
    #[serde(default)]
    pub resume_dir: Option<PathBuf>,
    /// Threads the task may use.
    #[serde(default = "one")]
    pub threads: usize,
}

fn one() -> usize {
    1
}

/// An input artifact: its path in the store and its blake3 (already verified by the runner).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InputRef {
    pub path: PathBuf,
    pub hash: String,
}

/// A parameter error, keyed by the parameter's name (a dotted path for nested values).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParamError {
    pub key: String,
    pub message: String,
}

impl ParamError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl TaskSpec {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read task file {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("invalid task file {}", path.display()))
    }

    /// The single artifact of input `name`.
    pub fn input(&self, name: &str) -> anyhow::Result<&Path> {
        match self.inputs.get(name).map(Vec::as_slice) {
            Some([one]) => Ok(&one.path),
            Some(many) => anyhow::bail!(
                "stage {}: input `{name}` has {} artifacts, expected exactly one",
                self.stage,
                many.len()
            ),
            None => anyhow::bail!(
                "stage {}: input `{name}` is not declared (declared: {})",
                self.stage,
                self.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// All artifacts of input `name` (empty if undeclared).
    pub fn inputs_all(&self, name: &str) -> &[InputRef] {
        self.inputs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Where to write output `name` with extension `ext` (no dot).
    pub fn output_path(&self, name: &str, ext: &str) -> PathBuf {
        self.out_dir.join(format!("{name}.{ext}"))
    }

    /// The parameters as a typed struct.
    pub fn params_as<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        check_params(&self.params).map_err(|errs| {
            let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(
                "stage {}: invalid parameters: {}",
                self.stage,
                msgs.join("; ")
            )
        })
    }
}

/// Deserialize parameters, turning serde's error into a [`ParamError`] that names the key.
pub fn check_params<T: DeserializeOwned>(params: &serde_json::Value) -> Result<T, Vec<ParamError>> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde reports unknown fields at the parent path; pull the field name out of the message.
        let key = if let Some(rest) = inner.strip_prefix("unknown field `") {
            rest.split('`').next().unwrap_or("").to_string()
        } else if let Some(rest) = inner.strip_prefix("missing field `") {
            rest.split('`').next().unwrap_or("").to_string()
        } else if path == "." {
            String::new()
        } else {
            path
        };
        vec![ParamError::new(key, inner)]
    })
}

/// What a stage binary implements.
pub trait Stage {
    /// Validate `params` for `command`; an empty list means valid.
    fn check(&self, command: &str, params: &serde_json::Value) -> Vec<ParamError>;
    /// Run one task, writing every declared output into `task.out_dir`.
    fn run(&self, task: &TaskSpec) -> anyhow::Result<()>;
}

#[derive(Deserialize)]
struct CheckItem {
    command: String,
    params: serde_json::Value,
}

#[derive(Serialize)]
struct CheckAnswer<'a> {
    index: usize,
    key: &'a str,
    message: &'a str,
}

fn usage(bin: &str) -> ExitCode {
    eprintln!(
        "usage: {bin} run --task TASK.json   (run one pipeline task)\n       {bin} check              (validate parameters read as JSON on stdin)"
    );
    ExitCode::from(2)
}

/// Handle `run --task F` and `check`; `None` if `args[1]` is neither (so a binary can offer more
/// subcommands of its own).
pub fn dispatch<S: Stage>(stage: &S, args: &[String]) -> Option<ExitCode> {
    let bin = args.first().map(String::as_str).unwrap_or("stage");
    match args.get(1).map(String::as_str) {
        Some("run") => Some(match args.get(2..) {
            Some([flag, path]) if flag == "--task" => {
                let result = TaskSpec::read(Path::new(path)).and_then(|task| {
                    stage.run(&task)?;
                    verify_outputs(&task)
                });
                match result {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            }
            _ => usage(bin),
        }),
        Some("check") => Some(match run_check(stage) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        }),
        _ => None,
    }
}

/// A stage binary's whole `main`.
pub fn stage_main<S: Stage>(stage: S) -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    dispatch(&stage, &args)
        .unwrap_or_else(|| usage(args.first().map(String::as_str).unwrap_or("stage")))
}

fn run_check<S: Stage>(stage: &S) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read stdin")?;
    let items: Vec<CheckItem> =
        serde_json::from_str(&input).context("check expects a JSON array of {command, params}")?;
    let errors: Vec<(usize, ParamError)> = items
        .iter()
        .enumerate()
        .flat_map(|(i, item)| {
            stage
                .check(&item.command, &item.params)
                .into_iter()
                .map(move |e| (i, e))
        })
        .collect();
    let answers: Vec<CheckAnswer> = errors
        .iter()
        .map(|(i, e)| CheckAnswer {
            index: *i,
            key: &e.key,
            message: &e.message,
        })
        .collect();
    println!("{}", serde_json::to_string(&answers)?);
    Ok(())
}

/// A stage must write every declared output; catching a missing one here gives a clear message
/// instead of a confusing one from the runner.
fn verify_outputs(task: &TaskSpec) -> anyhow::Result<()> {
    for name in &task.outputs {
        let found = std::fs::read_dir(&task.out_dir)
            .with_context(|| format!("cannot list {}", task.out_dir.display()))?
            .filter_map(Result::ok)
            .any(|e| {
                let file_name = e.file_name();
                let s = file_name.to_string_lossy();
                s.split_once('.')
                    .map(|(stem, _)| stem == name)
                    .unwrap_or(false)
                    && !s.ends_with(".partial")
            });
        anyhow::ensure!(
            found,
            "stage {} did not write its declared output `{name}`",
            task.stage
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct P {
        #[serde(rename = "K")]
        k: u32,
        lr: f64,
    }

    #[test]
    fn check_params_names_the_key() {
        let ok: P = check_params(&serde_json::json!({"K": 4, "lr": 0.1})).unwrap();
        assert_eq!(ok.k, 4);
        let e = check_params::<P>(&serde_json::json!({"K": "x", "lr": 0.1})).unwrap_err();
        assert_eq!(e[0].key, "K");
        let e = check_params::<P>(&serde_json::json!({"K": 1, "lr": 0.1, "lrr": 2})).unwrap_err();
        assert_eq!(e[0].key, "lrr");
        assert!(e[0].message.contains("expected `K` or `lr`"));
        let e = check_params::<P>(&serde_json::json!({"K": 1})).unwrap_err();
        assert_eq!(e[0].key, "lr");
    }

    #[test]
    fn task_roundtrip_and_inputs() {
        let mut inputs = BTreeMap::new();
        inputs.insert(
            "items".to_string(),
            vec![InputRef {
                path: "/a/b.parquet".into(),
                hash: "h".into(),
            }],
        );
        let t = TaskSpec {
            stage: "s".into(),
            command: "c".into(),
            params: serde_json::json!({"K": 2}),
            inputs,
            outputs: vec!["o".into()],
            out_dir: "/tmp/x".into(),
            resume_dir: None,
            threads: 1,
        };
        let back: TaskSpec = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(t.input("items").unwrap(), Path::new("/a/b.parquet"));
        assert!(t.input("nope").is_err());
        assert_eq!(
            t.output_path("o", "parquet"),
            PathBuf::from("/tmp/x/o.parquet")
        );
    }
}
