use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use rand::seq::SliceRandom;

use crate::normal::fill_normal;
use crate::{rng_for, DatagenError, STREAM_ITEMS, STREAM_LABELS};

/// Item dimension of the paper (matches the Omniglot embedding of earlier work).
pub const DEFAULT_D: usize = 63;

/// K item vectors of dimension `d`, row-major in `x` (item k is `x[k*d..(k+1)*d]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemSet {
    pub d: usize,
    pub x: Vec<f32>,
}

/// Draws `k` items x_k ~ N(0, I_d / d) from `data_seed` (stream [`STREAM_ITEMS`]).
pub fn generate_items(k: usize, d: usize, data_seed: u64) -> ItemSet {
    generate_items_on(k, d, data_seed, STREAM_ITEMS)
}

pub(crate) fn generate_items_on(k: usize, d: usize, seed: u64, stream: u64) -> ItemSet {
    let mut rng = rng_for(seed, stream);
    let mut x = vec![0f32; k * d];
    fill_normal(&mut rng, &mut x, 1.0 / (d as f64).sqrt());
    ItemSet { d, x }
}

/// The per-run label assignment: exactly k/2 items get +1 and k/2 get -1, by a uniformly random
/// permutation drawn from `run_seed` on stream [`STREAM_LABELS`]. `labels[i]` is item i's label.
/// Every consumer of a run's labels (training sampler, IWL evaluation) must call this.
pub fn assign_labels(k: usize, run_seed: u64) -> Result<Vec<i8>, DatagenError> {
    balanced_labels(k, run_seed, STREAM_LABELS)
}

pub(crate) fn balanced_labels(k: usize, seed: u64, stream: u64) -> Result<Vec<i8>, DatagenError> {
    if k < 2 || !k.is_multiple_of(2) {
        return Err(DatagenError::invalid(
            "K",
            format!(
                "must be an even integer >= 2 so that exactly K/2 items get each label (got {k})"
            ),
        ));
    }
    let mut labels: Vec<i8> = (0..k).map(|i| if i < k / 2 { 1 } else { -1 }).collect();
    labels.shuffle(&mut rng_for(seed, stream));
    Ok(labels)
}

impl ItemSet {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.x.len().checked_div(self.d).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Item `k`'s vector.
    #[inline]
    pub fn item(&self, k: usize) -> &[f32] {
        &self.x[k * self.d..(k + 1) * self.d]
    }

    /// The `items` schema of ARCHITECTURE.md: `item: UInt32`, `x: FixedSizeList<Float32, D>`.
    pub fn schema(d: usize) -> Schema {
        Schema::new(vec![
            Field::new("item", DataType::UInt32, false),
            Field::new(
                "x",
                DataType::FixedSizeList(
                    Arc::new(Field::new_list_field(DataType::Float32, false)),
                    d as i32,
                ),
                false,
            ),
        ])
    }

    pub fn to_record_batch(&self) -> Result<RecordBatch, DatagenError> {
        let d = i32::try_from(self.d)
            .map_err(|_| DatagenError::invalid("D", format!("too large (got {})", self.d)))?;
        let n = self.len();
        let item: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..n as u32));
        let values: ArrayRef = Arc::new(Float32Array::from(self.x.clone()));
        let field = Arc::new(Field::new_list_field(DataType::Float32, false));
        let x: ArrayRef = Arc::new(FixedSizeListArray::try_new(field, d, values, None)?);
        Ok(RecordBatch::try_new(
            Arc::new(Self::schema(self.d)),
            vec![item, x],
        )?)
    }

    /// Reads an `items` batch; rows must be items 0..K in order.
    pub fn from_record_batch(batch: &RecordBatch) -> Result<Self, DatagenError> {
        let item = column::<UInt32Array>(batch, "item")?;
        let xcol = batch
            .column_by_name("x")
            .ok_or_else(|| DatagenError::artifact("items: missing column `x`"))?;
        let list = xcol
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .ok_or_else(|| {
                DatagenError::artifact(format!(
                    "items: column `x` must be FixedSizeList<Float32, D> (got {})",
                    xcol.data_type()
                ))
            })?;
        let d = list.value_length() as usize;
        if list.null_count() > 0 || item.null_count() > 0 {
            return Err(DatagenError::artifact("items: null values"));
        }
        for (i, v) in item.values().iter().enumerate() {
            if *v as usize != i {
                return Err(DatagenError::artifact(format!(
                    "items: row {i} has item {v}; rows must be items 0..K in order"
                )));
            }
        }
        // arrow slices a FixedSizeList's child values with it, so these are this array's rows.
        let vals = list.values();
        let vals = vals
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| {
                DatagenError::artifact(format!(
                    "items: `x` values must be Float32 (got {})",
                    vals.data_type()
                ))
            })?;
        if vals.null_count() > 0 {
            return Err(DatagenError::artifact("items: null values inside `x`"));
        }
        if vals.len() != list.len() * d {
            return Err(DatagenError::artifact(
                "items: `x` child length does not match rows * D",
            ));
        }
        let x = vals.values().to_vec();
        Ok(ItemSet { d, x })
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        icl_store::parquet::write_batch(path, &self.to_record_batch()?)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let batch = icl_store::parquet::read_batch(path)?;
        Self::from_record_batch(&batch).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// A typed column by name, or an error naming it.
