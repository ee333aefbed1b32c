//! icl-train's tests: gradients (nonzero, finite differences, fast path vs the authors' full causal
//! attention), determinism, resume after kill -9, and that tiny runs learn ICL and memorize.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use icl_datagen::{assign_labels, generate_items, Batch, ContextMode, Sampler, TrainData};
use icl_train::fast::Net;
use icl_train::model::{Arch, Params};
use icl_train::reference::Reference;
use icl_train::{ModelKind, TrainParams};

const ALL: [ModelKind; 4] = [
    ModelKind::Transformer,
    ModelKind::TwoLayer,
    ModelKind::Minimal,
    ModelKind::MlpOnly,
];

/// A batch of real training sequences (finite K, so queries repeat context items).
fn batch(b: usize, n: usize, d: usize, k: usize, seed: u64) -> Batch {
    let items = Arc::new(generate_items(k, d, seed));
    let labels = assign_labels(k, seed).unwrap();
    let mut s = Sampler::new(
        TrainData::Finite { items, labels },
        n,
        ContextMode::Standard,
        seed,
    )
    .unwrap();
    let mut bt = Batch::new(b, n, d);
    s.fill_batch(&mut bt);
    bt
}

/// Initial parameters, with the minimal model's w moved off 0 (at w = 0, d loss / d beta is
/// exactly 0 by the model's form, so it would hide a missing gradient path).
fn params(kind: ModelKind, d: usize, width: usize, seed: u64) -> Params {
    let mut p = Params::init(Arch { kind, d, width }, seed, Some(0.7));
    if kind == ModelKind::Minimal {
        p.get_mut("w")[0] = 0.8;
    }
    p
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[test]
fn every_parameter_gets_a_nonzero_gradient() {
    for kind in ALL {
        let (d, w, n) = (6, 8, 5);
        let p = params(kind, d, w, 1);
        let bt = batch(8, n, d, 6, 2);
        let r = Reference::new(&p, DType::F64).unwrap();
        let (_, _, g) = r.loss_and_grads(&bt).unwrap();
        for (s, g) in p.specs.iter().zip(&g) {
            assert!(
                max_abs(g) > 0.0,
                "{kind}: candle gradient of {} is zero",
                s.name
            );
        }
        let mut net = Net::new(p.arch, 8, n);
        let mut fg = p.zeros_like();
        net.loss_and_grad(&p, &bt, &mut fg).unwrap();
        for (s, g) in p.specs.iter().zip(&fg.data) {
            assert!(
                g.iter().any(|v| *v != 0.0),
                "{kind}: fast-path gradient of {} is zero",
                s.name
            );
        }
    }
}

fn loss_f64(r: &Reference, bt: &Batch) -> f64 {
    let out = r.forward(bt, bt.b, false).unwrap();
    r.loss(&out.logits, bt, bt.b)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn perturb(r: &Reference, i: usize, j: usize, delta: f64) {
    let t = r.vars[i].as_tensor();
    let shape = t.dims().to_vec();
    let mut v: Vec<f64> = t.flatten_all().unwrap().to_vec1().unwrap();
    v[j] += delta;
    r.vars[i]
        .set(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap())
        .unwrap();
}

#[test]
fn finite_differences_match_autograd_in_f64() {
    for kind in ALL {
        let (d, w, n) = (5, 6, 4);
        let p = params(kind, d, w, 3);
        let bt = batch(6, n, d, 4, 4);
        let r = Reference::new(&p, DType::F64).unwrap();
        let (_, _, g) = r.loss_and_grads(&bt).unwrap();
        let h = 1e-6;
        for (i, s) in p.specs.iter().enumerate() {
            let len = s.numel();
            // First, last and a middle entry of every tensor.
            for j in [0, len / 2, len - 1] {
                perturb(&r, i, j, h);
                let up = loss_f64(&r, &bt);
                perturb(&r, i, j, -2.0 * h);
                let down = loss_f64(&r, &bt);
                perturb(&r, i, j, h);
                let fd = (up - down) / (2.0 * h);
                let err = (fd - g[i][j]).abs();
                assert!(
                    err <= 1e-6 * (1.0 + g[i][j].abs()) * 10.0,
                    "{kind}: {}[{j}]: finite difference {fd} vs autograd {}",
                    s.name,
                    g[i][j]
                );
            }
        }
    }
}

/// The fast path (f32, query-only) against the authors' full causal attention on candle in f64.
/// Tolerance: per tensor, |fast - reference| <= 2e-5 * max|reference| + 1e-8 (f32 rounding; the
/// observed worst is ~6e-6 of the scale); logits within 1e-4 absolute.
#[test]
fn fast_path_equals_full_causal_attention_reference() {
    for kind in ALL {
        for sharpen in [1.0f32, 4.0] {
            let (d, w, n, b) = if kind == ModelKind::TwoLayer {
                (63, 32, 12, 8)
            } else {
                (63, 48, 24, 16)
            };
            let mut p = params(kind, d, w, 5);
            for name in ["qkv.weight", "qkv.0.weight", "qkv.1.weight"] {
                if let Some(i) = p.index(name) {
                    p.data[i].iter_mut().for_each(|v| *v *= sharpen);
                }
            }
            if let Some(i) = p.index("beta") {
                p.data[i][0] *= sharpen;
            }
            let bt = batch(b, n, d, 30, 6);
            let r = Reference::new(&p, DType::F64).unwrap();
            let ref_logits: Vec<f64> = r.forward(&bt, b, false).unwrap().logits.to_vec1().unwrap();
            let (ref_loss, ref_correct, g) = r.loss_and_grads(&bt).unwrap();

            let mut net = Net::new(p.arch, b, n);
            assert!(net.is_fast());
            let out = net.eval_chunk(&p, &bt, b, false).unwrap();
            for (f, rl) in out.logits.iter().zip(&ref_logits) {
                assert!(
                    (*f as f64 - rl).abs() < 1e-4,
                    "{kind} x{sharpen}: logit {f} vs {rl}"
                );
            }
            let mut fg = p.zeros_like();
            let (loss, correct) = net.loss_and_grad(&p, &bt, &mut fg).unwrap();
            assert!(
                (loss - ref_loss).abs() < 1e-5,
                "{kind}: loss {loss} vs {ref_loss}"
            );
            assert_eq!(correct, ref_correct);
            for ((s, f), rg) in p.specs.iter().zip(&fg.data).zip(&g) {
                let scale = max_abs(rg);
                let tol = 2e-5 * scale + 1e-8;
                let worst = f
                    .iter()
                    .zip(rg)
                    .map(|(a, b)| (*a as f64 - b).abs())
                    .fold(0.0, f64::max);
                eprintln!(
                    "{kind} x{sharpen} {}: max |fast - reference| = {:.2e} of scale {scale:.2e}",
                    s.name, worst
                );
                assert!(
                    worst <= tol,
                    "{kind} x{sharpen}: {}: max error {worst:e} > {tol:e} (scale {scale:e})",
                    s.name
                );
            }
        }
    }
}

/// The attention scores at the query and the logits without attention of the fast path equal
/// the reference's (transformers: used for beta_eff and w_eff).
#[test]
fn query_scores_match_reference() {
    for kind in [ModelKind::Transformer, ModelKind::TwoLayer] {
        let (d, w, n, b) = (63, 16, 12, 8);
        let p = params(kind, d, w, 8);
        let bt = batch(b, n, d, 10, 9);
        let r = Reference::new(&p, DType::F64).unwrap();
        let out = r.forward(&bt, b, false).unwrap();
        let s_ref: Vec<f64> = out
            .query_scores
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let noattn_ref: Vec<f64> = r.forward(&bt, b, true).unwrap().logits.to_vec1().unwrap();
        let mut net = Net::new(p.arch, b, n);
        let o = net.eval_chunk(&p, &bt, b, true).unwrap();
        for (a, e) in o.scores.unwrap().iter().zip(&s_ref) {
            assert!(
                (*a as f64 - e).abs() < 1e-4 * (1.0 + e.abs()),
                "score {a} vs {e}"
            );
        }
        for (a, e) in o.no_attention.unwrap().iter().zip(&noattn_ref) {
            assert!(
                (*a as f64 - e).abs() < 1e-4,
                "logit without attention {a} vs {e}"
            );
        }
    }
}

fn tiny(model: &str, k: serde_json::Value, n: usize, extra: serde_json::Value) -> TrainParams {
    let mut v = serde_json::json!({
        "model": model, "D": 16, "N": n, "K": k, "width": 32, "batch": 32, "lr": 0.05,
        "epochs": 6, "iters_per_epoch": 50, "seed": 11, "early_stop": null
    });
    for (key, val) in extra.as_object().unwrap() {
        v[key] = val.clone();
    }
    TrainParams::from_json(&v).unwrap()
}

fn outputs(p: &TrainParams, dir: &Path, resume: Option<&Path>) -> Vec<Vec<u8>> {
    let inputs = icl_train::fit::generate(p, 200).unwrap();
    let r = icl_train::train(p, &inputs, resume, &mut |_| {}).unwrap();
    icl_train::stage::write_outputs(p, &r, |n, e| dir.join(format!("{n}.{e}"))).unwrap();
    ["curve.parquet", "summary.parquet", "checkpoint.safetensors"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    for model in ["transformer", "minimal", "mlp_only", "two_layer"] {
        let k = if model == "mlp_only" {
            serde_json::json!(40)
        } else {
            serde_json::json!(20)
        };
        let epochs = if model == "two_layer" { 1 } else { 2 };
        let p = tiny(
            model,
            k,
            8,
            serde_json::json!({"epochs": epochs, "iters_per_epoch": 20}),
        );
        let dirs: Vec<_> = (0..3)
            .map(|i| tmp.path().join(format!("{model}{i}")))
            .collect();
        dirs.iter()
            .for_each(|d| std::fs::create_dir_all(d).unwrap());
        let a = outputs(&p, &dirs[0], None);
        let b = outputs(&p, &dirs[1], None);
        assert_eq!(
            a, b,
            "{model}: same seed must give identical curve, summary and checkpoint bytes"
        );
        let mut q = p.clone();
        q.seed += 1;
        let c = outputs(&q, &dirs[2], None);
        assert_ne!(a[0], c[0], "{model}: another seed must give another curve");
        assert_ne!(
            a[2], c[2],
            "{model}: another seed must give another checkpoint"
        );
    }
}

#[test]
fn resume_after_interruption_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tiny(
        "transformer",
        serde_json::json!(20),
        8,
        serde_json::json!({"epochs": 6, "iters_per_epoch": 20, "save_every": 20}),
    );
    let (a_dir, b_dir, state) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("state"),
    );
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let want = outputs(&p, &a_dir, None);
    // Interrupt at the second save (a panic out of the event callback unwinds through `train`).
    let inputs = icl_train::fit::generate(&p, 200).unwrap();
    let mut saves = 0;
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        icl_train::train(&p, &inputs, Some(&state), &mut |e| {
            if let icl_train::Event::Saved { .. } = e {
                saves += 1;
                if saves == 2 {
                    panic!("simulated interruption");
                }
            }
        })
    }));
    assert!(res.is_err());
    assert!(icl_train::train::state_path(&state).exists());
    let mut resumed_at = None;
    let r = icl_train::train(&p, &inputs, Some(&state), &mut |e| {
        if let icl_train::Event::Resumed { iteration } = e {
            resumed_at = Some(iteration);
        }
    })
    .unwrap();
    assert_eq!(resumed_at, Some(40));
    icl_train::stage::write_outputs(&p, &r, |n, e| b_dir.join(format!("{n}.{e}"))).unwrap();
    let got: Vec<Vec<u8>> = ["curve.parquet", "summary.parquet", "checkpoint.safetensors"]
        .iter()
        .map(|f| std::fs::read(b_dir.join(f)).unwrap())
        .collect();
    assert_eq!(got, want);
}

