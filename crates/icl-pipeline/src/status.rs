//! `icl status` (what is cached, what would run, what waits on upstream) and `icl why STAGE`
//! (which key component changed since the last run of each matrix point). Both are read-only and
//! take no lock.

use crate::app::Ctx;
use crate::error::CliError;
use crate::key::KeyComponents;
use crate::plan::{label, show};
use crate::state::{probe, Lookup, Probe};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct StageStatus {
    pub stage: String,
    pub tasks: usize,
    pub cached: usize,
    pub to_run: usize,
    pub blocked: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub profile: String,
    pub store: String,
    pub stages: Vec<StageStatus>,
    pub total: StageStatus,
}

pub fn status_report(ctx: &Ctx) -> anyhow::Result<StatusReport> {
    let plan = &ctx.plan;
    let probes = probe(plan, &ctx.store, &ctx.codes, &vec![true; plan.tasks.len()])?;
    let mut stages = Vec::new();
    let mut total = StageStatus {
        stage: "total".into(),
        ..Default::default()
    };
    for (si, s) in plan.res.stages.iter().enumerate() {
        let mut row = StageStatus {
            stage: s.name.clone(),
            ..Default::default()
        };
        for &t in &plan.by_stage[si] {
            row.tasks += 1;
            match &probes[t] {
                Probe::Cached { .. } => row.cached += 1,
                Probe::ToRun { .. } => row.to_run += 1,
                Probe::Blocked { .. } => row.blocked += 1,
                Probe::Skipped => {}
            }
        }
        total.tasks += row.tasks;
        total.cached += row.cached;
        total.to_run += row.to_run;
        total.blocked += row.blocked;
        stages.push(row);
    }
    Ok(StatusReport {
        profile: plan.res.profile.clone(),
        store: ctx.store.root().display().to_string(),
        stages,
        total,
    })
}

pub fn status(ctx: &Ctx, json: bool) -> Result<(), CliError> {
    let rep = status_report(ctx)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rep).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    println!("profile {} (store {})", rep.profile, rep.store);
    let w = rep
        .stages
        .iter()
        .map(|s| s.stage.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<w$}  {:>6}  {:>6}  {:>6}  {:>20}",
        "stage", "tasks", "cached", "to run", "blocked on upstream"
    );
    for s in rep.stages.iter().chain(std::iter::once(&rep.total)) {
        println!(
            "{:<w$}  {:>6}  {:>6}  {:>6}  {:>20}",
            s.stage, s.tasks, s.cached, s.to_run, s.blocked
        );
    }
    Ok(())
}

/// One task of `icl why`.
#[derive(Debug, Clone, Serialize)]
pub struct WhyTask {
    pub task: String,
    /// "cached", "to_run" or "blocked".
    pub state: String,
    /// What changed since the last run of this point (empty when cached).
    pub reasons: Vec<String>,
}

pub fn why_report(ctx: &Ctx, stage_name: &str) -> Result<Vec<WhyTask>, CliError> {
    let plan = &ctx.plan;
    let si = plan
        .res
        .stage_index(stage_name, &format!("no stage `{stage_name}`"))?;
    let stage = &plan.res.stages[si];
    let probes = probe(plan, &ctx.store, &ctx.codes, &vec![true; plan.tasks.len()])?;
    let mut out = Vec::new();
    for &t in &plan.by_stage[si] {
        let task = &plan.tasks[t];
        let lbl = plan.label(t);
        let (state, reasons) = match &probes[t] {
            Probe::Cached { .. } => ("cached", Vec::new()),
            Probe::ToRun { comps, lookup, .. } => {
                let reasons = match lookup {
                    Lookup::BadObjects(_, bad) => bad
                        .iter()
                        .map(|(name, obj, st)| {
                            format!(
                                "output `{name}` ({}) is {}",
                                ctx.store.object_path(obj).display(),
                                match st {
                                    icl_store::store::ObjectState::Missing => "missing".to_string(),
                                    icl_store::store::ObjectState::Corrupt { .. } =>
                                        "corrupt".to_string(),
                                    icl_store::store::ObjectState::Ok => "ok".to_string(),
                                }
                            )
                        })
                        .collect(),
                    _ => explain_vs_last(ctx, t, comps, &[])?,
                };
                ("to_run", reasons)
            }
            Probe::Blocked { waiting_on } => {
                // Inputs are unknown until upstream runs: compare the rest, name the upstream.
                let partial = KeyComponents {
                    scheme: crate::key::KEY_SCHEME,
                    stage: stage.name.clone(),
                    command: stage.command.clone(),
                    code: ctx.codes[task.stage].clone(),
                    params: Value::Object(task.params.clone()),
                    inputs: Vec::new(),
                };
                let pending: Vec<String> = waiting_on
                    .iter()
                    .filter(|&&u| !probes[u].is_cached())
                    .map(|&u| plan.label(u))
                    .collect();
                ("blocked", explain_vs_last(ctx, t, &partial, &pending)?)
            }
            Probe::Skipped => continue,
        };
        out.push(WhyTask {
            task: lbl,
            state: state.into(),
            reasons,
        });
    }
    Ok(out)
}

