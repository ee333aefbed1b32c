//! Reading the training stage's artifacts: Parquet bytes through `icl_store`, then polars frames,
//! then the typed rows the analyses use.
//!
//! Gathered inputs arrive as parallel lists: `curves[i]` and `summaries[i]` are the same run (the
//! runner gathers one sweep in one order). We check that pairing: the curve's last evaluated
//! iteration must equal the summary's `iterations`.

use anyhow::{anyhow, bail, Context, Result};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{self as adt, DataType as ADataType};
use arrow::record_batch::RecordBatch;
use icl_store::task::InputRef;
use polars::prelude::*;
use std::path::Path;

/// Convert an Arrow record batch (arrow-rs) into a polars frame, column by column. Nested
/// columns (e.g. an item's vector) are not needed by any analysis here and are rejected by name.
pub fn batch_to_frame(batch: &RecordBatch) -> Result<DataFrame> {
    let mut cols: Vec<Column> = Vec::with_capacity(batch.num_columns());
    for (field, arr) in batch.schema().fields().iter().zip(batch.columns()) {
        let name = PlSmallStr::from(field.name().as_str());
        macro_rules! prim {
            ($t:ty, $conv:expr) => {{
                let a = arr.as_primitive::<$t>();
                let v: Vec<_> = (0..a.len())
                    .map(|i| a.is_valid(i).then(|| $conv(a.value(i))))
                    .collect();
                Series::new(name, v)
            }};
        }
        let s = match field.data_type() {
            ADataType::Float64 => prim!(adt::Float64Type, |x: f64| x),
            ADataType::Float32 => prim!(adt::Float32Type, |x: f32| x),
            ADataType::Int64 => prim!(adt::Int64Type, |x: i64| x),
            ADataType::Int32 => prim!(adt::Int32Type, |x: i32| x),
            ADataType::Int16 => prim!(adt::Int16Type, |x: i16| x as i32),
            ADataType::Int8 => prim!(adt::Int8Type, |x: i8| x as i32),
            ADataType::UInt64 => prim!(adt::UInt64Type, |x: u64| x),
            ADataType::UInt32 => prim!(adt::UInt32Type, |x: u32| x),
            ADataType::UInt16 => prim!(adt::UInt16Type, |x: u16| x as u32),
            ADataType::UInt8 => prim!(adt::UInt8Type, |x: u8| x as u32),
            ADataType::Boolean => {
                let a = arr.as_boolean();
                let v: Vec<Option<bool>> = (0..a.len())
                    .map(|i| a.is_valid(i).then(|| a.value(i)))
                    .collect();
                Series::new(name, v)
            }
            ADataType::Utf8 => {
                let a = arr.as_string::<i32>();
                let v: Vec<Option<String>> = (0..a.len())
                    .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                    .collect();
                Series::new(name, v)
            }
            ADataType::LargeUtf8 => {
                let a = arr.as_string::<i64>();
                let v: Vec<Option<String>> = (0..a.len())
                    .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                    .collect();
                Series::new(name, v)
            }
            ADataType::Null => Series::new(name, vec![None::<f64>; arr.len()]),
            other => bail!(
                "column `{}` has type {other}, which this stage does not read",
                field.name()
            ),
        };
        cols.push(Column::from(s));
    }
    DataFrame::new_infer_height(cols).map_err(|e| anyhow!("cannot build a frame: {e}"))
}

/// Read one Parquet artifact as a polars frame.
pub fn read_frame(path: &Path) -> Result<DataFrame> {
    let batch = icl_store::parquet::read_batch(path)?;
    batch_to_frame(&batch).with_context(|| format!("while converting {}", path.display()))
}

fn has(df: &DataFrame, name: &str) -> bool {
    df.get_column_names().iter().any(|c| c.as_str() == name)
}

