//! C11 (Fig A6): the time at which ICL is lost shrinks as the attention weight decay grows; too
//! much decay prevents ICL altogether.
//!
//! Input: curves and summaries (paired in order) of a wd_attn x seed sweep. Per run: the
//! analysis of [`crate::analysis`]. Per decay value: runs, acquiring runs, lost runs, median time
//! of loss over the acquiring runs (a run not lost within its budget counts as +inf, so the median
//! is "beyond the budget" when most are not lost; runs never acquiring have no time of loss).

use crate::analysis::{analyze_run, Class, RunAnalysis, Thresholds};
use crate::params::C11Params;
use crate::Run;
use anyhow::{ensure, Result};
use icl_claim::claim::Check;
use icl_claim::claim::{Claim, Verdict};
use icl_claim::ladder::Rungs;
use icl_claim::stage::{ClaimAnalysis, PaperClaim};
use icl_claim::stats::{bootstrap, finite, linear_fit, median, percentile_interval};
use icl_claim::stats::{ranks, spearman};
use icl_plot::{color, Axis, Figure, Layer, Legend, Marker, Panel, GREY};
use icl_store::task::TaskSpec;
use serde::Serialize;
use serde_json::json;

pub const STATEMENT: &str = "The time at which ICL is lost shrinks as the weight decay on the attention grows; too much decay prevents ICL altogether.";
pub const PAPER_VALUE: &str = "N = 100, K = 15000, attention wd = 20 log-spaced values 1e-3..1e-2, 10000 epochs: time to lose ICL decreases with wd (Fig A6)";

