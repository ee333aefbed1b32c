//! The data-averaged loss of the minimal model over (w, beta), its gradient and its gradient flow.
//!
//! Large D, one match: with the query's label taken as +1 (the -1 case is the mirror image with
//! phi -> -phi, so only phi+ = l * phi(x_q) matters), n attended items of which one matches,
//!
//! ```text
//! L(w, beta) = < softplus(-(phi+ + w a)) >,   a = (e^beta + S) / (e^beta + n - 1),
//! ```
//!
//! averaged over S (sum of n - 1 random signs, exactly, by its binomial law) and over the
//! distribution of phi+ (samples, a point mass, or a Gaussian by Gauss-Hermite quadrature).
//! The gradient is exact; [`crate::theory::rhs`] is its expansion for small w a and e^beta << n.

use crate::ode::{self, Options, Stop};
use crate::theory::binomial_half_logpmf;
use icl_claim::sigmoid::logistic as sigmoid;

/// Distribution of the label-signed MLP output phi+ on the query.
#[derive(Debug, Clone, PartialEq)]
pub enum PhiDist {
    /// phi+ = v always (v = 0: nothing memorized).
    Point(f64),
    /// Equally weighted samples (e.g. measured MLP outputs).
    Samples(Vec<f64>),
    Gaussian {
        mean: f64,
        sd: f64,
    },
}

/// Number of Gauss-Hermite nodes for [`PhiDist::Gaussian`].
pub const HERMITE_NODES: usize = 48;

/// The theory's coefficients of a phi+ distribution.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Coefficients {
    /// <sigma(-phi+)>
    pub c1: f64,
    /// 1 - <sigma(-phi+)^2> / c1
    pub c2: f64,
    /// <exp(-phi+)>
    pub c3: f64,
}

impl PhiDist {
    /// Quadrature (value, weight) pairs; weights sum to 1.
    pub fn nodes(&self) -> Vec<(f64, f64)> {
        match self {
            PhiDist::Point(v) => vec![(*v, 1.0)],
            PhiDist::Samples(s) => {
                assert!(!s.is_empty(), "PhiDist::Samples needs at least one sample");
                s.iter().map(|v| (*v, 1.0 / s.len() as f64)).collect()
            }
            PhiDist::Gaussian { mean, sd } => {
                if *sd == 0.0 {
                    return vec![(*mean, 1.0)];
                }
                gauss_hermite(HERMITE_NODES)
                    .into_iter()
                    .map(|(x, w)| {
                        (
                            mean + std::f64::consts::SQRT_2 * sd * x,
                            w / std::f64::consts::PI.sqrt(),
                        )
                    })
                    .collect()
            }
        }
    }

    pub fn coefficients(&self) -> Coefficients {
        let nodes = self.nodes();
        let c1: f64 = nodes.iter().map(|(v, p)| p * sigmoid(-v)).sum();
        let s2: f64 = nodes.iter().map(|(v, p)| p * sigmoid(-v).powi(2)).sum();
        let c3: f64 = nodes.iter().map(|(v, p)| p * (-v).exp()).sum();
        Coefficients {
            c1,
            c2: 1.0 - s2 / c1,
            c3,
        }
    }

    /// The Gaussian of standard deviation `sd` whose c1 equals `c1` (c1 falls as the mean rises).
    pub fn gaussian_with_c1(c1: f64, sd: f64) -> Self {
        assert!(
            c1 > 0.0 && c1 < 1.0,
            "gaussian_with_c1: c1 must be in (0, 1) (got {c1})"
        );
        let (mut lo, mut hi) = (-60.0, 60.0);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if (PhiDist::Gaussian { mean: mid, sd }).coefficients().c1 > c1 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        PhiDist::Gaussian {
            mean: 0.5 * (lo + hi),
            sd,
        }
    }
}

/// Nodes and weights of n-point Gauss-Hermite quadrature (weight e^(-x^2)), by Newton iteration
/// on the orthonormal Hermite recurrence, largest node first.
pub fn gauss_hermite(n: usize) -> Vec<(f64, f64)> {
    assert!(n >= 1);
    let mut out = vec![(0.0, 0.0); n];
    let pim4 = std::f64::consts::PI.powf(-0.25);
    let mut z = 0.0f64;
    for i in 0..n.div_ceil(2) {
        // Standard starting guesses for the largest roots, then extrapolation from the previous two.
        z = match i {
            0 => (2.0 * n as f64 + 1.0).sqrt() - 1.85575 * (2.0 * n as f64 + 1.0).powf(-1.0 / 6.0),
            1 => z - 1.14 * (n as f64).powf(0.426) / z,
            2 => 1.86 * z - 0.86 * out[0].0,
            3 => 1.91 * z - 0.91 * out[1].0,
            _ => 2.0 * z - out[i - 2].0,
        };
        let mut pp = 0.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (pim4, 0.0);
            for j in 1..=n {
                let p3 = p2;
                p2 = p1;
                p1 = z * (2.0 / j as f64).sqrt() * p2 - ((j - 1) as f64 / j as f64).sqrt() * p3;
            }
            pp = (2.0 * n as f64).sqrt() * p2;
            let dz = p1 / pp;
            z -= dz;
            if dz.abs() <= 1e-15 * z.abs().max(1.0) {
                break;
            }
        }
        let w = 2.0 / (pp * pp);
        out[i] = (z, w);
        out[n - 1 - i] = (-z, w);
    }
    out
}

