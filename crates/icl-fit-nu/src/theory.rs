//! The reduced dynamics of the minimal model (paper.md, "Theory").
//!
//! Minimal model: logit = phi(x_q) + w * sum_j l_j softmax_j(beta x_j . x_q). At large D a context
//! item that matches the query scores 1 and the others score 0, so with `n` attended context items
//! (one match, n - 1 others with random labels) the attention term is
//! a = (e^beta + S) / (e^beta + n - 1), S a sum of n - 1 random signs. Expanding the logistic loss to
//! second order in w * a and averaging over S and over the MLP outputs phi+ gives, for e^beta << n,
//!
//! ```text
//! dw/dt    = (c1/n) (e^beta - c2 w)        c1 = <sigma(-phi+)>
//! dbeta/dt = (c1/n) w e^beta               c2 = 1 - <sigma(-phi+)^2> / c1
//! ```
//!
//! `t` is gradient-flow time, i.e. SGD iterations times the learning rate. `n` is the number of
//! items the softmax runs over: for a training sequence of N tokens (query included) that is the
//! N - 1 context tokens.
//!
//! In the time s = I(t)/n with I(t) = integral of c1 dt, and with c2 constant, the equations lose
//! c1 and n entirely. Scaling further b = beta - beta0, sigma = e^beta0 s leaves one parameter,
//! gamma = c2 e^(-beta0):
//!
//! ```text
//! dw/dsigma = e^b - gamma w,   db/dsigma = w e^b,   w(0) = b(0) = 0,
//! ```
//!
//! which blows up at a finite sigma*(gamma); hence s*(beta0) = e^(-beta0) sigma*(c2 e^(-beta0)).
//! Limits (derived here, tested below):
//! - gamma -> 0 (e^beta0 >> c2): dw/db = 1/w, so w^2/2 = b exactly and
//!   sigma* = integral_0^inf e^(-b) / sqrt(2b) db = sqrt(pi/2):  s* = sqrt(pi/2) e^(-beta0).
//! - gamma -> inf (e^beta0 << c2): w follows e^b/gamma, db/dsigma = e^(2b)/gamma, so
//!   sigma* = gamma/2 (+ 1/gamma):  s* = (c2/2) e^(-2 beta0).
//!
//! So s* is proportional to e^(-beta0) (the paper's statement) only while e^beta0 is large
//! compared with c2 (beta0 above about -0.7 at K = infinity); below it s* grows like e^(-2 beta0).

use crate::ode::{self, Options, Stop};
use icl_claim::stats;

/// (dw/dt, dbeta/dt) of the reduced dynamics.
pub fn rhs(n: f64, c1: f64, c2: f64, w: f64, beta: f64) -> [f64; 2] {
    let e = beta.exp();
    let r = c1 / n;
    [r * (e - c2 * w), r * w * e]
}

/// How far beta must rise above its start before we call it a blow-up. The time left after that
/// point is about e^(-beta)/w in the scaled time: e^-20 ~ 2e-9 relative, and we add it anyway.
pub const BLOWUP_MARGIN: f64 = 20.0;

/// Above this gamma, [`sigma_star`] uses its quasi-static limit gamma/2.
pub const SIGMA_STAR_QUASI_STATIC: f64 = 1000.0;

/// Blow-up time sigma*(gamma) of dw/dsigma = e^b - gamma w, db/dsigma = w e^b from (0, 0).
pub fn sigma_star(gamma: f64) -> f64 {
    assert!(
        gamma >= 0.0 && gamma.is_finite(),
        "sigma_star: gamma must be finite and >= 0 (got {gamma})"
    );
    // Deep on the lower branch w relaxes ~gamma times faster than b moves and an explicit
    // integrator would need ~gamma^2 steps; the quasi-static limit is within 2e-5 there
    // (measured: sigma*(1000) = 500.0078).
    if gamma >= SIGMA_STAR_QUASI_STATIC {
        return 0.5 * gamma;
    }
    let f = move |_: f64, y: &[f64; 2]| {
        let e = y[1].exp();
        [e - gamma * y[0], y[0] * e]
    };
    // sigma* <= gamma/2 + sqrt(pi/2) + 1/gamma-ish; a generous end time.
    let t_end = 10.0 * (gamma + 2.0);
    let opts = Options {
        rtol: 1e-11,
        atol: 1e-14,
        max_steps: 1_000_000,
        ..Options::default()
    };
    let sol = ode::integrate(f, |_, y| y[1] - BLOWUP_MARGIN, 0.0, [0.0, 0.0], t_end, opts);
    assert_eq!(
        sol.stop,
        Stop::Event,
        "sigma_star({gamma}): no blow-up before {t_end} ({:?})",
        sol.stop
    );
    // Past b = B the growth is dominated by w e^b with w nearly fixed: remaining time e^(-b)/w.
    sol.t + (-sol.y[1]).exp() / sol.y[0]
}

