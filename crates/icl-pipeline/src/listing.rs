//! `icl plan` (hidden): every task of one profile with what its cache key is made of, so that
//! two ways of writing pipeline.yaml can be compared task by task without running anything.
//!
//! A task's real key needs its inputs' hashes, known only once upstream has run. The `digest`
//! stands in for it: the same [`KeyComponents`] hashed the same way, with each input hash
//! replaced by the upstream task's digest and output name. Equal digests for every task of two
//! plans mean equal keys for every task, whatever the store holds; `key` adds the real key where
//! the store already knows it.

use crate::app::Ctx;
use crate::key::{KeyComponents, KeyInput, KEY_SCHEME};
use crate::plan::Plan;
use crate::state::{probe, Probe};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskListing {
    pub task: String,
    pub stage: String,
    pub bin: String,
    pub command: String,
    pub code: String,
    pub params: Value,
    /// Per declared input: the upstream `task/output`s that feed it, in order.
    pub inputs: Vec<(String, Vec<String>)>,
    pub threads: usize,
    pub publish: Vec<(String, String)>,
    pub digest: String,
    /// The cache key, when the store knows every input of the task.
    pub key: Option<String>,
}

/// Digest of every task (see the module docs), in plan order.
pub fn digests(plan: &Plan, codes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(plan.tasks.len());
    for task in &plan.tasks {
        let stage = &plan.res.stages[task.stage];
        let inputs = task
            .inputs
            .iter()
            .map(|(name, feeds)| KeyInput {
                name: name.clone(),
                // Plan order is topological: upstream digests are already known.
                hashes: feeds
                    .iter()
                    .map(|(u, o)| format!("{}:{o}", out[*u]))
                    .collect(),
            })
            .collect();
        let comps = KeyComponents {
            scheme: KEY_SCHEME,
            stage: stage.name.clone(),
            command: stage.command.clone(),
            code: codes[task.stage].clone(),
            params: Value::Object(task.params.clone()),
            inputs,
        };
        out.push(comps.key());
    }
    out
}

/// The listing of one profile, without real keys.
pub fn listing(plan: &Plan, codes: &[String]) -> Vec<TaskListing> {
    let digests = digests(plan, codes);
    plan.tasks
        .iter()
        .enumerate()
        .map(|(t, task)| {
            let stage = &plan.res.stages[task.stage];
            TaskListing {
                task: plan.label(t),
                stage: stage.name.clone(),
                bin: stage.bin.clone(),
                command: stage.command.clone(),
                code: codes[task.stage].clone(),
                params: Value::Object(task.params.clone()),
                inputs: task
                    .inputs
                    .iter()
                    .map(|(n, feeds)| {
                        let refs = feeds
                            .iter()
                            .map(|(u, o)| format!("{}/{o}", plan.label(*u)))
                            .collect();
                        (n.clone(), refs)
                    })
                    .collect(),
                threads: stage.threads,
                publish: stage.publish.clone(),
                digest: digests[t].clone(),
                key: None,
            }
        })
        .collect()
}

/// `icl plan --json`: the listing with the real keys the store knows.
pub fn plan_json(ctx: &Ctx) -> anyhow::Result<String> {
    let plan = &ctx.plan;
    let probes = probe(plan, &ctx.store, &ctx.codes, &vec![true; plan.tasks.len()])?;
    let mut rows = listing(plan, &ctx.codes);
    for (row, p) in rows.iter_mut().zip(&probes) {
        row.key = match p {
            Probe::Cached { key, .. } | Probe::ToRun { key, .. } => Some(key.clone()),
            _ => None,
        };
    }
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "profile": plan.res.profile,
        "tasks": rows,
    }))?)
}
