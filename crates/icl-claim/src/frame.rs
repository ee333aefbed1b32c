//! Arrow record batches (from `icl_store::parquet::read_batch`) to polars DataFrames.
//!
//! polars uses its own Arrow implementation, so columns are copied through plain vectors. Only
//! scalar columns (integers, floats, booleans, strings) are converted; list columns (item
//! vectors) are not needed by any analysis and are skipped. Stacking many artifacts takes the
//! union of their columns (missing values become null) and promotes mixed numeric types to the
//! widest one, so summaries from slightly different sweeps still stack.

use anyhow::{bail, Context, Result};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{self as adt, DataType};
use arrow::record_batch::RecordBatch;
use polars::prelude::{Column, DataFrame, NamedFrom, Series};
use std::path::Path;

/// Name of the column [`read_stacked`] adds: the index of the artifact a row came from (in the
/// order the inputs were declared), so rows can be paired with other per-run artifacts.
pub const SOURCE_COL: &str = "artifact";

#[derive(Debug, Clone)]
enum Col {
    I(Vec<Option<i64>>),
    U(Vec<Option<u64>>),
    F(Vec<Option<f64>>),
    B(Vec<Option<bool>>),
    S(Vec<Option<String>>),
    /// Arrow's Null type: all-null column of unknown type (typed on first merge).
    N(usize),
}

impl Col {
    fn len(&self) -> usize {
        match self {
            Col::I(v) => v.len(),
            Col::U(v) => v.len(),
            Col::F(v) => v.len(),
            Col::B(v) => v.len(),
            Col::S(v) => v.len(),
            Col::N(n) => *n,
        }
    }
    fn pad(&mut self, to: usize) {
        let n = to.saturating_sub(self.len());
        match self {
            Col::I(v) => v.extend(std::iter::repeat_n(None, n)),
            Col::U(v) => v.extend(std::iter::repeat_n(None, n)),
            Col::F(v) => v.extend(std::iter::repeat_n(None, n)),
            Col::B(v) => v.extend(std::iter::repeat_n(None, n)),
            Col::S(v) => v.extend(std::iter::repeat_n(None, n)),
            Col::N(k) => *k += n,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Col::I(_) => "integer",
            Col::U(_) => "unsigned integer",
            Col::F(_) => "float",
            Col::B(_) => "boolean",
            Col::S(_) => "string",
            Col::N(_) => "null",
        }
    }
    fn into_f64(self) -> Option<Vec<Option<f64>>> {
        Some(match self {
            Col::I(v) => v.into_iter().map(|x| x.map(|x| x as f64)).collect(),
            Col::U(v) => v.into_iter().map(|x| x.map(|x| x as f64)).collect(),
            Col::F(v) => v,
            Col::N(n) => vec![None; n],
            _ => return None,
        })
    }
    /// Append `other` (same column from a later batch), promoting types where needed.
    fn append(self, other: Col, name: &str) -> Result<Col> {
        Ok(match (self, other) {
            (Col::N(a), Col::N(b)) => Col::N(a + b),
            (Col::N(a), o) => {
                let mut c = empty_like(&o);
                c.pad(a);
                c.append(o, name)?
            }
            (s, Col::N(b)) => {
                let mut s = s;
                let l = s.len();
                s.pad(l + b);
                s
            }
            (Col::I(mut a), Col::I(b)) => {
                a.extend(b);
                Col::I(a)
            }
            (Col::U(mut a), Col::U(b)) => {
                a.extend(b);
                Col::U(a)
            }
            (Col::B(mut a), Col::B(b)) => {
                a.extend(b);
                Col::B(a)
            }
            (Col::S(mut a), Col::S(b)) => {
                a.extend(b);
                Col::S(a)
            }
            (Col::I(a), Col::U(b)) if b.iter().flatten().all(|&v| v <= i64::MAX as u64) => {
                let mut a = a;
                a.extend(b.into_iter().map(|x| x.map(|x| x as i64)));
                Col::I(a)
            }
            (Col::U(a), Col::I(b)) if a.iter().flatten().all(|&v| v <= i64::MAX as u64) => {
                let mut a: Vec<Option<i64>> = a.into_iter().map(|x| x.map(|x| x as i64)).collect();
                a.extend(b);
                Col::I(a)
            }
            (a, b) => {
                let (ka, kb) = (a.kind(), b.kind());
                match (a.into_f64(), b.into_f64()) {
                    (Some(mut x), Some(y)) => {
                        x.extend(y);
                        Col::F(x)
                    }
                    _ => bail!("column `{name}` is {ka} in one artifact and {kb} in another"),
                }
            }
        })
    }
    fn into_column(self, name: &str) -> Column {
        let s = match self {
            Col::I(v) => Series::new(name.into(), v),
            Col::U(v) => Series::new(name.into(), v),
            Col::F(v) => Series::new(name.into(), v),
            Col::B(v) => Series::new(name.into(), v),
            Col::S(v) => Series::new(name.into(), v),
            // An all-null column of unknown type: float is the least surprising.
            Col::N(n) => Series::new(name.into(), vec![None::<f64>; n]),
        };
        Column::from(s)
    }
}

