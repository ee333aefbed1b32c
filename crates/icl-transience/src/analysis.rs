//! Per-run transience analysis of one learning curve, and the theory's post-acquisition relation.
//!
//! Definitions (thresholds are parameters; defaults stated in [`Thresholds`]):
//! - acquisition: the first evaluation with ICL accuracy >= `acquire` (default 0.9);
//! - peak: the highest ICL accuracy and the first evaluation reaching it;
//! - time of loss: the first evaluation AFTER acquisition with ICL accuracy < `lose` (default:
//!   halfway between `acquire` and the label-count floor of the run's N,
//!   [`icl_claim::floor::lose_threshold`]: a run that falls back to counting has lost ICL);
//! - class: `transient` (acquired, then lost), `not transient` (acquired, never lost within the
//!   run), `no ICL` (never acquired), the paper's three outcomes of Fig 2e / A6.
//!
//! The theory (paper.md, Theory, transience): with L2 strength lambda on the ICL pathway only,
//! after acquisition w tracks w_tr with w_tr e^(w_tr) = c3 / lambda, the ICL loss is ~ e^(-w) and
//! the IWL loss is ~ c3. So the predicted ICL loss from a measured c3 is
//! e^(-W(a c3 / lambda)) = W(x) / x with x = a c3 / lambda (W: Lambert's principal branch) and a
//! an O(1) constant the "~" hides (a = 1 is the bare prediction; [`fit_relation`] also fits a).

use anyhow::{ensure, Context, Result};
use icl_claim::frame::{column_names, f64s};
use icl_claim::stats::spearman;
use polars::prelude::DataFrame;
use serde::Serialize;

/// Accuracy thresholds of the per-run analysis.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    /// ICL counts as acquired at the first evaluation with accuracy >= this (default 0.9).
    pub acquire: f64,
    /// ICL counts as lost at the first evaluation after acquisition with accuracy < this.
    pub lose: f64,
}

impl Thresholds {
    /// The thresholds for a run with context length `n`: `lose` as set, or by default halfway
    /// between `acquire` and the count floor of `n`.
    pub fn for_n(acquire: f64, lose: Option<f64>, n: u64) -> Self {
        Self {
            acquire,
            lose: lose.unwrap_or_else(|| icl_claim::floor::lose_threshold(acquire, n)),
        }
    }
}

/// One learning curve (the `curve` artifact's columns this crate uses).
#[derive(Debug, Clone, Default)]
pub struct Curve {
    pub label: String,
    pub iteration: Vec<f64>,
    pub icl_acc: Vec<f64>,
    pub iwl_acc: Vec<f64>,
    pub icl_loss: Vec<f64>,
    pub iwl_loss: Vec<f64>,
    /// The theory's c3 = <exp(-phi+)>, the in-weights margin the network applies to training
    /// items: the curve's `c3`, from the whole network's logits on the IWL test (the query is
    /// unmatched there, so the attention output carries no label information). NaN if absent.
    pub c3: Vec<f64>,
}

impl Curve {
    pub fn from_frame(df: &DataFrame, label: impl Into<String>) -> Result<Self> {
        for c in ["iteration", "icl_acc", "iwl_acc", "icl_loss", "iwl_loss"] {
            ensure!(
                df.column(c).is_ok(),
                "curve lacks column `{c}` (have: {})",
                column_names(df)
            );
        }
        let c3 = if df.column("c3").is_ok() {
            f64s(df, "c3")?
        } else {
            vec![f64::NAN; df.height()]
        };
        let c = Curve {
            label: label.into(),
            iteration: f64s(df, "iteration")?,
            icl_acc: f64s(df, "icl_acc")?,
            iwl_acc: f64s(df, "iwl_acc")?,
            icl_loss: f64s(df, "icl_loss")?,
            iwl_loss: f64s(df, "iwl_loss")?,
            c3,
        };
        ensure!(!c.is_empty(), "curve has no rows");
        ensure!(
            c.iteration.windows(2).all(|w| w[1] > w[0]),
            "curve iterations must increase row by row"
        );
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.iteration.len()
    }

    pub fn is_empty(&self) -> bool {
        self.iteration.is_empty()
    }

    /// Read one curve artifact.
    pub fn read(path: &std::path::Path, label: impl Into<String>) -> Result<Self> {
        let df = icl_claim::frame::read_df(path)?;
        Self::from_frame(&df, label).with_context(|| format!("curve {}", path.display()))
    }
}

