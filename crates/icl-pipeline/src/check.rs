//! Science-parameter validation through each stage binary's `check` subcommand (the stage
//! protocol in ARCHITECTURE.md), with every error mapped back to the YAML line the value came
//! from.

use crate::config::Config;
use crate::error::{ConfigError, ConfigErrors};
use crate::key::canonical_json;
use crate::plan::{show, Plan};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Deserialize)]
struct Answer {
    index: usize,
    key: String,
    message: String,
}

/// Where a stage binary lives.
pub fn bin_path(bin_dir: &Path, bin: &str) -> PathBuf {
    bin_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX))
}

/// Binaries that must exist for the plan to run: one error per missing binary.
pub fn missing_binaries(cfg: &Config, plan: &Plan, bin_dir: &Path) -> Vec<ConfigError> {
    let mut seen = BTreeMap::new();
    for s in &plan.res.stages {
        seen.entry(s.bin.clone())
            .or_insert_with(|| s.yaml(&["bin"]));
    }
    seen.iter()
        .filter(|(bin, _)| !bin_path(bin_dir, bin).is_file())
        .map(|(bin, stage)| {
            cfg.err_at(
                stage,
                format!(
                    "stage binary `{bin}` not found in {} (allowed: a binary built next to `icl`; run `cargo build --release --bins`)",
                    bin_dir.display()
                ),
            )
        })
        .collect()
}

/// Ask every stage binary to validate the params of all its tasks.
pub fn check_params(cfg: &Config, plan: &Plan, bin_dir: &Path) -> Result<(), ConfigErrors> {
    let missing = missing_binaries(cfg, plan, bin_dir);
    if !missing.is_empty() {
        return Err(ConfigErrors(missing));
    }
    let mut by_bin: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (t, task) in plan.tasks.iter().enumerate() {
        by_bin
            .entry(plan.res.stages[task.stage].bin.as_str())
            .or_default()
            .push(t);
    }
    let mut errs: Vec<ConfigError> = Vec::new();
    // (yaml path, message) -> task labels, so one bad value shared by 100 tasks is one error.
    let mut grouped: BTreeMap<(Vec<String>, String), (String, Vec<String>)> = BTreeMap::new();
    for (bin, tasks) in by_bin {
        // Identical (command, params) pairs are checked once.
        let mut items: Vec<Value> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for &t in &tasks {
            let task = &plan.tasks[t];
            let item = serde_json::json!({
                "command": plan.res.stages[task.stage].command,
                "params": Value::Object(task.params.clone()),
            });
            let c = canonical_json(&item);
            match seen.get(&c) {
                Some(&i) => owners[i].push(t),
                None => {
                    seen.insert(c, items.len());
                    items.push(item);
                    owners.push(vec![t]);
                }
            }
        }
        let first_bin = plan.res.stages[plan.tasks[tasks[0]].stage].yaml(&["bin"]);
        let answers = match run_check(&bin_path(bin_dir, bin), &Value::Array(items)) {
            Ok(a) => a,
            Err(e) => {
                errs.push(cfg.err_at(&first_bin, format!("`{bin} check` failed: {e:#}")));
                continue;
            }
        };
        for a in answers {
            let Some(owner) = owners.get(a.index) else {
                errs.push(cfg.err_at(
                    &first_bin,
                    format!(
                        "`{bin} check` answered for item {} of {}",
                        a.index,
                        owners.len()
                    ),
                ));
                continue;
            };
            for &t in owner {
                let task = &plan.tasks[t];
                let stage = &plan.res.stages[task.stage];
                // `command` is reported by stage binaries for an unknown command.
                let path = if a.key == "command" && !task.params.contains_key("command") {
                    stage.yaml(&["command"])
                } else {
                    plan.res.param_yaml_path(stage, &a.key)
                };
                let mut message = a.message.clone();
                if let Some(v) = lookup(&task.params, &a.key) {
                    let shown = show(v);
                    if !message.contains(&shown) {
                        message.push_str(&format!(" (got {shown})"));
                    }
                }
                let e = grouped
                    .entry((path, message))
                    .or_insert_with(|| (bin.to_string(), Vec::new()));
                e.1.push(plan.label(t));
            }
        }
    }
    for ((path, message), (bin, labels)) in grouped {
        let who = match labels.len() {
            1 => format!("task {}", labels[0]),
            n => format!("task {} and {} more", labels[0], n - 1),
        };
        errs.push(cfg.err_at(
            &path,
            format!("{message} [reported by `{bin} check` for {who}]"),
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errs))
    }
}

/// A dotted key inside the params.
fn lookup<'a>(params: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    let mut segs = key.split('.');
    let mut cur = params.get(segs.next()?)?;
    for s in segs {
        cur = cur.as_object()?.get(s)?;
    }
    Some(cur)
}

fn run_check(bin: &Path, items: &Value) -> anyhow::Result<Vec<Answer>> {
    let mut child = Command::new(bin)
        .arg("check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
    let input = serde_json::to_vec(items)?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Write from another thread: a large input must not deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!("{} ({})", err.trim(), out.status);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow::anyhow!(
            "expected a JSON array of {{index, key, message}} on stdout ({e}): {}",
            String::from_utf8_lossy(&out.stdout).trim()
        )
    })
}
