//! The training loop: online batches, SGD with per-group L2, evaluation every `eval_every`
//! iterations (and at 0 and at the end), early stopping, learning curve, summary, and resumable
//! state.
//!
//! Resume: with a resume folder, the state (parameters, the training source's RNG position, the
//! curve so far) is saved right after an evaluation every `save_every` iterations. Since the step
//! is deterministic and nothing else carries over between iterations, a resumed run produces the
//! same bytes as an uninterrupted one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use icl_datagen::{IclTest, ItemSet, IwlTest, NumItems};
use serde::{Deserialize, Serialize};

use crate::data::{SourceState, TestSet, TrainSource};
use crate::eval::{EvalRow, Evaluator};
use crate::fast::Net;
use crate::model::{sgd_step, Arch, Params};
use crate::params::{ModelKind, TrainParams};
use crate::reference::{load_safetensors, save_safetensors};

/// The artifacts a run reads (already parsed).
#[derive(Default, Clone)]
pub struct RunInputs {
    /// Training items (None or empty for K = inf).
    pub items: Option<Arc<ItemSet>>,
    pub novel_items: Option<Arc<ItemSet>>,
    pub icl_test: Option<IclTest>,
    pub iwl_test: Option<IwlTest>,
}

/// One row of the learning curve (ARCHITECTURE.md `curve` schema).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveRow {
    pub iteration: u64,
    pub epoch: f64,
    /// Mean over the iterations since the previous evaluation (NaN at iteration 0).
    pub train_loss: f64,
    pub train_acc: f64,
    pub icl_loss: f64,
    pub icl_acc: f64,
    pub iwl_loss: f64,
    pub iwl_acc: f64,
    pub beta_eff: f64,
    pub w_eff: f64,
    pub c1: f64,
    pub c2: f64,
    pub c3: f64,
}

impl CurveRow {
    pub const COLUMNS: [&'static str; 13] = [
        "iteration",
        "epoch",
        "train_loss",
        "train_acc",
        "icl_loss",
        "icl_acc",
        "iwl_loss",
        "iwl_acc",
        "beta_eff",
        "w_eff",
        "c1",
        "c2",
        "c3",
    ];

    /// The Float64 columns in [`Self::COLUMNS`] order (after `iteration`).
    pub fn floats(&self) -> [f64; 12] {
        [
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.icl_loss,
            self.icl_acc,
            self.iwl_loss,
            self.iwl_acc,
            self.beta_eff,
            self.w_eff,
            self.c1,
            self.c2,
            self.c3,
        ]
    }

    fn from_bits(it: u64, v: &[u64]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            v.len() == 12,
            "curve row has {} values, expected 12",
            v.len()
        );
        let f = |i: usize| f64::from_bits(v[i]);
        Ok(CurveRow {
            iteration: it,
            epoch: f(0),
            train_loss: f(1),
            train_acc: f(2),
            icl_loss: f(3),
            icl_acc: f(4),
            iwl_loss: f(5),
            iwl_acc: f(6),
            beta_eff: f(7),
            w_eff: f(8),
            c1: f(9),
            c2: f(10),
            c3: f(11),
        })
    }
}

/// The one-row run summary (besides the parameters themselves).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub final_icl_acc: f64,
    pub final_iwl_acc: f64,
    pub final_icl_loss: f64,
    pub final_iwl_loss: f64,
    pub iterations: u64,
    /// First evaluated iteration with ICL accuracy > t_icl_threshold.
    pub t_icl: Option<u64>,
    pub acquired: bool,
    pub peak_icl_acc: f64,
    pub early_stopped: bool,
    /// Initial attention strength: beta0 for the minimal model, beta_eff at iteration 0 for the
    /// transformers (NaN for mlp_only).
    pub beta0_eff: f64,
}

impl Summary {
    pub fn from_curve(p: &TrainParams, curve: &[CurveRow], early_stopped: bool) -> Self {
        let last = curve.last().copied();
        let t_icl = curve
            .iter()
            .find(|r| r.icl_acc > p.t_icl_threshold)
            .map(|r| r.iteration);
        let peak = curve
            .iter()
            .map(|r| r.icl_acc)
            .filter(|a| !a.is_nan())
            .fold(f64::NAN, f64::max);
        Summary {
            final_icl_acc: last.map_or(f64::NAN, |r| r.icl_acc),
            final_iwl_acc: last.map_or(f64::NAN, |r| r.iwl_acc),
            final_icl_loss: last.map_or(f64::NAN, |r| r.icl_loss),
            final_iwl_loss: last.map_or(f64::NAN, |r| r.iwl_loss),
            iterations: last.map_or(0, |r| r.iteration),
            t_icl,
            acquired: t_icl.is_some(),
            peak_icl_acc: peak,
            early_stopped,
            beta0_eff: curve.first().map_or(f64::NAN, |r| r.beta_eff),
        }
    }
}

/// What a finished run returns.
pub struct RunResult {
    pub params: Params,
    pub curve: Vec<CurveRow>,
    pub summary: Summary,
}

