//! C3 (Fig 3): the minimal model reproduces the transformer's phenomenology: a sharp transition
//! from IWL to ICL as K grows, abrupt ICL acquisition, and (with L2 on beta, w) transience.

use super::common::k_label;
use crate::io::{self, Run};
use crate::kstar::{self, KstarSettings};
use icl_claim::claim::{checks_json, num, verdict_of, verdict_rule, Check, Claim, Verdict};
use icl_claim::ladder::Rungs;
use icl_claim::params::{Checker, Validate};
use icl_claim::stage::{ClaimAnalysis, PaperClaim};
use icl_claim::stats;
use icl_plot::{color, Axis, Figure, Layer, Legend, Panel};
use icl_store::task::{ParamError, TaskSpec};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// Core checks (the transition in K itself; abruptness and transience are its further predictions).
const CORE: &[&str] = &[
    "icl_chance_at_smallest_K",
    "icl_high_at_largest_K",
    "sharp_transition",
];

fn d_high_plateau() -> f64 {
    0.9
}
fn d_max_width() -> f64 {
    1.0
}
fn d_rise_start_acc() -> f64 {
    0.75
}
fn d_max_rise_fraction() -> f64 {
    0.25
}
fn d_peak_acc() -> f64 {
    0.9
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C3Params {
    pub profile: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "icl_claim::params::d_n_boot")]
    pub n_boot: usize,
    #[serde(default = "icl_claim::params::d_level")]
    pub level: f64,
    #[serde(default = "icl_claim::kstar::d_min_rise")]
    pub min_rise: f64,
    /// Mean final ICL accuracy at the smallest K must be at most this (IWL side). Default: the
    /// label-count floor of the runs' N + 0.05 (no better than counting; `icl_claim::floor`)...
    #[serde(default)]
    pub max_low_plateau: Option<f64>,
    /// ...and at the largest K at least this (ICL side).
    #[serde(default = "d_high_plateau")]
    pub min_high_plateau: f64,
    /// Sharp: the sigmoid's 10%-90% rise spans at most this many decades of K.
    #[serde(default = "d_max_width")]
    pub max_width_decades: f64,
    /// The rise is timed from the last evaluation at or below this ICL accuracy before t_ICL
    /// (default: halfway between chance and perfect, so the second half of the rise is timed;
    /// at small N the discreteness of the label sum lifts early accuracy to ~0.6-0.7 while beta
    /// has barely moved, so a lower start would time that, not the acquisition).
    #[serde(default = "d_rise_start_acc")]
    pub rise_start_acc: f64,
    /// Abrupt: median (t_ICL - rise start) / t_ICL at most this.
    #[serde(default = "d_max_rise_fraction")]
    pub max_rise_fraction: f64,
    /// Transience: ICL acquired (peak at least this)...
    #[serde(default = "d_peak_acc")]
    pub peak_acc: f64,
    /// ...then lost (final at most this). Default: halfway between peak_acc and the count floor.
    #[serde(default)]
    pub lost_acc: Option<f64>,
}

impl Validate for C3Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut c = Checker::default();
        c.profile(&self.profile);
        c.prob("icl_claim::params::d_level", self.level);
        for (k, v) in [
            ("min_rise", Some(self.min_rise)),
            ("max_low_plateau", self.max_low_plateau),
            ("min_high_plateau", Some(self.min_high_plateau)),
            ("rise_start_acc", Some(self.rise_start_acc)),
            ("max_rise_fraction", Some(self.max_rise_fraction)),
            ("peak_acc", Some(self.peak_acc)),
            ("lost_acc", self.lost_acc),
        ] {
            if let Some(v) = v {
                c.range(k, v, 0.0, 1.0);
            }
        }
        c.gt("max_width_decades", self.max_width_decades, 0.0);
        if let Some(lost) = self.lost_acc.filter(|l| *l >= self.peak_acc) {
            c.fail(
                "lost_acc",
                format!("must be below peak_acc ({}) (got {lost})", self.peak_acc),
            );
        }
        c.errors()
    }
}

