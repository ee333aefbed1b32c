//! `icl reproduce`: the scheduler. One process owns the whole task graph and hands ready tasks
//! to an `Executor`: a bounded pool of local child processes (`LocalExec`, the default) or
//! Slurm job arrays ([`crate::slurm::SlurmExec`]).
//!
//! Per task: compute the key once its inputs are known; if cached, done. Else write TASK.json
//! into the task's scratch folder (`tmp/<key>/` locally, `slurm/tasks/<key>/` on Slurm) and run
//! `BIN run --task .../task.json` (stdout and stderr to `logs/<key>.log`, RAYON_NUM_THREADS =
//! threads); once it exited 0, hash each output, rename it into `objects/`, write the run record
//! (last, atomically) and the point index (`collect`, the same for every executor). A failed
//! task is retried up to the executor's limit (0 locally), then its dependents are blocked;
//! independent tasks go on.

use crate::app::Ctx;
use crate::check::bin_path;
use crate::config::SlurmSettings;
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
    /// Where tasks run: child processes here (default) or Slurm array jobs.
    pub executor: ExecutorKind,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum ExecutorKind {
    #[default]
    Local,
    Slurm(SlurmSettings),
}

/// What happened, for the caller and the tests.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub ran: usize,
    pub cached: usize,
    pub failed: usize,
    pub blocked: usize,
    pub retried: usize,
    pub published: Vec<PathBuf>,
}

pub(crate) enum St {
    Waiting,
    Queued(KeyComponents, String),
    Running,
    Done(Outputs),
    Failed,
    Blocked,
    Skipped,
}

/// A ready task handed to an executor: its key is known and its inputs are done.
pub(crate) struct Launch {
    pub task: usize,
    pub comps: KeyComponents,
    pub key: String,
    /// 0 for the first attempt.
    pub attempt: u32,
    pub inputs: BTreeMap<String, Vec<InputRef>>,
}

/// A task an executor is done with: it exited (`Ok`: exit 0, outputs still to be checked) or
/// it failed (`Err`: why, with the log tails).
pub(crate) struct Finished {
    pub launch: Launch,
    pub task_dir: PathBuf,
    pub outcome: Result<(), String>,
    pub started: SystemTime,
    pub finished: SystemTime,
    pub secs: f64,
}

/// Where tasks run. The scheduler (`reproduce`) owns the graph, the cache, collecting outputs
/// into the store and retries; an executor only starts task processes and reports how they
/// ended.
pub(crate) trait Executor {
    /// How many more tasks it takes now.
    fn capacity(&self) -> usize;
    /// Start these tasks; those that cannot start come back with the reason.
    fn start(
        &mut self,
        ctx: &Ctx,
        batch: Vec<Launch>,
        progress: &Progress,
    ) -> Vec<(Launch, String)>;
    /// Tasks that ended since the last call.
    fn poll(&mut self, ctx: &Ctx, progress: &Progress) -> anyhow::Result<Vec<Finished>>;
    /// Tasks started and not yet reported.
    fn in_flight(&self) -> Vec<usize>;
    /// Stop every task it started and remove their scratch folders (Ctrl-C).
    fn cancel(&mut self, ctx: &Ctx, progress: &Progress);
    /// How long to sleep when a poll reported nothing.
    fn wait_hint(&self) -> Duration;
    /// How often a failed task is started again.
    fn max_retries(&self) -> u32;
    /// End of a run that was not interrupted: statistics, cleanup.
    fn close(&mut self, _ctx: &Ctx, _progress: &Progress) {}
}

