//! C6 (Fig 6a, A7): K* grows as N^(1/nu). K* per N from the transformer's K x N sweep, the
//! log-log slope with a bootstrap interval, compared with 1/nu (measured, from the c5 claim) and
//! 1/0.7; and a prediction test: the law with the theory's slope, anchored on the other N,
//! predicts K* at a held-out N.

use super::c5::PAPER_NU;
use super::common::{read_nu_claim, NuFromClaim};
use crate::io;
use crate::kstar::{self, KstarSettings, Point, ScalingFit};
use icl_claim::claim::{checks_json, num, verdict_of, verdict_rule, Check, Claim, Verdict};
use icl_claim::ladder::Rungs;
use icl_claim::params::{Checker, Validate};
use icl_claim::stage::{optional_input, ClaimAnalysis, PaperClaim};
use icl_plot::{color, Axis, Figure, Layer, Legend, Marker, Panel};
use icl_store::task::{ParamError, TaskSpec};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// Core checks (K* growing as a power of N; the exponent and the held-out prediction are its numbers).
const CORE: &[&str] = &["enough_N", "kstar_grows_with_N"];

fn d_slope_tolerance() -> f64 {
    0.2
}
fn d_prediction_factor() -> f64 {
    1.5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C6Params {
    pub profile: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "icl_claim::params::d_n_boot")]
    pub n_boot: usize,
    #[serde(default = "icl_claim::params::d_level")]
    pub level: f64,
    /// Smallest sigmoid amplitude that counts as a transition.
    #[serde(default = "icl_claim::kstar::d_min_rise")]
    pub min_rise: f64,
    /// N left out of the fit and predicted (default: the largest N with a valid K*).
    #[serde(default, rename = "holdout_N")]
    pub holdout_n: Option<u64>,
    /// |slope - 1/nu| within which the slope counts as the theory's even if the interval misses it.
    #[serde(default = "d_slope_tolerance")]
    pub slope_tolerance: f64,
    /// The held-out K* must lie within this factor of the prediction.
    #[serde(default = "d_prediction_factor")]
    pub prediction_factor: f64,
}

impl Validate for C6Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut c = Checker::default();
        c.profile(&self.profile);
        c.prob("level", self.level);
        c.range("min_rise", self.min_rise, 0.0, 1.0);
        c.range("slope_tolerance", self.slope_tolerance, 0.0, 10.0);
        c.gt("prediction_factor", self.prediction_factor, 1.0);
        c.errors()
    }
}

/// Points (K, final ICL accuracy) per N over the finite-K runs.
pub fn groups_by_n(runs: &[io::Run]) -> BTreeMap<u64, Vec<Point>> {
    let mut g: BTreeMap<u64, Vec<Point>> = BTreeMap::new();
    for r in runs {
        if let Some(k) = r.summary.k {
            if r.summary.final_icl_acc.is_finite() {
                g.entry(r.summary.n.round() as u64)
                    .or_default()
                    .push((k, r.summary.final_icl_acc));
            }
        }
    }
    g
}

/// Prediction of a held-out group's K* from the others with a fixed slope (log10 K* vs log10 N).
#[derive(Debug, Clone, Serialize)]
pub struct Holdout {
    pub n: f64,
    pub slope_used: f64,
    pub predicted: f64,
    /// Free-slope extrapolation from the other N (NaN with fewer than two).
    pub predicted_free_slope: f64,
    pub measured: f64,
    pub measured_low: f64,
    pub measured_high: f64,
    /// measured / predicted.
    pub ratio: f64,
    pub fit_n: Vec<f64>,
}

pub fn holdout_prediction(s: &ScalingFit, holdout: f64, slope: f64) -> Option<Holdout> {
    let idx = s.per_n.iter().position(|(n, f)| *n == holdout && f.valid)?;
    let others: Vec<(f64, f64)> = s
        .per_n
        .iter()
        .filter(|(n, f)| *n != holdout && f.valid)
        .map(|(n, f)| (n.log10(), f.kstar.log10()))
        .collect();
    if others.is_empty() {
        return None;
    }
    let intercept = others.iter().map(|(x, y)| y - slope * x).sum::<f64>() / others.len() as f64;
    let predicted = 10f64.powf(intercept + slope * holdout.log10());
    let (xs, ys): (Vec<f64>, Vec<f64>) = others.iter().copied().unzip();
    let free = icl_claim::stats::linear_fit(&xs, &ys)
        .map(|l| 10f64.powf(l.at(holdout.log10())))
        .unwrap_or(f64::NAN);
    let measured = s.per_n[idx].1.kstar;
    Some(Holdout {
        n: holdout,
        slope_used: slope,
        predicted,
        predicted_free_slope: free,
        measured,
        measured_low: s.kstar_low[idx],
        measured_high: s.kstar_high[idx],
        ratio: measured / predicted,
        fit_n: s
            .per_n
            .iter()
            .filter(|(n, f)| *n != holdout && f.valid)
            .map(|(n, _)| *n)
            .collect(),
    })
}