#[derive(Debug, Clone, Serialize)]
pub struct WdStats {
    pub wd_attn: f64,
    pub runs: usize,
    pub acquired: usize,
    pub lost: usize,
    /// Median time of loss over acquiring runs (None when beyond the budget or none acquired).
    pub median_t_loss: Option<f64>,
    pub t_loss: Vec<Option<f64>>,
    pub peak_icl_acc: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct C11Analysis {
    pub runs: Vec<Run>,
    pub per_run: Vec<RunAnalysis>,
    pub per_wd: Vec<WdStats>,
    pub spearman: f64,
    /// Slope of ln(median time of loss) against ln(wd) over the decay values with a median.
    pub loglog_slope: f64,
    pub slope_low: f64,
    pub slope_high: f64,
    /// Per run: the thresholds used (acquire, lose).
    pub thresholds: Vec<Thresholds>,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
}

pub fn analyze(runs: Vec<Run>, p: &C11Params) -> Result<C11Analysis> {
    ensure!(!runs.is_empty(), "no runs given");
    let thresholds = crate::c10::run_thresholds(&runs, p.acquire_threshold, p.lose_threshold);
    let per_run: Vec<RunAnalysis> = runs
        .iter()
        .zip(&thresholds)
        .map(|(r, th)| analyze_run(&r.curve, *th))
        .collect();
    let ns: Vec<u64> = runs.iter().map(|r| r.n).collect();
    let lose = crate::c10::lose_summary(&thresholds);
    let mut wds: Vec<f64> = runs.iter().map(|r| r.wd_attn).collect();
    wds.sort_by(f64::total_cmp);
    wds.dedup();
    // Time of loss of an acquiring run; +inf when not lost within its budget.
    let t_of = |a: &RunAnalysis| -> Option<f64> {
        match a.class {
            Class::NoIcl => None,
            _ => Some(a.t_loss.unwrap_or(f64::INFINITY)),
        }
    };
    let mut per_wd = Vec::new();
    let mut groups: Vec<Vec<f64>> = Vec::new();
    for &wd in &wds {
        let idx: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].wd_attn == wd).collect();
        let t: Vec<f64> = idx.iter().filter_map(|&i| t_of(&per_run[i])).collect();
        per_wd.push(WdStats {
            wd_attn: wd,
            runs: idx.len(),
            acquired: t.len(),
            lost: t.iter().filter(|v| v.is_finite()).count(),
            median_t_loss: finite(median(&t)),
            t_loss: idx.iter().map(|&i| per_run[i].t_loss).collect(),
            peak_icl_acc: idx.iter().map(|&i| per_run[i].peak_icl_acc).collect(),
        });
        groups.push(t);
    }
    // Spearman over acquiring runs; not-lost runs (+inf) tie above every lost run.
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (r, a) in runs.iter().zip(&per_run) {
        if let Some(t) = t_of(a) {
            xs.push(r.wd_attn);
            ys.push(if t.is_finite() { t } else { f64::MAX });
        }
    }
    let rho = spearman(&xs, &ys);
    // Log-log slope of the medians, with a bootstrap over seeds within each decay value.
    let fit_on = |g: &[Vec<f64>]| -> Option<f64> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (wd, t) in wds.iter().zip(g) {
            let m = median(t);
            if m.is_finite() && m > 0.0 {
                x.push(wd.ln());
                y.push(m.ln());
            }
        }
        (x.len() >= 2)
            .then(|| linear_fit(&x, &y).map(|f| f.slope))
            .flatten()
    };
    let loglog_slope = fit_on(&groups).unwrap_or(f64::NAN);
    // With one run per decay value resampling changes nothing: no interval rather than a
    // zero-width one.
    let (slope_low, slope_high) = if groups.iter().any(|g| g.len() >= 2) {
        let draws = bootstrap(&groups, p.n_boot, p.bootstrap_seed, |g| fit_on(g));
        if draws.len() >= 2 {
            percentile_interval(&draws, 0.95)
        } else {
            (f64::NAN, f64::NAN)
        }
    } else {
        (f64::NAN, f64::NAN)
    };

    let with_loss = per_wd.iter().filter(|s| s.lost > 0).count();
    let largest_acquiring = per_wd
        .iter()
        .filter(|s| s.acquired > 0)
        .map(|s| s.wd_attn)
        .fold(f64::NEG_INFINITY, f64::max);
    let prevented: Vec<f64> = per_wd
        .iter()
        .filter(|s| s.acquired == 0 && s.wd_attn > largest_acquiring)
        .map(|s| s.wd_attn)
        .collect();
    let checks = vec![
        Check {
            name: "loss_at_several_decays".into(),
            pass: with_loss >= p.min_wd_values,
            value: Some(with_loss as f64),
            rule: format!("at least {} wd_attn values with a run that acquires ICL (accuracy >= {}) and loses it (< {})", p.min_wd_values, p.acquire_threshold, lose.0),
        },
        Check {
            name: "loss_time_decreases".into(),
            pass: rho <= p.max_spearman,
            value: finite(rho),
            rule: format!("Spearman correlation of wd_attn with the time of loss over acquiring runs <= {} (runs not lost within the budget rank last)", p.max_spearman),
        },
        Check {
            name: "too_much_decay_prevents_icl".into(),
            pass: !prevented.is_empty() && largest_acquiring.is_finite(),
            value: prevented.first().copied(),
            rule: "some wd_attn above every acquiring value has no run acquiring ICL (value = the smallest such wd_attn)".into(),
        },
        icl_claim::floor::floor_check("acquisition", p.acquire_threshold, &ns),
        crate::c10::loss_floor_check(&runs, &thresholds),
    ];
    let floors_ok = checks[3].pass && checks[4].pass;
    let core = checks[0].pass && checks[1].pass;
    let all = checks.iter().all(|c| c.pass);
    let testable = wds.len() >= p.min_wd_values && floors_ok;
    Ok(C11Analysis {
        runs,
        per_run,
        per_wd,
        spearman: rho,
        thresholds,
        loglog_slope,
        slope_low,
        slope_high,
        checks,
        verdict: Verdict::from_checks_if(testable, core, all),
    })
}