fn empty_like(c: &Col) -> Col {
    match c {
        Col::I(_) => Col::I(Vec::new()),
        Col::U(_) => Col::U(Vec::new()),
        Col::F(_) => Col::F(Vec::new()),
        Col::B(_) => Col::B(Vec::new()),
        Col::S(_) => Col::S(Vec::new()),
        Col::N(_) => Col::N(0),
    }
}

fn convert(a: &dyn Array) -> Option<Col> {
    fn opt<T: Copy>(a: &dyn Array, i: usize, v: T) -> Option<T> {
        a.is_valid(i).then_some(v)
    }
    // Every width of a signed integer, unsigned integer or float is read through one lossless
    // cast to its 64-bit type (nulls stay null).
    fn widened<T: adt::ArrowPrimitiveType>(a: &dyn Array) -> Option<Vec<Option<T::Native>>> {
        let w = arrow::compute::cast(a, &T::DATA_TYPE).ok()?;
        let p = w.as_primitive::<T>();
        Some((0..w.len()).map(|i| opt(&w, i, p.value(i))).collect())
    }
    let n = a.len();
    Some(match a.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            Col::I(widened::<adt::Int64Type>(a)?)
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Col::U(widened::<adt::UInt64Type>(a)?)
        }
        DataType::Float32 | DataType::Float64 => Col::F(widened::<adt::Float64Type>(a)?),
        DataType::Boolean => Col::B((0..n).map(|i| opt(a, i, a.as_boolean().value(i))).collect()),
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            Col::S(
                (0..n)
                    .map(|i| a.is_valid(i).then(|| s.value(i).to_string()))
                    .collect(),
            )
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            Col::S(
                (0..n)
                    .map(|i| a.is_valid(i).then(|| s.value(i).to_string()))
                    .collect(),
            )
        }
        DataType::Null => Col::N(n),
        _ => return None,
    })
}

/// Stack batches into one frame; `source` adds [`SOURCE_COL`] with each batch's index.
pub fn stack_batches(batches: &[RecordBatch], source: bool) -> Result<DataFrame> {
    let mut names: Vec<String> = Vec::new();
    let mut cols: Vec<Col> = Vec::new();
    let mut rows = 0usize;
    let mut src: Vec<u32> = Vec::new();
    for (bi, b) in batches.iter().enumerate() {
        for (field, arr) in b.schema().fields().iter().zip(b.columns()) {
            let Some(c) = convert(arr.as_ref()) else {
                continue;
            };
            let name = field.name();
            match names.iter().position(|n| n == name) {
                Some(k) => {
                    let old = std::mem::replace(&mut cols[k], Col::N(0));
                    cols[k] = old.append(c, name)?;
                }
                None => {
                    let mut e = empty_like(&c);
                    e.pad(rows);
                    names.push(name.clone());
                    cols.push(e.append(c, name)?);
                }
            }
        }
        rows += b.num_rows();
        src.extend(std::iter::repeat_n(bi as u32, b.num_rows()));
        for c in cols.iter_mut() {
            c.pad(rows);
        }
    }
    let mut columns: Vec<Column> = names
        .iter()
        .zip(cols)
        .map(|(n, c)| c.into_column(n))
        .collect();
    if source {
        anyhow::ensure!(
            !names.iter().any(|n| n == SOURCE_COL),
            "input already has a column named `{SOURCE_COL}`"
        );
        columns.push(Column::from(Series::new(SOURCE_COL.into(), src)));
    }
    DataFrame::new(rows, columns).context("cannot assemble DataFrame")
}

