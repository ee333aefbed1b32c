//! End-to-end tests of the claim stages on synthetic run artifacts with known answers: the
//! artifacts are written as Parquet through icl-store with the schemas of ARCHITECTURE.md, the
//! stage runs as the pipeline would run it, and the claim is read back through polars.

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, UInt64Array};
use arrow::record_batch::RecordBatch;
use icl_eval::STAGE as EvalStage;
use icl_store::task::{InputRef, Stage, TaskSpec};
use polars::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug)]
struct Run {
    k: Option<i64>,
    n: i64,
    seed: i64,
    icl: f64,
    iwl: f64,
    iterations: u64,
    t_icl: Option<u64>,
}

fn summary_batch(r: &Run) -> RecordBatch {
    RecordBatch::try_from_iter(vec![
        ("K", Arc::new(Int64Array::from(vec![r.k])) as ArrayRef),
        ("N", Arc::new(Int64Array::from(vec![r.n])) as ArrayRef),
        ("seed", Arc::new(Int64Array::from(vec![r.seed])) as ArrayRef),
        (
            "final_icl_acc",
            Arc::new(Float64Array::from(vec![r.icl])) as ArrayRef,
        ),
        (
            "final_iwl_acc",
            Arc::new(Float64Array::from(vec![r.iwl])) as ArrayRef,
        ),
        (
            "final_icl_loss",
            Arc::new(Float64Array::from(vec![0.5])) as ArrayRef,
        ),
        (
            "final_iwl_loss",
            Arc::new(Float64Array::from(vec![0.5])) as ArrayRef,
        ),
        (
            "iterations",
            Arc::new(UInt64Array::from(vec![r.iterations])) as ArrayRef,
        ),
        (
            "t_icl",
            Arc::new(UInt64Array::from(vec![r.t_icl])) as ArrayRef,
        ),
        (
            "acquired",
            Arc::new(BooleanArray::from(vec![r.t_icl.is_some()])) as ArrayRef,
        ),
        (
            "peak_icl_acc",
            Arc::new(Float64Array::from(vec![r.icl])) as ArrayRef,
        ),
        (
            "early_stopped",
            Arc::new(BooleanArray::from(vec![false])) as ArrayRef,
        ),
    ])
    .unwrap()
}

fn write_summaries(dir: &Path, runs: &[Run]) -> Vec<InputRef> {
    runs.iter()
        .enumerate()
        .map(|(i, r)| {
            let p = dir.join(format!("summary_{i}.parquet"));
            icl_store::parquet::write_batch(&p, &summary_batch(r)).unwrap();
            InputRef {
                hash: icl_store::hash::hash_file(&p).unwrap(),
                path: p,
            }
        })
        .collect()
}

fn task(
    dir: &Path,
    command: &str,
    params: serde_json::Value,
    inputs: Vec<(&str, Vec<InputRef>)>,
) -> TaskSpec {
    let out = dir.join(format!(
        "out_{command}_{}",
        icl_store::hash::hash_bytes(params.to_string().as_bytes())
    ));
    std::fs::create_dir_all(&out).unwrap();
    TaskSpec {
        stage: format!("claim_{command}"),
        command: command.into(),
        params,
        inputs: inputs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>(),
        outputs: vec!["claim".into(), "figure_png".into(), "figure_svg".into()],
        out_dir: out,
        resume_dir: None,
        threads: 1,
    }
}

/// Run the stage; read the claim through polars' own Parquet reader.
fn run(t: &TaskSpec) -> DataFrame {
    assert!(EvalStage.check(&t.command, &t.params).is_empty());
    EvalStage.run(t).unwrap();
    let png = std::fs::read(t.output_path("figure_png", "png")).unwrap();
    // Set ICL_EVAL_KEEP=DIR to look at the figures.
    if let Ok(keep) = std::env::var("ICL_EVAL_KEEP") {
        let name = t.out_dir.file_name().unwrap().to_string_lossy().to_string();
        std::fs::write(Path::new(&keep).join(format!("{name}.png")), &png).unwrap();
        std::fs::copy(
            t.output_path("claim", "parquet"),
            Path::new(&keep).join(format!("{name}.parquet")),
        )
        .unwrap();
    }
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "figure_png is a PNG");
    assert!(png.len() > 10_000, "PNG has content ({} bytes)", png.len());
    let svg = std::fs::read_to_string(t.output_path("figure_svg", "svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("</svg>") && svg.contains("<text"),
        "figure_svg is an SVG with text"
    );
    let f = std::fs::File::open(t.output_path("claim", "parquet")).unwrap();
    ParquetReader::new(f).finish().unwrap()
}

