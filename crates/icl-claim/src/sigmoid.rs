//! The sigmoid behind K*, the paper's central number: f(x) = d / (1 + exp(-a (x - b))) + c
//! fitted to final ICL accuracy against x = log10 K, every run a point (the reference analysis
//! fits this curve with scipy's curve_fit). One fit for every claim that reports a K* (C1, C3,
//! C6, C13, through [`crate::kstar`]).
//!
//! The fit is written here rather than taken from an optimizer crate because the problem has a
//! structure a generic optimizer does not use: for fixed (a, b) the model is linear in (c, d),
//! solved exactly in the [0, 1] box; only (a, b) is searched, over a grid and then by a 2-D
//! Nelder-Mead from the best grid points, which makes the result global over the box and
//! deterministic (an earlier Levenberg-Marquardt fit depended on its starting points).

/// Numerically safe logistic function 1 / (1 + e^-z): exp never overflows.
pub fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
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
        self.c + self.d * logistic(self.a * (x - self.b))
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
    let pts = crate::stats::finite_pairs(x, y);
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
        let g: Vec<f64> = pts.iter().map(|p| logistic(a * (p.0 - b))).collect();
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
    use rand::{Rng, SeedableRng};

    fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn logistic_is_safe_at_both_ends() {
        assert_eq!(logistic(0.0), 0.5);
        assert!(logistic(-800.0).abs() < 1e-300 && logistic(800.0) == 1.0);
    }

    #[test]
    fn sigmoid_fit_recovers_known_curve() {
        let (a, b, c, d) = (6.0, 3.7, 0.5, 0.48);
        let x: Vec<f64> = (0..30).map(|i| 2.7 + 2.0 * i as f64 / 29.0).collect();
        let mut r = rng(3);
        let y: Vec<f64> = x
            .iter()
            .map(|v| c + d * logistic(a * (v - b)) + r.random_range(-0.01..0.01))
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
            .map(|v| 0.5 + 0.5 * logistic(8.0 * (v - 1.0)))
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
