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
    let pts = icl_eval::stats::finite_pairs(x, y);
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

/// Numerically safe logistic function.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

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

/// The reference's K* curve: f(x) = d / (1 + exp(-a (x - b))) + c, with x = log10 K.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SigmoidFit {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
    pub sse: f64,
    /// Points used.
    pub n: usize,
    /// The midpoint sits on an end of the x range searched (the transition is not bracketed).
    pub b_at_bound: bool,
}

impl SigmoidFit {
    pub fn at(&self, x: f64) -> f64 {
        self.c + self.d * sigmoid(self.a * (x - self.b))
    }

    /// Width in x over which the curve rises from 10% to 90% of its amplitude.
    pub fn width_10_90(&self) -> f64 {
        2.0 * 9f64.ln() / self.a
    }
}

/// Box for the sigmoid fit. `c` and `d` are accuracies, so both live in [0, 1]; `a` > 0 makes the
/// curve rise with K (the reference allowed a slightly negative `a` and `d` up to 100, which
/// lets a fit describe a falling curve or overshoot 1; we do not).
#[derive(Debug, Clone, Copy)]
pub struct SigmoidBounds {
    pub a: (f64, f64),
    pub b: (f64, f64),
}

/// Least-squares fit of [`SigmoidFit`] to `(x, y)`. The model is linear in `(c, d)` for fixed
/// `(a, b)`, so we solve those exactly (clamped to [0, 1]) and search `(a, b)`: a grid, then
/// Nelder-Mead from the best grid points. Deterministic. `None` with fewer than 4 points.
pub fn fit_sigmoid(x: &[f64], y: &[f64], bounds: SigmoidBounds) -> Option<SigmoidFit> {
    let pts = icl_eval::stats::finite_pairs(x, y);
    if pts.len() < 4 {
        return None;
    }
    let (a_lo, a_hi) = bounds.a;
    let (b_lo, b_hi) = bounds.b;
    assert!(
        a_lo > 0.0 && a_hi > a_lo && b_hi >= b_lo,
        "fit_sigmoid: bad bounds {bounds:?}"
    );
    let clamp = |la: f64, b: f64| (la.clamp(a_lo.ln(), a_hi.ln()), b.clamp(b_lo, b_hi));
    let cost = |la: f64, b: f64| -> (f64, f64, f64) {
        let (la, b) = clamp(la, b);
        let a = la.exp();
        let g: Vec<f64> = pts.iter().map(|p| sigmoid(a * (p.0 - b))).collect();
        let (c, d, sse) = box_ls(&pts, &g);
        (sse, c, d)
    };
    // Grid over (ln a, b).
    let (na, nb) = (24usize, 61usize);
    let mut grid: Vec<(f64, f64, f64)> = Vec::with_capacity(na * nb);
    for i in 0..na {
        let la = a_lo.ln() + (a_hi.ln() - a_lo.ln()) * i as f64 / (na - 1) as f64;
        for j in 0..nb {
            let b = if b_hi > b_lo {
                b_lo + (b_hi - b_lo) * j as f64 / (nb - 1) as f64
            } else {
                b_lo
            };
            grid.push((cost(la, b).0, la, b));
        }
    }
    grid.sort_by(|p, q| {
        p.0.total_cmp(&q.0)
            .then(p.1.total_cmp(&q.1))
            .then(p.2.total_cmp(&q.2))
    });
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for &(_, la, b) in grid.iter().take(4) {
        let (p, f) = nelder_mead_2d(
            |p| cost(p[0], p[1]).0,
            [la, b],
            [0.3, 0.05 * (b_hi - b_lo).max(0.05)],
        );
        if f < best.0 {
            best = (f, p[0], p[1]);
        }
    }
    let (la, b) = clamp(best.1, best.2);
    let (sse, c, d) = cost(la, b);
    let tol = 1e-6 * (b_hi - b_lo).max(1e-9);
    Some(SigmoidFit {
        a: la.exp(),
        b,
        c,
        d,
        sse,
        n: pts.len(),
        b_at_bound: b <= b_lo + tol || b >= b_hi - tol,
    })
}

/// min over c, d in [0, 1] of sum (y - c - d g)^2. Convex, so the minimum is the unconstrained
/// one if feasible, else on an edge of the box (each edge is a clamped 1-D problem).
fn box_ls(pts: &[(f64, f64)], g: &[f64]) -> (f64, f64, f64) {
    let sse = |c: f64, d: f64| {
        pts.iter()
            .zip(g)
            .map(|(p, gi)| (p.1 - c - d * gi).powi(2))
            .sum::<f64>()
    };
    let n = pts.len() as f64;
    let (sg, sy) = (g.iter().sum::<f64>(), pts.iter().map(|p| p.1).sum::<f64>());
    let sgg: f64 = g.iter().map(|v| v * v).sum();
    let sgy: f64 = pts.iter().zip(g).map(|(p, gi)| p.1 * gi).sum();
    let det = n * sgg - sg * sg;
    let mut cands: Vec<(f64, f64)> = Vec::new();
    if det.abs() > 1e-12 * (n * sgg).max(1e-300) {
        let d = (n * sgy - sg * sy) / det;
        let c = (sy - d * sg) / n;
        if (0.0..=1.0).contains(&c) && (0.0..=1.0).contains(&d) {
            return (c, d, sse(c, d));
        }
    }
    for c in [0.0, 1.0] {
        let d = if sgg > 0.0 {
            ((sgy - c * sg) / sgg).clamp(0.0, 1.0)
        } else {
            0.0
        };
        cands.push((c, d));
    }
    for d in [0.0, 1.0] {
        let c = ((sy - d * sg) / n).clamp(0.0, 1.0);
        cands.push((c, d));
    }
    cands
        .into_iter()
        .map(|(c, d)| (c, d, sse(c, d)))
        .min_by(|p, q| p.2.total_cmp(&q.2))
        .expect("four candidates")
}