/// Blow-up point s*(beta0) in the rescaled time s = I(t)/n, for constant c2.
pub fn s_star(beta0: f64, c2: f64) -> f64 {
    (-beta0).exp() * sigma_star(c2 * (-beta0).exp())
}

/// The two asymptotes of [`s_star`]: (e^beta0 >> c2: sqrt(pi/2) e^-beta0, e^beta0 << c2: c2/2 e^-2beta0).
pub fn s_star_asymptotes(beta0: f64, c2: f64) -> (f64, f64) {
    (
        (std::f64::consts::PI / 2.0).sqrt() * (-beta0).exp(),
        0.5 * c2 * (-2.0 * beta0).exp(),
    )
}

/// Local exponent d ln s* / d beta0 (-1 on the paper's branch, -2 deep below it).
pub fn dlog_s_star_dbeta0(beta0: f64, c2: f64) -> f64 {
    let h = 1e-3;
    ((s_star(beta0 + h, c2)).ln() - (s_star(beta0 - h, c2)).ln()) / (2.0 * h)
}

/// Acquisition time with constant c1, c2: t = n s*(beta0) / c1 (gradient-flow time).
pub fn t_icl_constant(n: f64, beta0: f64, c1: f64, c2: f64) -> f64 {
    n * s_star(beta0, c2) / c1
}

/// Acquisition time at K = infinity (no memorization: c1 = c2 = 1/2): linear in n.
pub fn t_icl_inf(n: f64, beta0: f64) -> f64 {
    t_icl_constant(n, beta0, 0.5, 0.5)
}

/// K* from a memorization law I_K(inf) = amp * K^nu (amp in gradient-flow time): ICL is acquired
/// iff I_K(inf)/n > s*(beta0), so K* = (n s*(beta0) / amp)^(1/nu).
pub fn kstar_predicted(n: f64, beta0: f64, c2: f64, amp: f64, nu: f64) -> f64 {
    (n * s_star(beta0, c2) / amp).powf(1.0 / nu)
}

/// The coefficients that drive the reduced dynamics.
#[derive(Debug, Clone)]
pub enum Drive {
    Constant {
        c1: f64,
        c2: f64,
    },
    /// Measured series over gradient-flow time (increasing), linearly interpolated, held at the
    /// end values outside the measured range.
    Series {
        t: Vec<f64>,
        c1: Vec<f64>,
        c2: Vec<f64>,
    },
}

impl Drive {
    pub fn at(&self, t: f64) -> (f64, f64) {
        match self {
            Drive::Constant { c1, c2 } => (*c1, *c2),
            Drive::Series { t: ts, c1, c2 } => (stats::interp(ts, c1, t), stats::interp(ts, c2, t)),
        }
    }

    /// I(t) = integral of c1 from 0 to t.
    pub fn integral_c1(&self, t: f64) -> f64 {
        match self {
            Drive::Constant { c1, .. } => c1 * t,
            Drive::Series { t: ts, c1, .. } => {
                // Trapezoid over the samples below t plus the partial interval; beyond the ends
                // the held values are integrated exactly.
                let mut acc = 0.0;
                let mut prev = (0.0, stats::interp(ts, c1, 0.0));
                for (&ti, &ci) in ts.iter().zip(c1) {
                    if ti <= prev.0 {
                        continue;
                    }
                    if ti >= t {
                        break;
                    }
                    acc += 0.5 * (ti - prev.0) * (ci + prev.1);
                    prev = (ti, ci);
                }
                let ct = stats::interp(ts, c1, t);
                acc + 0.5 * (t - prev.0) * (ct + prev.1)
            }
        }
    }
}

/// When to call ICL acquired.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Event {
    /// beta rises `margin` above its start ([`BLOWUP_MARGIN`]): the finite-time blow-up.
    BlowUp { margin: f64 },
    /// beta crosses `level` with w > 0 (e.g. [`beta_for_accuracy`] of a target ICL accuracy).
    BetaLevel { level: f64 },
}

/// One integration of the reduced dynamics.
#[derive(Debug, Clone)]
pub struct Trajectory {
    /// Acquisition time (gradient-flow units), `None` if the event did not happen by `t_max`.
    pub t_icl: Option<f64>,
    pub stop: Stop,
    /// (t, w, beta) at accepted steps (when recorded).
    pub path: Vec<(f64, f64, f64)>,
}

