//! Every hyperparameter of one training run, in one flat struct (nanoGPT style).
//!
//! The struct is the `params` object of a `train` task and the `--params` file of `icl-train fit`.
//! Unknown keys are rejected; [`TrainParams::validate`] names the key and what is allowed.

use icl_datagen::{ContextMode, NumItems};
use icl_store::task::{check_params, ParamError};
use serde::{Deserialize, Serialize};

/// Which of the paper's four models a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// LayerNorm -> one causal attention head (scale 1, no bias) -> MLP(u_query + attn_query).
    Transformer,
    /// LayerNorm -> attn 1 (residual) -> MLP 65-w-w-65 on every token -> attn 2 (residual) -> MLP.
    TwoLayer,
    /// logit = phi(x_query) + w * sum_j l_j softmax_j(beta x_j . x_query).
    Minimal,
    /// MLP D-w-w-1 on the raw item (the memorization law).
    MlpOnly,
}

impl ModelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelKind::Transformer => "transformer",
            ModelKind::TwoLayer => "two_layer",
            ModelKind::Minimal => "minimal",
            ModelKind::MlpOnly => "mlp_only",
        }
    }

    /// Whether the model reads a context (so an ICL test is meaningful).
    pub fn has_context(&self) -> bool {
        !matches!(self, ModelKind::MlpOnly)
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            format!("unknown model {s:?}; allowed: transformer, two_layer, minimal, mlp_only")
        })
    }
}

fn d63() -> usize {
    icl_datagen::DEFAULT_D
}
fn w512() -> usize {
    512
}
fn lr001() -> f64 {
    0.01
}
fn b128() -> usize {
    128
}
fn wd_default() -> f64 {
    1e-10
}
fn ipe469() -> u64 {
    469
}
fn early_default() -> Option<f64> {
    Some(0.99)
}
fn t95() -> f64 {
    0.95
}

/// One training run. JSON keys are the field names, except `D`, `N`, `K`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// `transformer` | `two_layer` | `minimal` | `mlp_only`.
    pub model: ModelKind,
    /// Item dimension (63 in the paper); tokens have D + 2 dimensions (one-hot label appended).
    #[serde(rename = "D", default = "d63")]
    pub d: usize,
    /// Tokens per sequence, query included (the paper's N = 100 is 99 context tokens + query).
    #[serde(rename = "N")]
    pub n: usize,
    /// Number of training items: an even integer >= 2, or `"inf"` (fresh items every sequence).
    #[serde(rename = "K")]
    pub k: NumItems,
    /// Hidden width of every MLP (512 in the paper).
    #[serde(default = "w512")]
    pub width: usize,
    /// SGD learning rate (no momentum, no schedule).
    #[serde(default = "lr001")]
    pub lr: f64,
    /// Sequences per SGD step.
    #[serde(default = "b128")]
    pub batch: usize,
    /// L2 strength (PyTorch form g + lambda*theta) of the attention + LayerNorm group; for the
    /// minimal model, of beta and w.
    #[serde(default = "wd_default")]
    pub wd_attn: f64,
    /// L2 strength of every MLP parameter.
    #[serde(default = "wd_default")]
    pub wd_mlp: f64,
    /// Training length in epochs; total iterations = epochs * iters_per_epoch.
    pub epochs: u64,
    /// Iterations per epoch (469 = 60000 sequences / batch 128 in the paper).
    #[serde(default = "ipe469")]
    pub iters_per_epoch: u64,
    /// Iterations between evaluations (default: one epoch). Also evaluated at iteration 0 and at
    /// the last iteration.
    #[serde(default)]
    pub eval_every: Option<u64>,
    /// Stop once ICL test accuracy exceeds this (null: never stop early).
    #[serde(default = "early_default")]
    pub early_stop: Option<f64>,
    /// t_ICL = first evaluated iteration with ICL accuracy above this.
    #[serde(default = "t95")]
    pub t_icl_threshold: f64,
    /// Run seed: initial weights (and beta0 when drawn), label permutation, training sequences.
    pub seed: u64,
    /// Seed of the `items` input (provenance only: the items arrive as an artifact). Recorded in
    /// the summary so runs can be grouped by data.
    #[serde(default)]
    pub data_seed: Option<u64>,
    /// Seed of the test-set inputs (provenance only, like `data_seed`).
    #[serde(default)]
    pub test_seed: Option<u64>,
    /// Training context rule: `standard` or `equalized` (query label in the context minority).
    #[serde(default)]
    pub context: ContextMode,
    /// Minimal model only: initial attention strength beta. null: drawn from N(0, 1) by the seed.
    #[serde(default)]
    pub beta0: Option<f64>,
    /// Evaluate on the first `n_test` sequences of each test set (null: all of them).
    #[serde(default)]
    pub n_test: Option<usize>,
    /// With a resume folder: iterations between saved states (rounded up to an evaluation).
    /// Default: 5 epochs.
    #[serde(default)]
    pub save_every: Option<u64>,
}