/// The stage binary killed with SIGKILL mid-run, then rerun on the same resume folder, writes the
/// same bytes as an uninterrupted run.
#[test]
#[cfg(unix)]
fn stage_binary_survives_kill_9() {
    use icl_store::task::{InputRef, TaskSpec};
    let tmp = tempfile::tempdir().unwrap();
    let p = serde_json::json!({
        "model": "transformer", "D": 16, "N": 16, "K": 40, "width": 64, "batch": 32, "lr": 0.05,
        "epochs": 100, "iters_per_epoch": 50, "seed": 3, "early_stop": null, "save_every": 50
    });
    let tp = TrainParams::from_json(&p).unwrap();
    let inputs = icl_train::fit::generate(&tp, 100).unwrap();
    let art = tmp.path().join("art");
    std::fs::create_dir_all(&art).unwrap();
    inputs
        .items
        .as_ref()
        .unwrap()
        .write(&art.join("items.parquet"))
        .unwrap();
    inputs
        .novel_items
        .as_ref()
        .unwrap()
        .write(&art.join("novel.parquet"))
        .unwrap();
    inputs
        .icl_test
        .as_ref()
        .unwrap()
        .write(&art.join("icl.parquet"))
        .unwrap();
    inputs
        .iwl_test
        .as_ref()
        .unwrap()
        .write(&art.join("iwl.parquet"))
        .unwrap();
    let task = |out: &str, resume: Option<&str>| {
        let mut ins = std::collections::BTreeMap::new();
        for (name, f) in [
            ("items", "items"),
            ("novel_items", "novel"),
            ("icl_test", "icl"),
            ("iwl_test", "iwl"),
        ] {
            ins.insert(
                name.to_string(),
                vec![InputRef {
                    path: art.join(format!("{f}.parquet")),
                    hash: String::new(),
                }],
            );
        }
        let out_dir = tmp.path().join(out);
        std::fs::create_dir_all(&out_dir).unwrap();
        let t = TaskSpec {
            stage: "train".into(),
            command: "train".into(),
            params: p.clone(),
            inputs: ins,
            outputs: vec!["curve".into(), "summary".into(), "checkpoint".into()],
            out_dir: out_dir.clone(),
            resume_dir: resume.map(|r| tmp.path().join(r)),
            threads: 1,
        };
        let f = tmp.path().join(format!("{out}.json"));
        std::fs::write(&f, serde_json::to_string(&t).unwrap()).unwrap();
        (f, out_dir)
    };
    let bin = env!("CARGO_BIN_EXE_icl-train");
    let read = |d: &Path| -> Vec<Vec<u8>> {
        ["curve.parquet", "summary.parquet", "checkpoint.safetensors"]
            .iter()
            .map(|f| std::fs::read(d.join(f)).unwrap())
            .collect()
    };
    let (fa, da) = task("a", None);
    let quiet = || std::process::Stdio::null();
    assert!(std::process::Command::new(bin)
        .args(["run", "--task"])
        .arg(&fa)
        .stderr(quiet())
        .status()
        .unwrap()
        .success());

    let (fb, db) = task("b", Some("resume"));
    let mut child = std::process::Command::new(bin)
        .args(["run", "--task"])
        .arg(&fb)
        .stderr(quiet())
        .spawn()
        .unwrap();
    let state = tmp.path().join("resume").join("state.json");
    let t0 = std::time::Instant::now();
    while !state.exists() {
        assert!(t0.elapsed().as_secs() < 60, "no state saved within 60 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "run finished before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !db.join("summary.parquet").exists(),
        "killed before the end"
    );
    let (fb2, db2) = task("b2", Some("resume"));
    let out = std::process::Command::new(bin)
        .args(["run", "--task"])
        .arg(&fb2)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("resumed at iteration"));
    assert_eq!(read(&db2), read(&da));
}

