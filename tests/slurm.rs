//! Integration tests of `icl reproduce --executor slurm` against a real Slurm (slurmctld +
//! slurmd + munged on loopback, started by ci/slurm/start.sh; clients find it via SLURM_CONF).
//!
//! Ignored by plain `cargo test` (they take minutes and need the daemons): `make test-slurm`
//! runs them alone (ci/slurm/test.sh starts Slurm if it is installed and not running). When
//! Slurm does not answer they print `SKIP` and pass, unless CI_REQUIRE_SLURM=1 (set by .ci/run),
//! where that is a failure.
//!
//! Failure injection: a private bin folder where one stage binary is a shell wrapper around the
//! real one. `fail_once` fails the first `run` of any task it wraps (a marker folder created with
//! mkdir, which is atomic, so exactly one array task fails, once); `slow` sleeps before `run`
//! so that the driver can be killed while tasks are pending and running.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin_dir, text, workspace, ICL};

/// Whether Slurm answers; prints SKIP (or panics under CI_REQUIRE_SLURM=1) when it does not.
fn slurm_up(test: &str) -> bool {
    let out = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .stdin(Stdio::null())
        .output();
    let ok = matches!(&out, Ok(o) if o.status.success()
        && String::from_utf8_lossy(&o.stdout).lines().any(|l| !l.contains("down") && !l.contains("drain")));
    if !ok {
        let why = match &out {
            Ok(o) => format!(
                "sinfo: {}{}",
                String::from_utf8_lossy(&o.stderr).trim(),
                String::from_utf8_lossy(&o.stdout).trim()
            ),
            Err(e) => format!("cannot run sinfo: {e}"),
        };
        if std::env::var("CI_REQUIRE_SLURM").is_ok_and(|v| v == "1") {
            panic!("CI_REQUIRE_SLURM=1 but Slurm is not usable ({why}); start it with ci/slurm/start.sh");
        }
        eprintln!(
            "SKIP {test}: Slurm is not usable ({why}). Install slurmctld slurmd slurm-client munge and run `make test-slurm`."
        );
    }
    ok
}

/// A pipeline folder (the real pipeline.yaml plus a `slurm:` section), a snapshot of the
/// workspace sources (so concurrent edits cannot change code fingerprints mid-test) and a bin
/// folder of frozen copies of the real binaries.
struct Sandbox {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ws: PathBuf,
    bins: PathBuf,
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let real = workspace();
        let ws = root.join("ws");
        fs::create_dir_all(&ws).unwrap();
        fs::copy(real.join("Cargo.toml"), ws.join("Cargo.toml")).unwrap();
        for e in fs::read_dir(real.join("crates")).unwrap().flatten() {
            let dst = ws.join("crates").join(e.file_name());
            for f in ["Cargo.toml", "build.rs"] {
                if e.path().join(f).is_file() {
                    fs::create_dir_all(&dst).unwrap();
                    fs::copy(e.path().join(f), dst.join(f)).unwrap();
                }
            }
            if e.path().join("src").is_dir() {
                copy_tree(&e.path().join("src"), &dst.join("src"));
            }
        }
        let yaml = fs::read_to_string(real.join("pipeline.yaml")).unwrap();
        let yaml = format!(
            "{yaml}\n# Added by tests/slurm.rs.\nslurm:\n  poll_interval: 1\n  max_retries: 1\n  array_throttle: 8\n"
        );
        fs::write(ws.join("pipeline.yaml"), yaml).unwrap();
        let bins = root.join("bin");
        fs::create_dir_all(&bins).unwrap();
        for e in fs::read_dir(bin_dir()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if (name == "icl" || name.starts_with("icl-"))
                && !name.contains('.')
                && e.path().is_file()
            {
                freeze(&e.path(), &bins.join(&name));
            }
        }
        Sandbox {
            _tmp: tmp,
            root,
            ws,
            bins,
        }
    }
}

/// A private copy of a binary: a hard link (the same inode even after cargo replaces the file,
/// so a rebuild of the shared target folder in the middle of a test cannot change what the
/// local and the Slurm runs execute), or a copy across filesystems.
fn freeze(src: &Path, dst: &Path) {
    if fs::hard_link(src, dst).is_err() {
        fs::copy(src, dst).unwrap();
    }
}