fn s(df: &DataFrame, c: &str) -> String {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string()
}
fn x(df: &DataFrame, c: &str) -> f64 {
    df.column(c).unwrap().f64().unwrap().get(0).unwrap()
}
fn details(df: &DataFrame) -> serde_json::Value {
    serde_json::from_str(&s(df, "details")).unwrap()
}

fn logistic(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

const KS: [i64; 10] = [
    500, 900, 1600, 2900, 5200, 9300, 16700, 30000, 54000, 100000,
];

/// A K sweep whose ICL accuracy follows a sigmoid in log10 K with midpoint `b` (or stays at
/// chance when `attention` is false), IWL falling with K as memorization gets harder.
fn k_sweep(attention: bool, b: f64, seeds: i64, seed: u64) -> Vec<Run> {
    k_sweep_slope(attention, 6.0, b, seeds, seed)
}

fn k_sweep_slope(attention: bool, a: f64, b: f64, seeds: i64, seed: u64) -> Vec<Run> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, 0.015).unwrap();
    let mut runs = Vec::new();
    for &k in &KS {
        let x = (k as f64).log10();
        for s in 0..seeds {
            let icl = if attention {
                0.5 + 0.48 * logistic(a * (x - b))
            } else {
                0.5
            };
            let iwl = if attention {
                1.0 - 0.48 * logistic(a * (x - b))
            } else {
                1.0 - 0.48 * logistic(5.0 * (x - 3.9))
            };
            runs.push(Run {
                k: Some(k),
                n: 100,
                seed: s,
                icl: (icl + noise.sample(&mut rng)).clamp(0.0, 1.0),
                iwl: (iwl + noise.sample(&mut rng)).clamp(0.0, 1.0),
                iterations: 10_000,
                t_icl: None,
            });
        }
    }
    runs
}

#[test]
fn c1_transition_is_reproduced_and_k_star_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = k_sweep(true, 4.0, 6, 1);
    // A K = inf run in the gathered set must be ignored (and counted), not break the fit.
    runs.push(Run {
        k: None,
        n: 100,
        seed: 0,
        icl: 0.99,
        iwl: 0.5,
        iterations: 10_000,
        t_icl: Some(3000),
    });
    let inputs = write_summaries(dir.path(), &runs);
    let t = task(
        dir.path(),
        "c1",
        json!({"profile": "test", "n_boot": 200, "bootstrap_seed": 3}),
        vec![("summaries", inputs)],
    );
    let df = run(&t);
    assert_eq!(df.height(), 1);
    assert_eq!(s(&df, "claim"), "C1");
    assert_eq!(s(&df, "profile"), "test");
    assert_eq!(
        s(&df, "verdict"),
        "reproduced",
        "details: {}",
        s(&df, "details")
    );
    let (k, lo, hi) = (x(&df, "value"), x(&df, "low"), x(&df, "high"));
    assert!((k.log10() - 4.0).abs() < 0.05, "K* {k}");
    assert!(
        lo < 1e4 && 1e4 < hi,
        "interval [{lo}, {hi}] covers the true K* = 1e4"
    );
    assert!(
        hi / lo < 2.0,
        "interval is tight with 6 seeds: [{lo}, {hi}]"
    );
    let d = details(&df);
    assert_eq!(d["runs_excluded_K_infinite"], 1);
    assert_eq!(d["per_K"].as_array().unwrap().len(), 10);
    let w = d["transition_width_decades_10_90"].as_f64().unwrap();
    assert!((w - 2.0 * 9f64.ln() / 6.0).abs() < 0.15, "width {w}");

    // Same inputs and params: byte-identical outputs.
    let t2 = TaskSpec {
        out_dir: dir.path().join("again"),
        ..t.clone()
    };
    std::fs::create_dir_all(&t2.out_dir).unwrap();
    EvalStage.run(&t2).unwrap();
    for (name, ext) in [
        ("claim", "parquet"),
        ("figure_png", "png"),
        ("figure_svg", "svg"),
    ] {
        assert_eq!(
            std::fs::read(t.output_path(name, ext)).unwrap(),
            std::fs::read(t2.output_path(name, ext)).unwrap(),
            "{name} is deterministic"
        );
    }
}

