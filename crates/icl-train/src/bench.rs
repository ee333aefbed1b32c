//! `icl-train bench`: training speed of the one-layer transformer on one thread, against this
//! machine's measured fp32 peak and (when PyTorch imports) the authors' model in PyTorch.
//!
//! FLOPs are counted on the query-only computation, per training iteration (B sequences,
//! E = D + 2, hidden width H, N tokens), multiply-add = 2:
//!
//! ```text
//! MLP        forward 2(EH + H^2 + H), backward 2(H + 2H^2 + 2EH)       = 2(3EH + 3H^2 + 2H)
//! attention  forward 2(3E^2 + 2NE),   backward 2(6E^2 + 2NE)           = 2(9E^2 + 4NE)
//! flops/iter = 2B (3EH + 3H^2 + 2H + 9E^2 + 4NE)
//! ```
//!
//! (LayerNorm, softmax, element-wise ops and the SGD update are not counted.) At the paper's
//! setting (B 128, E 65, H 512, N 100) that is 243.5 MFLOP per iteration. The headline
//! iterations/s include drawing the batch (K = 20000 items, as in Fig 2d) and the SGD update.
//! Every rate is per CPU second and the best of 5 windows, on both sides of the comparison.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use clap::Parser;
use icl_datagen::{generate_items, NumItems};

use crate::data::TrainSource;
use crate::eval::Evaluator;
use crate::fast::Net;
use crate::model::{sgd_step, Arch, Params};
use crate::params::{ModelKind, TrainParams};

#[derive(Parser)]
#[command(
    name = "icl-train bench",
    about = "Training speed of the fast path vs fp32 peak and the PyTorch reference"
)]
struct BenchArgs {
    /// Seconds per headline measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Shorter measurements and a smaller sweep.
    #[arg(long)]
    quick: bool,
    /// Skip the PyTorch reference even if torch imports.
    #[arg(long)]
    no_reference: bool,
    /// The reference script (default: bench/reference_torch.py in the workspace).
    #[arg(long)]
    reference_script: Option<PathBuf>,
    /// Only the headline measurement (for profiling).
    #[arg(long)]
    headline_only: bool,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Only this one setting, MODEL:N:K:WIDTH (e.g. transformer:100:2000:64, K `inf` allowed):
    /// prints `it/s=` for comparing two builds on one cell (alternate them; see the README).
    #[arg(long, value_name = "MODEL:N:K:WIDTH")]
    only: Option<String>,
}

/// `--only`: one setting's rate.
fn only_rate(spec: &str, seconds: f64) -> anyhow::Result<f64> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [model, n, k, width] = parts[..] else {
        anyhow::bail!("--only {spec:?}: expected MODEL:N:K:WIDTH, e.g. transformer:100:2000:64");
    };
    let model: ModelKind = model
        .parse()
        .map_err(|e| anyhow::anyhow!("--only {spec:?}: {e}"))?;
    let k: NumItems = k
        .parse()
        .map_err(|e| anyhow::anyhow!("--only {spec:?}: K: {e}"))?;
    let parse = |v: &str, what: &str| -> anyhow::Result<usize> {
        v.parse()
            .map_err(|_| anyhow::anyhow!("--only {spec:?}: {what} must be a positive integer"))
    };
    model_step_rate(model, parse(n, "N")?, k, parse(width, "WIDTH")?, seconds)
}

/// Query-only FLOPs of one training iteration (see the module docs).
pub fn flops_per_iter(b: usize, n: usize, d: usize, h: usize) -> f64 {
    let (b, n, e, h) = (b as f64, n as f64, (d + 2) as f64, h as f64);
    2.0 * b * (3.0 * e * h + 3.0 * h * h + 2.0 * h + 9.0 * e * e + 4.0 * n * e)
}

fn bench_params(n: usize, k: NumItems, width: usize) -> TrainParams {
    model_params(ModelKind::Transformer, n, k, width)
}

fn model_params(model: ModelKind, n: usize, k: NumItems, width: usize) -> TrainParams {
    let v =
        serde_json::json!({"model": model, "N": n, "K": k, "width": width, "epochs": 1, "seed": 0});
    TrainParams::from_json(&v).expect("valid bench params")
}

