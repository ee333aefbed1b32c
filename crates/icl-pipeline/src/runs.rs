//! `icl runs STAGE`: one table of every task of a stage, so that a sweep can be analysed without
//! following hashes by hand. Columns: `task`, the matrix values, the run record (`status`
//! cached/missing, `key`, `started`, `finished`, `duration_s`), then, when the stage declares a
//! Parquet output `summary` (training stages), that one-row table's columns (those not already
//! present as matrix columns). Written as Parquet (through icl-store) or CSV by the file's
//! extension, or printed as an aligned table. Read-only: no lock.

use crate::app::Ctx;
use crate::error::CliError;
use crate::plan::show;
use crate::state::{probe, Probe};
use anyhow::Context;
use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// The output a stage's run summary is read from.
const SUMMARY: &str = "summary";

pub fn runs_table(ctx: &Ctx, stage_name: &str) -> Result<RecordBatch, CliError> {
    let plan = &ctx.plan;
    let si = plan
        .res
        .stage_index(stage_name, &format!("no stage `{stage_name}`"))?;
    let stage = &plan.res.stages[si];
    let tasks = &plan.by_stage[si];
    let probes = probe(
        plan,
        &ctx.store,
        &ctx.codes,
        &plan.select(std::slice::from_ref(&stage.name)),
    )?;

    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    add(
        &mut columns,
        "task",
        Arc::new(StringArray::from_iter_values(
            tasks.iter().map(|&t| plan.label(t)),
        )),
    );
    for (i, key) in stage.matrix.keys().into_iter().enumerate() {
        let values: Vec<&Value> = tasks.iter().map(|&t| &plan.tasks[t].point[i].1).collect();
        add(&mut columns, key, value_column(&values));
    }
    let records: Vec<Option<&icl_store::store::RunRecord>> = tasks
        .iter()
        .map(|&t| match &probes[t] {
            Probe::Cached { record, .. } => Some(record),
            _ => None,
        })
        .collect();
    let keys: Vec<Option<String>> = tasks
        .iter()
        .map(|&t| match &probes[t] {
            Probe::Cached { key, .. } | Probe::ToRun { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    add(
        &mut columns,
        "status",
        Arc::new(StringArray::from_iter_values(records.iter().map(|r| {
            if r.is_some() {
                "cached"
            } else {
                "missing"
            }
        }))),
    );
    add(&mut columns, "key", Arc::new(StringArray::from(keys)));
    add(
        &mut columns,
        "started",
        Arc::new(StringArray::from(
            records
                .iter()
                .map(|r| r.map(|r| r.started.clone()))
                .collect::<Vec<_>>(),
        )),
    );
    add(
        &mut columns,
        "finished",
        Arc::new(StringArray::from(
            records
                .iter()
                .map(|r| r.map(|r| r.finished.clone()))
                .collect::<Vec<_>>(),
        )),
    );
    add(
        &mut columns,
        "duration_s",
        Arc::new(Float64Array::from(
            records
                .iter()
                .map(|r| r.map(|r| r.duration_s))
                .collect::<Vec<_>>(),
        )),
    );

    if stage.outputs.iter().any(|o| o == SUMMARY) {
        let mut summaries: Vec<Option<RecordBatch>> = Vec::new();
        for r in &records {
            summaries.push(match r.and_then(|r| r.outputs.get(SUMMARY)) {
                Some(obj) if obj.ext == "parquet" => {
                    let path = ctx.store.object_path(obj);
                    let b = icl_store::parquet::read_batch_verified(&path, &obj.hash)?;
                    if b.num_rows() != 1 {
                        return Err(anyhow::anyhow!(
                            "{} holds {} rows (a summary has one)",
                            path.display(),
                            b.num_rows()
                        )
                        .into());
                    }
                    Some(b)
                }
                _ => None,
            });
        }
        // Columns in order of first appearance; a task without a summary gets nulls.
        let mut names: Vec<(String, DataType)> = Vec::new();
        for b in summaries.iter().flatten() {
            for f in b.schema().fields() {
                if !names.iter().any(|(n, _)| n == f.name()) {
                    names.push((f.name().clone(), f.data_type().clone()));
                }
            }
        }
        let taken: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
        for (name, dt) in names {
            if taken.contains(&name) {
                continue;
            }
            let parts: Vec<ArrayRef> = summaries
                .iter()
                .map(|b| -> anyhow::Result<ArrayRef> {
                    match b.as_ref().and_then(|b| b.column_by_name(&name)) {
                        Some(c) if c.data_type() == &dt => Ok(c.clone()),
                        Some(c) => arrow::compute::cast(c, &dt)
                            .with_context(|| format!("summary column `{name}` changes type")),
                        None => Ok(new_null_array(&dt, 1)),
                    }
                })
                .collect::<anyhow::Result<_>>()?;
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            add(
                &mut columns,
                &name,
                arrow::compute::concat(&refs).context("cannot stack summary columns")?,
            );
        }
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, c)| Field::new(n, c.data_type().clone(), true))
        .collect();
    let cols = columns.into_iter().map(|(_, c)| c).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .context("cannot build the runs table")?;
    Ok(batch)
}

fn add(columns: &mut Vec<(String, ArrayRef)>, name: &str, col: ArrayRef) {
    columns.push((name.to_string(), col));
}

/// A matrix axis as a column: Int64, Float64 or Boolean when every value is one, else text.
fn value_column(values: &[&Value]) -> ArrayRef {
    if values.iter().all(|v| v.is_i64()) {
        Arc::new(Int64Array::from_iter_values(
            values.iter().map(|v| v.as_i64().expect("checked")),
        ))
    } else if values.iter().all(|v| v.is_number()) {
        Arc::new(Float64Array::from_iter_values(
            values.iter().map(|v| v.as_f64().expect("checked")),
        ))
    } else if values.iter().all(|v| v.is_boolean()) {
        Arc::new(BooleanArray::from(
            values
                .iter()
                .map(|v| v.as_bool().expect("checked"))
                .collect::<Vec<_>>(),
        ))
    } else {
        Arc::new(StringArray::from_iter_values(
            values.iter().map(|v| show(v)),
        ))
    }
}

/// Every cell as text (nulls empty).
fn cells(batch: &RecordBatch) -> anyhow::Result<Vec<Vec<String>>> {
    let opts = FormatOptions::default();
    let fmts = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|r| fmts.iter().map(|f| f.value(r).to_string()).collect())
        .collect())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn to_csv(batch: &RecordBatch) -> anyhow::Result<String> {
    let schema = batch.schema();
    let mut out = String::new();
    let head: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| csv_field(f.name()))
        .collect();
    out.push_str(&head.join(","));
    out.push('\n');
    for row in cells(batch)? {
        let row: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// Aligned columns for a terminal.
pub fn to_text(batch: &RecordBatch) -> anyhow::Result<String> {
    let schema = batch.schema();
    let head: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let rows = cells(batch)?;
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain(std::iter::once(head[c].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String]| -> String {
        let parts: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&head);
    for r in &rows {
        out.push_str(&line(r));
    }
    Ok(out)
}

pub fn runs(ctx: &Ctx, stage: &str, out: Option<&Path>) -> Result<(), CliError> {
    let batch = runs_table(ctx, stage)?;
    match out {
        None => print!("{}", to_text(&batch)?),
        Some(p) => match p.extension().and_then(|e| e.to_str()) {
            Some("parquet") => icl_store::parquet::write_batch(p, &batch)?,
            Some("csv") => std::fs::write(p, to_csv(&batch)?)
                .with_context(|| format!("cannot write {}", p.display()))?,
            _ => {
                return Err(CliError::Usage(format!(
                    "--out {}: unknown table format (allowed: a .parquet or .csv file)",
                    p.display()
                )))
            }
        },
    }
    Ok(())
}