/// The averaged loss for one context size and one phi+ distribution.
#[derive(Debug, Clone)]
pub struct Landscape {
    /// Attended items (one match).
    pub n: usize,
    phi: Vec<(f64, f64)>,
    /// (S, P(S)) with negligible tails dropped.
    label_sum: Vec<(f64, f64)>,
}

impl Landscape {
    pub fn new(n: usize, phi: &PhiDist) -> Self {
        assert!(n >= 1, "Landscape: n must be >= 1");
        let m = n - 1;
        let label_sum = binomial_half_logpmf(m)
            .into_iter()
            .enumerate()
            .filter(|(_, lp)| *lp > -46.0) // P < 1e-20 cannot move a loss of order 1
            .map(|(k, lp)| (2.0 * k as f64 - m as f64, lp.exp()))
            .collect();
        Self {
            n,
            phi: phi.nodes(),
            label_sum,
        }
    }

    fn m(&self) -> f64 {
        (self.n - 1) as f64
    }

    /// L(w, beta).
    pub fn loss(&self, w: f64, beta: f64) -> f64 {
        let x = beta.exp();
        let den = x + self.m();
        let mut acc = 0.0;
        for &(s, ps) in &self.label_sum {
            let a = (x + s) / den;
            for &(phi, pp) in &self.phi {
                acc += ps * pp * softplus(-(phi + w * a));
            }
        }
        acc
    }

    /// (dL/dw, dL/dbeta).
    pub fn grad(&self, w: f64, beta: f64) -> [f64; 2] {
        let x = beta.exp();
        let m = self.m();
        let den = x + m;
        let (mut gw, mut gb) = (0.0, 0.0);
        for &(s, ps) in &self.label_sum {
            let a = (x + s) / den;
            let da = x * (m - s) / (den * den);
            let mut sig = 0.0;
            for &(phi, pp) in &self.phi {
                sig += pp * sigmoid(-(phi + w * a));
            }
            gw -= ps * sig * a;
            gb -= ps * sig * w * da;
        }
        [gw, gb]
    }

    /// Loss and gradient on a grid (row-major: `beta` rows, `w` columns).
    pub fn grid(&self, w: &[f64], beta: &[f64]) -> Grid {
        let mut loss = Vec::with_capacity(w.len() * beta.len());
        let mut grad = Vec::with_capacity(w.len() * beta.len());
        for &b in beta {
            for &wv in w {
                loss.push(self.loss(wv, b));
                grad.push(self.grad(wv, b));
            }
        }
        Grid {
            w: w.to_vec(),
            beta: beta.to_vec(),
            loss,
            grad,
        }
    }

    /// Gradient flow d(w, beta)/dt = -grad L from (w0, beta0), stopped when beta reaches
    /// `beta_level` with w > 0 or at `t_max`. Returns (acquisition time, path of (t, w, beta)).
    pub fn flow(
        &self,
        w0: f64,
        beta0: f64,
        t_max: f64,
        beta_level: f64,
    ) -> (Option<f64>, Vec<(f64, f64, f64)>) {
        let f = |_: f64, y: &[f64; 2]| {
            let g = self.grad(y[0], y[1]);
            [-g[0], -g[1]]
        };
        let ev = |_: f64, y: &[f64; 2]| if y[0] > 0.0 { y[1] - beta_level } else { -1.0 };
        let opts = Options {
            rtol: 1e-8,
            atol: 1e-11,
            record: true,
            max_steps: 500_000,
            ..Options::default()
        };
        let sol = ode::integrate(f, ev, 0.0, [w0, beta0], t_max, opts);
        let path = sol.path.iter().map(|(t, y)| (*t, y[0], y[1])).collect();
        ((sol.stop == Stop::Event).then_some(sol.t), path)
    }
}

/// Loss and gradient sampled on a (w, beta) grid.
#[derive(Debug, Clone)]
pub struct Grid {
    pub w: Vec<f64>,
    pub beta: Vec<f64>,
    /// `loss[i * w.len() + j]` at (w[j], beta[i]).
    pub loss: Vec<f64>,
    pub grad: Vec<[f64; 2]>,
}

