//! C5 (Fig 5, A2, A3): for MLP-only training c1 decays, I_K(t) saturates, and I_K(inf) ~ K^nu
//! with nu ~ 0.7.

use crate::io::{self, Run};
use crate::memo::{self, MemoRun, NuFit, Saturation};
use icl_claim::claim::{checks_json, num, verdict_of, verdict_rule, Check, Claim, Verdict};
use icl_claim::ladder::Rungs;
use icl_claim::params::{Checker, Validate};
use icl_claim::stage::{ClaimAnalysis, PaperClaim};
use icl_plot::{color, Axis, Figure, Layer, Legend, Marker, Panel};
use icl_store::task::{ParamError, TaskSpec};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Core checks (the memorization law's form; the value of nu is compared with the paper's separately).
const CORE: &[&str] = &["c1_decays", "I_K_saturated", "power_law"];

pub const PAPER_NU: f64 = 0.7;

fn d_saturation_tail() -> f64 {
    0.2
}
fn d_saturation_tol() -> f64 {
    0.05
}
fn d_nu_tolerance() -> f64 {
    0.1
}
fn d_min_r2() -> f64 {
    0.9
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C5Params {
    /// Profile name written into the claim row.
    pub profile: String,
    /// Bootstrap seed.
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "icl_claim::params::d_n_boot")]
    pub n_boot: usize,
    /// Confidence level of the interval.
    #[serde(default = "icl_claim::params::d_level")]
    pub level: f64,
    /// Saturation check: the last `saturation_tail` of training...
    #[serde(default = "d_saturation_tail")]
    pub saturation_tail: f64,
    /// ...may add at most this fraction of the final I_K.
    #[serde(default = "d_saturation_tol")]
    pub saturation_tol: f64,
    /// Fit nu over unsaturated K as well (they are always reported).
    #[serde(default)]
    pub include_unsaturated: bool,
    /// |nu - 0.7| within which nu counts as the paper's even if the interval misses 0.7.
    #[serde(default = "d_nu_tolerance")]
    pub nu_tolerance: f64,
    /// Smallest R^2 of the log-log fit that counts as a power law.
    #[serde(default = "d_min_r2")]
    pub min_r2: f64,
}

impl Validate for C5Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut c = Checker::default();
        c.profile(&self.profile);
        c.at_least("n_boot", self.n_boot, 0);
        c.prob("level", self.level);
        c.prob("saturation_tail", self.saturation_tail);
        c.prob("saturation_tol", self.saturation_tol);
        c.range("nu_tolerance", self.nu_tolerance, 0.0, 10.0);
        c.range("min_r2", self.min_r2, 0.0, 1.0);
        c.errors()
    }
}

/// What C5's claim and figure are built from.
pub struct C5Analysis {
    finite: Vec<Run>,
    memo_runs: Vec<MemoRun>,
    points: Vec<memo::KPoint>,
    fit: Option<NuFit>,
    fell_back: bool,
}

/// Read the inputs and analyse them.
pub fn analyze(task: &TaskSpec, p: &C5Params) -> anyhow::Result<C5Analysis> {
    let runs = io::read_runs(
        task.inputs_all("summaries"),
        task.inputs_all("curves"),
        "c5",
    )?;
    anyhow::ensure!(!runs.is_empty(), "c5: input `summaries` is empty");
    anyhow::ensure!(
        runs.iter().all(|r| r.curve.is_some()),
        "c5: input `curves` is required (c1 over training)"
    );
    if let Some(r) = runs
        .iter()
        .find(|r| !r.summary.model.is_empty() && r.summary.model != "mlp_only")
    {
        anyhow::bail!(
            "c5: expects mlp_only runs, got model `{}` (seed {})",
            r.summary.model,
            r.summary.seed
        );
    }
    let finite: Vec<Run> = runs
        .iter()
        .filter(|r| r.summary.k.is_some())
        .cloned()
        .collect();
    let sat = Saturation {
        tail: p.saturation_tail,
        tol: p.saturation_tol,
    };
    let memo_runs: Vec<MemoRun> = finite
        .iter()
        .map(|r| memo::analyze_run(r, sat))
        .collect::<anyhow::Result<_>>()?;
    let points = memo::k_points(&memo_runs);

    // Fit on saturated K; if too few saturated, fit all K to still show the number, and fail the
    // saturation part of the verdict.
    let mut fell_back = false;
    let fit: Option<NuFit> =
        match memo::fit_nu(&memo_runs, p.include_unsaturated, p.n_boot, p.seed, p.level) {
            Ok(f) => Some(f),
            Err(_) if !p.include_unsaturated => {
                fell_back = true;
                memo::fit_nu(&memo_runs, true, p.n_boot, p.seed, p.level).ok()
            }
            Err(_) => None,
        };

    Ok(C5Analysis {
        finite,
        memo_runs,
        points,
        fit,
        fell_back,
    })
}

