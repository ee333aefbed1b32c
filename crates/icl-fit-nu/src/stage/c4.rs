//! C4 (Fig 4): the loss landscape of the minimal model over (w, beta) and how it depends on the
//! distribution of MLP outputs: without memorization (phi+ = 0, c1 = c2 = 1/2) the flow from
//! (0, beta0) climbs to the ICL solution; once the MLP has memorized (phi+ large, c1 small) the
//! landscape near the start flattens by c1 and the same climb takes ~1/c1 longer.
//!
//! Everything here is computed from the exact data-averaged loss (no training), optionally with
//! the memorized distribution set from measured MLP-only curves (its c1 at the end of training).

use crate::io;
use crate::landscape::{Grid, Landscape, PhiDist};
use crate::theory::{self, Drive, Event};
use icl_claim::claim::{checks_json, num, verdict_of, verdict_rule, Check, Claim};
use icl_claim::ladder::Rungs;
use icl_claim::params::{Checker, Validate};
use icl_claim::stage::{ClaimAnalysis, PaperClaim};
use icl_claim::stats;
use icl_plot::{color, Axis, Figure, Layer, Legend, Panel};
use icl_store::task::{ParamError, TaskSpec};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Core checks (how the landscape depends on the MLP outputs; the reduced-vs-exact agreement is a further number).
const CORE: &[&str] = &["icl_downhill_in_both", "memorization_slows_as_predicted"];

fn d_context_length() -> u64 {
    100
}
fn d_w_min() -> f64 {
    -2.0
}
fn d_w_max() -> f64 {
    12.0
}
fn d_beta_min() -> f64 {
    -2.0
}
fn d_beta_max() -> f64 {
    6.0
}
fn d_grid_points() -> usize {
    61
}
fn d_memorized_mean() -> f64 {
    3.0
}
fn d_memorized_sd() -> f64 {
    1.0
}
fn d_acquired_accuracy() -> f64 {
    0.95
}
fn d_tolerance() -> f64 {
    0.25
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C4Params {
    pub profile: String,
    /// Tokens per sequence (query included); the softmax runs over the N - 1 context items.
    #[serde(default = "d_context_length", rename = "N")]
    pub n: u64,
    /// Start of the gradient flows (w0 = 0).
    #[serde(default)]
    pub beta0: f64,
    #[serde(default = "d_w_min")]
    pub w_min: f64,
    #[serde(default = "d_w_max")]
    pub w_max: f64,
    #[serde(default = "d_beta_min")]
    pub beta_min: f64,
    #[serde(default = "d_beta_max")]
    pub beta_max: f64,
    /// Grid points per axis.
    #[serde(default = "d_grid_points")]
    pub grid: usize,
    /// Memorized phi+ ~ N(mean, sd^2) (the mean is replaced when MLP curves set c1).
    #[serde(default = "d_memorized_mean")]
    pub memorized_mean: f64,
    #[serde(default = "d_memorized_sd")]
    pub memorized_sd: f64,
    /// With MLP-only inputs: the K whose final c1 (median over seeds) sets the memorized
    /// distribution (default: the smallest K, the most memorized).
    #[serde(default, rename = "memorized_K")]
    pub memorized_k: Option<u64>,
    /// ICL accuracy that ends a flow (via the accuracy proxy's beta level).
    #[serde(default = "d_acquired_accuracy")]
    pub accuracy: f64,
    /// Relative agreement required between times (exact vs reduced, slowdown vs prediction).
    #[serde(default = "d_tolerance")]
    pub time_tolerance: f64,
}

impl Validate for C4Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut c = Checker::default();
        c.profile(&self.profile);
        if self.n < 3 {
            c.fail("N", format!("must be >= 3 (got {})", self.n));
        }
        if self.w_max.partial_cmp(&self.w_min) != Some(std::cmp::Ordering::Greater) {
            c.fail(
                "w_max",
                format!("must exceed w_min ({}) (got {})", self.w_min, self.w_max),
            );
        }
        if self.beta_max.partial_cmp(&self.beta_min) != Some(std::cmp::Ordering::Greater) {
            c.fail(
                "beta_max",
                format!(
                    "must exceed beta_min ({}) (got {})",
                    self.beta_min, self.beta_max
                ),
            );
        }
        c.range("beta0", self.beta0, -10.0, 10.0);
        if !(5..=401).contains(&self.grid) {
            c.fail("grid", format!("must be in [5, 401] (got {})", self.grid));
        }
        c.range("memorized_mean", self.memorized_mean, -50.0, 50.0);
        c.range("memorized_sd", self.memorized_sd, 0.0, 50.0);
        if !(self.accuracy >= 0.5 && self.accuracy < 1.0) {
            c.fail(
                "accuracy",
                format!("must be in [0.5, 1) (got {})", self.accuracy),
            );
        }
        c.prob("time_tolerance", self.time_tolerance);
        c.errors()
    }
}

