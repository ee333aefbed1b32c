//! Parameters of the claim commands C1, C2, C7, C8, C9: typed, defaulted, validated, unknown
//! keys rejected (the shared parts are `icl_claim::params`).

use icl_claim::params::Checker;
pub use icl_claim::params::{check, Common, HasCommon, Validate};
use icl_claim::params::{d_high_accuracy, d_iwl_chance_max, d_n_boot, d_paper_acquired};
use icl_store::task::ParamError;
use serde::Deserialize;

macro_rules! has_common {
    ($($t:ty),*) => {$(
        impl HasCommon for $t {
            fn common(&self) -> Common {
                Common { profile: self.profile.clone(), n_boot: self.n_boot, bootstrap_seed: self.bootstrap_seed }
            }
        }
    )*};
}
has_common!(C1Params, C2Params, C7Params, C9Params);

/// `c1`: the K sweep (Fig 2b,c).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C1Params {
    /// The profile name the pipeline runs under (ci, quick, paper); copied into the claim row.
    pub profile: String,
    /// Bootstrap resamples for intervals.
    #[serde(default = "d_n_boot")]
    pub n_boot: usize,
    /// Seed of the bootstrap's ChaCha8 generator.
    #[serde(default)]
    pub bootstrap_seed: u64,
    /// ICL counts as absent at the smallest K below this mean accuracy. Default: the label-count
    /// floor of the runs' N plus [`crate::floor::FLOOR_MARGIN`] ("no better than counting").
    #[serde(default)]
    pub icl_low_max: Option<f64>,
    /// ICL counts as acquired at the largest K above this mean accuracy.
    #[serde(default = "d_high_accuracy")]
    pub icl_high_min: f64,
    /// IWL counts as memorized at the smallest K above this.
    #[serde(default = "d_high_accuracy")]
    pub iwl_high_min: f64,
    /// IWL counts as near chance at the largest K below this.
    #[serde(default = "d_iwl_chance_max")]
    pub iwl_low_max: f64,
    /// "Narrow": the sigmoid's 10%-90% rise spans at most this many decades of K.
    #[serde(default = "d_width")]
    pub max_width_decades: f64,
    /// Upper bound of the sigmoid slope a (per decade); the reference code uses 100.
    #[serde(default = "d_amax")]
    pub a_max: f64,
    /// A fit only locates K* if its amplitude d is at least this (a real rise, not noise).
    #[serde(default = "crate::kstar::d_min_rise")]
    pub min_rise: f64,
}
fn d_width() -> f64 {
    1.0
}
fn d_amax() -> f64 {
    100.0
}

impl Validate for C1Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Checker::default();
        e.common(&self.common());
        if let Some(v) = self.icl_low_max {
            e.prob("icl_low_max", v);
            if v >= self.icl_high_min {
                e.push(ParamError::new(
                    "icl_low_max",
                    format!(
                        "must be below icl_high_min ({} >= {})",
                        v, self.icl_high_min
                    ),
                ));
            }
        }
        e.prob("icl_high_min", self.icl_high_min);
        e.prob("iwl_high_min", self.iwl_high_min);
        e.prob("iwl_low_max", self.iwl_low_max);
        e.prob("min_rise", self.min_rise);
        e.positive("max_width_decades", self.max_width_decades);
        e.positive("a_max", self.a_max);
        if self.iwl_low_max >= self.iwl_high_min {
            e.push(ParamError::new(
                "iwl_low_max",
                format!(
                    "must be below iwl_high_min ({} >= {})",
                    self.iwl_low_max, self.iwl_high_min
                ),
            ));
        }
        e.errors()
    }
}

/// `c2`: abrupt acquisition above K* (Fig 2d).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C2Params {
    /// The profile name the pipeline runs under (ci, quick, paper); copied into the claim row.
    pub profile: String,
    /// Bootstrap resamples for intervals.
    #[serde(default = "d_n_boot")]
    pub n_boot: usize,
    /// Seed of the bootstrap's ChaCha8 generator.
    #[serde(default)]
    pub bootstrap_seed: u64,
    /// The plateau ends when ICL accuracy first reaches this. Default: the label-count floor of
    /// the runs' N plus [`crate::floor::FLOOR_MARGIN`] (the first accuracy counting cannot give).
    #[serde(default)]
    pub plateau_threshold: Option<f64>,
    /// ICL is acquired when accuracy first reaches this (the paper's 0.95).
    #[serde(default = "d_paper_acquired")]
    pub acquired_threshold: f64,
    /// "Abrupt": median plateau/rise ratio at least this.
    #[serde(default = "d_ratio")]
    pub min_ratio: f64,
    /// At least this fraction of the runs must acquire ICL for the claim to be tested fully.
    #[serde(default = "d_half")]
    pub min_acquired_frac: f64,
    /// Curves drawn in the figure (the first ones in input order).
    #[serde(default = "d_curves")]
    pub max_curves: usize,
    /// Use only runs with K >= this (K = inf counts as above), read from the summaries. Without
    /// it, and with summaries given, only the runs at the largest K are used (the ones surely
    /// above K* when the curves of a whole K sweep are passed in).
    #[serde(default)]
    pub min_k: Option<i64>,
}
fn d_ratio() -> f64 {
    3.0
}
fn d_half() -> f64 {
    0.5
}
fn d_curves() -> usize {
    10
}

