//! C12 (Fig 6e, A8): with equalized contexts (the query's label always the context minority) the
//! fraction of runs that acquire ICL, as a function of K, differs from standard contexts.
//!
//! Input: gathered run summaries of both arms (the `context` column says which; the standard arm
//! may come from another stage's sweep, e.g. C1's runs). Equalized is a TRAINING condition:
//! both arms are scored on the same standard ICL test (as the reference's: label counts carry
//! no information about the query beyond the match's vote), so the minority-label shortcut the
//! equalized training rewards scores below chance there. A run "has ICL" when its FINAL ICL
//! accuracy is above `final_acc_threshold` (0.75, Fig 6e's count), thresholded per run (the
//! reference analysis averages accuracy instead); whether it ever reached the training's
//! `t_icl_threshold` (the summary's `acquired`) is a side column. Runs are stratified by K; only
//! K values present in both arms are compared. Per K: Wilson 95% intervals of each arm's
//! fraction. Overall: the Cochran-Mantel-Haenszel test of no difference (stratified by K,
//! continuity-corrected, 1 dof) and the Mantel-Haenszel risk difference (equalized minus
//! standard) with an interval from Jeffreys-posterior draws of every K x arm fraction.

use crate::params::C12Params;
use anyhow::{bail, ensure, Result};
use icl_claim::claim::Check;
use icl_claim::claim::{Claim, Verdict};
use icl_claim::frame;
use icl_claim::frame::{bools, column_names, f64s};
use icl_claim::ladder::{self, Rungs};
use icl_claim::stage::{input_paths, ClaimAnalysis, PaperClaim};
use icl_claim::stats::{chi2_sf, finite, percentile_interval, wilson};
use icl_plot::{color, Axis, Figure, Layer, Legend, Panel, GREY};
use icl_store::task::TaskSpec;
use polars::prelude::DataFrame;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};
use serde::Serialize;
use serde_json::json;

pub const STATEMENT: &str = "With equalized contexts (query label always the context minority) the fraction of runs that acquire ICL, as a function of K, differs from standard contexts.";
pub const PAPER_VALUE: &str = "N = 100, K = 10 log-spaced values 4998..49998: fraction of runs with ICL vs K differs between standard and equalized (49 vs 50) contexts (Fig 6e, A8)";

/// Settings that must agree between the arms (when the summaries carry them).
pub const SAME_SETTINGS: [&str; 11] = [
    "N",
    "D",
    "width",
    "lr",
    "batch",
    "wd_attn",
    "wd_mlp",
    "epochs",
    "iters_per_epoch",
    "t_icl_threshold",
    "early_stop",
];

#[derive(Debug, Clone, Serialize)]
pub struct Arm {
    pub runs: usize,
    pub acquired: usize,
    pub fraction: f64,
    pub wilson_95: (f64, f64),
}

