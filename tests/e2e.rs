//! End-to-end tests of the `icl` runner driving the real stage binaries (the `icl-datagen`
//! stages, which are cheap) in temporary folders.
//!
//! Needs every binary built first (`cargo build --release --bins`; `make test` does it). The
//! binaries are found next to `icl` (or in `ICL_BIN_DIR`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin_dir, text, workspace, ICL};

fn require_datagen() {
    let p = bin_dir().join("icl-datagen");
    assert!(
        p.is_file(),
        "{} is missing: build every binary first with `cargo build --release --bins` (`make test` does)",
        p.display()
    );
}

fn icl_cmd_with(dir: &Path, bins: &Path, ws: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(ICL);
    c.args(args)
        .current_dir(dir)
        .env("ICL_BIN_DIR", bins)
        .env("ICL_WORKSPACE", ws)
        .stdin(Stdio::null());
    c
}

/// `icl` against the real binaries and workspace (for commands that run no stage).
fn icl_in(dir: &Path, args: &[&str]) -> Output {
    icl_cmd_with(dir, &bin_dir(), &workspace(), args)
        .output()
        .expect("run icl")
}

/// A pipeline folder plus private copies of what the runner fingerprints and runs: a snapshot
/// of the workspace sources (so that concurrent edits of the real tree cannot change code
/// fingerprints mid-test, and tests can edit code) and a bin folder of links to the real stage
/// binaries, with `icl-datagen-b` as a second name for `icl-datagen` (its own crate copy), so
/// that two stages can have different code fingerprints.
struct Sandbox {
    _tmp: tempfile::TempDir,
    proj: PathBuf,
    ws: PathBuf,
    bins: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path().to_path_buf();
        Sandbox {
            _tmp: tmp,
            proj: r.join("proj"),
            ws: r.join("ws"),
            bins: r.join("bin"),
        }
    }
    /// The pipeline folder.
    fn path(&self) -> &Path {
        &self.proj
    }
    fn cmd(&self, args: &[&str]) -> Command {
        icl_cmd_with(&self.proj, &self.bins, &self.ws, args)
    }
    fn icl(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run icl")
    }
}

