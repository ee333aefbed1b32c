//! The memorization law: I_K(t) = integral of c1 over training for MLP-only runs, its saturation,
//! and nu = slope of log I_K(inf) against log K with a seeded bootstrap over seeds.
//!
//! Unit: I is in gradient-flow time, i.e. learning rate x iterations, the same time the reduced
//! dynamics use (so I_K / n can be compared with s* directly).
//!
//! A caveat the data must speak to: with the logistic loss on separable data the margin keeps
//! growing like log t, so c1 ~ 1/t late and I_K(t) keeps creeping up logarithmically. "I_K(inf)"
//! is therefore the value at the end of training, with a saturation check (relative growth over
//! the last part of training below a tolerance) and nu refitted at half the training time to show
//! how much the estimate still drifts.

use crate::io::{Curve, Run};
use anyhow::{bail, Result};
use icl_claim::stats::{self, LineFit};
use std::collections::BTreeMap;

/// Memorization summary of one MLP-only run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemoRun {
    pub k: f64,
    pub seed: u64,
    pub lr: f64,
    /// Training length in gradient-flow time.
    pub t_end: f64,
    /// I at the end of training.
    pub i_end: f64,
    /// I at half the training time.
    pub i_half: f64,
    /// (I(T) - I((1 - tail) T)) / I(T).
    pub rel_growth_tail: f64,
    pub saturated: bool,
    pub c1_start: f64,
    pub c1_end: f64,
    pub c3_end: f64,
}

/// Settings of the saturation check.
#[derive(Debug, Clone, Copy)]
pub struct Saturation {
    /// Fraction of training at the end over which growth is measured (0.2 = last 20%).
    pub tail: f64,
    /// Largest relative growth over that tail still called saturated.
    pub tol: f64,
}

/// Cumulative I(t) over the curve's evaluations (t = lr * iteration), skipping NaN c1 values.
pub fn cumulative_i(curve: &Curve, lr: f64) -> (Vec<f64>, Vec<f64>) {
    let (t, c1): (Vec<f64>, Vec<f64>) = curve
        .iteration
        .iter()
        .zip(&curve.c1)
        .filter(|(_, c)| c.is_finite())
        .map(|(it, c)| (lr * it, *c))
        .unzip();
    let i = stats::cumtrapz(&t, &c1);
    (t, i)
}

pub fn analyze_run(run: &Run, sat: Saturation) -> Result<MemoRun> {
    let s = &run.summary;
    let Some(k) = s.k else {
        bail!(
            "memorization law: run seed {} has K = inf (no memorization to measure)",
            s.seed
        )
    };
    let Some(curve) = &run.curve else {
        bail!("memorization law: run K={k} seed {} has no curve", s.seed)
    };
    let (t, i) = cumulative_i(curve, s.lr);
    if t.len() < 3 {
        bail!(
            "memorization law: run K={k} seed {} has {} evaluations with c1 (need >= 3)",
            s.seed,
            t.len()
        );
    }
    let t_end = *t.last().expect("nonempty");
    let at = |x: f64| stats::interp(&t, &i, x);
    let i_end = *i.last().expect("nonempty");
    let i_tail = at(t[0] + (1.0 - sat.tail) * (t_end - t[0]));
    let rel = if i_end > 0.0 {
        (i_end - i_tail) / i_end
    } else {
        f64::NAN
    };
    let finite_c = |v: &[f64]| {
        v.iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect::<Vec<_>>()
    };
    let c1 = finite_c(&curve.c1);
    let c3 = finite_c(&curve.c3);
    Ok(MemoRun {
        k,
        seed: s.seed,
        lr: s.lr,
        t_end,
        i_end,
        i_half: at(t[0] + 0.5 * (t_end - t[0])),
        rel_growth_tail: rel,
        saturated: rel.is_finite() && rel < sat.tol,
        c1_start: c1[0],
        c1_end: *c1.last().expect("nonempty"),
        c3_end: c3.last().copied().unwrap_or(f64::NAN),
    })
}

/// Per-K aggregate (geometric mean over seeds).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KPoint {
    pub k: f64,
    pub n_seeds: usize,
    pub i_end: f64,
    pub i_half: f64,
    pub saturated_fraction: f64,
    pub rel_growth_tail: f64,
    pub c1_start: f64,
    pub c1_end: f64,
}

