//! What is cached: the rule shared by `reproduce`, `status`, `why` and `gc`.
//!
//! A task is cached iff its run record `runs/<stage>/<key>.json` exists and every output object
//! it names exists and hashes to its name. A task's key is known once all its inputs are known,
//! i.e. once every upstream task is cached (or has just run).

use crate::key::{KeyComponents, KeyInput, KEY_SCHEME};
use crate::plan::Plan;
use icl_store::store::{ObjectRef, ObjectState, RunRecord, Store};
use std::collections::BTreeMap;

pub type Outputs = BTreeMap<String, ObjectRef>;

/// Result of looking a key up in the store.
#[derive(Debug, Clone)]
pub enum Lookup {
    Hit(RunRecord),
    NoRecord,
    /// The record exists but some outputs are missing or corrupt.
    BadObjects(RunRecord, Vec<(String, ObjectRef, ObjectState)>),
}

pub fn lookup(store: &Store, stage: &str, key: &str) -> anyhow::Result<Lookup> {
    let Some(rec) = store.read_record(stage, key)? else {
        return Ok(Lookup::NoRecord);
    };
    let mut bad = Vec::new();
    for (name, obj) in &rec.outputs {
        let st = store.verify(obj)?;
        if st != ObjectState::Ok {
            bad.push((name.clone(), obj.clone(), st));
        }
    }
    Ok(if bad.is_empty() {
        Lookup::Hit(rec)
    } else {
        Lookup::BadObjects(rec, bad)
    })
}

/// The key components of task `t`, if all its inputs are known.
pub fn components<'a>(
    plan: &Plan,
    t: usize,
    code: &str,
    outputs: impl Fn(usize) -> Option<&'a Outputs>,
) -> Option<KeyComponents> {
    let task = &plan.tasks[t];
    let stage = &plan.res.stages[task.stage];
    let mut inputs = Vec::with_capacity(task.inputs.len());
    for (name, feeds) in &task.inputs {
        let mut hashes = Vec::with_capacity(feeds.len());
        for (up, out) in feeds {
            hashes.push(outputs(*up)?.get(out)?.hash.clone());
        }
        inputs.push(KeyInput {
            name: name.clone(),
            hashes,
        });
    }
    Some(KeyComponents {
        scheme: KEY_SCHEME,
        stage: stage.name.clone(),
        command: stage.command.clone(),
        code: code.to_string(),
        params: serde_json::Value::Object(task.params.clone()),
        inputs,
    })
}

/// A task's state as seen without running anything.
#[derive(Debug, Clone)]
pub enum Probe {
    Cached {
        comps: KeyComponents,
        key: String,
        record: RunRecord,
    },
    /// Key known, not cached.
    ToRun {
        comps: KeyComponents,
        key: String,
        lookup: Lookup,
    },
    /// Waits on upstream tasks that must run first (listed).
    Blocked { waiting_on: Vec<usize> },
    /// Not part of the selection.
    Skipped,
}

impl Probe {
    pub fn is_cached(&self) -> bool {
        matches!(self, Probe::Cached { .. })
    }
}

/// Probe every selected task in plan order (read-only: nothing is deleted or written).
pub fn probe(
    plan: &Plan,
    store: &Store,
    codes: &[String],
    selected: &[bool],
) -> anyhow::Result<Vec<Probe>> {
    let mut outputs: Vec<Option<Outputs>> = vec![None; plan.tasks.len()];
    let mut probes: Vec<Probe> = Vec::with_capacity(plan.tasks.len());
    for (t, task) in plan.tasks.iter().enumerate() {
        if !selected[t] {
            probes.push(Probe::Skipped);
            continue;
        }
        let waiting_on: Vec<usize> = task
            .deps()
            .into_iter()
            .filter(|&d| outputs[d].is_none())
            .collect();
        if !waiting_on.is_empty() {
            probes.push(Probe::Blocked { waiting_on });
            continue;
        }
        let comps = components(plan, t, &codes[task.stage], |u| outputs[u].as_ref())
            .expect("all inputs known");
        let key = comps.key();
        let stage = &plan.res.stages[task.stage].name;
        match lookup(store, stage, &key)? {
            Lookup::Hit(record) => {
                outputs[t] = Some(record.outputs.clone());
                probes.push(Probe::Cached { comps, key, record });
            }
            other => probes.push(Probe::ToRun {
                comps,
                key,
                lookup: other,
            }),
        }
    }
    Ok(probes)
}