/// (t_ICL - start of the rise) / t_ICL for one acquired run: how much of the time to acquisition
/// the visible rise takes.
pub fn rise_fraction(run: &Run, rise_start_acc: f64) -> Option<f64> {
    let t = run.summary.t_icl?;
    let c = run.curve.as_ref()?;
    if t <= 0.0 {
        return None;
    }
    let start = c
        .iteration
        .iter()
        .zip(&c.icl_acc)
        .filter(|(it, a)| **it < t && a.is_finite() && **a <= rise_start_acc)
        .map(|(it, _)| *it)
        .fold(f64::NAN, f64::max);
    let start = if start.is_finite() { start } else { 0.0 };
    Some((t - start) / t)
}

/// Transience of one run: (peaked, lost, iteration where ICL fell below `lost` after the peak).
pub fn transience(run: &Run, peak: f64, lost: f64) -> (bool, bool, Option<f64>) {
    let s = &run.summary;
    let peaked = s.peak_icl_acc >= peak;
    let lost_final = peaked && s.final_icl_acc <= lost;
    let t_lost = run.curve.as_ref().and_then(|c| {
        let i_peak = c.icl_acc.iter().position(|a| *a >= peak)?;
        c.iteration
            .iter()
            .zip(&c.icl_acc)
            .skip(i_peak)
            .find(|(_, a)| **a <= lost)
            .map(|(it, _)| *it)
    });
    (peaked, lost_final, t_lost)
}

/// The K-sweep runs (finite K) grouped by K.
fn runs_by_k(runs: &[Run]) -> BTreeMap<u64, Vec<&Run>> {
    let mut by_k: BTreeMap<u64, Vec<&Run>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.summary.k.is_some()) {
        by_k.entry(r.summary.k.unwrap_or(0.0).round() as u64)
            .or_default()
            .push(r);
    }
    by_k
}

/// Mean over runs of a finite per-run quantity.
fn mean_acc(rs: &[&Run], f: impl Fn(&Run) -> f64) -> f64 {
    stats::mean_finite(&rs.iter().map(|r| f(r)).collect::<Vec<_>>())
}

/// What C3's claim and figure are built from.
pub struct C3Analysis {
    runs: Vec<Run>,
    trans: Vec<Run>,
    ns: Vec<u64>,
    max_low_plateau: f64,
    lost_acc: f64,
    s: kstar::ScalingFit,
    kf: kstar::KstarFit,
    low_plateau: f64,
    high_plateau: f64,
    width: f64,
    fractions: Vec<f64>,
    med_frac: f64,
    abrupt_ok: bool,
    tr: Vec<(bool, bool, Option<f64>)>,
    n_peaked: usize,
    n_lost: usize,
    wd_groups: Vec<serde_json::Value>,
    transient_ok: bool,
}