/// The fitted law I_K = amp * K^nu.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NuFit {
    pub nu: f64,
    /// ln(amp), amp in learning-rate x iterations.
    pub ln_amp: f64,
    pub low: f64,
    pub high: f64,
    pub level: f64,
    pub fit: LineFit,
    /// What the bootstrap resampled: "seeds within K" or "K points" (one seed per K).
    pub resampled: String,
    pub n_boot: usize,
    /// nu fitted on I at half the training time (drift check).
    pub nu_half: f64,
    /// K values used in the fit / left out as unsaturated.
    pub k_used: Vec<f64>,
    pub k_unsaturated: Vec<f64>,
    pub points: Vec<KPoint>,
}

impl NuFit {
    pub fn amp(&self) -> f64 {
        self.ln_amp.exp()
    }
    pub fn predict(&self, k: f64) -> f64 {
        (self.ln_amp + self.nu * k.ln()).exp()
    }
}

fn group_by_k(runs: &[MemoRun]) -> BTreeMap<u64, Vec<&MemoRun>> {
    let mut m: BTreeMap<u64, Vec<&MemoRun>> = BTreeMap::new();
    for r in runs {
        m.entry(r.k.round() as u64).or_default().push(r);
    }
    m
}

pub fn k_points(runs: &[MemoRun]) -> Vec<KPoint> {
    group_by_k(runs)
        .into_values()
        .map(|rs| {
            let gm = |f: &dyn Fn(&MemoRun) -> f64| {
                stats::mean_finite(&rs.iter().map(|r| f(r).ln()).collect::<Vec<_>>()).exp()
            };
            KPoint {
                k: rs[0].k,
                n_seeds: rs.len(),
                i_end: gm(&|r| r.i_end),
                i_half: gm(&|r| r.i_half),
                saturated_fraction: rs.iter().filter(|r| r.saturated).count() as f64
                    / rs.len() as f64,
                rel_growth_tail: stats::median(
                    &rs.iter().map(|r| r.rel_growth_tail).collect::<Vec<_>>(),
                ),
                c1_start: stats::median(&rs.iter().map(|r| r.c1_start).collect::<Vec<_>>()),
                c1_end: stats::median(&rs.iter().map(|r| r.c1_end).collect::<Vec<_>>()),
            }
        })
        .collect()
}

/// Fit ln I = ln amp + nu ln K on per-K geometric means. Unsaturated K (fewer than half of its
/// seeds saturated) are left out unless `include_unsaturated`. Interval: percentile bootstrap
/// resampling seeds within each K (or the K points themselves when every K has one seed).
pub fn fit_nu(
    runs: &[MemoRun],
    include_unsaturated: bool,
    n_boot: usize,
    seed: u64,
    level: f64,
) -> Result<NuFit> {
    let points = k_points(runs);
    let groups = group_by_k(runs);
    let keep = |p: &KPoint| include_unsaturated || p.saturated_fraction >= 0.5;
    let used: Vec<&KPoint> = points.iter().filter(|p| keep(p)).collect();
    if used.len() < 2 {
        bail!(
            "memorization law: {} K values usable ({} saturated of {}); need >= 2 to fit nu \
             (train longer, or set include_unsaturated: true to fit anyway)",
            used.len(),
            points
                .iter()
                .filter(|p| p.saturated_fraction >= 0.5)
                .count(),
            points.len()
        );
    }
    let lx: Vec<f64> = used.iter().map(|p| p.k.ln()).collect();
    let ly: Vec<f64> = used.iter().map(|p| p.i_end.ln()).collect();
    let fit = stats::linear_fit(&lx, &ly)
        .ok_or_else(|| anyhow::anyhow!("memorization law: degenerate K values"))?;
    let half = stats::linear_fit(&lx, &used.iter().map(|p| p.i_half.ln()).collect::<Vec<_>>())
        .map(|f| f.slope);

    let used_groups: Vec<Vec<&MemoRun>> = used
        .iter()
        .map(|p| groups[&(p.k.round() as u64)].clone())
        .collect();
    let one_seed = used_groups.iter().all(|g| g.len() == 1);
    let mut rng = stats::rng(seed, 0x6e75); // "nu"
    let mut reps = Vec::with_capacity(n_boot);
    for _ in 0..n_boot {
        let (x, y): (Vec<f64>, Vec<f64>) = if one_seed {
            let idx: Vec<usize> = stats::resample(&mut rng, &(0..used.len()).collect::<Vec<_>>());
            idx.iter().map(|&i| (lx[i], ly[i])).unzip()
        } else {
            used_groups
                .iter()
                .map(|g| {
                    let r = stats::resample(&mut rng, g);
                    (
                        g[0].k.ln(),
                        stats::mean_finite(&r.iter().map(|m| m.i_end.ln()).collect::<Vec<_>>()),
                    )
                })
                .unzip()
        };
        if let Some(f) = stats::linear_fit(&x, &y) {
            reps.push(f.slope);
        }
    }
    let (low, high) = if reps.len() >= 20 {
        stats::percentile_interval(&reps, level)
    } else {
        (f64::NAN, f64::NAN)
    };
    Ok(NuFit {
        nu: fit.slope,
        ln_amp: fit.intercept,
        low,
        high,
        level,
        fit,
        resampled: if one_seed {
            "K points".into()
        } else {
            "seeds within K".into()
        },
        n_boot: reps.len(),
        nu_half: half.unwrap_or(f64::NAN),
        k_used: used.iter().map(|p| p.k).collect(),
        k_unsaturated: points.iter().filter(|p| !keep(p)).map(|p| p.k).collect(),
        points,
    })
}

