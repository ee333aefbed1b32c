//! The one statistics module of the claim crates: quantiles that understand right-censoring
//! (+inf), moments, least squares, Wilson intervals, the bimodality coefficient, a stratified
//! bootstrap and seeded resampling, trapezoid integrals and interpolation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Quantile of sorted data (type 7; `+inf` entries, censored runs, sort last and make a
/// quantile that needs them `+inf`). Defined in icl-plot, which draws box plots with it.
pub use icl_plot::quantile_sorted;

/// Quantile of interval-censored times: run i's event happened somewhere in
/// (t_i - width_i, t_i] (it is first seen at the evaluation t_i, the previous one was width_i
/// earlier), taken as uniform there; +inf times (never seen) sit beyond every finite value.
/// Evaluations on a coarse grid make many t_i equal, and plain quantiles of tied data jump
/// (q90 = q50 exactly); this one is the quantile of the piecewise-linear CDF instead. With all
/// widths 0 it is the lower empirical quantile.
pub fn quantile_interval_censored(t: &[f64], width: &[f64], q: f64) -> f64 {
    let items: Vec<(f64, f64)> = t
        .iter()
        .zip(width)
        .filter(|(t, _)| !t.is_nan())
        .map(|(&t, &w)| (t, w.max(0.0)))
        .collect();
    let n = items.len();
    if n == 0 {
        return f64::NAN;
    }
    let finite: Vec<(f64, f64)> = items
        .iter()
        .copied()
        .filter(|(t, _)| t.is_finite())
        .collect();
    let q = q.clamp(0.0, 1.0);
    if finite.is_empty() || q * n as f64 > finite.len() as f64 {
        return f64::INFINITY;
    }
    let cdf = |x: f64| -> f64 {
        finite
            .iter()
            .map(|&(t, w)| {
                if w > 0.0 {
                    ((x - (t - w)) / w).clamp(0.0, 1.0)
                } else if x >= t {
                    1.0
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / n as f64
    };
    let mut lo = finite
        .iter()
        .map(|(t, w)| t - w)
        .fold(f64::INFINITY, f64::min);
    let mut hi = finite
        .iter()
        .map(|(t, _)| *t)
        .fold(f64::NEG_INFINITY, f64::max);
    // Bisection for the smallest x with F(x) >= q (F is monotone; 200 halvings reach f64
    // resolution on any range).
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if cdf(mid) >= q {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Quantile of unsorted data (NaN dropped).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, q)
}

pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Mean of all values (a non-finite value makes it non-finite; NaN when empty).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Mean of the finite values only (NaN when there are none).
pub fn mean_finite(values: &[f64]) -> f64 {
    let f: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    mean(&f)
}

/// Sample standard deviation (ddof = 1); NaN below two values.
pub fn std(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return f64::NAN;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
}

/// Bias-adjusted sample skewness G1 (what pandas' `skew` returns); NaN below three values or
/// with zero spread.
pub fn skewness(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 3 {
        return f64::NAN;
    }
    let m = mean(values);
    let m2 = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    let m3 = values.iter().map(|v| (v - m).powi(3)).sum::<f64>() / n;
    if m2 <= 0.0 {
        return f64::NAN;
    }
    let g1 = m3 / m2.powf(1.5);
    g1 * (n * (n - 1.0)).sqrt() / (n - 2.0)
}

/// Bias-adjusted sample excess kurtosis G2 (pandas' `kurt`); NaN below four values.
pub fn excess_kurtosis(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 4 {
        return f64::NAN;
    }
    let m = mean(values);
    let m2 = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    let m4 = values.iter().map(|v| (v - m).powi(4)).sum::<f64>() / n;
    if m2 <= 0.0 {
        return f64::NAN;
    }
    let g2 = m4 / (m2 * m2) - 3.0;
    ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
}

/// Sarle's sample bimodality coefficient (G1^2 + 1) / (G2 + 3 (n-1)^2 / ((n-2)(n-3))).
/// The uniform distribution gives 5/9; values above suggest two modes (or strong skew).
pub fn bimodality_coefficient(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 4 {
        return f64::NAN;
    }
    let g1 = skewness(values);
    let g2 = excess_kurtosis(values);
    (g1 * g1 + 1.0) / (g2 + 3.0 * (n - 1.0).powi(2) / ((n - 2.0) * (n - 3.0)))
}

/// Ordinary least squares y = slope x + intercept.
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

/// The (x, y) pairs where both are finite, in order: what every fit here runs on.
pub fn finite_pairs(x: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
    x.iter()
        .zip(y)
        .map(|(&a, &b)| (a, b))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect()
}

/// Least-squares line through finite (x, y) pairs; `None` below two distinct x values.
pub fn linear_fit(x: &[f64], y: &[f64]) -> Option<LineFit> {
    let pts = finite_pairs(x, y);
    let n = pts.len();
    if n < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse: f64 = pts
        .iter()
        .map(|p| (p.1 - slope * p.0 - intercept).powi(2))
        .sum();
    let slope_se = if n > 2 {
        (sse / (n as f64 - 2.0) / sxx).sqrt()
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

/// Weighted least squares line (weights w_i = 1 / sigma_i^2) and its chi-squared,
/// sum w_i (y_i - a - b x_i)^2, which follows chi2(n - 2) when the line is right and the
/// sigmas are the errors. Returns (slope, intercept, chi2); `None` below two points.
pub fn weighted_line_chi2(x: &[f64], y: &[f64], sigma: &[f64]) -> Option<(f64, f64, f64)> {
    let pts: Vec<(f64, f64, f64)> = (0..x.len().min(y.len()).min(sigma.len()))
        .filter(|&i| x[i].is_finite() && y[i].is_finite() && sigma[i].is_finite() && sigma[i] > 0.0)
        .map(|i| (x[i], y[i], 1.0 / (sigma[i] * sigma[i])))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let sw: f64 = pts.iter().map(|p| p.2).sum();
    let mx = pts.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
    let my = pts.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
    let sxx: f64 = pts.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = pts
        .iter()
        .map(|p| p.2 * (p.0 - mx) * (p.1 - my))
        .sum::<f64>()
        / sxx;
    let intercept = my - slope * mx;
    let chi2 = pts
        .iter()
        .map(|p| p.2 * (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    Some((slope, intercept, chi2))
}

/// Wilson score interval for a binomial proportion k/n at normal quantile z (1.96 for 95%).
pub fn wilson(k: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let den = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / den;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / den;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Stratified bootstrap: `n_boot` times, resample every group with replacement (keeping its
/// size) and evaluate `stat`; returns the statistics that were defined (`Some`), in draw order.
/// The groups are the seeds at one setting (one K or one N), so the interval reflects
/// seed-to-seed variation at the settings actually run.
pub fn bootstrap<F>(groups: &[Vec<f64>], n_boot: usize, seed: u64, mut stat: F) -> Vec<f64>
where
    F: FnMut(&[Vec<f64>]) -> Option<f64>,
{
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n_boot);
    let mut sample: Vec<Vec<f64>> = groups.iter().map(|g| Vec::with_capacity(g.len())).collect();
    for _ in 0..n_boot {
        for (g, s) in groups.iter().zip(sample.iter_mut()) {
            s.clear();
            for _ in 0..g.len() {
                s.push(g[rng.random_range(0..g.len())]);
            }
        }
        if let Some(v) = stat(&sample) {
            out.push(v);
        }
    }
    out
}

/// Central percentile interval of bootstrap draws (NaN when there are none). Draws may be +inf.
pub fn percentile_interval(draws: &[f64], level: f64) -> (f64, f64) {
    let a = (1.0 - level) / 2.0;
    (quantile(draws, a), quantile(draws, 1.0 - a))
}

/// Standard error of the sample median from the distribution-free order-statistic interval:
/// the 95% interval [x_(j), x_(k)] with j, k = n/2 -+ 0.98 sqrt(n) (normal approximation of
/// Binomial(n, 1/2)), divided by 2 x 1.96. Steadier than bootstrapping the median at small n
/// (where the bootstrap distribution of a median is lumpy), and censored (+inf) values make
/// it +inf only when they reach the interval. NaN below 5 values.
pub fn median_se(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = v.len();
    if n < 5 {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let half = n as f64 / 2.0;
    let d = 0.98 * (n as f64).sqrt();
    // 1-based ranks, clamped to the sample.
    let j = ((half - d).floor() as usize).clamp(1, n);
    let k = ((half + d).ceil() as usize + 1).clamp(1, n);
    (v[k - 1] - v[j - 1]) / (2.0 * 1.96)
}

/// Survival function of the chi-squared distribution: P(X >= x) with `dof` degrees of freedom
/// (statrs' regularized upper incomplete gamma); NaN for `dof` = 0 or NaN `x`, 1 for x <= 0.
pub fn chi2_sf(x: f64, dof: usize) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    match ChiSquared::new(dof as f64) {
        _ if x.is_nan() => f64::NAN,
        Ok(_) if x <= 0.0 => 1.0,
        Ok(d) => d.sf(x),
        Err(_) => f64::NAN,
    }
}

/// A finite f64 or None, for JSON details (serde_json writes NaN and inf as null anyway; this
/// makes the intent explicit).
pub fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Ranks (average ranks for ties), 1-based.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation over finite pairs (NaN below 3 pairs or with a constant side).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let pts = finite_pairs(x, y);
    if pts.len() < 3 {
        return f64::NAN;
    }
    let rx = ranks(&pts.iter().map(|p| p.0).collect::<Vec<_>>());
    let ry = ranks(&pts.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let sxy: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    if sxx > 0.0 && syy > 0.0 {
        sxy / (sxx * syy).sqrt()
    } else {
        f64::NAN
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn quantiles_match_numpy() {
        let v = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        // numpy.quantile(v, [0.1, 0.5, 0.9]) = [1.0, 3.5, 6.9]
        assert!((quantile(&v, 0.1) - 1.0).abs() < 1e-12);
        assert!((quantile(&v, 0.5) - 3.5).abs() < 1e-12);
        assert!((quantile(&v, 0.9) - 6.9).abs() < 1e-12);
    }

    #[test]
    fn censored_quantiles() {
        let v = [1.0, 2.0, 3.0, f64::INFINITY, f64::INFINITY];
        assert_eq!(median(&v), 3.0);
        assert_eq!(quantile(&v, 0.9), f64::INFINITY);
        assert!((quantile(&v, 0.25) - 2.0).abs() < 1e-12);
        let w = [1.0, 2.0, f64::INFINITY, f64::INFINITY];
        assert_eq!(median(&w), f64::INFINITY);
    }

    #[test]
    fn interval_censored_quantiles() {
        // One run seen at t = 10 with width 10: uniform on (0, 10].
        assert!((quantile_interval_censored(&[10.0], &[10.0], 0.3) - 3.0).abs() < 1e-9);
        // Ties spread out: four runs at 100 (width 50) and one at 50: F is linear on (50, 100].
        let t = [100.0, 100.0, 100.0, 100.0, 50.0];
        let w = [50.0; 5];
        let q50 = quantile_interval_censored(&t, &w, 0.5);
        let q90 = quantile_interval_censored(&t, &w, 0.9);
        assert!((q50 - (50.0 + 50.0 * 0.3 / 0.8)).abs() < 1e-6, "{q50}");
        assert!((q90 - (50.0 + 50.0 * 0.7 / 0.8)).abs() < 1e-6, "{q90}");
        // Censored runs: a quantile above the acquired fraction is +inf.
        assert_eq!(
            quantile_interval_censored(&[1.0, f64::INFINITY], &[1.0, 1.0], 0.9),
            f64::INFINITY
        );
        // Zero widths: the lower empirical quantile.
        assert_eq!(
            quantile_interval_censored(&[1.0, 2.0, 3.0, 4.0], &[0.0; 4], 0.5),
            2.0
        );
    }

    #[test]
    fn moments_known_values() {
        // pandas' adjusted estimators: pd.Series([1,2,3,4,10]).skew() = 1.69706 (= 1.2 sqrt 2),
        // .kurt() = 3.152
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!(
            (skewness(&v) - 1.2 * 2f64.sqrt()).abs() < 1e-9,
            "{}",
            skewness(&v)
        );
        assert!(
            (excess_kurtosis(&v) - 3.152).abs() < 1e-9,
            "{}",
            excess_kurtosis(&v)
        );
        assert!(skewness(&[1.0, 2.0, 3.0]).abs() < 1e-12);
        assert!((std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) - 2.138_09).abs() < 1e-4);
    }

    #[test]
    fn bimodality_separates_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let nrm = Normal::new(0.0, 1.0).unwrap();
        let uni: Vec<f64> = (0..400).map(|_| nrm.sample(&mut rng)).collect();
        let bi: Vec<f64> = (0..400)
            .map(|i| nrm.sample(&mut rng) * 0.5 + if i % 2 == 0 { -3.0 } else { 3.0 })
            .collect();
        let bc_uni = bimodality_coefficient(&uni);
        let bc_bi = bimodality_coefficient(&bi);
        assert!(bc_uni < 0.45, "normal sample BC {bc_uni}");
        assert!(bc_bi > 0.8, "two-cluster sample BC {bc_bi}");
    }

    #[test]
    fn linear_fit_exact_and_noisy() {
        let x = [50.0, 100.0, 150.0, 200.0, 250.0];
        let y: Vec<f64> = x.iter().map(|v| 40.0 * v + 1000.0).collect();
        let f = linear_fit(&x, &y).unwrap();
        assert!((f.slope - 40.0).abs() < 1e-9 && (f.intercept - 1000.0).abs() < 1e-6);
        assert!((f.r2 - 1.0).abs() < 1e-12);
        // Known answer: y = [1, 3, 2, 5, 4] on x = 1..5 -> slope 0.8, intercept 0.6, r2 0.64.
        let f = linear_fit(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 3.0, 2.0, 5.0, 4.0]).unwrap();
        assert!((f.slope - 0.8).abs() < 1e-12);
        assert!((f.intercept - 0.6).abs() < 1e-12);
        assert!((f.r2 - 0.64).abs() < 1e-12);
        assert!(linear_fit(&[1.0, 1.0], &[2.0, 3.0]).is_none());
        // Weighted: equal weights reduce to OLS; chi2 = SSE / sigma^2.
        let (b, a, c) = weighted_line_chi2(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &[1.0, 3.0, 2.0, 5.0, 4.0],
            &[0.5; 5],
        )
        .unwrap();
        assert!((b - 0.8).abs() < 1e-12 && (a - 0.6).abs() < 1e-12);
        assert!((c - 3.6 / 0.25).abs() < 1e-9, "chi2 {c}");
        // A point with a huge error barely moves the line.
        let (b, _, _) =
            weighted_line_chi2(&[0.0, 1.0, 2.0], &[0.0, 1.0, 100.0], &[1.0, 1.0, 1e6]).unwrap();
        assert!((b - 1.0).abs() < 1e-6);
    }

    #[test]
    fn median_se_matches_asymptotics() {
        // Normal(0, 1): SE of the median = sqrt(pi / 2) / sqrt(n).
        let nrm = Normal::new(0.0, 1.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let n = 400;
        let mut ses = Vec::new();
        for _ in 0..50 {
            let v: Vec<f64> = (0..n).map(|_| nrm.sample(&mut rng)).collect();
            ses.push(median_se(&v));
        }
        let expected = (std::f64::consts::PI / 2.0).sqrt() / (n as f64).sqrt();
        let got = mean(&ses);
        assert!(
            (got - expected).abs() / expected < 0.1,
            "{got} vs {expected}"
        );
        assert!(median_se(&[1.0, 2.0, 3.0]).is_nan());
    }

    #[test]
    fn chi2_known_values() {
        assert!((chi2_sf(3.841_458_820_694_124, 1) - 0.05).abs() < 1e-9);
        assert!((chi2_sf(5.991_464_547_107_979, 2) - 0.05).abs() < 1e-9);
        assert!((chi2_sf(2.0, 2) - (-1f64).exp()).abs() < 1e-12);
        assert!((chi2_sf(20.0, 10) - 0.029_252_688_076_961_2).abs() < 1e-9);
        assert!(chi2_sf(f64::NAN, 1).is_nan() && chi2_sf(1.0, 0).is_nan());
        assert_eq!(chi2_sf(0.0, 3), 1.0);
        assert!(chi2_sf(f64::INFINITY, 3) == 0.0);
    }

    #[test]
    fn wilson_known_values() {
        // 8/20 at 95%: [0.2188, 0.6134]
        let (lo, hi) = wilson(8, 20, 1.96);
        assert!(
            (lo - 0.2188).abs() < 1e-3 && (hi - 0.6134).abs() < 1e-3,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 10, 1.96);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.2 && hi < 0.35);
    }

    #[test]
    fn bootstrap_interval_covers_true_mean() {
        // Repeat: a 95% percentile interval of the mean should cover the true mean in most
        // repetitions (allow slack for the percentile method at n = 40).
        let nrm = Normal::new(5.0, 2.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut covered = 0;
        let reps = 60;
        for r in 0..reps {
            let g: Vec<f64> = (0..40).map(|_| nrm.sample(&mut rng)).collect();
            let draws = bootstrap(&[g], 400, r as u64, |s| Some(mean(&s[0])));
            let (lo, hi) = percentile_interval(&draws, 0.95);
            assert!(lo < hi);
            if lo <= 5.0 && 5.0 <= hi {
                covered += 1;
            }
        }
        assert!(covered >= 51, "covered {covered}/{reps}");
        // Same seed, same draws.
        let g = vec![vec![1.0, 2.0, 3.0, 10.0]];
        let a = bootstrap(&g, 50, 3, |s| Some(mean(&s[0])));
        let b = bootstrap(&g, 50, 3, |s| Some(mean(&s[0])));
        assert_eq!(a, b);
        let c = bootstrap(&g, 50, 4, |s| Some(mean(&s[0])));
        assert_ne!(a, c);
    }

    #[test]
    fn spearman_basics() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert!(spearman(&[1.0, 2.0], &[1.0, 2.0]).is_nan());
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![2.5, 1.0, 2.5]);
    }

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
        assert!((mean_finite(&[1.0, f64::INFINITY, f64::NAN, 3.0]) - 2.0).abs() < 1e-15);
        assert!(mean(&[1.0, f64::INFINITY]).is_infinite());
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), 2.0);
        // Censored runs (infinite time) count above the median.
        assert_eq!(median(&[1.0, f64::INFINITY, 2.0]), 2.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn least_squares_recovers_a_line_and_its_uncertainty() {
        let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 - 0.5 * v).collect();
        let f = linear_fit(&x, &y).unwrap();
        assert!((f.slope + 0.5).abs() < 1e-12 && (f.intercept - 2.0).abs() < 1e-12);
        assert!(f.slope_se < 1e-10 && (f.r2 - 1.0).abs() < 1e-12);
        // Noisy: slope within a few standard errors of the truth.
        let mut r = rng(1, 0);
        let y: Vec<f64> = x
            .iter()
            .map(|v| 1.0 + 0.7 * v + r.random_range(-1.0..1.0))
            .collect();
        let f = linear_fit(&x, &y).unwrap();
        assert!((f.slope - 0.7).abs() < 4.0 * f.slope_se, "{f:?}");
        assert!(linear_fit(&[1.0, 1.0], &[0.0, 1.0]).is_none());
        assert!(linear_fit(&[1.0], &[0.0]).is_none());
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
}
