//! The Slurm executor (`icl reproduce --executor slurm`): the scheduler in [`crate::run`] hands
//! it every batch of ready, uncached tasks; it submits each batch as ONE job array
//! (`sbatch --parsable --array=0-(n-1)%throttle`) whose array task i runs
//! `BIN run --task data/slurm/tasks/<key>/task.json`, exactly what the local executor runs.
//!
//! Everything lives under `data/slurm/` (so on a cluster `data/` must be on a filesystem that
//! the compute nodes share, and so must the binaries):
//! - `tasks/<key>/`: the task's scratch folder (`task.json`, `out/`, and `exit`, written by the
//!   job script after the stage exits: `<exit code> <start epoch> <end epoch>`);
//! - `jobs/<name>.sh`, `jobs/<name>.tasks`: the job script and its manifest (line i = array task i);
//! - `logs/<jobid>_<index>.out`: Slurm's own stdout/stderr of an array task (the stage's output
//!   goes to `logs/<key>.log` of the store, as with the local executor);
//! - `state.json`: the tasks in flight (job name, job id, array index, attempt), rewritten
//!   atomically at every change, so that a restarted driver waits on them instead of
//!   resubmitting, and collects those that finished while it was away;
//! - `journal.jsonl`: one line per submission (append only), for audits and the tests.
//!
//! Waiting: at most one `squeue` per poll interval. A task is concluded only when a successful
//! `squeue` answer no longer lists it: with its `exit` file, by its exit code (0: the scheduler
//! then checks and hashes the outputs as for a local task); without one, only after it stayed
//! absent for [`LOST_POLLS`] answers and [`LOST_GRACE`] (a shared filesystem may show the file
//! late), as "ended without a result" (time limit, preemption without requeue, node failure,
//! out of memory, scancel), with the state `sacct` gives if accounting is enabled. A failed or
//! empty squeue answer concludes nothing.

use crate::app::Ctx;
use crate::check::bin_path;
use crate::config::SlurmSettings;
use crate::progress::Progress;
use crate::run::{prepare, tail, Executor, Finished, Launch};
use anyhow::Context;
use icl_store::store::rfc3339_utc;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A task missing from squeue without an exit file is declared lost after this many answers...
pub const LOST_POLLS: u32 = 3;
/// ...and at least this long after it was first missed.
pub const LOST_GRACE: Duration = Duration::from_secs(30);
/// Slurm's default MaxArraySize is 1001: larger batches are split into several arrays.
pub const MAX_ARRAY: usize = 1000;

/// One task in flight, as persisted in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub key: String,
    pub stage: String,
    /// Job name (`icl-...`), unique per submission: finds the job if the driver died between
    /// `sbatch` and recording its id.
    pub name: String,
    pub job_id: Option<String>,
    pub index: usize,
    pub attempt: u32,
    pub submitted: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub tasks: Vec<Entry>,
}

struct Flight {
    launch: Launch,
    entry: Entry,
    task_dir: PathBuf,
    missing_polls: u32,
    missing_since: Option<Instant>,
}

pub struct SlurmExec {
    opts: SlurmSettings,
    dir: PathBuf,
    /// Entries left by an earlier driver, by key, not yet claimed by a task of this run.
    orphans: BTreeMap<String, Entry>,
    flights: Vec<Flight>,
    last_poll: Option<Instant>,
    submissions: usize,
    array_tasks: usize,
    polls: usize,
    failed_polls: usize,
    sacct_calls: usize,
    adopted: usize,
}

