//! End-to-end tests of the stage commands on synthetic artifacts written through icl_store
//! (Parquet bytes) and read back through polars, with known answers.

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, UInt64Array};
use arrow::record_batch::RecordBatch;
use icl_fit_nu::stage::STAGE as FitNuStage;
use icl_fit_nu::theory;
use icl_store::task::{InputRef, Stage, TaskSpec};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What one synthetic run looks like.
#[derive(Clone)]
struct RunSpec {
    model: &'static str,
    n: i64,
    k: Option<i64>,
    seed: i64,
    lr: f64,
    beta0: Option<f64>,
    wd_attn: f64,
    iterations: u64,
    final_icl: f64,
    final_iwl: f64,
    peak_icl: f64,
    t_icl: Option<u64>,
}

fn summary_batch(r: &RunSpec) -> RecordBatch {
    let f = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
    let i = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
    RecordBatch::try_from_iter(vec![
        (
            "model",
            Arc::new(StringArray::from(vec![r.model])) as ArrayRef,
        ),
        ("D", i(63)),
        ("N", i(r.n)),
        ("K", Arc::new(Int64Array::from(vec![r.k])) as ArrayRef),
        ("lr", f(r.lr)),
        ("wd_attn", f(r.wd_attn)),
        ("epochs", i(r.iterations as i64 / 10)),
        ("iters_per_epoch", i(10)),
        ("seed", i(r.seed)),
        (
            "beta0",
            Arc::new(Float64Array::from(vec![r.beta0])) as ArrayRef,
        ),
        ("final_icl_acc", f(r.final_icl)),
        ("final_iwl_acc", f(r.final_iwl)),
        ("final_icl_loss", f(0.5)),
        ("final_iwl_loss", f(0.5)),
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
        ("peak_icl_acc", f(r.peak_icl)),
        (
            "early_stopped",
            Arc::new(BooleanArray::from(vec![false])) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// Curve columns as closures of the evaluation index.
struct CurveSpec {
    iteration: Vec<u64>,
    icl_acc: Vec<f64>,
    beta: Vec<f64>,
    w: Vec<f64>,
    c1: Vec<f64>,
    c2: Vec<f64>,
    c3: Vec<f64>,
}

fn curve_batch(c: &CurveSpec) -> RecordBatch {
    let n = c.iteration.len();
    let f = |v: &[f64]| Arc::new(Float64Array::from(v.to_vec())) as ArrayRef;
    let nan = vec![f64::NAN; n];
    RecordBatch::try_from_iter(vec![
        (
            "iteration",
            Arc::new(UInt64Array::from(c.iteration.clone())) as ArrayRef,
        ),
        (
            "epoch",
            f(&c.iteration
                .iter()
                .map(|i| *i as f64 / 10.0)
                .collect::<Vec<_>>()),
        ),
        ("train_loss", f(&nan)),
        ("train_acc", f(&nan)),
        ("icl_loss", f(&nan)),
        ("icl_acc", f(&c.icl_acc)),
        ("iwl_loss", f(&nan)),
        (
            "iwl_acc",
            f(&c.icl_acc.iter().map(|a| 1.0 - a + 0.5).collect::<Vec<_>>()),
        ),
        ("beta_eff", f(&c.beta)),
        ("w_eff", f(&c.w)),
        ("c1", f(&c.c1)),
        ("c2", f(&c.c2)),
        ("c3", f(&c.c3)),
    ])
    .unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    inputs: BTreeMap<String, Vec<InputRef>>,
    count: usize,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            inputs: BTreeMap::new(),
            count: 0,
        }
    }
    fn add(&mut self, input: &str, batch: &RecordBatch) {
        self.count += 1;
        let p = self.dir.path().join(format!("in{}.parquet", self.count));
        icl_store::parquet::write_batch(&p, batch).unwrap();
        let hash = icl_store::hash::hash_file(&p).unwrap();
        self.inputs
            .entry(input.to_string())
            .or_default()
            .push(InputRef { path: p, hash });
    }
    fn add_run(&mut self, prefix: &str, r: &RunSpec, c: Option<&CurveSpec>) {
        self.add(&format!("{prefix}summaries"), &summary_batch(r));
        if let Some(c) = c {
            self.add(&format!("{prefix}curves"), &curve_batch(c));
        }
    }
    /// Run a command; returns the out dir.
    fn run(&self, command: &str, params: serde_json::Value) -> anyhow::Result<PathBuf> {
        let out = self.dir.path().join(format!("out_{command}"));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let task = TaskSpec {
            stage: format!("fit_{command}"),
            command: command.into(),
            params,
            inputs: self.inputs.clone(),
            outputs: vec!["claim".into(), "figure_png".into(), "figure_svg".into()],
            out_dir: out.clone(),
            resume_dir: None,
            threads: 1,
        };
        FitNuStage.run(&task)?;
        Ok(out)
    }
}

/// The claim row as JSON (details parsed), read back through icl_store + polars.
fn read_claim(out: &Path) -> serde_json::Value {
    let df = icl_fit_nu::io::read_frame(&out.join("claim.parquet")).unwrap();
    assert_eq!(df.height(), 1);
    let s = |c: &str| {
        df.column(c)
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap_or("")
            .to_string()
    };
    let f = |c: &str| icl_fit_nu::io::col_f64(&df, c).unwrap()[0];
    serde_json::json!({
        "claim": s("claim"), "verdict": s("verdict"), "profile": s("profile"),
        "value": f("value"), "low": f("low"), "high": f("high"), "n_runs": f("n_runs"),
        "details": serde_json::from_str::<serde_json::Value>(&s("details")).unwrap(),
    })
}

/// Outcome of the named verdict rule in `details.checks` (panics if absent).
fn check(c: &serde_json::Value, name: &str) -> bool {
    let checks = c["details"]["checks"].as_array().expect("details.checks");
    let found = checks
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {checks:?}"));
    assert!(found["rule"].as_str().is_some_and(|r| !r.is_empty()));
    found["pass"].as_bool().unwrap()
}

fn assert_figures(out: &Path) {
    let png = std::fs::read(out.join("figure_png.png")).unwrap();
    assert!(png.starts_with(&[0x89, b'P', b'N', b'G']) && png.len() > 10_000);
    let svg = std::fs::read_to_string(out.join("figure_svg.svg")).unwrap();
    assert!(svg.contains("<svg"));
}

/// MLP-only run whose c1 decays as 0.5 exp(-t/tau), tau = 2 amp K^nu, so I_K(inf) = amp K^nu.
fn mlp_run(
    k: i64,
    seed: i64,
    amp: f64,
    nu: f64,
    jitter: f64,
    span_taus: f64,
) -> (RunSpec, CurveSpec) {
    let lr = 0.01;
    let tau = 2.0 * amp * (k as f64).powf(nu) * (1.0 + jitter);
    let end = (span_taus * tau / lr).round() as u64;
    let iteration: Vec<u64> = (0..=300).map(|i| i * end / 300).collect();
    let c1: Vec<f64> = iteration
        .iter()
        .map(|i| 0.5 * (-(lr * *i as f64) / tau).exp())
        .collect();
    let n = iteration.len();
    let r = RunSpec {
        model: "mlp_only",
        n: 2,
        k: Some(k),
        seed,
        lr,
        beta0: None,
        wd_attn: 1e-10,
        iterations: *iteration.last().unwrap(),
        final_icl: f64::NAN,
        final_iwl: 1.0,
        peak_icl: f64::NAN,
        t_icl: None,
    };
    let c = CurveSpec {
        c2: c1.iter().map(|c| 1.0 - c).collect(),
        c3: c1.iter().map(|c| 2.0 * c).collect(),
        c1,
        icl_acc: vec![f64::NAN; n],
        beta: vec![f64::NAN; n],
        w: vec![f64::NAN; n],
        iteration,
    };
    (r, c)
}

fn mlp_fixture(fx: &mut Fixture, prefix: &str, nu: f64, span_taus: f64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for k in [64, 128, 256, 512, 1024] {
        for seed in 0..3 {
            let (r, c) = mlp_run(k, seed, 1.5, nu, rng.random_range(-0.05..0.05), span_taus);
            fx.add_run(prefix, &r, Some(&c));
        }
    }
}

#[test]
fn c5_recovers_nu_and_reports_verdicts() {
    let mut fx = Fixture::new();
    mlp_fixture(&mut fx, "", 0.7, 30.0);
    let out = fx
        .run(
            "c5",
            serde_json::json!({"profile": "test", "n_boot": 300, "seed": 1}),
        )
        .unwrap();
    let c = read_claim(&out);
    assert_eq!(c["claim"], "C5");
    assert_eq!(c["verdict"], "reproduced", "{c:#}");
    let nu = c["value"].as_f64().unwrap();
    assert!((nu - 0.7).abs() < 0.03, "{nu}");
    assert!(c["low"].as_f64().unwrap() < 0.7 && c["high"].as_f64().unwrap() > 0.7);
    assert_eq!(c["n_runs"], 15.0);
    assert_figures(&out);
    // Same inputs and params: byte-identical outputs.
    let a = std::fs::read(out.join("claim.parquet")).unwrap();
    let png = std::fs::read(out.join("figure_png.png")).unwrap();
    let out2 = fx
        .run(
            "c5",
            serde_json::json!({"profile": "test", "n_boot": 300, "seed": 1}),
        )
        .unwrap();
    assert_eq!(a, std::fs::read(out2.join("claim.parquet")).unwrap());
    assert_eq!(png, std::fs::read(out2.join("figure_png.png")).unwrap());

    // A different exponent is reported as such.
    let mut fx = Fixture::new();
    mlp_fixture(&mut fx, "", 0.35, 30.0);
    let c = read_claim(
        &fx.run("c5", serde_json::json!({"profile": "test", "n_boot": 200}))
            .unwrap(),
    );
    assert!((c["value"].as_f64().unwrap() - 0.35).abs() < 0.03);
    assert_eq!(c["verdict"], "partly");
    assert!(!check(&c, "nu_matches_paper"));

    // Training too short to saturate: flagged, not hidden.
    let mut fx = Fixture::new();
    mlp_fixture(&mut fx, "", 0.7, 0.5);
    let c = read_claim(
        &fx.run("c5", serde_json::json!({"profile": "test", "n_boot": 100}))
            .unwrap(),
    );
    assert!(!check(&c, "I_K_saturated"), "{c:#}");
    assert_ne!(c["verdict"], "reproduced");
}

/// Transformer K x N sweep with K*(N) = prefactor N^exponent.
fn kn_fixture(fx: &mut Fixture, prefactor: f64, exponent: f64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for n in [10i64, 14, 20, 28, 40] {
        let kstar = prefactor * (n as f64).powf(exponent);
        for i in 0..14 {
            let k = (10f64.powf(1.5 + 3.0 * i as f64 / 13.0) / 2.0).round() as i64 * 2;
            for seed in 0..3 {
                let p = 1.0 / (1.0 + (-7.0 * ((k as f64).log10() - kstar.log10())).exp());
                let acc = 0.5 + 0.5 * p + rng.random_range(-0.03..0.03);
                let r = RunSpec {
                    model: "transformer",
                    n,
                    k: Some(k),
                    seed,
                    lr: 0.01,
                    beta0: None,
                    wd_attn: 1e-10,
                    iterations: 1000,
                    final_icl: acc,
                    final_iwl: 1.0 - p / 2.0,
                    peak_icl: acc,
                    t_icl: None,
                };
                fx.add_run("", &r, None);
            }
        }
    }
}

#[test]
fn c6_slope_and_holdout_prediction() {
    let mut fx = Fixture::new();
    kn_fixture(&mut fx, 2.0, 1.0 / 0.7);
    let out = fx
        .run(
            "c6",
            serde_json::json!({"profile": "test", "n_boot": 100, "seed": 2}),
        )
        .unwrap();
    let c = read_claim(&out);
    let slope = c["value"].as_f64().unwrap();
    assert!((slope - 1.0 / 0.7).abs() < 0.1, "{slope}");
    assert_eq!(c["verdict"], "reproduced", "{c:#}");
    let h = &c["details"]["holdout"];
    assert_eq!(h["n"], 40.0);
    assert!((h["ratio"].as_f64().unwrap().ln()).abs() < 0.2, "{h}");
    assert_figures(&out);

    // With a measured nu from a c5 claim: the comparison uses 1/nu measured.
    let mut c5fx = Fixture::new();
    mlp_fixture(&mut c5fx, "", 0.5, 30.0);
    let c5out = c5fx
        .run("c5", serde_json::json!({"profile": "test", "n_boot": 100}))
        .unwrap();
    fx.add(
        "nu_claim",
        &icl_store::parquet::read_batch(&c5out.join("claim.parquet")).unwrap(),
    );
    let c = read_claim(
        &fx.run(
            "c6",
            serde_json::json!({"profile": "test", "n_boot": 100, "seed": 2}),
        )
        .unwrap(),
    );
    assert!(
        (c["details"]["theory_slope"].as_f64().unwrap() - 2.0).abs() < 0.1,
        "{c:#}"
    );
    assert!(!check(&c, "slope_matches_1_over_nu"));
    assert_ne!(c["verdict"], "reproduced");
}

#[test]
fn c6_detects_a_different_slope() {
    let mut fx = Fixture::new();
    kn_fixture(&mut fx, 60.0, 0.6);
    let c = read_claim(
        &fx.run("c6", serde_json::json!({"profile": "test", "n_boot": 100}))
            .unwrap(),
    );
    assert!((c["value"].as_f64().unwrap() - 0.6).abs() < 0.1);
    assert!(!check(&c, "slope_matches_1_over_nu"));
    assert!(!check(&c, "holdout_predicted"));
}

/// Minimal-model K = inf runs with t_ICL = scale * ODE * (power of N) * noise.
fn c13_fixture(fx: &mut Fixture, scale: f64, n_power: f64, with_curves: bool) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    for n in [11i64, 21, 41] {
        for b0 in [0.0, 1.0, 2.0] {
            let ode = theory::t_icl_inf((n - 1) as f64, b0) / 0.01;
            for seed in 0..6 {
                let t = scale
                    * ode
                    * ((n - 1) as f64 / 10.0).powf(n_power - 1.0)
                    * (1.0 + rng.random_range(-0.1..0.1));
                let t_icl = t.round() as u64;
                let r = RunSpec {
                    model: "minimal",
                    n,
                    k: None,
                    seed,
                    lr: 0.01,
                    beta0: Some(b0),
                    wd_attn: 1e-10,
                    iterations: t_icl + 10,
                    final_icl: 0.99,
                    final_iwl: f64::NAN,
                    peak_icl: 0.99,
                    t_icl: Some(t_icl),
                };
                let curve = with_curves.then(|| {
                    let it: Vec<u64> = (0..=20).map(|i| i * (t_icl + 10) / 20).collect();
                    let m = it.len();
                    CurveSpec {
                        icl_acc: it
                            .iter()
                            .map(|i| if *i >= t_icl { 0.99 } else { 0.5 })
                            .collect(),
                        beta: vec![b0; m],
                        w: vec![0.0; m],
                        c1: vec![0.5; m],
                        c2: vec![0.5; m],
                        c3: vec![1.0; m],
                        iteration: it,
                    }
                });
                fx.add_run("", &r, curve.as_ref());
            }
        }
    }
}

#[test]
fn c13_prediction_test() {
    let mut fx = Fixture::new();
    c13_fixture(&mut fx, 1.7, 1.0, true);
    let out = fx
        .run("c13", serde_json::json!({"profile": "test", "n_boot": 200}))
        .unwrap();
    let c = read_claim(&out);
    assert_eq!(c["verdict"], "reproduced", "{c:#}");
    assert!((c["value"].as_f64().unwrap() - 1.0).abs() < 0.1);
    let d = &c["details"];
    assert!((d["scale_measured_over_ode"].as_f64().unwrap() - 1.7).abs() < 0.1);
    assert!((d["n_exponent"].as_f64().unwrap() - 1.0).abs() < 0.1);
    assert_eq!(d["fit_N"], serde_json::json!([11, 21]));
    assert_eq!(d["cells"].as_array().unwrap().len(), 9);
    assert_figures(&out);

    // t_ICL growing like N^2 fails the linear-in-N part and the held-out prediction.
    let mut fx = Fixture::new();
    c13_fixture(&mut fx, 1.0, 2.0, false);
    let c = read_claim(
        &fx.run(
            "c13",
            serde_json::json!({"profile": "test", "n_boot": 100, "fit_N": [11]}),
        )
        .unwrap(),
    );
    assert!(!check(&c, "t_icl_linear_in_N"));
    assert!(!check(&c, "holdout_t_icl_predicted"));
    assert_ne!(c["verdict"], "reproduced");
    // A fit_N that uses every N is refused with the key named.
    let e = fx
        .run(
            "c13",
            serde_json::json!({"profile": "test", "fit_N": [11, 21, 41]}),
        )
        .unwrap_err();
    assert!(format!("{e:#}").contains("fit_N"), "{e:#}");
}

#[test]
fn c13_kstar_prediction_from_mlp_law() {
    // Minimal-model K sweep whose measured K* equals the theory's prediction from the MLP law.
    let mut fx = Fixture::new();
    c13_fixture(&mut fx, 1.0, 1.0, false);
    mlp_fixture(&mut fx, "mlp_", 0.7, 30.0);
    let (n, b0, lr, iters) = (101i64, 0.5, 0.01, 200_000u64);
    // By the budget (lr x iterations = 2000) the MLP runs have (nearly) saturated, so
    // I_K(T) = 1.5 K^0.7, and their c2 = 1 - c1 gives an I-weighted c2 of 0.75.
    let kstar_guess = theory::kstar_predicted((n - 1) as f64, b0, 0.75, 1.5, 0.7);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for i in 0..12 {
        let k = (kstar_guess * 10f64.powf(-1.0 + 2.0 * i as f64 / 11.0) / 2.0).round() as i64 * 2;
        for seed in 0..3 {
            let p = 1.0 / (1.0 + (-8.0 * ((k as f64).log10() - kstar_guess.log10())).exp());
            let r = RunSpec {
                model: "minimal",
                n,
                k: Some(k),
                seed,
                lr,
                beta0: Some(b0),
                wd_attn: 1e-10,
                iterations: iters,
                final_icl: 0.5 + 0.5 * p + rng.random_range(-0.02..0.02),
                final_iwl: 1.0,
                peak_icl: 1.0,
                t_icl: None,
            };
            fx.add("kstar_summaries", &summary_batch(&r));
        }
    }
    let c = read_claim(
        &fx.run("c13", serde_json::json!({"profile": "test", "n_boot": 50}))
            .unwrap(),
    );
    let k = &c["details"]["kstar"][0];
    assert_eq!(k["valid"], true, "{k}");
    assert!(
        (k["nu_at_budget"].as_f64().unwrap() - 0.7).abs() < 0.03,
        "{k}"
    );
    assert!(k["mlp_coverage"].as_f64().unwrap() < 1.0);
    // c2_eff of the synthetic curves (c2 = 1 - c1) is I-weighted: 1 - <c1^2>/<c1> = 1 - 0.25 = 0.75.
    assert!((k["c2_eff"].as_f64().unwrap() - 0.75).abs() < 0.01, "{k}");
    assert!((k["ratio"].as_f64().unwrap().ln()).abs() < 0.15, "{k}");
    // Driving the ODE with each MLP run's own c1(t), c2(t) gives the same threshold: I_K(T)/n
    // crosses s*(beta0, c2) at the same K (up to the coarse K grid of the MLP runs and c2's drift).
    let driven = k["predicted_driven"].as_f64().unwrap();
    assert!(
        (driven / k["predicted"].as_f64().unwrap()).ln().abs() < 0.5,
        "{k}"
    );
    assert!(check(&c, "kstar_predicted"));
}

fn minimal_k_run(
    k: i64,
    seed: i64,
    kstar: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> (RunSpec, CurveSpec) {
    let acquired = (k as f64) > kstar * (1.0 + rng.random_range(-0.2..0.2));
    let t_icl = if acquired {
        Some(1000 + (rng.random_range(0.0..1.0) * 4000.0) as u64)
    } else {
        None
    };
    let it: Vec<u64> = (0..=100).map(|i| i * 100).collect();
    let acc: Vec<f64> = it
        .iter()
        .map(|i| match t_icl {
            Some(t) if *i >= t => 0.99,
            Some(t) if *i + 100 >= t => 0.8,
            _ => 0.5,
        })
        .collect();
    let m = it.len();
    let r = RunSpec {
        model: "minimal",
        n: 20,
        k: Some(k),
        seed,
        lr: 0.01,
        beta0: Some(0.0),
        wd_attn: 1e-10,
        iterations: 10_000,
        final_icl: *acc.last().unwrap(),
        final_iwl: if acquired { 0.6 } else { 1.0 },
        peak_icl: acc.iter().cloned().fold(0.0, f64::max),
        t_icl: t_icl.map(|t| t.div_ceil(100) * 100),
    };
    let c = CurveSpec {
        beta: acc
            .iter()
            .map(|a| if *a > 0.9 { 4.0 } else { 0.0 })
            .collect(),
        w: acc
            .iter()
            .map(|a| if *a > 0.9 { 5.0 } else { 0.1 })
            .collect(),
        c1: vec![0.3; m],
        c2: vec![0.6; m],
        c3: vec![0.5; m],
        icl_acc: acc,
        iteration: it,
    };
    (r, c)
}

#[test]
fn c3_transition_abruptness_transience() {
    let mut fx = Fixture::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    for i in 0..10 {
        let k = (10f64.powf(2.0 + 2.0 * i as f64 / 9.0) / 2.0).round() as i64 * 2;
        for seed in 0..4 {
            let (r, c) = minimal_k_run(k, seed, 1000.0, &mut rng);
            fx.add_run("", &r, Some(&c));
        }
    }
    // Transient runs: acquire at 2000, lose ICL at 6000.
    for seed in 0..2 {
        let it: Vec<u64> = (0..=100).map(|i| i * 100).collect();
        let acc: Vec<f64> = it
            .iter()
            .map(|i| {
                if *i < 2000 {
                    0.5
                } else if *i < 6000 {
                    0.99
                } else {
                    0.52
                }
            })
            .collect();
        let m = it.len();
        let r = RunSpec {
            model: "minimal",
            n: 20,
            k: Some(2000),
            seed,
            lr: 0.01,
            beta0: Some(0.0),
            wd_attn: 3e-3,
            iterations: 10_000,
            final_icl: 0.52,
            final_iwl: 1.0,
            peak_icl: 0.99,
            t_icl: Some(2000),
        };
        let c = CurveSpec {
            beta: vec![1.0; m],
            w: acc.iter().map(|a| 10.0 * (a - 0.5)).collect(),
            c1: vec![0.1; m],
            c2: vec![0.9; m],
            c3: vec![0.1; m],
            icl_acc: acc,
            iteration: it,
        };
        fx.add_run("transient_", &r, Some(&c));
    }
    let out = fx
        .run("c3", serde_json::json!({"profile": "test", "n_boot": 50}))
        .unwrap();
    let c = read_claim(&out);
    assert_eq!(c["verdict"], "reproduced", "{c:#}");
    assert!(
        (c["value"].as_f64().unwrap() / 1000.0 - 1.0).abs() < 0.3,
        "{}",
        c["value"]
    );
    assert_eq!(c["details"]["transience"]["lost"], 2);
    assert_eq!(
        c["details"]["transience"]["t_lost"],
        serde_json::json!([6000.0, 6000.0])
    );
    assert_figures(&out);
}

#[test]
fn c4_landscape_without_inputs_and_with_measured_c1() {
    let fx = Fixture::new();
    let params = serde_json::json!({"profile": "test", "N": 60, "beta0": 0.5, "grid": 31, "memorized_mean": 2.5, "memorized_sd": 0.5});
    let out = fx.run("c4", params).unwrap();
    let c = read_claim(&out);
    let d = &c["details"];
    let c1_ratio = d["c1_ratio"].as_f64().unwrap();
    assert!(
        (d["start_gradient_ratio"].as_f64().unwrap() / c1_ratio - 1.0).abs() < 1e-4,
        "{d:#}"
    );
    let slow = c["value"].as_f64().unwrap();
    assert!(slow > 3.0, "memorization slows ICL: {slow}");
    assert!(check(&c, "icl_downhill_in_both"));
    assert_figures(&out);

    // Memorized distribution matched to measured final c1 of MLP runs.
    let mut fx = Fixture::new();
    mlp_fixture(&mut fx, "", 0.7, 2.0);
    let c = read_claim(
        &fx.run(
            "c4",
            serde_json::json!({"profile": "test", "N": 40, "grid": 21, "memorized_K": 64}),
        )
        .unwrap(),
    );
    let src = &c["details"]["memorized_source"];
    assert_eq!(src["K"], 64);
    let measured = src["c1_measured"].as_f64().unwrap();
    assert!((c["details"]["cases"][1]["c1"].as_f64().unwrap() / measured - 1.0).abs() < 1e-4);
    let e = fx
        .run(
            "c4",
            serde_json::json!({"profile": "test", "memorized_K": 65}),
        )
        .unwrap_err();
    assert!(format!("{e:#}").contains("memorized_K"));
}

#[test]
fn check_rejects_unknown_keys_and_bad_values() {
    let s = FitNuStage;
    let e = s.check("c5", &serde_json::json!({"profile": "q", "nboot": 3}));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key, "nboot");
    let e = s.check("c5", &serde_json::json!({"profile": "q", "level": 1.5}));
    assert_eq!(e[0].key, "level");
    assert!(e[0].message.contains("strictly between 0 and 1"));
    let e = s.check("c6", &serde_json::json!({"seed": 1}));
    assert_eq!(e[0].key, "profile");
    let e = s.check("c9", &serde_json::json!({}));
    assert_eq!(e[0].key, "command");
    assert!(e[0].message.contains("c13"));
    let e = s.check(
        "c13",
        &serde_json::json!({"profile": "q", "event": "sometime"}),
    );
    assert_eq!(e[0].key, "event");
    let e = s.check(
        "c4",
        &serde_json::json!({"profile": "q", "w_min": 3.0, "w_max": 1.0}),
    );
    assert_eq!(e[0].key, "w_max");
    for cmd in ["c3", "c4", "c5", "c6", "c13"] {
        assert!(
            s.check(cmd, &serde_json::json!({"profile": "ci"}))
                .is_empty(),
            "{cmd}"
        );
    }
}

#[test]
fn binary_answers_check_on_stdin() {
    use std::io::Write;
    let exe = env!("CARGO_BIN_EXE_icl-fit-nu");
    let mut child = std::process::Command::new(exe)
        .arg("check")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"[{"command": "c5", "params": {"profile": "ci"}}, {"command": "c6", "params": {"profile": "ci", "holdout_N": -1}}]"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["index"], 1);
    assert_eq!(a[0]["key"], "holdout_N");
    let bad = std::process::Command::new(exe)
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn mismatched_curve_and_summary_order_is_caught() {
    let mut fx = Fixture::new();
    let (r1, c1) = mlp_run(64, 0, 1.5, 0.7, 0.0, 30.0);
    let (r2, c2) = mlp_run(1024, 0, 1.5, 0.7, 0.0, 30.0);
    fx.add("summaries", &summary_batch(&r1));
    fx.add("summaries", &summary_batch(&r2));
    fx.add("curves", &curve_batch(&c2));
    fx.add("curves", &curve_batch(&c1));
    let e = fx
        .run("c5", serde_json::json!({"profile": "t"}))
        .unwrap_err();
    assert!(format!("{e:#}").contains("same run order"), "{e:#}");
}
