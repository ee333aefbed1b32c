//! Where a run's sequences come from: the online training source (icl-datagen's sampler, or
//! uniform item draws for the MLP-only model) with a resumable RNG position, and the test sets
//! gathered chunk by chunk into a reusable batch.

use std::sync::Arc;

use anyhow::Context;
use icl_datagen::{
    assign_labels, Batch, IclTest, ItemSet, IwlTest, NumItems, Sampler, SamplerState, TrainData,
    STREAM_TRAIN,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::params::{ModelKind, TrainParams};

/// The training stream of one run.
pub struct TrainSource {
    kind: SourceKind,
    pub batch: Batch,
}

enum SourceKind {
    Sequences(Box<Sampler>),
    /// MLP-only: each row is one training item drawn uniformly (with replacement), as a sequence
    /// of length 1 (the query).
    Items {
        items: Arc<ItemSet>,
        labels: Vec<f32>,
        seed: u64,
        rng: Box<ChaCha8Rng>,
    },
}

/// The resumable position of a [`TrainSource`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceState {
    Sequences { sampler: SamplerState },
    Items { seed: u64, word_pos: String },
}

impl TrainSource {
    /// The run's source: labels from `assign_labels(K, seed)`, sequences from the run seed.
    pub fn new(p: &TrainParams, items: Option<Arc<ItemSet>>) -> anyhow::Result<Self> {
        let finite = |items: Option<Arc<ItemSet>>| -> anyhow::Result<(Arc<ItemSet>, Vec<i8>)> {
            let items = items.context("K is finite but no `items` were given")?;
            let labels = assign_labels(items.len(), p.seed)?;
            Ok((items, labels))
        };
        if p.model == ModelKind::MlpOnly {
            let (items, labels) = finite(items)?;
            return Ok(TrainSource {
                kind: SourceKind::Items {
                    items,
                    labels: labels.iter().map(|l| *l as f32).collect(),
                    seed: p.seed,
                    rng: Box::new(icl_datagen::rng_for(p.seed, STREAM_TRAIN)),
                },
                batch: Batch::new(p.batch, 1, p.d),
            });
        }
        let data = match p.k {
            NumItems::Infinite => TrainData::Infinite { d: p.d },
            NumItems::Finite(_) => {
                let (items, labels) = finite(items)?;
                TrainData::Finite { items, labels }
            }
        };
        let sampler = Sampler::new(data, p.n, p.context, p.seed)?;
        Ok(TrainSource {
            kind: SourceKind::Sequences(Box::new(sampler)),
            batch: Batch::by_reference(p.batch, p.n, p.d),
        })
    }

    /// Draws the next training batch into `self.batch`.
    pub fn next_batch(&mut self) -> &Batch {
        match &mut self.kind {
            SourceKind::Sequences(s) => s.fill_batch(&mut self.batch),
            SourceKind::Items {
                items, labels, rng, ..
            } => {
                let d = items.d;
                for r in 0..self.batch.b {
                    let k = rng.random_range(0..items.len());
                    self.batch.x[r * d..(r + 1) * d].copy_from_slice(items.item(k));
                    self.batch.labels[r] = labels[k];
                    self.batch.item_ids[r] = k as u32;
                }
            }
        }
        &self.batch
    }

    pub fn state(&self) -> SourceState {
        match &self.kind {
            SourceKind::Sequences(s) => SourceState::Sequences { sampler: s.state() },
            SourceKind::Items { seed, rng, .. } => SourceState::Items {
                seed: *seed,
                word_pos: rng.get_word_pos().to_string(),
            },
        }
    }

