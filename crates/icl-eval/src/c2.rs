//! C2 (Fig 2d): above K*, ICL is acquired abruptly after a long plateau.
//!
//! Input: the learning curves of several runs above K* (and optionally their summaries, in the
//! same order, for labels). Abruptness per run is the plateau-to-rise ratio:
//!   plateau = iterations until ICL accuracy first reaches `plateau_threshold` (default: the
//!             label-count floor of the runs' N + 0.05, see [`crate::floor`]),
//!   rise    = iterations from there until it first reaches `acquired_threshold` (0.95),
//! with crossing times linearly interpolated between evaluations. A rise cannot be resolved
//! below one evaluation interval, so it is floored at that interval: the ratio is then a lower
//! bound on the true abruptness. Runs that never reach the acquisition threshold have no ratio
//! and are counted as not acquired.

use crate::claim::{Check, Claim, Verdict};
use crate::frame::{column_names, f64s};
use crate::params::C2Params;
use crate::stats::{bootstrap, finite, median, percentile_interval};
use anyhow::{bail, ensure, Context, Result};
use icl_claim::frame;
use icl_claim::frame::run_labels;
use icl_claim::ladder::{self, Rungs};
use icl_claim::stage::{input_paths, ClaimAnalysis, PaperClaim};
use icl_plot::{color, Axis, Figure, Layer, Legend, Marker, Panel, DARK, GREY};
use icl_store::task::TaskSpec;
use polars::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;

pub const STATEMENT: &str = "Above K*, ICL is acquired abruptly after a long plateau at chance.";
pub const PAPER_VALUE: &str = "K = 20000, N = 100: ICL accuracy stays at chance through a long plateau, then jumps abruptly to ~1 (qualitative; the paper gives no ratio)";

/// One run's learning curve, reduced to what C2 needs.
#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub iteration: Vec<f64>,
    pub icl_acc: Vec<f64>,
}

impl Curve {
    /// From a `curve` artifact frame: sorted by iteration through polars.
    pub fn from_frame(df: &DataFrame, label: String) -> Result<Self> {
        for c in ["iteration", "icl_acc"] {
            ensure!(
                df.column(c).is_ok(),
                "curve lacks column `{c}` (have: {})",
                column_names(df)
            );
        }
        let sorted = df
            .clone()
            .lazy()
            .select([
                col("iteration").cast(DataType::Float64),
                col("icl_acc").cast(DataType::Float64),
            ])
            .filter(col("icl_acc").is_not_null())
            .sort(["iteration"], SortMultipleOptions::default())
            .collect()?;
        Ok(Self {
            label,
            iteration: f64s(&sorted, "iteration")?,
            icl_acc: f64s(&sorted, "icl_acc")?,
        })
    }
}

/// Abruptness numbers of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunAbruptness {
    pub label: String,
    /// Interpolated iteration where ICL accuracy first reaches the plateau threshold.
    pub t_plateau_end: Option<f64>,
    /// Interpolated iteration where it first reaches the acquisition threshold.
    pub t_acquired: Option<f64>,
    pub eval_interval: f64,
    pub plateau: Option<f64>,
    pub rise: Option<f64>,
    /// plateau / max(rise, eval_interval).
    pub ratio: Option<f64>,
    pub final_icl_acc: f64,
}

/// First time the series reaches `thr`, interpolated linearly from the previous evaluation.
pub fn crossing(t: &[f64], y: &[f64], thr: f64) -> Option<f64> {
    let i = y.iter().position(|&v| v >= thr)?;
    if i == 0 {
        return Some(t[0]);
    }
    let (t0, t1, y0, y1) = (t[i - 1], t[i], y[i - 1], y[i]);
    Some(if y1 > y0 {
        t0 + (thr - y0) / (y1 - y0) * (t1 - t0)
    } else {
        t1
    })
}