#[test]
fn c1_attention_disabled_is_not_reproduced() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_summaries(dir.path(), &k_sweep(false, 4.0, 5, 2));
    let t = task(
        dir.path(),
        "c1",
        json!({"profile": "test", "n_boot": 100}),
        vec![("summaries", inputs)],
    );
    let df = run(&t);
    assert_eq!(
        s(&df, "verdict"),
        "not reproduced",
        "details: {}",
        s(&df, "details")
    );
    let d = details(&df);
    let checks = d["checks"].as_array().unwrap();
    let get = |n: &str| {
        checks.iter().find(|c| c["name"] == n).unwrap()["pass"]
            .as_bool()
            .unwrap()
    };
    assert!(!get("icl_high_at_largest_K"));
    assert!(
        get("iwl_high_at_smallest_K"),
        "memorization still works without attention"
    );
}

#[test]
fn c1_gradual_transition_is_partly_and_late_one_is_not() {
    // ICL goes from chance to > 0.9 across the sweep, but over ~2.4 decades: not narrow.
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_summaries(dir.path(), &k_sweep_slope(true, 1.8, 3.85, 6, 3));
    let t = task(
        dir.path(),
        "c1",
        json!({"profile": "test", "n_boot": 50}),
        vec![("summaries", inputs)],
    );
    let df = run(&t);
    assert_eq!(
        s(&df, "verdict"),
        "partly",
        "details: {}",
        s(&df, "details")
    );
    let checks = details(&df)["checks"].as_array().unwrap().clone();
    let narrow = checks
        .iter()
        .find(|c| c["name"] == "narrow_transition")
        .unwrap();
    assert_eq!(narrow["pass"], false);

    // The midpoint lies beyond the largest K: ICL never gets high inside the sweep.
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_summaries(dir.path(), &k_sweep(true, 5.3, 4, 3));
    let t = task(
        dir.path(),
        "c1",
        json!({"profile": "test", "n_boot": 50}),
        vec![("summaries", inputs)],
    );
    let df = run(&t);
    assert_eq!(
        s(&df, "verdict"),
        "not reproduced",
        "details: {}",
        s(&df, "details")
    );
}

fn k_inf_sweep(
    ns: &[i64],
    seeds: usize,
    per_token: f64,
    sigma: f64,
    budget: u64,
    seed: u64,
) -> Vec<Run> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let beta = Normal::new(0.0, sigma).unwrap();
    let mut runs = Vec::new();
    for &n in ns {
        for s in 0..seeds {
            // t_ICL ~ N exp(-beta0): log-normal across seeds, median per_token * N.
            let t = per_token * n as f64 * (-beta.sample(&mut rng)).exp();
            let t_icl = (t < budget as f64).then_some(t.round() as u64);
            runs.push(Run {
                k: None,
                n,
                seed: s as i64,
                icl: if t_icl.is_some() { 0.99 } else { 0.5 },
                iwl: 0.5,
                iterations: budget,
                t_icl,
            });
        }
    }
    runs
}

#[test]
fn c7_linear_median_and_long_tail() {
    let dir = tempfile::tempdir().unwrap();
    let runs = k_inf_sweep(&[20, 40, 60, 80, 100], 60, 400.0, 0.6, 90_000, 4);
    let censored = runs.iter().filter(|r| r.t_icl.is_none()).count();
    assert!(censored > 0, "the synthetic sweep has censored runs");
    let inputs = write_summaries(dir.path(), &runs);
    let t = task(
        dir.path(),
        "c7",
        json!({"profile": "test", "n_boot": 300, "bootstrap_seed": 1}),
        vec![("summaries", inputs)],
    );
    let df = run(&t);
    assert_eq!(s(&df, "claim"), "C7");
    assert_eq!(
        s(&df, "verdict"),
        "reproduced",
        "details: {}",
        s(&df, "details")
    );
    let (slope, lo, hi) = (x(&df, "value"), x(&df, "low"), x(&df, "high"));
    assert!(
        lo < 400.0 && 400.0 < hi,
        "slope interval [{lo}, {hi}] covers 400 (slope {slope})"
    );
    let d = details(&df);
    assert_eq!(d["censored_runs"].as_u64().unwrap() as usize, censored);
    assert!(d["median_fit"]["r2"].as_f64().unwrap() > 0.9);
    let per_n = d["per_N"].as_array().unwrap();
    assert_eq!(per_n.len(), 5);
    assert_eq!(
        per_n
            .iter()
            .map(|v| v["censored"].as_u64().unwrap() as usize)
            .sum::<usize>(),
        censored
    );
    let exp = d["loglog_exponent_of_median"].as_f64().unwrap();
    assert!(
        (exp - 1.0).abs() < 0.25,
        "median ~ N^1 (got exponent {exp})"
    );
}

