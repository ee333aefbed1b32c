//! Claim parameters: the parse-and-validate entry point, range helpers, the keys every claim
//! command accepts, and the defaults several claims share (named by meaning).

use icl_store::task::{check_params, ParamError};
use serde::de::DeserializeOwned;

/// Range checks beyond what serde's types enforce.
pub trait Validate {
    fn validate(&self) -> Vec<ParamError>;
}

/// Deserialize and validate `params` as `T`.
pub fn check<T: DeserializeOwned + Validate>(
    params: &serde_json::Value,
) -> Result<T, Vec<ParamError>> {
    let p: T = check_params(params)?;
    let errs = p.validate();
    if errs.is_empty() {
        Ok(p)
    } else {
        Err(errs)
    }
}

/// Collects a parameter struct's value errors, each naming its key and what is allowed; the
/// one set of range checks every claim's [`Validate`] uses.
#[derive(Debug, Default)]
pub struct Checker(Vec<ParamError>);

impl Checker {
    /// Strictly between 0 and 1 (an accuracy or probability threshold).
    pub fn prob(&mut self, key: &str, v: f64) {
        if !(v > 0.0 && v < 1.0) {
            self.fail(key, format!("must be strictly between 0 and 1 (got {v})"));
        }
    }
    /// A positive finite number.
    pub fn positive(&mut self, key: &str, v: f64) {
        if !(v > 0.0 && v.is_finite()) {
            self.fail(key, format!("must be a positive number (got {v})"));
        }
    }
    /// Finite and above `lo`.
    pub fn gt(&mut self, key: &str, v: f64, lo: f64) {
        if !(v.is_finite() && v > lo) {
            self.fail(key, format!("must be > {lo} (got {v})"));
        }
    }
    /// Finite and inside `[lo, hi]`.
    pub fn range(&mut self, key: &str, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.fail(key, format!("must be in [{lo}, {hi}] (got {v})"));
        }
    }
    /// A count of at least `lo`.
    pub fn at_least(&mut self, key: &str, v: usize, lo: usize) {
        if v < lo {
            self.fail(key, format!("must be >= {lo} (got {v})"));
        }
    }
    /// `v` (at `key`) strictly below `bound` (the value of `bound_key`).
    pub fn below(&mut self, key: &str, v: f64, bound_key: &str, bound: f64) {
        if v >= bound {
            self.fail(key, format!("must be below {bound_key} ({v} >= {bound})"));
        }
    }
    /// The profile name copied into the claim row.
    pub fn profile(&mut self, v: &str) {
        if v.trim().is_empty() {
            self.fail(
                "profile",
                "must be a non-empty profile name (ci, quick, paper, ...)",
            );
        }
    }
    /// The keys every claim command accepts.
    pub fn common(&mut self, c: &Common) {
        self.profile(&c.profile);
        if !(10..=100_000).contains(&c.n_boot) {
            self.fail(
                "n_boot",
                format!("must be in 10..=100000 (got {})", c.n_boot),
            );
        }
    }
    pub fn fail(&mut self, key: &str, msg: impl Into<String>) {
        self.0.push(ParamError::new(key, msg));
    }
    pub fn push(&mut self, e: ParamError) {
        self.0.push(e);
    }
    pub fn errors(self) -> Vec<ParamError> {
        self.0
    }
}

/// Keys every command accepts (serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, so each struct repeats them and exposes them through [`HasCommon`]).
#[derive(Debug, Clone)]
pub struct Common {
    pub profile: String,
    pub n_boot: usize,
    pub bootstrap_seed: u64,
}

pub trait HasCommon {
    fn common(&self) -> Common;
}

/// Bootstrap resamples.
pub fn d_n_boot() -> usize {
    1000
}
/// Confidence level of an interval.
pub fn d_level() -> f64 {
    0.95
}
/// "High" accuracy: ICL acquired / items memorized.
pub fn d_high_accuracy() -> f64 {
    0.9
}
/// IWL "near chance" (the IWL test has no count floor: its context never holds the query).
pub fn d_iwl_chance_max() -> f64 {
    0.6
}
/// The paper's t_ICL threshold.
pub fn d_paper_acquired() -> f64 {
    0.95
}