impl Grid {
    pub fn at(&self, i_beta: usize, j_w: usize) -> f64 {
        self.loss[i_beta * self.w.len() + j_w]
    }

    /// Contour lines of the loss at `level` by marching squares, chained into polylines.
    pub fn contour(&self, level: f64) -> Vec<Vec<(f64, f64)>> {
        let (nw, nb) = (self.w.len(), self.beta.len());
        let mut segs: Vec<[(f64, f64); 2]> = Vec::new();
        let lerp = |p: (f64, f64, f64), q: (f64, f64, f64)| {
            let t = if q.2 != p.2 {
                (level - p.2) / (q.2 - p.2)
            } else {
                0.5
            };
            (p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1))
        };
        for i in 0..nb.saturating_sub(1) {
            for j in 0..nw.saturating_sub(1) {
                // Corners counter-clockwise: (j,i) (j+1,i) (j+1,i+1) (j,i+1).
                let c = [
                    (self.w[j], self.beta[i], self.at(i, j)),
                    (self.w[j + 1], self.beta[i], self.at(i, j + 1)),
                    (self.w[j + 1], self.beta[i + 1], self.at(i + 1, j + 1)),
                    (self.w[j], self.beta[i + 1], self.at(i + 1, j)),
                ];
                let mut pts = Vec::new();
                for e in 0..4 {
                    let (p, q) = (c[e], c[(e + 1) % 4]);
                    if (p.2 < level) != (q.2 < level) {
                        pts.push(lerp(p, q));
                    }
                }
                match pts.len() {
                    2 => segs.push([pts[0], pts[1]]),
                    // Saddle cell: pair crossings in edge order (an arbitrary but consistent choice).
                    4 => {
                        segs.push([pts[0], pts[1]]);
                        segs.push([pts[2], pts[3]]);
                    }
                    _ => {}
                }
            }
        }
        chain(segs)
    }
}

