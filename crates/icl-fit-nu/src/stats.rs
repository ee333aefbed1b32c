//! Small numerical helpers: trapezoid integrals, least squares, quantiles, a seeded bootstrap and
//! the bounded sigmoid fit used for K*.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Trapezoid integral of `y` over `x` (same length, `x` non-decreasing).
pub fn trapz(x: &[f64], y: &[f64]) -> f64 {
    cumtrapz(x, y).last().copied().unwrap_or(0.0)
}

/// Running trapezoid integral: element `i` is the integral from `x[0]` to `x[i]` (so it starts at 0).
pub fn cumtrapz(x: &[f64], y: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), y.len(), "cumtrapz: x and y differ in length");
    let mut out = Vec::with_capacity(x.len());
    let mut acc = 0.0;
    for i in 0..x.len() {
        if i > 0 {
            acc += 0.5 * (x[i] - x[i - 1]) * (y[i] + y[i - 1]);
        }
        out.push(acc);
    }
    out
}

/// Value at `x` of the piecewise-linear interpolant through `(xs, ys)`; constant beyond the ends.
pub fn interp(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    debug_assert_eq!(xs.len(), ys.len());
    match xs.len() {
        0 => f64::NAN,
        1 => ys[0],
        n => {
            if x <= xs[0] {
                return ys[0];
            }
            if x >= xs[n - 1] {
                return ys[n - 1];
            }
            // First index with xs[i] > x; x lies in [xs[i-1], xs[i]).
            let i = xs.partition_point(|&v| v <= x);
            let (x0, x1, y0, y1) = (xs[i - 1], xs[i], ys[i - 1], ys[i]);
            if x1 > x0 {
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            } else {
                y1
            }
        }
    }
}

/// An ordinary least-squares line y = intercept + slope * x.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LineFit {
    pub slope: f64,
    pub intercept: f64,
    /// Standard error of the slope (NaN with fewer than 3 points).
    pub slope_se: f64,
    pub r2: f64,
    pub n: usize,
}

impl LineFit {
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// Least-squares line through the finite pairs; `None` with fewer than 2 of them or no spread in x.
pub fn ols(x: &[f64], y: &[f64]) -> Option<LineFit> {
    let pts = icl_claim::stats::finite_pairs(x, y);
    let n = pts.len();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 1e-300 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse: f64 = pts
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    let slope_se = if n > 2 {
        (sse / (nf - 2.0) / sxx).sqrt()
    } else {
        f64::NAN
    };
    let r2 = if syy > 0.0 { 1.0 - sse / syy } else { 1.0 };
    Some(LineFit {
        slope,
        intercept,
        slope_se,
        r2,
        n,
    })
}

/// Mean of the finite values (NaN if none).
pub fn mean(v: &[f64]) -> f64 {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() {
        f64::NAN
    } else {
        f.iter().sum::<f64>() / f.len() as f64
    }
}

/// Quantile by linear interpolation between order statistics (numpy's default, "type 7").
/// Infinite values take part (so censored times can sit above the median); NaN is dropped.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let h = (s.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let i = h.floor() as usize;
    let j = (i + 1).min(s.len() - 1);
    if h == i as f64 {
        return s[i];
    }
    s[i] + (h - i as f64) * (s[j] - s[i])
}

pub fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// Percentile interval of bootstrap replicates at confidence `level` (e.g. 0.95).
pub fn percentile_interval(samples: &[f64], level: f64) -> (f64, f64) {
    let a = (1.0 - level) / 2.0;
    (quantile(samples, a), quantile(samples, 1.0 - a))
}

/// A ChaCha8 generator for one named purpose: `stream` keeps the draws of different analyses
/// apart even when they share the seed parameter.
pub fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// `items.len()` draws with replacement.
pub fn resample<T: Clone>(rng: &mut ChaCha8Rng, items: &[T]) -> Vec<T> {
    (0..items.len())
        .map(|_| items[rng.random_range(0..items.len())].clone())
        .collect()
}

/// The logistic function (one definition: [`icl_claim::sigmoid::logistic`]).
pub use icl_claim::sigmoid::logistic as sigmoid;

/// Numerically safe log(1 + e^x).
pub fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x + (-x).exp()
    } else if x < -30.0 {
        x.exp()
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_is_exact_for_lines_and_converges_for_curves() {
        let x: Vec<f64> = (0..=10).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 * v + 1.0).collect();
        assert!((trapz(&x, &y) - 160.0).abs() < 1e-12);
        let c = cumtrapz(&x, &y);
        assert_eq!(c[0], 0.0);
        assert!((c[2] - 8.0).abs() < 1e-12);
        // integral of e^-x over [0, 5] with 1000 intervals: error ~ h^2/12 * (1 - e^-5)
        let x: Vec<f64> = (0..=1000).map(|i| i as f64 * 0.005).collect();
        let y: Vec<f64> = x.iter().map(|v| (-v).exp()).collect();
        assert!((trapz(&x, &y) - (1.0 - (-5f64).exp())).abs() < 3e-6);
    }

    #[test]
    fn interpolation_and_quantiles() {
        let xs = [0.0, 1.0, 3.0];
        let ys = [1.0, 3.0, -1.0];
        assert_eq!(interp(&xs, &ys, -1.0), 1.0);
        assert_eq!(interp(&xs, &ys, 0.5), 2.0);
        assert_eq!(interp(&xs, &ys, 2.0), 1.0);
        assert_eq!(interp(&xs, &ys, 9.0), -1.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), 2.0);
        // Censored runs (infinite time) count above the median.
        assert_eq!(median(&[1.0, f64::INFINITY, 2.0]), 2.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ols_recovers_a_line_and_its_uncertainty() {
        let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 - 0.5 * v).collect();
        let f = ols(&x, &y).unwrap();
        assert!((f.slope + 0.5).abs() < 1e-12 && (f.intercept - 2.0).abs() < 1e-12);
        assert!(f.slope_se < 1e-10 && (f.r2 - 1.0).abs() < 1e-12);
        // Noisy: slope within a few standard errors of the truth.
        let mut r = rng(1, 0);
        let y: Vec<f64> = x
            .iter()
            .map(|v| 1.0 + 0.7 * v + r.random_range(-1.0..1.0))
            .collect();
        let f = ols(&x, &y).unwrap();
        assert!((f.slope - 0.7).abs() < 4.0 * f.slope_se, "{f:?}");
        assert!(ols(&[1.0, 1.0], &[0.0, 1.0]).is_none());
        assert!(ols(&[1.0], &[0.0]).is_none());
    }

    #[test]
    fn resampling_is_seeded() {
        let v: Vec<u32> = (0..50).collect();
        let a = resample(&mut rng(7, 3), &v);
        let b = resample(&mut rng(7, 3), &v);
        let c = resample(&mut rng(7, 4), &v);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let (lo, hi) = percentile_interval(&(0..=100).map(f64::from).collect::<Vec<_>>(), 0.9);
        assert!(
            (lo - 5.0).abs() < 1e-9 && (hi - 95.0).abs() < 1e-9,
            "{lo} {hi}"
        );
    }

    #[test]
    fn safe_sigmoid_and_softplus() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(-800.0)).abs() < 1e-300 && sigmoid(800.0) == 1.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
        assert!((softplus(50.0) - 50.0).abs() < 1e-15);
        assert!((softplus(-50.0) - (-50f64).exp()).abs() < 1e-30);
        assert!(softplus(1000.0).is_finite());
    }
}
