//! K* per group (e.g. per N) from final ICL accuracy over a K sweep, and the slope of log K*
//! against log N, with a seeded bootstrap over seeds.
//!
//! K* = 10^b of the reference's sigmoid f(x) = d / (1 + exp(-a (x - b))) + c fitted to final ICL
//! accuracy against x = log10 K, every run a point. A K* is valid only when the fit brackets a
//! transition: midpoint strictly inside the K range and an amplitude d of at least `min_rise`.

use crate::stats::{self, LineFit, SigmoidBounds, SigmoidFit};
use std::collections::BTreeMap;

/// One run's point: (K, final ICL accuracy).
pub type Point = (f64, f64);

/// Settings shared by all K* fits.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct KstarSettings {
    /// Smallest amplitude d that counts as a transition.
    pub min_rise: f64,
    /// Bounds on the sigmoid steepness a (per decade of K).
    pub a_min: f64,
    pub a_max: f64,
}

impl Default for KstarSettings {
    fn default() -> Self {
        Self {
            min_rise: 0.2,
            a_min: 0.3,
            a_max: 100.0,
        }
    }
}

/// A K* fit of one group.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KstarFit {
    pub kstar: f64,
    pub valid: bool,
    /// Why a fit is not valid (empty when valid).
    pub reason: String,
    pub fit: Option<SigmoidFit>,
    pub n_runs: usize,
    pub k_min: f64,
    pub k_max: f64,
}

/// Fit K* to the points of one group.
pub fn fit_kstar(points: &[Point], s: KstarSettings) -> KstarFit {
    let ks: Vec<f64> = points
        .iter()
        .map(|p| p.0)
        .filter(|k| k.is_finite() && *k > 0.0)
        .collect();
    let (k_min, k_max) = ks
        .iter()
        .fold((f64::INFINITY, 0f64), |(a, b), &k| (a.min(k), b.max(k)));
    let x: Vec<f64> = points.iter().map(|p| p.0.log10()).collect();
    let y: Vec<f64> = points.iter().map(|p| p.1).collect();
    let distinct = {
        let mut v: Vec<u64> = ks.iter().map(|k| k.round() as u64).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let invalid = |reason: String, fit: Option<SigmoidFit>| KstarFit {
        kstar: fit.map(|f| 10f64.powf(f.b)).unwrap_or(f64::NAN),
        valid: false,
        reason,
        fit,
        n_runs: points.len(),
        k_min,
        k_max,
    };
    if distinct < 3 {
        return invalid(format!("{distinct} distinct K values (need >= 3)"), None);
    }
    let bounds = SigmoidBounds {
        a: (s.a_min, s.a_max),
        b: (k_min.log10(), k_max.log10()),
    };
    let Some(fit) = stats::fit_sigmoid(&x, &y, bounds) else {
        return invalid("too few points for a sigmoid".into(), None);
    };
    if fit.b_at_bound {
        return invalid(
            "the transition is not inside the K range (midpoint at a bound)".into(),
            Some(fit),
        );
    }
    if fit.d < s.min_rise {
        return invalid(
            format!("no transition: rise d = {:.3} < {}", fit.d, s.min_rise),
            Some(fit),
        );
    }
    KstarFit {
        kstar: 10f64.powf(fit.b),
        valid: true,
        reason: String::new(),
        fit: Some(fit),
        n_runs: points.len(),
        k_min,
        k_max,
    }
}

/// Resample runs with replacement within each K value (a stratified bootstrap: the K grid is a
/// design choice, the seeds are the random part).
pub fn resample_within_k(rng: &mut rand_chacha::ChaCha8Rng, points: &[Point]) -> Vec<Point> {
    let mut by_k: BTreeMap<u64, Vec<Point>> = BTreeMap::new();
    for p in points {
        by_k.entry(p.0.to_bits()).or_default().push(*p);
    }
    by_k.values()
        .flat_map(|g| stats::resample(rng, g))
        .collect()
}

/// The scaling of K* with N.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScalingFit {
    /// (N, K* fit) for every group.
    pub per_n: Vec<(f64, KstarFit)>,
    /// Slope of log K* vs log N over the valid groups.
    pub line: Option<LineFit>,
    pub low: f64,
    pub high: f64,
    pub level: f64,
    /// Bootstrap replicates in which at least two groups gave a valid K*.
    pub n_boot_ok: usize,
    /// Per-N percentile interval of K* over the bootstrap (NaN where too few valid replicates).
    pub kstar_low: Vec<f64>,
    pub kstar_high: Vec<f64>,
}

