//! Parameters of the claim commands: typed, defaulted, validated, unknown keys rejected.

use icl_claim::params::{d_n_boot, Checker, Common, Validate};
use icl_store::task::ParamError;
use serde::Deserialize;

fn d_acquire() -> f64 {
    0.9
}
fn d_rise() -> f64 {
    0.1
}
fn d_rho() -> f64 {
    0.5
}
fn d_r2() -> f64 {
    0.5
}
fn d_curves() -> usize {
    8
}
fn d_spearman() -> f64 {
    -0.5
}
fn d_wd_values() -> usize {
    3
}
fn d_alpha() -> f64 {
    0.05
}
fn d_strata() -> usize {
    2
}
fn d_arm_runs() -> usize {
    4
}

/// The keys every command accepts (see `icl_claim::params::Common`).
fn common(e: &mut Checker, profile: &str, n_boot: usize) {
    e.common(&Common {
        profile: profile.to_string(),
        n_boot,
        bootstrap_seed: 0,
    });
}

fn thresholds(e: &mut Checker, acquire: f64, lose: Option<f64>) {
    e.prob("acquire_threshold", acquire);
    let Some(lose) = lose else { return };
    e.prob("lose_threshold", lose);
    e.below("lose_threshold", lose, "acquire_threshold", acquire);
}

/// `c10`: transience exists; the post-acquisition ICL-vs-IWL loss relation against the theory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C10Params {
    /// The profile name the pipeline runs under; copied into the claim row.
    pub profile: String,
    #[serde(default = "d_n_boot")]
    pub n_boot: usize,
    #[serde(default)]
    pub bootstrap_seed: u64,
    /// ICL acquired at the first evaluation with accuracy >= this.
    #[serde(default = "d_acquire")]
    pub acquire_threshold: f64,
    /// ICL lost at the first evaluation after acquisition with accuracy < this. Default, per
    /// run: halfway between acquire_threshold and the label-count floor of the run's N.
    #[serde(default)]
    pub lose_threshold: Option<f64>,
    /// "IWL rises": IWL accuracy at the loss minus IWL accuracy at acquisition at least this.
    #[serde(default = "d_rise")]
    pub min_iwl_rise: f64,
    /// Relation direction: Spearman(ICL loss, IWL loss) after acquisition at most -this.
    #[serde(default = "d_rho")]
    pub min_anticorrelation: f64,
    /// Relation shape: R^2 of ln(ICL loss) against the theory with its one constant fitted.
    #[serde(default = "d_r2")]
    pub min_relation_r2: f64,
    /// Curves drawn (transient runs first).
    #[serde(default = "d_curves")]
    pub max_curves: usize,
}

impl Validate for C10Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Checker::default();
        common(&mut e, &self.profile, self.n_boot);
        thresholds(&mut e, self.acquire_threshold, self.lose_threshold);
        if !(self.min_iwl_rise >= 0.0 && self.min_iwl_rise < 1.0) {
            e.push(ParamError::new(
                "min_iwl_rise",
                format!("must be in [0, 1) (got {})", self.min_iwl_rise),
            ));
        }
        e.prob("min_anticorrelation", self.min_anticorrelation);
        e.prob("min_relation_r2", self.min_relation_r2);
        if self.max_curves == 0 {
            e.push(ParamError::new("max_curves", "must be >= 1 (got 0)"));
        }
        e.errors()
    }
}

/// `c11`: the time of loss shrinks as the attention weight decay grows; too much prevents ICL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C11Params {
    pub profile: String,
    #[serde(default = "d_n_boot")]
    pub n_boot: usize,
    #[serde(default)]
    pub bootstrap_seed: u64,
    #[serde(default = "d_acquire")]
    pub acquire_threshold: f64,
    /// As C10's: default per run, halfway between acquire_threshold and the count floor.
    #[serde(default)]
    pub lose_threshold: Option<f64>,
    /// Decay values that must show a loss (at least one transient run each).
    #[serde(default = "d_wd_values")]
    pub min_wd_values: usize,
    /// "Decreases": Spearman(wd_attn, time of loss) over the acquiring runs at most this
    /// (runs not lost within their budget rank after every lost run).
    #[serde(default = "d_spearman")]
    pub max_spearman: f64,
}

impl Validate for C11Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Checker::default();
        common(&mut e, &self.profile, self.n_boot);
        thresholds(&mut e, self.acquire_threshold, self.lose_threshold);
        if self.min_wd_values < 2 {
            e.push(ParamError::new(
                "min_wd_values",
                format!("must be >= 2 (got {})", self.min_wd_values),
            ));
        }
        if !(self.max_spearman > -1.0 && self.max_spearman < 0.0) {
            e.push(ParamError::new(
                "max_spearman",
                format!("must be in (-1, 0) (got {})", self.max_spearman),
            ));
        }
        e.errors()
    }
}

/// `c12`: acquired fraction vs K, standard vs equalized contexts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C12Params {
    pub profile: String,
    #[serde(default = "d_n_boot")]
    pub n_boot: usize,
    #[serde(default)]
    pub bootstrap_seed: u64,
    /// Significance level of the Cochran-Mantel-Haenszel test of no difference.
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    /// K values run in both arms needed for a test.
    #[serde(default = "d_strata")]
    pub min_strata: usize,
    /// Runs per arm (over the shared K values) needed for a test.
    #[serde(default = "d_arm_runs")]
    pub min_runs_per_arm: usize,
    /// A run has ICL when its final ICL accuracy is above this (Fig 6e counts > 0.75).
    #[serde(default = "d_fig6e_threshold")]
    pub final_acc_threshold: f64,
}
fn d_fig6e_threshold() -> f64 {
    0.75
}

impl Validate for C12Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Checker::default();
        common(&mut e, &self.profile, self.n_boot);
        e.prob("alpha", self.alpha);
        e.prob("final_acc_threshold", self.final_acc_threshold);
        if self.min_strata == 0 {
            e.push(ParamError::new("min_strata", "must be >= 1 (got 0)"));
        }
        if self.min_runs_per_arm == 0 {
            e.push(ParamError::new("min_runs_per_arm", "must be >= 1 (got 0)"));
        }
        e.errors()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use icl_claim::params::check;
    use serde_json::json;

    #[test]
    fn defaults_unknown_keys_and_ranges() {
        let p: C10Params = check(&json!({"profile": "ci"})).unwrap();
        assert_eq!((p.acquire_threshold, p.lose_threshold), (0.9, None));
        let e = check::<C11Params>(&json!({"profile": "ci", "bogus": 1})).unwrap_err();
        assert_eq!(e[0].key, "bogus");
        let e = check::<C10Params>(&json!({"profile": "ci", "lose_threshold": 0.95})).unwrap_err();
        assert!(
            e.iter()
                .any(|x| x.key == "lose_threshold" && x.message.contains("acquire_threshold")),
            "{e:?}"
        );
        let e =
            check::<C12Params>(&json!({"profile": "ci", "alpha": 2.0, "n_boot": 1})).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["n_boot", "alpha"]);
        let e = check::<C11Params>(&json!({"profile": "ci", "max_spearman": 0.3})).unwrap_err();
        assert_eq!(e[0].key, "max_spearman");
    }
}
