//! `icl gc`: delete what no task of the current pipeline reaches, under any profile: objects,
//! run records, logs, resume folders, and index entries of points that no longer exist.
//!
//! Reachable = the run record of every cached task of every profile (and its output objects and
//! log), plus the log and resume folder of every task whose key is known but that has not
//! finished (so an interrupted long run keeps its checkpoints).

use crate::app::{Ctx, Env};
use crate::config::Config;
use crate::error::CliError;
use crate::lock;
use crate::state::{probe, Probe};
use icl_store::store::list_files;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub objects: Vec<PathBuf>,
    pub object_bytes: u64,
    pub records: Vec<PathBuf>,
    pub logs: Vec<PathBuf>,
    pub resume: Vec<PathBuf>,
    pub index: Vec<PathBuf>,
}

pub fn gc(env: &Env, dry_run: bool, no_wait: bool) -> Result<GcReport, CliError> {
    let cfg = Config::load(&env.file)?;
    let store = env.store(&cfg);
    if !store.root().exists() {
        eprintln!(
            "icl gc: no store at {}; nothing to do",
            store.root().display()
        );
        return Ok(GcReport::default());
    }
    // Lock before computing what is live (a dry run only reads; a real one must not race a
    // runner that is adding records).
    let _lock = if dry_run {
        None
    } else {
        Some(lock::acquire(&store, no_wait)?)
    };
    let mut profiles: Vec<Option<String>> = cfg.profile_names().into_iter().map(Some).collect();
    if profiles.is_empty() {
        profiles.push(None);
    }
    let mut live_objects: BTreeSet<PathBuf> = BTreeSet::new();
    let mut live_records: BTreeSet<PathBuf> = BTreeSet::new();
    let mut live_keys: BTreeSet<String> = BTreeSet::new(); // logs and resume folders
    let mut live_index: BTreeSet<PathBuf> = BTreeSet::new();
    for p in &profiles {
        let ctx = Ctx::from_config(env, cfg.clone(), p.as_deref(), false)?;
        let plan = &ctx.plan;
        let probes = probe(plan, &store, &ctx.codes, &vec![true; plan.tasks.len()])?;
        for (t, pr) in probes.iter().enumerate() {
            let stage = &plan.res.stages[plan.tasks[t].stage].name;
            live_index.insert(store.index_path(stage, &plan.tasks[t].point_id));
            match pr {
                Probe::Cached { key, record, .. } => {
                    live_records.insert(store.record_path(stage, key));
                    for obj in record.outputs.values() {
                        live_objects.insert(store.object_path(obj));
                    }
                    live_keys.insert(key.clone());
                }
                Probe::ToRun { key, .. } => {
                    live_keys.insert(key.clone());
                }
                Probe::Blocked { .. } | Probe::Skipped => {}
            }
        }
    }

    let mut rep = GcReport::default();
    for f in list_files(&store.objects_dir())? {
        if !live_objects.contains(&f) {
            rep.object_bytes += fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            rep.objects.push(f);
        }
    }
    for f in list_files(&store.runs_dir())? {
        if !live_records.contains(&f) {
            rep.records.push(f);
        }
    }
    for f in list_files(&store.logs_dir())? {
        let key = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if !live_keys.contains(&key) {
            rep.logs.push(f);
        }
    }
    if let Ok(rd) = fs::read_dir(store.resume_root()) {
        for e in rd.flatten() {
            if !live_keys.contains(&e.file_name().to_string_lossy().to_string()) {
                rep.resume.push(e.path());
            }
        }
    }
    rep.resume.sort();
    for f in list_files(&store.index_dir())? {
        if !live_index.contains(&f) {
            rep.index.push(f);
        }
    }

    let verb = if dry_run { "would delete" } else { "deleted" };
    for f in rep
        .objects
        .iter()
        .chain(&rep.records)
        .chain(&rep.logs)
        .chain(&rep.index)
    {
        if dry_run {
            println!("{verb} {}", f.display());
        } else {
            fs::remove_file(f)
                .map_err(|e| anyhow::anyhow!("cannot delete {}: {e}", f.display()))?;
        }
    }
    for d in &rep.resume {
        if dry_run {
            println!("{verb} {}/", d.display());
        } else {
            fs::remove_dir_all(d)
                .map_err(|e| anyhow::anyhow!("cannot delete {}: {e}", d.display()))?;
        }
    }
    if !dry_run {
        store.wipe_tmp()?;
        for d in [store.objects_dir(), store.runs_dir(), store.index_dir()] {
            remove_empty_subdirs(&d);
        }
    }
    println!(
        "icl gc: {verb} {} object(s) ({}), {} run record(s), {} log(s), {} resume folder(s), {} index entr(ies)",
        rep.objects.len(),
        human_bytes(rep.object_bytes),
        rep.records.len(),
        rep.logs.len(),
        rep.resume.len(),
        rep.index.len()
    );
    Ok(rep)
}

fn remove_empty_subdirs(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                // Fails (harmlessly) when not empty.
                let _ = fs::remove_dir(e.path());
            }
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", units[u])
    }
}