/// The three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Class {
    #[serde(rename = "transient")]
    Transient,
    #[serde(rename = "not transient")]
    NotTransient,
    #[serde(rename = "no ICL")]
    NoIcl,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Transient => "transient",
            Class::NotTransient => "not transient",
            Class::NoIcl => "no ICL",
        }
    }
}

/// The per-run numbers.
#[derive(Debug, Clone, Serialize)]
pub struct RunAnalysis {
    pub label: String,
    pub class: Class,
    /// Iteration of acquisition (None: never).
    pub t_acquire: Option<f64>,
    pub peak_icl_acc: f64,
    pub t_peak: f64,
    /// Iteration of loss (None: not lost within the run, or never acquired).
    pub t_loss: Option<f64>,
    /// Last evaluated iteration (the budget a not-lost run is censored at).
    pub last_iteration: f64,
    pub final_icl_acc: f64,
    pub final_iwl_acc: f64,
    /// IWL accuracy at acquisition and at the loss (or at the end when not lost).
    pub iwl_acc_at_acquire: Option<f64>,
    pub iwl_acc_at_loss_or_end: Option<f64>,
    /// `iwl_acc_at_loss_or_end - iwl_acc_at_acquire`: > 0 when IWL rose while ICL faded.
    pub iwl_rise: Option<f64>,
    #[serde(skip)]
    pub acquire_index: Option<usize>,
}

/// Analyze one curve.
pub fn analyze_run(c: &Curve, th: Thresholds) -> RunAnalysis {
    let n = c.len();
    let acq = c.icl_acc.iter().position(|&a| a >= th.acquire);
    let (mut pk, mut pv) = (0usize, f64::NEG_INFINITY);
    for (i, &a) in c.icl_acc.iter().enumerate() {
        if a > pv {
            (pk, pv) = (i, a);
        }
    }
    let loss = acq.and_then(|a| (a + 1..n).find(|&i| c.icl_acc[i] < th.lose));
    let class = match (acq, loss) {
        (None, _) => Class::NoIcl,
        (Some(_), Some(_)) => Class::Transient,
        (Some(_), None) => Class::NotTransient,
    };
    let iwl_a = acq.map(|i| c.iwl_acc[i]).filter(|v| v.is_finite());
    let end = loss.unwrap_or(n - 1);
    let iwl_e = acq.map(|_| c.iwl_acc[end]).filter(|v| v.is_finite());
    RunAnalysis {
        label: c.label.clone(),
        class,
        t_acquire: acq.map(|i| c.iteration[i]),
        peak_icl_acc: pv,
        t_peak: c.iteration[pk],
        t_loss: loss.map(|i| c.iteration[i]),
        last_iteration: c.iteration[n - 1],
        final_icl_acc: c.icl_acc[n - 1],
        final_iwl_acc: c.iwl_acc[n - 1],
        iwl_acc_at_acquire: iwl_a,
        iwl_acc_at_loss_or_end: iwl_e,
        iwl_rise: match (iwl_a, iwl_e) {
            (Some(a), Some(e)) => Some(e - a),
            _ => None,
        },
        acquire_index: acq,
    }
}

/// Lambert W, principal branch, for x >= 0 (w e^w = x; the `lambert_w` crate, 50 bits);
/// NaN for negative or NaN x.
pub fn lambert_w(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    lambert_w::lambert_w0(x)
}

/// The theory's ICL loss at a given c3: e^(-W(a c3 / lambda)).
pub fn predicted_icl_loss(c3: f64, lambda: f64, a: f64) -> f64 {
    (-lambert_w(a * c3 / lambda)).exp()
}

/// One post-acquisition evaluation of one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RelationPoint {
    pub run: usize,
    pub iteration: f64,
    pub icl_loss: f64,
    pub iwl_loss: f64,
    pub c3: f64,
    pub lambda: f64,
}

/// The post-acquisition points of a run (from acquisition to the end, finite losses and c3 > 0).
pub fn relation_points(run: usize, c: &Curve, a: &RunAnalysis, lambda: f64) -> Vec<RelationPoint> {
    let Some(start) = a.acquire_index else {
        return Vec::new();
    };
    (start..c.len())
        .filter(|&i| {
            c.icl_loss[i].is_finite()
                && c.icl_loss[i] > 0.0
                && c.iwl_loss[i].is_finite()
                && c.iwl_loss[i] > 0.0
        })
        .filter(|&i| c.c3[i].is_finite() && c.c3[i] > 0.0)
        .map(|i| RelationPoint {
            run,
            iteration: c.iteration[i],
            icl_loss: c.icl_loss[i],
            iwl_loss: c.iwl_loss[i],
            c3: c.c3[i],
            lambda,
        })
        .collect()
}