impl SlurmExec {
    /// Check that sbatch/squeue answer and load what an earlier driver left.
    pub fn open(ctx: &Ctx, opts: SlurmSettings) -> anyhow::Result<SlurmExec> {
        let dir = ctx.store.root().join("slurm");
        for d in ["tasks", "jobs", "logs"] {
            fs::create_dir_all(dir.join(d))
                .with_context(|| format!("cannot create {}", dir.join(d).display()))?;
        }
        for tool in ["sbatch", "squeue", "scancel"] {
            let ok = Command::new(tool)
                .arg("--version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            anyhow::ensure!(
                ok,
                "--executor slurm: `{tool} --version` failed; install the Slurm client tools and \
                 set SLURM_CONF if the cluster's slurm.conf is not in /etc/slurm"
            );
        }
        let state: State = match fs::read(dir.join("state.json")) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| {
                format!(
                    "{} is not a Slurm state file",
                    dir.join("state.json").display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e.into()),
        };
        if !state.tasks.is_empty() {
            eprintln!(
                "icl: slurm: {} task(s) were in flight when the previous driver stopped; waiting on them instead of resubmitting",
                state.tasks.len()
            );
        }
        Ok(SlurmExec {
            opts,
            dir,
            orphans: state
                .tasks
                .into_iter()
                .map(|e| (e.key.clone(), e))
                .collect(),
            flights: Vec::new(),
            last_poll: None,
            submissions: 0,
            array_tasks: 0,
            polls: 0,
            failed_polls: 0,
            sacct_calls: 0,
            adopted: 0,
        })
    }

    fn task_dir(&self, key: &str) -> PathBuf {
        self.dir.join("tasks").join(key)
    }