/// Integrate the reduced dynamics from (w0, beta0) up to `t_max` with the given drive.
pub fn simulate(
    n: f64,
    beta0: f64,
    w0: f64,
    drive: &Drive,
    t_max: f64,
    event: Event,
    record: bool,
) -> Trajectory {
    let f = |t: f64, y: &[f64; 2]| {
        let (c1, c2) = drive.at(t);
        rhs(n, c1, c2, y[0], y[1])
    };
    let g = move |_: f64, y: &[f64; 2]| match event {
        Event::BlowUp { margin } => y[1] - (beta0 + margin),
        Event::BetaLevel { level } => {
            if y[0] > 0.0 {
                y[1] - level
            } else {
                -1.0
            }
        }
    };
    let h_max = match drive {
        // Do not step over the structure of a measured series.
        Drive::Series { t, .. } if t.len() > 1 => (t[t.len() - 1] - t[0]) / t.len() as f64,
        _ => 0.0,
    };
    let opts = Options {
        rtol: 1e-10,
        atol: 1e-13,
        h_max,
        max_steps: 2_000_000,
        record,
        ..Options::default()
    };
    let sol = ode::integrate(f, g, 0.0, [w0, beta0], t_max, opts);
    let path = sol.path.iter().map(|(t, y)| (*t, y[0], y[1])).collect();
    let t_icl = (sol.stop == Stop::Event).then_some(sol.t);
    Trajectory {
        t_icl,
        stop: sol.stop,
        path,
    }
}

/// Log-probabilities of the number of +1 labels among `m` random signs (Binomial(m, 1/2)).
pub fn binomial_half_logpmf(m: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(m + 1);
    let mut lp = -(m as f64) * std::f64::consts::LN_2;
    out.push(lp);
    for k in 1..=m {
        lp += ((m - k + 1) as f64 / k as f64).ln();
        out.push(lp);
    }
    out
}

/// ICL test accuracy implied by beta with w > 0, ignoring the MLP term on novel items: with one
/// match among `n` attended items the logit's sign is that of e^beta + S, S a sum of n - 1 random
/// signs (ties count half).
pub fn icl_accuracy_proxy(n: usize, beta: f64) -> f64 {
    assert!(n >= 1, "icl_accuracy_proxy: n must be >= 1");
    let m = n - 1;
    let x = beta.exp();
    binomial_half_logpmf(m)
        .iter()
        .enumerate()
        .map(|(k, lp)| {
            let v = x + 2.0 * k as f64 - m as f64;
            let p = lp.exp();
            if v > 0.0 {
                p
            } else if v == 0.0 {
                0.5 * p
            } else {
                0.0
            }
        })
        .sum()
}