/// Join segments that share end points into polylines.
fn chain(mut segs: Vec<[(f64, f64); 2]>) -> Vec<Vec<(f64, f64)>> {
    let close = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9;
    let mut lines = Vec::new();
    while let Some(s) = segs.pop() {
        let mut line = vec![s[0], s[1]];
        loop {
            let end = *line.last().expect("nonempty");
            let start = line[0];
            if let Some(k) = segs
                .iter()
                .position(|q| close(q[0], end) || close(q[1], end))
            {
                let q = segs.swap_remove(k);
                line.push(if close(q[0], end) { q[1] } else { q[0] });
            } else if let Some(k) = segs
                .iter()
                .position(|q| close(q[0], start) || close(q[1], start))
            {
                let q = segs.swap_remove(k);
                line.insert(0, if close(q[0], start) { q[1] } else { q[0] });
            } else {
                break;
            }
        }
        lines.push(line);
    }
    lines
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory;

    #[test]
    fn hermite_quadrature_integrates_gaussian_moments() {
        let d = PhiDist::Gaussian { mean: 0.7, sd: 1.3 };
        let nodes = d.nodes();
        let m = |k: i32| nodes.iter().map(|(x, w)| w * x.powi(k)).sum::<f64>();
        assert!((m(0) - 1.0).abs() < 1e-12);
        assert!((m(1) - 0.7).abs() < 1e-12);
        assert!((m(2) - (0.49 + 1.69)).abs() < 1e-11);
        // E[(x - mu)^4] = 3 sd^4
        let c4: f64 = nodes.iter().map(|(x, w)| w * (x - 0.7).powi(4)).sum();
        assert!((c4 - 3.0 * 1.3f64.powi(4)).abs() < 1e-10);
        // E[e^-x] = exp(-mu + sd^2/2)
        let c3 = d.coefficients().c3;
        assert!((c3 / (-0.7 + 0.5 * 1.69f64).exp() - 1.0).abs() < 1e-10);
    }

    #[test]
    fn no_memorization_gives_half_half() {
        let c = PhiDist::Point(0.0).coefficients();
        assert_eq!((c.c1, c.c2, c.c3), (0.5, 0.5, 1.0));
        // A symmetric distribution keeps c1 = 1/2 exactly and lowers c2.
        let c = PhiDist::Samples(vec![-0.3, 0.3]).coefficients();
        assert!((c.c1 - 0.5).abs() < 1e-15 && c.c2 < 0.5);
        // Memorized: c1 small, c2 near 1.
        let c = PhiDist::Gaussian { mean: 5.0, sd: 0.5 }.coefficients();
        assert!(c.c1 < 0.01 && c.c2 > 0.99);
        let g = PhiDist::gaussian_with_c1(0.05, 1.0);
        assert!((g.coefficients().c1 - 0.05).abs() < 1e-9);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let l = Landscape::new(30, &PhiDist::Gaussian { mean: 1.0, sd: 0.8 });
        for (w, b) in [(0.0, 0.0), (1.5, 1.0), (-0.7, 2.5), (4.0, 3.2)] {
            let g = l.grad(w, b);
            let h = 1e-6;
            let gw = (l.loss(w + h, b) - l.loss(w - h, b)) / (2.0 * h);
            let gb = (l.loss(w, b + h) - l.loss(w, b - h)) / (2.0 * h);
            assert!(
                (g[0] - gw).abs() < 1e-8 && (g[1] - gb).abs() < 1e-8,
                "{g:?} vs {gw} {gb}"
            );
        }
    }

    #[test]
    fn reduced_dynamics_is_the_small_w_expansion() {
        // For n large and e^beta << n, -grad L = (c1/n)(e^beta - c2 w), (c1/n) w e^beta.
        for phi in [
            PhiDist::Point(0.0),
            PhiDist::Gaussian { mean: 2.0, sd: 1.0 },
        ] {
            let c = phi.coefficients();
            let n = 20_000;
            let l = Landscape::new(n, &phi);
            for (w, b) in [(0.0, 0.0), (0.5, 0.5), (2.0, -0.5), (4.0, 1.0)] {
                let g = l.grad(w, b);
                let want = theory::rhs(n as f64, c.c1, c.c2, w, b);
                assert!(
                    (-g[0] / want[0] - 1.0).abs() < 0.01,
                    "dw: {} vs {} at {w},{b}",
                    -g[0],
                    want[0]
                );
                if w != 0.0 {
                    assert!(
                        (-g[1] / want[1] - 1.0).abs() < 0.01,
                        "dbeta: {} vs {} at {w},{b}",
                        -g[1],
                        want[1]
                    );
                } else {
                    assert_eq!(g[1], 0.0);
                }
            }
        }
    }

    #[test]
    fn exact_flow_approaches_reduced_prediction_at_large_n() {
        // Gradient flow on the exact loss reaches the 95% accuracy level close to where the
        // reduced dynamics reach it, and time scales like n.
        let phi = PhiDist::Point(0.0);
        let mut ratios = Vec::new();
        for n in [200usize, 800] {
            let l = Landscape::new(n, &phi);
            let level = theory::beta_for_accuracy(n, 0.95);
            let (t, path) = l.flow(0.0, 0.5, 1e7, level);
            let t = t.expect("exact flow acquires ICL");
            assert!(path.len() > 2);
            let red = theory::simulate(
                n as f64,
                0.5,
                0.0,
                &theory::Drive::Constant { c1: 0.5, c2: 0.5 },
                1e7,
                theory::Event::BetaLevel { level },
                false,
            )
            .t_icl
            .unwrap();
            ratios.push(t / red);
        }
        for r in &ratios {
            assert!((r - 1.0).abs() < 0.15, "exact/reduced {ratios:?}");
        }
        assert!(
            (ratios[1] - 1.0).abs() <= (ratios[0] - 1.0).abs() + 0.01,
            "{ratios:?}"
        );
    }

    #[test]
    fn icl_solution_is_downhill_and_memorization_flattens_it() {
        let free = Landscape::new(50, &PhiDist::Point(0.0));
        let mem = Landscape::new(50, &PhiDist::Gaussian { mean: 4.0, sd: 0.5 });
        for l in [&free, &mem] {
            assert!(l.loss(20.0, 8.0) < l.loss(0.0, 0.0));
        }
        let gf = free.grad(0.0, 0.0)[0].abs();
        let gm = mem.grad(0.0, 0.0)[0].abs();
        let cf = PhiDist::Point(0.0).coefficients().c1;
        let cm = PhiDist::Gaussian { mean: 4.0, sd: 0.5 }.coefficients().c1;
        assert!(
            (gm / gf / (cm / cf) - 1.0).abs() < 1e-9,
            "gradient at the origin scales with c1"
        );
    }

    #[test]
    fn contour_of_a_plane_is_a_straight_line() {
        let w: Vec<f64> = (0..11).map(|i| i as f64).collect();
        let b: Vec<f64> = (0..11).map(|i| i as f64).collect();
        let loss = b
            .iter()
            .flat_map(|bi| w.iter().map(move |wj| wj + bi))
            .collect();
        let g = Grid {
            w: w.clone(),
            beta: b,
            loss,
            grad: vec![[0.0; 2]; 121],
        };
        let lines = g.contour(5.5);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].len() >= 10);
        for p in &lines[0] {
            assert!((p.0 + p.1 - 5.5).abs() < 1e-12);
        }
    }
}
