//! Shared plumbing of the claim commands: parameter validation, outputs, reading the c5 claim.

use crate::claim::Claim;
use anyhow::{bail, Context, Result};
use icl_plot::Figure;
use icl_store::task::{ParamError, TaskSpec};

/// Value checks beyond what serde's types enforce.
pub trait Validate {
    fn validate(&self) -> Vec<ParamError>;
}

/// Accumulates parameter errors with messages that name the key and what is allowed.
#[derive(Default)]
pub struct Checker(pub Vec<ParamError>);

impl Checker {
    pub fn range(&mut self, key: &str, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.0.push(ParamError::new(
                key,
                format!("must be in [{lo}, {hi}] (got {v})"),
            ));
        }
    }
    pub fn open01(&mut self, key: &str, v: f64) {
        if !(v > 0.0 && v < 1.0) {
            self.0
                .push(ParamError::new(key, format!("must be in (0, 1) (got {v})")));
        }
    }
    pub fn min_usize(&mut self, key: &str, v: usize, lo: usize) {
        if v < lo {
            self.0
                .push(ParamError::new(key, format!("must be >= {lo} (got {v})")));
        }
    }
    pub fn gt(&mut self, key: &str, v: f64, lo: f64) {
        if !(v.is_finite() && v > lo) {
            self.0
                .push(ParamError::new(key, format!("must be > {lo} (got {v})")));
        }
    }
    pub fn nonempty(&mut self, key: &str, v: &str) {
        if v.trim().is_empty() {
            self.0.push(ParamError::new(
                key,
                "must be a non-empty profile name (ci, quick, paper, ...)",
            ));
        }
    }
    pub fn fail(&mut self, key: &str, msg: impl Into<String>) {
        self.0.push(ParamError::new(key, msg));
    }
}

pub fn default_level() -> f64 {
    0.95
}
pub fn default_boot() -> usize {
    1000
}

/// What a command produces.
pub struct Output {
    pub claim: Claim,
    pub figure: Figure,
}

/// Write the declared outputs: `claim` (.parquet), `figure_png` (.png), `figure_svg` (.svg).
pub fn write_outputs(task: &TaskSpec, out: &Output) -> Result<()> {
    for name in &task.outputs {
        match name.as_str() {
            "claim" => icl_claim::claim::write(
                &task.output_path("claim", "parquet"),
                std::slice::from_ref(&out.claim),
            )?,
            "figure_png" => out.figure.save_png(&task.output_path("figure_png", "png"))?,
            "figure_svg" => out.figure.save_svg(&task.output_path("figure_svg", "svg"))?,
            other => bail!(
                "stage {}: output `{other}` is not something icl-fit-nu writes (it writes claim, figure_png, figure_svg)",
                task.stage
            ),
        }
    }
    Ok(())
}

/// nu and ln(amp) of a c5 claim artifact (its `details.fit`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NuFromClaim {
    pub nu: f64,
    pub low: f64,
    pub high: f64,
    pub ln_amp: f64,
}

pub fn read_nu_claim(path: &std::path::Path) -> Result<NuFromClaim> {
    let df = crate::io::read_frame(path)?;
    let details = df
        .column("details")
        .ok()
        .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)))
        .with_context(|| format!("{}: no `details` text in the claim table", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&details)
        .with_context(|| format!("{}: details is not JSON", path.display()))?;
    let get = |k: &str| v["fit"][k].as_f64();
    match (get("nu"), get("ln_amp")) {
        (Some(nu), Some(ln_amp)) => Ok(NuFromClaim {
            nu,
            low: get("low").unwrap_or(f64::NAN),
            high: get("high").unwrap_or(f64::NAN),
            ln_amp,
        }),
        _ => bail!(
            "{}: details.fit.nu / details.fit.ln_amp missing: is this the c5 claim?",
            path.display()
        ),
    }
}

/// Optional single input: `None` when undeclared or empty, an error when given more than once.
pub fn optional_input<'a>(task: &'a TaskSpec, name: &str) -> Result<Option<&'a std::path::Path>> {
    match task.inputs_all(name) {
        [] => Ok(None),
        [one] => Ok(Some(&one.path)),
        many => bail!(
            "stage {}: input `{name}` has {} artifacts, expected at most one",
            task.stage,
            many.len()
        ),
    }
}

/// Short human label for K (null = infinity).
pub fn k_label(k: Option<f64>) -> String {
    match k {
        None => "inf".into(),
        Some(k) => format!("{}", k.round() as u64),
    }
}

/// Evenly thinned indices (at most `max` of `0..n`), always including the first and last.
pub fn thin(n: usize, max: usize) -> Vec<usize> {
    match max {
        _ if n <= max => (0..n).collect(),
        0 => Vec::new(),
        1 => vec![0],
        _ => {
            let mut v: Vec<usize> = (0..max).map(|i| i * (n - 1) / (max - 1)).collect();
            v.dedup();
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_ends() {
        assert_eq!(thin(3, 10), vec![0, 1, 2]);
        assert_eq!(thin(101, 3), vec![0, 50, 100]);
        assert_eq!(thin(5, 1), vec![0]);
        assert!(thin(5, 0).is_empty());
    }
}
