//! What several fit-nu claims share: reading the c5 claim, K labels, thinning.

use anyhow::{bail, Context, Result};

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