/// Fit K* per N and the log-log slope; bootstrap over seeds within each (N, K) cell.
pub fn fit_scaling(
    groups: &BTreeMap<u64, Vec<Point>>,
    s: KstarSettings,
    n_boot: usize,
    seed: u64,
    level: f64,
) -> ScalingFit {
    let per_n: Vec<(f64, KstarFit)> = groups
        .iter()
        .map(|(n, pts)| (*n as f64, fit_kstar(pts, s)))
        .collect();
    let line = slope_of(
        &per_n
            .iter()
            .map(|(n, f)| (*n, f.valid.then_some(f.kstar)))
            .collect::<Vec<_>>(),
    );
    let mut rng = stats::rng(seed, 0x6b73); // "ks"
    let mut slopes = Vec::new();
    let mut ks: Vec<Vec<f64>> = vec![Vec::new(); per_n.len()];
    for _ in 0..n_boot {
        let mut row = Vec::new();
        for (i, (n, pts)) in groups.iter().enumerate() {
            let f = fit_kstar(&resample_within_k(&mut rng, pts), s);
            if f.valid {
                ks[i].push(f.kstar.log10());
            }
            row.push((*n as f64, f.valid.then_some(f.kstar)));
        }
        if let Some(l) = slope_of(&row) {
            slopes.push(l.slope);
        }
    }
    let (low, high) = if slopes.len() >= 20 {
        stats::percentile_interval(&slopes, level)
    } else {
        (f64::NAN, f64::NAN)
    };
    let iv = |v: &Vec<f64>, hi: bool| {
        if v.len() >= 20 {
            let (a, b) = stats::percentile_interval(v, level);
            10f64.powf(if hi { b } else { a })
        } else {
            f64::NAN
        }
    };
    ScalingFit {
        kstar_low: ks.iter().map(|v| iv(v, false)).collect(),
        kstar_high: ks.iter().map(|v| iv(v, true)).collect(),
        per_n,
        line,
        low,
        high,
        level,
        n_boot_ok: slopes.len(),
    }
}

/// log10 K* against log10 N over the groups with a K*.
pub fn slope_of(rows: &[(f64, Option<f64>)]) -> Option<LineFit> {
    let (x, y): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .filter_map(|(n, k)| k.map(|k| (n.log10(), k.log10())))
        .unzip();
    stats::ols(&x, &y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Runs whose ICL accuracy jumps from ~0.5 to ~1 around K* (a steep logistic in log10 K plus
    /// seed noise), on a log-spaced K grid.
    fn sweep(kstar: f64, seeds: u64, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<Point> {
        let mut pts = Vec::new();
        for i in 0..12 {
            let k = 10f64.powf(2.0 + 2.0 * i as f64 / 11.0);
            for _ in 0..seeds {
                let p = stats::sigmoid(8.0 * (k.log10() - kstar.log10()));
                pts.push((k, 0.5 + 0.5 * p + rng.random_range(-0.03..0.03)));
            }
        }
        pts
    }

    #[test]
    fn kstar_of_a_known_transition() {
        let mut r = stats::rng(1, 0);
        let f = fit_kstar(&sweep(1500.0, 3, &mut r), KstarSettings::default());
        assert!(f.valid, "{f:?}");
        assert!(
            (f.kstar.log10() - 1500f64.log10()).abs() < 0.03,
            "{}",
            f.kstar
        );
    }

    #[test]
    fn no_transition_or_outside_range_is_invalid() {
        let flat: Vec<Point> = (0..12)
            .map(|i| (10f64.powf(2.0 + i as f64 / 6.0), 0.5))
            .collect();
        let f = fit_kstar(&flat, KstarSettings::default());
        assert!(!f.valid);
        let mut r = stats::rng(2, 0);
        // Transition below the K range: every run is on the ICL plateau.
        let f = fit_kstar(&sweep(30.0, 2, &mut r), KstarSettings::default());
        assert!(!f.valid, "{f:?}");
        let two: Vec<Point> = vec![(100.0, 0.5), (100.0, 0.5), (1000.0, 1.0), (1000.0, 1.0)];
        assert!(!fit_kstar(&two, KstarSettings::default()).valid);
    }

    #[test]
    fn slope_of_power_law_with_interval() {
        // K* = 3 N^(1/0.7).
        let mut r = stats::rng(3, 0);
        let mut groups = BTreeMap::new();
        for n in [20u64, 28, 40, 56] {
            groups.insert(n, sweep(3.0 * (n as f64).powf(1.0 / 0.7), 3, &mut r));
        }
        let s = fit_scaling(&groups, KstarSettings::default(), 200, 4, 0.95);
        let line = s.line.unwrap();
        assert!((line.slope - 1.0 / 0.7).abs() < 0.1, "{line:?}");
        assert!(
            s.low < 1.0 / 0.7 && 1.0 / 0.7 < s.high,
            "{} {}",
            s.low,
            s.high
        );
        assert!(s.n_boot_ok > 150);
        for (i, (n, f)) in s.per_n.iter().enumerate() {
            assert!(f.valid);
            assert!(
                s.kstar_low[i] <= f.kstar * 1.05 && s.kstar_high[i] >= f.kstar * 0.95,
                "N={n}"
            );
        }
        // Deterministic.
        let t = fit_scaling(&groups, KstarSettings::default(), 200, 4, 0.95);
        assert_eq!((s.low, s.high), (t.low, t.high));
    }
}