pub fn why(ctx: &Ctx, stage_name: &str, json: bool) -> Result<(), CliError> {
    let rep = why_report(ctx, stage_name)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rep).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    let cached = rep.iter().filter(|w| w.state == "cached").count();
    println!(
        "{stage_name} (profile {}): {} task(s), {} cached, {} would run",
        ctx.plan.res.profile,
        rep.len(),
        cached,
        rep.len() - cached
    );
    for w in rep.iter().filter(|w| w.state != "cached") {
        println!("{}:", w.task);
        for r in &w.reasons {
            println!("  - {r}");
        }
    }
    Ok(())
}

/// Compare a task's key components with the last record of the same matrix point (or, for a
/// point that is new because a matrix value was edited, with the point that held its place).
/// `pending`: upstream tasks that must run first (inputs unknown).
fn explain_vs_last(
    ctx: &Ctx,
    t: usize,
    now: &KeyComponents,
    pending: &[String],
) -> anyhow::Result<Vec<String>> {
    let plan = &ctx.plan;
    let task = &plan.tasks[t];
    let stage = &plan.res.stages[task.stage];
    let mut reasons = Vec::new();
    let mut note = None;
    let mut entry = ctx.store.read_index(&stage.name, &task.point_id)?;
    if entry.is_none() && !task.point.is_empty() {
        // Points of this stage's current matrix, to find index entries whose point is gone.
        let current: Vec<Value> = plan.by_stage[task.stage]
            .iter()
            .map(|&u| plan.tasks[u].point_json())
            .collect();
        let gone: Vec<_> = ctx
            .store
            .index_entries(&stage.name)?
            .into_iter()
            .filter(|(_, e)| e.position == task.position && !current.contains(&e.point))
            .collect();
        if let [(_, e)] = gone.as_slice() {
            let old_point: Vec<(String, Value)> = e
                .point
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            note = Some(format!(
                "this point is new; compared with {}, which held its place in the matrix",
                label(&stage.name, &old_point)
            ));
            entry = Some(e.clone());
        }
    }
    let Some(entry) = entry else {
        reasons.push("never run".to_string());
        reasons.extend(waits_on(pending));
        return Ok(reasons);
    };
    let Some(rec) = ctx.store.read_record(&stage.name, &entry.key)? else {
        reasons.push(format!(
            "the last run's record ({}) no longer exists (garbage-collected?)",
            short(&entry.key)
        ));
        return Ok(reasons);
    };
    let old: KeyComponents = match serde_json::from_value(rec.components.clone()) {
        Ok(c) => c,
        Err(_) => {
            reasons.push("the last run was recorded under an older key scheme".to_string());
            return Ok(reasons);
        }
    };
    if old.scheme != now.scheme {
        reasons.push(format!("key scheme: {} -> {}", old.scheme, now.scheme));
    }
    if old.command != now.command {
        reasons.push(format!("command: {} -> {}", old.command, now.command));
    }
    if old.code != now.code {
        reasons.push(format!(
            "code fingerprint (crates/{} and its workspace dependencies): {} -> {}",
            stage.bin,
            short(&old.code),
            short(&now.code)
        ));
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &old.params, &mut a);
    flatten("", &now.params, &mut b);
    for k in a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => reasons.push(format!(
                "param {k}: {} -> {}",
                x.map(show).unwrap_or_else(|| "(unset)".into()),
                y.map(show).unwrap_or_else(|| "(unset)".into())
            )),
        }
    }
    if pending.is_empty() {
        let old_in: BTreeMap<&str, &Vec<String>> = old
            .inputs
            .iter()
            .map(|i| (i.name.as_str(), &i.hashes))
            .collect();
        let new_in: BTreeMap<&str, &Vec<String>> = now
            .inputs
            .iter()
            .map(|i| (i.name.as_str(), &i.hashes))
            .collect();
        for name in old_in
            .keys()
            .chain(new_in.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            match (old_in.get(name), new_in.get(name)) {
                (Some(x), Some(y)) if x == y => {}
                (Some(x), Some(y)) if x.len() == 1 && y.len() == 1 => reasons.push(format!(
                    "input {name}: {} -> {}",
                    short(&x[0]),
                    short(&y[0])
                )),
                (Some(x), Some(y)) if x.len() == y.len() => {
                    let n = x.iter().zip(y.iter()).filter(|(p, q)| p != q).count();
                    reasons.push(format!(
                        "input {name}: {n} of {} artifacts changed",
                        x.len()
                    ))
                }
                (Some(x), Some(y)) => reasons.push(format!(
                    "input {name}: {} -> {} artifacts",
                    x.len(),
                    y.len()
                )),
                (None, Some(_)) => reasons.push(format!("input {name}: new input")),
                (Some(_), None) => reasons.push(format!("input {name}: no longer an input")),
                (None, None) => {}
            }
        }
    } else {
        reasons.extend(waits_on(pending));
    }
    if reasons.is_empty() {
        reasons.push("the key components match the last run, but its record is gone".to_string());
    }
    if let Some(n) = note {
        reasons.push(n);
    }
    Ok(reasons)
}

/// "waits on upstream ..." naming at most three tasks (a gather can wait on hundreds).
fn waits_on(pending: &[String]) -> Option<String> {
    match pending {
        [] => None,
        [one] => Some(format!("waits on upstream {one}, which must run first")),
        _ if pending.len() <= 3 => Some(format!(
            "waits on upstream {}, which must run first",
            pending.join(", ")
        )),
        _ => Some(format!(
            "waits on upstream {} and {} more, which must run first",
            pending[..3].join(", "),
            pending.len() - 3
        )),
    }
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}
