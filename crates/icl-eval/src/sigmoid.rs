//! Four-parameter sigmoid f(x) = d / (1 + exp(-a (x - b))) + c fitted by Levenberg-Marquardt
//! with box constraints (projected steps) and several starting points, as the paper fits final
//! ICL accuracy against log10 K (K* = 10^b). polars has no curve fitting, so it lives here.

/// Parameters of f(x) = d / (1 + exp(-a (x - b))) + c.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sigmoid {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
}

impl Sigmoid {
    pub fn eval(&self, x: f64) -> f64 {
        self.d * logistic(self.a * (x - self.b)) + self.c
    }
    fn to_arr(self) -> [f64; 4] {
        [self.a, self.b, self.c, self.d]
    }
    fn from_arr(p: [f64; 4]) -> Self {
        Self { a: p[0], b: p[1], c: p[2], d: p[3] }
    }
    /// Width of the 10%-90% rise in x units: 2 ln 9 / a.
    pub fn width_10_90(&self) -> f64 {
        2.0 * 9f64.ln() / self.a
    }
}

fn logistic(z: f64) -> f64 {
    // Two branches so exp never overflows.
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Box constraints, lower and upper per parameter (a, b, c, d).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bounds {
    pub lo: [f64; 4],
    pub hi: [f64; 4],
}

impl Bounds {
    /// Defaults for accuracy vs log10 K over [xmin, xmax]: rising sigmoid (0 <= a <= a_max),
    /// midpoint within one unit beyond the data on either side (so "K* inside the swept range"
    /// is a real test), floor c and amplitude d inside [0, 1] as accuracies are.
    pub fn for_accuracy(xmin: f64, xmax: f64, a_max: f64) -> Self {
        Self { lo: [0.0, xmin - 1.0, 0.0, 0.0], hi: [a_max, xmax + 1.0, 1.0, 1.0] }
    }
    fn project(&self, p: &mut [f64; 4]) {
        for (i, v) in p.iter_mut().enumerate() {
            *v = v.clamp(self.lo[i], self.hi[i]);
        }
    }
}

/// Outcome of a fit.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SigmoidFit {
    pub params: Sigmoid,
    pub sse: f64,
    /// Stopped by a convergence criterion (not by the iteration cap) with finite parameters.
    pub converged: bool,
    pub iterations: usize,
    /// Which parameters ended on a bound (a, b, c, d).
    pub at_bound: [bool; 4],
}

fn sse(p: &Sigmoid, x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(&xi, &yi)| (yi - p.eval(xi)).powi(2)).sum()
}

/// Solve the 4x4 system m z = v by Gaussian elimination with partial pivoting.
fn solve4(mut m: [[f64; 4]; 4], mut v: [f64; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let piv = (col..4).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[piv][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, piv);
        v.swap(col, piv);
        let pivot_row = m[col];
        for r in col + 1..4 {
            let f = m[r][col] / pivot_row[col];
            for (x, p) in m[r].iter_mut().zip(pivot_row.iter()).skip(col) {
                *x -= f * p;
            }
            v[r] -= f * v[col];
        }
    }
    let mut z = [0.0; 4];
    for r in (0..4).rev() {
        let s: f64 = (r + 1..4).map(|k| m[r][k] * z[k]).sum();
        z[r] = (v[r] - s) / m[r][r];
    }
    z.iter().all(|t| t.is_finite()).then_some(z)
}

/// Levenberg-Marquardt from one start. Steps are projected onto the bounds; a step is kept
/// only if it lowers the SSE. Converged when the SSE stops moving (relative change < 1e-12) or
/// no damped step can lower it any more (lambda > 1e12: a constrained stationary point).
pub fn fit_from(x: &[f64], y: &[f64], start: Sigmoid, bounds: &Bounds, max_iter: usize) -> SigmoidFit {
    let mut p = start.to_arr();
    bounds.project(&mut p);
    let mut cur = sse(&Sigmoid::from_arr(p), x, y);
    let mut lambda = 1e-3;
    let mut converged = false;
    let mut it = 0;
    while it < max_iter {
        it += 1;
        let s = Sigmoid::from_arr(p);
        // Normal equations J^T J and J^T r with r = y - f.
        let mut jtj = [[0.0; 4]; 4];
        let mut jtr = [0.0; 4];
        for (&xi, &yi) in x.iter().zip(y) {
            let sg = logistic(s.a * (xi - s.b));
            let ds = sg * (1.0 - sg);
            let j = [s.d * ds * (xi - s.b), -s.d * ds * s.a, 1.0, sg];
            let r = yi - s.eval(xi);
            for u in 0..4 {
                jtr[u] += j[u] * r;
                for v in 0..4 {
                    jtj[u][v] += j[u] * j[v];
                }
            }
        }
        let mut improved = false;
        while lambda <= 1e12 {
            let mut m = jtj;
            for u in 0..4 {
                // Marquardt scaling, with a floor so a zero column (d = 0 kills a and b) still
                // gets damped.
                m[u][u] += lambda * jtj[u][u].max(1e-12);
            }
            if let Some(delta) = solve4(m, jtr) {
                let mut q = [p[0] + delta[0], p[1] + delta[1], p[2] + delta[2], p[3] + delta[3]];
                bounds.project(&mut q);
                let new = sse(&Sigmoid::from_arr(q), x, y);
                if new.is_finite() && new < cur {
                    let rel = (cur - new) / cur.max(1e-300);
                    p = q;
                    cur = new;
                    lambda = (lambda / 3.0).max(1e-12);
                    improved = true;
                    if rel < 1e-12 {
                        converged = true;
                    }
                    break;
                }
            }
            lambda *= 10.0;
        }
        if !improved {
            converged = true; // no descent direction left within the bounds
        }
        if converged {
            break;
        }
    }
    let at_bound = std::array::from_fn(|i| {
        let span = (bounds.hi[i] - bounds.lo[i]).abs().max(1e-12);
        (p[i] - bounds.lo[i]).abs() < 1e-9 * span || (bounds.hi[i] - p[i]).abs() < 1e-9 * span
    });
    SigmoidFit {
        params: Sigmoid::from_arr(p),
        sse: cur,
        converged: converged && p.iter().all(|v| v.is_finite()),
        iterations: it,
        at_bound,
    }
}