impl ClaimAnalysis<C5Params> for C5Analysis {
    fn claim(&self, p: &C5Params) -> Claim {
        let C5Analysis {
            finite,
            points,
            fit,
            fell_back,
            ..
        } = self;
        let worst_decay = points
            .iter()
            .map(|k| k.c1_end / k.c1_start)
            .fold(f64::NAN, f64::max);
        let part_decay = !points.is_empty() && points.iter().all(|k| k.c1_end < 0.5 * k.c1_start);
        let mut checks = vec![Check::new(
            "c1_decays",
            part_decay,
            worst_decay,
            "c1 at the end of training < half its start value, for every K (value: the largest end/start ratio)",
        )];
        let verdict = match &fit {
            None => Verdict::Inconclusive,
            Some(f) => {
                let sat_frac = points
                    .iter()
                    .filter(|k| k.saturated_fraction >= 0.5)
                    .count() as f64
                    / points.len() as f64;
                checks.push(Check::new(
                    "I_K_saturated",
                    !fell_back && f.k_unsaturated.is_empty() && f.k_used.len() >= 3,
                    sat_frac,
                    format!(
                        "every K saturated (I_K grew < {} over the last {:.0}% of training) and >= 3 K in the fit (value: fraction of K saturated)",
                        p.saturation_tol,
                        100.0 * p.saturation_tail
                    ),
                ));
                let in_ci = f.low <= PAPER_NU && PAPER_NU <= f.high;
                checks.push(Check::new(
                    "nu_matches_paper",
                    in_ci || (f.nu - PAPER_NU).abs() <= p.nu_tolerance,
                    f.nu,
                    format!(
                        "0.7 inside the {:.0}% interval [{:.3}, {:.3}] or |nu - 0.7| <= {}",
                        100.0 * f.level,
                        f.low,
                        f.high,
                        p.nu_tolerance
                    ),
                ));
                checks.push(Check::new(
                    "power_law",
                    f.fit.r2 >= p.min_r2,
                    f.fit.r2,
                    format!("R^2 of ln I_K against ln K >= {}", p.min_r2),
                ));
                verdict_of(&checks, CORE)
            }
        };

        let (value, low, high) =
            fit.as_ref()
                .map(|f| (f.nu, f.low, f.high))
                .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        let details = json!({
            "unit_of_I": "learning rate x iterations (gradient-flow time)",
            "I_inf_estimate": "I_K at the end of training (geometric mean over seeds); nu_half = the same fit at half the training time",
            "saturation_rule": format!("relative growth of I_K over the last {:.0}% of training < {}", 100.0 * p.saturation_tail, p.saturation_tol),
            "fit": fit.as_ref().map(|f| json!({
                "nu": num(f.nu), "low": num(f.low), "high": num(f.high), "level": f.level,
                "ln_amp": num(f.ln_amp), "r2": num(f.fit.r2), "slope_se": num(f.fit.slope_se),
                "nu_half": num(f.nu_half), "resampled": f.resampled, "n_boot": f.n_boot,
                "k_used": f.k_used, "k_unsaturated": f.k_unsaturated,
                "fitted_including_unsaturated": *fell_back || p.include_unsaturated,
            })),
            "verdict_rule": verdict_rule(CORE),
            "checks": checks_json(&checks),
            "per_k": points.iter().map(|k| json!({
                "K": k.k, "seeds": k.n_seeds, "I_end": num(k.i_end), "I_half": num(k.i_half),
                "saturated_fraction": k.saturated_fraction, "rel_growth_tail": num(k.rel_growth_tail),
                "c1_start": num(k.c1_start), "c1_end": num(k.c1_end),
            })).collect::<Vec<_>>(),
        });
        Claim {
            claim: "C5".into(),
            figure: "Fig 5, A2, A3".into(),
            statement: "For MLP-only training c1 decays and I_K(t) = integral of c1 saturates at I_K(inf) ~ K^nu".into(),
            paper_value: "nu ~ 0.7".into(),
            value,
            low,
            high,
            unit: "exponent nu".into(),
            profile: p.profile.clone(),
            verdict,
            n_runs: finite.len() as i64,
            details: icl_claim::claim::details_text(&details),
        }
    }
    fn figure(&self, _: &C5Params) -> Figure {
        figure(&self.finite, &self.memo_runs, self.fit.as_ref())
    }
}