/// Progress reports for a front end (progress bar, log lines).
pub enum Event<'a> {
    Resumed {
        iteration: u64,
    },
    /// Sent every few iterations.
    Step {
        iteration: u64,
        total: u64,
    },
    Eval {
        row: &'a CurveRow,
    },
    Saved {
        iteration: u64,
    },
}

const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SavedState {
    version: u32,
    params: TrainParams,
    iteration: u64,
    params_file: String,
    source: SourceState,
    /// Curve rows as (iteration, the 12 floats as IEEE bit patterns): exact, and NaN-safe
    /// (JSON has no NaN).
    curve: Vec<(u64, Vec<u64>)>,
}

/// One training run from start (or a saved state) to the end or the early stop.
pub fn train(
    p: &TrainParams,
    inputs: &RunInputs,
    resume_dir: Option<&Path>,
    on_event: &mut dyn FnMut(Event),
) -> anyhow::Result<RunResult> {
    let errs = p.validate();
    anyhow::ensure!(
        errs.is_empty(),
        "invalid parameters: {}",
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let arch = Arch::from_params(p);
    let items = check_inputs(p, inputs)?;

    let mut params = Params::init(arch, p.seed, p.beta0);
    let mut grads = params.zeros_like();
    let mut source = TrainSource::new(p, items.clone())?;
    let mut evaluator = build_evaluator(p, inputs, items)?;
    let n_max = if p.model == ModelKind::MlpOnly {
        1
    } else {
        p.n
    };
    let mut net = Net::new(arch, p.batch, n_max);

    let total = p.total_iters();
    let eval_every = p.eval_interval();
    let mut curve: Vec<CurveRow> = Vec::new();
    let mut iteration = 0u64;
    if let Some(dir) = resume_dir {
        if let Some(st) = load_state(dir, p, &mut params, &mut source)? {
            iteration = st.0;
            curve = st.1;
            on_event(Event::Resumed { iteration });
        }
    }
    let mut last_saved = iteration;
    if curve.is_empty() {
        let row = curve_row(
            p,
            0,
            (f64::NAN, f64::NAN),
            evaluator.evaluate(&mut net, &params)?,
        );
        on_event(Event::Eval { row: &row });
        curve.push(row);
    }
    let mut early_stopped = curve.last().is_some_and(|r| stops(p, r));

    let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
    let mut steps_since = 0u64;
    while iteration < total && !early_stopped {
        let batch = source.next_batch();
        let (loss, c) = net.loss_and_grad(&params, batch, &mut grads)?;
        anyhow::ensure!(
            loss.is_finite(),
            "training diverged at iteration {iteration} (loss {loss})"
        );
        sgd_step(&mut params, &grads, p.lr, p.wd_attn, p.wd_mlp);
        iteration += 1;
        loss_sum += loss;
        correct += c;
        seen += batch.b;
        steps_since += 1;
        if iteration.is_multiple_of(64) {
            on_event(Event::Step { iteration, total });
        }
        if iteration.is_multiple_of(eval_every) || iteration == total {
            let train = (loss_sum / steps_since as f64, correct as f64 / seen as f64);
            let row = curve_row(p, iteration, train, evaluator.evaluate(&mut net, &params)?);
            (loss_sum, correct, seen, steps_since) = (0.0, 0, 0, 0);
            on_event(Event::Eval { row: &row });
            early_stopped = stops(p, &row);
            curve.push(row);
            if let Some(dir) = resume_dir {
                if iteration - last_saved >= p.save_interval()
                    && iteration < total
                    && !early_stopped
                {
                    save_state(dir, p, iteration, &params, &source, &curve)?;
                    last_saved = iteration;
                    on_event(Event::Saved { iteration });
                }
            }
        }
    }
    let summary = Summary::from_curve(p, &curve, early_stopped);
    Ok(RunResult {
        params,
        curve,
        summary,
    })
}

fn stops(p: &TrainParams, row: &CurveRow) -> bool {
    p.early_stop.is_some_and(|t| row.icl_acc > t)
}

fn curve_row(p: &TrainParams, iteration: u64, train: (f64, f64), e: EvalRow) -> CurveRow {
    CurveRow {
        iteration,
        epoch: iteration as f64 / p.iters_per_epoch as f64,
        train_loss: train.0,
        train_acc: train.1,
        icl_loss: e.icl.loss,
        icl_acc: e.icl.acc,
        iwl_loss: e.iwl.loss,
        iwl_acc: e.iwl.acc,
        beta_eff: e.beta_eff,
        w_eff: e.w_eff,
        c1: e.c.0,
        c2: e.c.1,
        c3: e.c.2,
    }
}

/// Checks the inputs against the parameters; returns the training items (None for K = inf).
fn check_inputs(p: &TrainParams, inputs: &RunInputs) -> anyhow::Result<Option<Arc<ItemSet>>> {
    let items = match p.k {
        NumItems::Infinite => None,
        NumItems::Finite(k) => {
            let items = inputs
                .items
                .clone()
                .context("input `items` is required for a finite K")?;
            anyhow::ensure!(
                items.len() == k && items.d == p.d,
                "input `items` has {} items of dimension {}, but the parameters say K = {k}, D = {}",
                items.len(),
                items.d,
                p.d
            );
            Some(items)
        }
    };
    if p.model.has_context() {
        let novel = inputs
            .novel_items
            .as_ref()
            .context("input `novel_items` is required")?;
        anyhow::ensure!(
            novel.d == p.d,
            "input `novel_items` has dimension {}, but D = {}",
            novel.d,
            p.d
        );
        let icl = inputs
            .icl_test
            .as_ref()
            .context("input `icl_test` is required")?;
        anyhow::ensure!(
            icl.n == p.n && icl.n_seq() > 0,
            "input `icl_test` has sequences of length {} ({} of them), but N = {}",
            icl.n,
            icl.n_seq(),
            p.n
        );
        if items.is_some() {
            let iwl = inputs
                .iwl_test
                .as_ref()
                .context("input `iwl_test` is required for a finite K")?;
            anyhow::ensure!(
                iwl.n == p.n && iwl.n_seq() > 0,
                "input `iwl_test` has sequences of length {} ({} of them), but N = {}",
                iwl.n,
                iwl.n_seq(),
                p.n
            );
        }
    }
    Ok(items)
}

fn build_evaluator(
    p: &TrainParams,
    inputs: &RunInputs,
    items: Option<Arc<ItemSet>>,
) -> anyhow::Result<Evaluator> {
    let mut icl = None;
    let mut iwl = None;
    if p.model.has_context() {
        let novel = inputs.novel_items.clone().expect("checked");
        icl = Some(TestSet::icl(
            inputs.icl_test.as_ref().expect("checked"),
            novel,
            p.n_test,
        )?);
        if let (Some(items), Some(t)) = (&items, &inputs.iwl_test) {
            iwl = Some(TestSet::iwl(t, items.clone(), p.seed, p.n_test)?);
        }
    }
    let phi_set = match (p.model, &items) {
        (ModelKind::Minimal | ModelKind::MlpOnly, Some(items)) => {
            Some(TestSet::all_items(items.clone(), p.seed)?)
        }
        (ModelKind::Minimal, None) => icl.as_ref().map(TestSet::queries),
        _ => None,
    };
    Ok(Evaluator::new(p.model, icl, iwl, phi_set, p.batch, p.d))
}

fn params_file_name(iteration: u64) -> String {
    format!("params-{iteration:012}.safetensors")
}

fn save_state(
    dir: &Path,
    p: &TrainParams,
    iteration: u64,
    params: &Params,
    source: &TrainSource,
    curve: &[CurveRow],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = params_file_name(iteration);
    let tmp = dir.join(format!("{name}.partial"));
    save_safetensors(params, &tmp)?;
    std::fs::rename(&tmp, dir.join(&name))?;
    let st = SavedState {
        version: STATE_VERSION,
        params: p.clone(),
        iteration,
        params_file: name.clone(),
        source: source.state(),
        curve: curve
            .iter()
            .map(|r| {
                (
                    r.iteration,
                    r.floats().iter().map(|f| f.to_bits()).collect(),
                )
            })
            .collect(),
    };
    let json = serde_json::to_vec(&st)?;
    icl_store::parquet::write_atomic(&dir.join(STATE_FILE), &json)?;
    // Only now is the older parameter file unreferenced.
    for e in std::fs::read_dir(dir)?.flatten() {
        let f = e.file_name().to_string_lossy().to_string();
        if f.starts_with("params-") && f != name {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

/// Restores a saved state if one exists for exactly these parameters. A state for other
/// parameters (or an unreadable one) is ignored with a warning: starting over is always correct.
fn load_state(
    dir: &Path,
    p: &TrainParams,
    params: &mut Params,
    source: &mut TrainSource,
) -> anyhow::Result<Option<(u64, Vec<CurveRow>)>> {
    let path = dir.join(STATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let mut attempt = || -> anyhow::Result<Option<(u64, Vec<CurveRow>, Params)>> {
        let st: SavedState = serde_json::from_slice(&std::fs::read(&path)?)?;
        if st.version != STATE_VERSION || &st.params != p {
            return Ok(None);
        }
        let curve = st
            .curve
            .iter()
            .map(|(it, v)| CurveRow::from_bits(*it, v))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            curve.last().map(|r| r.iteration) == Some(st.iteration),
            "curve does not end at the saved iteration"
        );
        let mut restored = params.clone();
        load_safetensors(&dir.join(&st.params_file), &mut restored)?;
        // Last, so a failure above leaves the source untouched.
        source.restore(&st.source)?;
        Ok(Some((st.iteration, curve, restored)))
    };
    match attempt() {
        Ok(Some((it, curve, restored))) => {
            *params = restored;
            Ok(Some((it, curve)))
        }
        Ok(None) => {
            eprintln!(
                "warning: {} holds a state for other parameters; starting over",
                path.display()
            );
            Ok(None)
        }
        Err(e) => {
            eprintln!(
                "warning: cannot resume from {}: {e:#}; starting over",
                path.display()
            );
            Ok(None)
        }
    }
}

/// Where a run's saved state lives inside a resume folder (for tests and tools).
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}
