//! C8 (Fig A5): the two-layer model's t_ICL at K = infinity also grows linearly with N, with a
//! long tail across seeds.
//!
//! The statistics and verdict rules are C7's ([`crate::c7::analyze`]: per-N medians with
//! censored runs counted, a linear fit with a bootstrap slope interval and a linearity test, a
//! pooled tail ratio), applied to two-layer runs; this module words the claim and draws it.
//! Our two-layer model trains ALL parameters; the authors' reference code never passes the output
//! MLP to its optimizer (it stays at its random initialization).

use crate::c7::{self, C7Analysis};
use crate::claim::Claim;
use crate::frame::{column_names, opt_f64s};
use crate::params::C7Params;
use crate::stats::finite;
use anyhow::{ensure, Result};
use icl_claim::frame;
use icl_claim::ladder::Rungs;
use icl_claim::stage::{input_paths, ClaimAnalysis, PaperClaim};
use icl_plot::{color, Axis, Figure, Layer, Legend, Panel, GREY};
use icl_store::task::TaskSpec;
use polars::prelude::DataFrame;
use serde_json::json;

pub const STATEMENT: &str = "For the two-layer transformer at K = infinity, the median t_ICL also grows linearly with N and is long-tailed across seeds. (Ours trains all parameters; the reference code never updates the two-layer model's output MLP.)";
pub const PAPER_VALUE: &str = "Two-layer model, N = 50..250, K = infinity: median t_ICL linear in N with a long tail (Fig A5)";
pub const MODEL_NOTE: &str = "all parameters trained, including the output MLP; the authors' reference code leaves the two-layer model's output MLP out of the optimizer, so it stays at its initialization there";

pub struct C8Analysis {
    pub inner: C7Analysis,
    pub models: Vec<String>,
}

pub fn analyze(df: &DataFrame, p: &C7Params) -> Result<C8Analysis> {
    let models: Vec<String> = if df.column("model").is_ok() {
        let s = df
            .column("model")?
            .str()
            .map_err(|_| anyhow::anyhow!("column `model` is not text"))?
            .clone();
        let mut v: Vec<String> = s.iter().flatten().map(str::to_string).collect();
        v.sort();
        v.dedup();
        v
    } else {
        Vec::new()
    };
    ensure!(
        models.iter().all(|m| m == "two_layer"),
        "C8 is about the two-layer model; the summaries hold model(s) {models:?} (have columns: {})",
        column_names(df)
    );
    if df.column("K").is_ok() {
        ensure!(
            opt_f64s(df, "K")?.iter().all(|k| k.is_none()),
            "C8 needs K = inf runs (summary K is null for infinity)"
        );
    }
    Ok(C8Analysis {
        inner: c7::analyze(df, p)?,
        models,
    })
}

impl ClaimAnalysis<C7Params> for C8Analysis {
    fn claim(&self, p: &C7Params) -> Claim {
        let a = &self.inner;
        let details = json!({
            "model": MODEL_NOTE,
            "N_column": a.n_column,
            "per_N": a.per_n,
            "median_fit": a.fit.map(|f| json!({"slope": f.slope, "intercept": f.intercept, "r2": f.r2, "points": f.n})),
            "slope_interval_95": [finite(a.slope_low), finite(a.slope_high)],
            "linearity_chi2": finite(a.chi2),
            "linearity_p": finite(a.linear_p),
            "loglog_exponent_of_median": finite(a.loglog_exponent),
            "pooled_tail_ratio": if a.pooled_tail_ratio.is_infinite() { json!("beyond budget") } else { json!(finite(a.pooled_tail_ratio)) },
            "runs": a.total_runs,
            "censored_runs": a.total_censored,
            "method": "C7's analysis (icl_eval::c7) on two-layer runs: t_ICL = first evaluation with ICL accuracy >= 0.95; never-acquiring runs count as beyond the budget",
            "bootstrap": {"n_boot": p.n_boot, "seed": p.bootstrap_seed},
            "checks": a.checks,
            "verdict_rule": "inconclusive: fewer N values than min_n_values; reproduced: all checks pass; partly: medians inside the budget at enough N and either linear in N or long-tailed; not reproduced otherwise",
        });
        let slope = a.fit.map(|f| f.slope).unwrap_or(f64::NAN);
        Claim {
            claim: "C8".into(),
            figure: "Fig A5".into(),
            statement: STATEMENT.into(),
            paper_value: PAPER_VALUE.into(),
            value: slope,
            low: a.slope_low,
            high: a.slope_high,
            unit: "iterations per context token (slope of median t_ICL vs N)".into(),
            profile: p.profile.clone(),
            verdict: a.verdict,
            n_runs: a.total_runs as i64,
            details: details.to_string(),
        }
    }