pub fn reproduce(ctx: &Ctx, opts: &RunOpts) -> Result<RunSummary, CliError> {
    let plan = &ctx.plan;
    let store = &ctx.store;
    for s in &opts.stages {
        plan.res
            .stage_index(s, &format!("--stage {s}: no such stage"))?;
    }
    let selected = plan.select(&opts.stages);

    let _lock = lock::acquire(store, opts.no_wait)?;
    signals::install();
    store.create_layout()?;
    // Leftovers of a killed runner: we hold the lock, so nothing else is using tmp/.
    store.wipe_tmp()?;
    let mut exec: Box<dyn Executor> = match &opts.executor {
        ExecutorKind::Local => Box::new(LocalExec {
            jobs: opts.jobs.max(1),
            running: Vec::new(),
        }),
        ExecutorKind::Slurm(s) => Box::new(crate::slurm::SlurmExec::open(ctx, s.clone())?),
    };

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
    let mut attempts: Vec<u32> = vec![0; n];
    let mut progress = Progress::new(selected.iter().filter(|s| **s).count());
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut sum = RunSummary::default();
    let mut dirty = true;
    let running_labels = |exec: &dyn Executor| -> Vec<String> {
        exec.in_flight().iter().map(|&t| plan.label(t)).collect()
    };

    loop {
        if signals::interrupted() {
            exec.cancel(ctx, &progress);
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
        let mut batch = Vec::new();
        while batch.len() < exec.capacity() {
            let Some(t) = queue.pop_front() else { break };
            let St::Queued(comps, key) = std::mem::replace(&mut st[t], St::Running) else {
                unreachable!("queued task has a key")
            };
            batch.push(Launch {
                task: t,
                comps,
                key,
                attempt: attempts[t],
                inputs: task_inputs(ctx, t, &st),
            });
        }
        if !batch.is_empty() {
            for (l, e) in exec.start(ctx, batch, &progress) {
                let t = l.task;
                progress.println(&format!("FAILED {}: cannot start: {e}", plan.label(t)));
                st[t] = St::Failed;
                sum.failed += 1;
                progress.finished(&plan.label(t), "FAILED");
                dirty = true;
            }
            progress.running(&running_labels(exec.as_ref()));
        }
        if exec.in_flight().is_empty() && queue.is_empty() {
            if dirty {
                continue;
            }
            break;
        }
        if signals::interrupted() {
            // Children hit by the same Ctrl-C are not failures: handle the interrupt first.
            continue;
        }
        let ended = exec.poll(ctx, &progress)?;
        let progressed = !ended.is_empty();
        for f in ended {
            let t = f.launch.task;
            let label = plan.label(t);
            let result = match &f.outcome {
                Ok(()) => collect(ctx, &f).map_err(|e| format!("{e:#}")),
                Err(why) => Err(why.clone()),
            };
            let _ = fs::remove_dir_all(&f.task_dir);
            match result {
                Ok(outputs) => {
                    st[t] = St::Done(outputs);
                    sum.ran += 1;
                    progress.finished(&label, &format!("ran ({:.1} s)", f.secs));
                }
                Err(msg) => {
                    progress.println(&format!("FAILED {label}: {msg}"));
                    let max = exec.max_retries();
                    if f.launch.attempt < max {
                        attempts[t] = f.launch.attempt + 1;
                        sum.retried += 1;
                        progress.println(&format!(
                            "retrying {label} (attempt {} of {})",
                            attempts[t] + 1,
                            max + 1
                        ));
                        st[t] = St::Queued(f.launch.comps, f.launch.key);
                        queue.push_back(t);
                    } else {
                        st[t] = St::Failed;
                        sum.failed += 1;
                        progress.finished(&label, "FAILED");
                    }
                }
            }
            dirty = true;
        }
        if progressed {
            progress.running(&running_labels(exec.as_ref()));
        } else {
            // Sleep in short slices so that Ctrl-C is handled at once.
            let until = Instant::now() + exec.wait_hint();
            while Instant::now() < until && !signals::interrupted() {
                std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
            }
        }
    }
    exec.close(ctx, &progress);
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

    let retried = if sum.retried > 0 {
        format!(", {} retried", sum.retried)
    } else {
        String::new()
    };
    eprintln!(
        "icl: profile {}: {} task(s): {} ran, {} cached, {} failed, {} blocked{retried} ({:.1} s)",
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

/// The object paths feeding task `t` (its inputs are done).
fn task_inputs(ctx: &Ctx, t: usize, st: &[St]) -> BTreeMap<String, Vec<InputRef>> {
    let store = &ctx.store;
    let mut inputs: BTreeMap<String, Vec<InputRef>> = BTreeMap::new();
    for (name, feeds) in &ctx.plan.tasks[t].inputs {
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
    inputs
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

/// Write a task's scratch folder `task_dir` (emptied first): `task.json` and an empty `out/`;
/// create its resume folder. Returns the path of `task.json`. Both executors use this.
pub(crate) fn prepare(ctx: &Ctx, l: &Launch, task_dir: &Path) -> anyhow::Result<PathBuf> {
    let store = &ctx.store;
    let task = &ctx.plan.tasks[l.task];
    let stage = &ctx.plan.res.stages[task.stage];
    if task_dir.exists() {
        fs::remove_dir_all(task_dir)?;
    }
    let out_dir = task_dir.join("out");
    fs::create_dir_all(&out_dir)?;
    let resume_dir = store.resume_path(&l.key);
    fs::create_dir_all(&resume_dir)?;
    let spec = TaskSpec {
        stage: stage.name.clone(),
        command: stage.command.clone(),
        params: serde_json::Value::Object(task.params.clone()),
        inputs: l.inputs.clone(),
        outputs: stage.outputs.clone(),
        out_dir,
        resume_dir: Some(resume_dir),
        threads: stage.threads,
    };
    let spec_path = task_dir.join("task.json");
    fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)?;
    fs::create_dir_all(store.logs_dir())?;
    Ok(spec_path)
}

/// The local executor: a pool of `jobs` child processes that die with the runner.
struct LocalExec {
    jobs: usize,
    running: Vec<Running>,
}

struct Running {
    launch: Launch,
    child: Child,
    task_dir: PathBuf,
    started: SystemTime,
    t0: Instant,
}

impl Executor for LocalExec {
    fn capacity(&self) -> usize {
        self.jobs.saturating_sub(self.running.len())
    }

    fn start(
        &mut self,
        ctx: &Ctx,
        batch: Vec<Launch>,
        _progress: &Progress,
    ) -> Vec<(Launch, String)> {
        let mut failed = Vec::new();
        for l in batch {
            let task_dir = ctx.store.tmp_dir().join(&l.key);
            match spawn(ctx, &l, &task_dir) {
                Ok(child) => self.running.push(Running {
                    launch: l,
                    child,
                    task_dir,
                    started: SystemTime::now(),
                    t0: Instant::now(),
                }),
                Err(e) => failed.push((l, format!("{e:#}"))),
            }
        }
        failed
    }

    fn poll(&mut self, ctx: &Ctx, _progress: &Progress) -> anyhow::Result<Vec<Finished>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.running.len() {
            match self.running[i].child.try_wait() {
                Ok(Some(status)) => {
                    let r = self.running.swap_remove(i);
                    let log_path = ctx.store.log_path(&r.launch.key);
                    let outcome = if status.success() {
                        Ok(())
                    } else {
                        Err(format!(
                            "{} (log: {})\n{}",
                            describe(status),
                            log_path.display(),
                            tail(&log_path, 20)
                        ))
                    };
                    out.push(Finished {
                        launch: r.launch,
                        task_dir: r.task_dir,
                        outcome,
                        started: r.started,
                        finished: SystemTime::now(),
                        secs: r.t0.elapsed().as_secs_f64(),
                    });
                }
                Ok(None) => i += 1,
                Err(e) => anyhow::bail!("cannot wait for a child process: {e}"),
            }
        }
        Ok(out)
    }

    fn in_flight(&self) -> Vec<usize> {
        self.running.iter().map(|r| r.launch.task).collect()
    }

    fn cancel(&mut self, _ctx: &Ctx, _progress: &Progress) {
        for mut r in self.running.drain(..) {
            let _ = r.child.kill();
            let _ = r.child.wait();
            let _ = fs::remove_dir_all(&r.task_dir);
        }
    }

    fn wait_hint(&self) -> Duration {
        Duration::from_millis(10)
    }

    fn max_retries(&self) -> u32 {
        0
    }
}

fn spawn(ctx: &Ctx, l: &Launch, task_dir: &Path) -> anyhow::Result<Child> {
    let store = &ctx.store;
    let stage = &ctx.plan.res.stages[ctx.plan.tasks[l.task].stage];
    let spec_path = prepare(ctx, l, task_dir)?;
    let log = fs::File::create(store.log_path(&l.key))?;
    let log2 = log.try_clone()?;
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(bin_path(&ctx.env.bin_dir, &stage.bin));
    cmd.arg("run")
        .arg("--task")
        .arg(&spec_path)
        .current_dir(task_dir)
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
    cmd.spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", stage.bin))
}

/// Hash the outputs a task left in `task_dir/out`, move them into `objects/` and write the run
/// record (last) and the point index: the one way a task becomes done, whatever ran it.
fn collect(ctx: &Ctx, f: &Finished) -> anyhow::Result<Outputs> {
    let plan = &ctx.plan;
    let store = &ctx.store;
    let task = &plan.tasks[f.launch.task];
    let stage = &plan.res.stages[task.stage];
    let out_dir = f.task_dir.join("out");
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
    let rec = RunRecord {
        scheme: RECORD_SCHEME,
        stage: stage.name.clone(),
        command: stage.command.clone(),
        point: task.point_json(),
        key: f.launch.key.clone(),
        components: serde_json::to_value(&f.launch.comps)?,
        outputs: outputs.clone(),
        log: store.log_rel(&f.launch.key),
        started: rfc3339_utc(f.started),
        finished: rfc3339_utc(f.finished),
        duration_s: (f.secs * 1000.0).round() / 1000.0,
    };
    store.write_record(&rec)?;
    store.write_index(
        &task.point_id,
        &index_entry(ctx, f.launch.task, &f.launch.key),
    )?;
    let _ = fs::remove_dir_all(store.resume_path(&f.launch.key));
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

pub(crate) fn describe(status: ExitStatus) -> String {
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