/// How well the theory's relation describes the points (all in ln ICL loss).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RelationFit {
    pub points: usize,
    /// R^2 of ln(ICL loss) against the bare prediction (a = 1); may be negative.
    pub r2_bare: f64,
    /// The fitted constant a (least squares in ln ICL loss) and its R^2.
    pub a_fit: f64,
    pub r2_fit: f64,
    /// Spearman rank correlation of ICL loss with IWL loss (theory: negative, Fig 6d).
    pub spearman_icl_iwl: f64,
    /// Spearman rank correlation of ICL loss with c3 (theory: negative).
    pub spearman_icl_c3: f64,
    /// Least-squares slope of ln ICL loss against ln IWL loss (theory: -w/(1+w), in (-1, 0)).
    pub loglog_slope_icl_vs_iwl: f64,
    /// Median of IWL loss / c3 (theory: ~1 once the MLP dominates the unmatched output).
    pub median_iwl_over_c3: f64,
}

fn r2_of(points: &[RelationPoint], a: f64) -> f64 {
    let y: Vec<f64> = points.iter().map(|p| p.icl_loss.ln()).collect();
    let my = y.iter().sum::<f64>() / y.len() as f64;
    let sst: f64 = y.iter().map(|v| (v - my).powi(2)).sum();
    let sse: f64 = points
        .iter()
        .zip(&y)
        .map(|(p, v)| (v - predicted_icl_loss(p.c3, p.lambda, a).ln()).powi(2))
        .sum();
    if sst > 0.0 {
        1.0 - sse / sst
    } else {
        f64::NAN
    }
}