/// Nelder-Mead in two dimensions (standard coefficients), a fixed iteration budget.
pub fn nelder_mead_2d(
    f: impl Fn([f64; 2]) -> f64,
    x0: [f64; 2],
    step: [f64; 2],
) -> ([f64; 2], f64) {
    let mut s: Vec<([f64; 2], f64)> = [x0, [x0[0] + step[0], x0[1]], [x0[0], x0[1] + step[1]]]
        .into_iter()
        .map(|p| (p, f(p)))
        .collect();
    for _ in 0..400 {
        s.sort_by(|a, b| a.1.total_cmp(&b.1));
        let spread = (s[2].1 - s[0].1).abs();
        if spread <= 1e-14 * (1.0 + s[0].1.abs()) {
            let size = (0..2)
                .map(|k| (s[2].0[k] - s[0].0[k]).abs() + (s[1].0[k] - s[0].0[k]).abs())
                .sum::<f64>();
            if size < 1e-10 {
                break;
            }
        }
        let cen = [(s[0].0[0] + s[1].0[0]) / 2.0, (s[0].0[1] + s[1].0[1]) / 2.0];
        let lerp = |t: f64| {
            [
                cen[0] + t * (s[2].0[0] - cen[0]),
                cen[1] + t * (s[2].0[1] - cen[1]),
            ]
        };
        let xr = lerp(-1.0);
        let fr = f(xr);
        if fr < s[0].1 {
            let xe = lerp(-2.0);
            let fe = f(xe);
            s[2] = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < s[1].1 {
            s[2] = (xr, fr);
        } else {
            let xc = if fr < s[2].1 { lerp(-0.5) } else { lerp(0.5) };
            let fc = f(xc);
            if fc < s[2].1.min(fr) {
                s[2] = (xc, fc);
            } else {
                let best = s[0].0;
                for item in s.iter_mut().skip(1) {
                    let p = [(item.0[0] + best[0]) / 2.0, (item.0[1] + best[1]) / 2.0];
                    *item = (p, f(p));
                }
            }
        }
    }
    s.sort_by(|a, b| a.1.total_cmp(&b.1));
    (s[0].0, s[0].1)
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

    #[test]
    fn sigmoid_fit_recovers_known_curve() {
        let (a, b, c, d) = (6.0, 3.7, 0.5, 0.48);
        let x: Vec<f64> = (0..30).map(|i| 2.7 + 2.0 * i as f64 / 29.0).collect();
        let mut r = rng(3, 0);
        let y: Vec<f64> = x
            .iter()
            .map(|v| c + d * sigmoid(a * (v - b)) + r.random_range(-0.01..0.01))
            .collect();
        let f = fit_sigmoid(
            &x,
            &y,
            SigmoidBounds {
                a: (0.1, 100.0),
                b: (2.7, 4.7),
            },
        )
        .unwrap();
        assert!((f.b - b).abs() < 0.02, "{f:?}");
        assert!((f.a - a).abs() < 1.0, "{f:?}");
        assert!((f.c - c).abs() < 0.02 && (f.d - d).abs() < 0.03, "{f:?}");
        assert!(!f.b_at_bound);
        assert!((f.width_10_90() - 2.0 * 9f64.ln() / f.a).abs() < 1e-12);
    }

    #[test]
    fn sigmoid_fit_flags_unbracketed_transition() {
        // All points already on the upper plateau: the midpoint is pushed to the lower bound.
        let x: Vec<f64> = (0..10).map(|i| 3.0 + 0.1 * i as f64).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|v| 0.5 + 0.5 * sigmoid(8.0 * (v - 1.0)))
            .collect();
        let f = fit_sigmoid(
            &x,
            &y,
            SigmoidBounds {
                a: (0.1, 100.0),
                b: (3.0, 3.9),
            },
        )
        .unwrap();
        assert!(f.b_at_bound, "{f:?}");
        assert!(fit_sigmoid(
            &x[..3],
            &y[..3],
            SigmoidBounds {
                a: (0.1, 10.0),
                b: (3.0, 4.0)
            }
        )
        .is_none());
    }

    #[test]
    fn nelder_mead_finds_quadratic_minimum() {
        let (p, f) = nelder_mead_2d(
            |p| (p[0] - 1.0).powi(2) + 3.0 * (p[1] + 2.0).powi(2),
            [0.0, 0.0],
            [0.5, 0.5],
        );
        assert!((p[0] - 1.0).abs() < 1e-5 && (p[1] + 2.0).abs() < 1e-5 && f < 1e-9);
    }
}
