//! C1 (Fig 2b,c): final ICL accuracy jumps from chance to near 1 over a narrow range of K
//! around K*, while IWL accuracy falls from near 1 to chance.
//!
//! Input: the gathered run summaries of a K x seed sweep (one row per run; `K` null for
//! K = infinity, such runs are ignored here). We aggregate accuracy per K with polars, fit the
//! paper's sigmoid f(x) = d/(1+exp(-a(x-b))) + c to every run's final ICL accuracy against
//! x = log10 K (as the reference analysis does, all runs as points), K* = 10^b, and bootstrap
//! K* by resampling runs (seeds) within each K.

use crate::claim::{Check, Claim, Verdict};
use crate::frame::{column_names, f64s};
use crate::kstar::{fit_kstar, KstarSettings};
use crate::params::C1Params;
use crate::sigmoid::SigmoidFit;
use crate::stats::{bootstrap, finite, percentile_interval};
use anyhow::{ensure, Result};
use icl_claim::frame;
use icl_claim::ladder::{self, Rungs};
use icl_claim::stage::{input_paths, ClaimAnalysis, PaperClaim};
use icl_plot::{color, Axis, Figure, Layer, Legend, Marker, Panel, RGBColor, GREY};
use icl_store::task::TaskSpec;
use polars::prelude::*;
use serde::Serialize;
use serde_json::json;

pub const STATEMENT: &str = "Final ICL accuracy jumps from chance to near 1 over a narrow range of task diversity K around a threshold K*, while IWL accuracy falls from near 1 to chance.";
pub const PAPER_VALUE: &str = "N = 100, K = 500..1e5: ICL ~0.5 at small K and ~1 at large K, IWL the reverse; sharp sigmoid transition with K* of order 1e4 (the paper's near-threshold runs use K = 9666)";

/// Accuracy statistics at one K.
#[derive(Debug, Clone, Serialize)]
pub struct KStats {
    #[serde(rename = "K")]
    pub k: i64,
    pub n: usize,
    pub icl_mean: f64,
    pub icl_std: f64,
    pub icl_min: f64,
    pub icl_max: f64,
    pub iwl_mean: f64,
    pub iwl_std: f64,
    pub iwl_min: f64,
    pub iwl_max: f64,
}

#[derive(Debug, Clone)]
pub struct C1Analysis {
    pub per_k: Vec<KStats>,
    /// Per-run points (K, final ICL acc, final IWL acc) used for the fit and the figure.
    pub runs: Vec<(f64, f64, f64)>,
    pub excluded_infinite_k: usize,
    pub fit: Option<SigmoidFit>,
    pub k_star: f64,
    pub k_star_low: f64,
    pub k_star_high: f64,
    pub width_decades: f64,
    pub boot_ok: usize,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
}

/// Per-K aggregates through polars: count, mean, std, min, max of both accuracies.
pub fn per_k_stats(df: &DataFrame) -> Result<Vec<KStats>> {
    for c in ["K", "final_icl_acc", "final_iwl_acc"] {
        ensure!(
            df.column(c).is_ok(),
            "summaries lack column `{c}` (have: {})",
            column_names(df)
        );
    }
    let acc = |name: &str, pre: &str| -> Vec<Expr> {
        vec![
            col(name)
                .cast(DataType::Float64)
                .mean()
                .alias(format!("{pre}_mean")),
            col(name)
                .cast(DataType::Float64)
                .std(1)
                .alias(format!("{pre}_std")),
            col(name)
                .cast(DataType::Float64)
                .min()
                .alias(format!("{pre}_min")),
            col(name)
                .cast(DataType::Float64)
                .max()
                .alias(format!("{pre}_max")),
        ]
    };
    let mut aggs = vec![len().alias("n")];
    aggs.extend(acc("final_icl_acc", "icl"));
    aggs.extend(acc("final_iwl_acc", "iwl"));
    let out = df
        .clone()
        .lazy()
        .filter(col("K").is_not_null())
        .with_column(col("K").cast(DataType::Int64))
        .group_by_stable([col("K")])
        .agg(aggs)
        .sort(["K"], SortMultipleOptions::default())
        .collect()
        .map_err(|e| anyhow::anyhow!("per-K aggregation failed: {e}"))?;
    let k = f64s(&out, "K")?;
    let n = f64s(&out, "n")?;
    let get = |c: &str| f64s(&out, c);
    let (im, is, imin, imax) = (
        get("icl_mean")?,
        get("icl_std")?,
        get("icl_min")?,
        get("icl_max")?,
    );
    let (wm, ws, wmin, wmax) = (
        get("iwl_mean")?,
        get("iwl_std")?,
        get("iwl_min")?,
        get("iwl_max")?,
    );
    Ok((0..out.height())
        .map(|i| KStats {
            k: k[i] as i64,
            n: n[i] as usize,
            icl_mean: im[i],
            icl_std: is[i],
            icl_min: imin[i],
            icl_max: imax[i],
            iwl_mean: wm[i],
            iwl_std: ws[i],
            iwl_min: wmin[i],
            iwl_max: wmax[i],
        })
        .collect())
}

