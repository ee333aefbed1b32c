//! `icl reproduce`: the scheduler. One process owns the whole task graph and runs ready tasks
//! in a bounded pool of child processes of the stage binaries.
//!
//! Per task: compute the key once its inputs are known; if cached, done. Else write TASK.json
//! into `tmp/<key>/`, run `BIN run --task tmp/<key>/task.json` (stdout and stderr to
//! `logs/<key>.log`, RAYON_NUM_THREADS = threads, killed if the runner dies), then hash each
//! output, rename it into `objects/`, write the run record (last, atomically) and the point
//! index. A failed task does not stop independent tasks; its dependents are blocked.

use crate::app::Ctx;
use crate::check::bin_path;
use crate::error::CliError;
use crate::key::KeyComponents;
use crate::lock;
use crate::progress::Progress;
use crate::signals;
use crate::state::{components, lookup, Lookup, Outputs};
use icl_store::hash::hash_file;
use icl_store::store::{rfc3339_utc, IndexEntry, ObjectState, RunRecord, RECORD_SCHEME};
use icl_store::task::{InputRef, TaskSpec};
use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone)]
pub struct RunOpts {
    pub jobs: usize,
    /// Run only these stages and what they need (all when empty).
    pub stages: Vec<String>,
    pub publish_dir: Option<PathBuf>,
    pub no_wait: bool,
}

/// What happened, for the caller and the tests.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub ran: usize,
    pub cached: usize,
    pub failed: usize,
    pub blocked: usize,
    pub published: Vec<PathBuf>,
}

enum St {
    Waiting,
    Queued(KeyComponents, String),
    Running,
    Done(Outputs),
    Failed,
    Blocked,
    Skipped,
}

struct Running {
    task: usize,
    child: Child,
    comps: KeyComponents,
    key: String,
    task_dir: PathBuf,
    started: SystemTime,
    t0: Instant,
}