/// CPU seconds used by this process (all threads; the fast path runs on one). Rates are per CPU
/// second, so a busy machine (other processes on the other core) does not distort them; on an
/// idle core CPU time and wall time agree. The PyTorch reference is timed the same way.
pub fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Training iterations per CPU second (batch drawing + forward/backward + SGD): the best of
/// [`WINDOWS`] windows of `seconds / WINDOWS` each, after a warm-up (best-of, as `timeit`: the
/// least disturbed window). Items for a finite K are generated here (not timed).
pub fn step_rate(n: usize, k: NumItems, width: usize, seconds: f64) -> anyhow::Result<f64> {
    model_step_rate(ModelKind::Transformer, n, k, width, seconds)
}

/// [`step_rate`] for any model (the MLP-only model ignores `n`).
pub fn model_step_rate(
    model: ModelKind,
    n: usize,
    k: NumItems,
    width: usize,
    seconds: f64,
) -> anyhow::Result<f64> {
    let p = model_params(model, n, k, width);
    let items = k.finite().map(|k| Arc::new(generate_items(k, p.d, 0)));
    let mut source = TrainSource::new(&p, items)?;
    let arch = Arch::from_params(&p);
    let mut params = Params::init(arch, 0, None);
    let mut grads = params.zeros_like();
    let n_max = if model == ModelKind::MlpOnly { 1 } else { p.n };
    let mut net = Net::new(arch, p.batch, n_max);
    let step = || -> anyhow::Result<()> {
        let batch = source.next_batch();
        net.loss_and_grad(&params, batch, &mut grads)?;
        sgd_step(&mut params, &grads, p.lr, p.wd_attn, p.wd_mlp);
        Ok(())
    };
    Ok(1.0 / seconds_per_call(seconds, step)?)
}

/// CPU seconds per call of `call`: the best of [`WINDOWS`] windows of `seconds / WINDOWS` each
/// (at least two calls each), after three calls of warm-up.
fn seconds_per_call(
    seconds: f64,
    mut call: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    for _ in 0..3 {
        call()?;
    }
    let mut best = f64::INFINITY;
    for _ in 0..WINDOWS {
        let t = cpu_seconds();
        let mut iters = 0u64;
        while cpu_seconds() - t < seconds / WINDOWS as f64 || iters < 2 {
            call()?;
            iters += 1;
        }
        best = best.min((cpu_seconds() - t) / iters as f64);
    }
    Ok(best)
}

/// CPU seconds to draw one training batch alone, best of [`WINDOWS`] windows: for K = inf,
/// N x D fresh normals per sequence, labels and the query copy; for finite K, items copied from
/// the table. A step is its drawing plus work that does not depend on K, so with t_f the finite-K
/// step time, t_f / (t_f - draw(K) + draw(inf)) predicts the K = inf / finite-K ratio while
/// drawing stays on the training thread (on the Xeon it matched the measured ratio to 0.01; on
/// a Zen 4 EPYC the measured ratio comes out above it, drawing costing less inside the step).
pub fn draw_seconds(n: usize, k: NumItems, seconds: f64) -> anyhow::Result<f64> {
    let p = bench_params(n, k, 64);
    let items = k.finite().map(|k| Arc::new(generate_items(k, p.d, 0)));
    let mut source = TrainSource::new(&p, items)?;
    seconds_per_call(seconds, || {
        std::hint::black_box(source.next_batch());
        Ok(())
    })
}

/// Measurement windows per rate (the PyTorch reference uses the same number).
pub const WINDOWS: usize = 5;

/// CPU seconds for one evaluation (ICL + IWL test sets of 2000 sequences each).
pub fn eval_seconds(n: usize, k: usize, width: usize) -> anyhow::Result<f64> {
    let p = bench_params(n, NumItems::Finite(k), width);
    let inputs = crate::fit::generate(&p, icl_datagen::DEFAULT_N_TEST)?;
    let arch = Arch::from_params(&p);
    let params = Params::init(arch, 0, None);
    let mut net = Net::new(arch, p.batch, p.n);
    let items = inputs.items.clone().expect("finite K");
    let icl = crate::data::TestSet::icl(
        inputs.icl_test.as_ref().expect("icl"),
        inputs.novel_items.clone().expect("novel"),
        None,
    )?;
    let iwl = crate::data::TestSet::iwl(inputs.iwl_test.as_ref().expect("iwl"), items, 0, None)?;
    let mut ev = Evaluator::new(
        ModelKind::Transformer,
        Some(icl),
        Some(iwl),
        None,
        p.batch,
        p.d,
    );
    ev.evaluate(&mut net, &params)?;
    let t = cpu_seconds();
    let reps = 2;
    for _ in 0..reps {
        ev.evaluate(&mut net, &params)?;
    }
    Ok((cpu_seconds() - t) / reps as f64)
}

