//! `icl diff A B`: compare two tables (Parquet files, or folders holding `claims.parquet`):
//! schema, rows matched by key columns, numbers within per-column tolerances
//! (|a - b| <= abs + rel * |a|, with a from A), everything else exactly. Prints Markdown (or
//! JSON); the caller exits 0 when they agree, 1 when they differ, 2 on bad usage.

use crate::config::{DiffConfig, Tolerance};
use crate::error::CliError;
use arrow::array::{Array, ArrayRef, Float64Array};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SchemaDiff {
    pub column: String,
    /// Arrow type in A, or None if A lacks the column.
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueDiff {
    pub key: String,
    pub column: String,
    pub a: String,
    pub b: String,
    /// |a - b| for numbers.
    pub delta: Option<f64>,
    /// abs + rel * |a| for numbers.
    pub allowed: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub a: String,
    pub b: String,
    pub key: Vec<String>,
    pub rows_a: usize,
    pub rows_b: usize,
    pub schema: Vec<SchemaDiff>,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    pub duplicate_keys: Vec<String>,
    pub values: Vec<ValueDiff>,
    /// Numeric cells that differ but within tolerance (shown, not counted).
    pub within_tolerance: usize,
    pub same: bool,
}

/// A folder means its `claims.parquet`.
pub fn resolve_input(p: &Path) -> Result<PathBuf, CliError> {
    if p.is_dir() {
        let f = p.join("claims.parquet");
        if f.is_file() {
            Ok(f)
        } else {
            Err(CliError::Usage(format!("{} is a folder without claims.parquet (allowed: a Parquet file, or a folder holding claims.parquet)", p.display())))
        }
    } else if p.is_file() {
        Ok(p.to_path_buf())
    } else {
        Err(CliError::Usage(format!(
            "{} does not exist (allowed: a Parquet file, or a folder holding claims.parquet)",
            p.display()
        )))
    }
}

pub fn diff_files(
    a: &Path,
    b: &Path,
    cfg: &DiffConfig,
    keys: &[String],
) -> Result<DiffReport, CliError> {
    let pa = resolve_input(a)?;
    let pb = resolve_input(b)?;
    let ba = icl_store::parquet::read_batch(&pa)
        .map_err(|e| CliError::Usage(format!("cannot read A: {e:#}")))?;
    let bb = icl_store::parquet::read_batch(&pb)
        .map_err(|e| CliError::Usage(format!("cannot read B: {e:#}")))?;
    let keys: Vec<String> = if keys.is_empty() {
        cfg.key.clone()
    } else {
        keys.to_vec()
    };
    for k in &keys {
        for (name, batch) in [("A", &ba), ("B", &bb)] {
            if batch.schema().column_with_name(k).is_none() {
                return Err(CliError::Usage(format!(
                    "key column `{k}` is not in {name} (its columns: {})",
                    batch
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    let mut rep = compare(&ba, &bb, cfg, &keys);
    rep.a = pa.display().to_string();
    rep.b = pb.display().to_string();
    Ok(rep)
}

/// The comparison itself (pure).
pub fn compare(a: &RecordBatch, b: &RecordBatch, cfg: &DiffConfig, keys: &[String]) -> DiffReport {
    let sa = a.schema();
    let sb = b.schema();
    let mut schema = Vec::new();
    let mut common: Vec<String> = Vec::new();
    for f in sa.fields() {
        match sb.field_with_name(f.name()) {
            Ok(g) => {
                if f.data_type() != g.data_type() {
                    schema.push(SchemaDiff {
                        column: f.name().clone(),
                        a: Some(f.data_type().to_string()),
                        b: Some(g.data_type().to_string()),
                    });
                }
                common.push(f.name().clone());
            }
            Err(_) => schema.push(SchemaDiff {
                column: f.name().clone(),
                a: Some(f.data_type().to_string()),
                b: None,
            }),
        }
    }
    for g in sb.fields() {
        if sa.field_with_name(g.name()).is_err() {
            schema.push(SchemaDiff {
                column: g.name().clone(),
                a: None,
                b: Some(g.data_type().to_string()),
            });
        }
    }

    let row_keys = |batch: &RecordBatch| -> Vec<String> {
        (0..batch.num_rows())
            .map(|i| {
                if keys.is_empty() {
                    format!("row {i}")
                } else {
                    keys.iter()
                        .map(|k| {
                            let col = batch.column_by_name(k).expect("key column checked");
                            format!("{k}={}", cell_text(col, i))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            })
            .collect()
    };
    let ka = row_keys(a);
    let kb = row_keys(b);
    let mut duplicate_keys = Vec::new();
    let index = |ks: &[String], dups: &mut Vec<String>| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (i, k) in ks.iter().enumerate() {
            if m.insert(k.clone(), i).is_some() && !dups.contains(k) {
                dups.push(k.clone());
            }
        }
        m
    };
    let ia = index(&ka, &mut duplicate_keys);
    let ib = index(&kb, &mut duplicate_keys);
    let only_in_a: Vec<String> = ka
        .iter()
        .filter(|k| !ib.contains_key(*k))
        .cloned()
        .collect();
    let only_in_b: Vec<String> = kb
        .iter()
        .filter(|k| !ia.contains_key(*k))
        .cloned()
        .collect();

    let mut values = Vec::new();
    let mut within = 0;
    for col in &common {
        if keys.contains(col) || cfg.ignore.contains(col) {
            continue;
        }
        let ca = a.column_by_name(col).expect("common column");
        let cb = b.column_by_name(col).expect("common column");
        let numeric = ca.data_type().is_numeric() && cb.data_type().is_numeric();
        let (fa, fb) = if numeric {
            (as_f64(ca), as_f64(cb))
        } else {
            (None, None)
        };
        let tol = cfg
            .tolerances
            .get(col)
            .or_else(|| cfg.tolerances.get("default"))
            .copied()
            .unwrap_or_default();
        for (i, k) in ka.iter().enumerate() {
            let Some(&j) = ib.get(k) else { continue };
            if ia.get(k) != Some(&i) {
                continue; // a duplicate key; reported above
            }
            match (&fa, &fb) {
                (Some(fa), Some(fb)) => {
                    let (na, nb) = (fa.is_null(i), fb.is_null(j));
                    if na || nb {
                        if na != nb {
                            values.push(vd(k, col, ca, i, cb, j, None, None));
                        }
                        continue;
                    }
                    let (x, y) = (fa.value(i), fb.value(j));
                    match numbers_agree(x, y, tol) {
                        Agree::Exact => {}
                        Agree::Within => within += 1,
                        Agree::No { delta, allowed } => {
                            values.push(vd(k, col, ca, i, cb, j, Some(delta), Some(allowed)))
                        }
                    }
                }
                _ => {
                    let (ta, tb) = (cell_text(ca, i), cell_text(cb, j));
                    if ta != tb || ca.is_null(i) != cb.is_null(j) {
                        values.push(vd(k, col, ca, i, cb, j, None, None));
                    }
                }
            }
        }
    }
    let same = schema.is_empty()
        && only_in_a.is_empty()
        && only_in_b.is_empty()
        && duplicate_keys.is_empty()
        && values.is_empty();
    DiffReport {
        a: String::new(),
        b: String::new(),
        key: keys.to_vec(),
        rows_a: a.num_rows(),
        rows_b: b.num_rows(),
        schema,
        only_in_a,
        only_in_b,
        duplicate_keys,
        values,
        within_tolerance: within,
        same,
    }
}

#[allow(clippy::too_many_arguments)]
fn vd(
    k: &str,
    col: &str,
    ca: &ArrayRef,
    i: usize,
    cb: &ArrayRef,
    j: usize,
    delta: Option<f64>,
    allowed: Option<f64>,
) -> ValueDiff {
    ValueDiff {
        key: k.to_string(),
        column: col.to_string(),
        a: cell_text(ca, i),
        b: cell_text(cb, j),
        delta,
        allowed,
    }
}

#[derive(Debug, PartialEq)]
pub enum Agree {
    Exact,
    Within,
    No { delta: f64, allowed: f64 },
}

/// |a - b| <= abs + rel * |a|; NaN equals NaN, infinities must match exactly.
pub fn numbers_agree(a: f64, b: f64, tol: Tolerance) -> Agree {
    if a == b || (a.is_nan() && b.is_nan()) {
        return Agree::Exact;
    }
    let allowed = tol.abs + tol.rel * a.abs();
    let delta = (a - b).abs();
    if a.is_finite() && b.is_finite() && delta <= allowed {
        Agree::Within
    } else {
        Agree::No { delta, allowed }
    }
}

fn as_f64(a: &ArrayRef) -> Option<Float64Array> {
    let c = arrow::compute::cast(a, &DataType::Float64).ok()?;
    c.as_any().downcast_ref::<Float64Array>().cloned()
}

fn cell_text(a: &ArrayRef, i: usize) -> String {
    if a.is_null(i) {
        return "null".to_string();
    }
    arrow::util::display::array_value_to_string(a, i).unwrap_or_else(|_| "?".to_string())
}

/// The Markdown report.
pub fn markdown(r: &DiffReport) -> String {
    let mut s = String::new();
    s.push_str("# icl diff\n\n");
    s.push_str(&format!(
        "- A: `{}` ({} rows)\n- B: `{}` ({} rows)\n",
        r.a, r.rows_a, r.b, r.rows_b
    ));
    s.push_str(&format!(
        "- rows matched by: {}\n",
        if r.key.is_empty() {
            "position".to_string()
        } else {
            r.key
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    let n = r.schema.len()
        + r.only_in_a.len()
        + r.only_in_b.len()
        + r.duplicate_keys.len()
        + r.values.len();
    if r.same {
        s.push_str(&format!(
            "\n**Same** (within tolerances; {} numeric cell(s) differ within tolerance).\n",
            r.within_tolerance
        ));
        return s;
    }
    s.push_str(&format!("\n**Different**: {n} difference(s).\n"));
    let esc = |x: &str| x.replace('|', "\\|").replace('\n', " ");
    if !r.schema.is_empty() {
        s.push_str("\n## Schema\n\n| column | A | B |\n|---|---|---|\n");
        for d in &r.schema {
            s.push_str(&format!(
                "| {} | {} | {} |\n",
                esc(&d.column),
                d.a.as_deref().unwrap_or("(missing)"),
                d.b.as_deref().unwrap_or("(missing)")
            ));
        }
    }
    for (title, rows) in [
        ("Rows only in A", &r.only_in_a),
        ("Rows only in B", &r.only_in_b),
        ("Duplicate keys", &r.duplicate_keys),
    ] {
        if !rows.is_empty() {
            s.push_str(&format!("\n## {title}\n\n"));
            for k in rows {
                s.push_str(&format!("- {}\n", esc(k)));
            }
        }
    }
    if !r.values.is_empty() {
        s.push_str("\n## Values\n\n| row | column | A | B | abs. difference | allowed |\n|---|---|---|---|---|---|\n");
        for v in &r.values {
            let f = |x: Option<f64>| x.map(|x| format!("{x:.6}")).unwrap_or_else(|| "-".into());
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                esc(&v.key),
                esc(&v.column),
                esc(&v.a),
                esc(&v.b),
                f(v.delta),
                f(v.allowed)
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    fn table(values: &[f64], verdicts: &[&str]) -> RecordBatch {
        let claims: Vec<String> = (1..=values.len()).map(|i| format!("C{i}")).collect();
        RecordBatch::try_from_iter(vec![
            ("claim", Arc::new(StringArray::from(claims)) as ArrayRef),
            (
                "value",
                Arc::new(Float64Array::from(values.to_vec())) as ArrayRef,
            ),
            (
                "verdict",
                Arc::new(StringArray::from(verdicts.to_vec())) as ArrayRef,
            ),
            (
                "n_runs",
                Arc::new(Int64Array::from(vec![8; values.len()])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn cfg() -> DiffConfig {
        DiffConfig {
            key: vec!["claim".into()],
            tolerances: BTreeMap::from([(
                "value".to_string(),
                Tolerance {
                    abs: 0.05,
                    rel: 0.1,
                },
            )]),
            ignore: vec![],
        }
    }

    #[test]
    fn tolerance_rule() {
        let t = Tolerance {
            abs: 0.05,
            rel: 0.1,
        };
        assert_eq!(numbers_agree(1.0, 1.0, t), Agree::Exact);
        assert_eq!(numbers_agree(1.0, 1.14, t), Agree::Within); // 0.14 <= 0.05 + 0.1
        assert!(matches!(numbers_agree(1.0, 1.16, t), Agree::No { .. }));
        assert_eq!(numbers_agree(f64::NAN, f64::NAN, t), Agree::Exact);
        assert!(matches!(numbers_agree(1.0, f64::NAN, t), Agree::No { .. }));
        assert!(matches!(
            numbers_agree(
                f64::INFINITY,
                1e300,
                Tolerance {
                    abs: 1e301,
                    rel: 0.0
                }
            ),
            Agree::No { .. }
        ));
    }

    #[test]
    fn detects_moved_values_rows_and_schema() {
        let a = table(&[1.0, 2.0], &["reproduced", "partly"]);
        let same = compare(
            &a,
            &table(&[1.1, 2.0], &["reproduced", "partly"]),
            &cfg(),
            &["claim".to_string()],
        );
        assert!(same.same, "{:?}", same);
        assert_eq!(same.within_tolerance, 1);
        let moved = compare(
            &a,
            &table(&[1.0, 2.5], &["reproduced", "partly"]),
            &cfg(),
            &["claim".to_string()],
        );
        assert!(!moved.same);
        assert_eq!(moved.values.len(), 1);
        assert_eq!(moved.values[0].key, "claim=C2");
        assert!(
            markdown(&moved).contains("| claim=C2 | value | 2.0 | 2.5 |"),
            "{}",
            markdown(&moved)
        );
        let verdict = compare(
            &a,
            &table(&[1.0, 2.0], &["reproduced", "not"]),
            &cfg(),
            &["claim".to_string()],
        );
        assert_eq!(verdict.values[0].column, "verdict");
        let fewer = compare(
            &a,
            &table(&[1.0], &["reproduced"]),
            &cfg(),
            &["claim".to_string()],
        );
        assert_eq!(fewer.only_in_a, vec!["claim=C2".to_string()]);
        let narrower = RecordBatch::try_from_iter(vec![
            ("claim", a.column(0).clone()),
            ("value", a.column(1).clone()),
            ("verdict", a.column(2).clone()),
        ])
        .unwrap();
        let s = compare(&a, &narrower, &cfg(), &["claim".to_string()]);
        assert_eq!(
            s.schema,
            vec![SchemaDiff {
                column: "n_runs".into(),
                a: Some("Int64".into()),
                b: None
            }]
        );
        // Ignored columns are not compared.
        let mut c = cfg();
        c.ignore.push("verdict".into());
        assert!(
            compare(
                &a,
                &table(&[1.0, 2.0], &["x", "y"]),
                &c,
                &["claim".to_string()]
            )
            .same
        );
    }
}
