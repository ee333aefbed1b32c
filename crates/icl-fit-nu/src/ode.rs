//! An adaptive Dormand-Prince 5(4) integrator with a terminal event.
//!
//! The reduced dynamics blow up in finite time (beta -> infinity), so the integrator must (a) shrink
//! its step as the solution steepens, (b) stop at a user event (beta crossing a level) and locate
//! that crossing precisely, and (c) refuse to loop forever. Event location bisects the step size of
//! one Dormand-Prince step from the last accepted state, so the located point carries the same
//! local accuracy as an accepted step.

/// Step-control settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub rtol: f64,
    pub atol: f64,
    /// First trial step (0: a small fraction of the interval).
    pub h0: f64,
    /// Largest step (0: the whole interval).
    pub h_max: f64,
    pub max_steps: usize,
    /// Keep every accepted state in [`Solution::path`].
    pub record: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rtol: 1e-9,
            atol: 1e-12,
            h0: 0.0,
            h_max: 0.0,
            max_steps: 200_000,
            record: false,
        }
    }
}

/// Why integration stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The event function crossed zero (from below).
    Event,
    /// Reached the end time.
    End,
    /// `max_steps` accepted or rejected steps.
    StepLimit,
    /// The step shrank below the floating-point resolution of t.
    StepTooSmall,
}

#[derive(Debug, Clone)]
pub struct Solution<const M: usize> {
    pub t: f64,
    pub y: [f64; M],
    pub stop: Stop,
    pub steps: usize,
    /// Accepted states (t, y), starting with the initial state, when [`Options::record`] is set.
    pub path: Vec<(f64, [f64; M])>,
}