#[test]
fn tiny_k_inf_run_learns_icl() {
    for model in ["transformer", "two_layer"] {
        let p = tiny(
            model,
            serde_json::json!("inf"),
            6,
            serde_json::json!({"epochs": 60, "early_stop": 0.95, "lr": 0.1}),
        );
        let inputs = icl_train::fit::generate(&p, 500).unwrap();
        let r = icl_train::train(&p, &inputs, None, &mut |_| {}).unwrap();
        let last = r.curve.last().unwrap();
        assert!(
            last.icl_acc > 0.9,
            "{model}: ICL accuracy {} after {} iterations",
            last.icl_acc,
            last.iteration
        );
        assert!(r.summary.acquired && r.summary.t_icl.is_some());
        assert!(
            last.beta_eff > r.curve[0].beta_eff + 1.0,
            "{model}: the head should learn to attend to the match: {:?}",
            (r.curve[0].beta_eff, last.beta_eff)
        );
    }
}

#[test]
fn tiny_small_k_run_memorizes() {
    let p = tiny(
        "transformer",
        serde_json::json!(16),
        6,
        serde_json::json!({"epochs": 40, "lr": 0.1}),
    );
    let inputs = icl_train::fit::generate(&p, 500).unwrap();
    let r = icl_train::train(&p, &inputs, None, &mut |_| {}).unwrap();
    let last = r.curve.last().unwrap();
    assert!(
        last.iwl_acc > 0.9,
        "IWL accuracy {} after {} iterations",
        last.iwl_acc,
        last.iteration
    );
    assert!(last.c1 < r.curve[0].c1, "c1 falls as the MLP memorizes");
}

