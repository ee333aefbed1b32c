//! Evaluation: ICL and IWL loss and accuracy, and the sub-circuit quantities the theory needs.
//!
//! Definitions (written into every curve row; NaN where undefined):
//! - `icl_*` on the ICL test set (novel items, so only copying from context can solve it); NaN for
//!   `mlp_only`, which reads no context.
//! - `iwl_*` on the IWL test set (training items, query unmatched, so only memorized labels can
//!   solve it); NaN for K = inf. For `mlp_only`: over every training item once (what it
//!   memorizes).
//! - `beta_eff`: minimal model, the actual beta. Transformers: over the ICL test sequences, the
//!   mean of (mean query attention score s_j on the context tokens holding the query's item) minus
//!   (mean score on the other context tokens); the query's own position is left out. The scores
//!   are the softmax inputs (scale 1), so this is the log-odds the head gives a match over a
//!   non-match, the transformer's counterpart of beta x_j . x_q with |x|^2 ~ 1. Two-layer: the
//!   second (output-side) attention layer's scores.
//! - `w_eff`: minimal model, the actual w. Transformers: over the ICL test sequences, the mean of
//!   l * (logit - logit with the attention output at the query set to zero): how much margin the
//!   attention path adds toward the correct label, the counterpart of w * l * sum_j a_j l_j
//!   (= w once attention sits on the match).
//! - `c1, c2, c3` (paper.md, Theory): with m = l * phi over items of both labels,
//!   c1 = <sigma(-m)>, c2 = 1 - <sigma(-m)^2> / c1, c3 = <exp(-m)>. phi is: for transformers the
//!   IWL test logits (the network's output when the context cannot help; NaN for K = inf); for
//!   the minimal and MLP-only models the MLP's output on every training item (for the minimal
//!   model at K = inf, on the ICL test queries, fresh items the MLP cannot have memorized).
//!   On the IWL test the query is unmatched, so the attention output carries no label
//!   information and the whole network's margins estimate the theory's phi+ (C10 uses this c3).

use icl_datagen::Batch;

use crate::data::TestSet;
use crate::fast::mlp::{sigmoid, softplus};
use crate::fast::Net;
use crate::model::Params;
use crate::params::ModelKind;

/// Loss/accuracy of one set, plus the optional extras.
#[derive(Debug, Clone, Copy)]
pub struct SetMetrics {
    pub loss: f64,
    pub acc: f64,
    pub beta_eff: f64,
    pub w_eff: f64,
}

impl SetMetrics {
    pub const NAN: SetMetrics = SetMetrics {
        loss: f64::NAN,
        acc: f64::NAN,
        beta_eff: f64::NAN,
        w_eff: f64::NAN,
    };
}

/// c1, c2, c3 of a set of margins m = l * phi.
pub fn c_stats(margins: &[f64]) -> (f64, f64, f64) {
    if margins.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let k = margins.len() as f64;
    let c1 = margins.iter().map(|m| sigmoid(-m)).sum::<f64>() / k;
    let s2 = margins.iter().map(|m| sigmoid(-m).powi(2)).sum::<f64>() / k;
    let c3 = margins.iter().map(|m| (-m).exp()).sum::<f64>() / k;
    (c1, 1.0 - s2 / c1, c3)
}

/// Runs `net` over every sequence of `set` in chunks of `chunk.b`. With `extras`, computes
/// beta_eff and w_eff (transformers). Margins l * logit (or l * phi when `phi_margins`) are
/// appended to `margins` if given.
pub fn evaluate_set(
    net: &mut Net,
    p: &Params,
    set: &TestSet,
    chunk: &mut Batch,
    extras: bool,
    phi_margins: bool,
    mut margins: Option<&mut Vec<f64>>,
) -> anyhow::Result<SetMetrics> {
    let total = set.n_seq();
    if total == 0 {
        return Ok(SetMetrics::NAN);
    }
    let n = set.n;
    let (mut loss, mut correct) = (0f64, 0usize);
    let (mut gap_sum, mut gap_count, mut w_sum, mut had_extras) = (0f64, 0usize, 0f64, false);
    let mut start = 0;
    while start < total {
        let rows = chunk.b.min(total - start);
        set.fill(start, rows, chunk);
        let out = net.eval_chunk(p, chunk, rows, extras)?;
        for r in 0..rows {
            let l = chunk.labels[r * n + n - 1] as f64;
            let m = l * out.logits[r] as f64;
            loss += softplus(-m);
            correct += usize::from(m > 0.0);
            if let Some(ms) = margins.as_deref_mut() {
                let v = match (phi_margins, out.phi) {
                    (true, Some(phi)) => l * phi[r] as f64,
                    _ => m,
                };
                ms.push(v);
            }
        }
        if extras {
            if let (Some(scores), Some(no_attn)) = (out.scores, out.no_attention) {
                had_extras = true;
                for r in 0..rows {
                    let ids = &chunk.item_ids[r * n..(r + 1) * n];
                    if let Some(g) = match_gap(&scores[r * n..(r + 1) * n], ids) {
                        gap_sum += g;
                        gap_count += 1;
                    }
                    let l = chunk.labels[r * n + n - 1] as f64;
                    w_sum += l * (out.logits[r] as f64 - no_attn[r] as f64);
                }
            }
        }
        start += rows;
    }
    let t = total as f64;
    Ok(SetMetrics {
        loss: loss / t,
        acc: correct as f64 / t,
        beta_eff: if gap_count > 0 {
            gap_sum / gap_count as f64
        } else {
            f64::NAN
        },
        w_eff: if had_extras { w_sum / t } else { f64::NAN },
    })
}