const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [[f64; 6]; 7] = [
    [0.0; 6],
    [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
        0.0,
    ],
    [
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// Fifth-order weights (the last row of A: the method is first-same-as-last).
const B5: [f64; 7] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
    0.0,
];
/// Embedded fourth-order weights.
const B4: [f64; 7] = [
    5179.0 / 57600.0,
    0.0,
    7571.0 / 16695.0,
    393.0 / 640.0,
    -92097.0 / 339200.0,
    187.0 / 2100.0,
    1.0 / 40.0,
];

/// One Dormand-Prince step: the fifth-order solution and the error estimate (y5 - y4).
fn dp_step<const M: usize>(
    f: &impl Fn(f64, &[f64; M]) -> [f64; M],
    t: f64,
    y: &[f64; M],
    h: f64,
) -> ([f64; M], [f64; M]) {
    let mut k = [[0.0; M]; 7];
    for s in 0..7 {
        let mut ys = *y;
        for (j, kj) in k.iter().enumerate().take(s) {
            let a = A[s][j];
            if a != 0.0 {
                for m in 0..M {
                    ys[m] += h * a * kj[m];
                }
            }
        }
        k[s] = f(t + C[s] * h, &ys);
    }
    let mut y5 = *y;
    let mut err = [0.0; M];
    for s in 0..7 {
        for m in 0..M {
            y5[m] += h * B5[s] * k[s][m];
            err[m] += h * (B5[s] - B4[s]) * k[s][m];
        }
    }
    (y5, err)
}

/// Integrate y' = f(t, y) from (t0, y0) toward `t_end` (> t0), stopping early when
/// `event(t, y)` becomes >= 0. If the event already holds at t0 the solution is the start.
pub fn integrate<const M: usize>(
    f: impl Fn(f64, &[f64; M]) -> [f64; M],
    event: impl Fn(f64, &[f64; M]) -> f64,
    t0: f64,
    y0: [f64; M],
    t_end: f64,
    opts: Options,
) -> Solution<M> {
    assert!(
        t_end > t0,
        "integrate: t_end ({t_end}) must exceed t0 ({t0})"
    );
    let span = t_end - t0;
    let h_max = if opts.h_max > 0.0 { opts.h_max } else { span };
    let mut h = if opts.h0 > 0.0 { opts.h0 } else { span * 1e-6 }.min(h_max);
    let (mut t, mut y) = (t0, y0);
    let mut path = Vec::new();
    if opts.record {
        path.push((t, y));
    }
    if event(t, &y) >= 0.0 {
        return Solution {
            t,
            y,
            stop: Stop::Event,
            steps: 0,
            path,
        };
    }
    let mut steps = 0;
    loop {
        if steps >= opts.max_steps {
            return Solution {
                t,
                y,
                stop: Stop::StepLimit,
                steps,
                path,
            };
        }
        steps += 1;
        let last = t + h >= t_end;
        let h_try = if last { t_end - t } else { h };
        if h_try <= 4.0 * f64::EPSILON * t.abs().max(f64::MIN_POSITIVE) {
            return Solution {
                t,
                y,
                stop: Stop::StepTooSmall,
                steps,
                path,
            };
        }
        let (y_new, e) = dp_step(&f, t, &y, h_try);
        let finite = y_new.iter().chain(e.iter()).all(|v| v.is_finite());
        let err = if finite {
            let mut acc = 0.0;
            for m in 0..M {
                let scale = opts.atol + opts.rtol * y[m].abs().max(y_new[m].abs());
                acc += (e[m] / scale).powi(2);
            }
            (acc / M as f64).sqrt()
        } else {
            f64::INFINITY
        };
        if err > 1.0 {
            // Reject: shrink (hard when the step overflowed).
            let factor = if err.is_finite() {
                (0.9 * err.powf(-0.2)).clamp(0.1, 0.9)
            } else {
                0.1
            };
            h = h_try * factor;
            continue;
        }
        let t_new = if last { t_end } else { t + h_try };
        if event(t_new, &y_new) >= 0.0 {
            // Bisect the step length for the crossing.
            let (mut lo, mut hi) = (0.0, h_try);
            let mut y_hi = y_new;
            for _ in 0..80 {
                let mid = 0.5 * (lo + hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                let (ym, _) = dp_step(&f, t, &y, mid);
                if ym.iter().all(|v| v.is_finite()) && event(t + mid, &ym) < 0.0 {
                    lo = mid;
                } else {
                    hi = mid;
                    y_hi = ym;
                }
            }
            let (t_ev, y_ev) = (t + hi, y_hi);
            if opts.record {
                path.push((t_ev, y_ev));
            }
            return Solution {
                t: t_ev,
                y: y_ev,
                stop: Stop::Event,
                steps,
                path,
            };
        }
        t = t_new;
        y = y_new;
        if opts.record {
            path.push((t, y));
        }
        if last {
            return Solution {
                t,
                y,
                stop: Stop::End,
                steps,
                path,
            };
        }
        let factor = if err > 0.0 {
            (0.9 * err.powf(-0.2)).clamp(0.2, 5.0)
        } else {
            5.0
        };
        h = (h_try * factor).min(h_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_decay_to_tolerance() {
        let sol = integrate(
            |_, y: &[f64; 1]| [-2.0 * y[0]],
            |_, _| -1.0,
            0.0,
            [1.0],
            3.0,
            Options::default(),
        );
        assert_eq!(sol.stop, Stop::End);
        assert_eq!(sol.t, 3.0);
        assert!((sol.y[0] - (-6f64).exp()).abs() < 1e-11, "{}", sol.y[0]);
    }

    #[test]
    fn harmonic_oscillator_conserves_energy() {
        let opts = Options {
            record: true,
            ..Options::default()
        };
        let sol = integrate(
            |_, y: &[f64; 2]| [y[1], -y[0]],
            |_, _| -1.0,
            0.0,
            [1.0, 0.0],
            20.0,
            opts,
        );
        assert!((sol.y[0] - 20f64.cos()).abs() < 1e-8 && (sol.y[1] + 20f64.sin()).abs() < 1e-8);
        assert!(sol.path.len() > 10 && sol.path[0].0 == 0.0);
    }

    #[test]
    fn finite_time_blowup_located_by_event() {
        // y' = y^2, y(0) = 1: y = 1 / (1 - t), blows up at t = 1; y = 1e6 at t = 1 - 1e-6.
        let sol = integrate(
            |_, y: &[f64; 1]| [y[0] * y[0]],
            |_, y| y[0] - 1e6,
            0.0,
            [1.0],
            5.0,
            Options::default(),
        );
        assert_eq!(sol.stop, Stop::Event);
        // Errors in y are amplified like y itself near the blow-up, but the time stays sharp.
        assert!((sol.t - (1.0 - 1e-6)).abs() < 1e-9, "{}", sol.t);
        assert!((sol.y[0] - 1e6).abs() / 1e6 < 1e-6);
    }

    #[test]
    fn blowup_without_event_does_not_hang() {
        let opts = Options {
            max_steps: 5000,
            ..Options::default()
        };
        let sol = integrate(
            |_, y: &[f64; 1]| [y[0] * y[0]],
            |_, _| -1.0,
            0.0,
            [1.0],
            5.0,
            opts,
        );
        assert_ne!(sol.stop, Stop::End);
        assert!(sol.t < 1.0 + 1e-9);
    }

    #[test]
    fn event_true_at_start_returns_start() {
        let sol = integrate(
            |_, y: &[f64; 1]| [y[0]],
            |_, _| 1.0,
            0.0,
            [2.0],
            1.0,
            Options::default(),
        );
        assert_eq!(
            (sol.stop, sol.t, sol.y[0], sol.steps),
            (Stop::Event, 0.0, 2.0, 0)
        );
    }
}