pub fn abruptness(c: &Curve, plateau_threshold: f64, acquired_threshold: f64) -> RunAbruptness {
    let dts: Vec<f64> = c
        .iteration
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .collect();
    let eval_interval = if dts.is_empty() { 1.0 } else { median(&dts) };
    let t_lo = crossing(&c.iteration, &c.icl_acc, plateau_threshold);
    let t_hi = crossing(&c.iteration, &c.icl_acc, acquired_threshold);
    let (plateau, rise, ratio) = match (t_lo, t_hi) {
        (Some(a), Some(b)) => {
            let rise = (b - a).max(0.0);
            (Some(a), Some(rise), Some(a / rise.max(eval_interval)))
        }
        _ => (t_lo, None, None),
    };
    RunAbruptness {
        label: c.label.clone(),
        t_plateau_end: t_lo,
        t_acquired: t_hi,
        eval_interval,
        plateau,
        rise,
        ratio,
        final_icl_acc: c.icl_acc.last().copied().unwrap_or(f64::NAN),
    }
}

#[derive(Debug, Clone)]
pub struct C2Analysis {
    pub curves: Vec<Curve>,
    pub runs: Vec<RunAbruptness>,
    pub median_ratio: f64,
    pub ratio_low: f64,
    pub ratio_high: f64,
    pub acquired_frac: f64,
    /// The plateau threshold used (set, or the count floor of `ns` + margin).
    pub plateau_threshold: f64,
    /// Context lengths of the runs (for the count floor).
    pub ns: Vec<u64>,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
}

/// `ns`: the runs' context lengths (from their summaries), which set the count floor the
/// plateau threshold must clear.
pub fn analyze(curves: Vec<Curve>, ns: &[u64], p: &C2Params) -> Result<C2Analysis> {
    ensure!(!curves.is_empty(), "no learning curves given");
    let plateau_threshold = p
        .plateau_threshold
        .unwrap_or(crate::floor::highest_floor(ns) + crate::floor::FLOOR_MARGIN);
    let runs: Vec<RunAbruptness> = curves
        .iter()
        .map(|c| abruptness(c, plateau_threshold, p.acquired_threshold))
        .collect();
    let ratios: Vec<f64> = runs.iter().filter_map(|r| r.ratio).collect();
    let acquired_frac = ratios.len() as f64 / runs.len() as f64;
    let median_ratio = median(&ratios);
    let (mut lo, mut hi) = (f64::NAN, f64::NAN);
    if ratios.len() >= 2 {
        let draws = bootstrap(
            std::slice::from_ref(&ratios),
            p.n_boot,
            p.bootstrap_seed,
            |g| Some(median(&g[0])),
        );
        (lo, hi) = percentile_interval(&draws, 0.95);
    }
    let checks = vec![
        Check {
            name: "acquired".into(),
            pass: acquired_frac >= p.min_acquired_frac,
            value: Some(acquired_frac),
            rule: format!(
                "fraction of runs reaching ICL accuracy {} >= {}",
                p.acquired_threshold, p.min_acquired_frac
            ),
        },
        Check {
            name: "plateau_longer_than_rise".into(),
            pass: median_ratio >= 1.0,
            value: finite(median_ratio),
            rule: "median plateau/rise ratio >= 1".into(),
        },
        Check {
            name: "abrupt".into(),
            pass: median_ratio >= p.min_ratio,
            value: finite(median_ratio),
            rule: format!("median plateau/rise ratio >= {}", p.min_ratio),
        },
        crate::floor::floor_check("plateau_end", plateau_threshold, ns),
        crate::floor::floor_check("acquisition", p.acquired_threshold, ns),
    ];
    let floors_ok = checks[3].pass && checks[4].pass;
    let core = !ratios.is_empty() && checks[1].pass;
    let all = checks.iter().all(|c| c.pass);
    Ok(C2Analysis {
        curves,
        runs,
        median_ratio,
        ratio_low: lo,
        ratio_high: hi,
        acquired_frac,
        plateau_threshold,
        ns: ns.to_vec(),
        checks,
        verdict: Verdict::from_checks_if(floors_ok, core, all),
    })
}