#[test]
fn c7_flat_symmetric_times_are_not_reproduced() {
    // t_ICL independent of N and symmetric: neither linear growth nor a tail.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let nrm = Normal::new(10_000.0, 500.0).unwrap();
    let mut runs = Vec::new();
    for n in [20, 40, 60, 80] {
        for s in 0..30 {
            let t: f64 = nrm.sample(&mut rng);
            runs.push(Run {
                k: None,
                n,
                seed: s,
                icl: 0.99,
                iwl: 0.5,
                iterations: 50_000,
                t_icl: Some(t as u64),
            });
        }
    }
    let inputs = write_summaries(dir.path(), &runs);
    let t = task(
        dir.path(),
        "c7",
        json!({"profile": "test", "n_boot": 200}),
        vec![("summaries", inputs)],
    );
    let df = run(&t);
    assert_eq!(
        s(&df, "verdict"),
        "not reproduced",
        "details: {}",
        s(&df, "details")
    );
}

fn near_k_star(acquire: usize, never: usize, budget: u64, seed: u64) -> Vec<Run> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nrm = Normal::new(0.2, 0.04).unwrap();
    let mut runs = Vec::new();
    for s in 0..acquire {
        let t = (nrm.sample(&mut rng) * budget as f64) as u64;
        runs.push(Run {
            k: Some(9666),
            n: 100,
            seed: s as i64,
            icl: 0.99,
            iwl: 0.6,
            iterations: budget,
            t_icl: Some(t),
        });
    }
    for s in 0..never {
        runs.push(Run {
            k: Some(9666),
            n: 100,
            seed: (acquire + s) as i64,
            icl: 0.52,
            iwl: 0.9,
            iterations: budget,
            t_icl: None,
        });
    }
    runs
}

#[test]
fn c9_two_groups_reproduced_one_group_not() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_summaries(dir.path(), &near_k_star(9, 11, 100_000, 6));
    let t = task(
        dir.path(),
        "c9",
        json!({"profile": "test", "n_boot": 200}),
        vec![("summaries", inputs)],
    );
    let df = run(&t);
    assert_eq!(s(&df, "claim"), "C9");
    assert_eq!(
        s(&df, "verdict"),
        "reproduced",
        "details: {}",
        s(&df, "details")
    );
    assert!((x(&df, "value") - 0.45).abs() < 1e-12);
    assert!(x(&df, "low") < 0.45 && x(&df, "high") > 0.45);
    let d = details(&df);
    assert!(d["bimodality_coefficient"].as_f64().unwrap() > 5.0 / 9.0);
    assert_eq!(d["never_acquired"], 11);
    assert_eq!(d["K"], json!([9666]));

    let dir2 = tempfile::tempdir().unwrap();
    let inputs = write_summaries(dir2.path(), &near_k_star(20, 0, 100_000, 7));
    let t = task(
        dir2.path(),
        "c9",
        json!({"profile": "test", "n_boot": 200}),
        vec![("summaries", inputs)],
    );
    let df = run(&t);
    assert_eq!(
        s(&df, "verdict"),
        "not reproduced",
        "details: {}",
        s(&df, "details")
    );
}

fn curve_batch(t0: f64, tau: f64, every: u64, total: u64) -> RecordBatch {
    let its: Vec<u64> = (0..=total / every).map(|i| i * every).collect();
    let acc: Vec<f64> = its
        .iter()
        .map(|&t| 0.5 + 0.5 * logistic((t as f64 - t0) / tau))
        .collect();
    let nan = vec![f64::NAN; its.len()];
    let f = |v: &Vec<f64>| Arc::new(Float64Array::from(v.clone())) as ArrayRef;
    RecordBatch::try_from_iter(vec![
        (
            "iteration",
            Arc::new(UInt64Array::from(its.clone())) as ArrayRef,
        ),
        ("epoch", f(&its.iter().map(|&t| t as f64 / 469.0).collect())),
        ("train_loss", f(&nan)),
        ("train_acc", f(&nan)),
        ("icl_loss", f(&nan)),
        ("icl_acc", f(&acc)),
        ("iwl_loss", f(&nan)),
        ("iwl_acc", f(&acc.iter().map(|a| 1.5 - a).collect())),
        ("beta_eff", f(&nan)),
        ("w_eff", f(&nan)),
        ("c1", f(&nan)),
        ("c2", f(&nan)),
        ("c3", f(&nan)),
    ])
    .unwrap()
}

fn write_curves(dir: &Path, specs: &[(f64, f64)]) -> Vec<InputRef> {
    specs
        .iter()
        .enumerate()
        .map(|(i, &(t0, tau))| {
            let p: PathBuf = dir.join(format!("curve_{i}.parquet"));
            icl_store::parquet::write_batch(&p, &curve_batch(t0, tau, 100, 12_000)).unwrap();
            InputRef {
                hash: icl_store::hash::hash_file(&p).unwrap(),
                path: p,
            }
        })
        .collect()
}