/// Replace `bin` in the bin folder `bins` by a shell wrapper around the frozen binary: `pre`
/// runs before a `run` subcommand (`check` passes straight through).
fn wrap(bins: &Path, bin: &str, pre: &str) {
    {
        let p = bins.join(bin);
        let real = bins.join(format!(".{bin}.real"));
        fs::rename(&p, &real).unwrap();
        fs::write(
            &p,
            format!(
                "#!/bin/sh\nif [ \"$1\" = run ]; then\n{pre}\nfi\nexec '{}' \"$@\"\n",
                real.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

impl Sandbox {
    fn cmd(&self, bins: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(ICL);
        c.args(["-f"])
            .arg(self.ws.join("pipeline.yaml"))
            .args(args)
            .current_dir(&self.root)
            .env("ICL_BIN_DIR", bins)
            .env("ICL_WORKSPACE", &self.ws)
            .stdin(Stdio::null());
        c
    }

    /// `icl reproduce --profile ci` into `root/<name>` (data) and `root/<name>-pub`.
    fn reproduce(&self, name: &str, bins: &Path, extra: &[&str]) -> Output {
        self.reproduce_cmd(name, bins, extra)
            .output()
            .expect("run icl")
    }

    fn reproduce_cmd(&self, name: &str, bins: &Path, extra: &[&str]) -> Command {
        let data = self.root.join(name);
        let publ = self.root.join(format!("{name}-pub"));
        let mut args: Vec<String> = [
            "reproduce",
            "--profile",
            "ci",
            "--data-dir",
            data.to_str().unwrap(),
            "--publish-dir",
            publ.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        self.cmd(bins, &args)
    }

    fn data(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// (stage, point) -> (key, {output: hash}) over every run record of a store.
type Records = BTreeMap<(String, String), (String, BTreeMap<String, String>)>;

fn records(data: &Path) -> Records {
    let mut out = Records::new();
    let Ok(stages) = fs::read_dir(data.join("runs")) else {
        return out;
    };
    for st in stages.flatten() {
        for f in fs::read_dir(st.path()).unwrap().flatten() {
            if f.path().extension().is_none_or(|e| e != "json") {
                continue;
            }
            let r: serde_json::Value =
                serde_json::from_slice(&fs::read(f.path()).unwrap()).unwrap();
            let outs = r["outputs"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v["hash"].as_str().unwrap().to_string()))
                .collect();
            let k = (
                r["stage"].as_str().unwrap().to_string(),
                r["point"].to_string(),
            );
            let prev = out.insert(k.clone(), (r["key"].as_str().unwrap().to_string(), outs));
            assert!(
                prev.is_none(),
                "two run records for {k:?} in {}",
                data.display()
            );
        }
    }
    out
}

/// Every object file of a store, by name (= its blake3 + extension).
fn objects(data: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in fs::read_dir(data.join("objects")).unwrap().flatten() {
        for f in fs::read_dir(d.path()).unwrap().flatten() {
            out.insert(f.file_name().to_string_lossy().to_string());
        }
    }
    out
}

/// Assert that two stores hold the same tasks with the same keys and output hashes, and the
/// same object files.
fn assert_same_store(local: &Path, slurm: &Path, expect_tasks: usize) {
    let a = records(local);
    let b = records(slurm);
    assert_eq!(a.len(), expect_tasks, "local run records");
    let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "tasks only in the local store: {only_a:?}; only in the Slurm store: {only_b:?}"
    );
    let mut differ = Vec::new();
    for (k, (key_a, outs_a)) in &a {
        let (key_b, outs_b) = &b[k];
        if key_a != key_b || outs_a != outs_b {
            differ.push(format!(
                "{k:?}: local {key_a} {outs_a:?} vs slurm {key_b} {outs_b:?}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "artifacts differ:\n{}",
        differ.join("\n")
    );
    assert_eq!(objects(local), objects(slurm), "object sets differ");
}

/// The journal: (job id, key, attempt) per submitted array task.
fn journal(data: &Path) -> Vec<(String, String, u64)> {
    let text = fs::read_to_string(data.join("slurm/journal.jsonl")).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for t in v["tasks"].as_array().unwrap() {
            out.push((
                v["job_id"].as_str().unwrap().to_string(),
                t["key"].as_str().unwrap().to_string(),
                t["attempt"].as_u64().unwrap(),
            ));
        }
    }
    out
}

fn state_tasks(data: &Path) -> usize {
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(data.join("slurm/state.json")).unwrap()).unwrap();
    v["tasks"].as_array().unwrap().len()
}

fn our_jobs_in_queue(job_ids: &BTreeSet<String>) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "--me", "-o", "%i"])
        .output()
        .unwrap();
    assert!(out.status.success(), "squeue failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|id| job_ids.contains(id.split('_').next().unwrap()))
        .collect()
}

/// The full ci profile through Slurm: every artifact equals the local executor's.
#[test]
#[ignore = "needs a running Slurm: make test-slurm"]
fn ci_profile_hashes_equal_local() {
    if !slurm_up("ci_profile_hashes_equal_local") {
        return;
    }
    let sb = Sandbox::new();
    let t0 = Instant::now();
    let local = sb.reproduce("local", &sb.bins, &["--jobs", "2"]);
    assert!(
        local.status.success(),
        "local run failed:\n{}",
        text(&local)
    );
    let t_local = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let slurm = sb.reproduce("slurm", &sb.bins, &["--executor", "slurm"]);
    let t_slurm = t0.elapsed().as_secs_f64();
    assert!(
        slurm.status.success(),
        "slurm run failed:\n{}",
        text(&slurm)
    );
    let err = String::from_utf8_lossy(&slurm.stderr).to_string();
    let stats = err
        .lines()
        .find(|l| l.contains("sbatch submission(s)"))
        .unwrap_or_else(|| panic!("no Slurm statistics line:\n{err}"));
    eprintln!("ci profile: local {t_local:.1} s, slurm {t_slurm:.1} s; {stats}");

    let n_tasks = records(&sb.data("local")).len();
    assert!(n_tasks >= 50, "the ci profile has ~54 tasks, got {n_tasks}");
    assert_same_store(&sb.data("local"), &sb.data("slurm"), n_tasks);
    // Every task ran through Slurm, each submitted once.
    let j = journal(&sb.data("slurm"));
    assert_eq!(j.len(), n_tasks, "array tasks submitted");
    let keys: BTreeSet<&String> = j.iter().map(|(_, k, _)| k).collect();
    assert_eq!(keys.len(), n_tasks, "a task was submitted twice");
    // The published claim table is byte-identical.
    let a = fs::read(sb.root.join("local-pub/claims.parquet")).unwrap();
    let b = fs::read(sb.root.join("slurm-pub/claims.parquet")).unwrap();
    assert!(
        a == b,
        "claims.parquet differs between the local and Slurm runs"
    );
    assert_eq!(
        state_tasks(&sb.data("slurm")),
        0,
        "state.json still lists tasks"
    );

    // A second Slurm run finds everything cached and submits nothing.
    let again = sb.reproduce("slurm", &sb.bins, &["--executor", "slurm"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        journal(&sb.data("slurm")).len(),
        n_tasks,
        "cached tasks were resubmitted"
    );
}

/// One array task fails (injected); the report names it with its log tail, the retry succeeds,
/// the artifacts equal the local executor's. Without retries the same failure is final.
#[test]
#[ignore = "needs a running Slurm: make test-slurm"]
fn failed_array_task_is_reported_and_retried() {
    if !slurm_up("failed_array_task_is_reported_and_retried") {
        return;
    }
    let sb = Sandbox::new();
    let sel = ["--stage", "testsets_memo"];
    let local = sb.reproduce("local", &sb.bins, &[&sel[..], &["--jobs", "2"]].concat());
    assert!(local.status.success(), "{}", text(&local));

    let marker = sb.root.join("failed-once");
    let fail_bins = sb.root.join("bin-fail");
    copy_links(&sb.bins, &fail_bins);
    wrap(
        &fail_bins,
        "icl-datagen",
        &format!(
            "if mkdir '{}' 2>/dev/null; then echo 'injected failure: the first array task fails once' >&2; exit 3; fi",
            marker.display()
        ),
    );
    let out = sb.reproduce(
        "slurm",
        &fail_bins,
        &[&sel[..], &["--executor", "slurm", "--max-retries", "1"]].concat(),
    );
    let all = text(&out);
    assert!(out.status.success(), "the retry should succeed:\n{all}");
    assert!(marker.is_dir(), "the failure was not injected");
    assert!(
        all.contains("FAILED ") && all.contains("exit code 3"),
        "{all}"
    );
    assert!(
        all.contains("injected failure"),
        "the report lacks the log tail:\n{all}"
    );
    assert!(
        all.contains("retrying ") && all.contains("(attempt 2 of 2)"),
        "{all}"
    );
    assert!(all.contains(", 1 retried"), "{all}");
    assert_same_store(&sb.data("local"), &sb.data("slurm"), 6);
    let j = journal(&sb.data("slurm"));
    let retried: Vec<_> = j.iter().filter(|(_, _, a)| *a == 1).collect();
    assert_eq!(retried.len(), 1, "exactly one resubmission: {j:?}");
    assert_eq!(j.len(), 7, "6 tasks + 1 retry: {j:?}");
    assert_eq!(state_tasks(&sb.data("slurm")), 0);

    // No retries allowed: the failure is final, with a clear report, and leaves no record.
    fs::remove_dir(&marker).unwrap();
    let out = sb.reproduce(
        "slurm-noretry",
        &fail_bins,
        &[&sel[..], &["--executor", "slurm", "--max-retries", "0"]].concat(),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("FAILED ") && all.contains("injected failure"),
        "{all}"
    );
    assert!(all.contains("1 failed"), "{all}");
    assert!(
        all.contains("blocked"),
        "the failed task's dependents are blocked:\n{all}"
    );
    assert!(records(&sb.data("slurm-noretry")).len() < 6);
    assert_eq!(state_tasks(&sb.data("slurm-noretry")), 0);
}

fn copy_links(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        freeze(&e.path(), &to.join(e.file_name()));
    }
}

/// Wait until `cond` holds (polling), or panic after `secs`.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start(c: &mut Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGKILL the driver while array tasks are pending and running; the restarted driver waits on
/// them (no resubmission), collects those that finished meanwhile, and the artifacts equal the
/// local executor's.
#[test]
#[ignore = "needs a running Slurm: make test-slurm"]
fn killed_driver_resumes_without_resubmitting() {
    if !slurm_up("killed_driver_resumes_without_resubmitting") {
        return;
    }
    let sb = Sandbox::new();
    let sel = ["--stage", "train_memo"];
    let local = sb.reproduce("local", &sb.bins, &[&sel[..], &["--jobs", "2"]].concat());
    assert!(local.status.success(), "{}", text(&local));
    let n_tasks = records(&sb.data("local")).len();
    assert_eq!(n_tasks, 12, "train_memo: 3 item sets, 3 test sets, 6 runs");

    // Slow training (6 s before each run) and 2 array tasks at a time: 3 waves.
    let slow_bins = sb.root.join("bin-slow");
    copy_links(&sb.bins, &slow_bins);
    wrap(&slow_bins, "icl-train", "sleep 6");
    let args = [&sel[..], &["--executor", "slurm", "--array-throttle", "2"]].concat();
    let data = sb.data("slurm");
    let mut driver = start(&mut sb.reproduce_cmd("slurm", &slow_bins, &args));
    // Kill once the training array is submitted and its first wave runs.
    let train_submitted = || {
        let text = fs::read_to_string(data.join("slurm/journal.jsonl")).unwrap_or_default();
        text.lines().any(|l| l.contains("\"train_memo\""))
    };
    wait_for(120, "the training array to be submitted", train_submitted);
    std::thread::sleep(Duration::from_secs(2));
    driver.kill().unwrap(); // SIGKILL
    let killed = driver.wait_with_output().unwrap();
    let before = journal(&data);
    let done_before = records(&data).len();
    assert!(
        done_before < n_tasks,
        "the driver finished before the kill:\n{}",
        text(&killed)
    );
    let in_flight = state_tasks(&data);
    assert!(
        in_flight > 0,
        "state.json lists no task in flight after the kill"
    );
    // Let a wave finish while no driver is watching.
    std::thread::sleep(Duration::from_secs(8));

    let out = sb.reproduce("slurm", &slow_bins, &args);
    let all = text(&out);
    assert!(out.status.success(), "the restarted driver failed:\n{all}");
    assert!(all.contains("of a previous driver; waiting on it"), "{all}");
    let j = journal(&data);
    let keys: BTreeSet<&String> = j.iter().map(|(_, k, _)| k).collect();
    assert_eq!(
        keys.len(),
        j.len(),
        "a task was submitted twice:\nbefore the kill {before:?}\nafter {j:?}\n{all}"
    );
    assert_eq!(
        j.len(),
        n_tasks,
        "every task submitted exactly once (journal {j:?})\n{all}"
    );
    // The restart adopted every task in flight and submitted only the tasks no driver had
    // submitted yet (its statistics line counts the array tasks it submitted).
    let stats = all
        .lines()
        .find(|l| l.contains("sbatch submission(s) ("))
        .unwrap_or_else(|| panic!("no statistics line:\n{all}"));
    let submitted: usize = stats
        .split("sbatch submission(s) (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {stats}"));
    assert_eq!(
        submitted,
        n_tasks - done_before - in_flight,
        "the restart submitted tasks that were in flight:\n{all}"
    );
    assert_same_store(&sb.data("local"), &data, n_tasks);
    assert_eq!(state_tasks(&data), 0);
    eprintln!(
        "kill test: {done_before} task(s) recorded and {in_flight} in flight at the kill; the restart submitted {submitted}"
    );
}

/// Ctrl-C (SIGINT): the driver scancels its jobs, exits 130, and leaves no record of an
/// unfinished task.
#[test]
#[ignore = "needs a running Slurm: make test-slurm"]
fn interrupt_cancels_jobs() {
    if !slurm_up("interrupt_cancels_jobs") {
        return;
    }
    let sb = Sandbox::new();
    let slow_bins = sb.root.join("bin-slow");
    copy_links(&sb.bins, &slow_bins);
    wrap(&slow_bins, "icl-train", "sleep 120");
    let data = sb.data("slurm");
    let args = ["--stage", "train_memo", "--executor", "slurm"];
    let driver = start(&mut sb.reproduce_cmd("slurm", &slow_bins, &args));
    let train_submitted = || {
        let text = fs::read_to_string(data.join("slurm/journal.jsonl")).unwrap_or_default();
        text.lines().any(|l| l.contains("\"train_memo\""))
    };
    wait_for(120, "the training array to be submitted", train_submitted);
    std::thread::sleep(Duration::from_secs(2));
    let ids: BTreeSet<String> = journal(&data).into_iter().map(|(j, _, _)| j).collect();
    assert!(
        !our_jobs_in_queue(&ids).is_empty(),
        "no training job in the queue"
    );
    unsafe {
        libc::kill(driver.id() as libc::pid_t, libc::SIGINT);
    }
    let t0 = Instant::now();
    let out = driver.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "cancel took too long"
    );
    assert!(all.contains("cancelled job(s)"), "{all}");
    assert!(our_jobs_in_queue(&ids).is_empty(), "jobs left in the queue");
    let recs = records(&data);
    assert!(
        !recs.keys().any(|(s, _)| s == "train_memo"),
        "a cancelled task left a run record"
    );
    assert_eq!(state_tasks(&data), 0);
    let left: Vec<_> = fs::read_dir(data.join("slurm/tasks"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "task folders left: {left:?}");
}

/// An array task killed from outside (here `scancel` of one array task, as a time limit, node
/// failure or preemption without requeue would) leaves no exit file: once it has left the
/// queue for the grace period the driver reports it, resubmits it, and the run succeeds.
#[test]
#[ignore = "needs a running Slurm: make test-slurm"]
fn task_killed_outside_is_resubmitted() {
    if !slurm_up("task_killed_outside_is_resubmitted") {
        return;
    }
    let sb = Sandbox::new();
    let slow_bins = sb.root.join("bin-slow");
    copy_links(&sb.bins, &slow_bins);
    wrap(&slow_bins, "icl-datagen", "sleep 5");
    let data = sb.data("slurm");
    let args = ["--stage", "items_memo", "--executor", "slurm"];
    let driver = start(&mut sb.reproduce_cmd("slurm", &slow_bins, &args));
    wait_for(60, "the first submission", || !journal(&data).is_empty());
    let (job, key, _) = journal(&data)[0].clone();
    let victim = format!("{job}_0");
    let st = Command::new("scancel").arg(&victim).status().unwrap();
    assert!(st.success(), "scancel {victim}");
    let out = driver.wait_with_output().unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("ended without a result"), "{all}");
    assert!(all.contains(&format!("array task {victim}")), "{all}");
    assert!(all.contains("retrying items_memo"), "{all}");
    let j = journal(&data);
    assert_eq!(j.len(), 4, "3 tasks + 1 resubmission: {j:?}");
    assert!(j.iter().any(|(_, k, a)| *k == key && *a == 1), "{j:?}");
    assert_eq!(records(&data).len(), 3);
    assert_eq!(state_tasks(&data), 0);
}