impl Arm {
    fn new(outcomes: &[f64]) -> Self {
        let k = outcomes.iter().filter(|&&v| v > 0.5).count();
        let n = outcomes.len();
        Arm {
            runs: n,
            acquired: k,
            fraction: if n > 0 { k as f64 / n as f64 } else { f64::NAN },
            wilson_95: wilson(k, n, 1.96),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stratum {
    #[serde(rename = "K")]
    pub k: f64,
    /// Runs with final ICL accuracy above the threshold.
    pub standard: Arm,
    pub equalized: Arm,
    /// equalized minus standard fraction.
    pub difference: f64,
    /// Side column: runs whose ICL accuracy ever reached t_icl_threshold (summary `acquired`).
    pub standard_ever_reached: Arm,
    pub equalized_ever_reached: Arm,
}

#[derive(Debug, Clone)]
pub struct C12Analysis {
    pub strata: Vec<Stratum>,
    pub unmatched_k: Vec<f64>,
    pub cmh_chi2: f64,
    pub cmh_p: f64,
    pub rd: f64,
    pub rd_low: f64,
    pub rd_high: f64,
    pub n_runs: usize,
    /// Median final beta_eff of the compared runs WITH ICL (final accuracy above the threshold)
    /// per arm (standard, equalized), and how many runs each median covers; when curves are given.
    pub median_final_beta: Option<((f64, usize), (f64, usize))>,
    /// Context lengths of the compared runs (for the count floor).
    pub ns: Vec<u64>,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df.column(name).map_err(|_| {
        anyhow::anyhow!(
            "summaries lack column `{name}` (have: {})",
            column_names(df)
        )
    })?;
    let s = c
        .str()
        .map_err(|_| anyhow::anyhow!("column `{name}` is not text"))?;
    Ok(s.iter().map(|v| v.map(str::to_string)).collect())
}

/// Cochran-Mantel-Haenszel statistic (continuity-corrected) over 2x2 tables
/// (a = arm-1 successes, n1 = arm-1 runs, c = arm-2 successes, n2 = arm-2 runs).
pub fn cmh(tables: &[(f64, f64, f64, f64)]) -> (f64, f64) {
    let (mut dev, mut var) = (0.0, 0.0);
    for &(a, n1, c, n2) in tables {
        let n = n1 + n2;
        if n < 2.0 {
            continue;
        }
        let m1 = a + c;
        dev += a - n1 * m1 / n;
        var += n1 * n2 * m1 * (n - m1) / (n * n * (n - 1.0));
    }
    if var <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let chi2 = (dev.abs() - 0.5).max(0.0).powi(2) / var;
    (chi2, chi2_sf(chi2, 1))
}

/// Mantel-Haenszel risk difference sum w (p1 - p2) / sum w, w = n1 n2 / (n1 + n2).
pub fn mh_risk_difference(tables: &[(f64, f64, f64, f64)]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for &(a, n1, c, n2) in tables {
        if n1 > 0.0 && n2 > 0.0 {
            let w = n1 * n2 / (n1 + n2);
            num += w * (a / n1 - c / n2);
            den += w;
        }
    }
    if den > 0.0 {
        num / den
    } else {
        f64::NAN
    }
}

/// Draws of the MH difference with every cell's fraction drawn from its Jeffreys posterior
/// Beta(k + 1/2, n - k + 1/2): a resampling bootstrap cannot move a cell where all or none of the
/// runs acquire (common with few seeds), which would give a zero-width interval.
pub fn jeffreys_draws(tables: &[(f64, f64, f64, f64)], n_boot: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n_boot);
    let beta = |k: f64, n: f64| Beta::new(k + 0.5, n - k + 0.5).ok();
    for _ in 0..n_boot {
        let mut t = Vec::with_capacity(tables.len());
        for &(a, n1, c, n2) in tables {
            match (beta(a, n1), beta(c, n2)) {
                (Some(b1), Some(b2)) => {
                    t.push((b1.sample(&mut rng) * n1, n1, b2.sample(&mut rng) * n2, n2))
                }
                _ => t.push((a, n1, c, n2)),
            }
        }
        if let Some(v) = finite(mh_risk_difference(&t)) {
            out.push(v);
        }
    }
    out
}

/// `final_beta`: optional final `beta_eff` of each summary row's curve (same order), a diagnostic
/// of HOW the runs solve the ICL test: > 0 when the head attends to the matching item.
pub fn analyze(df: &DataFrame, final_beta: Option<&[f64]>, p: &C12Params) -> Result<C12Analysis> {
    ensure!(df.height() > 0, "no run summaries given");
    if let Some(b) = final_beta {
        ensure!(
            b.len() == df.height(),
            "{} curves for {} summaries; they must pair up in order",
            b.len(),
            df.height()
        );
    }
    let ctx = strings(df, "context")?;
    ensure!(
        df.column("acquired").is_ok(),
        "summaries lack column `acquired` (have: {})",
        column_names(df)
    );
    let ever: Vec<bool> = bools(df, "acquired")?
        .into_iter()
        .map(|b| b.unwrap_or(false))
        .collect();
    let final_acc = f64s(df, "final_icl_acc")?;
    let acq: Vec<bool> = final_acc
        .iter()
        .map(|&a| a > p.final_acc_threshold)
        .collect();
    let k = f64s(df, "K")?
        .into_iter()
        .map(|v| if v.is_nan() { f64::INFINITY } else { v })
        .collect::<Vec<_>>();
    for (i, c) in ctx.iter().enumerate() {
        match c.as_deref() {
            Some("standard") | Some("equalized") => {}
            other => bail!("summary {i}: context {other:?} is not `standard` or `equalized`"),
        }
    }
    let is_eq = |i: usize| ctx[i].as_deref() == Some("equalized");
    let mut ks: Vec<f64> = k.clone();
    ks.sort_by(f64::total_cmp);
    ks.dedup();
    let mut strata = Vec::new();
    let mut unmatched = Vec::new();
    let mut groups: Vec<Vec<f64>> = Vec::new();
    let mut used = vec![false; df.height()];
    for &kv in &ks {
        let idx: Vec<usize> = (0..df.height()).filter(|&i| k[i] == kv).collect();
        let eq: Vec<f64> = idx
            .iter()
            .filter(|&&i| is_eq(i))
            .map(|&i| acq[i] as u8 as f64)
            .collect();
        let st: Vec<f64> = idx
            .iter()
            .filter(|&&i| !is_eq(i))
            .map(|&i| acq[i] as u8 as f64)
            .collect();
        if eq.is_empty() || st.is_empty() {
            unmatched.push(kv);
            continue;
        }
        for &i in &idx {
            used[i] = true;
        }
        let (e, s) = (Arm::new(&eq), Arm::new(&st));
        let ever_arm = |want_eq: bool| {
            let v: Vec<f64> = idx
                .iter()
                .filter(|&&i| is_eq(i) == want_eq)
                .map(|&i| ever[i] as u8 as f64)
                .collect();
            Arm::new(&v)
        };
        strata.push(Stratum {
            k: kv,
            difference: e.fraction - s.fraction,
            standard: s,
            equalized: e,
            standard_ever_reached: ever_arm(false),
            equalized_ever_reached: ever_arm(true),
        });
        groups.push(eq);
        groups.push(st);
    }
    // The arms must differ only in the context rule (and seeds).
    for col in SAME_SETTINGS {
        if df.column(col).is_ok() {
            let v = f64s(df, col)?;
            let mut vals: Vec<f64> = (0..df.height())
                .filter(|&i| used[i])
                .map(|i| v[i])
                .collect();
            vals.sort_by(f64::total_cmp);
            vals.dedup_by(|a, b| a == b || (a.is_nan() && b.is_nan()));
            ensure!(vals.len() <= 1, "compared runs differ in `{col}` ({vals:?}); the two arms must share every setting but the context");
        }
    }
    if df.column("model").is_ok() {
        let m = strings(df, "model")?;
        let mut vals: Vec<String> = (0..df.height())
            .filter(|&i| used[i])
            .filter_map(|i| m[i].clone())
            .collect();
        vals.sort();
        vals.dedup();
        ensure!(
            vals.len() <= 1,
            "compared runs differ in `model` ({vals:?})"
        );
    }
    let tables = |g: &[Vec<f64>]| -> Vec<(f64, f64, f64, f64)> {
        g.chunks(2)
            .map(|c| {
                (
                    c[0].iter().sum::<f64>(),
                    c[0].len() as f64,
                    c[1].iter().sum::<f64>(),
                    c[1].len() as f64,
                )
            })
            .collect()
    };
    let t = tables(&groups);
    let (cmh_chi2, cmh_p) = cmh(&t);
    let rd = mh_risk_difference(&t);
    let draws = jeffreys_draws(&t, p.n_boot, p.bootstrap_seed);
    let (rd_low, rd_high) = if draws.len() >= 2 {
        percentile_interval(&draws, 0.95)
    } else {
        (f64::NAN, f64::NAN)
    };
    let eq_runs: usize = strata.iter().map(|s| s.equalized.runs).sum();
    let st_runs: usize = strata.iter().map(|s| s.standard.runs).sum();
    let ns: Vec<u64> = {
        let n = f64s(df, "N")?;
        let mut v: Vec<u64> = (0..df.height())
            .filter(|&i| used[i])
            .map(|i| n[i] as u64)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let floor = icl_claim::floor::floor_check("final_ICL_accuracy", p.final_acc_threshold, &ns);
    let testable = strata.len() >= p.min_strata
        && eq_runs >= p.min_runs_per_arm
        && st_runs >= p.min_runs_per_arm
        && floor.pass;
    let checks = vec![
        Check {
            name: "arms_differ".into(),
            // No variance (every run in every K acquired, or none did) means no difference.
            pass: cmh_p < p.alpha,
            value: finite(cmh_p),
            rule: format!("Cochran-Mantel-Haenszel test over the shared K values rejects 'same acquired fraction in both arms' at p < {} (value = p; no variance counts as no difference)", p.alpha),
        },
        Check {
            name: "difference_interval_excludes_0".into(),
            pass: rd_low > 0.0 || rd_high < 0.0,
            value: finite(rd),
            rule: "the 95% interval (Jeffreys-posterior draws per K x arm) of the Mantel-Haenszel difference (equalized - standard) excludes 0".into(),
        },
        floor,
    ];
    let core = checks[0].pass;
    let all = checks.iter().all(|c| c.pass);
    let median_final_beta = final_beta.map(|b| {
        let arm = |eq: bool| -> (f64, usize) {
            let v: Vec<f64> = (0..df.height())
                .filter(|&i| used[i] && is_eq(i) == eq && acq[i])
                .map(|i| b[i])
                .collect();
            (icl_claim::stats::median(&v), v.len())
        };
        (arm(false), arm(true))
    });
    Ok(C12Analysis {
        median_final_beta,
        ns,
        strata,
        unmatched_k: unmatched,
        cmh_chi2,
        cmh_p,
        rd,
        rd_low,
        rd_high,
        n_runs: used.iter().filter(|&&u| u).count(),
        checks,
        verdict: Verdict::from_checks_if(testable, core, all),
    })
}

fn k_json(k: f64) -> serde_json::Value {
    if k.is_finite() {
        json!(k)
    } else {
        json!("inf")
    }
}

impl ClaimAnalysis<C12Params> for C12Analysis {
    fn claim(&self, p: &C12Params) -> Claim {
        let details = json!({
            "per_K": self.strata,
            "unmatched_K_ignored": self.unmatched_k.iter().map(|&k| k_json(k)).collect::<Vec<_>>(),
            "acquired_definition": format!("final ICL test accuracy > {} (Fig 6e counts runs with ICL accuracy > 0.75), thresholded per run; per_K.*_ever_reached: the summary's `acquired` (accuracy reached t_icl_threshold at some evaluation)", p.final_acc_threshold),
            "count_floor": icl_claim::floor::floors_json(&self.ns),
            "median_final_beta_eff_of_runs_with_icl": self.median_final_beta.map(|((s, ns), (e, ne))| json!({"standard": finite(s), "standard_runs": ns, "equalized": finite(e), "equalized_runs": ne})),
            "beta_eff_note": "final beta_eff (log-odds the head gives the matching item over the others) tells how the ICL test is solved: > 0 = copying the match",
            "test_sets": "both arms are scored on the same standard ICL test (as the reference's: the equalized run's test contexts take their labels from a table unrelated to the halves, so label counts carry no information about the query and the minority-label shortcut does not score)",
            "cmh_chi2": finite(self.cmh_chi2),
            "cmh_p": finite(self.cmh_p),
            "mh_risk_difference_equalized_minus_standard": finite(self.rd),
            "difference_interval_95": [finite(self.rd_low), finite(self.rd_high)],
            "interval_method": {"draws": p.n_boot, "seed": p.bootstrap_seed, "method": "each K x arm fraction drawn from its Jeffreys posterior Beta(k+1/2, n-k+1/2), MH difference recomputed, 95% percentile interval"},
            "checks": self.checks,
            "verdict_rule": format!("inconclusive: fewer than {} shared K values or fewer than {} runs in an arm, or the accuracy threshold within 0.05 of the count floor; reproduced: both checks pass; partly: the test rejects but the interval touches 0; not reproduced: no significant difference", p.min_strata, p.min_runs_per_arm),
        });
        Claim {
            claim: "C12".into(),
            figure: "Fig 6e, A8".into(),
            statement: STATEMENT.into(),
            paper_value: PAPER_VALUE.into(),
            value: self.rd,
            low: self.rd_low,
            high: self.rd_high,
            unit: "fraction with final ICL accuracy > 0.75, equalized minus standard (MH over K)"
                .into(),
            profile: p.profile.clone(),
            verdict: self.verdict,
            n_runs: self.n_runs as i64,
            details: details.to_string(),
        }
    }

    fn figure(&self, p: &C12Params) -> Figure {
        let title = format!(
            "(6e) runs with final ICL acc > 0.75 vs K (Wilson 95%); equalized - standard {} [{}, {}], CMH p = {}",
            icl_plot::format_number(self.rd),
            icl_plot::format_number(self.rd_low),
            icl_plot::format_number(self.rd_high),
            icl_plot::format_number(self.cmh_p)
        );
        let mut f = Panel::new(
            title,
            Axis::log10("K"),
            Axis::linear("fraction with ICL").range(-0.03, 1.03),
        )
        .legend(Legend::UpperLeft);
        let bars = |arm: &dyn Fn(&Stratum) -> &Arm, shift: f64| -> Vec<(f64, f64, f64, f64)> {
            self.strata
                .iter()
                .filter(|s| s.k.is_finite())
                .map(|s| {
                    let a = arm(s);
                    (s.k * shift, a.fraction, a.wilson_95.0, a.wilson_95.1)
                })
                .collect()
        };
        let line = |b: &[(f64, f64, f64, f64)]| b.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>();
        let st = bars(&|s| &s.standard, 0.97);
        let eq = bars(&|s| &s.equalized, 1.03);
        f.push(Layer::line(line(&st)).color(color(0)));
        f.push(
            Layer::error_bars(st)
                .color(color(0))
                .label("standard contexts"),
        );
        f.push(Layer::line(line(&eq)).color(color(1)).dashed());
        f.push(
            Layer::error_bars(eq)
                .color(color(1))
                .label("equalized contexts"),
        );
        f.push(Layer::hline(0.5).color(GREY).dashed());
        Figure::new(format!(
            "C12 (Fig 6e): standard vs equalized contexts [{}; verdict: {}]",
            p.profile,
            self.verdict.as_str()
        ))
        .panel_size(900, 460)
        .panel(f)
    }
}

/// C12 as a stage command (summaries (+ curves) of two arms; judged at each N).
pub struct C12;

impl PaperClaim for C12 {
    const COMMAND: &'static str = "c12";
    type Params = C12Params;
    type Analysis = C12Analysis;
    fn analyze(task: &TaskSpec, p: &C12Params) -> Result<Rungs<C12Analysis>> {
        let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
        // Optional curves (same runs, same order): the final beta_eff of each run.
        let beta = match task.inputs_all("curves") {
            [] => None,
            refs => Some(
                refs.iter()
                    .map(|r| {
                        Ok(f64s(&frame::read_df(&r.path)?, "beta_eff")?
                            .last()
                            .copied()
                            .unwrap_or(f64::NAN))
                    })
                    .collect::<Result<Vec<f64>>>()?,
            ),
        };
        ladder::by_n_frame(&df, |df, rows| {
            // The beta_eff of the rows analysed (all of them when analysed whole).
            let beta: Option<Vec<f64>> = beta.as_ref().map(|b| match rows {
                Some(mask) => b
                    .iter()
                    .zip(mask)
                    .filter(|(_, m)| **m)
                    .map(|(v, _)| *v)
                    .collect(),
                None => b.clone(),
            });
            analyze(df, beta.as_deref(), p)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use icl_claim::params::check;
    use polars::prelude::*;

    fn sweep(eq_frac: &[f64], st_frac: &[f64], seeds: usize) -> DataFrame {
        let ks = [256i64, 512, 1024, 2048];
        let (mut k, mut c, mut a, mut n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (j, &kv) in ks.iter().enumerate() {
            for (ctx, fr) in [("equalized", eq_frac[j]), ("standard", st_frac[j])] {
                for s in 0..seeds {
                    k.push(kv);
                    c.push(ctx);
                    a.push((s as f64) < fr * seeds as f64);
                    n.push(8i64);
                }
            }
        }
        let f: Vec<f64> = a.iter().map(|&x| if x { 0.99 } else { 0.6 }).collect();
        df!("K" => k, "context" => c, "acquired" => a, "final_icl_acc" => f, "N" => n).unwrap()
    }

    #[test]
    fn clear_difference_reproduces_and_equal_arms_do_not() {
        let p: C12Params = check(&serde_json::json!({"profile": "t", "n_boot": 200})).unwrap();
        let df = sweep(&[0.0, 0.0, 0.2, 0.6], &[0.2, 0.8, 1.0, 1.0], 10);
        let beta: Vec<f64> = (0..df.height())
            .map(|i| if (i / 10) % 2 == 0 { -1.0 } else { 3.0 })
            .collect();
        let a = analyze(&df, Some(&beta), &p).unwrap();
        let ((bs, _), (be, ne)) = a.median_final_beta.unwrap();
        assert_eq!((bs, be), (3.0, -1.0), "equalized rows come first in each K");
        assert_eq!(ne, 8, "only equalized runs with ICL (2 + 6 of 40)");
        assert_eq!(a.verdict, Verdict::Reproduced, "{:?}", a.checks);
        assert!(a.rd < -0.5 && a.rd_high < 0.0);
        assert_eq!(a.strata[1].standard.acquired, 8);
        let same = analyze(
            &sweep(&[0.2, 0.5, 0.8, 1.0], &[0.2, 0.5, 0.8, 1.0], 10),
            None,
            &p,
        )
        .unwrap();
        assert_eq!(same.verdict, Verdict::Not);
        assert!(same.rd.abs() < 1e-12 && same.cmh_p > 0.5);
        let dir = tempfile::tempdir().unwrap();
        a.figure(&p)
            .save(&dir.path().join("f.png"), &dir.path().join("f.svg"))
            .unwrap();
    }

    #[test]
    fn unmatched_k_and_mismatched_settings() {
        let p: C12Params = check(&serde_json::json!({"profile": "t", "n_boot": 50})).unwrap();
        let mut df = sweep(&[0.0, 0.0, 0.5, 1.0], &[0.5, 1.0, 1.0, 1.0], 4);
        let extra =
            df!("K" => [4096i64], "context" => ["standard"], "acquired" => [true], "final_icl_acc" => [0.99], "N" => [8i64])
                .unwrap();
        df.vstack_mut(&extra).unwrap();
        let a = analyze(&df, None, &p).unwrap();
        assert!(
            analyze(&df, Some(&[1.0]), &p).is_err(),
            "curves must pair with summaries"
        );
        assert_eq!(a.unmatched_k, vec![4096.0]);
        assert_eq!(a.n_runs, 32);
        let bad = df!("K" => [256i64, 256], "context" => ["standard", "equalized"], "acquired" => [true, false], "final_icl_acc" => [0.99, 0.6], "N" => [8i64, 10]).unwrap();
        let e = analyze(&bad, None, &p).unwrap_err().to_string();
        assert!(e.contains("`N`"), "{e}");
    }

    #[test]
    fn cmh_matches_hand_computation() {
        // One table: 8/10 vs 2/10: E[a] = 5, Var = 10*10*10*10/(400*19) = 1.3158;
        // chi2 = (3 - 0.5)^2 / 1.3158 = 4.75.
        let (chi2, p) = cmh(&[(8.0, 10.0, 2.0, 10.0)]);
        assert!((chi2 - 4.75).abs() < 1e-3, "{chi2}");
        assert!((p - 0.0293).abs() < 1e-3, "{p}");
        assert!(cmh(&[(10.0, 10.0, 10.0, 10.0)]).1.is_nan(), "no variance");
    }

    #[test]
    fn all_or_none_cells_still_get_an_interval() {
        // 5/5 vs 2/3 and 5/5 vs 3/3: resampling runs could not move these cells.
        let t = [(5.0, 5.0, 2.0, 3.0), (5.0, 5.0, 3.0, 3.0)];
        let d = jeffreys_draws(&t, 2000, 1);
        let (lo, hi) = percentile_interval(&d, 0.95);
        assert!(hi - lo > 0.2 && lo < 0.0 && hi > 0.1, "[{lo}, {hi}]");
        assert_eq!(d, jeffreys_draws(&t, 2000, 1), "seeded");
    }
}