/// Single-thread fp32 peak in GFLOP/s from an FMA microkernel (independent accumulator chains,
/// enough to cover the FMA latency), the best of the AVX-512 and AVX2 variants this CPU has.
pub fn peak_gflops(seconds: f64) -> (f64, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut best = (0.0, "none");
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            let g = measure(seconds, |it| unsafe { fma512(it) }, 16 * 16 * 2);
            if g > best.0 {
                best = (g, "avx512f");
            }
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            let g = measure(seconds, |it| unsafe { fma256(it) }, 12 * 8 * 2);
            if g > best.0 {
                best = (g, "avx2+fma");
            }
        }
        best
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = seconds;
        (f64::NAN, "unmeasured")
    }
}

#[cfg(target_arch = "x86_64")]
fn measure(seconds: f64, kernel: impl Fn(u64), flops_per_iter: u64) -> f64 {
    let mut iters = 1u64 << 16;
    loop {
        let t = cpu_seconds();
        kernel(std::hint::black_box(iters));
        let el = cpu_seconds() - t;
        if el > seconds {
            return (iters * flops_per_iter) as f64 / el / 1e9;
        }
        iters *= 2;
    }
}

/// `iters` rounds of 16 independent 512-bit FMAs (in assembly, so the compiler cannot drop or
/// merge any: 16 x 16 lanes x 2 flops per round).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma512(iters: u64) {
    use std::arch::asm;
    let iters = iters.max(1);
    // SAFETY: register-only arithmetic plus two reads of local constants; runs `iters` >= 1 times.
    unsafe {
        asm!(
            "vbroadcastss zmm16, dword ptr [{a}]",
            "vbroadcastss zmm17, dword ptr [{b}]",
            "vmovaps zmm0, zmm17", "vmovaps zmm1, zmm17", "vmovaps zmm2, zmm17", "vmovaps zmm3, zmm17",
            "vmovaps zmm4, zmm17", "vmovaps zmm5, zmm17", "vmovaps zmm6, zmm17", "vmovaps zmm7, zmm17",
            "vmovaps zmm8, zmm17", "vmovaps zmm9, zmm17", "vmovaps zmm10, zmm17", "vmovaps zmm11, zmm17",
            "vmovaps zmm12, zmm17", "vmovaps zmm13, zmm17", "vmovaps zmm14, zmm17", "vmovaps zmm15, zmm17",
            "2:",
            "vfmadd213ps zmm0, zmm16, zmm17", "vfmadd213ps zmm1, zmm16, zmm17",
            "vfmadd213ps zmm2, zmm16, zmm17", "vfmadd213ps zmm3, zmm16, zmm17",
            "vfmadd213ps zmm4, zmm16, zmm17", "vfmadd213ps zmm5, zmm16, zmm17",
            "vfmadd213ps zmm6, zmm16, zmm17", "vfmadd213ps zmm7, zmm16, zmm17",
            "vfmadd213ps zmm8, zmm16, zmm17", "vfmadd213ps zmm9, zmm16, zmm17",
            "vfmadd213ps zmm10, zmm16, zmm17", "vfmadd213ps zmm11, zmm16, zmm17",
            "vfmadd213ps zmm12, zmm16, zmm17", "vfmadd213ps zmm13, zmm16, zmm17",
            "vfmadd213ps zmm14, zmm16, zmm17", "vfmadd213ps zmm15, zmm16, zmm17",
            "dec {n}",
            "jnz 2b",
            a = in(reg) &0.999_999_9f32,
            b = in(reg) &1e-7f32,
            n = inout(reg) iters => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _,
            out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _,
            options(nostack, readonly),
        );
    }
}