pub fn analyze(df: &DataFrame, p: &C1Params) -> Result<C1Analysis> {
    let per_k = per_k_stats(df)?;
    let ks = f64s(df, "K")?;
    let icl = f64s(df, "final_icl_acc")?;
    let iwl = f64s(df, "final_iwl_acc")?;
    let excluded_infinite_k = ks.iter().filter(|k| k.is_nan()).count();
    let runs: Vec<(f64, f64, f64)> = (0..ks.len())
        .filter(|&i| ks[i].is_finite() && ks[i] > 0.0 && icl[i].is_finite())
        .map(|i| (ks[i], icl[i], iwl[i]))
        .collect();

    // The ICL thresholds must tell copying from counting at the runs' N (crate::floor).
    let ns = crate::frame::context_lengths(df)?;
    let icl_low_max = p
        .icl_low_max
        .unwrap_or(crate::floor::highest_floor(&ns) + crate::floor::FLOOR_MARGIN);
    let mut checks = Vec::new();
    let (first, last) = (per_k.first(), per_k.last());
    let enough = per_k.len() >= 3 && runs.len() >= 4;
    checks.push(Check {
        name: "enough_data".into(),
        pass: enough,
        value: Some(per_k.len() as f64),
        rule: "at least 3 distinct finite K values and 4 runs".into(),
    });

    // The four end-point rules.
    let end = |v: Option<f64>, pass: fn(f64, f64) -> bool, thr: f64| {
        v.map(|x| pass(x, thr)).unwrap_or(false)
    };
    let icl_small = first.map(|s| s.icl_mean);
    let icl_large = last.map(|s| s.icl_mean);
    let iwl_small = first.map(|s| s.iwl_mean);
    let iwl_large = last.map(|s| s.iwl_mean);
    let lt = |x: f64, t: f64| x < t;
    let gt = |x: f64, t: f64| x > t;
    checks.push(Check {
        name: "icl_chance_at_smallest_K".into(),
        pass: end(icl_small, lt, icl_low_max),
        value: icl_small,
        rule: format!(
            "mean ICL accuracy at the smallest K < {:.3} (no better than counting: {})",
            icl_low_max,
            if p.icl_low_max.is_some() {
                "set in the pipeline"
            } else {
                "the count floor + 0.05"
            }
        ),
    });
    checks.push(Check {
        name: "icl_high_at_largest_K".into(),
        pass: end(icl_large, gt, p.icl_high_min),
        value: icl_large,
        rule: format!("mean ICL accuracy at the largest K > {}", p.icl_high_min),
    });
    checks.push(Check {
        name: "iwl_high_at_smallest_K".into(),
        pass: end(iwl_small, gt, p.iwl_high_min),
        value: iwl_small,
        rule: format!("mean IWL accuracy at the smallest K > {}", p.iwl_high_min),
    });
    checks.push(Check {
        name: "iwl_chance_at_largest_K".into(),
        pass: end(iwl_large, lt, p.iwl_low_max),
        value: iwl_large,
        rule: format!("mean IWL accuracy at the largest K < {}", p.iwl_low_max),
    });

    // K* by the one definition (crate::kstar): the sigmoid in log10 K, midpoint inside the
    // swept K range, rise >= min_rise.
    let settings = KstarSettings {
        min_rise: p.min_rise,
        a_max: p.a_max,
        ..KstarSettings::default()
    };
    let points: Vec<(f64, f64)> = runs.iter().map(|r| (r.0, r.1)).collect();
    let kf = enough.then(|| fit_kstar(&points, settings));
    let fit = kf.as_ref().and_then(|k| k.fit);
    let fit_ok = kf.as_ref().is_some_and(|k| k.valid);
    let k_star = kf.as_ref().map(|k| k.kstar).unwrap_or(f64::NAN);
    let width = fit.map(|f| f.width_10_90()).unwrap_or(f64::NAN);
    let (mut k_star_low, mut k_star_high, mut boot_ok) = (f64::NAN, f64::NAN, 0usize);
    if fit_ok {
        // Bootstrap over seeds: resample runs within each K, refit, keep the valid K*.
        let groups: Vec<Vec<f64>> = per_k
            .iter()
            .map(|s| {
                runs.iter()
                    .filter(|r| r.0 as i64 == s.k)
                    .map(|r| r.1)
                    .collect()
            })
            .collect();
        let gk: Vec<f64> = per_k.iter().map(|s| s.k as f64).collect();
        let gk = &gk;
        let draws = bootstrap(&groups, p.n_boot, p.bootstrap_seed, |g| {
            let pts: Vec<(f64, f64)> = g
                .iter()
                .enumerate()
                .flat_map(|(gi, vals)| vals.iter().map(move |&v| (gk[gi], v)))
                .collect();
            let f = fit_kstar(&pts, settings);
            f.valid.then(|| f.kstar.log10())
        });
        boot_ok = draws.len();
        if boot_ok >= 2 {
            let (lo, hi) = percentile_interval(&draws, 0.95);
            k_star_low = 10f64.powf(lo);
            k_star_high = 10f64.powf(hi);
        }
    }
    checks.push(Check {
        name: "fit_locates_K_star".into(),
        pass: fit_ok,
        value: finite(k_star),
        rule: format!(
            "K* located (crate::kstar): rise d >= {}, midpoint strictly inside the swept K range [{}, {}]{}",
            p.min_rise,
            per_k.first().map(|s| s.k).unwrap_or(0),
            per_k.last().map(|s| s.k).unwrap_or(0),
            kf.as_ref().filter(|k| !k.valid).map(|k| format!(" (not located: {})", k.reason)).unwrap_or_default()
        ),
    });
    checks.push(Check {
        name: "narrow_transition".into(),
        pass: fit_ok && width <= p.max_width_decades,
        value: finite(width),
        rule: format!(
            "10%-90% rise width 2 ln 9 / a <= {} decades of K",
            p.max_width_decades
        ),
    });
    let floor_low = crate::floor::floor_check("no_ICL", icl_low_max, &ns);
    let floor_high = crate::floor::floor_check("ICL_acquired", p.icl_high_min, &ns);
    let floors_ok = floor_low.pass && floor_high.pass;
    checks.push(floor_low);
    checks.push(floor_high);
    // Core of the claim: a transition exists (chance at small K, ICL at large K). Without it
    // the other checks cannot rescue the claim; a model without attention fails here. A
    // threshold inside the count floor cannot test it at all: inconclusive.
    let core = enough && checks[1].pass && checks[2].pass;
    let all = checks.iter().all(|c| c.pass);
    Ok(C1Analysis {
        per_k,
        runs,
        excluded_infinite_k,
        fit,
        k_star,
        k_star_low,
        k_star_high,
        width_decades: width,
        boot_ok,
        checks,
        verdict: Verdict::from_checks_if(enough && floors_ok, core, all),
    })
}