/// What C6's claim and figure are built from.
pub struct C6Analysis {
    runs: Vec<io::Run>,
    nu: Option<NuFromClaim>,
    groups: BTreeMap<u64, Vec<Point>>,
    s: ScalingFit,
    valid: Vec<f64>,
    theory_slope: f64,
    holdout: Option<Holdout>,
}

/// Read the inputs and analyse them.
pub fn analyze(task: &TaskSpec, p: &C6Params) -> anyhow::Result<C6Analysis> {
    let runs = io::read_runs(task.inputs_all("summaries"), &[], "c6")?;
    anyhow::ensure!(!runs.is_empty(), "c6: input `summaries` is empty");
    let nu = optional_input(task, "nu_claim")?
        .map(read_nu_claim)
        .transpose()?;
    let groups = groups_by_n(&runs);
    let settings = KstarSettings {
        min_rise: p.min_rise,
        ..KstarSettings::default()
    };
    let s = kstar::fit_scaling(&groups, settings, p.n_boot, p.seed, p.level);
    let valid: Vec<f64> = s
        .per_n
        .iter()
        .filter(|(_, f)| f.valid)
        .map(|(n, _)| *n)
        .collect();
    let theory_slope = nu.map(|n| 1.0 / n.nu).unwrap_or(1.0 / PAPER_NU);
    let holdout_n = p
        .holdout_n
        .map(|n| n as f64)
        .or_else(|| valid.last().copied());
    if let Some(h) = p.holdout_n {
        anyhow::ensure!(
            groups.contains_key(&h),
            "c6: holdout_N = {h} is not among the N values {:?}",
            groups.keys().collect::<Vec<_>>()
        );
    }
    let holdout = holdout_n.and_then(|h| holdout_prediction(&s, h, theory_slope));

    Ok(C6Analysis {
        runs,
        nu,
        groups,
        s,
        valid,
        theory_slope,
        holdout,
    })
}