    pub fn restore(&mut self, st: &SourceState) -> anyhow::Result<()> {
        match (&mut self.kind, st) {
            (SourceKind::Sequences(s), SourceState::Sequences { sampler }) => {
                Ok(s.restore(sampler)?)
            }
            (SourceKind::Items { seed, rng, .. }, SourceState::Items { seed: s2, word_pos }) => {
                anyhow::ensure!(
                    seed == s2,
                    "saved state is for seed {s2}, this run has seed {seed}"
                );
                **rng = icl_datagen::rng_for(*seed, STREAM_TRAIN);
                rng.set_word_pos(word_pos.parse().context("bad word_pos in saved state")?);
                Ok(())
            }
            _ => anyhow::bail!("saved source state is of another kind"),
        }
    }
}

/// A test set as item ids + labels over an item table; gathered into a batch chunk at a time.
pub struct TestSet {
    pub n: usize,
    pub ids: Vec<u32>,
    pub labels: Vec<f32>,
    pub items: Arc<ItemSet>,
}

impl TestSet {
    pub fn n_seq(&self) -> usize {
        self.ids.len().checked_div(self.n).unwrap_or(0)
    }

    /// The ICL test set over its novel items (labels from the artifact).
    pub fn icl(t: &IclTest, novel: Arc<ItemSet>, limit: Option<usize>) -> anyhow::Result<Self> {
        check_ids(&t.item, novel.len(), "icl_test", "novel_items")?;
        let labels = t.label.iter().map(|l| *l as f32).collect();
        Ok(Self {
            n: t.n,
            ids: t.item.clone(),
            labels,
            items: novel,
        }
        .truncated(limit))
    }

    /// The IWL test set over the training items, labelled by the run's label assignment.
    pub fn iwl(
        t: &IwlTest,
        items: Arc<ItemSet>,
        seed: u64,
        limit: Option<usize>,
    ) -> anyhow::Result<Self> {
        check_ids(&t.item, items.len(), "iwl_test", "items")?;
        let lab = assign_labels(items.len(), seed)?;
        let labels = t.item.iter().map(|i| lab[*i as usize] as f32).collect();
        Ok(Self {
            n: t.n,
            ids: t.item.clone(),
            labels,
            items,
        }
        .truncated(limit))
    }

    /// Every training item once, as a length-1 sequence (for the MLP's output on items).
    pub fn all_items(items: Arc<ItemSet>, seed: u64) -> anyhow::Result<Self> {
        let lab = assign_labels(items.len(), seed)?;
        Ok(Self {
            n: 1,
            ids: (0..items.len() as u32).collect(),
            labels: lab.iter().map(|l| *l as f32).collect(),
            items,
        })
    }

    /// The query items of this set as length-1 sequences.
    pub fn queries(&self) -> Self {
        let n = self.n;
        let ids: Vec<u32> = (0..self.n_seq()).map(|s| self.ids[s * n + n - 1]).collect();
        let labels = (0..self.n_seq())
            .map(|s| self.labels[s * n + n - 1])
            .collect();
        Self {
            n: 1,
            ids,
            labels,
            items: self.items.clone(),
        }
    }

    fn truncated(mut self, limit: Option<usize>) -> Self {
        if let Some(l) = limit {
            let keep = l.min(self.n_seq()) * self.n;
            self.ids.truncate(keep);
            self.labels.truncate(keep);
        }
        self
    }

    /// Gathers sequences `start..start+rows` into `batch` (which must have this set's n and d).
    pub fn fill(&self, start: usize, rows: usize, batch: &mut Batch) {
        let (n, d) = (self.n, self.items.d);
        assert!(batch.n == n && batch.d == d && rows <= batch.b);
        for r in 0..rows * n {
            let id = self.ids[start * n + r];
            batch.x[r * d..(r + 1) * d].copy_from_slice(self.items.item(id as usize));
            batch.labels[r] = self.labels[start * n + r];
            batch.item_ids[r] = id;
        }
    }
}

fn check_ids(ids: &[u32], k: usize, what: &str, table: &str) -> anyhow::Result<()> {
    if let Some(bad) = ids.iter().find(|i| **i as usize >= k) {
        anyhow::bail!("{what}: item {bad} out of range for the {k} rows of `{table}`");
    }
    Ok(())
}