impl ClaimAnalysis<C2Params> for C2Analysis {
    fn claim(&self, p: &C2Params) -> Claim {
        let details = json!({
            "runs": self.runs,
            "median_ratio": finite(self.median_ratio),
            "median_ratio_interval_95": [finite(self.ratio_low), finite(self.ratio_high)],
            "acquired_fraction": self.acquired_frac,
            "thresholds": {"plateau": self.plateau_threshold, "acquired": p.acquired_threshold},
            "count_floor": crate::floor::floors_json(&self.ns),
            "plateau_threshold_source": if p.plateau_threshold.is_some() { "set in the pipeline" } else { "count floor + 0.05: the plateau ends when accuracy first exceeds what predicting the context's majority label can give" },
            "definition": "ratio = t(plateau threshold) / max(t(acquired threshold) - t(plateau threshold), evaluation interval); crossing times interpolated linearly between evaluations",
            "bootstrap": {"n_boot": p.n_boot, "seed": p.bootstrap_seed, "method": "resample acquiring runs, percentile interval of the median ratio"},
            "checks": self.checks,
            "verdict_rule": "inconclusive: a threshold within 0.05 of the count floor; reproduced: all checks pass; partly: some run acquires and the median plateau exceeds the median rise; not reproduced: otherwise",
        });
        Claim {
            claim: "C2".into(),
            figure: "Fig 2d".into(),
            statement: STATEMENT.into(),
            paper_value: PAPER_VALUE.into(),
            value: self.median_ratio,
            low: self.ratio_low,
            high: self.ratio_high,
            unit: "plateau/rise ratio (median over runs)".into(),
            profile: p.profile.clone(),
            verdict: self.verdict,
            n_runs: self.runs.len() as i64,
            details: details.to_string(),
        }
    }

    fn figure(&self, p: &C2Params) -> Figure {
        let mut curves = Panel::new(
            "(d) ICL accuracy during training",
            Axis::linear("training iteration"),
            Axis::linear("ICL accuracy (novel items)").range(0.3, 1.03),
        )
        .legend(Legend::LowerRight);
        curves.push(Layer::hline(self.plateau_threshold).color(GREY).dashed());
        curves.push(Layer::hline(p.acquired_threshold).color(GREY).dashed());
        for (i, c) in self.curves.iter().take(p.max_curves).enumerate() {
            let pts: Vec<(f64, f64)> = c
                .iteration
                .iter()
                .copied()
                .zip(c.icl_acc.iter().copied())
                .collect();
            curves.push(Layer::line(pts).color(color(i)).label(c.label.clone()));
        }
        let marks: Vec<(f64, f64)> = self
            .runs
            .iter()
            .take(p.max_curves)
            .filter_map(|r| r.t_acquired.map(|t| (t, p.acquired_threshold)))
            .collect();
        curves.push(
            Layer::points(marks)
                .color(DARK)
                .marker(Marker::Triangle)
                .size(4)
                .label("acquired"),
        );

        let mut ratio = Panel::new(
            "plateau / rise per run",
            Axis::linear("run").integer(),
            Axis::log10("plateau / rise (ratio of iterations)"),
        )
        .legend(Legend::UpperRight);
        ratio.push(
            Layer::hline(p.min_ratio)
                .color(color(3))
                .dashed()
                .label(format!("abrupt: ratio >= {}", p.min_ratio)),
        );
        ratio.push(Layer::hline(1.0).color(GREY).dashed().label("ratio = 1"));
        let pts: Vec<(f64, f64)> = self
            .runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.ratio.map(|v| ((i + 1) as f64, v)))
            .collect();
        ratio.push(
            Layer::points(pts)
                .color(color(0))
                .size(5)
                .label("runs that acquire"),
        );
        if self.median_ratio.is_finite() {
            ratio.push(
                Layer::hline(self.median_ratio)
                    .color(color(0))
                    .label(format!(
                        "median = {}",
                        icl_plot::format_number(self.median_ratio)
                    )),
            );
        }
        Figure::new(format!(
            "C2 (Fig 2d): abrupt ICL acquisition above K* [{}; verdict: {}]",
            p.profile,
            self.verdict.as_str()
        ))
        .panel(curves)
        .panel(ratio)
    }
}