struct Case {
    name: &'static str,
    dist: PhiDist,
    coef: crate::landscape::Coefficients,
    grid: Grid,
    exact_t: Option<f64>,
    exact_path: Vec<(f64, f64, f64)>,
    reduced_t: Option<f64>,
    reduced_path: Vec<(f64, f64, f64)>,
    grad0: [f64; 2],
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

/// What C4's claim and figure are built from.
pub struct C4Analysis {
    mlp: Vec<io::Run>,
    source: serde_json::Value,
    n_ctx: usize,
    level: f64,
    cases: Vec<Case>,
}

/// Read the inputs and analyse them.
pub fn analyze(task: &TaskSpec, p: &C4Params) -> anyhow::Result<C4Analysis> {
    // The memorized distribution: fixed, or matched to measured c1.
    let mlp = io::read_runs(
        task.inputs_all("summaries"),
        task.inputs_all("curves"),
        "c4",
    )?;
    let mut source = json!({"kind": "gaussian", "mean": p.memorized_mean, "sd": p.memorized_sd});
    let mem = if mlp.is_empty() {
        PhiDist::Gaussian {
            mean: p.memorized_mean,
            sd: p.memorized_sd,
        }
    } else {
        anyhow::ensure!(
            mlp.iter().all(|r| r.curve.is_some()),
            "c4: MLP `summaries` need their `curves` (c1 comes from the curves)"
        );
        let mut ks: Vec<u64> = mlp
            .iter()
            .filter_map(|r| r.summary.k.map(|k| k.round() as u64))
            .collect();
        ks.sort_unstable();
        ks.dedup();
        let k = match p.memorized_k {
            Some(k) => {
                anyhow::ensure!(
                    ks.contains(&k),
                    "c4: memorized_K = {k} is not among the MLP runs' K values {ks:?}"
                );
                k
            }
            None => *ks
                .first()
                .ok_or_else(|| anyhow::anyhow!("c4: the MLP runs have no finite K"))?,
        };
        let finals: Vec<f64> = mlp
            .iter()
            .filter(|r| r.summary.k.map(|x| x.round() as u64) == Some(k))
            .filter_map(|r| {
                r.curve
                    .as_ref()
                    .and_then(|c| c.c1.iter().rev().find(|v| v.is_finite()).copied())
            })
            .collect();
        let c1 = stats::median(&finals);
        anyhow::ensure!(
            c1 > 0.0 && c1 < 1.0,
            "c4: measured final c1 at K={k} is {c1}, not in (0, 1)"
        );
        let d = PhiDist::gaussian_with_c1(c1, p.memorized_sd);
        source = json!({"kind": "gaussian matched to measured c1", "K": k, "c1_measured": num(c1), "runs": finals.len(), "sd": p.memorized_sd,
                        "mean": match d { PhiDist::Gaussian { mean, .. } => num(mean), _ => serde_json::Value::Null }});
        d
    };
    let n_ctx = (p.n - 1) as usize;
    let level = theory::beta_for_accuracy(n_ctx, p.accuracy);
    let ws = linspace(p.w_min, p.w_max, p.grid);
    let bs = linspace(p.beta_min, p.beta_max, p.grid);
    let mut cases = Vec::new();
    for (name, dist) in [
        ("no memorization (phi+ = 0)", PhiDist::Point(0.0)),
        ("memorized", mem),
    ] {
        let coef = dist.coefficients();
        let l = Landscape::new(n_ctx, &dist);
        let reduced_guess = theory::t_icl_constant(n_ctx as f64, p.beta0, coef.c1, coef.c2);
        let (exact_t, exact_path) = l.flow(0.0, p.beta0, 50.0 * reduced_guess, level);
        let red = theory::simulate(
            n_ctx as f64,
            p.beta0,
            0.0,
            &Drive::Constant {
                c1: coef.c1,
                c2: coef.c2,
            },
            50.0 * reduced_guess,
            Event::BetaLevel { level },
            true,
        );
        cases.push(Case {
            name,
            grid: l.grid(&ws, &bs),
            grad0: l.grad(0.0, p.beta0),
            dist,
            coef,
            exact_t,
            exact_path,
            reduced_t: red.t_icl,
            reduced_path: red.path.clone(),
        });
    }
    Ok(C4Analysis {
        mlp,
        source,
        n_ctx,
        level,
        cases,
    })
}

impl ClaimAnalysis<C4Params> for C4Analysis {
    fn claim(&self, p: &C4Params) -> Claim {
        let C4Analysis {
            mlp,
            source,
            n_ctx,
            level,
            cases,
        } = self;
        let n_ctx = *n_ctx;
        let level = *level;
        let (f, m) = (&cases[0], &cases[1]);
        let rel = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => a / b,
            _ => f64::NAN,
        };
        let slowdown = rel(m.exact_t, f.exact_t);
        let slowdown_reduced = rel(m.reduced_t, f.reduced_t);
        let exact_vs_reduced = [rel(f.exact_t, f.reduced_t), rel(m.exact_t, m.reduced_t)];
        let grad_ratio = m.grad0[0] / f.grad0[0];
        let c1_ratio = m.coef.c1 / f.coef.c1;
        let within = |x: f64| x.is_finite() && (x - 1.0).abs() <= p.time_tolerance;
        let downhill = f.exact_t.is_some() && m.exact_t.is_some();
        let slows = slowdown > 1.0 && within(slowdown / slowdown_reduced);
        let reduced_ok = exact_vs_reduced.iter().all(|x| within(*x));
        let worst_red = exact_vs_reduced
            .iter()
            .map(|x| (x - 1.0).abs())
            .fold(f64::NAN, f64::max);
        let checks = vec![
            Check::new(
                "icl_downhill_in_both",
                downhill,
                m.exact_t.unwrap_or(f64::NAN),
                "gradient flow on the exact loss from (0, beta0) reaches the ICL accuracy level for both distributions (value: time, memorized)",
            ),
            Check::new(
                "memorization_slows_as_predicted",
                slows,
                slowdown / slowdown_reduced,
                format!(
                    "memorized / free time to ICL > 1 and within {} of the reduced dynamics' ratio (s*(c2)/c1) (value: exact / predicted slowdown)",
                    p.time_tolerance
                ),
            ),
            Check::new(
                "reduced_dynamics_match_exact_flow",
                reduced_ok,
                worst_red,
                format!("reduced-dynamics time to the ICL level within {} of the exact flow's, both distributions (value: worst relative gap)", p.time_tolerance),
            ),
        ];
        let verdict = verdict_of(&checks, CORE);
        let details = json!({
            "N": p.n, "n_attended": n_ctx, "beta0": p.beta0, "beta_level": num(level), "accuracy": p.accuracy,
            "time_unit": "gradient-flow time (learning rate x iterations)",
            "memorized_source": source,
            "cases": cases.iter().map(|c| json!({
                "name": c.name, "c1": num(c.coef.c1), "c2": num(c.coef.c2), "c3": num(c.coef.c3),
                "t_exact": c.exact_t.map(num), "t_reduced": c.reduced_t.map(num),
                "grad_at_start": [num(c.grad0[0]), num(c.grad0[1])],
                "loss_at_start": num(c.grid_loss_at(0.0, p.beta0)),
                "dist": format!("{:?}", c.dist).chars().take(120).collect::<String>(),
            })).collect::<Vec<_>>(),
            "slowdown_exact": num(slowdown), "slowdown_reduced": num(slowdown_reduced),
            "exact_over_reduced": exact_vs_reduced.iter().map(|x| num(*x)).collect::<Vec<_>>(),
            "start_gradient_ratio": num(grad_ratio), "c1_ratio": num(c1_ratio),
            "verdict_rule": verdict_rule(CORE),
            "checks": checks_json(&checks),
        });
        Claim {
            claim: "C4".into(),
            figure: "Fig 4".into(),
            statement: "The loss landscape over (w, beta) and how it depends on the distribution of MLP outputs".into(),
            paper_value: "qualitative: memorization (small c1) flattens the path to ICL".into(),
            value: slowdown,
            low: f64::NAN,
            high: f64::NAN,
            unit: "time to ICL, memorized / not memorized (exact flow)".into(),
            profile: p.profile.clone(),
            verdict,
            n_runs: mlp.len() as i64,
            details: icl_claim::claim::details_text(&details),
        }
    }
    fn figure(&self, p: &C4Params) -> Figure {
        figure(&self.cases, p, self.level)
    }
}