/// Fit the theory's one constant and summarize the relation; None below 3 points.
pub fn fit_relation(points: &[RelationPoint]) -> Option<RelationFit> {
    if points.len() < 3 {
        return None;
    }
    // Golden-section search for ln a over [-25, 25]: the SSE is smooth and unimodal in ln a
    // (the prediction is monotone in a at every point).
    let sse = |la: f64| -> f64 {
        points
            .iter()
            .map(|p| (p.icl_loss.ln() - predicted_icl_loss(p.c3, p.lambda, la.exp()).ln()).powi(2))
            .sum()
    };
    let (mut lo, mut hi) = (-25.0f64, 25.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut fc, mut fd) = (sse(c), sse(d));
    for _ in 0..200 {
        if fc < fd {
            hi = d;
            (d, fd) = (c, fc);
            c = hi - g * (hi - lo);
            fc = sse(c);
        } else {
            lo = c;
            (c, fc) = (d, fd);
            d = lo + g * (hi - lo);
            fd = sse(d);
        }
        if hi - lo < 1e-10 {
            break;
        }
    }
    let a_fit = ((lo + hi) / 2.0).exp();
    let icl: Vec<f64> = points.iter().map(|p| p.icl_loss).collect();
    let iwl: Vec<f64> = points.iter().map(|p| p.iwl_loss).collect();
    let c3: Vec<f64> = points.iter().map(|p| p.c3).collect();
    let slope = icl_claim::stats::linear_fit(
        &iwl.iter().map(|v| v.ln()).collect::<Vec<_>>(),
        &icl.iter().map(|v| v.ln()).collect::<Vec<_>>(),
    )
    .map(|f| f.slope)
    .unwrap_or(f64::NAN);
    let ratio: Vec<f64> = iwl.iter().zip(&c3).map(|(a, b)| a / b).collect();
    Some(RelationFit {
        points: points.len(),
        r2_bare: r2_of(points, 1.0),
        a_fit,
        r2_fit: r2_of(points, a_fit),
        spearman_icl_iwl: spearman(&icl, &iwl),
        spearman_icl_c3: spearman(&icl, &c3),
        loglog_slope_icl_vs_iwl: slope,
        median_iwl_over_c3: icl_claim::stats::median(&ratio),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TH: Thresholds = Thresholds {
        acquire: 0.9,
        lose: 0.6,
    };

    fn curve(icl: &[f64], iwl: &[f64]) -> Curve {
        let n = icl.len();
        Curve {
            label: "t".into(),
            iteration: (0..n).map(|i| (i * 100) as f64).collect(),
            icl_acc: icl.to_vec(),
            iwl_acc: iwl.to_vec(),
            icl_loss: icl.iter().map(|a| 1.0 - a + 0.01).collect(),
            iwl_loss: iwl.iter().map(|a| 1.0 - a + 0.01).collect(),
            c3: iwl.iter().map(|a| 1.0 - a + 0.01).collect(),
        }
    }

    #[test]
    fn transient_run() {
        let c = curve(
            &[0.5, 0.7, 0.95, 0.97, 0.8, 0.55, 0.52],
            &[0.5, 0.55, 0.55, 0.6, 0.8, 0.95, 1.0],
        );
        let a = analyze_run(&c, TH);
        assert_eq!(a.class, Class::Transient);
        assert_eq!(a.t_acquire, Some(200.0));
        assert_eq!(a.t_loss, Some(500.0));
        assert_eq!((a.peak_icl_acc, a.t_peak), (0.97, 300.0));
        assert!((a.iwl_rise.unwrap() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn dip_before_acquisition_is_not_a_loss() {
        // Below 0.6 before acquisition and never again after: acquired, not transient.
        let c = curve(&[0.5, 0.55, 0.92, 0.75, 0.99], &[0.5; 5]);
        let a = analyze_run(&c, TH);
        assert_eq!(a.class, Class::NotTransient);
        assert_eq!(a.t_loss, None);
        assert_eq!(a.final_icl_acc, 0.99);
    }

    #[test]
    fn never_acquired() {
        let c = curve(&[0.5, 0.64, 0.89, 0.52], &[0.5, 0.9, 1.0, 1.0]);
        let a = analyze_run(&c, TH);
        assert_eq!(a.class, Class::NoIcl);
        assert_eq!((a.t_acquire, a.t_loss, a.iwl_rise), (None, None, None));
        assert_eq!(a.peak_icl_acc, 0.89);
    }

    #[test]
    fn thresholds_are_parameters() {
        let c = curve(&[0.5, 0.85, 0.65, 0.55], &[0.5; 4]);
        assert_eq!(analyze_run(&c, TH).class, Class::NoIcl);
        let a = analyze_run(
            &c,
            Thresholds {
                acquire: 0.8,
                lose: 0.7,
            },
        );
        assert_eq!((a.class, a.t_loss), (Class::Transient, Some(200.0)));
    }

    #[test]
    fn lambert_w_inverts_w_exp_w() {
        for &x in &[
            1e-9,
            1e-3,
            0.3,
            1.0,
            std::f64::consts::E,
            10.0,
            1e3,
            1e8,
            1e300,
        ] {
            let w = lambert_w(x);
            let back = w * w.exp();
            // The crate's 50 bits are absolute near 0 (W(x) ~ x there): 1e-15 absolute suffices
            // for the relation, whose arguments a c3 / lambda are O(1) and larger.
            assert!(
                (back - x).abs() <= 1e-10 * x + 1e-15,
                "x {x} w {w} back {back}"
            );
        }
        assert_eq!(lambert_w(0.0), 0.0);
        assert!((lambert_w(std::f64::consts::E) - 1.0).abs() < 1e-14);
        assert!(lambert_w(-1.0).is_nan());
    }

    #[test]
    fn relation_fit_recovers_the_constant() {
        // Synthetic post-acquisition points that obey the theory with a = 3.
        let lambda = 0.01;
        let pts: Vec<RelationPoint> = (0..40)
            .map(|i| {
                let c3 = 10f64.powf(1.0 - i as f64 / 10.0);
                RelationPoint {
                    run: 0,
                    iteration: i as f64,
                    icl_loss: predicted_icl_loss(c3, lambda, 3.0),
                    iwl_loss: c3,
                    c3,
                    lambda,
                }
            })
            .collect();
        let f = fit_relation(&pts).unwrap();
        assert!((f.a_fit - 3.0).abs() < 1e-4, "{}", f.a_fit);
        assert!(f.r2_fit > 0.999999);
        assert!(f.r2_bare < f.r2_fit);
        assert!(
            (f.spearman_icl_iwl + 1.0).abs() < 1e-12,
            "ICL loss falls as IWL loss rises"
        );
        assert!(f.loglog_slope_icl_vs_iwl < 0.0 && f.loglog_slope_icl_vs_iwl > -1.0);
        assert!((f.median_iwl_over_c3 - 1.0).abs() < 1e-12);
        // Points unrelated to c3 are not explained.
        let flat: Vec<RelationPoint> = pts
            .iter()
            .enumerate()
            .map(|(i, p)| RelationPoint {
                icl_loss: 0.1 + 0.05 * ((i * 7) % 5) as f64,
                ..*p
            })
            .collect();
        assert!(fit_relation(&flat).unwrap().r2_fit < 0.3);
    }
}