#[test]
fn tiny_mlp_only_memorizes_and_minimal_learns_icl() {
    let p = tiny(
        "mlp_only",
        serde_json::json!(32),
        2,
        serde_json::json!({"epochs": 40, "lr": 0.1}),
    );
    let r = icl_train::train(
        &p,
        &icl_train::fit::generate(&p, 100).unwrap(),
        None,
        &mut |_| {},
    )
    .unwrap();
    let last = r.curve.last().unwrap();
    assert!(last.iwl_acc > 0.95 && last.icl_acc.is_nan(), "{last:?}");
    assert!(last.c1 < 0.2 && last.c3 < r.curve[0].c3, "{last:?}");

    let p = tiny(
        "minimal",
        serde_json::json!("inf"),
        6,
        serde_json::json!({"epochs": 60, "lr": 0.2, "beta0": 1.0, "early_stop": 0.95}),
    );
    let r = icl_train::train(
        &p,
        &icl_train::fit::generate(&p, 500).unwrap(),
        None,
        &mut |_| {},
    )
    .unwrap();
    let last = r.curve.last().unwrap();
    assert!(
        last.icl_acc > 0.9 && last.w_eff > 0.0 && last.beta_eff > 1.0,
        "{last:?}"
    );
}

#[test]
fn stage_check_names_keys() {
    use icl_store::task::Stage;
    let s = icl_train::stage::TrainStage;
    let ok =
        serde_json::json!({"model": "transformer", "N": 100, "K": "inf", "epochs": 1, "seed": 0});
    assert!(s.check("train", &ok).is_empty());
    assert_eq!(s.check("fit", &ok)[0].key, "command");
    let mut bad = ok.clone();
    bad["lr"] = serde_json::json!(0);
    assert_eq!(s.check("train", &bad)[0].key, "lr");
    bad["bogus"] = serde_json::json!(1);
    assert_eq!(s.check("train", &bad)[0].key, "bogus");
}

