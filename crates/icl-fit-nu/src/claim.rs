//! The one-row `claim` table (schema in ARCHITECTURE.md) and the verdict vocabulary.

/// The verdict vocabulary and the claim table's one Arrow schema live in icl-claim (shared by
/// every claim crate and read by icl-report); this module adds the check-list helpers fit-nu's
/// stages use.
pub use icl_claim::claim::Verdict;

pub use icl_claim::claim::Check;

/// Verdict of a list of checks with named core checks: all pass -> reproduced; every core check
/// passes and another fails -> partly; a core check fails (or is missing) -> not reproduced;
/// no checks -> inconclusive. The core is what the claim states; the rest are its numbers.
pub fn verdict_of(checks: &[Check], core: &[&str]) -> Verdict {
    if checks.is_empty() {
        return Verdict::Inconclusive;
    }
    let core_ok = core
        .iter()
        .all(|n| checks.iter().any(|c| c.name == *n && c.pass));
    Verdict::from_checks(core_ok, checks.iter().all(|c| c.pass))
}

/// The rule [`verdict_of`] applies, as REPORT.md prints it (`details.verdict_rule`).
pub fn verdict_rule(core: &[&str]) -> String {
    format!(
        "reproduced: all checks pass; partly: the core checks ({}) pass and another fails; not reproduced: a core check fails",
        core.join(", ")
    )
}

/// The checks as JSON for `details.checks`.
pub fn checks_json(checks: &[Check]) -> serde_json::Value {
    serde_json::to_value(checks).unwrap_or_default()
}

/// The claim record is icl-claim's (one definition); fit-nu's stages build `details` as JSON
/// and store it through [`details_text`].
pub use icl_claim::claim::Claim;

/// `details` as stored: floats rounded by [`sanitize`], non-finite numbers as null.
pub fn details_text(v: &serde_json::Value) -> String {
    serde_json::to_string(&sanitize(v)).expect("JSON values serialize")
}

/// Round floats to 6 significant digits (so details read well and do not flip on the last bit of
/// a platform-dependent libm) and turn non-finite numbers into null (JSON has no NaN).
pub fn sanitize(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => {
                if x.is_finite() {
                    serde_json::json!(round_sig(x, 6))
                } else {
                    Value::Null
                }
            }
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(sanitize).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), sanitize(x))).collect())
        }
        _ => v.clone(),
    }
}

pub fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let p = digits - 1 - x.abs().log10().floor() as i32;
    if !(-300..=300).contains(&p) {
        return x;
    }
    let m = 10f64.powi(p);
    let r = (x * m).round() / m;
    // Reparse through the shortest decimal so the JSON text is short.
    format!("{r:.*e}", (digits - 1) as usize)
        .parse()
        .unwrap_or(r)
}

/// A JSON number or null for non-finite values.
pub fn num(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!(x)
    } else {
        serde_json::Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_table_round_trips_through_parquet_and_polars() {
        let c = Claim {
            claim: "C5".into(),
            figure: "Fig 5".into(),
            statement: "s".into(),
            paper_value: "0.7".into(),
            value: 0.66,
            low: 0.6,
            high: f64::NAN,
            unit: "".into(),
            profile: "ci".into(),
            verdict: Verdict::Partly,
            n_runs: 12,
            details: details_text(
                &serde_json::json!({"nu": 0.123456789, "bad": f64::NAN, "list": [1.0, 2.5]}),
            ),
        };
        let write = |p: &std::path::Path| icl_claim::claim::write(p, std::slice::from_ref(&c));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("claim.parquet");
        write(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        write(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "deterministic bytes");
        let df = crate::io::read_frame(&p).unwrap();
        assert_eq!(df.height(), 1);
        assert_eq!(crate::io::col_f64(&df, "value").unwrap(), vec![Some(0.66)]);
        assert_eq!(crate::io::col_f64(&df, "high").unwrap(), vec![None]);
        assert_eq!(crate::io::col_f64(&df, "n_runs").unwrap(), vec![Some(12.0)]);
        let d = df
            .column("details")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap()
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v["nu"], serde_json::json!(0.123457));
        assert!(v["bad"].is_null());
        let verdict = df
            .column("verdict")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap()
            .to_string();
        assert_eq!(verdict, "partly");
    }

    #[test]
    fn verdicts_follow_the_core_checks() {
        let c = |n: &str, pass: bool| Check::new(n, pass, 1.0, "rule");
        let core = ["a"];
        assert_eq!(
            verdict_of(&[c("a", true), c("b", true)], &core),
            Verdict::Reproduced
        );
        assert_eq!(
            verdict_of(&[c("a", true), c("b", false)], &core),
            Verdict::Partly
        );
        // A passing non-core check does not rescue a failed core: not "partly".
        assert_eq!(
            verdict_of(&[c("a", false), c("b", true)], &core),
            Verdict::Not
        );
        // A core check that was never computed counts as failed.
        assert_eq!(verdict_of(&[c("b", true)], &core), Verdict::Not);
        assert_eq!(verdict_of(&[], &core), Verdict::Inconclusive);
        assert!(verdict_rule(&core).contains("core checks (a)"));
        assert_eq!(round_sig(123456.789, 3), 123000.0);
        assert_eq!(round_sig(0.000123456, 2), 0.00012);
    }
}