/// One Arrow batch as a DataFrame.
pub fn batch_to_df(batch: &RecordBatch) -> Result<DataFrame> {
    stack_batches(std::slice::from_ref(batch), false)
}

/// Read one Parquet artifact (through icl-store) as a DataFrame.
pub fn read_df(path: &Path) -> Result<DataFrame> {
    let b = icl_store::parquet::read_batch(path)?;
    batch_to_df(&b).with_context(|| format!("while converting {}", path.display()))
}

/// Read many artifacts (e.g. a gathered sweep of run summaries) into one frame with a
/// [`SOURCE_COL`] column.
pub fn read_stacked<P: AsRef<Path>>(paths: &[P]) -> Result<DataFrame> {
    let batches = paths
        .iter()
        .map(|p| icl_store::parquet::read_batch(p.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    stack_batches(&batches, true)
}

/// Expression for a run's training budget in iterations: `epochs x iters_per_epoch` when the
/// summaries carry them (a run that stopped early still had that budget), else `iterations`.
pub fn iteration_budget_expr(df: &DataFrame) -> polars::prelude::Expr {
    use polars::prelude::{col, DataType as P};
    if df.column("epochs").is_ok() && df.column("iters_per_epoch").is_ok() {
        col("epochs").cast(P::Float64) * col("iters_per_epoch").cast(P::Float64)
    } else if df.column("iterations").is_ok() {
        col("iterations").cast(P::Float64)
    } else {
        col("t_icl").cast(P::Float64)
    }
}

/// Column names, for error messages.
pub fn column_names(df: &DataFrame) -> String {
    df.get_column_names()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column as f64 values (nulls as NaN), whatever its numeric type.
/// The runs' ICL acquisition threshold (training parameter `t_icl_threshold`, which defines
/// `t_icl` and `acquired` in the summaries); 0.95 (the paper's) for summaries without it. The
/// runs must agree.
pub fn acquisition_threshold(df: &DataFrame) -> Result<f64> {
    if df.column("t_icl_threshold").is_err() {
        return Ok(0.95);
    }
    let mut v: Vec<f64> = f64s(df, "t_icl_threshold")?
        .into_iter()
        .filter(|x| x.is_finite())
        .collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    match v.as_slice() {
        [t] => Ok(*t),
        [] => bail!("summaries have no t_icl_threshold value"),
        many => bail!("runs differ in t_icl_threshold ({many:?}); their t_ICL are not comparable"),
    }
}

/// The distinct context lengths N (query included) of a summary frame's runs: what the
/// label-count floor ([`crate::floor`]) depends on. Errors if the column is missing or not a
/// positive integer.
pub fn context_lengths(df: &DataFrame) -> Result<Vec<u64>> {
    let name = ["N", "len_context"].into_iter().find(|c| df.column(c).is_ok()).ok_or_else(|| {
        anyhow::anyhow!("summaries lack column `N` (the context length sets the label-count floor; have: {})", column_names(df))
    })?;
    let n = f64s(df, name)?;
    let mut out = Vec::new();
    for (i, v) in n.into_iter().enumerate() {
        anyhow::ensure!(
            v.is_finite() && v >= 1.0 && v.fract() == 0.0,
            "summary {i}: N = {v} is not a positive integer"
        );
        out.push(v as u64);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

pub fn f64s(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    use polars::prelude::DataType as P;
    let c = df
        .column(name)
        .with_context(|| format!("missing column `{name}` (have: {})", column_names(df)))?;
    let c = c
        .cast(&P::Float64)
        .with_context(|| format!("column `{name}` is not numeric"))?;
    Ok(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// A column as optional f64 values (nulls kept), whatever its numeric type.
pub fn opt_f64s(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    use polars::prelude::DataType as P;
    let c = df
        .column(name)
        .with_context(|| format!("missing column `{name}` (have: {})", column_names(df)))?;
    let c = c
        .cast(&P::Float64)
        .with_context(|| format!("column `{name}` is not numeric"))?;
    Ok(c.f64()?.iter().collect())
}

/// A boolean column (nulls as None).
pub fn bools(df: &DataFrame, name: &str) -> Result<Vec<Option<bool>>> {
    let c = df
        .column(name)
        .with_context(|| format!("missing column `{name}` (have: {})", column_names(df)))?;
    Ok(c.bool()
        .with_context(|| format!("column `{name}` is not boolean"))?
        .iter()
        .collect())
}

/// "seed S, K=K" labels from a stacked summary frame (whichever of the columns exist).
pub fn run_labels(df: &DataFrame) -> Result<Vec<String>> {
    let n = df.height();
    let get = |c: &str| -> Option<Vec<f64>> { f64s(df, c).ok() };
    let seed = get("seed");
    let k = get("K");
    Ok((0..n)
        .map(|i| {
            let mut parts = Vec::new();
            match &seed {
                Some(s) if s[i].is_finite() => parts.push(format!("seed {}", s[i] as i64)),
                _ => parts.push(format!("run {}", i + 1)),
            }
            if let Some(k) = &k {
                parts.push(if k[i].is_finite() {
                    format!("K={}", k[i] as i64)
                } else {
                    "K=inf".into()
                });
            }
            parts.join(", ")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, BooleanArray, Float32Array, Int64Array, StringArray, UInt64Array,
    };
    use std::sync::Arc;

    #[test]
    fn stacks_with_union_and_promotion() {
        let a = RecordBatch::try_from_iter(vec![
            (
                "K",
                Arc::new(Int64Array::from(vec![Some(10), None])) as ArrayRef,
            ),
            (
                "acc",
                Arc::new(Float32Array::from(vec![0.5, 0.75])) as ArrayRef,
            ),
            (
                "ok",
                Arc::new(BooleanArray::from(vec![true, false])) as ArrayRef,
            ),
        ])
        .unwrap();
        let b = RecordBatch::try_from_iter(vec![
            ("K", Arc::new(UInt64Array::from(vec![7u64])) as ArrayRef),
            ("name", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
        ])
        .unwrap();
        let df = stack_batches(&[a, b], true).unwrap();
        assert_eq!(df.height(), 3);
        assert_eq!(f64s(&df, "K").unwrap()[..1], [10.0]);
        assert!(f64s(&df, "K").unwrap()[1].is_nan());
        assert_eq!(f64s(&df, "K").unwrap()[2], 7.0);
        assert_eq!(
            opt_f64s(&df, "acc").unwrap(),
            vec![Some(0.5), Some(0.75), None]
        );
        assert_eq!(
            bools(&df, "ok").unwrap(),
            vec![Some(true), Some(false), None]
        );
        assert_eq!(f64s(&df, SOURCE_COL).unwrap(), vec![0.0, 0.0, 1.0]);
        assert!(f64s(&df, "nope")
            .unwrap_err()
            .to_string()
            .contains("have: K, acc, ok, name"));
    }

    #[test]
    fn incompatible_types_are_named() {
        let a = RecordBatch::try_from_iter(vec![(
            "x",
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        let b = RecordBatch::try_from_iter(vec![(
            "x",
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )])
        .unwrap();
        let e = stack_batches(&[a, b], false).unwrap_err().to_string();
        assert!(e.contains("`x`") && e.contains("string"), "{e}");
    }
}
