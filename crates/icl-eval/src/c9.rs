//! C9 (Fig 6c): near K*, runs split into two groups: ICL acquired early, or never.
//!
//! Input: gathered run summaries at K near K*. Measures: the fraction of runs that acquire ICL
//! (Wilson 95% interval), how early the acquiring runs acquire relative to the training budget,
//! and Sarle's bimodality coefficient of t_ICL with never-acquired runs placed at the budget
//! (the reference analysis' convention), with a bootstrap interval.

use crate::claim::{Check, Claim, Verdict};
use crate::frame::{bools, column_names, f64s, opt_f64s};
use crate::params::C9Params;
use crate::stats::{
    bimodality_coefficient, bootstrap, finite, median, percentile_interval, wilson,
};
use anyhow::{ensure, Result};
use icl_claim::frame;
use icl_claim::ladder::{self, Rungs};
use icl_claim::stage::{input_paths, ClaimAnalysis, PaperClaim};
use icl_plot::{color, Axis, Figure, Layer, Legend, Panel, DARK, GREY};
use icl_store::task::TaskSpec;
use polars::prelude::*;
use serde_json::json;

pub const STATEMENT: &str =
    "Near K*, runs split into two groups: ICL is acquired early, or never (bimodal t_ICL).";
pub const PAPER_VALUE: &str = "N = 100, K = 9666: histogram of t_ICL over seeds has a group acquiring early and a group never acquiring within training (Fig 6c)";

#[derive(Debug, Clone)]
pub struct C9Analysis {
    pub k_values: Vec<i64>,
    pub n_runs: usize,
    pub n_acquired: usize,
    pub frac: f64,
    pub frac_low: f64,
    pub frac_high: f64,
    pub budget: f64,
    pub t_acquired: Vec<f64>,
    pub final_icl: Vec<f64>,
    pub median_t_acquired: f64,
    pub bimodality: f64,
    pub bimodality_low: f64,
    pub bimodality_high: f64,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
}

pub fn analyze(df: &DataFrame, p: &C9Params) -> Result<C9Analysis> {
    ensure!(
        df.column("t_icl").is_ok(),
        "summaries lack column `t_icl` (have: {})",
        column_names(df)
    );
    ensure!(df.height() > 0, "no run summaries given");
    let t = opt_f64s(df, "t_icl")?;
    let acquired: Vec<bool> = if df.column("acquired").is_ok() {
        bools(df, "acquired")?
            .into_iter()
            .zip(&t)
            .map(|(a, t)| a.unwrap_or(false) && t.is_some())
            .collect()
    } else {
        t.iter().map(|t| t.is_some()).collect()
    };
    let iters = f64s(
        &df.clone()
            .lazy()
            .select([crate::frame::iteration_budget_expr(df).alias("budget")])
            .collect()?,
        "budget",
    )?;
    let final_icl = if df.column("final_icl_acc").is_ok() {
        f64s(df, "final_icl_acc")?
    } else {
        Vec::new()
    };
    // K values present (polars unique, sorted), for labels.
    let k_values: Vec<i64> = if df.column("K").is_ok() {
        let u = df
            .clone()
            .lazy()
            .select([col("K").cast(DataType::Float64)])
            .filter(col("K").is_not_null())
            .unique_stable(None, UniqueKeepStrategy::First)
            .sort(["K"], SortMultipleOptions::default())
            .collect()?;
        f64s(&u, "K")?.into_iter().map(|k| k as i64).collect()
    } else {
        Vec::new()
    };
    let n = t.len();
    let t_acq: Vec<f64> = t
        .iter()
        .zip(&acquired)
        .filter_map(|(t, &a)| if a { *t } else { None })
        .collect();
    let k = t_acq.len();
    // The budget: the longest training any run was given.
    let budget = iters
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .chain(t_acq.iter().copied())
        .fold(0.0f64, f64::max);
    let frac = k as f64 / n as f64;
    let (frac_low, frac_high) = wilson(k, n, 1.96);
    let median_t = median(&t_acq);
    let v: Vec<f64> = t
        .iter()
        .zip(&acquired)
        .map(|(t, &a)| if a { t.unwrap_or(budget) } else { budget })
        .collect();
    let bc = bimodality_coefficient(&v);
    let (mut bc_lo, mut bc_hi) = (f64::NAN, f64::NAN);
    if n >= 4 {
        let draws = bootstrap(std::slice::from_ref(&v), p.n_boot, p.bootstrap_seed, |g| {
            let b = bimodality_coefficient(&g[0]);
            b.is_finite().then_some(b)
        });
        if draws.len() >= 2 {
            (bc_lo, bc_hi) = percentile_interval(&draws, 0.95);
        }
    }
    let floor = crate::floor::floor_check(
        "t_ICL_acquisition",
        crate::frame::acquisition_threshold(df)?,
        &crate::frame::context_lengths(df)?,
    );
    let floor_ok = floor.pass;
    let checks = vec![
        Check {
            name: "two_groups".into(),
            pass: frac_low >= p.min_group_frac && frac_high <= 1.0 - p.min_group_frac,
            value: Some(frac),
            rule: format!(
                "Wilson 95% interval of the acquired fraction inside [{}, {}]",
                p.min_group_frac,
                1.0 - p.min_group_frac
            ),
        },
        Check {
            name: "acquired_early".into(),
            pass: median_t.is_finite() && median_t <= p.early_frac * budget,
            value: finite(median_t / budget),
            rule: format!(
                "median t_ICL of acquiring runs <= {} x training budget",
                p.early_frac
            ),
        },
        Check {
            name: "bimodal".into(),
            pass: bc > p.bimodality_threshold,
            value: finite(bc),
            rule: format!(
                "bimodality coefficient of t_ICL (never = budget) > {:.4}",
                p.bimodality_threshold
            ),
        },
        floor,
    ];
    let core = checks[0].pass;
    let all = checks.iter().all(|c| c.pass);
    Ok(C9Analysis {
        k_values,
        n_runs: n,
        n_acquired: k,
        frac,
        frac_low,
        frac_high,
        budget,
        t_acquired: t_acq,
        final_icl,
        median_t_acquired: median_t,
        bimodality: bc,
        bimodality_low: bc_lo,
        bimodality_high: bc_hi,
        checks,
        verdict: Verdict::from_checks_if(n >= 4 && floor_ok, core, all),
    })
}