impl ClaimAnalysis<C6Params> for C6Analysis {
    fn claim(&self, p: &C6Params) -> Claim {
        let C6Analysis {
            runs,
            nu,
            s,
            valid,
            theory_slope,
            holdout,
            ..
        } = self;
        let theory_slope = *theory_slope;
        let src = if nu.is_some() {
            "1/nu measured (c5)"
        } else {
            "1/0.7 (no nu_claim input)"
        };
        let mut checks = vec![Check::new(
            "enough_N",
            valid.len() >= 3,
            valid.len() as f64,
            "at least 3 N values with a valid K* (transition inside the K range)",
        )];
        let verdict = match &s.line {
            Some(line) if valid.len() >= 3 => {
                checks.push(Check::new(
                    "kstar_grows_with_N",
                    line.slope > 0.0 && s.low > 0.0,
                    s.low,
                    format!(
                        "slope > 0 and its {:.0}% interval excludes 0 (value: interval's lower end)",
                        100.0 * s.level
                    ),
                ));
                let in_ci = s.low <= theory_slope && theory_slope <= s.high;
                checks.push(Check::new(
                    "slope_matches_1_over_nu",
                    in_ci || (line.slope - theory_slope).abs() <= p.slope_tolerance,
                    line.slope,
                    format!(
                        "{src} = {theory_slope:.3} inside the interval [{:.3}, {:.3}] or |slope - {theory_slope:.3}| <= {}",
                        s.low, s.high, p.slope_tolerance
                    ),
                ));
                // The issue asks for both comparisons: the measured 1/nu above, the paper's 1/0.7 here.
                let paper_slope = 1.0 / PAPER_NU;
                checks.push(Check::new(
                    "slope_matches_paper_1_over_0.7",
                    (s.low <= paper_slope && paper_slope <= s.high)
                        || (line.slope - paper_slope).abs() <= p.slope_tolerance,
                    line.slope,
                    format!(
                        "the paper's 1/0.7 = {paper_slope:.3} inside the interval [{:.3}, {:.3}] or |slope - {paper_slope:.3}| <= {}",
                        s.low, s.high, p.slope_tolerance
                    ),
                ));
                checks.push(Check::new(
                    "holdout_predicted",
                    holdout.as_ref().map(|h| h.ratio.ln().abs() <= p.prediction_factor.ln()).unwrap_or(false),
                    holdout.as_ref().map(|h| h.ratio).unwrap_or(f64::NAN),
                    format!(
                        "K* at the held-out N within a factor {} of the law with slope {theory_slope:.3} anchored on the other N (value: measured / predicted)",
                        p.prediction_factor
                    ),
                ));
                verdict_of(&checks, CORE)
            }
            _ => Verdict::Inconclusive,
        };
        let slope = s.line.map(|l| l.slope).unwrap_or(f64::NAN);
        let details = json!({
            "slope": num(slope), "low": num(s.low), "high": num(s.high), "level": s.level, "n_boot_ok": s.n_boot_ok,
            "r2": s.line.map(|l| num(l.r2)),
            "regression": "log10 K* on log10 N (N = tokens per sequence, query included)",
            "theory_slope": num(theory_slope),
            "theory_slope_source": if nu.is_some() { "1/nu from the c5 claim" } else { "1/0.7 (no nu_claim input)" },
            "nu_measured": nu.map(|n: NuFromClaim| json!({"nu": num(n.nu), "low": num(n.low), "high": num(n.high), "one_over_nu": num(1.0 / n.nu), "one_over_nu_interval": [num(1.0 / n.high), num(1.0 / n.low)]})),
            "paper_slope": 1.0 / PAPER_NU,
            "holdout": holdout.as_ref().map(|h| serde_json::to_value(h).unwrap_or_default()),
            "predictions": holdout.as_ref().map(|h| vec![json!({
                "quantity": "K* (sigmoid midpoint)",
                "at": format!("N = {}", h.n),
                "fit_on": format!(
                    "K* at N = {} with slope {:.3} ({src})",
                    h.fit_n.iter().map(|n| format!("{n}")).collect::<Vec<_>>().join(", "),
                    h.slope_used
                ),
                "predicted": num(h.predicted), "measured": num(h.measured), "low": num(h.measured_low), "high": num(h.measured_high),
                "interval": format!("{:.0}% bootstrap over seeds", 100.0 * s.level),
                "ratio": num(h.ratio),
            })]).unwrap_or_default(),
            "min_rise": p.min_rise,
            "verdict_rule": verdict_rule(CORE),
            "checks": checks_json(&checks),
            "per_N": s.per_n.iter().enumerate().map(|(i, (n, f))| json!({
                "N": n, "kstar": num(f.kstar), "low": num(s.kstar_low[i]), "high": num(s.kstar_high[i]),
                "valid": f.valid, "reason": f.reason, "runs": f.n_runs, "K_range": [f.k_min, f.k_max],
                "sigmoid": f.fit.map(|g| json!({"a": num(g.a), "b": num(g.b), "c": num(g.c), "d": num(g.d)})),
            })).collect::<Vec<_>>(),
        });
        Claim {
            claim: "C6".into(),
            figure: "Fig 6a, A7".into(),
            statement: "K* grows as a power of N with exponent 1/nu".into(),
            paper_value: format!("slope 1/nu ~ {:.2}", 1.0 / PAPER_NU),
            value: slope,
            low: s.low,
            high: s.high,
            unit: "slope of log K* vs log N".into(),
            profile: p.profile.clone(),
            verdict,
            n_runs: runs.iter().filter(|r| r.summary.k.is_some()).count() as i64,
            details: icl_claim::claim::details_text(&details),
        }
    }
    fn figure(&self, _: &C6Params) -> Figure {
        figure(
            &self.groups,
            &self.s,
            self.theory_slope,
            self.nu.is_some(),
            self.holdout.as_ref(),
        )
    }
}