    /// Rewrite `state.json` atomically: the flights plus unclaimed entries of an earlier driver.
    fn save(&self) -> anyhow::Result<()> {
        let mut tasks: Vec<Entry> = self.flights.iter().map(|f| f.entry.clone()).collect();
        tasks.extend(self.orphans.values().cloned());
        let st = State { version: 1, tasks };
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&st)?)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    fn journal(&self, name: &str, job_id: &str, entries: &[Entry]) -> anyhow::Result<()> {
        let line = serde_json::json!({
            "name": name,
            "job_id": job_id,
            "submitted": entries.first().map(|e| e.submitted.clone()),
            "tasks": entries.iter().map(|e| serde_json::json!({
                "index": e.index, "key": e.key, "stage": e.stage, "attempt": e.attempt
            })).collect::<Vec<_>>(),
        });
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("journal.jsonl"))?;
        writeln!(f, "{line}")?;
        Ok(())
    }

    /// Submit one array job for `launches` (their task folders are written here).
    fn submit(
        &mut self,
        ctx: &Ctx,
        launches: Vec<Launch>,
        progress: &Progress,
    ) -> Vec<(Launch, String)> {
        let mut failed = Vec::new();
        let mut ready: Vec<(Launch, PathBuf, PathBuf)> = Vec::new(); // launch, task dir, spec
        for l in launches {
            let td = self.task_dir(&l.key);
            match prepare(ctx, &l, &td) {
                Ok(spec) => ready.push((l, td, spec)),
                Err(e) => failed.push((l, format!("{e:#}"))),
            }
        }
        if ready.is_empty() {
            return failed;
        }
        let now = SystemTime::now();
        let submitted = rfc3339_utc(now);
        // Unique per submission (time + keys), short enough for squeue's name column.
        let mut h = blake3::Hasher::new();
        h.update(format!("{:?}", now.duration_since(UNIX_EPOCH).unwrap_or_default()).as_bytes());
        for (l, _, _) in &ready {
            h.update(l.key.as_bytes());
        }
        let name = format!("icl-{}", &h.finalize().to_hex()[..12]);
        let mut manifest = String::new();
        let mut cpus = 1usize;
        for (l, td, spec) in &ready {
            let stage = &ctx.plan.res.stages[ctx.plan.tasks[l.task].stage];
            cpus = cpus.max(stage.threads);
            manifest.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                bin_path(&ctx.env.bin_dir, &stage.bin).display(),
                td.display(),
                spec.display(),
                ctx.store.log_path(&l.key).display(),
                stage.threads
            ));
        }
        let entries: Vec<Entry> = ready
            .iter()
            .enumerate()
            .map(|(i, (l, _, _))| Entry {
                key: l.key.clone(),
                stage: ctx.plan.res.stages[ctx.plan.tasks[l.task].stage]
                    .name
                    .clone(),
                name: name.clone(),
                job_id: None,
                index: i,
                attempt: l.attempt,
                submitted: submitted.clone(),
            })
            .collect();
        let script = self.dir.join("jobs").join(format!("{name}.sh"));
        let man_path = self.dir.join("jobs").join(format!("{name}.tasks"));
        let res = (|| -> anyhow::Result<String> {
            fs::write(&man_path, &manifest)?;
            fs::write(&script, job_script(&man_path))?;
            // Record the flights before sbatch (job id unknown yet): a driver killed between
            // sbatch and the next save finds the job again by its name.
            let n = ready.len();
            for ((l, td, _), e) in ready.drain(..).zip(entries.iter()) {
                self.flights.push(Flight {
                    launch: l,
                    entry: e.clone(),
                    task_dir: td,
                    missing_polls: 0,
                    missing_since: None,
                });
            }
            self.save()?;
            let cpus = self.opts.cpus_per_task.map(|c| c as usize).unwrap_or(cpus);
            let job_id = self.sbatch(&name, n, cpus, &script)?;
            Ok(job_id)
        })();
        match res {
            Ok(job_id) => {
                for f in self.flights.iter_mut().filter(|f| f.entry.name == name) {
                    f.entry.job_id = Some(job_id.clone());
                }
                let entries: Vec<Entry> = self
                    .flights
                    .iter()
                    .filter(|f| f.entry.name == name)
                    .map(|f| f.entry.clone())
                    .collect();
                if let Err(e) = self
                    .save()
                    .and_then(|_| self.journal(&name, &job_id, &entries))
                {
                    progress.println(&format!(
                        "warning: slurm: cannot record job {job_id}: {e:#}"
                    ));
                }
                self.submissions += 1;
                self.array_tasks += entries.len();
                progress.println(&format!(
                    "slurm: submitted job {job_id} ({name}): {} array task(s)",
                    entries.len()
                ));
            }
            Err(e) => {
                let mut keep = Vec::new();
                for f in self.flights.drain(..) {
                    if f.entry.name == name {
                        let _ = fs::remove_dir_all(&f.task_dir);
                        failed.push((f.launch, format!("sbatch failed: {e:#}")));
                    } else {
                        keep.push(f);
                    }
                }
                self.flights = keep;
                let _ = self.save();
            }
        }
        failed
    }

    /// `sbatch --parsable`, retried twice on failure (a busy controller refuses for a while).
    fn sbatch(&self, name: &str, n: usize, cpus: usize, script: &Path) -> anyhow::Result<String> {
        let o = &self.opts;
        let mut args: Vec<String> = vec![
            "--parsable".into(),
            match o.array_throttle {
                Some(t) => format!("--array=0-{}%{t}", n - 1),
                None => format!("--array=0-{}", n - 1),
            },
            format!("--job-name={name}"),
            format!("--output={}/logs/%A_%a.out", self.dir.display()),
            "--open-mode=append".into(),
            format!("--chdir={}", self.dir.display()),
            format!("--cpus-per-task={cpus}"),
        ];
        for (flag, v) in [
            ("--partition", &o.partition),
            ("--account", &o.account),
            ("--time", &o.time),
            ("--mem", &o.mem),
        ] {
            if let Some(v) = v {
                args.push(format!("{flag}={v}"));
            }
        }
        args.push(script.display().to_string());
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
            match Command::new("sbatch")
                .args(&args)
                .stdin(Stdio::null())
                .output()
            {
                Ok(out) if out.status.success() => {
                    // `--parsable` prints `jobid` or `jobid;cluster`.
                    let text = String::from_utf8_lossy(&out.stdout);
                    let id = text.trim().split(';').next().unwrap_or("").to_string();
                    anyhow::ensure!(
                        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
                        "sbatch printed `{}`, not a job id",
                        text.trim()
                    );
                    return Ok(id);
                }
                Ok(out) => {
                    last = format!(
                        "sbatch {} exited with {}: {}",
                        args.join(" "),
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )
                }
                Err(e) => last = format!("cannot run sbatch: {e}"),
            }
        }
        anyhow::bail!("{last}")
    }

    /// Our array tasks in the queue: `jobid_index` -> (state, job name). `None` when squeue
    /// fails (unknown, not "gone").
    fn squeue(&mut self) -> Option<BTreeMap<String, (String, String)>> {
        self.polls += 1;
        let out = Command::new("squeue")
            .args(["-h", "-r", "--me", "-o", "%i|%T|%j"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            self.failed_polls += 1;
            return None;
        }
        let mut m = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut it = line.trim().splitn(3, '|');
            if let (Some(id), Some(st), Some(name)) = (it.next(), it.next(), it.next()) {
                m.insert(id.to_string(), (st.to_string(), name.to_string()));
            }
        }
        Some(m)
    }

    /// The final state sacct knows of an array task, if accounting answers.
    fn sacct_state(&mut self, job_id: &str, index: usize, since: &str) -> Option<String> {
        self.sacct_calls += 1;
        // sacct needs an explicit start time: its default (midnight today) misses older jobs.
        let since = since.trim_end_matches('Z');
        let out = Command::new("sacct")
            .args([
                "-n",
                "-P",
                "-X",
                "-j",
                job_id,
                "-S",
                since,
                "-o",
                "JobID,State",
            ])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let want = format!("{job_id}_{index}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('|'))
            .find(|(id, _)| *id == want)
            .map(|(_, st)| st.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn report_failure(&self, f: &Flight, why: &str, ctx: &Ctx) -> String {
        let id = format!(
            "{}_{}",
            f.entry.job_id.as_deref().unwrap_or("?"),
            f.entry.index
        );
        let log = ctx.store.log_path(&f.entry.key);
        let slog = self.dir.join("logs").join(format!("{id}.out"));
        let mut msg = format!(
            "{why} (Slurm array task {id}, attempt {}; log: {}; Slurm log: {})",
            f.entry.attempt + 1,
            log.display(),
            slog.display()
        );
        let t = tail(&log, 20);
        if !t.is_empty() {
            msg.push('\n');
            msg.push_str(&t);
        }
        let t = tail(&slog, 5);
        if !t.is_empty() {
            msg.push_str("\n    Slurm log:\n");
            msg.push_str(&t);
        }
        msg
    }
}

/// The batch script: array task i runs line i+1 of the manifest (bin, task dir, spec, log,
/// threads), then records `<exit code> <start> <end>` in `<task dir>/exit` (atomically).
fn job_script(manifest: &Path) -> String {
    format!(
        r#"#!/bin/bash
# Written by `icl reproduce --executor slurm`; array task i runs line i+1 of the manifest.
set -u
IFS=$'\t' read -r bin dir spec log threads < <(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" '{manifest}')
cd "$dir" || exit 111
rm -f "$dir/exit" "$dir/exit.tmp"
start=$(date +%s.%N)
RAYON_NUM_THREADS="$threads" "$bin" run --task "$spec" > "$log" 2>&1 < /dev/null
rc=$?
end=$(date +%s.%N)
printf '%s %s %s\n' "$rc" "$start" "$end" > "$dir/exit.tmp" && mv -f "$dir/exit.tmp" "$dir/exit"
exit "$rc"
"#,
        manifest = manifest.display().to_string().replace('\'', r"'\''")
    )
}

fn epoch(s: &str) -> Option<SystemTime> {
    let f: f64 = s.parse().ok()?;
    (f.is_finite() && f >= 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(f))
}

impl Executor for SlurmExec {
    fn capacity(&self) -> usize {
        usize::MAX
    }

    fn start(
        &mut self,
        ctx: &Ctx,
        batch: Vec<Launch>,
        progress: &Progress,
    ) -> Vec<(Launch, String)> {
        let mut fresh = Vec::new();
        let mut adopted_any = false;
        for mut l in batch {
            // Submitted by an earlier driver: wait on that job instead of resubmitting.
            if let Some(e) = self.orphans.remove(&l.key) {
                l.attempt = l.attempt.max(e.attempt);
                progress.println(&format!(
                    "slurm: {} is array task {}_{} of a previous driver; waiting on it",
                    ctx.plan.label(l.task),
                    e.job_id.as_deref().unwrap_or("?"),
                    e.index
                ));
                self.adopted += 1;
                adopted_any = true;
                let task_dir = self.task_dir(&l.key);
                self.flights.push(Flight {
                    launch: l,
                    entry: e,
                    task_dir,
                    missing_polls: 0,
                    missing_since: None,
                });
            } else {
                fresh.push(l);
            }
        }
        if adopted_any {
            // Check the adopted tasks at once rather than after a full poll interval.
            self.last_poll = None;
        }
        let mut failed = Vec::new();
        while !fresh.is_empty() {
            let rest = fresh.split_off(fresh.len().min(MAX_ARRAY));
            failed.extend(self.submit(ctx, fresh, progress));
            fresh = rest;
        }
        failed
    }

    fn poll(&mut self, ctx: &Ctx, progress: &Progress) -> anyhow::Result<Vec<Finished>> {
        if self.flights.is_empty() {
            return Ok(Vec::new());
        }
        let interval = Duration::from_secs_f64(self.opts.poll_interval);
        if self.last_poll.is_some_and(|t| t.elapsed() < interval) {
            return Ok(Vec::new());
        }
        self.last_poll = Some(Instant::now());
        let Some(queue) = self.squeue() else {
            if self.failed_polls == 1 || self.failed_polls.is_multiple_of(10) {
                progress.println(&format!(
                    "warning: slurm: squeue did not answer ({} time(s)); job states unknown, still waiting",
                    self.failed_polls
                ));
            }
            return Ok(Vec::new());
        };
        // A driver killed between sbatch and saving the id: find the job by its name (and
        // journal the submission the dead driver could not).
        let mut recovered: BTreeMap<String, String> = BTreeMap::new(); // name -> job id
        for f in self.flights.iter_mut().filter(|f| f.entry.job_id.is_none()) {
            if let Some(id) = queue.iter().find_map(|(id, (_, name))| {
                (*name == f.entry.name).then(|| id.split('_').next().unwrap_or("").to_string())
            }) {
                f.entry.job_id = Some(id.clone());
                recovered.insert(f.entry.name.clone(), id);
            }
        }
        for (name, id) in &recovered {
            let entries: Vec<Entry> = self
                .flights
                .iter()
                .filter(|f| f.entry.name == *name)
                .map(|f| f.entry.clone())
                .collect();
            self.journal(name, id, &entries)?;
        }
        let found_ids = !recovered.is_empty();
        let mut ended = Vec::new();
        let mut keep = Vec::new();
        let flights = std::mem::take(&mut self.flights);
        for mut f in flights {
            let id = f
                .entry
                .job_id
                .as_ref()
                .map(|j| format!("{j}_{}", f.entry.index));
            if id.as_ref().is_some_and(|id| queue.contains_key(id)) {
                f.missing_polls = 0;
                f.missing_since = None;
                keep.push(f);
                continue;
            }
            // Gone from the queue (or never seen): the exit file decides.
            let exit = fs::read_to_string(f.task_dir.join("exit")).ok();
            let fields: Vec<String> = exit
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if let Some(rc) = fields.first().and_then(|s| s.parse::<i32>().ok()) {
                let started = fields.get(1).and_then(|s| epoch(s)).unwrap_or(UNIX_EPOCH);
                let finished = fields.get(2).and_then(|s| epoch(s)).unwrap_or(started);
                let secs = finished
                    .duration_since(started)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                let outcome = if rc == 0 {
                    Ok(())
                } else {
                    Err(self.report_failure(&f, &format!("exit code {rc}"), ctx))
                };
                ended.push(Finished {
                    launch: f.launch,
                    task_dir: f.task_dir,
                    outcome,
                    started,
                    finished,
                    secs,
                });
                continue;
            }
            f.missing_polls += 1;
            let since = *f.missing_since.get_or_insert_with(Instant::now);
            if f.missing_polls < LOST_POLLS || since.elapsed() < LOST_GRACE {
                keep.push(f);
                continue;
            }
            let state = match &f.entry.job_id {
                Some(j) => {
                    let (j, i, s) = (j.clone(), f.entry.index, f.entry.submitted.clone());
                    self.sacct_state(&j, i, &s)
                }
                None => None,
            };
            let why = format!(
                "the Slurm job ended without a result (state: {}): time limit, preemption \
                 without requeue, out of memory, node failure or scancel",
                state.as_deref().unwrap_or("unknown, sacct has no record")
            );
            let msg = self.report_failure(&f, &why, ctx);
            let now = SystemTime::now();
            ended.push(Finished {
                launch: f.launch,
                task_dir: f.task_dir,
                outcome: Err(msg),
                started: now,
                finished: now,
                secs: 0.0,
            });
        }
        self.flights = keep;
        if !ended.is_empty() || found_ids {
            self.save()?;
        }
        Ok(ended)
    }

    fn in_flight(&self) -> Vec<usize> {
        self.flights.iter().map(|f| f.launch.task).collect()
    }

    fn cancel(&mut self, _ctx: &Ctx, _progress: &Progress) {
        let ids: BTreeSet<String> = self
            .flights
            .iter()
            .filter_map(|f| f.entry.job_id.clone())
            .collect();
        let names: BTreeSet<String> = self
            .flights
            .iter()
            .filter(|f| f.entry.job_id.is_none())
            .map(|f| f.entry.name.clone())
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("scancel")
                .args(&ids)
                .stdin(Stdio::null())
                .status();
        }
        for n in &names {
            let _ = Command::new("scancel")
                .args(["--me", "-n", n])
                .stdin(Stdio::null())
                .status();
        }
        // Wait (briefly) until the cancelled tasks have left the queue, so that none writes
        // into a folder after it is removed.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            match self.squeue() {
                Some(q) => {
                    let alive = q.iter().any(|(id, (_, name))| {
                        ids.contains(id.split('_').next().unwrap_or("")) || names.contains(name)
                    });
                    if !alive {
                        break;
                    }
                }
                None => break,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        for f in self.flights.drain(..) {
            let _ = fs::remove_dir_all(&f.task_dir);
        }
        let _ = self.save();
        if !ids.is_empty() || !names.is_empty() {
            eprintln!(
                "icl: slurm: cancelled job(s) {}",
                ids.iter()
                    .chain(names.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    fn wait_hint(&self) -> Duration {
        match self.last_poll {
            Some(t) => Duration::from_secs_f64(self.opts.poll_interval)
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(50)),
            None => Duration::from_millis(50),
        }
    }

    fn max_retries(&self) -> u32 {
        self.opts.max_retries
    }

    fn close(&mut self, _ctx: &Ctx, progress: &Progress) {
        // Entries of an earlier driver that this run did not need: forget those whose job has
        // left the queue (a later run resubmits them if it needs them).
        if !self.orphans.is_empty() {
            if let Some(q) = self.squeue() {
                let gone: Vec<String> = self
                    .orphans
                    .iter()
                    .filter(|(_, e)| {
                        !q.iter().any(|(id, (_, name))| {
                            *name == e.name
                                || e.job_id
                                    .as_ref()
                                    .is_some_and(|j| *id == format!("{j}_{}", e.index))
                        })
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in gone {
                    self.orphans.remove(&k);
                    let _ = fs::remove_dir_all(self.task_dir(&k));
                }
            }
            if !self.orphans.is_empty() {
                progress.println(&format!(
                    "slurm: {} task(s) of an earlier run, not part of this one, are still queued",
                    self.orphans.len()
                ));
            }
        }
        let _ = self.save();
        // Job scripts and manifests of jobs with nothing left in flight.
        let live: BTreeSet<String> = self.orphans.values().map(|e| e.name.clone()).collect();
        if let Ok(rd) = fs::read_dir(self.dir.join("jobs")) {
            for e in rd.flatten() {
                let p = e.path();
                let stem = p.file_stem().map(|s| s.to_string_lossy().to_string());
                if stem.is_some_and(|s| !live.contains(&s)) {
                    let _ = fs::remove_file(&p);
                }
            }
        }
        progress.println(&format!(
            "icl: slurm: {} sbatch submission(s) ({} array task(s)), {} squeue poll(s) ({} unanswered), {} sacct call(s), {} task(s) adopted from an earlier driver",
            self.submissions,
            self.array_tasks,
            self.polls,
            self.failed_polls,
            self.sacct_calls,
            self.adopted
        ));
    }
}