/// Mean score on context tokens holding the query's item minus the mean on the others (the
/// query's own position excluded); `None` if either group is empty.
pub fn match_gap(scores: &[f32], ids: &[u32]) -> Option<f64> {
    let n = ids.len();
    let q = ids[n - 1];
    let (mut sm, mut cm, mut so, mut co) = (0f64, 0usize, 0f64, 0usize);
    for j in 0..n - 1 {
        if ids[j] == q {
            sm += scores[j] as f64;
            cm += 1;
        } else {
            so += scores[j] as f64;
            co += 1;
        }
    }
    (cm > 0 && co > 0).then(|| sm / cm as f64 - so / co as f64)
}

/// The evaluation sets of one run and the buffers to run them.
pub struct Evaluator {
    pub kind: ModelKind,
    pub icl: Option<TestSet>,
    pub iwl: Option<TestSet>,
    /// The set whose phi gives c1..c3 for the minimal / MLP-only models.
    pub phi_set: Option<TestSet>,
    chunk_seq: Option<Batch>,
    chunk_item: Batch,
    margins: Vec<f64>,
}

/// One evaluation's numbers (a curve row without the training columns).
#[derive(Debug, Clone, Copy)]
pub struct EvalRow {
    pub icl: SetMetrics,
    pub iwl: SetMetrics,
    pub beta_eff: f64,
    pub w_eff: f64,
    pub c: (f64, f64, f64),
}

impl Evaluator {
    pub fn new(
        kind: ModelKind,
        icl: Option<TestSet>,
        iwl: Option<TestSet>,
        phi_set: Option<TestSet>,
        b: usize,
        d: usize,
    ) -> Self {
        let n = icl.as_ref().map(|s| s.n).or(iwl.as_ref().map(|s| s.n));
        Evaluator {
            kind,
            icl,
            iwl,
            phi_set,
            chunk_seq: n.map(|n| Batch::new(b, n, d)),
            chunk_item: Batch::new(b, 1, d),
            margins: Vec::new(),
        }
    }

    pub fn evaluate(&mut self, net: &mut Net, p: &Params) -> anyhow::Result<EvalRow> {
        let transformer = matches!(self.kind, ModelKind::Transformer | ModelKind::TwoLayer);
        let mut row = EvalRow {
            icl: SetMetrics::NAN,
            iwl: SetMetrics::NAN,
            beta_eff: f64::NAN,
            w_eff: f64::NAN,
            c: (f64::NAN, f64::NAN, f64::NAN),
        };
        if let (Some(set), Some(chunk)) = (&self.icl, self.chunk_seq.as_mut()) {
            row.icl = evaluate_set(net, p, set, chunk, transformer, false, None)?;
        }
        self.margins.clear();
        match self.kind {
            ModelKind::Transformer | ModelKind::TwoLayer => {
                if let (Some(set), Some(chunk)) = (&self.iwl, self.chunk_seq.as_mut()) {
                    row.iwl =
                        evaluate_set(net, p, set, chunk, false, false, Some(&mut self.margins))?;
                }
                row.beta_eff = row.icl.beta_eff;
                row.w_eff = row.icl.w_eff;
            }
            ModelKind::Minimal => {
                if let (Some(set), Some(chunk)) = (&self.iwl, self.chunk_seq.as_mut()) {
                    row.iwl = evaluate_set(net, p, set, chunk, false, false, None)?;
                }
                if let Some(set) = &self.phi_set {
                    evaluate_set(
                        net,
                        p,
                        set,
                        &mut self.chunk_item,
                        false,
                        true,
                        Some(&mut self.margins),
                    )?;
                }
                row.beta_eff = p.data[0][0] as f64;
                row.w_eff = p.data[1][0] as f64;
            }
            ModelKind::MlpOnly => {
                if let Some(set) = &self.phi_set {
                    row.iwl = evaluate_set(
                        net,
                        p,
                        set,
                        &mut self.chunk_item,
                        false,
                        true,
                        Some(&mut self.margins),
                    )?;
                }
            }
        }
        row.c = c_stats(&self.margins);
        Ok(row)
    }
}
