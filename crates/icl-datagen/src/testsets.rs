use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::items::{balanced_labels, column, generate_items_on};
use crate::sampler::{Batch, ContextMode, Sampler, TrainData};
use crate::{
    rng_for, DatagenError, ItemSet, NumItems, STREAM_ICL_TEST, STREAM_IWL_TEST, STREAM_NOVEL_ITEMS,
    STREAM_NOVEL_LABELS,
};

/// The ICL test set uses min(K, NOVEL_CAP) novel items (NOVEL_CAP for K = inf), as the reference.
pub const NOVEL_CAP: usize = 20000;
/// Sequences per test set in the paper.
pub const DEFAULT_N_TEST: usize = 2000;

/// The ICL test set's novel items and their balanced random labels.
#[derive(Debug, Clone, PartialEq)]
pub struct NovelSet {
    pub items: Arc<ItemSet>,
    pub labels: Vec<i8>,
}

/// Draws min(K, 20000) novel items (20000 for K = inf) from `test_seed` on their own stream, so
/// they differ from the training items even when `test_seed == data_seed`; labels are exactly
/// balanced, from a permutation on another stream of `test_seed`.
pub fn make_novel(k: NumItems, d: usize, test_seed: u64) -> Result<NovelSet, DatagenError> {
    k.validate().map_err(|m| DatagenError::invalid("K", m))?;
    let m = k.finite().map_or(NOVEL_CAP, |k| k.min(NOVEL_CAP));
    let items = generate_items_on(m, d, test_seed, STREAM_NOVEL_ITEMS);
    let labels = balanced_labels(m, test_seed, STREAM_NOVEL_LABELS)?;
    Ok(NovelSet {
        items: Arc::new(items),
        labels,
    })
}

/// ICL test set: standard-context sequences (the query has a match; the other context items are
/// uniform) of the novel items; `item[s*n + p]` indexes `novel_items`, `label` is that item's
/// label. Runs trained with equalized contexts are scored on this same test, as in the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct IclTest {
    pub n: usize,
    pub item: Vec<u32>,
    pub label: Vec<i8>,
}

/// IWL test set: sequences of training items with the query unmatched; labels come from the run's
/// [`crate::assign_labels`]. Zero sequences (and `n == 0` once read back) for K = inf.
#[derive(Debug, Clone, PartialEq)]
pub struct IwlTest {
    pub n: usize,
    pub item: Vec<u32>,
}

pub fn make_icl_test(
    novel: &NovelSet,
    n: usize,
    n_test: usize,
    test_seed: u64,
) -> Result<IclTest, DatagenError> {
    let data = TrainData::Finite {
        items: novel.items.clone(),
        labels: novel.labels.clone(),
    };
    let mut sampler =
        Sampler::with_stream(data, n, ContextMode::Standard, test_seed, STREAM_ICL_TEST)?;
    let mut item = Vec::with_capacity(n_test * n);
    for _ in 0..n_test {
        item.extend_from_slice(sampler.next_ids().expect("finite sampler"));
    }
    let label = item.iter().map(|i| novel.labels[*i as usize]).collect();
    Ok(IclTest { n, item, label })
}

/// IWL test set from `test_seed` only (never the run seed, so all runs share it).
/// K >= N: N distinct training items in uniformly random order (reference `burstiness = -1`), so
/// the query has no match. K < N (no N distinct items exist): the query is a uniform item and the
/// N-1 context items are drawn with replacement from the other K-1 items, which keeps the one
/// property that matters (only memorized labels can solve it). K = inf: zero sequences.
pub fn make_iwl_test(
    k: NumItems,
    n: usize,
    n_test: usize,
    test_seed: u64,
) -> Result<IwlTest, DatagenError> {
    k.validate().map_err(|m| DatagenError::invalid("K", m))?;
    if n < 2 {
        return Err(DatagenError::invalid(
            "N",
            format!("must be >= 2 (got {n})"),
        ));
    }
    let Some(k) = k.finite() else {
        return Ok(IwlTest {
            n,
            item: Vec::new(),
        });
    };
    let mut rng = rng_for(test_seed, STREAM_IWL_TEST);
    let mut item = Vec::with_capacity(n_test * n);
    for _ in 0..n_test {
        if k >= n {
            let mut seq: Vec<u32> = rand::seq::index::sample(&mut rng, k, n)
                .into_iter()
                .map(|i| i as u32)
                .collect();
            // index::sample's order is not documented as uniform; shuffle so the query is uniform.
            seq.shuffle(&mut rng);
            item.extend_from_slice(&seq);
        } else {
            let q = rng.random_range(0..k as u32);
            for _ in 0..n - 1 {
                let r = rng.random_range(0..k as u32 - 1);
                item.push(if r >= q { r + 1 } else { r });
            }
            item.push(q);
        }
    }
    Ok(IwlTest { n, item })
}

fn seq_pos_columns(n: usize, rows: usize) -> (ArrayRef, ArrayRef) {
    let seq: ArrayRef = Arc::new(UInt32Array::from_iter_values(
        (0..rows).map(|r| (r / n) as u32),
    ));
    let pos: ArrayRef = Arc::new(UInt32Array::from_iter_values(
        (0..rows).map(|r| (r % n) as u32),
    ));
    (seq, pos)
}