/// Multi-start fit: midpoints spread over the data's x range, slopes from gentle to steep,
/// floor and amplitude from the data. Returns the converged fit with the lowest SSE (or the
/// lowest-SSE fit at all if none converged). `None` with fewer than 4 points.
pub fn fit(x: &[f64], y: &[f64], bounds: &Bounds) -> Option<SigmoidFit> {
    fit_with_starts(x, y, bounds, &[])
}

/// [`fit`] with extra starting points tried first (e.g. the full-data optimum when
/// bootstrapping).
pub fn fit_with_starts(x: &[f64], y: &[f64], bounds: &Bounds, extra: &[Sigmoid]) -> Option<SigmoidFit> {
    if x.len() < 4 || x.len() != y.len() {
        return None;
    }
    let xmin = x.iter().cloned().fold(f64::INFINITY, f64::min);
    let xmax = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let span = (xmax - xmin).max(1e-6);
    let ymin = y.iter().cloned().fold(f64::INFINITY, f64::min);
    let ymax = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut starts: Vec<Sigmoid> = extra.to_vec();
    for k in 0..7 {
        let b = xmin + span * (k as f64 + 0.5) / 7.0;
        for w in [0.1, 0.4, 1.5] {
            // a chosen so the 10-90% width is w times the span.
            let a = 2.0 * 9f64.ln() / (w * span);
            starts.push(Sigmoid { a, b, c: ymin, d: (ymax - ymin).max(0.01) });
        }
    }
    let mut best: Option<SigmoidFit> = None;
    for s in starts {
        let f = fit_from(x, y, s, bounds, 400);
        let better = match &best {
            None => true,
            Some(b) => (f.converged, -f.sse) > (b.converged, -b.sse),
        };
        if better {
            best = Some(f);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    fn synth(truth: Sigmoid, noise: f64, seeds: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nrm = Normal::new(0.0, noise).unwrap();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..10 {
            let xi = 2.7 + 2.3 * i as f64 / 9.0;
            for _ in 0..seeds {
                x.push(xi);
                y.push((truth.eval(xi) + nrm.sample(&mut rng)).clamp(0.0, 1.0));
            }
        }
        (x, y)
    }

    #[test]
    fn recovers_known_parameters() {
        let truth = Sigmoid { a: 6.0, b: 3.7, c: 0.5, d: 0.48 };
        let (x, y) = synth(truth, 0.02, 5, 1);
        let f = fit(&x, &y, &Bounds::for_accuracy(2.7, 5.0, 100.0)).unwrap();
        assert!(f.converged);
        let p = f.params;
        assert!((p.b - truth.b).abs() < 0.05, "b {}", p.b);
        assert!((p.a - truth.a).abs() / truth.a < 0.3, "a {}", p.a);
        assert!((p.c - truth.c).abs() < 0.03, "c {}", p.c);
        assert!((p.d - truth.d).abs() < 0.03, "d {}", p.d);
    }

    #[test]
    fn noise_free_fit_is_exact() {
        let truth = Sigmoid { a: 3.0, b: 4.2, c: 0.1, d: 0.8 };
        let (x, y) = synth(truth, 1e-12, 1, 2);
        let f = fit(&x, &y, &Bounds::for_accuracy(2.7, 5.0, 100.0)).unwrap();
        assert!(f.converged);
        assert!(f.sse < 1e-12, "sse {}", f.sse);
        assert!((f.params.b - 4.2).abs() < 1e-4 && (f.params.a - 3.0).abs() < 1e-3);
    }

    #[test]
    fn flat_data_has_no_rise() {
        // ICL stuck at chance: the best fit has (almost) no amplitude, whatever b is.
        let truth = Sigmoid { a: 0.0, b: 3.0, c: 0.5, d: 0.0 };
        let (x, y) = synth(truth, 0.01, 5, 3);
        let f = fit(&x, &y, &Bounds::for_accuracy(2.7, 5.0, 100.0)).unwrap();
        let rise = f.params.eval(5.0) - f.params.eval(2.7);
        assert!(rise.abs() < 0.03, "rise {rise}");
    }

    #[test]
    fn width_formula() {
        let s = Sigmoid { a: 2.0, b: 0.0, c: 0.0, d: 1.0 };
        let w = s.width_10_90();
        assert!((s.eval(w / 2.0) - 0.9).abs() < 1e-12 && (s.eval(-w / 2.0) - 0.1).abs() < 1e-12);
    }
}