/// Read the inputs and analyse them.
pub fn analyze(task: &TaskSpec, p: &C3Params) -> anyhow::Result<C3Analysis> {
    let runs = io::read_runs(
        task.inputs_all("summaries"),
        task.inputs_all("curves"),
        "c3",
    )?;
    anyhow::ensure!(!runs.is_empty(), "c3: input `summaries` is empty");
    if let Some(r) = runs
        .iter()
        .find(|r| !r.summary.model.is_empty() && r.summary.model != "minimal")
    {
        anyhow::bail!(
            "c3: expects minimal-model runs, got model `{}` (seed {})",
            r.summary.model,
            r.summary.seed
        );
    }
    let trans = io::read_runs(
        task.inputs_all("transient_summaries"),
        task.inputs_all("transient_curves"),
        "c3 transient",
    )?;

    // Thresholds against the label-count floor of the runs' N (icl_claim::floor).
    let ns: Vec<u64> = runs
        .iter()
        .chain(&trans)
        .map(|r| r.summary.n.round() as u64)
        .collect();
    let worst_floor = icl_claim::floor::highest_floor(&ns);
    let max_low_plateau = p
        .max_low_plateau
        .unwrap_or(worst_floor + icl_claim::floor::FLOOR_MARGIN);
    let lost_acc = p.lost_acc.unwrap_or((p.peak_acc + worst_floor) / 2.0);

    // 1. Transition in K.
    let by_k = runs_by_k(&runs);
    let mut g = BTreeMap::new();
    g.insert(
        0u64,
        runs.iter()
            .filter_map(|r| r.summary.k.map(|k| (k, r.summary.final_icl_acc)))
            .collect::<Vec<_>>(),
    );
    let s = kstar::fit_scaling(
        &g,
        KstarSettings {
            min_rise: p.min_rise,
            ..KstarSettings::default()
        },
        p.n_boot,
        p.seed,
        p.level,
    );
    let kf = s.per_n[0].1.clone();
    let low_plateau = by_k
        .values()
        .next()
        .map(|rs| mean_acc(rs, |r| r.summary.final_icl_acc))
        .unwrap_or(f64::NAN);
    let high_plateau = by_k
        .values()
        .last()
        .map(|rs| mean_acc(rs, |r| r.summary.final_icl_acc))
        .unwrap_or(f64::NAN);
    let width = kf.fit.map(|f| f.width_10_90()).unwrap_or(f64::NAN);

    // 2. Abrupt acquisition.
    let fractions: Vec<f64> = runs
        .iter()
        .filter_map(|r| rise_fraction(r, p.rise_start_acc))
        .collect();
    let med_frac = stats::median(&fractions);
    let abrupt_ok = !fractions.is_empty() && med_frac <= p.max_rise_fraction;

    // 3. Transience.
    let tr: Vec<(bool, bool, Option<f64>)> = trans
        .iter()
        .map(|r| transience(r, p.peak_acc, lost_acc))
        .collect();
    let n_peaked = tr.iter().filter(|t| t.0).count();
    let n_lost = tr.iter().filter(|t| t.1).count();
    // Per L2 strength: transience is a window in lambda (too weak: ICL persists within the
    // budget; too strong: ICL never forms), so it is shown if some lambda makes most of the
    // runs that acquired ICL lose it.
    let mut by_wd: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, r) in trans.iter().enumerate() {
        by_wd
            .entry(r.summary.wd_attn.to_bits())
            .or_default()
            .push(i);
    }
    let wd_groups: Vec<serde_json::Value> = by_wd
        .values()
        .map(|idx| {
            let peaked = idx.iter().filter(|&&i| tr[i].0).count();
            let lost = idx.iter().filter(|&&i| tr[i].1).count();
            let t_lost: Vec<f64> = idx.iter().filter_map(|&i| tr[i].2).collect();
            json!({"wd_attn": trans[idx[0]].summary.wd_attn, "runs": idx.len(), "peaked": peaked, "lost": lost,
                   "transient": peaked > 0 && 2 * lost >= peaked, "median_t_lost": num(stats::median(&t_lost))})
        })
        .collect();
    let transient_ok = wd_groups.iter().any(|g| g["transient"] == json!(true));

    Ok(C3Analysis {
        runs,
        trans,
        ns,
        max_low_plateau,
        lost_acc,
        s,
        kf,
        low_plateau,
        high_plateau,
        width,
        fractions,
        med_frac,
        abrupt_ok,
        tr,
        n_peaked,
        n_lost,
        wd_groups,
        transient_ok,
    })
}