/// C2 as a stage command (curves above K*; judged at each N).
pub struct C2;

impl PaperClaim for C2 {
    const COMMAND: &'static str = "c2";
    type Params = C2Params;
    type Analysis = C2Analysis;
    fn analyze(task: &TaskSpec, p: &C2Params) -> Result<Rungs<C2Analysis>> {
        // Each curve keeps its N inside the rung too: the floor check needs the N values.
        let curves = read_curves(task, p.min_k)?;
        let tagged = curves.into_iter().map(|(n, c)| (n, (n, c))).collect();
        ladder::by_n(tagged, |runs: Vec<(u64, Curve)>| {
            let mut ns: Vec<u64> = runs.iter().map(|(n, _)| *n).collect();
            ns.sort_unstable();
            ns.dedup();
            analyze(runs.into_iter().map(|(_, c)| c).collect(), &ns, p)
        })
    }
}

/// C2's curves, each with its run's context length N.
type CurvesWithN = Vec<(u64, Curve)>;

/// Curves of `c2` with their run's N, labelled and selected (see [`params::C2Params::min_k`])
/// from the summaries (same order and count as the curves).
fn read_curves(task: &TaskSpec, min_k: Option<i64>) -> Result<CurvesWithN> {
    let paths = input_paths(task, "curves")?;
    let selected: Vec<(PathBuf, String, u64)> = match task.inputs_all("summaries") {
        [] => bail!(
            "stage {}: c2 needs the runs' `summaries` (same order as the curves): their N sets the label-count floor the plateau threshold must clear",
            task.stage
        ),
        refs => {
            ensure!(
                refs.len() == paths.len(),
                "stage {}: {} summaries for {} curves; they must pair up in order",
                task.stage,
                refs.len(),
                paths.len()
            );
            let df = frame::read_stacked(&refs.iter().map(|r| r.path.clone()).collect::<Vec<_>>())?;
            let labels = run_labels(&df)?;
            let keep = select_by_k(&df, min_k)?;
            ensure!(
                keep.iter().any(|&k| k),
                "stage {}: no run has K >= {} (min_k)",
                task.stage,
                min_k.unwrap_or(0)
            );
            let n = frame::f64s(&df, "N")?;
            paths
                .iter()
                .zip(labels)
                .zip(keep)
                .zip(n)
                .filter(|((_, k), _)| *k)
                .map(|(((p, l), _), n)| (p.clone(), l, n as u64))
                .collect()
        }
    };
    let curves = selected
        .into_iter()
        .map(|(p, l, n)| {
            let df = frame::read_df(&p)?;
            Ok((
                n,
                Curve::from_frame(&df, l).with_context(|| format!("curve {}", p.display()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(curves)
}

/// Which runs `c2` uses: K >= `min_k` (K = inf, a null K, counts as above); without `min_k`,
/// the runs at the largest K (inf if present). All runs when there is no K column.
pub fn select_by_k(df: &polars::prelude::DataFrame, min_k: Option<i64>) -> Result<Vec<bool>> {
    let Ok(k) = frame::f64s(df, "K") else {
        return Ok(vec![true; df.height()]);
    };
    let k: Vec<f64> = k
        .into_iter()
        .map(|v| if v.is_nan() { f64::INFINITY } else { v })
        .collect();
    Ok(match min_k {
        Some(m) => k.iter().map(|&v| v >= m as f64).collect(),
        None => {
            let top = k.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            k.iter().map(|&v| v == top).collect()
        }
    })
}