/// Checks that rows are (seq, pos) in order with a fixed length; returns that length (0 if empty).
fn check_seq_pos(batch: &RecordBatch, what: &str) -> Result<usize, DatagenError> {
    let seq = column::<UInt32Array>(batch, "seq")?.values();
    let pos = column::<UInt32Array>(batch, "pos")?.values();
    if seq.is_empty() {
        return Ok(0);
    }
    let n = pos.iter().copied().max().unwrap() as usize + 1;
    if seq.len() % n != 0 {
        return Err(DatagenError::artifact(format!(
            "{what}: {} rows is not a whole number of sequences of length {n}",
            seq.len()
        )));
    }
    for (r, (s, p)) in seq.iter().zip(pos).enumerate() {
        if *s as usize != r / n || *p as usize != r % n {
            return Err(DatagenError::artifact(format!(
                "{what}: row {r} is (seq {s}, pos {p}); expected (seq {}, pos {}) (rows sorted, length {n})",
                r / n,
                r % n
            )));
        }
    }
    Ok(n)
}

fn check_ids(ids: &[u32], k: usize, what: &str) -> Result<(), DatagenError> {
    if let Some(bad) = ids.iter().find(|i| **i as usize >= k) {
        return Err(DatagenError::artifact(format!(
            "{what}: item {bad} out of range for {k} items"
        )));
    }
    Ok(())
}

impl IclTest {
    pub fn n_seq(&self) -> usize {
        self.item.len().checked_div(self.n).unwrap_or(0)
    }

    /// `icl_test` schema: `seq, pos, item: UInt32, label: Int8`.
    pub fn schema() -> Schema {
        Schema::new(vec![
            Field::new("seq", DataType::UInt32, false),
            Field::new("pos", DataType::UInt32, false),
            Field::new("item", DataType::UInt32, false),
            Field::new("label", DataType::Int8, false),
        ])
    }

    pub fn to_record_batch(&self) -> Result<RecordBatch, DatagenError> {
        let (seq, pos) = seq_pos_columns(self.n.max(1), self.item.len());
        let item: ArrayRef = Arc::new(UInt32Array::from(self.item.clone()));
        let label: ArrayRef = Arc::new(Int8Array::from(self.label.clone()));
        Ok(RecordBatch::try_new(
            Arc::new(Self::schema()),
            vec![seq, pos, item, label],
        )?)
    }

    pub fn from_record_batch(batch: &RecordBatch) -> Result<Self, DatagenError> {
        let n = check_seq_pos(batch, "icl_test")?;
        let item = column::<UInt32Array>(batch, "item")?.values().to_vec();
        let label = column::<Int8Array>(batch, "label")?.values().to_vec();
        if let Some(bad) = label.iter().find(|l| **l != 1 && **l != -1) {
            return Err(DatagenError::artifact(format!(
                "icl_test: label must be +1 or -1 (got {bad})"
            )));
        }
        Ok(IclTest { n, item, label })
    }

    /// Dense form for evaluation, given the `novel_items` it indexes.
    pub fn dense(&self, novel: &ItemSet) -> Result<Batch, DatagenError> {
        check_ids(&self.item, novel.len(), "icl_test")?;
        let labels: Vec<f32> = self.label.iter().map(|l| *l as f32).collect();
        Ok(gather(self.n, novel, &self.item, labels))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        icl_store::parquet::write_batch(path, &self.to_record_batch()?)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let batch = icl_store::parquet::read_batch(path)?;
        Self::from_record_batch(&batch).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

impl IwlTest {
    pub fn n_seq(&self) -> usize {
        self.item.len().checked_div(self.n).unwrap_or(0)
    }

    /// `iwl_test` schema: `seq, pos, item: UInt32`.
    pub fn schema() -> Schema {
        Schema::new(vec![
            Field::new("seq", DataType::UInt32, false),
            Field::new("pos", DataType::UInt32, false),
            Field::new("item", DataType::UInt32, false),
        ])
    }

    pub fn to_record_batch(&self) -> Result<RecordBatch, DatagenError> {
        let (seq, pos) = seq_pos_columns(self.n.max(1), self.item.len());
        let item: ArrayRef = Arc::new(UInt32Array::from(self.item.clone()));
        Ok(RecordBatch::try_new(
            Arc::new(Self::schema()),
            vec![seq, pos, item],
        )?)
    }

    pub fn from_record_batch(batch: &RecordBatch) -> Result<Self, DatagenError> {
        let n = check_seq_pos(batch, "iwl_test")?;
        let item = column::<UInt32Array>(batch, "item")?.values().to_vec();
        Ok(IwlTest { n, item })
    }

    /// Dense form for evaluation: training `items` and the run's labels (`assign_labels(K, seed)`).
    pub fn dense(&self, items: &ItemSet, labels: &[i8]) -> Result<Batch, DatagenError> {
        if labels.len() != items.len() {
            return Err(DatagenError::invalid(
                "labels",
                format!(
                    "need one label per item: {} labels for {} items",
                    labels.len(),
                    items.len()
                ),
            ));
        }
        check_ids(&self.item, items.len(), "iwl_test")?;
        let labels: Vec<f32> = self
            .item
            .iter()
            .map(|i| labels[*i as usize] as f32)
            .collect();
        Ok(gather(self.n, items, &self.item, labels))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        icl_store::parquet::write_batch(path, &self.to_record_batch()?)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let batch = icl_store::parquet::read_batch(path)?;
        Self::from_record_batch(&batch).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

fn gather(n: usize, items: &ItemSet, ids: &[u32], labels: Vec<f32>) -> Batch {
    let d = items.d;
    let b = ids.len().checked_div(n).unwrap_or(0);
    let mut x = Vec::with_capacity(ids.len() * d);
    for i in ids {
        x.extend_from_slice(items.item(*i as usize));
    }
    Batch {
        b,
        n,
        d,
        x,
        labels,
        item_ids: ids.to_vec(),
        ..Batch::new(0, n, d)
    }
}