/// Memorization fit straight from runs (convenience for stages that take MLP curves).
pub fn fit_from_runs(
    runs: &[Run],
    sat: Saturation,
    include_unsaturated: bool,
    n_boot: usize,
    seed: u64,
) -> Result<(Vec<MemoRun>, NuFit)> {
    let memo: Vec<MemoRun> = runs
        .iter()
        .filter(|r| r.summary.k.is_some())
        .map(|r| analyze_run(r, sat))
        .collect::<Result<_>>()?;
    let fit = fit_nu(&memo, include_unsaturated, n_boot, seed, 0.95)?;
    Ok((memo, fit))
}

/// I_K at gradient-flow time `t` for every run (held at the end value past the end of the curve),
/// with a flag saying whether the curve reached `t`.
pub fn i_at(run: &Run, t: f64) -> Option<(f64, bool)> {
    let curve = run.curve.as_ref()?;
    let (ts, i) = cumulative_i(curve, run.summary.lr);
    if ts.is_empty() {
        return None;
    }
    let end = *ts.last().expect("nonempty");
    Some((stats::interp(&ts, &i, t.min(end)), end >= t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Summary;

    pub(crate) fn summary(k: Option<f64>, seed: u64, iterations: f64) -> Summary {
        Summary {
            model: "mlp_only".into(),
            n: 10.0,
            k,
            seed,
            lr: 0.01,
            beta0: None,
            wd_attn: 0.0,
            planned_iterations: Some(iterations),
            iterations,
            final_icl_acc: f64::NAN,
            final_iwl_acc: 1.0,
            peak_icl_acc: f64::NAN,
            t_icl: None,
            t_icl_threshold: 0.95,
            acquired: false,
            early_stopped: false,
        }
    }

    /// A synthetic run whose c1 decays so that I_K(inf) = amp * K^nu exactly:
    /// c1(t) = 0.5 exp(-t / tau) with tau = 2 amp K^nu (t = lr * iteration).
    pub(crate) fn synthetic_run(k: f64, seed: u64, amp: f64, nu: f64, noise: f64) -> Run {
        let tau = 2.0 * amp * k.powf(nu) * (1.0 + noise);
        let lr = 0.01;
        let iters: Vec<f64> = (0..=400)
            .map(|i| i as f64 * 40.0 * tau / lr / 400.0)
            .collect();
        let c1: Vec<f64> = iters
            .iter()
            .map(|it| 0.5 * (-(lr * it) / tau).exp())
            .collect();
        let n = iters.len();
        let curve = Curve {
            iteration: iters.clone(),
            c1,
            c2: vec![0.5; n],
            c3: vec![1.0; n],
            icl_acc: vec![f64::NAN; n],
            iwl_acc: vec![f64::NAN; n],
            icl_loss: vec![f64::NAN; n],
            iwl_loss: vec![f64::NAN; n],
            beta_eff: vec![f64::NAN; n],
            w_eff: vec![f64::NAN; n],
        };
        Run {
            summary: summary(Some(k), seed, *iters.last().unwrap()),
            curve: Some(curve),
        }
    }

    const SAT: Saturation = Saturation {
        tail: 0.2,
        tol: 0.05,
    };

    #[test]
    fn integral_of_c1_is_in_learning_rate_units() {
        let r = synthetic_run(100.0, 0, 3.0, 0.7, 0.0);
        let m = analyze_run(&r, SAT).unwrap();
        let want = 3.0 * 100f64.powf(0.7);
        assert!((m.i_end / want - 1.0).abs() < 1e-3, "{} vs {want}", m.i_end);
        assert!(m.saturated && m.rel_growth_tail < 1e-6);
        assert!(m.c1_end < 1e-10 && (m.c1_start - 0.5).abs() < 1e-12);
    }

    #[test]
    fn recovers_nu_with_a_bootstrap_interval() {
        let mut runs = Vec::new();
        let mut r = stats::rng(5, 1);
        for &k in &[64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0] {
            for seed in 0..4 {
                use rand::Rng;
                runs.push(synthetic_run(k, seed, 2.0, 0.7, r.random_range(-0.1..0.1)));
            }
        }
        let memo: Vec<MemoRun> = runs.iter().map(|r| analyze_run(r, SAT).unwrap()).collect();
        let f = fit_nu(&memo, false, 400, 9, 0.95).unwrap();
        assert!((f.nu - 0.7).abs() < 0.03, "{f:?}");
        assert!(
            f.low < 0.7 && 0.7 < f.high && f.high - f.low < 0.1,
            "{} {}",
            f.low,
            f.high
        );
        assert!((f.amp() / 2.0 - 1.0).abs() < 0.15);
        assert_eq!(f.resampled, "seeds within K");
        assert_eq!(f.k_used.len(), 6);
        // Same seed, same interval; different seed, (almost surely) different interval.
        let g = fit_nu(&memo, false, 400, 9, 0.95).unwrap();
        assert_eq!((f.low, f.high), (g.low, g.high));
        let h = fit_nu(&memo, false, 400, 10, 0.95).unwrap();
        assert_ne!((f.low, f.high), (h.low, h.high));
    }

    #[test]
    fn unsaturated_runs_are_flagged_and_left_out() {
        // Cut training short for the two largest K: c1 has not decayed.
        let mut runs: Vec<Run> = [64.0, 128.0, 256.0, 512.0]
            .iter()
            .map(|&k| synthetic_run(k, 0, 2.0, 0.7, 0.0))
            .collect();
        for &k in &[1024.0, 2048.0] {
            let mut r = synthetic_run(k, 0, 2.0, 0.7, 0.0);
            let c = r.curve.as_mut().unwrap();
            let keep = 12; // 3% of the decay time
            for v in [&mut c.iteration, &mut c.c1, &mut c.c2, &mut c.c3] {
                v.truncate(keep);
            }
            r.summary.iterations = *c.iteration.last().unwrap();
            runs.push(r);
        }
        let memo: Vec<MemoRun> = runs.iter().map(|r| analyze_run(r, SAT).unwrap()).collect();
        assert!(!memo[4].saturated && !memo[5].saturated);
        let f = fit_nu(&memo, false, 100, 1, 0.95).unwrap();
        assert_eq!(f.k_unsaturated, vec![1024.0, 2048.0]);
        assert!((f.nu - 0.7).abs() < 1e-2);
        assert_eq!(f.resampled, "K points");
        let all = fit_nu(&memo, true, 100, 1, 0.95).unwrap();
        assert!(
            all.nu < 0.6,
            "unsaturated points bend the law down: {}",
            all.nu
        );
        let few: Vec<MemoRun> = memo[4..].to_vec();
        assert!(fit_nu(&few, false, 10, 1, 0.95).is_err());
    }
}