    fn figure(&self, p: &C7Params) -> Figure {
        let a = &self.inner;
        let budget = a.per_n.iter().map(|s| s.budget).fold(0.0f64, f64::max);
        let mut t = Panel::new(
            "(A5) two-layer model: t_ICL vs N at K = inf",
            Axis::linear("N (context length)"),
            Axis::linear("t_ICL (iterations)"),
        )
        .legend(Legend::UpperLeft);
        let pts: Vec<(f64, f64)> = a
            .samples
            .iter()
            .flat_map(|(n, ts)| ts.iter().filter(|v| v.is_finite()).map(move |v| (*n, *v)))
            .collect();
        t.push(Layer::points(pts).color(color(0)).label("runs"));
        let cens: Vec<(f64, f64)> = a
            .samples
            .iter()
            .flat_map(|(n, ts)| {
                ts.iter()
                    .filter(|v| !v.is_finite())
                    .map(move |_| (*n, budget))
            })
            .collect();
        if !cens.is_empty() {
            t.push(
                Layer::points(cens)
                    .color(color(3))
                    .hollow()
                    .label("not acquired (at budget)"),
            );
        }
        let med: Vec<(f64, f64)> = a
            .per_n
            .iter()
            .filter_map(|s| s.median.map(|m| (s.n_ctx, m)))
            .collect();
        t.push(Layer::points(med).color(color(1)).size(6).label("median"));
        if let Some(f) = a.fit {
            let (lo, hi) = a
                .per_n
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), s| {
                    (l.min(s.n_ctx), h.max(s.n_ctx))
                });
            t.push(
                Layer::line(vec![
                    (lo, f.intercept + f.slope * lo),
                    (hi, f.intercept + f.slope * hi),
                ])
                .color(color(1))
                .dashed()
                .label(format!(
                    "linear fit, slope {} [{}, {}]",
                    icl_plot::format_number(f.slope),
                    icl_plot::format_number(a.slope_low),
                    icl_plot::format_number(a.slope_high)
                )),
            );
        }
        if budget > 0.0 {
            t.push(
                Layer::hline(budget)
                    .color(GREY)
                    .dashed()
                    .label("training budget"),
            );
        }
        let mut h = Panel::new(
            "t_ICL / median(N), pooled over N",
            Axis::linear("t_ICL / median"),
            Axis::linear("runs"),
        )
        .legend(Legend::UpperRight);
        let fin: Vec<f64> = a
            .pooled_normalized
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if !fin.is_empty() {
            let hi = fin.iter().copied().fold(1.0f64, f64::max) * 1.001;
            h.push(
                Layer::bars(icl_plot::histogram(&fin, 0.0, hi, 12))
                    .color(color(2))
                    .label("acquired runs"),
            );
        }
        h.push(Layer::vline(1.0).color(GREY).dashed().label("median"));
        Figure::new(format!(
            "C8 (Fig A5): two-layer t_ICL vs N [{}; verdict: {}]",
            p.profile,
            a.verdict.as_str()
        ))
        .panel(t)
        .panel(h)
    }
}

/// C8 as a stage command (K = inf summaries, two-layer).
pub struct C8;

impl PaperClaim for C8 {
    const COMMAND: &'static str = "c8";
    type Params = C7Params;
    type Analysis = C8Analysis;
    fn analyze(task: &TaskSpec, p: &C7Params) -> Result<Rungs<C8Analysis>> {
        let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
        Ok(Rungs::Whole(analyze(&df, p)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::Verdict;
    use crate::params::check;
    use polars::prelude::*;

    fn sweep(model: &str) -> DataFrame {
        // Linear medians with a right tail: t = 600 N x multipliers.
        let mult = [0.7, 0.85, 1.0, 1.3, 2.2, 0.9, 1.1, 3.0];
        let (mut n, mut t, mut acq, mut it, mut k, mut m) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for nv in [4i64, 6, 8] {
            for x in mult {
                n.push(nv);
                t.push(Some((600.0 * nv as f64 * x) as u64));
                acq.push(true);
                it.push(100_000u64);
                k.push(None::<i64>);
                m.push(model);
            }
        }
        df!("N" => n, "t_icl" => t, "acquired" => acq, "iterations" => it, "K" => k, "model" => m)
            .unwrap()
    }

    #[test]
    fn two_layer_sweep_gets_c7_statistics_under_c8() {
        let p: C7Params = check(&serde_json::json!({"profile": "t", "n_boot": 100})).unwrap();
        let a = analyze(&sweep("two_layer"), &p).unwrap();
        assert_eq!(a.inner.per_n.len(), 3);
        // sorted multipliers: median (1.0 + 1.1) / 2 = 1.05 -> 600 x 4 x 1.05
        assert_eq!(a.inner.per_n[0].median, Some(2520.0));
        let c = a.claim(&p);
        assert_eq!(c.claim, "C8");
        assert!((c.value - 630.0).abs() < 1.0, "{}", c.value);
        assert!(c.details.contains("reference code leaves"));
        assert_ne!(c.verdict, Verdict::Inconclusive);
        let dir = tempfile::tempdir().unwrap();
        a.figure(&p)
            .save(&dir.path().join("f.png"), &dir.path().join("f.svg"))
            .unwrap();
    }

    #[test]
    fn other_models_are_rejected() {
        let p: C7Params = check(&serde_json::json!({"profile": "t", "n_boot": 100})).unwrap();
        let e = analyze(&sweep("transformer"), &p)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("two-layer"), "{e}");
    }
}