/// `iters` rounds of 12 independent 256-bit FMAs (12 x 8 lanes x 2 flops per round).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma256(iters: u64) {
    use std::arch::asm;
    let iters = iters.max(1);
    // SAFETY: register-only arithmetic plus two reads of local constants; runs `iters` >= 1 times.
    unsafe {
        asm!(
            "vbroadcastss ymm12, dword ptr [{a}]",
            "vbroadcastss ymm13, dword ptr [{b}]",
            "vmovaps ymm0, ymm13", "vmovaps ymm1, ymm13", "vmovaps ymm2, ymm13", "vmovaps ymm3, ymm13",
            "vmovaps ymm4, ymm13", "vmovaps ymm5, ymm13", "vmovaps ymm6, ymm13", "vmovaps ymm7, ymm13",
            "vmovaps ymm8, ymm13", "vmovaps ymm9, ymm13", "vmovaps ymm10, ymm13", "vmovaps ymm11, ymm13",
            "2:",
            "vfmadd213ps ymm0, ymm12, ymm13", "vfmadd213ps ymm1, ymm12, ymm13",
            "vfmadd213ps ymm2, ymm12, ymm13", "vfmadd213ps ymm3, ymm12, ymm13",
            "vfmadd213ps ymm4, ymm12, ymm13", "vfmadd213ps ymm5, ymm12, ymm13",
            "vfmadd213ps ymm6, ymm12, ymm13", "vfmadd213ps ymm7, ymm12, ymm13",
            "vfmadd213ps ymm8, ymm12, ymm13", "vfmadd213ps ymm9, ymm12, ymm13",
            "vfmadd213ps ymm10, ymm12, ymm13", "vfmadd213ps ymm11, ymm12, ymm13",
            "dec {n}",
            "jnz 2b",
            a = in(reg) &0.999_999_9f32,
            b = in(reg) &1e-7f32,
            n = inout(reg) iters => _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _,
            out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _,
            options(nostack, readonly),
        );
    }
}