impl TrainParams {
    /// Parse and validate a params object; all errors, each naming its key.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, Vec<ParamError>> {
        let p: TrainParams = check_params(v)?;
        let errs = p.validate();
        if errs.is_empty() {
            Ok(p)
        } else {
            Err(errs)
        }
    }

    /// Token dimension: item plus the two-dimensional one-hot label.
    pub fn e(&self) -> usize {
        self.d + 2
    }

    pub fn total_iters(&self) -> u64 {
        self.epochs.saturating_mul(self.iters_per_epoch)
    }

    pub fn eval_interval(&self) -> u64 {
        self.eval_every.unwrap_or(self.iters_per_epoch)
    }

    pub fn save_interval(&self) -> u64 {
        self.save_every.unwrap_or(5 * self.iters_per_epoch)
    }

    /// Every violated constraint, keyed by parameter name.
    pub fn validate(&self) -> Vec<ParamError> {
        let mut e = Vec::new();
        let mut err = |k: &str, m: String| e.push(ParamError::new(k, m));
        if self.d == 0 || self.d > 1 << 20 {
            err("D", format!("must be in 1..=1048576 (got {})", self.d));
        }
        if self.n < 2 || self.n > 1 << 20 {
            err(
                "N",
                format!(
                    "must be in 2..=1048576 (query plus at least one context token; got {})",
                    self.n
                ),
            );
        }
        if let Err(m) = self.k.validate() {
            err("K", m);
        }
        if self.width == 0 || self.width > 1 << 16 {
            err(
                "width",
                format!("must be in 1..=65536 (got {})", self.width),
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            err(
                "lr",
                format!("must be a finite number > 0 (got {})", self.lr),
            );
        }
        if self.batch == 0 || self.batch > 1 << 16 {
            err(
                "batch",
                format!("must be in 1..=65536 (got {})", self.batch),
            );
        }
        for (k, v) in [("wd_attn", self.wd_attn), ("wd_mlp", self.wd_mlp)] {
            if !(v.is_finite() && v >= 0.0) {
                err(k, format!("must be a finite number >= 0 (got {v})"));
            }
        }
        if self.epochs == 0 {
            err("epochs", "must be >= 1 (got 0)".into());
        }
        if self.iters_per_epoch == 0 {
            err("iters_per_epoch", "must be >= 1 (got 0)".into());
        }
        if self
            .epochs
            .checked_mul(self.iters_per_epoch)
            .is_none_or(|t| t > i64::MAX as u64)
        {
            err(
                "epochs",
                "epochs * iters_per_epoch must fit in 63 bits".into(),
            );
        }
        if self.eval_every == Some(0) {
            err("eval_every", "must be >= 1 (got 0)".into());
        }
        if self.save_every == Some(0) {
            err("save_every", "must be >= 1 (got 0)".into());
        }
        if let Some(x) = self.early_stop {
            if !(x.is_finite() && x > 0.0 && x <= 1.0) {
                err(
                    "early_stop",
                    format!("must be in (0, 1] or null to disable (got {x})"),
                );
            }
        }
        if !(self.t_icl_threshold.is_finite()
            && self.t_icl_threshold > 0.0
            && self.t_icl_threshold <= 1.0)
        {
            err(
                "t_icl_threshold",
                format!("must be in (0, 1] (got {})", self.t_icl_threshold),
            );
        }
        for (k, v) in [
            ("seed", Some(self.seed)),
            ("data_seed", self.data_seed),
            ("test_seed", self.test_seed),
        ] {
            if v.is_some_and(|s| s > i64::MAX as u64) {
                err(
                    k,
                    format!(
                        "must be < 2^63 so it fits the summary's Int64 column (got {})",
                        v.unwrap()
                    ),
                );
            }
        }
        if self.n_test == Some(0) {
            err("n_test", "must be >= 1 or null for all (got 0)".into());
        }
        match self.beta0 {
            Some(b) if self.model != ModelKind::Minimal => err(
                "beta0",
                format!(
                    "only the minimal model has beta0 (model is {}; got {b}); use null",
                    self.model
                ),
            ),
            Some(b) if !b.is_finite() => err(
                "beta0",
                format!("must be a finite number or null (got {b})"),
            ),
            _ => {}
        }
        if self.context == ContextMode::Equalized {
            if self.k.is_infinite() {
                err(
                    "context",
                    "equalized contexts need a finite K (got K = inf)".into(),
                );
            }
            if !self.n.is_multiple_of(2) || self.n < 4 {
                err(
                    "N",
                    format!("equalized contexts need an even N >= 4 (got {})", self.n),
                );
            }
        }
        if self.model == ModelKind::MlpOnly {
            if self.k.is_infinite() {
                err(
                    "K",
                    "mlp_only memorizes a finite item set; K = inf is not allowed".into(),
                );
            }
            if self.context != ContextMode::Standard {
                err("context", "mlp_only has no context; use standard".into());
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({"model": "transformer", "N": 100, "K": 2000, "epochs": 10, "seed": 1})
    }

    #[test]
    fn defaults_follow_the_paper() {
        let p = TrainParams::from_json(&base()).unwrap();
        assert_eq!(
            (p.d, p.width, p.batch, p.iters_per_epoch),
            (63, 512, 128, 469)
        );
        assert_eq!((p.lr, p.wd_attn, p.wd_mlp), (0.01, 1e-10, 1e-10));
        assert_eq!(p.early_stop, Some(0.99));
        assert_eq!(p.eval_interval(), 469);
        let mut v = base();
        v["early_stop"] = serde_json::Value::Null;
        assert_eq!(TrainParams::from_json(&v).unwrap().early_stop, None);
        v["K"] = json!("inf");
        assert!(TrainParams::from_json(&v).unwrap().k.is_infinite());
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("lr", json!(-0.1)),
            ("N", json!(1)),
            ("width", json!(0)),
            ("K", json!(7)),
            ("wd_attn", json!(-1.0)),
            ("early_stop", json!(1.5)),
            ("beta0", json!(0.5)),
            ("epochs", json!(0)),
        ];
        for (key, val) in cases {
            let mut v = base();
            v[key] = val.clone();
            let errs = TrainParams::from_json(&v).unwrap_err();
            assert!(errs.iter().any(|e| e.key == key), "{key}={val}: {errs:?}");
        }
        let mut v = base();
        v["lrr"] = json!(1);
        assert_eq!(TrainParams::from_json(&v).unwrap_err()[0].key, "lrr");
        let mut v = base();
        v["model"] = json!("rnn");
        assert_eq!(TrainParams::from_json(&v).unwrap_err()[0].key, "model");
        let mut v = base();
        v["model"] = json!("mlp_only");
        v["K"] = json!("inf");
        assert!(TrainParams::from_json(&v)
            .unwrap_err()
            .iter()
            .any(|e| e.key == "K"));
    }
}