impl ClaimAnalysis<C3Params> for C3Analysis {
    fn claim(&self, p: &C3Params) -> Claim {
        let C3Analysis {
            runs,
            trans,
            ns,
            max_low_plateau,
            lost_acc,
            s,
            kf,
            low_plateau,
            high_plateau,
            width,
            fractions,
            med_frac,
            abrupt_ok,
            tr,
            n_peaked,
            n_lost,
            wd_groups,
            transient_ok,
        } = self;
        let max_low_plateau = *max_low_plateau;
        let lost_acc = *lost_acc;
        let low_plateau = *low_plateau;
        let high_plateau = *high_plateau;
        let width = *width;
        let med_frac = *med_frac;
        let abrupt_ok = *abrupt_ok;
        let n_peaked = *n_peaked;
        let n_lost = *n_lost;
        let transient_ok = *transient_ok;
        let by_k = runs_by_k(runs);
        let mut checks = vec![
            Check::new(
                "icl_chance_at_smallest_K",
                low_plateau <= max_low_plateau,
                low_plateau,
                format!("mean final ICL accuracy at the smallest K <= {max_low_plateau:.3} (no better than counting)"),
            ),
            Check::new(
                "icl_high_at_largest_K",
                high_plateau >= p.min_high_plateau,
                high_plateau,
                format!("mean final ICL accuracy at the largest K >= {}", p.min_high_plateau),
            ),
            Check::new(
                "sharp_transition",
                kf.valid && width <= p.max_width_decades,
                width,
                format!(
                    "sigmoid midpoint inside the K range and its 10-90% rise within {} decade(s) of K (value: width in decades)",
                    p.max_width_decades
                ),
            ),
            Check::new(
                "abrupt_acquisition",
                abrupt_ok,
                med_frac,
                format!(
                    "median over acquiring runs of (t_ICL - last evaluation with ICL acc <= {}) / t_ICL <= {}",
                    p.rise_start_acc, p.max_rise_fraction
                ),
            ),
        ];
        if !trans.is_empty() {
            let best = wd_groups
                .iter()
                .filter_map(|g| {
                    let peaked = g["peaked"].as_f64()?;
                    (peaked > 0.0).then(|| g["lost"].as_f64().unwrap_or(0.0) / peaked)
                })
                .fold(f64::NAN, f64::max);
            checks.push(Check::new(
                "transience",
                transient_ok,
                best,
                format!(
                    "for some L2 strength, most runs that reached ICL acc >= {} end at <= {lost_acc:.3} (value: best fraction lost)",
                    p.peak_acc
                ),
            ));
        }
        let floor_checks = [
            icl_claim::floor::floor_check("no_ICL", max_low_plateau, ns),
            icl_claim::floor::floor_check("ICL_high", p.min_high_plateau, ns),
            icl_claim::floor::floor_check("d_rise_start_acc", p.rise_start_acc, ns),
            icl_claim::floor::floor_check("ICL_peak", p.peak_acc, ns),
            icl_claim::floor::floor_check("ICL_lost", lost_acc, ns),
        ];
        let floors_ok = floor_checks.iter().all(|c| c.pass);
        checks.extend(floor_checks);
        let verdict = if by_k.len() < 3 || !floors_ok {
            Verdict::Inconclusive
        } else {
            verdict_of(&checks, CORE)
        };
        let count_floor_json = icl_claim::floor::floors_json(ns);
        let details = json!({
            "verdict_rule": format!("{}; inconclusive: fewer than 3 K values, or a threshold within 0.05 of the label-count floor", verdict_rule(CORE)),
            "checks": checks_json(&checks),
            "transition": {
                "kstar": num(kf.kstar), "low": num(s.kstar_low[0]), "high": num(s.kstar_high[0]), "valid": kf.valid, "reason": kf.reason,
                "width_10_90_decades": num(width), "low_plateau": num(low_plateau), "d_high_plateau": num(high_plateau),
                "sigmoid": kf.fit.map(|f| json!({"a": num(f.a), "b": num(f.b), "c": num(f.c), "d": num(f.d)})),
                "per_K": by_k.iter().map(|(k, rs)| json!({
                    "K": k, "runs": rs.len(),
                    "final_icl_acc": num(mean_acc(rs, |r| r.summary.final_icl_acc)),
                    "final_iwl_acc": num(mean_acc(rs, |r| r.summary.final_iwl_acc)),
                    "acquired_fraction": rs.iter().filter(|r| r.summary.t_icl.is_some()).count() as f64 / rs.len() as f64,
                })).collect::<Vec<_>>(),
            },
            "abruptness": {"rise_fractions": fractions.iter().map(|f| num(*f)).collect::<Vec<_>>(), "median": num(med_frac),
                           "definition": format!("(t_ICL - last evaluation with ICL acc <= {}) / t_ICL", p.rise_start_acc)},
            "count_floor": count_floor_json,
            "transience": {
                "runs": trans.len(), "peaked": n_peaked, "lost": n_lost, "by_wd_attn": wd_groups,
                "wd_attn": trans.iter().map(|r| r.summary.wd_attn).collect::<Vec<_>>(),
                "t_lost": tr.iter().map(|t| t.2.map(num)).collect::<Vec<_>>(),
                "final_icl_acc": trans.iter().map(|r| num(r.summary.final_icl_acc)).collect::<Vec<_>>(),
                "peak_icl_acc": trans.iter().map(|r| num(r.summary.peak_icl_acc)).collect::<Vec<_>>(),
            },
        });
        Claim {
            claim: "C3".into(),
            figure: "Fig 3".into(),
            statement: "The minimal model shows the sharp IWL-to-ICL transition in K, abrupt ICL acquisition, and transience with L2 on (w, beta)".into(),
            paper_value: "qualitative".into(),
            value: kf.kstar,
            low: s.kstar_low[0],
            high: s.kstar_high[0],
            unit: "K* of the minimal model (items)".into(),
            profile: p.profile.clone(),
            verdict,
            n_runs: (runs.len() + trans.len()) as i64,
            details: icl_claim::claim::details_text(&details),
        }
    }
    fn figure(&self, _: &C3Params) -> Figure {
        figure(
            &self.runs,
            &runs_by_k(&self.runs),
            &self.kf,
            &self.trans,
            self.lost_acc,
        )
    }
}

