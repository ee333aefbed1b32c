//! The claim record every claim stage emits (one row), and its Arrow form.
//!
//! Column types (ARCHITECTURE.md, `claim`): claim, figure, statement, paper_value: Utf8;
//! value, low, high: Float64 (null where there is no number; NaN in memory); unit, profile,
//! verdict: Utf8; n_runs: Int64; details: Utf8 (JSON). Other claim crates (fit-nu,
//! transience) use this type so that the report can stack every claim table.

use anyhow::{bail, Context, Result};
use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// How well our data support the paper's claim, by rules written in each claim's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "reproduced")]
    Reproduced,
    #[serde(rename = "partly")]
    Partly,
    #[serde(rename = "not reproduced")]
    Not,
    /// The data cannot test the claim (too few settings or runs); says nothing either way.
    #[serde(rename = "inconclusive")]
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Partly => "partly",
            Verdict::Not => "not reproduced",
            Verdict::Inconclusive => "inconclusive",
        }
    }
    /// Parse a verdict string; `not` is accepted for `not reproduced` (the shorthand).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "reproduced" => Verdict::Reproduced,
            "partly" => Verdict::Partly,
            "not reproduced" | "not" => Verdict::Not,
            "inconclusive" => Verdict::Inconclusive,
            other => bail!(
                "verdict `{other}` is not one of reproduced, partly, not reproduced, inconclusive"
            ),
        })
    }
    /// [`Verdict::from_checks`], unless the data cannot test the claim at all.
    pub fn from_checks_if(testable: bool, core: bool, all: bool) -> Self {
        if testable {
            Self::from_checks(core, all)
        } else {
            Verdict::Inconclusive
        }
    }
    /// The common rule shape: all checks pass -> reproduced; the claim's core holds but some
    /// check fails -> partly; the core fails -> not.
    pub fn from_checks(core: bool, all: bool) -> Self {
        match (core, all) {
            (true, true) => Verdict::Reproduced,
            (true, false) => Verdict::Partly,
            _ => Verdict::Not,
        }
    }
}

/// One verdict rule and its outcome; `details.checks` lists them (REPORT.md tabulates them).
/// The one definition every claim crate uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub pass: bool,
    /// The measured number the rule looks at (null when there is none).
    pub value: Option<f64>,
    pub rule: String,
}

impl Check {
    /// A check whose value is `value` when finite, null otherwise.
    pub fn new(name: &str, pass: bool, value: f64, rule: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            pass,
            value: value.is_finite().then_some(value),
            rule: rule.into(),
        }
    }
}

/// One claim row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Claim id, e.g. "C1".
    pub claim: String,
    /// The paper's figure, e.g. "Fig 2b,c".
    pub figure: String,
    pub statement: String,
    pub paper_value: String,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub unit: String,
    pub profile: String,
    pub verdict: Verdict,
    pub n_runs: i64,
    /// JSON text with the numbers behind the verdict.
    pub details: String,
}

pub const COLUMNS: [&str; 12] = [
    "claim",
    "figure",
    "statement",
    "paper_value",
    "value",
    "low",
    "high",
    "unit",
    "profile",
    "verdict",
    "n_runs",
    "details",
];

/// Claims as one Arrow batch, in the given order.
pub fn to_batch(claims: &[Claim]) -> Result<RecordBatch> {
    let s = |f: &dyn Fn(&Claim) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(
            claims.iter().map(|c| f(c).to_string()).collect::<Vec<_>>(),
        ))
    };
    // Non-finite numbers are written as null: "no number" opens as missing everywhere.
    let x = |f: &dyn Fn(&Claim) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from(
            claims
                .iter()
                .map(|c| Some(f(c)).filter(|v| v.is_finite()))
                .collect::<Vec<_>>(),
        ))
    };
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("claim", s(&|c| &c.claim)),
        ("figure", s(&|c| &c.figure)),
        ("statement", s(&|c| &c.statement)),
        ("paper_value", s(&|c| &c.paper_value)),
        ("value", x(&|c| c.value)),
        ("low", x(&|c| c.low)),
        ("high", x(&|c| c.high)),
        ("unit", s(&|c| &c.unit)),
        ("profile", s(&|c| &c.profile)),
        ("verdict", s(&|c| c.verdict.as_str())),
        (
            "n_runs",
            Arc::new(Int64Array::from(
                claims.iter().map(|c| c.n_runs).collect::<Vec<_>>(),
            )),
        ),
        ("details", s(&|c| &c.details)),
    ];
    RecordBatch::try_from_iter(cols).context("cannot build claim batch")
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    b.column_by_name(name).with_context(|| {
        let have: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        format!(
            "claim table has no column `{name}` (have: {})",
            have.join(", ")
        )
    })
}

fn strings(b: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let a = arrow::compute::cast(col(b, name)?, &DataType::Utf8)
        .with_context(|| format!("claim column `{name}` must be text"))?;
    let a = a
        .as_any()
        .downcast_ref::<StringArray>()
        .context("cast to Utf8")?;
    Ok((0..a.len())
        .map(|i| {
            if a.is_valid(i) {
                a.value(i).to_string()
            } else {
                String::new()
            }
        })
        .collect())
}

fn floats(b: &RecordBatch, name: &str) -> Result<Vec<f64>> {
    let a = arrow::compute::cast(col(b, name)?, &DataType::Float64)
        .with_context(|| format!("claim column `{name}` must be numeric"))?;
    let a = a
        .as_any()
        .downcast_ref::<Float64Array>()
        .context("cast to Float64")?;
    Ok((0..a.len())
        .map(|i| if a.is_valid(i) { a.value(i) } else { f64::NAN })
        .collect())
}