/// Smallest beta at which [`icl_accuracy_proxy`] reaches `target` (bisection; the proxy is a
/// non-decreasing step function of beta).
pub fn beta_for_accuracy(n: usize, target: f64) -> f64 {
    assert!(
        (0.5..1.0).contains(&target),
        "beta_for_accuracy: target must be in [0.5, 1) (got {target})"
    );
    let (mut lo, mut hi) = (-30.0, (n as f64 + 1.0).ln() + 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if icl_accuracy_proxy(n, mid) >= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn sigma_star_closed_form_without_decay() {
        // c2 = 0: w^2/2 = b exactly and sigma* = sqrt(pi/2).
        let s = sigma_star(0.0);
        assert!((s - (PI / 2.0).sqrt()).abs() < 1e-7, "{s}");
        // and then s*(beta0) = sqrt(pi/2) e^-beta0 for every beta0
        for b0 in [-2.0, 0.0, 1.5] {
            assert!((s_star(b0, 0.0) / ((PI / 2.0).sqrt() * (-b0).exp()) - 1.0).abs() < 1e-7);
        }
    }

    #[test]
    fn first_integral_holds_without_decay() {
        let traj = simulate(
            50.0,
            0.3,
            0.0,
            &Drive::Constant { c1: 0.7, c2: 0.0 },
            1e4,
            Event::BlowUp { margin: 8.0 },
            true,
        );
        assert!(traj.t_icl.is_some());
        for &(_, w, b) in &traj.path {
            assert!((0.5 * w * w - (b - 0.3)).abs() < 1e-7, "w={w} beta={b}");
        }
    }

    #[test]
    fn s_star_follows_both_asymptotes() {
        // e^beta0 >> c2: sqrt(pi/2) e^-beta0 (relative correction O(gamma)).
        let (small, _) = s_star_asymptotes(6.0, 0.5);
        assert!(
            (s_star(6.0, 0.5) / small - 1.0).abs() < 2e-3,
            "{} vs {small}",
            s_star(6.0, 0.5)
        );
        // e^beta0 << c2: (c2/2) e^(-2 beta0) (relative correction ~ 2/gamma^2).
        let (_, large) = s_star_asymptotes(-5.0, 0.5);
        assert!(
            (s_star(-5.0, 0.5) / large - 1.0).abs() < 2e-3,
            "{} vs {large}",
            s_star(-5.0, 0.5)
        );
        // Continuous across the switch to the quasi-static limit, and fast far below it.
        let (a, b) = (sigma_star(999.999), sigma_star(1000.0));
        assert!((a / b - 1.0).abs() < 3e-5, "{a} {b}");
        assert!((s_star(-20.0, 0.5) / s_star_asymptotes(-20.0, 0.5).1 - 1.0).abs() < 1e-12);
        // Local exponents: -1 on the upper branch, -2 on the lower.
        assert!((dlog_s_star_dbeta0(6.0, 0.5) + 1.0).abs() < 5e-3);
        assert!((dlog_s_star_dbeta0(-5.0, 0.5) + 2.0).abs() < 5e-3);
        // In between it is monotone and between the branches.
        let mut prev = f64::INFINITY;
        for i in 0..20 {
            let b0 = -3.0 + 0.4 * i as f64;
            let s = s_star(b0, 0.5);
            assert!(s < prev);
            prev = s;
            let k = dlog_s_star_dbeta0(b0, 0.5);
            assert!(
                (-2.0 - 1e-6..=-1.0 + 1e-6).contains(&k),
                "beta0={b0} slope={k}"
            );
        }
    }

    #[test]
    fn simulate_matches_s_star_and_is_linear_in_n() {
        // With constant c1, c2 the acquisition time is n s* / c1, for any n.
        for (n, b0) in [(20.0, 0.0), (80.0, 0.0), (80.0, 1.0), (300.0, -0.5)] {
            let d = Drive::Constant { c1: 0.5, c2: 0.5 };
            let traj = simulate(
                n,
                b0,
                0.0,
                &d,
                1e7,
                Event::BlowUp {
                    margin: BLOWUP_MARGIN,
                },
                false,
            );
            let t = traj.t_icl.expect("acquired");
            let want = t_icl_inf(n, b0);
            assert!(
                (t / want - 1.0).abs() < 1e-6,
                "n={n} beta0={b0}: {t} vs {want}"
            );
        }
        assert!((t_icl_inf(200.0, 0.4) / t_icl_inf(100.0, 0.4) - 2.0).abs() < 1e-12);
        // Exponential in beta0 on the e^beta0 >> c2 branch.
        let r = t_icl_inf(100.0, 3.0) / t_icl_inf(100.0, 4.0);
        assert!((r / 1f64.exp() - 1.0).abs() < 0.02, "{r}");
    }

    #[test]
    fn small_time_linearization() {
        // w = (c1/n) e^b0 t + O(t^2), beta - b0 = (c1/n)^2 e^(2 b0) t^2 / 2 + O(t^3).
        let (n, c1, c2, b0) = (40.0, 0.5, 0.5, 0.2);
        let t = 0.05;
        let traj = simulate(
            n,
            b0,
            0.0,
            &Drive::Constant { c1, c2 },
            t,
            Event::BlowUp { margin: 20.0 },
            true,
        );
        let &(tt, w, b) = traj.path.last().unwrap();
        assert_eq!(tt, t);
        let r = c1 / n;
        assert!((w / (r * b0.exp() * t) - 1.0).abs() < 1e-3);
        assert!(((b - b0) / (0.5 * r * r * (2.0 * b0).exp() * t * t) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn w_relaxes_at_fixed_beta() {
        // With beta frozen, w(t) = (e^beta / c2) (1 - exp(-c1 c2 t / n)).
        let (n, c1, c2, b) = (10.0, 0.3, 0.6, 0.7);
        let f = |_: f64, y: &[f64; 2]| [rhs(n, c1, c2, y[0], b)[0], 0.0];
        for t in [1.0, 30.0, 400.0] {
            let sol = ode::integrate(f, |_, _| -1.0, 0.0, [0.0, b], t, Options::default());
            let want = b.exp() / c2 * (1.0 - (-c1 * c2 * t / n).exp());
            assert!(
                (sol.y[0] - want).abs() < 1e-9 * want.max(1.0),
                "t={t}: {} vs {want}",
                sol.y[0]
            );
        }
    }

    #[test]
    fn decaying_c1_acquires_iff_integral_exceeds_threshold() {
        // c1(t) = 0.5 e^(-t/tau), c2 = 0.5: in s = I/n the trajectory is the constant-c2 one, so
        // ICL happens iff 0.5 tau / n > s*, at t = -tau ln(1 - n s* / (0.5 tau)).
        let (n, b0) = (50.0, 0.5);
        let ss = s_star(b0, 0.5);
        for tau in [1.2 * n * ss / 0.5, 0.9 * n * ss / 0.5] {
            let ts: Vec<f64> = (0..=20000)
                .map(|i| i as f64 * 10.0 * tau / 20000.0)
                .collect();
            let c1: Vec<f64> = ts.iter().map(|t| 0.5 * (-t / tau).exp()).collect();
            let c2 = vec![0.5; ts.len()];
            let d = Drive::Series {
                t: ts.clone(),
                c1,
                c2,
            };
            let integ = d.integral_c1(tau);
            assert!((integ / (0.5 * tau * (1.0 - (-1f64).exp())) - 1.0).abs() < 1e-6);
            let traj = simulate(
                n,
                b0,
                0.0,
                &d,
                10.0 * tau,
                Event::BlowUp {
                    margin: BLOWUP_MARGIN,
                },
                false,
            );
            if 0.5 * tau / n > ss {
                let want = -tau * (1.0 - n * ss / (0.5 * tau)).ln();
                let got = traj.t_icl.expect("should acquire");
                assert!((got / want - 1.0).abs() < 1e-4, "{got} vs {want}");
            } else {
                assert!(traj.t_icl.is_none(), "should not acquire");
            }
        }
    }

    #[test]
    fn kstar_inverts_the_memorization_law() {
        let (n, b0, amp, nu) = (99.0, 0.0, 3.0, 0.7);
        let k = kstar_predicted(n, b0, 0.5, amp, nu);
        assert!((amp * k.powf(nu) / n - s_star(b0, 0.5)).abs() < 1e-9);
        // Slope 1/nu in log K* vs log n, and e^(-beta0/nu) on the upper branch.
        let k2 = kstar_predicted(2.0 * n, b0, 0.5, amp, nu);
        assert!(((k2 / k).ln() / 2f64.ln() - 1.0 / nu).abs() < 1e-9);
        let r = kstar_predicted(n, 4.0, 0.5, amp, nu) / kstar_predicted(n, 3.0, 0.5, amp, nu);
        assert!((r.ln() + 1.0 / nu).abs() < 0.03, "{}", r.ln());
    }

    #[test]
    fn accuracy_proxy() {
        // One item (no distractors): correct as soon as e^beta > 0.
        assert_eq!(icl_accuracy_proxy(1, -5.0), 1.0);
        // Two items: S = +-1; e^beta < 1 gives 1/2, e^beta > 1 gives 1, e^beta = 1 gives 3/4.
        assert_eq!(icl_accuracy_proxy(2, -0.1), 0.5);
        assert_eq!(icl_accuracy_proxy(2, 0.1), 1.0);
        assert!((icl_accuracy_proxy(2, 0.0) - 0.75).abs() < 1e-12);
        // Binomial pmf sums to one.
        let s: f64 = binomial_half_logpmf(500).iter().map(|l| l.exp()).sum();
        assert!((s - 1.0).abs() < 1e-10);
        // Large n: 95% needs e^beta ~ 1.645 sqrt(n - 1).
        let b = beta_for_accuracy(10001, 0.95);
        assert!(
            (b.exp() / (1.645 * 100.0) - 1.0).abs() < 0.03,
            "{}",
            b.exp()
        );
        assert!(icl_accuracy_proxy(10001, b) >= 0.95 && icl_accuracy_proxy(10001, b - 1e-3) < 0.95);
    }

    #[test]
    fn beta_level_event_comes_before_blowup() {
        let d = Drive::Constant { c1: 0.5, c2: 0.5 };
        let level = beta_for_accuracy(99, 0.95);
        let a = simulate(99.0, 0.0, 0.0, &d, 1e6, Event::BetaLevel { level }, false)
            .t_icl
            .unwrap();
        let b = simulate(
            99.0,
            0.0,
            0.0,
            &d,
            1e6,
            Event::BlowUp {
                margin: BLOWUP_MARGIN,
            },
            false,
        )
        .t_icl
        .unwrap();
        assert!(a < b && a > 0.9 * b, "{a} {b}");
    }
}