fn reference_rate(a: &BenchArgs, seconds: f64) -> Option<f64> {
    if a.no_reference {
        println!("reference: skipped (--no-reference)");
        return None;
    }
    let ok = Command::new(&a.python)
        .args(["-c", "import torch"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!(
            "reference: skipped (`{} -c \"import torch\"` fails; pip install torch to compare)",
            a.python
        );
        return None;
    }
    let script = a.reference_script.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/reference_torch.py")
    });
    let out = Command::new(&a.python)
        .arg(&script)
        .args([
            "--n",
            "100",
            "--batch",
            "128",
            "--width",
            "512",
            "--seconds",
            &format!("{seconds}"),
        ])
        .args(["--windows", &WINDOWS.to_string()])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let line = text.lines().find(|l| l.starts_with("reference:"))?;
            println!("{line}");
            line.split_whitespace()
                .find_map(|w| w.strip_prefix("its_per_s="))
                .and_then(|v| v.parse().ok())
        }
        Ok(o) => {
            println!(
                "reference: failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            None
        }
        Err(e) => {
            println!("reference: cannot run {}: {e}", script.display());
            None
        }
    }
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let a = BenchArgs::parse_from(args);
    let secs = if a.quick {
        a.seconds.min(2.0)
    } else {
        a.seconds
    };
    if let Some(spec) = &a.only {
        println!("it/s={:.1}", only_rate(spec, secs)?);
        return Ok(());
    }
    println!("icl-train bench: one thread, release build; query-only FLOPs = 2B(3EH + 3H^2 + 2H + 9E^2 + 4NE)");

    let (peak, isa) = peak_gflops(if a.quick { 0.3 } else { 1.0 });
    println!("fp32 peak (FMA microkernel, {isa}): {peak:.1} GFLOP/s");

    // Headline: N = 100, batch 128, width 512, K = 20000 (Fig 2d), one thread.
    let its = step_rate(100, NumItems::Finite(20000), 512, secs)?;
    let fl = flops_per_iter(128, 100, 63, 512);
    let gflops = its * fl / 1e9;
    println!(
        "transformer N=100 B=128 width=512 K=20000: {its:.1} it/s, {:.1} MFLOP/it, {gflops:.1} GFLOP/s = {:.1}% of peak",
        fl / 1e6,
        100.0 * gflops / peak
    );
    if a.headline_only {
        return Ok(());
    }
    let its_inf = step_rate(100, NumItems::Infinite, 512, secs / 2.0)?;
    println!("transformer N=100 B=128 width=512 K=inf (fresh Gaussian items each step): {its_inf:.1} it/s");

    let ev = eval_seconds(100, 20000, 512)?;
    let paper_iters = 469_000f64;
    let paper = paper_iters / its + 1000.0 * ev;
    println!(
        "one paper run (N=100, 1000 epochs = 469000 it, 1000 evaluations of {ev:.2} s): {:.0} s = {:.2} h on one core",
        paper,
        paper / 3600.0
    );

    println!("\nit/s by N and width (batch 128, one thread; K=2000 | K=inf):");
    let ns: &[usize] = if a.quick {
        &[10, 50, 100]
    } else {
        &[10, 20, 50, 100]
    };
    let ws: &[usize] = &[64, 128, 512];
    print!("{:>6}", "N");
    for w in ws {
        print!(" | {:>21}", format!("width {w}"));
    }
    println!();
    let s = if a.quick { 0.3 } else { 0.8 };
    let mut ratios_n100 = Vec::new();
    let mut finite_n100 = Vec::new();
    for &n in ns {
        print!("{n:>6}");
        for &w in ws {
            let f = step_rate(n, NumItems::Finite(2000), w, s)?;
            let i = step_rate(n, NumItems::Infinite, w, s / 2.0)?;
            print!(" | {f:>9.0} | {i:>9.0}");
            if n == 100 {
                ratios_n100.push(format!("width {w} {:.2}", i / f));
                finite_n100.push((w, f));
            }
        }
        println!();
    }
    println!("K=inf / K=2000 at N=100: {}", ratios_n100.join(", "));
    // The ratio predicted from the drawing times: drawing the batch is serial work on the
    // training thread (rates are per CPU second), so K = inf pays its extra drawing time on
    // every step (see `draw_seconds`).
    let draw_f = draw_seconds(100, NumItems::Finite(2000), s / 2.0)?;
    let draw_i = draw_seconds(100, NumItems::Infinite, s / 2.0)?;
    let predicted: Vec<String> = finite_n100
        .iter()
        .map(|&(w, f)| format!("width {w} {:.2}", (1.0 / f) / (1.0 / f - draw_f + draw_i)))
        .collect();
    println!(
        "batch drawing alone at N=100, ms: K=2000 {:.3}, K=inf {:.3}; ratio that predicts: {}",
        1e3 * draw_f,
        1e3 * draw_i,
        predicted.join(", ")
    );
    // The generator alone on each kernel this CPU has (same bits on all): the K=inf drawing
    // above runs the last one listed. One call per sequence, as the sampler makes them:
    // N - 1 = 99 context items of D = 63, timed a batch of 128 sequences at a time (one
    // sequence, ~4 us, would be within 10% of the clock's own cost).
    let mut kernels = Vec::new();
    for (name, mut draw) in icl_datagen::kinf_kernels(99 * 63) {
        let t = seconds_per_call(s / 4.0, || {
            for _ in 0..128 {
                draw();
            }
            Ok(())
        })?;
        kernels.push(format!("{name} {:.3}", 1e3 * t));
    }
    println!(
        "K=inf normals alone per batch (128 sequences x 99 x 63) by kernel, ms: {}",
        kernels.join(", ")
    );

    println!(
        "\nother models, it/s (batch 128, one thread; K=2000 | K=inf; mlp_only: K=2000 items):"
    );
    for (model, ns) in [
        (ModelKind::TwoLayer, &[10usize, 20, 50][..]),
        (ModelKind::Minimal, &[10, 20, 50, 100][..]),
    ] {
        for &n in ns {
            print!("{:>12} N={n:<4}", model.as_str());
            for &w in ws {
                let f = model_step_rate(model, n, NumItems::Finite(2000), w, s / 2.0)?;
                let i = model_step_rate(model, n, NumItems::Infinite, w, s / 2.0)?;
                print!(" | w{w:<4}{f:>7.0} |{i:>7.0}");
            }
            println!();
        }
    }
    print!("{:>12}       ", "mlp_only");
    for &w in ws {
        print!(
            " | w{w:<4}{:>7.0}        ",
            model_step_rate(ModelKind::MlpOnly, 2, NumItems::Finite(2000), w, s / 2.0)?
        );
    }
    println!();

    let r = reference_rate(&a, if a.quick { 4.0 } else { 10.0 });
    let (rs, sp) = match r {
        Some(r) => (format!("{r:.3}"), format!("{:.2}", its / r)),
        None => ("none".to_string(), "none".to_string()),
    };
    // kinf_ratio: the K = inf rate over the headline's (K = 20000), both at N = 100, width 512.
    println!(
        "bench: its_per_s={its:.2} gflops={gflops:.2} peak_fraction={:.3} reference_its_per_s={rs} speedup={sp} kinf_ratio={:.3}",
        gflops / peak,
        its_inf / its
    );
    Ok(())
}