/// Counts heap allocations per thread (tests run in parallel threads), except those the `gemm`
/// crate makes for its packing buffers (it allocates one per call; nothing in our code can
/// prevent that).
struct CountingAlloc;

fn count_alloc() {
    if !icl_train::fast::linalg::inside_gemm() {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    }
}

thread_local! {
    static ALLOCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator; only counts.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        count_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// A training step (draw the batch, forward, backward, SGD) allocates nothing once warm, apart
/// from `gemm`'s own packing buffers.
#[test]
fn training_steps_do_not_allocate() {
    for model in ["transformer", "two_layer", "minimal", "mlp_only"] {
        for k in [serde_json::json!(40), serde_json::json!("inf")] {
            if model == "mlp_only" && k.is_string() {
                continue;
            }
            let p = tiny(model, k, 8, serde_json::json!({}));
            let inputs = icl_train::fit::generate(&p, 50).unwrap();
            let arch = Arch::from_params(&p);
            let mut params = Params::init(arch, p.seed, p.beta0);
            let mut grads = params.zeros_like();
            let mut source = icl_train::data::TrainSource::new(&p, inputs.items.clone()).unwrap();
            let n_max = if model == "mlp_only" { 1 } else { p.n };
            let mut net = Net::new(arch, p.batch, n_max);
            let mut step = || {
                let batch = source.next_batch();
                net.loss_and_grad(&params, batch, &mut grads).unwrap();
                icl_train::model::sgd_step(&mut params, &grads, p.lr, p.wd_attn, p.wd_mlp);
            };
            for _ in 0..3 {
                step();
            }
            let before = ALLOCS.with(|c| c.get());
            for _ in 0..20 {
                step();
            }
            let after = ALLOCS.with(|c| c.get());
            assert_eq!(
                after - before,
                0,
                "{model} K={}: {} allocations in 20 steps",
                p.k,
                after - before
            );
        }
    }
}

/// The candle engine (autograd at f32, for cross-checks) and the fast engine take the same step.
#[test]
fn candle_engine_matches_fast_engine() {
    for kind in ALL {
        let (d, w, n, b) = (12, 16, 6, 8);
        let p = params(kind, d, w, 21);
        let bt = batch(b, n, d, 8, 22);
        let (mut gf, mut gc) = (p.zeros_like(), p.zeros_like());
        let (lf, cf) = Net::new(p.arch, b, n)
            .loss_and_grad(&p, &bt, &mut gf)
            .unwrap();
        let mut candle = Net::candle(b, n);
        assert!(!candle.is_fast());
        let (lc, cc) = candle.loss_and_grad(&p, &bt, &mut gc).unwrap();
        assert!(
            (lf - lc).abs() < 1e-5 && cf == cc,
            "{kind}: loss {lf} vs {lc}, correct {cf} vs {cc}"
        );
        for ((s, f), c) in p.specs.iter().zip(&gf.data).zip(&gc.data) {
            let scale = f.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = f.iter().zip(c).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                worst <= 1e-4 * scale + 1e-7,
                "{kind}: {}: {worst:e} of {scale:e}",
                s.name
            );
        }
        let fl = Net::new(p.arch, b, n)
            .eval_chunk(&p, &bt, b, true)
            .unwrap()
            .logits
            .to_vec();
        let cl = candle.eval_chunk(&p, &bt, b, true).unwrap().logits.to_vec();
        for (a, c) in fl.iter().zip(&cl) {
            assert!((a - c).abs() < 1e-4, "{kind}: logit {a} vs {c}");
        }
    }
}