pub fn reproduce(ctx: &Ctx, opts: &RunOpts) -> Result<RunSummary, CliError> {
    let plan = &ctx.plan;
    let store = &ctx.store;
    for s in &opts.stages {
        if plan.res.stage(s).is_none() {
            return Err(CliError::Usage(format!(
                "--stage {s}: no such stage (allowed: {})",
                plan.res
                    .stages
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let selected = plan.select(&opts.stages);
    let jobs = opts.jobs.max(1);

    let _lock = lock::acquire(store, opts.no_wait)?;
    signals::install();
    store.create_layout()?;
    // Leftovers of a killed runner: we hold the lock, so nothing else is using tmp/.
    store.wipe_tmp()?;

    let t_start = Instant::now();
    let n = plan.tasks.len();
    let mut st: Vec<St> = (0..n)
        .map(|t| {
            if selected[t] {
                St::Waiting
            } else {
                St::Skipped
            }
        })
        .collect();
    let mut progress = Progress::new(selected.iter().filter(|s| **s).count());
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut running: Vec<Running> = Vec::new();
    let mut sum = RunSummary::default();
    let mut dirty = true;

    loop {
        if signals::interrupted() {
            for mut r in running.drain(..) {
                let _ = r.child.kill();
                let _ = r.child.wait();
                let _ = fs::remove_dir_all(&r.task_dir);
            }
            progress.finish();
            eprintln!(
                "icl: interrupted; {} task(s) finished and recorded, unfinished ones left no record (run again to continue)",
                sum.ran
            );
            return Err(CliError::Interrupted);
        }
        if dirty {
            dirty = false;
            promote(ctx, &mut st, &mut queue, &mut progress, &mut sum)?;
        }
        while running.len() < jobs {
            let Some(t) = queue.pop_front() else { break };
            let St::Queued(comps, key) = std::mem::replace(&mut st[t], St::Running) else {
                unreachable!("queued task has a key")
            };
            match spawn(ctx, t, comps, key, &st) {
                Ok(r) => running.push(r),
                Err(e) => {
                    progress.println(&format!("FAILED {}: cannot start: {e:#}", plan.label(t)));
                    st[t] = St::Failed;
                    sum.failed += 1;
                    progress.finished(&plan.label(t), "FAILED");
                    dirty = true;
                }
            }
            progress.running(
                &running
                    .iter()
                    .map(|r| plan.label(r.task))
                    .collect::<Vec<_>>(),
            );
        }
        if running.is_empty() && queue.is_empty() {
            if dirty {
                continue;
            }
            break;
        }
        if signals::interrupted() {
            // Children hit by the same Ctrl-C are not failures: handle the interrupt first.
            continue;
        }
        let mut progressed = false;
        let mut i = 0;
        while i < running.len() {
            match running[i].child.try_wait() {
                Ok(Some(status)) => {
                    let r = running.swap_remove(i);
                    let label = plan.label(r.task);
                    let secs = r.t0.elapsed().as_secs_f64();
                    let t = r.task;
                    match finish(ctx, r, status) {
                        Ok(outputs) => {
                            st[t] = St::Done(outputs);
                            sum.ran += 1;
                            progress.finished(&label, &format!("ran ({secs:.1} s)"));
                        }
                        Err(msg) => {
                            progress.println(&msg);
                            st[t] = St::Failed;
                            sum.failed += 1;
                            progress.finished(&label, "FAILED");
                        }
                    }
                    progressed = true;
                    dirty = true;
                }
                Ok(None) => i += 1,
                Err(e) => {
                    return Err(anyhow::anyhow!("cannot wait for a child process: {e}").into())
                }
            }
        }
        if progressed {
            progress.running(
                &running
                    .iter()
                    .map(|r| plan.label(r.task))
                    .collect::<Vec<_>>(),
            );
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    progress.finish();

    // Publish single-task stages that are done, after the whole run.
    let publish_dir = opts
        .publish_dir
        .clone()
        .unwrap_or_else(|| plan.res.publish_dir.clone());
    for (si, stage) in plan.res.stages.iter().enumerate() {
        if stage.publish.is_empty() {
            continue;
        }
        let &[t] = plan.by_stage[si].as_slice() else {
            continue;
        };
        let St::Done(outputs) = &st[t] else { continue };
        for (out, dest) in &stage.publish {
            let src = store.object_path(&outputs[out]);
            let dst = publish_dir.join(dest);
            if publish(&src, &outputs[out].hash, &dst)? {
                eprintln!("icl: published {}", dst.display());
            }
            sum.published.push(dst);
        }
    }

    eprintln!(
        "icl: profile {}: {} task(s): {} ran, {} cached, {} failed, {} blocked ({:.1} s)",
        plan.res.profile,
        selected.iter().filter(|s| **s).count(),
        sum.ran,
        sum.cached,
        sum.failed,
        sum.blocked,
        t_start.elapsed().as_secs_f64()
    );
    if sum.failed + sum.blocked > 0 {
        return Err(CliError::TasksFailed(sum.failed));
    }
    Ok(sum)
}

/// Move waiting tasks forward: blocked if an input failed, cached or queued once all inputs are
/// done. One pass in plan order suffices because inputs come first.
fn promote(
    ctx: &Ctx,
    st: &mut [St],
    queue: &mut VecDeque<usize>,
    progress: &mut Progress,
    sum: &mut RunSummary,
) -> anyhow::Result<()> {
    let plan = &ctx.plan;
    for t in 0..plan.tasks.len() {
        if !matches!(st[t], St::Waiting) {
            continue;
        }
        let deps = plan.tasks[t].deps();
        if deps
            .iter()
            .any(|&d| matches!(st[d], St::Failed | St::Blocked))
        {
            st[t] = St::Blocked;
            sum.blocked += 1;
            progress.skip();
            progress.println(&format!(
                "blocked {}: an upstream task failed",
                plan.label(t)
            ));
            continue;
        }
        if !deps.iter().all(|&d| matches!(st[d], St::Done(_))) {
            continue;
        }
        let task = &plan.tasks[t];
        let done = |u: usize| {
            if let St::Done(o) = &st[u] {
                Some(o)
            } else {
                None
            }
        };
        let comps = components(plan, t, &ctx.codes[task.stage], done).expect("inputs done");
        let key = comps.key();
        let stage = &plan.res.stages[task.stage].name;
        match lookup(&ctx.store, stage, &key)? {
            Lookup::Hit(rec) => {
                // The index names the last key reproduced at this point, cached or run (a kill
                // between record and index, or a profile switch, leaves it behind).
                if ctx
                    .store
                    .read_index(stage, &task.point_id)
                    .ok()
                    .flatten()
                    .map(|e| e.key)
                    != Some(key.clone())
                {
                    ctx.store
                        .write_index(&task.point_id, &index_entry(ctx, t, &key))?;
                }
                st[t] = St::Done(rec.outputs);
                sum.cached += 1;
                progress.skip();
            }
            Lookup::BadObjects(_, bad) => {
                for (name, obj, state) in bad {
                    let p = ctx.store.object_path(&obj);
                    let what = match state {
                        ObjectState::Corrupt { actual } => {
                            ctx.store.remove_object(&obj)?;
                            format!("is corrupt (its blake3 is {actual}); deleted it")
                        }
                        _ => "is missing".to_string(),
                    };
                    progress.println(&format!(
                        "warning: object {} (output `{name}` of {}) {what}; the task will run again",
                        p.display(),
                        plan.label(t)
                    ));
                }
                st[t] = St::Queued(comps, key);
                queue.push_back(t);
            }
            Lookup::NoRecord => {
                st[t] = St::Queued(comps, key);
                queue.push_back(t);
            }
        }
    }
    Ok(())
}

fn spawn(
    ctx: &Ctx,
    t: usize,
    comps: KeyComponents,
    key: String,
    st: &[St],
) -> anyhow::Result<Running> {
    let plan = &ctx.plan;
    let store = &ctx.store;
    let task = &plan.tasks[t];
    let stage = &plan.res.stages[task.stage];

    let task_dir = store.tmp_dir().join(&key);
    if task_dir.exists() {
        fs::remove_dir_all(&task_dir)?;
    }
    let out_dir = task_dir.join("out");
    fs::create_dir_all(&out_dir)?;
    let resume_dir = store.resume_path(&key);
    fs::create_dir_all(&resume_dir)?;

    let mut inputs: BTreeMap<String, Vec<InputRef>> = BTreeMap::new();
    for (name, feeds) in &task.inputs {
        let refs = feeds
            .iter()
            .map(|(up, out)| {
                let St::Done(outs) = &st[*up] else {
                    unreachable!("inputs are done")
                };
                let obj = &outs[out];
                InputRef {
                    path: store.object_path(obj),
                    hash: obj.hash.clone(),
                }
            })
            .collect();
        inputs.insert(name.clone(), refs);
    }
    let spec = TaskSpec {
        stage: stage.name.clone(),
        command: stage.command.clone(),
        params: serde_json::Value::Object(task.params.clone()),
        inputs,
        outputs: stage.outputs.clone(),
        out_dir,
        resume_dir: Some(resume_dir),
        threads: stage.threads,
    };
    let spec_path = task_dir.join("task.json");
    fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)?;

    fs::create_dir_all(store.logs_dir())?;
    let log = fs::File::create(store.log_path(&key))?;
    let log2 = log.try_clone()?;
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(bin_path(&ctx.env.bin_dir, &stage.bin));
    cmd.arg("run")
        .arg("--task")
        .arg(&spec_path)
        .current_dir(&task_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .env("RAYON_NUM_THREADS", stage.threads.to_string());
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Die with the runner, even on kill -9, so no orphan keeps writing into tmp/.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The runner may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the runner exited"));
            }
            Ok(())
        });
    }
    let started = SystemTime::now();
    let child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", stage.bin))?;
    Ok(Running {
        task: t,
        child,
        comps,
        key,
        task_dir,
        started,
        t0: Instant::now(),
    })
}

/// Collect a finished child's outputs into the store, or explain the failure (with the log tail).
fn finish(ctx: &Ctx, r: Running, status: ExitStatus) -> Result<Outputs, String> {
    let plan = &ctx.plan;
    let store = &ctx.store;
    let label = plan.label(r.task);
    let log_path = store.log_path(&r.key);
    let result = if status.success() {
        collect(ctx, &r).map_err(|e| format!("FAILED {label}: {e:#}"))
    } else {
        Err(format!(
            "FAILED {label}: {} (log: {})\n{}",
            describe(status),
            log_path.display(),
            tail(&log_path, 20)
        ))
    };
    let _ = fs::remove_dir_all(&r.task_dir);
    result
}

fn collect(ctx: &Ctx, r: &Running) -> anyhow::Result<Outputs> {
    let plan = &ctx.plan;
    let store = &ctx.store;
    let task = &plan.tasks[r.task];
    let stage = &plan.res.stages[task.stage];
    let out_dir = r.task_dir.join("out");
    let mut files: Vec<String> = Vec::new();
    for e in fs::read_dir(&out_dir)? {
        let e = e?;
        anyhow::ensure!(
            e.file_type()?.is_file(),
            "the stage left a non-file {} in its out_dir",
            e.path().display()
        );
        files.push(e.file_name().to_string_lossy().to_string());
    }
    files.sort();
    let mut found: Vec<(String, String, String)> = Vec::new(); // (output, file, ext)
    for out in &stage.outputs {
        let matching: Vec<&String> = files
            .iter()
            .filter(|f| {
                *f == out
                    || f.strip_prefix(out.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            })
            .collect();
        match matching.as_slice() {
            [one] => {
                let ext = one
                    .strip_prefix(out.as_str())
                    .unwrap_or("")
                    .trim_start_matches('.')
                    .to_string();
                anyhow::ensure!(
                    !ext.ends_with("partial"),
                    "output `{out}` was left half-written ({one})"
                );
                found.push((out.clone(), (*one).clone(), ext));
            }
            [] => anyhow::bail!(
                "the stage did not write its declared output `{out}` (files: {})",
                files.join(", ")
            ),
            many => anyhow::bail!(
                "the stage wrote several files for output `{out}`: {}",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    let undeclared: Vec<&String> = files
        .iter()
        .filter(|f| !found.iter().any(|(_, ff, _)| ff == *f))
        .collect();
    anyhow::ensure!(
        undeclared.is_empty(),
        "the stage wrote undeclared files {} (declared outputs: {})",
        undeclared
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        stage.outputs.join(", ")
    );
    let mut outputs = Outputs::new();
    for (out, file, ext) in found {
        let obj = store.ingest(&out_dir.join(&file), &ext)?;
        outputs.insert(out, obj);
    }
    let finished = SystemTime::now();
    let rec = RunRecord {
        scheme: RECORD_SCHEME,
        stage: stage.name.clone(),
        command: stage.command.clone(),
        point: task.point_json(),
        key: r.key.clone(),
        components: serde_json::to_value(&r.comps)?,
        outputs: outputs.clone(),
        log: store.log_rel(&r.key),
        started: rfc3339_utc(r.started),
        finished: rfc3339_utc(finished),
        duration_s: (r.t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };
    store.write_record(&rec)?;
    store.write_index(&task.point_id, &index_entry(ctx, r.task, &r.key))?;
    let _ = fs::remove_dir_all(store.resume_path(&r.key));
    Ok(outputs)
}

fn index_entry(ctx: &Ctx, t: usize, key: &str) -> IndexEntry {
    let task = &ctx.plan.tasks[t];
    IndexEntry {
        stage: ctx.plan.res.stages[task.stage].name.clone(),
        point: task.point_json(),
        position: task.position.clone(),
        key: key.to_string(),
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// Last `n` lines of a log, indented.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).to_string())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Copy an object to a publish path unless it already holds those bytes. Returns whether it
/// wrote.
fn publish(src: &Path, hash: &str, dst: &Path) -> anyhow::Result<bool> {
    if dst.is_file() && hash_file(dst).ok().as_deref() == Some(hash) {
        return Ok(false);
    }
    if let Some(dir) = dst.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = dst.as_os_str().to_owned();
    tmp.push(".icl-tmp");
    let tmp = PathBuf::from(tmp);
    fs::copy(src, &tmp)
        .map_err(|e| anyhow::anyhow!("cannot copy {} to {}: {e}", src.display(), tmp.display()))?;
    fs::rename(&tmp, dst)?;
    Ok(true)
}