fn figure(
    runs: &[Run],
    by_k: &BTreeMap<u64, Vec<&Run>>,
    kf: &kstar::KstarFit,
    trans: &[Run],
    lost_acc: f64,
) -> Figure {
    let mut p_k = Panel::new(
        "final accuracy vs K (Fig 3a)",
        Axis::log10("K"),
        Axis::linear("final accuracy").range(0.0, 1.05),
    )
    .legend(Legend::MiddleLeft);
    let icl: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|r| r.summary.k.map(|k| (k, r.summary.final_icl_acc)))
        .collect();
    let iwl: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|r| r.summary.k.map(|k| (k, r.summary.final_iwl_acc)))
        .filter(|p| p.1.is_finite())
        .collect();
    p_k.push(Layer::points(icl).color(color(3)).size(3).label("ICL"));
    if !iwl.is_empty() {
        p_k.push(Layer::points(iwl).color(color(0)).size(3).label("IWL"));
    }
    if let Some(f) = kf.fit {
        let (lo, hi) = (kf.k_min.log10(), kf.k_max.log10());
        p_k.push(
            Layer::line(
                (0..=60)
                    .map(|j| lo + (hi - lo) * j as f64 / 60.0)
                    .map(|x| (10f64.powf(x), f.at(x)))
                    .collect(),
            )
            .color(color(3))
            .size(1)
            .label(format!("sigmoid, K* = {:.0}", kf.kstar)),
        );
    }
    // ICL accuracy over training for a few runs per K (up to 5 K values).
    let ks: Vec<u64> = by_k.keys().copied().collect();
    let chosen = super::common::thin(ks.len(), 5);
    let mut p_a = Panel::new(
        "ICL accuracy over training (Fig 3b)",
        Axis::linear("iteration"),
        Axis::linear("ICL accuracy").range(0.4, 1.02),
    )
    .legend(Legend::LowerRight);
    let mut p_b = Panel::new(
        "beta over training",
        Axis::linear("iteration"),
        Axis::linear("beta"),
    )
    .legend(Legend::UpperLeft);
    for (ci, &idx) in chosen.iter().enumerate() {
        for (j, r) in by_k[&ks[idx]].iter().take(2).enumerate() {
            let Some(c) = &r.curve else { continue };
            let mut l = Layer::line(
                c.iteration
                    .iter()
                    .zip(&c.icl_acc)
                    .filter(|(_, a)| a.is_finite())
                    .map(|(i, a)| (*i, *a))
                    .collect(),
            )
            .color(color(ci))
            .size(1);
            let mut lb = Layer::line(
                c.iteration
                    .iter()
                    .zip(&c.beta_eff)
                    .filter(|(_, a)| a.is_finite())
                    .map(|(i, a)| (*i, *a))
                    .collect(),
            )
            .color(color(ci))
            .size(1);
            if j == 0 {
                l = l.label(format!("K={}", k_label(r.summary.k)));
                lb = lb.label(format!("K={}", k_label(r.summary.k)));
            }
            p_a.push(l);
            p_b.push(lb);
        }
    }
    let mut fig = Figure::new("C3: minimal model")
        .columns(2)
        .panel(p_k)
        .panel(p_a)
        .panel(p_b);
    if !trans.is_empty() {
        let mut p_t = Panel::new(
            "transience with L2 on (w, beta) (Fig 3c)",
            Axis::linear("iteration"),
            Axis::linear("accuracy (thin: w / max w)"),
        )
        .legend(Legend::LowerRight);
        // One run per L2 strength (up to 4): ICL solid, IWL dashed, w/max(w) thin.
        let mut seen = Vec::new();
        let firsts: Vec<&Run> = trans
            .iter()
            .filter(|r| {
                let new = !seen.contains(&r.summary.wd_attn.to_bits());
                seen.push(r.summary.wd_attn.to_bits());
                new
            })
            .take(4)
            .collect();
        for (i, r) in firsts.into_iter().enumerate() {
            let Some(c) = &r.curve else { continue };
            let wd = icl_plot::format_number(r.summary.wd_attn);
            let pts = |v: &[f64]| -> Vec<(f64, f64)> {
                c.iteration
                    .iter()
                    .zip(v)
                    .filter(|(_, a)| a.is_finite())
                    .map(|(i, a)| (*i, *a))
                    .collect()
            };
            p_t.push(
                Layer::line(pts(&c.icl_acc))
                    .color(color(i))
                    .size(2)
                    .label(format!("ICL acc, L2 {wd}")),
            );
            p_t.push(
                Layer::line(pts(&c.iwl_acc))
                    .color(color(i))
                    .dashed()
                    .size(1)
                    .label(format!("IWL acc, L2 {wd}")),
            );
            let wmax = c
                .w_eff
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0f64, |a, b| a.max(b.abs()));
            if wmax > 0.0 {
                let w: Vec<f64> = c.w_eff.iter().map(|v| v / wmax).collect();
                p_t.push(Layer::line(pts(&w)).color(color(i)).size(1));
            }
        }
        p_t.push(Layer::hline(lost_acc).color(icl_plot::GREY).dashed());
        fig = fig.panel(p_t);
    }
    fig
}

/// C3 as a stage command (minimal model: transition, abruptness, transience).
pub struct C3;

impl PaperClaim for C3 {
    const COMMAND: &'static str = "c3";
    type Params = C3Params;
    type Analysis = C3Analysis;
    fn analyze(task: &TaskSpec, p: &C3Params) -> anyhow::Result<Rungs<C3Analysis>> {
        Ok(Rungs::Whole(analyze(task, p)?))
    }
}