fn copy_crate_sources(from: &Path, to: &Path) {
    for f in ["Cargo.toml", "build.rs"] {
        if from.join(f).is_file() {
            fs::create_dir_all(to).unwrap();
            fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
    for f in files_under(&from.join("src")) {
        let dst = to.join(f.strip_prefix(from).unwrap());
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(&f, &dst).unwrap();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The "N ran" count of a reproduce summary line.
fn ran(o: &Output) -> usize {
    let s = stderr(o);
    let line = s
        .lines()
        .rev()
        .find(|l| l.contains(" ran, "))
        .unwrap_or_else(|| panic!("no summary line:\n{}", text(o)));
    let before = line.split(" ran, ").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

fn setup(yaml: &str) -> Sandbox {
    require_datagen();
    let sb = Sandbox::new();
    fs::create_dir_all(sb.path()).unwrap();
    fs::write(sb.path().join("pipeline.yaml"), yaml).unwrap();
    let real = workspace();
    fs::create_dir_all(&sb.ws).unwrap();
    fs::copy(real.join("Cargo.toml"), sb.ws.join("Cargo.toml")).unwrap();
    for e in fs::read_dir(real.join("crates")).unwrap().flatten() {
        copy_crate_sources(&e.path(), &sb.ws.join("crates").join(e.file_name()));
    }
    copy_crate_sources(
        &real.join("crates/icl-datagen"),
        &sb.ws.join("crates/icl-datagen-b"),
    );
    fs::create_dir_all(&sb.bins).unwrap();
    for e in fs::read_dir(bin_dir()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("icl-") && !name.contains('.') && e.path().is_file() {
            std::os::unix::fs::symlink(e.path(), sb.bins.join(&name)).unwrap();
        }
    }
    std::os::unix::fs::symlink(bin_dir().join("icl-datagen"), sb.bins.join("icl-datagen-b"))
        .unwrap();
    sb
}

fn edit(dir: &Path, from: &str, to: &str) {
    let p = dir.join("pipeline.yaml");
    let s = fs::read_to_string(&p).unwrap();
    assert!(s.contains(from), "pipeline.yaml has no `{from}`");
    fs::write(&p, s.replacen(from, to, 1)).unwrap();
}

/// 1-based line of the first line containing `needle`.
fn line_of(yaml: &str, needle: &str) -> usize {
    yaml.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}`"))
        + 1
}

/// (stage, point id) -> {output: object hash}, from the run records the index points at.
fn final_hashes(data: &Path) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for stage in fs::read_dir(data.join("index")).unwrap().flatten() {
        for f in fs::read_dir(stage.path()).unwrap().flatten() {
            // A kill between writing `x.json.tmp` and its rename leaves garbage, not an entry.
            if f.path().extension().is_none_or(|e| e != "json") {
                continue;
            }
            let e: serde_json::Value =
                serde_json::from_slice(&fs::read(f.path()).unwrap()).unwrap();
            let stage_name = e["stage"].as_str().unwrap().to_string();
            let key = e["key"].as_str().unwrap();
            let rec: serde_json::Value = serde_json::from_slice(
                &fs::read(
                    data.join("runs")
                        .join(&stage_name)
                        .join(format!("{key}.json")),
                )
                .unwrap(),
            )
            .unwrap();
            let outs = rec["outputs"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v["hash"].as_str().unwrap().to_string()))
                .collect();
            let pid = f.path().file_stem().unwrap().to_string_lossy().to_string();
            out.insert((stage_name, pid), outs);
        }
    }
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Every object is named by the blake3 of its bytes and sits under its 2-hex prefix; nothing
/// else (no partial file) is in objects/.
fn assert_objects_valid(data: &Path) -> usize {
    let objs = files_under(&data.join("objects"));
    for f in &objs {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let stem = name.split('.').next().unwrap();
        let actual = blake3::hash(&fs::read(f).unwrap()).to_hex().to_string();
        assert_eq!(stem, actual, "{} is not named by its blake3", f.display());
        assert_eq!(
            f.parent().unwrap().file_name().unwrap().to_string_lossy(),
            &actual[..2]
        );
    }
    objs.len()
}

const SMALL: &str = "version: 1
default_profile: small
stages:
  base:
    bin: icl-datagen
    command: items
    params: {D: 8, K: 10, data_seed: 3}
    outputs: [items]
    publish: {items: base/items.parquet}
  items:
    bin: icl-datagen
    command: items
    params: {D: 8, data_seed: 1}
    matrix: {K: [20, 40, 60]}
    outputs: [items]
  testsets:
    bin: icl-datagen
    command: testsets
    params: {D: 8, N: 6, n_test: 50, test_seed: 2, data_seed: 1}
    matrix: {K: [20, 40, 60]}
    inputs: {items: items.items}
    outputs: [novel_items, icl_test, iwl_test]
profiles:
  small: {}
  alt: {publish_dir: results/alt, stages: {testsets: {params: {n_test: 30}}}}
";

#[test]
fn second_run_is_cached_and_fast_and_objects_are_named_by_blake3() {
    let d = setup(SMALL);
    let o = d.icl(&["reproduce", "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ran(&o), 7, "{}", text(&o));
    let data = d.path().join("data");
    assert_eq!(assert_objects_valid(&data), 1 + 3 + 3 * 3);
    assert!(
        files_under(&data.join("tmp")).is_empty(),
        "tmp/ must be empty after a clean run"
    );
    assert!(files_under(&data.join("resume")).is_empty());
    // Published copy of the single-task stage equals its object.
    let published = d.path().join("results/base/items.parquet");
    let h = blake3::hash(&fs::read(&published).unwrap())
        .to_hex()
        .to_string();
    assert!(data
        .join("objects")
        .join(&h[..2])
        .join(format!("{h}.parquet"))
        .is_file());
    // Records: one per task, with timings and key components.
    let runs = files_under(&data.join("runs"));
    assert_eq!(runs.len(), 7);
    let rec: serde_json::Value = serde_json::from_slice(&fs::read(&runs[0]).unwrap()).unwrap();
    for k in [
        "key",
        "components",
        "outputs",
        "started",
        "finished",
        "duration_s",
        "log",
        "point",
    ] {
        assert!(rec.get(k).is_some(), "record lacks {k}: {rec}");
    }

    let t = Instant::now();
    let o = d.icl(&["reproduce"]);
    let secs = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ran(&o), 0, "{}", text(&o));
    assert!(secs < 2.0, "a no-op reproduce took {secs:.2} s");

    let o = d.icl(&["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["total"]["tasks"], 7);
    assert_eq!(s["total"]["cached"], 7);
    assert_eq!(s["total"]["to_run"], 0);
}

#[test]
fn editing_one_point_reruns_it_and_its_dependents_and_why_names_the_parameter() {
    let d = setup(SMALL);
    let o = d.icl(&["reproduce"]);
    assert!(o.status.success(), "{}", text(&o));
    let before = final_hashes(&d.path().join("data"));

    // One sweep point's K changes (60 -> 80) in both stages of the sweep.
    edit(
        d.path(),
        "matrix: {K: [20, 40, 60]}\n    outputs: [items]",
        "matrix: {K: [20, 40, 80]}\n    outputs: [items]",
    );
    edit(
        d.path(),
        "matrix: {K: [20, 40, 60]}\n    inputs",
        "matrix: {K: [20, 40, 80]}\n    inputs",
    );
    let o = d.icl(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let items = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stage"] == "items")
        .unwrap();
    let tests = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stage"] == "testsets")
        .unwrap();
    assert_eq!(
        (items["cached"].as_u64(), items["to_run"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    assert_eq!(
        (tests["cached"].as_u64(), tests["blocked"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );

    let o = d.icl(&["why", "items"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("items[K=80]"), "{out}");
    assert!(out.contains("param K: 60 -> 80"), "{out}");
    assert!(
        !out.contains("items[K=20]"),
        "cached points are not listed: {out}"
    );

    let o = d.icl(&["reproduce"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        ran(&o),
        2,
        "only items[K=80] and testsets[K=80] rerun:\n{}",
        text(&o)
    );
    let after = final_hashes(&d.path().join("data"));
    for pid in ["K=20", "K=40"] {
        for st in ["items", "testsets"] {
            let k = (st.to_string(), pid.to_string());
            assert_eq!(before[&k], after[&k], "{st} {pid} must be untouched");
        }
    }

    // A plain param of one stage: only that stage's tasks rerun, and `why` names it.
    edit(d.path(), "n_test: 50", "n_test: 40");
    let o = d.icl(&["why", "testsets", "--json"]);
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(w.as_array().unwrap().len(), 3);
    for t in w.as_array().unwrap() {
        assert_eq!(t["state"], "to_run");
        assert!(
            t["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "param n_test: 50 -> 40"),
            "{t}"
        );
    }
    let o = d.icl(&["reproduce"]);
    assert_eq!(ran(&o), 3, "{}", text(&o));

    // A profile override is a param change too.
    let o = d.icl(&["why", "testsets", "--profile", "alt"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("param n_test: 40 -> 30"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_flipped_byte_is_detected_warned_and_recomputed() {
    let d = setup(SMALL);
    let o = d.icl(&["reproduce"]);
    assert!(o.status.success(), "{}", text(&o));
    let data = d.path().join("data");
    let before = final_hashes(&data);
    let h = &before[&("items".to_string(), "K=20".to_string())]["items"];
    let obj = data
        .join("objects")
        .join(&h[..2])
        .join(format!("{h}.parquet"));
    let mut bytes = fs::read(&obj).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&obj, &bytes).unwrap();

    let o = d.icl(&["reproduce"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: object") && err.contains(h.as_str()) && err.contains("corrupt"),
        "{err}"
    );
    // Only the damaged task reruns; it reproduces the same bytes, so testsets[K=20] stays cached
    // (early cutoff: keys hash input contents, not upstream runs).
    assert_eq!(ran(&o), 1, "{}", text(&o));
    assert_eq!(
        blake3::hash(&fs::read(&obj).unwrap()).to_hex().to_string(),
        *h
    );
    assert_eq!(final_hashes(&data), before);
    assert_objects_valid(&data);
}

#[test]
fn a_failing_task_blocks_its_dependents_but_not_independent_tasks() {
    // testsets checks that its items input was generated from its data_seed: 2 != 1 fails at run
    // time (the params themselves are valid), and `more` depends on testsets.
    let y = SMALL
        .replace("test_seed: 2, data_seed: 1}", "test_seed: 2, data_seed: 2}")
        .replace(
            "profiles:\n",
            "  more:
    bin: icl-datagen
    command: testsets
    params: {D: 8, N: 4, test_seed: 5}
    matrix: {K: [20, 40, 60]}
    inputs: {items: testsets.novel_items}
    outputs: [novel_items, icl_test, iwl_test]
profiles:\n",
        );
    let d = setup(&y);
    let o = d.icl(&["reproduce", "--jobs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("FAILED testsets[K=20]: exit code 1"), "{err}");
    assert!(
        err.contains("    | ") && err.contains("data_seed"),
        "the log tail is shown: {err}"
    );
    assert!(err.contains("blocked more[K=40]"), "{err}");
    assert!(
        err.contains("4 ran, 0 cached, 3 failed, 3 blocked"),
        "{err}"
    );
    let data = d.path().join("data");
    assert_eq!(count_records(&data), 4, "base and the items sweep finished");
    assert!(files_under(&data.join("tmp")).is_empty());
    assert!(
        d.path().join("results/base/items.parquet").is_file(),
        "done single-task stages still publish"
    );
    // Fixed: only the failed and blocked tasks run.
    edit(
        d.path(),
        "test_seed: 2, data_seed: 2}",
        "test_seed: 2, data_seed: 1}",
    );
    let o = d.icl(&["reproduce", "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ran(&o), 6, "{}", text(&o));
}

#[test]
fn a_code_change_reruns_its_stage_and_identical_outputs_cut_off_downstream() {
    // testsets runs as `icl-datagen-b`: the same program, its own crate (own fingerprint).
    let y = SMALL.replace(
        "    bin: icl-datagen\n    command: testsets",
        "    bin: icl-datagen-b\n    command: testsets",
    );
    let d = setup(&y);
    let o = d.icl(&["reproduce"]);
    assert_eq!(ran(&o), 7, "{}", text(&o));
    let before = final_hashes(&d.path().join("data"));

    // A comment is not code: nothing would run.
    let lib = d.ws.join("crates/icl-datagen/src/lib.rs");
    let mut src = fs::read_to_string(&lib).unwrap();
    src.push_str("\n// a comment\n");
    fs::write(&lib, &src).unwrap();
    let o = d.icl(&["reproduce"]);
    assert_eq!(ran(&o), 0, "{}", text(&o));

    // A code change in the items stage's crate that changes no output.
    src.push_str("\nconst _CHANGES_NO_OUTPUT: u8 = 0;\n");
    fs::write(&lib, src).unwrap();
    let o = d.icl(&["why", "items"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("3 would run") && out.contains("code fingerprint (crates/icl-datagen"),
        "{out}"
    );
    // The items tasks rerun and reproduce their bytes, so testsets (whose key hashes input
    // contents) stays cached: early cutoff.
    let o = d.icl(&["reproduce"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        ran(&o),
        4,
        "base and items rerun, testsets cached:\n{}",
        text(&o)
    );
    assert_eq!(final_hashes(&d.path().join("data")), before);

    // A workspace crate both binaries depend on (icl-store) invalidates both stages.
    let store = d.ws.join("crates/icl-store/src/lib.rs");
    let mut src = fs::read_to_string(&store).unwrap();
    src.push_str("\nconst _SHARED: u8 = 0;\n");
    fs::write(&store, src).unwrap();
    let o = d.icl(&["why", "testsets"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("code fingerprint (crates/icl-datagen-b"),
        "{out}"
    );
    let o = d.icl(&["reproduce"]);
    assert_eq!(ran(&o), 7, "{}", text(&o));
}

#[test]
fn stage_selection_runs_a_stage_and_what_it_needs() {
    let d = setup(SMALL);
    let o = d.icl(&["reproduce", "--stage", "testsets"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ran(&o), 6, "items and testsets, not base:\n{}", text(&o));
    assert!(
        !d.path().join("results").exists(),
        "base was not selected, so nothing is published"
    );
    let o = d.icl(&["reproduce"]);
    assert_eq!(ran(&o), 1, "{}", text(&o));
    let o = d.icl(&["reproduce", "--stage", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("allowed: base, items, testsets"),
        "{}",
        text(&o)
    );
    let o = d.icl(&["reproduce", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("unknown profile `nope` (allowed: small, alt)"),
        "{}",
        text(&o)
    );
    let o = d.icl(&["why", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = d.icl(&["reproduce", "--jobs", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = d.icl(&["--help"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("reproduce"));
}

/// Items big enough that each task takes a noticeable fraction of a second.
fn slow_sweep(n: usize) -> String {
    let ks: Vec<String> = (0..n).map(|i| (150_000 + 2 * i).to_string()).collect();
    format!(
        "version: 1
stages:
  items:
    bin: icl-datagen
    command: items
    params: {{D: 63, data_seed: 1}}
    matrix: {{K: [{}]}}
    outputs: [items]
",
        ks.join(", ")
    )
}

fn count_records(data: &Path) -> usize {
    files_under(&data.join("runs"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .count()
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Processes whose command line mentions `needle` (our temp folder).
fn procs_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(format!("{name}: {cmd}"));
            }
        }
    }
    out
}

#[test]
fn kill_9_mid_sweep_then_rerun_finishes_without_recomputing() {
    let n = 8;
    let d = setup(&slow_sweep(n));
    let data = d.path().join("data");
    let mut child: Child = d
        .cmd(&["reproduce", "--jobs", "1"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(120), || count_records(&data) >= 2),
        "the sweep did not progress"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before = count_records(&data);
    assert!(
        done_before < n,
        "the sweep finished before the kill; make tasks slower"
    );
    // The running stage child dies with the runner (PR_SET_PDEATHSIG).
    let needle = data.to_string_lossy().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || procs_mentioning(&needle)
            .is_empty()),
        "orphans: {:?}",
        procs_mentioning(&needle)
    );
    // Whatever was in flight left no object that fails verification.
    assert_objects_valid(&data);

    let o = d.icl(&["reproduce", "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let records_now = count_records(&data);
    assert_eq!(records_now, n);
    // Tasks recorded before the kill were not recomputed (at most one in flight was lost).
    assert_eq!(ran(&o), n - done_before, "{}", text(&o));
    assert!(files_under(&data.join("tmp")).is_empty());
    assert_objects_valid(&data);

    // Same final hashes as an uninterrupted run.
    let d2 = setup(&slow_sweep(n));
    let o = d2.icl(&["reproduce", "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(final_hashes(&data), final_hashes(&d2.path().join("data")));
}

#[test]
fn two_runners_at_once_both_finish_and_the_second_waits() {
    let n = 4;
    let d = setup(&slow_sweep(n));
    let a = d
        .cmd(&["reproduce", "--jobs", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the first take the lock.
    let lock = d.path().join("data/.lock");
    assert!(wait_until(Duration::from_secs(30), || fs::read_to_string(
        &lock
    )
    .is_ok_and(|s| s.contains("pid"))));
    // A runner that refuses to wait exits 3 with a clear message.
    let o = d.icl(&["reproduce", "--no-wait"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        stderr(&o).contains("locked by another runner"),
        "{}",
        text(&o)
    );
    // One that waits finishes after the first, finding everything done.
    let b = d
        .cmd(&["reproduce", "--jobs", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let oa = a.wait_with_output().unwrap();
    let ob = b.wait_with_output().unwrap();
    assert!(oa.status.success(), "{}", text(&oa));
    assert!(ob.status.success(), "{}", text(&ob));
    assert!(
        stderr(&ob).contains("waiting for the lock"),
        "{}",
        text(&ob)
    );
    assert_eq!(ran(&oa) + ran(&ob), n, "A:{}\nB:{}", text(&oa), text(&ob));
    assert_eq!(count_records(&d.path().join("data")), n);
    assert_objects_valid(&d.path().join("data"));
}

/// Each bad pipeline.yaml: exit 2, the file, line and key in the message, nothing written.
fn assert_config_error(yaml: &str, line_needle: &str, key: &str, words: &[&str]) {
    let d = setup(yaml);
    let o = d.icl(&["reproduce"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let line = line_of(yaml, line_needle);
    assert!(
        err.contains(&format!("pipeline.yaml:{line}:")),
        "expected line {line}:\n{err}"
    );
    assert!(err.contains(key), "expected key {key}:\n{err}");
    for w in words {
        assert!(err.contains(w), "expected `{w}`:\n{err}");
    }
    let left: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("pipeline.yaml")],
        "nothing may be written"
    );
    // validate agrees.
    assert_eq!(d.icl(&["validate"]).status.code(), Some(2));
}

#[test]
fn bad_pipelines_exit_2_with_file_line_key_and_write_nothing() {
    // Unknown key.
    let y = SMALL.replace(
        "    command: items\n    params: {D: 8, data_seed: 1}",
        "    command: items\n    colour: red\n    params: {D: 8, data_seed: 1}",
    );
    assert_config_error(
        &y,
        "colour: red",
        "stages.items",
        &["unknown field `colour`"],
    );
    // Wrong type, structural (outputs must be a list) and in a stage param (D must be an integer).
    let y = SMALL.replace(
        "    outputs: [novel_items, icl_test, iwl_test]",
        "    outputs: novel_items",
    );
    assert_config_error(
        &y,
        "outputs: novel_items",
        "stages.testsets",
        &["invalid type"],
    );
    let y = SMALL.replace(
        "params: {D: 8, K: 10, data_seed: 3}",
        "params: {D: eight, K: 10, data_seed: 3}",
    );
    assert_config_error(&y, "D: eight", "stages.base.params.D", &["eight"]);
    // K = 0 (a matrix value, in both sweeps so that the inputs still match): reported at the
    // matrix line.
    let y = SMALL.replace("matrix: {K: [20, 40, 60]}", "matrix: {K: [0, 40, 60]}");
    assert_config_error(
        &y,
        "matrix: {K: [0, 40, 60]}",
        "stages.items.matrix.K",
        &["got 0", "items[K=0]"],
    );
    // N < 2.
    let y = SMALL.replace("N: 6,", "N: 1,");
    assert_config_error(
        &y,
        "N: 1,",
        "stages.testsets.params.N",
        &["must be >= 2", "got 1"],
    );
    // An input that no stage produces.
    let y = SMALL.replace(
        "inputs: {items: items.items}",
        "inputs: {items: itemz.items}",
    );
    assert_config_error(
        &y,
        "itemz.items",
        "stages.testsets.inputs.items",
        &["does not exist", "itemz"],
    );
    let y = SMALL.replace(
        "inputs: {items: items.items}",
        "inputs: {items: items.nope}",
    );
    assert_config_error(
        &y,
        "items.nope",
        "stages.testsets.inputs.items",
        &["no output `nope`"],
    );
    // A cycle.
    let y = SMALL.replace(
        "    params: {D: 8, data_seed: 1}\n    matrix: {K: [20, 40, 60]}\n    outputs: [items]",
        "    params: {D: 8, data_seed: 1}\n    matrix: {K: [20, 40, 60]}\n    inputs: {x: testsets.icl_test}\n    outputs: [items]",
    );
    assert_config_error(
        &y,
        "inputs: {x: testsets.icl_test}",
        "stages.items.inputs",
        &["cycle", "items -> testsets -> items"],
    );
    // Unknown profile (default_profile line).
    let y = SMALL.replace("default_profile: small", "default_profile: smal");
    assert_config_error(
        &y,
        "default_profile: smal",
        "default_profile",
        &["unknown profile `smal`", "small, alt"],
    );
    // A profile override is blamed on the profile's line.
    let y = SMALL
        .replace(
            "stages: {testsets: {params: {n_test: 30}}}",
            "stages: {testsets: {params: {n_test: 0}}}",
        )
        .replace("default_profile: small", "default_profile: alt");
    assert_config_error(
        &y,
        "n_test: 0",
        "profiles.alt.stages.testsets.params.n_test",
        &["must be >= 1"],
    );
    // publish on a matrix stage.
    let y = SMALL.replace(
        "    matrix: {K: [20, 40, 60]}\n    outputs: [items]",
        "    matrix: {K: [20, 40, 60]}\n    outputs: [items]\n    publish: {items: x.parquet}",
    );
    assert_config_error(
        &y,
        "publish: {items: x.parquet}",
        "stages.items.publish",
        &["cannot publish"],
    );
}

#[test]
fn negative_learning_rate_is_refused_by_icl_train_check() {
    if !bin_dir().join("icl-train").is_file() {
        panic!("icl-train is not built: run `cargo build --release --bins`");
    }
    let y = format!(
        "{SMALL}  train:
    bin: icl-train
    command: train
    params: {{model: transformer, D: 8, N: 6, epochs: 1, seed: 0, lr: -0.1}}
    matrix: {{K: [20, 40, 60]}}
    inputs: {{items: items.items, novel_items: testsets.novel_items, icl_test: testsets.icl_test, iwl_test: testsets.iwl_test}}
    outputs: [curve, summary, checkpoint]
"
    )
    .replace("profiles:\n  small: {}\n  alt: {publish_dir: results/alt, stages: {testsets: {params: {n_test: 30}}}}\n", "")
        + "profiles:\n  small: {}\n";
    assert_config_error(&y, "lr: -0.1", "stages.train.params.lr", &["-0.1", "> 0"]);
}

fn write_claims(path: &Path, values: &[f64], verdicts: &[&str]) {
    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use std::sync::Arc;
    let claims: Vec<String> = (1..=values.len()).map(|i| format!("C{i}")).collect();
    let batch = arrow::record_batch::RecordBatch::try_from_iter(vec![
        ("claim", Arc::new(StringArray::from(claims)) as ArrayRef),
        (
            "value",
            Arc::new(Float64Array::from(values.to_vec())) as ArrayRef,
        ),
        (
            "verdict",
            Arc::new(StringArray::from(verdicts.to_vec())) as ArrayRef,
        ),
        (
            "details",
            Arc::new(StringArray::from(vec!["{}"; values.len()])) as ArrayRef,
        ),
    ])
    .unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    icl_store::parquet::write_batch(path, &batch).unwrap();
}

#[test]
fn diff_passes_within_tolerance_and_fails_beyond_it() {
    let yaml = "version: 1
diff:
  key: [claim]
  tolerances: {value: {abs: 0.05, rel: 0.1}}
  ignore: [details]
stages:
  x: {bin: icl-datagen, command: items, params: {K: 2, data_seed: 1}, outputs: [items]}
";
    let d = setup(yaml);
    let p = |s: &str| d.path().join(s);
    write_claims(
        &p("a/claims.parquet"),
        &[1.0, 2.0],
        &["reproduced", "partly"],
    );
    write_claims(
        &p("b/claims.parquet"),
        &[1.1, 2.0],
        &["reproduced", "partly"],
    ); // |0.1| <= 0.05 + 0.1
    write_claims(
        &p("c/claims.parquet"),
        &[1.0, 2.6],
        &["reproduced", "partly"],
    ); // |0.6| > 0.05 + 0.2
    write_claims(&p("e/claims.parquet"), &[1.0, 2.0], &["reproduced", "not"]);
    let run = |a: &str, b: &str| d.icl(&["diff", a, b]);
    let o = run("a", "b");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("**Same**"));
    let o = run("a/claims.parquet", "c/claims.parquet");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("**Different**") && md.contains("| claim=C2 | value |"),
        "{md}"
    );
    let o = run("a", "e");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("| claim=C2 | verdict | partly | not |"));
    // A missing input is bad usage.
    assert_eq!(run("a", "nope").status.code(), Some(2));
    // Without a tolerance (--key overrides only keys; a fresh dir has no pipeline.yaml): exact.
    let bare = tempfile::tempdir().unwrap();
    let o = icl_in(
        bare.path(),
        &[
            "diff",
            p("a").to_str().unwrap(),
            p("b").to_str().unwrap(),
            "--key",
            "claim",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn gc_deletes_only_what_no_profile_reaches() {
    let d = setup(SMALL);
    let data = d.path().join("data");
    let objects = || files_under(&data.join("objects"));
    assert!(d.icl(&["reproduce"]).status.success());
    let small = objects();
    assert!(d.icl(&["reproduce", "--profile", "alt"]).status.success());
    let both = objects();
    let alt_only: Vec<_> = both.iter().filter(|p| !small.contains(p)).collect();
    assert!(!alt_only.is_empty());
    // Both profiles are reachable: nothing to collect.
    let o = d.icl(&["gc"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(objects(), both);
    // Drop the alt profile: what only it reached becomes garbage.
    edit(
        d.path(),
        "  alt: {publish_dir: results/alt, stages: {testsets: {params: {n_test: 30}}}}\n",
        "",
    );
    let o = d.icl(&["gc", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains(&format!("would delete {} object(s)", alt_only.len())),
        "{}",
        text(&o)
    );
    assert!(out.contains("3 run record(s)"), "{}", text(&o));
    assert_eq!(objects(), both, "a dry run deletes nothing");
    let o = d.icl(&["gc"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains(&format!("deleted {} object(s)", alt_only.len())),
        "{}",
        text(&o)
    );
    assert_eq!(objects(), small);
    let o = d.icl(&["reproduce"]);
    assert_eq!(ran(&o), 0, "{}", text(&o));
}

/// A sweep written with shared parameter sets and an experiment template (the pipeline.yaml
/// format of issue 13), small enough to train in seconds.
const COMPOSED: &str = "version: 1
default_profile: small
defaults:
  data: {D: 8, data_seed: 1}
  tests: {test_seed: 2}
  testsets: {n_test: 40}
  training: {model: transformer, width: 16, lr: 0.01, batch: 8, epochs: 1, iters_per_epoch: 5}
templates:
  experiment:
    items: {bin: icl-datagen, command: items, use: data, takes: [K], outputs: [items]}
    testsets:
      bin: icl-datagen
      command: testsets
      use: [data, tests, testsets]
      takes: [K, N]
      inputs: {items: items.items}
      outputs: [novel_items, icl_test, iwl_test]
    train:
      bin: icl-train
      command: train
      use: [data, tests, training]
      inputs:
        items: items.items
        novel_items: testsets.novel_items
        icl_test: testsets.icl_test
        iwl_test: testsets.iwl_test
      outputs: [curve, summary, checkpoint]
stages:
  sweep:
    template: experiment
    params: {N: 6}
    matrix:
      K: [20, 40]
      seed: [0, 1]
profiles:
  small: {}
  alt:
    stages:
      sweep: {matrix: {K: [20, 40, 60]}}
";

#[test]
fn runs_lists_every_task_of_a_stage_with_its_record_and_summary() {
    let d = setup(COMPOSED);
    let out = |name: &str| d.path().join(name);
    // Before anything ran: every task is listed, missing.
    let o = d.icl(&["runs", "train_sweep", "--out", "before.csv"]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = fs::read_to_string(out("before.csv")).unwrap();
    assert!(
        csv.starts_with("task,K,seed,status,key,started,finished,duration_s\n"),
        "{csv}"
    );
    assert_eq!(csv.matches(",missing,").count(), 4, "{csv}");

    let o = d.icl(&["reproduce", "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ran(&o), 2 + 2 + 4, "{}", text(&o));
    let o = d.icl(&["runs", "train_sweep", "--out", "runs.parquet"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = icl_store::parquet::read_batch(&out("runs.parquet")).unwrap();
    assert_eq!(t.num_rows(), 4);
    let col = |name: &str| {
        t.column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", t.schema()))
            .clone()
    };
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    let k = col("K");
    assert_eq!(
        k.as_primitive::<Int64Type>().values().to_vec(),
        vec![20, 20, 40, 40]
    );
    let status = col("status");
    assert!((0..4).all(|i| status.as_string::<i32>().value(i) == "cached"));
    let key = col("key");
    assert!((0..4).all(|i| key.as_string::<i32>().value(i).len() == 64));
    assert_eq!(col("duration_s").null_count(), 0);
    // The training summary's columns, one row per run.
    let acc = col("final_icl_acc");
    assert!((0..4).all(|i| (0.0..=1.0).contains(&acc.as_primitive::<Float64Type>().value(i))));
    assert_eq!(col("width").as_primitive::<Int64Type>().value(0), 16);
    // The keys are the ones the run records hold.
    let records = final_hashes(&d.path().join("data"));
    assert_eq!(
        records.keys().filter(|(s, _)| s == "train_sweep").count(),
        4
    );
    // On a terminal: one aligned line per task; a stage without a summary has none of its columns.
    let o = d.icl(&["runs", "items_sweep"]);
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(shown.lines().count(), 3, "{shown}");
    assert!(
        shown.lines().all(|l| !l.contains("final_icl_acc")),
        "{shown}"
    );
    assert!(
        shown.contains("items_sweep[K=40]") && shown.contains("cached"),
        "{shown}"
    );
    // Another profile adds K = 60: its tasks are listed as missing, the rest cached.
    let o = d.icl(&[
        "runs",
        "train_sweep",
        "--profile",
        "alt",
        "--out",
        "alt.csv",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = fs::read_to_string(out("alt.csv")).unwrap();
    assert_eq!(
        (
            csv.matches(",cached,").count(),
            csv.matches(",missing,").count()
        ),
        (4, 2),
        "{csv}"
    );
    let o = d.icl(&["runs", "train_sweep", "--out", "x.txt"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = d.icl(&["runs", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn inherited_and_expanded_settings_are_blamed_on_the_line_that_wrote_them() {
    // A bad value in a shared parameter set: the set's line, though three tasks inherit it.
    let y = COMPOSED.replace("lr: 0.01,", "lr: -0.1,");
    assert_config_error(&y, "lr: -0.1", "defaults.training.lr", &["-0.1", "> 0"]);
    // An odd K in an experiment's sweep, rejected by icl-datagen's check (K splits between
    // two labels): the experiment's matrix line.
    let y = COMPOSED.replace("      K: [20, 40]\n", "      K: [20, 41]\n");
    assert_config_error(
        &y,
        "K: [20, 41]",
        "stages.sweep.matrix.K",
        &["must be even", "41"],
    );
    // A profile's change to an experiment: the profile's line.
    let y = COMPOSED
        .replace("K: [20, 40, 60]", "K: [20, 40, 61]")
        .replace("default_profile: small", "default_profile: alt");
    assert_config_error(
        &y,
        "K: [20, 40, 61]",
        "profiles.alt.stages.sweep.matrix.K",
        &["61"],
    );
    // A float sweep of K (logspace gives floats unless asked to round): not an integer.
    let y = COMPOSED.replace("K: [20, 40]", "K: {logspace: [1.3, 1.6, 2]}");
    assert_config_error(&y, "K: {logspace", "stages.sweep.matrix.K", &["K"]);
    // A typo in a shared set's key: the stage binary names it, we name the set's line.
    let y = COMPOSED.replace("batch: 8,", "bacth: 8,");
    assert_config_error(&y, "bacth: 8", "defaults.training.bacth", &["bacth"]);
}