impl Validate for C2Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Checker::default();
        e.common(&self.common());
        if let Some(v) = self.plateau_threshold {
            e.prob("plateau_threshold", v);
            if v >= self.acquired_threshold {
                e.push(ParamError::new(
                    "plateau_threshold",
                    format!(
                        "must be below acquired_threshold ({} >= {})",
                        v, self.acquired_threshold
                    ),
                ));
            }
        }
        e.prob("acquired_threshold", self.acquired_threshold);
        e.prob("min_acquired_frac", self.min_acquired_frac);
        e.positive("min_ratio", self.min_ratio);
        if self.max_curves == 0 {
            e.push(ParamError::new("max_curves", "must be >= 1 (got 0)"));
        }
        if let Some(k) = self.min_k {
            if k < 1 {
                e.push(ParamError::new("min_k", format!("must be >= 1 (got {k})")));
            }
        }
        e.errors()
    }
}

/// `c7`: t_ICL vs N at K = infinity (Fig 6b, A4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C7Params {
    /// The profile name the pipeline runs under (ci, quick, paper); copied into the claim row.
    pub profile: String,
    /// Bootstrap resamples for intervals.
    #[serde(default = "d_n_boot")]
    pub n_boot: usize,
    /// Seed of the bootstrap's ChaCha8 generator.
    #[serde(default)]
    pub bootstrap_seed: u64,
    /// Summary column holding the context length; default: the first of N, len_context.
    #[serde(default)]
    pub n_column: Option<String>,
    /// "Linear" when the consistency test below cannot run (fewer than 3 N values): R^2 of the
    /// median-vs-N line at least this.
    #[serde(default = "d_r2")]
    pub min_r2: f64,
    /// "Linear": the medians do not depart from a line beyond their standard errors
    /// (chi-squared p-value at least this), and the slope's interval is above 0.
    #[serde(default = "d_p")]
    pub min_linear_p: f64,
    /// "Long-tailed": pooled (q90-q50)/(q50-q10) of t_ICL/median(N) at least this.
    #[serde(default = "d_tail")]
    pub min_tail_ratio: f64,
    /// Distinct N values needed for a slope.
    #[serde(default = "d_nvals")]
    pub min_n_values: usize,
}
fn d_r2() -> f64 {
    0.9
}
fn d_p() -> f64 {
    0.05
}
fn d_tail() -> f64 {
    1.5
}
fn d_nvals() -> usize {
    3
}

impl Validate for C7Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Checker::default();
        e.common(&self.common());
        e.prob("min_r2", self.min_r2);
        e.prob("min_linear_p", self.min_linear_p);
        e.positive("min_tail_ratio", self.min_tail_ratio);
        if self.min_n_values < 2 {
            e.push(ParamError::new(
                "min_n_values",
                format!("must be >= 2 (got {})", self.min_n_values),
            ));
        }
        if let Some(c) = &self.n_column {
            if c.trim().is_empty() {
                e.push(ParamError::new("n_column", "must be a column name"));
            }
        }
        e.errors()
    }
}

/// `c9`: bimodal outcomes near K* (Fig 6c).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C9Params {
    /// The profile name the pipeline runs under (ci, quick, paper); copied into the claim row.
    pub profile: String,
    /// Bootstrap resamples for intervals.
    #[serde(default = "d_n_boot")]
    pub n_boot: usize,
    /// Seed of the bootstrap's ChaCha8 generator.
    #[serde(default)]
    pub bootstrap_seed: u64,
    /// Both groups must be substantial: the Wilson 95% interval of the acquired fraction must
    /// lie inside [min_group_frac, 1 - min_group_frac].
    #[serde(default = "d_group")]
    pub min_group_frac: f64,
    /// "Early": the median t_ICL of the runs that acquire is at most this fraction of the
    /// training budget.
    #[serde(default = "d_half")]
    pub early_frac: f64,
    /// Sarle's bimodality coefficient above this counts as bimodal (5/9: the uniform's value).
    #[serde(default = "d_bc")]
    pub bimodality_threshold: f64,
    /// Histogram bins over [0, budget].
    #[serde(default = "d_bins")]
    pub bins: usize,
}
fn d_group() -> f64 {
    0.05
}
fn d_bc() -> f64 {
    5.0 / 9.0
}
fn d_bins() -> usize {
    12
}

impl Validate for C9Params {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Checker::default();
        e.common(&self.common());
        if !(self.min_group_frac >= 0.0 && self.min_group_frac < 0.5) {
            e.push(ParamError::new(
                "min_group_frac",
                format!("must be in [0, 0.5) (got {})", self.min_group_frac),
            ));
        }
        e.prob("early_frac", self.early_frac);
        e.prob("bimodality_threshold", self.bimodality_threshold);
        if !(2..=200).contains(&self.bins) {
            e.push(ParamError::new(
                "bins",
                format!("must be in 2..=200 (got {})", self.bins),
            ));
        }
        e.errors()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_unknown_keys() {
        let p: C1Params = check(&json!({"profile": "ci"})).unwrap();
        assert_eq!(p.n_boot, 1000);
        assert_eq!(p.icl_low_max, None);
        let e = check::<C1Params>(&json!({"profile": "ci", "bogus": 1})).unwrap_err();
        assert_eq!(e[0].key, "bogus");
        let e = check::<C7Params>(&json!({})).unwrap_err();
        assert_eq!(e[0].key, "profile");
    }

    #[test]
    fn ranges_are_checked_by_key() {
        let e =
            check::<C2Params>(&json!({"profile": "ci", "plateau_threshold": 0.97})).unwrap_err();
        assert!(e
            .iter()
            .any(|x| x.key == "plateau_threshold" && x.message.contains("acquired_threshold")));
        let e = check::<C9Params>(&json!({"profile": "ci", "bins": 1, "n_boot": 3})).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["n_boot", "bins"]);
        let e = check::<C1Params>(&json!({"profile": "ci", "icl_high_min": 1.5})).unwrap_err();
        assert!(e
            .iter()
            .any(|x| x.key == "icl_high_min" && x.message.contains("got 1.5")));
    }
}
