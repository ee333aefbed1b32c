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

pub fn prob(errs: &mut Vec<ParamError>, key: &str, v: f64) {
    if !(v > 0.0 && v < 1.0) {
        errs.push(ParamError::new(
            key,
            format!("must be strictly between 0 and 1 (got {v})"),
        ));
    }
}

pub fn positive(errs: &mut Vec<ParamError>, key: &str, v: f64) {
    if !(v > 0.0 && v.is_finite()) {
        errs.push(ParamError::new(
            key,
            format!("must be a positive number (got {v})"),
        ));
    }
}

pub fn check_common(errs: &mut Vec<ParamError>, c: &Common) {
    if c.profile.trim().is_empty() {
        errs.push(ParamError::new(
            "profile",
            "must be a non-empty profile name",
        ));
    }
    if c.n_boot < 10 {
        errs.push(ParamError::new(
            "n_boot",
            format!("must be >= 10 (got {})", c.n_boot),
        ));
    }
    if c.n_boot > 100_000 {
        errs.push(ParamError::new(
            "n_boot",
            format!("must be <= 100000 (got {})", c.n_boot),
        ));
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

pub fn d_n_boot() -> usize {
    1000
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