pub(crate) fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a T, DatagenError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| DatagenError::artifact(format!("missing column `{name}`")))?;
    if col.null_count() > 0 {
        return Err(DatagenError::artifact(format!("column `{name}` has nulls")));
    }
    col.as_any().downcast_ref::<T>().ok_or_else(|| {
        DatagenError::artifact(format!(
            "column `{name}` has unexpected type {}",
            col.data_type()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_near_one() {
        let items = generate_items(2000, DEFAULT_D, 7);
        assert_eq!(items.len(), 2000);
        let norms: Vec<f64> = (0..items.len())
            .map(|k| {
                items
                    .item(k)
                    .iter()
                    .map(|v| (*v as f64).powi(2))
                    .sum::<f64>()
            })
            .collect();
        let mean = norms.iter().sum::<f64>() / norms.len() as f64;
        // E|x|^2 = 1; the mean of 2000 chi^2_63/63 has sd ~ 0.004.
        assert!((mean - 1.0).abs() < 0.02, "mean squared norm {mean}");
        let coord_mean = items.x.iter().map(|v| *v as f64).sum::<f64>() / items.x.len() as f64;
        assert!(coord_mean.abs() < 0.005, "coordinate mean {coord_mean}");
    }

    #[test]
    fn labels_balanced_and_seeded() {
        let a = assign_labels(1000, 1).unwrap();
        assert_eq!(a.iter().filter(|l| **l == 1).count(), 500);
        assert_eq!(a.iter().filter(|l| **l == -1).count(), 500);
        assert_eq!(a, assign_labels(1000, 1).unwrap());
        assert_ne!(a, assign_labels(1000, 2).unwrap());
        assert!(assign_labels(7, 1).is_err());
        assert!(assign_labels(0, 1).is_err());
    }

    #[test]
    fn arrow_round_trip() {
        let items = generate_items(10, 5, 3);
        let b = items.to_record_batch().unwrap();
        assert_eq!(b.num_rows(), 10);
        assert_eq!(ItemSet::from_record_batch(&b).unwrap(), items);
        // Zero rows (K = inf) keep D in the type.
        let empty = ItemSet { d: 63, x: vec![] };
        let b = empty.to_record_batch().unwrap();
        assert_eq!(b.num_rows(), 0);
        assert_eq!(ItemSet::from_record_batch(&b).unwrap(), empty);
        // A sliced batch reads only its rows.
        let b = items.to_record_batch().unwrap();
        assert!(ItemSet::from_record_batch(&b.slice(2, 3)).is_err()); // rows must start at item 0
        let s = ItemSet::from_record_batch(&b.slice(0, 3)).unwrap();
        assert_eq!(s.x, items.x[..15]);
    }

    #[test]
    fn different_seeds_differ() {
        assert_eq!(generate_items(4, 3, 1), generate_items(4, 3, 1));
        assert_ne!(generate_items(4, 3, 1), generate_items(4, 3, 2));
    }
}