fn figure(
    groups: &BTreeMap<u64, Vec<Point>>,
    s: &ScalingFit,
    theory_slope: f64,
    measured_nu: bool,
    holdout: Option<&Holdout>,
) -> Figure {
    let mut p_acc = Panel::new(
        "final ICL accuracy vs K (Fig A7)",
        Axis::log10("K"),
        Axis::linear("final ICL accuracy").range(0.4, 1.02),
    )
    .legend(Legend::UpperLeft);
    for (i, ((n, pts), (_, f))) in groups.iter().zip(&s.per_n).enumerate() {
        p_acc.push(
            Layer::points(pts.clone())
                .color(color(i))
                .size(2)
                .label(format!("N={n}")),
        );
        if let Some(g) = f.fit {
            let (lo, hi) = (f.k_min.log10(), f.k_max.log10());
            let line: Vec<(f64, f64)> = (0..=60)
                .map(|j| lo + (hi - lo) * j as f64 / 60.0)
                .map(|x| (10f64.powf(x), g.at(x)))
                .collect();
            let l = Layer::line(line).color(color(i)).size(1);
            p_acc.push(if f.valid { l } else { l.dashed() });
        }
    }
    let mut p_k = Panel::new("K* vs N (Fig 6a)", Axis::log10("N"), Axis::log10("K*"))
        .legend(Legend::UpperLeft);
    let bars: Vec<(f64, f64, f64, f64)> = s
        .per_n
        .iter()
        .enumerate()
        .filter(|(_, (_, f))| f.valid)
        .map(|(i, (n, f))| {
            (
                *n,
                f.kstar,
                if s.kstar_low[i].is_finite() {
                    s.kstar_low[i]
                } else {
                    f.kstar
                },
                if s.kstar_high[i].is_finite() {
                    s.kstar_high[i]
                } else {
                    f.kstar
                },
            )
        })
        .collect();
    if !bars.is_empty() {
        p_k.push(
            Layer::error_bars(bars.clone())
                .color(color(0))
                .label("K* (sigmoid midpoint)"),
        );
    }
    if let Some(line) = s.line {
        let ns: Vec<f64> = bars.iter().map(|b| b.0).collect();
        let (lo, hi) = (
            ns.iter().cloned().fold(f64::INFINITY, f64::min),
            ns.iter().cloned().fold(0.0, f64::max),
        );
        let xs: Vec<f64> = (0..=20)
            .map(|j| lo * (hi / lo).powf(j as f64 / 20.0))
            .collect();
        p_k.push(
            Layer::line(
                xs.iter()
                    .map(|&n| (n, 10f64.powf(line.at(n.log10()))))
                    .collect(),
            )
            .color(color(1))
            .label(format!(
                "fit slope {:.2} [{:.2}, {:.2}]",
                line.slope, s.low, s.high
            )),
        );
        let cx = ns.iter().map(|n| n.log10()).sum::<f64>() / ns.len() as f64;
        let cy = line.at(cx);
        let ref_line = |sl: f64| -> Vec<(f64, f64)> {
            xs.iter()
                .map(|&n| (n, 10f64.powf(cy + sl * (n.log10() - cx))))
                .collect()
        };
        if measured_nu {
            p_k.push(
                Layer::line(ref_line(theory_slope))
                    .color(color(2))
                    .dashed()
                    .label(format!("1/nu measured = {theory_slope:.2}")),
            );
        }
        p_k.push(
            Layer::line(ref_line(1.0 / PAPER_NU))
                .color(icl_plot::GREY)
                .dashed()
                .label(format!("paper 1/0.7 = {:.2}", 1.0 / PAPER_NU)),
        );
    }
    if let Some(h) = holdout {
        p_k.push(
            Layer::points(vec![(h.n, h.predicted)])
                .color(color(3))
                .marker(Marker::Square)
                .hollow()
                .size(6)
                .label(format!("predicted at held-out N={}", h.n)),
        );
    }
    Figure::new("C6: K* vs context length")
        .columns(2)
        .panel(p_acc)
        .panel(p_k)
}

/// C6 as a stage command (K* ~ N^(1/nu)).
pub struct C6;

impl PaperClaim for C6 {
    const COMMAND: &'static str = "c6";
    type Params = C6Params;
    type Analysis = C6Analysis;
    fn analyze(task: &TaskSpec, p: &C6Params) -> anyhow::Result<Rungs<C6Analysis>> {
        Ok(Rungs::Whole(analyze(task, p)?))
    }
}