impl ClaimAnalysis<C1Params> for C1Analysis {
    fn claim(&self, p: &C1Params) -> Claim {
        let details = json!({
            "per_K": self.per_k,
            "fit": self.fit.map(|f| json!({
                "a": f.a, "b": f.b, "c": f.c, "d": f.d, "sse": f.sse, "points": f.n,
                "midpoint_on_bound": f.b_at_bound,
                "model": "acc = d / (1 + exp(-a (log10 K - b))) + c (icl_claim::kstar, the K* of C1, C3, C6, C13)",
            })),
            "K_star": finite(self.k_star),
            "K_star_interval_95": [finite(self.k_star_low), finite(self.k_star_high)],
            "transition_width_decades_10_90": finite(self.width_decades),
            "bootstrap": {"n_boot": p.n_boot, "seed": p.bootstrap_seed, "valid_draws": self.boot_ok,
                          "method": "resample runs within each K, refit, percentile interval of the valid K*"},
            "runs_used": self.runs.len(),
            "runs_excluded_K_infinite": self.excluded_infinite_k,
            "checks": self.checks,
            "verdict_rule": "inconclusive: fewer than 3 K values or 4 runs, or an ICL threshold within 0.05 of the count floor; reproduced: all checks pass; partly: ICL is near chance at the smallest K and high at the largest K but another check fails; not reproduced: otherwise",
        });
        Claim {
            claim: "C1".into(),
            figure: "Fig 2b,c".into(),
            statement: STATEMENT.into(),
            paper_value: PAPER_VALUE.into(),
            value: self.k_star,
            low: self.k_star_low,
            high: self.k_star_high,
            unit: "K* (items)".into(),
            profile: p.profile.clone(),
            verdict: self.verdict,
            n_runs: self.runs.len() as i64,
            details: details.to_string(),
        }
    }