impl ClaimAnalysis<C11Params> for C11Analysis {
    fn claim(&self, p: &C11Params) -> Claim {
        let details = json!({
            "thresholds": {"acquire": p.acquire_threshold, "lose": crate::c10::lose_summary(&self.thresholds).0, "lose_source": if p.lose_threshold.is_some() { "set in the pipeline" } else { "per run: halfway between the acquisition threshold and the label-count floor of its N" }},
            "count_floor": crate::c10::count_floors(&self.runs),
            "per_wd": self.per_wd,
            "runs": self.per_run,
            "spearman_wd_vs_t_loss": finite(self.spearman),
            "loglog_slope_median_t_loss_vs_wd": finite(self.loglog_slope),
            "slope_interval_95": [finite(self.slope_low), finite(self.slope_high)],
            "bootstrap": {"n_boot": p.n_boot, "seed": p.bootstrap_seed, "method": "resample seeds within each wd_attn, percentile interval of the log-log slope of the medians; null when every decay value has a single acquiring run"},
            "theory": "after acquisition w tracks w_tr with w_tr e^(w_tr) = c3/lambda, so ICL fades once the memorizing MLP has pushed c3 down to ~ lambda w* e^(w*): earlier for larger lambda",
            "checks": self.checks,
            "verdict_rule": "reproduced: all checks pass; partly: the loss time decreases over enough decay values but no value prevents ICL; not reproduced: too few decay values show a loss, or the loss time does not decrease; inconclusive: fewer wd_attn values than min_wd_values, or a threshold within 0.05 of the count floor",
        });
        Claim {
            claim: "C11".into(),
            figure: "Fig A6".into(),
            statement: STATEMENT.into(),
            paper_value: PAPER_VALUE.into(),
            value: self.loglog_slope,
            low: self.slope_low,
            high: self.slope_high,
            unit: "d ln(median time of loss) / d ln(wd_attn)".into(),
            profile: p.profile.clone(),
            verdict: self.verdict,
            n_runs: self.runs.len() as i64,
            details: details.to_string(),
        }
    }

    fn figure(&self, p: &C11Params) -> Figure {
        let budget = self
            .per_run
            .iter()
            .map(|a| a.last_iteration)
            .fold(0.0f64, f64::max)
            .max(1.0);
        let mut tl = Panel::new(
            "(A6) time of ICL loss vs attention weight decay",
            Axis::log10("wd_attn"),
            Axis::log10("iteration of loss"),
        )
        .legend(Legend::UpperRight);
        let (mut lost, mut kept, mut never) = (Vec::new(), Vec::new(), Vec::new());
        for (r, a) in self.runs.iter().zip(&self.per_run) {
            match (a.class, a.t_loss) {
                (Class::Transient, Some(t)) => lost.push((r.wd_attn, t)),
                (Class::NotTransient, _) => kept.push((r.wd_attn, budget)),
                _ => never.push((r.wd_attn, budget)),
            }
        }
        tl.push(Layer::points(lost).color(color(0)).label("lost (per run)"));
        let med: Vec<(f64, f64)> = self
            .per_wd
            .iter()
            .filter_map(|s| s.median_t_loss.map(|m| (s.wd_attn, m)))
            .collect();
        tl.push(
            Layer::line(med)
                .color(color(0))
                .label("median over acquiring runs"),
        );
        tl.push(
            Layer::points(kept)
                .color(color(2))
                .marker(Marker::Triangle)
                .size(5)
                .label("acquired, not lost (at budget)"),
        );
        tl.push(
            Layer::points(never)
                .color(color(3))
                .marker(Marker::Cross)
                .size(5)
                .label("never acquired (at budget)"),
        );
        tl.push(
            Layer::hline(budget)
                .color(GREY)
                .dashed()
                .label("training budget"),
        );

        let mut curves = Panel::new(
            "ICL accuracy by wd_attn",
            Axis::linear("iteration"),
            Axis::linear("ICL test accuracy").range(0.4, 1.02),
        )
        .legend(Legend::LowerLeft);
        let wds: Vec<f64> = self.per_wd.iter().map(|s| s.wd_attn).collect();
        let rank = ranks(&wds);
        let mut labelled = vec![false; wds.len()];
        for r in &self.runs {
            let k = wds.iter().position(|&w| w == r.wd_attn).unwrap_or(0);
            let c = &r.curve;
            let pts: Vec<(f64, f64)> = c
                .iteration
                .iter()
                .zip(&c.icl_acc)
                .filter(|(_, y)| y.is_finite())
                .map(|(x, y)| (*x, *y))
                .collect();
            let mut l = Layer::line(pts).color(color(rank[k] as usize - 1));
            if !labelled[k] {
                l = l.label(format!("wd = {}", icl_plot::format_number(r.wd_attn)));
                labelled[k] = true;
            }
            curves.push(l);
        }
        curves.push(Layer::hline(p.acquire_threshold).color(GREY).dashed());
        curves.push(Layer::hline(crate::c10::lose_summary(&self.thresholds).1).color(GREY));
        Figure::new(format!(
            "C11 (Fig A6): ICL is lost sooner with more attention decay [{}; verdict: {}]",
            p.profile,
            self.verdict.as_str()
        ))
        .panel(tl)
        .panel(curves)
    }
}