/// `curve` and `summary` have the ARCHITECTURE.md schemas; K = inf is a null K.
#[test]
fn artifact_schemas_follow_architecture() {
    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::DataType;
    let tmp = tempfile::tempdir().unwrap();
    let p = tiny(
        "transformer",
        serde_json::json!("inf"),
        6,
        serde_json::json!({"epochs": 2, "iters_per_epoch": 10}),
    );
    outputs(&p, tmp.path(), None);
    let curve = icl_store::parquet::read_batch(&tmp.path().join("curve.parquet")).unwrap();
    let names: Vec<String> = curve
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        icl_train::CurveRow::COLUMNS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(curve.schema().field(0).data_type(), &DataType::UInt64);
    assert!(curve
        .schema()
        .fields()
        .iter()
        .skip(1)
        .all(|f| f.data_type() == &DataType::Float64));
    assert_eq!(curve.num_rows(), 3, "iterations 0, 10, 20");
    let s = icl_store::parquet::read_batch(&tmp.path().join("summary.parquet")).unwrap();
    assert_eq!(s.num_rows(), 1);
    let k = s
        .column_by_name("K")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert!(k.is_null(0));
    for (name, ty) in [
        ("final_icl_acc", DataType::Float64),
        ("final_iwl_acc", DataType::Float64),
        ("final_icl_loss", DataType::Float64),
        ("final_iwl_loss", DataType::Float64),
        ("iterations", DataType::UInt64),
        ("t_icl", DataType::UInt64),
        ("acquired", DataType::Boolean),
        ("peak_icl_acc", DataType::Float64),
        ("early_stopped", DataType::Boolean),
        ("beta0_eff", DataType::Float64),
        ("model", DataType::Utf8),
        ("N", DataType::Int64),
        ("seed", DataType::Int64),
        ("lr", DataType::Float64),
    ] {
        assert_eq!(
            s.column_by_name(name)
                .unwrap_or_else(|| panic!("no column {name}"))
                .data_type(),
            &ty,
            "{name}"
        );
    }
}

/// c1..c3 of a transformer come from the whole network's margins on the IWL test (the query is
/// unmatched there, so they estimate the theory's phi+): defined for finite K, and the curve has
/// no other c columns.
#[test]
fn c_statistics_come_from_the_iwl_margins() {
    let p = tiny(
        "transformer",
        serde_json::json!(20),
        6,
        serde_json::json!({"epochs": 2}),
    );
    let inputs = icl_train::fit::generate(&p, 200).unwrap();
    let r = icl_train::train(&p, &inputs, None, &mut |_| {}).unwrap();
    for row in &r.curve {
        assert!(row.c1 > 0.0 && row.c1 < 1.0, "{row:?}");
        assert!(row.c3.is_finite() && row.c3 > 0.0, "{row:?}");
        // c3 = <exp(-m)> >= <ln(1 + e^-m)> = the IWL loss, as ln(1 + x) <= x.
        assert!(row.c3 >= row.iwl_loss - 1e-9, "{row:?}");
    }
    assert!(!icl_train::train::CurveRow::COLUMNS
        .iter()
        .any(|c| c.ends_with("_mlp")));
}