    fn figure(&self, p: &C1Params) -> Figure {
        let profile = p.profile.as_str();
        let ymin = self
            .runs
            .iter()
            .flat_map(|r| [r.1, r.2])
            .filter(|v| v.is_finite())
            .fold(0.3f64, f64::min);
        let kmin = self.per_k.first().map(|s| s.k as f64).unwrap_or(1.0);
        let kmax = self.per_k.last().map(|s| s.k as f64).unwrap_or(10.0);
        let xr = (kmin / 1.5, kmax * 1.5);
        let mut panels = Vec::new();
        for (title, which, ylabel) in [
            (
                "(b) ICL accuracy vs K",
                1usize,
                "final ICL accuracy (novel items)",
            ),
            (
                "(c) IWL accuracy vs K",
                2usize,
                "final IWL accuracy (training items)",
            ),
        ] {
            let c = color(if which == 1 { 3 } else { 0 });
            let mut panel = Panel::new(
                title,
                Axis::log10("K (training items)").range(xr.0, xr.1),
                Axis::linear(ylabel).range(ymin - 0.02, 1.03),
            )
            .legend(if which == 1 {
                Legend::LowerRight
            } else {
                Legend::UpperRight
            });
            if self.k_star_low.is_finite() && self.k_star_high.is_finite() {
                panel.push(
                    Layer::band(vec![
                        (self.k_star_low, ymin - 0.02, 1.03),
                        (self.k_star_high, ymin - 0.02, 1.03),
                    ])
                    .color(GREY)
                    .opacity(0.15)
                    .label("K* 95% interval"),
                );
            }
            panel.push(Layer::hline(0.5).color(GREY).dashed().label("chance"));
            let pts: Vec<(f64, f64)> = self
                .runs
                .iter()
                .map(|r| (r.0, if which == 1 { r.1 } else { r.2 }))
                .collect();
            panel.push(
                Layer::points(pts)
                    .color(c)
                    .hollow()
                    .size(3)
                    .label("runs (seeds)"),
            );
            let bars: Vec<(f64, f64, f64, f64)> = self
                .per_k
                .iter()
                .map(|s| {
                    let (m, sd) = if which == 1 {
                        (s.icl_mean, s.icl_std)
                    } else {
                        (s.iwl_mean, s.iwl_std)
                    };
                    let sd = if sd.is_finite() { sd } else { 0.0 };
                    (s.k as f64, m, m - sd, m + sd)
                })
                .collect();
            panel.push(
                Layer::error_bars(bars)
                    .color(BLACKISH)
                    .marker(Marker::Square)
                    .label("mean +- sd"),
            );
            if which == 1 {
                if let Some(s) = &self.fit {
                    let (a, b) = (xr.0.log10(), xr.1.log10());
                    let curve: Vec<(f64, f64)> = (0..=200)
                        .map(|i| {
                            let x = a + (b - a) * i as f64 / 200.0;
                            (10f64.powf(x), s.at(x))
                        })
                        .collect();
                    panel.push(Layer::line(curve).color(color(3)).label("sigmoid fit"));
                }
            }
            if self.k_star.is_finite() {
                panel.push(
                    Layer::vline(self.k_star)
                        .color(BLACKISH)
                        .dashed()
                        .label(format!(
                            "K* = {}",
                            icl_plot::format_number(self.k_star.round())
                        )),
                );
            }
            panels.push(panel);
        }
        let mut fig = Figure::new(format!(
            "C1 (Fig 2b,c): transition from IWL to ICL with K [{profile}; verdict: {}]",
            self.verdict.as_str()
        ));
        for p in panels {
            fig = fig.panel(p);
        }
        fig
    }
}

const BLACKISH: RGBColor = RGBColor(30, 30, 30);

/// C1 as a stage command (summaries of a K sweep; judged at each N).
pub struct C1;

impl PaperClaim for C1 {
    const COMMAND: &'static str = "c1";
    type Params = C1Params;
    type Analysis = C1Analysis;
    fn analyze(task: &TaskSpec, p: &C1Params) -> Result<Rungs<C1Analysis>> {
        let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
        ladder::by_n_frame(&df, |df, _| analyze(df, p))
    }
}