impl ClaimAnalysis<C9Params> for C9Analysis {
    fn claim(&self, p: &C9Params) -> Claim {
        let details = json!({
            "K": self.k_values,
            "runs": self.n_runs,
            "acquired": self.n_acquired,
            "never_acquired": self.n_runs - self.n_acquired,
            "acquired_fraction": self.frac,
            "acquired_fraction_wilson_95": [self.frac_low, self.frac_high],
            "budget_iterations": self.budget,
            "median_t_icl_acquired": finite(self.median_t_acquired),
            "t_icl_acquired": self.t_acquired,
            "bimodality_coefficient": finite(self.bimodality),
            "bimodality_interval_95": [finite(self.bimodality_low), finite(self.bimodality_high)],
            "bootstrap": {"n_boot": p.n_boot, "seed": p.bootstrap_seed, "method": "resample runs, percentile interval of the bimodality coefficient"},
            "checks": self.checks,
            "verdict_rule": "inconclusive: fewer than 4 runs, or the acquisition threshold within 0.05 of the count floor; reproduced: all checks pass; partly: both groups are substantial but acquisition is not early or the coefficient is below threshold; not reproduced: one group only",
        });
        Claim {
            claim: "C9".into(),
            figure: "Fig 6c".into(),
            statement: STATEMENT.into(),
            paper_value: PAPER_VALUE.into(),
            value: self.frac,
            low: self.frac_low,
            high: self.frac_high,
            unit: "fraction of runs acquiring ICL".into(),
            profile: p.profile.clone(),
            verdict: self.verdict,
            n_runs: self.n_runs as i64,
            details: details.to_string(),
        }
    }

    fn figure(&self, p: &C9Params) -> Figure {
        let b = if self.budget > 0.0 { self.budget } else { 1.0 };
        let w = b / p.bins as f64;
        let kl = if self.k_values.is_empty() {
            String::new()
        } else {
            format!(
                " at K = {}",
                self.k_values
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut hist = Panel::new(
            format!("(6c) t_ICL{kl}"),
            Axis::linear("t_ICL (iterations)"),
            Axis::linear("runs"),
        )
        .legend(Legend::UpperLeft);
        hist.push(
            Layer::bars(icl_plot::histogram(
                &self.t_acquired,
                0.0,
                b * 1.000_001,
                p.bins,
            ))
            .color(color(0))
            .label(format!("acquired ({})", self.n_acquired)),
        );
        let never = (self.n_runs - self.n_acquired) as f64;
        hist.push(
            Layer::bars(vec![(b + 0.5 * w, b + 1.5 * w, never)])
                .color(color(3))
                .label(format!(
                    "never acquired ({})",
                    self.n_runs - self.n_acquired
                )),
        );
        hist.push(
            Layer::vline(b)
                .color(GREY)
                .dashed()
                .label("training budget"),
        );
        hist.push(
            Layer::text(b + 0.45 * w, never.max(0.0) + 0.3, "never")
                .color(color(3))
                .size(13),
        );

        let mut acc = Panel::new(
            "final ICL accuracy per run",
            Axis::linear("final ICL accuracy"),
            Axis::linear("runs"),
        )
        .legend(Legend::UpperLeft);
        if !self.final_icl.is_empty() {
            acc.push(
                Layer::bars(icl_plot::histogram(&self.final_icl, 0.4, 1.0001, 12))
                    .color(color(2))
                    .label("runs"),
            );
        }
        acc.push(Layer::vline(0.5).color(GREY).dashed().label("chance"));
        acc.push(
            Layer::vline(0.95)
                .color(DARK)
                .dashed()
                .label("acquisition threshold 0.95"),
        );
        Figure::new(format!(
            "C9 (Fig 6c): bimodal outcomes near K* [{}; verdict: {}]",
            p.profile,
            self.verdict.as_str()
        ))
        .panel(hist)
        .panel(acc)
    }
}

/// C9 as a stage command (summaries near K*; judged at each N).
pub struct C9;

impl PaperClaim for C9 {
    const COMMAND: &'static str = "c9";
    type Params = C9Params;
    type Analysis = C9Analysis;
    fn analyze(task: &TaskSpec, p: &C9Params) -> Result<Rungs<C9Analysis>> {
        let df = frame::read_stacked(&input_paths(task, "summaries")?)?;
        ladder::by_n_frame(&df, |df, _| analyze(df, p))
    }
}