fn figure(runs: &[Run], memo_runs: &[MemoRun], fit: Option<&NuFit>) -> Figure {
    let mut ks: Vec<u64> = memo_runs.iter().map(|m| m.k.round() as u64).collect();
    ks.sort_unstable();
    ks.dedup();
    let ci = |k: f64| ks.iter().position(|&x| x == k.round() as u64).unwrap_or(0);
    let mut p_c1 = Panel::new(
        "c1 = <sigma(-phi+)> (A2a)",
        Axis::log10("iteration"),
        Axis::log10("c1"),
    )
    .legend(Legend::LowerLeft);
    let mut p_c2 = Panel::new(
        "1 - c2 = <sigma(-phi+)^2> / c1 (A2b)",
        Axis::log10("iteration"),
        Axis::log10("1 - c2"),
    )
    .legend(Legend::None);
    let mut p_c3 = Panel::new(
        "c3 = <exp(-phi+)> (A2c)",
        Axis::log10("iteration"),
        Axis::log10("c3"),
    )
    .legend(Legend::None);
    let mut p_i = Panel::new(
        "I_K(t) = integral of c1 (Fig 5a)",
        Axis::log10("iteration"),
        Axis::log10("I_K (lr x iterations)"),
    )
    .legend(Legend::None);
    let mut labelled = std::collections::BTreeSet::new();
    let mut sorted: Vec<&Run> = runs.iter().collect();
    sorted.sort_by(|a, b| {
        let ka = a.summary.k.unwrap_or(f64::INFINITY);
        let kb = b.summary.k.unwrap_or(f64::INFINITY);
        ka.total_cmp(&kb).then(a.summary.seed.cmp(&b.summary.seed))
    });
    for r in sorted {
        let (Some(curve), Some(k)) = (&r.curve, r.summary.k) else {
            continue;
        };
        let c = color(ci(k));
        let pos = |v: &[f64]| -> Vec<(f64, f64)> {
            curve
                .iteration
                .iter()
                .zip(v)
                .filter(|(i, y)| **i > 0.0 && y.is_finite() && **y > 0.0)
                .map(|(i, y)| (*i, *y))
                .collect()
        };
        let mut l1 = Layer::line(pos(&curve.c1)).color(c).size(1);
        if labelled.insert(k.round() as u64) {
            l1 = l1.label(format!("K={}", k.round() as u64));
        }
        p_c1.push(l1);
        p_c2.push(
            Layer::line(pos(&curve.c2.iter().map(|v| 1.0 - v).collect::<Vec<_>>()))
                .color(c)
                .size(1),
        );
        p_c3.push(Layer::line(pos(&curve.c3)).color(c).size(1));
        let (t, i) = memo::cumulative_i(curve, r.summary.lr);
        let pts: Vec<(f64, f64)> = t
            .iter()
            .zip(&i)
            .filter(|(t, i)| **t > 0.0 && **i > 0.0)
            .map(|(t, i)| (t / r.summary.lr, *i))
            .collect();
        p_i.push(Layer::line(pts).color(c).size(1));
    }
    let mut p_law = Panel::new(
        "memorization law I_K(inf) vs K (Fig 5b)",
        Axis::log10("K"),
        Axis::log10("I_K at end of training"),
    )
    .legend(Legend::UpperLeft);
    let sat: Vec<(f64, f64)> = memo_runs
        .iter()
        .filter(|m| m.saturated)
        .map(|m| (m.k, m.i_end))
        .collect();
    let unsat: Vec<(f64, f64)> = memo_runs
        .iter()
        .filter(|m| !m.saturated)
        .map(|m| (m.k, m.i_end))
        .collect();
    if !sat.is_empty() {
        p_law.push(Layer::points(sat).color(color(0)).label("run (saturated)"));
    }
    if !unsat.is_empty() {
        p_law.push(
            Layer::points(unsat)
                .color(color(3))
                .hollow()
                .marker(Marker::Square)
                .label("run (not saturated)"),
        );
    }
    if let Some(f) = fit {
        let (lo, hi) = (ks[0] as f64, *ks.last().unwrap_or(&1) as f64);
        let xs: Vec<f64> = (0..=20)
            .map(|i| lo * (hi / lo).powf(i as f64 / 20.0))
            .collect();
        p_law.push(
            Layer::line(xs.iter().map(|&k| (k, f.predict(k))).collect())
                .color(color(1))
                .label(format!(
                    "fit nu = {:.2} [{:.2}, {:.2}]",
                    f.nu, f.low, f.high
                )),
        );
        // The paper's exponent through the geometric centre of the data.
        let (mx, my) = (
            f.k_used.iter().map(|k| k.ln()).sum::<f64>() / f.k_used.len() as f64,
            f.ln_amp + f.nu * f.k_used.iter().map(|k| k.ln()).sum::<f64>() / f.k_used.len() as f64,
        );
        p_law.push(
            Layer::line(
                xs.iter()
                    .map(|&k| (k, (my + PAPER_NU * (k.ln() - mx)).exp()))
                    .collect(),
            )
            .color(icl_plot::GREY)
            .dashed()
            .label("paper nu = 0.7"),
        );
    }
    Figure::new("C5: memorization law (MLP-only)")
        .columns(2)
        .panel(p_i)
        .panel(p_law)
        .panel(p_c1)
        .panel(p_c2)
        .panel(p_c3)
}

/// C5 as a stage command (memorization law).
pub struct C5;

impl PaperClaim for C5 {
    const COMMAND: &'static str = "c5";
    type Params = C5Params;
    type Analysis = C5Analysis;
    fn analyze(task: &TaskSpec, p: &C5Params) -> anyhow::Result<Rungs<C5Analysis>> {
        Ok(Rungs::Whole(analyze(task, p)?))
    }
}