impl Case {
    fn grid_loss_at(&self, w: f64, beta: f64) -> f64 {
        // Nearest grid point (the details only need an indication).
        let j = nearest(&self.grid.w, w);
        let i = nearest(&self.grid.beta, beta);
        self.grid.at(i, j)
    }
}

fn nearest(v: &[f64], x: f64) -> usize {
    (0..v.len())
        .min_by(|&a, &b| (v[a] - x).abs().total_cmp(&(v[b] - x).abs()))
        .unwrap_or(0)
}

fn figure(cases: &[Case], p: &C4Params, level: f64) -> Figure {
    let mut fig = Figure::new(format!(
        "C4: loss landscape of the minimal model (N = {}); contours at loss quantiles, arrows = descent direction",
        p.n
    ))
    .columns(2);
    for (ci, c) in cases.iter().enumerate() {
        let (lo, hi) = c
            .grid
            .loss
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let f = icl_plot::format_number;
        let title = format!(
            "{}: c1 = {}, c2 = {}, loss {} to {}",
            c.name,
            f(c.coef.c1),
            f(c.coef.c2),
            f(lo),
            f(hi)
        );
        let mut panel = Panel::new(
            title,
            Axis::linear("w").range(p.w_min, p.w_max),
            Axis::linear("beta").range(p.beta_min, p.beta_max),
        )
        .legend(Legend::UpperRight);
        let mut vals = c.grid.loss.clone();
        vals.sort_by(f64::total_cmp);
        for q in [0.03, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9].iter() {
            let level_v = stats::quantile(&vals, *q);
            for line in c.grid.contour(level_v) {
                if line.len() >= 2 {
                    panel.push(Layer::line(line).color(icl_plot::GREY).size(1));
                }
            }
        }
        // Direction of steepest descent on a coarse grid, in page units.
        let (sw, sb) = (p.w_max - p.w_min, p.beta_max - p.beta_min);
        let mut heads = Vec::new();
        for i in super::common::thin(c.grid.beta.len(), 10) {
            for j in super::common::thin(c.grid.w.len(), 12) {
                let g = c.grid.grad[i * c.grid.w.len() + j];
                let (dx, dy) = (-g[0] / sw, -g[1] / sb);
                let norm = (dx * dx + dy * dy).sqrt();
                if norm > 0.0 && norm.is_finite() {
                    let (w0, b0) = (c.grid.w[j], c.grid.beta[i]);
                    let (w1, b1) = (w0 + 0.035 * sw * dx / norm, b0 + 0.035 * sb * dy / norm);
                    panel.push(
                        Layer::line(vec![(w0, b0), (w1, b1)])
                            .color(color(7))
                            .size(1),
                    );
                    heads.push((w1, b1));
                }
            }
        }
        panel.push(Layer::points(heads).color(color(7)).size(1));
        panel.push(
            Layer::line(
                c.exact_path
                    .iter()
                    .map(|&(_, w, b)| (w, b))
                    .filter(|&(w, b)| w <= p.w_max && b <= p.beta_max)
                    .collect(),
            )
            .color(color(3))
            .size(3)
            .label("gradient flow from (0, beta0)"),
        );
        panel.push(
            Layer::hline(level)
                .color(color(ci + 1))
                .dashed()
                .label(format!("ICL acc {} level", p.accuracy)),
        );
        fig = fig.panel(panel);
    }
    let mut p_t = Panel::new(
        "beta(t): exact flow (solid) vs reduced dynamics (dashed)",
        Axis::log10("t (lr x iterations)"),
        Axis::linear("beta"),
    )
    .legend(Legend::UpperLeft);
    for (ci, c) in cases.iter().enumerate() {
        let col = color(if ci == 0 { 0 } else { 3 });
        p_t.push(
            Layer::line(
                c.exact_path
                    .iter()
                    .filter(|r| r.0 > 0.0)
                    .map(|&(t, _, b)| (t, b))
                    .collect(),
            )
            .color(col)
            .label(c.name.to_string()),
        );
        p_t.push(
            Layer::line(
                c.reduced_path
                    .iter()
                    .filter(|r| r.0 > 0.0)
                    .map(|&(t, _, b)| (t, b))
                    .collect(),
            )
            .color(col)
            .dashed(),
        );
    }
    let mut p_w = Panel::new(
        "w(t): exact flow (solid) vs reduced dynamics (dashed)",
        Axis::log10("t (lr x iterations)"),
        Axis::linear("w"),
    )
    .legend(Legend::UpperLeft);
    for (ci, c) in cases.iter().enumerate() {
        let col = color(if ci == 0 { 0 } else { 3 });
        p_w.push(
            Layer::line(
                c.exact_path
                    .iter()
                    .filter(|r| r.0 > 0.0)
                    .map(|&(t, w, _)| (t, w))
                    .collect(),
            )
            .color(col)
            .label(c.name.to_string()),
        );
        p_w.push(
            Layer::line(
                c.reduced_path
                    .iter()
                    .filter(|r| r.0 > 0.0)
                    .map(|&(t, w, _)| (t, w))
                    .collect(),
            )
            .color(col)
            .dashed(),
        );
    }
    fig.panel(p_t).panel(p_w)
}

/// C4 as a stage command (loss landscape over (w, beta)).
pub struct C4;

impl PaperClaim for C4 {
    const COMMAND: &'static str = "c4";
    type Params = C4Params;
    type Analysis = C4Analysis;
    fn analyze(task: &TaskSpec, p: &C4Params) -> anyhow::Result<Rungs<C4Analysis>> {
        Ok(Rungs::Whole(analyze(task, p)?))
    }
}