/// C11 as a stage command (curves + summaries over wd_attn).
pub struct C11;

impl PaperClaim for C11 {
    const COMMAND: &'static str = "c11";
    type Params = C11Params;
    type Analysis = C11Analysis;
    fn analyze(task: &TaskSpec, p: &C11Params) -> Result<Rungs<C11Analysis>> {
        Ok(Rungs::Whole(analyze(crate::read_runs(task)?, p)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Curve;
    use icl_claim::params::check;

    /// ICL rises at iteration 1000 and falls at `loss` (None: never lost); `acquire = false`
    /// never passes 0.9.
    fn run(wd: f64, loss: Option<usize>, acquire: bool) -> Run {
        let mut c = Curve {
            label: format!("wd={wd}"),
            ..Default::default()
        };
        for i in 0..100 {
            let it = i * 100;
            let icl = if !acquire {
                0.7
            } else if it < 1000 {
                0.5
            } else if loss.is_some_and(|l| it >= l) {
                0.52
            } else {
                0.97
            };
            c.iteration.push(it as f64);
            c.icl_acc.push(icl);
            c.iwl_acc.push(0.5 + 0.005 * i as f64);
            c.icl_loss.push(1.0 - icl);
            c.iwl_loss.push(1.0 - 0.5 - 0.005 * i as f64 + 0.01);
            c.c3.push(1.0);
        }
        Run {
            curve: c,
            wd_attn: wd,
            seed: 0.0,
            n: 100,
        }
    }

    #[test]
    fn decreasing_loss_time_with_a_prevented_value_reproduces() {
        let p: C11Params = check(&serde_json::json!({"profile": "t", "n_boot": 50})).unwrap();
        let runs = vec![
            run(0.01, None, true),
            run(0.02, Some(8000), true),
            run(0.02, Some(7000), true),
            run(0.03, Some(5000), true),
            run(0.04, Some(3000), true),
            run(0.08, None, false),
        ];
        let a = analyze(runs, &p).unwrap();
        assert_eq!(a.verdict, Verdict::Reproduced, "{:?}", a.checks);
        assert!(a.loglog_slope < 0.0);
        assert_eq!(a.per_wd[1].median_t_loss, Some(7500.0));
        assert_eq!(
            a.per_wd[0].median_t_loss, None,
            "not lost: beyond the budget"
        );
        assert_eq!(a.checks[2].value, Some(0.08));
        let dir = tempfile::tempdir().unwrap();
        a.figure(&p)
            .save(&dir.path().join("f.png"), &dir.path().join("f.svg"))
            .unwrap();
    }

    #[test]
    fn increasing_loss_time_is_not_reproduced() {
        let p: C11Params = check(&serde_json::json!({"profile": "t", "n_boot": 50})).unwrap();
        let runs = vec![
            run(0.02, Some(3000), true),
            run(0.03, Some(5000), true),
            run(0.04, Some(8000), true),
        ];
        let a = analyze(runs, &p).unwrap();
        assert_eq!(a.verdict, Verdict::Not);
        assert!(a.spearman > 0.9);
        assert!(!a.checks[2].pass, "no value prevents ICL");
    }

    #[test]
    fn too_few_values_is_inconclusive() {
        let p: C11Params = check(&serde_json::json!({"profile": "t", "n_boot": 50})).unwrap();
        let a = analyze(
            vec![run(0.02, Some(3000), true), run(0.03, Some(2000), true)],
            &p,
        )
        .unwrap();
        assert_eq!(a.verdict, Verdict::Inconclusive);
    }
}