#[test]
fn c2_abrupt_vs_gradual() {
    let dir = tempfile::tempdir().unwrap();
    // Plateau then a jump: ratio = (t0 - 1.386 tau) / (3.584 tau) ~ 9 for t0 = 5000, tau = 150.
    // Four abrupt runs at K = 20000 and two gradual ones below K* (K = 500), as when the curves
    // of a whole K sweep are passed in.
    let curves = write_curves(
        dir.path(),
        &[
            (5000.0, 150.0),
            (6000.0, 150.0),
            (4000.0, 2000.0),
            (4000.0, 120.0),
            (7000.0, 200.0),
            (5000.0, 1800.0),
        ],
    );
    let runs: Vec<Run> = [20000, 20000, 500, 20000, 20000, 500]
        .iter()
        .enumerate()
        .map(|(s, &k)| Run {
            k: Some(k),
            n: 100,
            seed: s as i64,
            icl: 0.99,
            iwl: 0.6,
            iterations: 12_000,
            t_icl: Some(5000),
        })
        .collect();
    let sums = write_summaries(dir.path(), &runs);
    let t = task(
        dir.path(),
        "c2",
        json!({"profile": "test", "n_boot": 200}),
        vec![("curves", curves.clone()), ("summaries", sums.clone())],
    );
    let df = run(&t);
    assert_eq!(s(&df, "claim"), "C2");
    assert_eq!(
        s(&df, "verdict"),
        "reproduced",
        "details: {}",
        s(&df, "details")
    );
    assert_eq!(
        df.column("n_runs").unwrap().i64().unwrap().get(0),
        Some(4),
        "only the largest K by default"
    );
    // min_k selects explicitly: all six runs, the two gradual ones among them.
    let t6 = task(
        dir.path(),
        "c2",
        json!({"profile": "test", "n_boot": 200, "min_k": 100}),
        vec![("curves", curves), ("summaries", sums)],
    );
    let d6 = run(&t6);
    assert_eq!(d6.column("n_runs").unwrap().i64().unwrap().get(0), Some(6));
    // The plateau ends at the count floor of N = 100 + 0.05 (icl_eval::floor), where
    // 0.5 + 0.5 sigmoid(x) crosses it: x0 = logit(2 (thr - 0.5)); 0.95 is at x = ln 9.
    let thr = icl_eval::floor::count_floor(100) + icl_eval::floor::FLOOR_MARGIN;
    let q = 2.0 * (thr - 0.5);
    let x0 = (q / (1.0 - q)).ln();
    let expected = (5000.0 + x0 * 150.0) / ((9f64.ln() - x0) * 150.0);
    let d = details(&df);
    let r0 = d["runs"][0]["ratio"].as_f64().unwrap();
    assert!(
        (r0 - expected).abs() / expected < 0.05,
        "ratio {r0} vs {expected}"
    );
    assert_eq!(d["runs"][0]["label"], "seed 0, K=20000");

    // Slow, steady improvement: the rise is longer than the plateau.
    let dir2 = tempfile::tempdir().unwrap();
    let curves = write_curves(
        dir2.path(),
        &[(5000.0, 2000.0), (5500.0, 1800.0), (4500.0, 2200.0)],
    );
    let sums = write_summaries(dir2.path(), &runs[..3]);
    let t = task(
        dir2.path(),
        "c2",
        json!({"profile": "test", "n_boot": 200, "min_k": 100}),
        vec![("curves", curves.clone()), ("summaries", sums)],
    );
    let df = run(&t);
    assert_eq!(
        s(&df, "verdict"),
        "not reproduced",
        "details: {}",
        s(&df, "details")
    );
    // Without summaries there is no N, hence no count floor: refused.
    let t = task(
        dir2.path(),
        "c2",
        json!({"profile": "test", "n_boot": 200}),
        vec![("curves", curves)],
    );
    assert!(EvalStage.evaluate(&t).is_err());
}

#[test]
fn bad_params_and_commands_are_named() {
    let e = EvalStage.check("c1", &json!({"profile": "x", "n_boot": 0}));
    assert_eq!(e[0].key, "n_boot");
    let e = EvalStage.check("c3", &json!({}));
    assert_eq!(e[0].key, "command");
    assert!(e[0].message.contains("c1, c2, c7, c8, c9"));
    let e = EvalStage.check("c9", &json!({"profile": "x", "extra": true}));
    assert_eq!(e[0].key, "extra");
}
