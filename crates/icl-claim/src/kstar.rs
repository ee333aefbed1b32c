//! K*, the paper's central number, defined once for every claim that reports it (C1, C3, C6,
//! C13): K* = 10^b of the sigmoid of [`crate::sigmoid`] fitted to final ICL accuracy against
//! x = log10 K, every run a point. A K* is valid only when the fit brackets a transition: at
//! least 3 distinct K, the midpoint strictly inside the swept K range (a midpoint on a bound
//! is not a measurement), and an amplitude d of at least `min_rise`.

use crate::sigmoid::{fit_sigmoid, SigmoidBounds, SigmoidFit};

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

/// The smallest sigmoid amplitude d that counts as a transition: the default of every claim's
/// `min_rise` (final ICL accuracy rises by ~0.5 across a real transition).
pub fn d_min_rise() -> f64 {
    0.2
}

impl Default for KstarSettings {
    fn default() -> Self {
        Self {
            min_rise: d_min_rise(),
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
    let Some(fit) = fit_sigmoid(&x, &y, bounds) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigmoid::logistic;
    use rand::{Rng, SeedableRng};

    /// Runs whose ICL accuracy jumps from ~0.5 to ~1 around K* (a steep logistic in log10 K plus
    /// seed noise), on a log-spaced K grid.
    pub fn sweep(kstar: f64, seeds: u64, seed: u64) -> Vec<Point> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut pts = Vec::new();
        for i in 0..12 {
            let k = 10f64.powf(2.0 + 2.0 * i as f64 / 11.0);
            for _ in 0..seeds {
                let p = logistic(8.0 * (k.log10() - kstar.log10()));
                pts.push((k, 0.5 + 0.5 * p + rng.random_range(-0.03..0.03)));
            }
        }
        pts
    }

    #[test]
    fn kstar_of_a_known_transition() {
        let f = fit_kstar(&sweep(1500.0, 3, 1), KstarSettings::default());
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
        assert!(!fit_kstar(&flat, KstarSettings::default()).valid);
        // Transition below the K range: every run is on the ICL plateau.
        let f = fit_kstar(&sweep(30.0, 2, 2), KstarSettings::default());
        assert!(!f.valid, "{f:?}");
        let two: Vec<Point> = vec![(100.0, 0.5), (100.0, 0.5), (1000.0, 1.0), (1000.0, 1.0)];
        assert!(!fit_kstar(&two, KstarSettings::default()).valid);
    }
}