/// A numeric column as f64 (nulls kept as `None`), whatever its integer or float type.
pub fn col_f64(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let c = df.column(name).map_err(|_| {
        anyhow!(
            "missing column `{name}` (columns: {})",
            df.get_column_names()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let c = c
        .cast(&DataType::Float64)
        .map_err(|e| anyhow!("column `{name}` is not numeric: {e}"))?;
    Ok(c.f64()
        .map_err(|e| anyhow!("column `{name}`: {e}"))?
        .iter()
        .collect())
}

/// Like [`col_f64`] with nulls as NaN (curve columns are NaN where undefined anyway).
pub fn col_f64_nan(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    Ok(col_f64(df, name)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

fn col_bool(df: &DataFrame, name: &str) -> Result<Vec<Option<bool>>> {
    let c = df
        .column(name)
        .map_err(|_| anyhow!("missing column `{name}`"))?;
    Ok(c.bool()
        .map_err(|e| anyhow!("column `{name}` is not boolean: {e}"))?
        .iter()
        .collect())
}

fn col_str(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df
        .column(name)
        .map_err(|_| anyhow!("missing column `{name}`"))?;
    Ok(c.str()
        .map_err(|e| anyhow!("column `{name}` is not text: {e}"))?
        .iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

/// The fields of a `summary` row the analyses use.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub model: String,
    /// Tokens per sequence, query included.
    pub n: f64,
    /// `None` for K = infinity.
    pub k: Option<f64>,
    pub seed: u64,
    pub lr: f64,
    pub beta0: Option<f64>,
    pub wd_attn: f64,
    /// Planned training length in iterations (epochs * iters_per_epoch), if recorded.
    pub planned_iterations: Option<f64>,
    /// Iterations actually run (less than planned after an early stop).
    pub iterations: f64,
    pub final_icl_acc: f64,
    pub final_iwl_acc: f64,
    pub peak_icl_acc: f64,
    pub t_icl: Option<f64>,
    /// The ICL accuracy that defines `t_icl` (training parameter; 0.95 when not recorded).
    pub t_icl_threshold: f64,
    pub acquired: bool,
    pub early_stopped: bool,
}

impl Summary {
    /// Attended context items of the minimal model: the N - 1 context tokens.
    pub fn n_ctx(&self) -> f64 {
        self.n - 1.0
    }

    /// Training budget in gradient-flow time (learning rate times planned iterations).
    pub fn flow_time_budget(&self) -> f64 {
        self.lr * self.planned_iterations.unwrap_or(self.iterations)
    }
}

/// Read the one-row `summary` artifact.
pub fn summary_from_frame(df: &DataFrame) -> Result<Summary> {
    anyhow::ensure!(
        df.height() == 1,
        "a summary has one row (got {})",
        df.height()
    );
    let one = |name: &str| -> Result<Option<f64>> { Ok(col_f64(df, name)?[0]) };
    let req = |name: &str| -> Result<f64> {
        one(name)?.ok_or_else(|| anyhow!("column `{name}` is null"))
    };
    let opt = |name: &str| -> Result<Option<f64>> {
        if has(df, name) {
            one(name)
        } else {
            Ok(None)
        }
    };
    let flag = |name: &str| -> Result<bool> {
        Ok(if has(df, name) {
            col_bool(df, name)?[0].unwrap_or(false)
        } else {
            false
        })
    };
    let model = if has(df, "model") {
        col_str(df, "model")?[0].clone().unwrap_or_default()
    } else {
        String::new()
    };
    let planned = match (opt("epochs")?, opt("iters_per_epoch")?) {
        (Some(e), Some(i)) => Some(e * i),
        _ => None,
    };
    Ok(Summary {
        model,
        n: req("N")?,
        k: one("K")?,
        seed: req("seed")? as u64,
        lr: req("lr")?,
        beta0: opt("beta0")?,
        wd_attn: opt("wd_attn")?.unwrap_or(0.0),
        planned_iterations: planned,
        iterations: req("iterations")?,
        final_icl_acc: opt("final_icl_acc")?.unwrap_or(f64::NAN),
        final_iwl_acc: opt("final_iwl_acc")?.unwrap_or(f64::NAN),
        peak_icl_acc: opt("peak_icl_acc")?.unwrap_or(f64::NAN),
        t_icl: opt("t_icl")?,
        t_icl_threshold: opt("t_icl_threshold")?.unwrap_or(0.95),
        acquired: flag("acquired")?,
        early_stopped: flag("early_stopped")?,
    })
}

/// A learning curve: one entry per evaluation (NaN where undefined).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curve {
    pub iteration: Vec<f64>,
    pub icl_acc: Vec<f64>,
    pub iwl_acc: Vec<f64>,
    pub icl_loss: Vec<f64>,
    pub iwl_loss: Vec<f64>,
    pub beta_eff: Vec<f64>,
    pub w_eff: Vec<f64>,
    pub c1: Vec<f64>,
    pub c2: Vec<f64>,
    pub c3: Vec<f64>,
}

pub fn curve_from_frame(df: &DataFrame) -> Result<Curve> {
    let get = |name: &str| -> Result<Vec<f64>> {
        if has(df, name) {
            col_f64_nan(df, name)
        } else {
            Ok(vec![f64::NAN; df.height()])
        }
    };
    let c = Curve {
        iteration: col_f64_nan(df, "iteration")?,
        icl_acc: get("icl_acc")?,
        iwl_acc: get("iwl_acc")?,
        icl_loss: get("icl_loss")?,
        iwl_loss: get("iwl_loss")?,
        beta_eff: get("beta_eff")?,
        w_eff: get("w_eff")?,
        c1: get("c1")?,
        c2: get("c2")?,
        c3: get("c3")?,
    };
    anyhow::ensure!(!c.iteration.is_empty(), "the curve has no rows");
    anyhow::ensure!(
        c.iteration.windows(2).all(|w| w[1] > w[0]),
        "curve iterations must increase strictly"
    );
    Ok(c)
}

/// One training run: its summary and (when given) its curve.
#[derive(Debug, Clone)]
pub struct Run {
    pub summary: Summary,
    pub curve: Option<Curve>,
}

/// Read gathered `summaries` and, if `curves` is non-empty, the paired curves.
pub fn read_runs(summaries: &[InputRef], curves: &[InputRef], what: &str) -> Result<Vec<Run>> {
    if !curves.is_empty() && curves.len() != summaries.len() {
        bail!(
            "{what}: {} curves but {} summaries; the two inputs must list the same runs in the same order",
            curves.len(),
            summaries.len()
        );
    }
    let mut out = Vec::with_capacity(summaries.len());
    for (i, s) in summaries.iter().enumerate() {
        let summary = summary_from_frame(&read_frame(&s.path)?)
            .with_context(|| format!("{what}: summary {} ({})", i, s.path.display()))?;
        let curve = match curves.get(i) {
            Some(c) => {
                let curve = curve_from_frame(&read_frame(&c.path)?)
                    .with_context(|| format!("{what}: curve {} ({})", i, c.path.display()))?;
                let last = *curve.iteration.last().expect("nonempty");
                anyhow::ensure!(
                    last == summary.iterations,
                    "{what}: curve {i} ends at iteration {last} but summary {i} says {} iterations: \
                     the curves and summaries are not listed in the same run order",
                    summary.iterations
                );
                Some(curve)
            }
            None => None,
        };
        out.push(Run { summary, curve });
    }
    Ok(out)
}