/// Claims from a batch written by any claim crate (numeric columns of any width are accepted;
/// a missing `details` column reads as empty).
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Claim>> {
    let claim = strings(b, "claim")?;
    let figure = strings(b, "figure")?;
    let statement = strings(b, "statement")?;
    let paper_value = strings(b, "paper_value")?;
    let value = floats(b, "value")?;
    let low = floats(b, "low")?;
    let high = floats(b, "high")?;
    let unit = strings(b, "unit")?;
    let profile = strings(b, "profile")?;
    let verdict = strings(b, "verdict")?;
    let n_runs = floats(b, "n_runs")?;
    let details = if b.column_by_name("details").is_some() {
        strings(b, "details")?
    } else {
        vec![String::new(); b.num_rows()]
    };
    (0..b.num_rows())
        .map(|i| {
            Ok(Claim {
                claim: claim[i].clone(),
                figure: figure[i].clone(),
                statement: statement[i].clone(),
                paper_value: paper_value[i].clone(),
                value: value[i],
                low: low[i],
                high: high[i],
                unit: unit[i].clone(),
                profile: profile[i].clone(),
                verdict: Verdict::parse(&verdict[i])
                    .with_context(|| format!("claim `{}`", claim[i]))?,
                n_runs: if n_runs[i].is_finite() {
                    n_runs[i] as i64
                } else {
                    0
                },
                details: details[i].clone(),
            })
        })
        .collect()
}

/// Write claims as a Parquet artifact (through icl-store).
pub fn write(path: &Path, claims: &[Claim]) -> Result<()> {
    icl_store::parquet::write_batch(path, &to_batch(claims)?)
}

/// Read a claim artifact.
pub fn read(path: &Path) -> Result<Vec<Claim>> {
    from_batch(&icl_store::parquet::read_batch(path)?)
        .with_context(|| format!("in {}", path.display()))
}

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

/// `details` as stored: floats rounded by [`sanitize`], non-finite numbers as null. `ClaimStage`
/// applies it to every claim, so the details text does not move with the last bit of a libm.
pub fn details_text(v: &serde_json::Value) -> String {
    serde_json::to_string(&sanitize(v)).expect("JSON values serialize")
}

/// A claim's `details` text as stored: parsed and written back through [`details_text`] (an
/// empty text stays empty). Every claim row passes through it in `ClaimStage::run`.
pub fn normalize_details(text: &str) -> Result<String> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    let v: serde_json::Value =
        serde_json::from_str(text).context("a claim's details are not JSON")?;
    Ok(details_text(&v))
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

/// Sort key for claim ids: letters, then the number (so C2 < C10), then the rest.
pub fn id_key(id: &str) -> (String, u64, String) {
    let letters: String = id.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let rest = &id[letters.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let tail = rest[digits.len()..].to_string();
    (
        letters.to_ascii_uppercase(),
        digits.parse().unwrap_or(u64::MAX),
        tail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(id: &str, v: Verdict) -> Claim {
        Claim {
            claim: id.into(),
            figure: "Fig 2b,c".into(),
            statement: "s".into(),
            paper_value: "p".into(),
            value: 1.5,
            low: f64::NAN,
            high: 2.0,
            unit: "u".into(),
            profile: "ci".into(),
            verdict: v,
            n_runs: 12,
            details: "{\"a\":1}".into(),
        }
    }

    #[test]
    fn roundtrip_through_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.parquet");
        let cs = vec![
            sample("C1", Verdict::Reproduced),
            sample("C2", Verdict::Not),
        ];
        write(&p, &cs).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].verdict, Verdict::Not);
        assert!(back[0].low.is_nan());
        let b = to_batch(&cs).unwrap();
        assert_eq!(
            b.column_by_name("low").unwrap().null_count(),
            2,
            "NaN is written as null"
        );
        assert_eq!(
            b.column_by_name("verdict")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(1),
            "not reproduced"
        );
        assert_eq!(back[0].high, 2.0);
        assert_eq!(back[0].details, cs[0].details);
        let schema = to_batch(&cs).unwrap().schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, COLUMNS);
    }

    #[test]
    fn ids_sort_numerically() {
        let mut ids = vec!["C10", "C2", "C1", "C13", "C9"];
        ids.sort_by_key(|s| id_key(s));
        assert_eq!(ids, ["C1", "C2", "C9", "C10", "C13"]);
    }

    #[test]
    fn bad_verdict_is_named() {
        let c = sample("C3", Verdict::Partly);
        let mut b = to_batch(std::slice::from_ref(&c)).unwrap();
        let cols: Vec<ArrayRef> = b
            .schema()
            .fields()
            .iter()
            .zip(b.columns())
            .map(|(f, a)| {
                if f.name() == "verdict" {
                    Arc::new(StringArray::from(vec!["maybe"])) as ArrayRef
                } else {
                    a.clone()
                }
            })
            .collect();
        b = RecordBatch::try_new(b.schema(), cols).unwrap();
        let e = format!("{:#}", from_batch(&b).unwrap_err());
        assert!(e.contains("maybe") && e.contains("C3"), "{e}");
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
        let write = |p: &std::path::Path| write(p, std::slice::from_ref(&c));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("claim.parquet");
        write(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        write(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "deterministic bytes");
        let df = crate::frame::read_df(&p).unwrap();
        assert_eq!(df.height(), 1);
        assert_eq!(
            crate::frame::opt_f64s(&df, "value").unwrap(),
            vec![Some(0.66)]
        );
        assert_eq!(crate::frame::opt_f64s(&df, "high").unwrap(), vec![None]);
        assert_eq!(
            crate::frame::opt_f64s(&df, "n_runs").unwrap(),
            vec![Some(12.0)]
        );
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
}
