use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::normal::{force_portable, Isa, KinfNormals, SEED_WORDS};
use crate::{rng_for, DatagenError, ItemSet, STREAM_TRAIN};

/// `item_ids` entry for a token whose item is not in any item set (K = inf: fresh draws).
pub const NO_ITEM: u32 = u32::MAX;

/// How a training sequence's context is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextMode {
    /// N uniform draws with replacement; an unmatched query is replaced by a random context item.
    #[default]
    Standard,
    /// N/2 draws from each label's items, arranged so the query's label is the context minority
    /// (N/2 - 1 vs N/2) and the query has a match (paper Fig 6e/A8). Needs an even N >= 4.
    Equalized,
}

impl std::fmt::Display for ContextMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContextMode::Standard => "standard",
            ContextMode::Equalized => "equalized",
        })
    }
}

/// Where training sequences come from.
#[derive(Debug, Clone)]
pub enum TrainData {
    /// A fixed item set and its label assignment (`labels[i]` in {+1, -1} for item i).
    Finite {
        items: Arc<ItemSet>,
        labels: Vec<i8>,
    },
    /// K = infinity: every sequence draws fresh items of dimension `d` and fresh labels.
    Infinite { d: usize },
}

/// A batch of `b` sequences of `n` tokens, the query last.
/// [`Batch::token`]`(s, p)` is token p of sequence s: `x[(s*n + p)*d ..][..d]`, or, when `items`
/// is set, row `item_ids[s*n + p]` of that item set; `labels[s*n + p]` is its label (+1/-1; the
/// query's label is the target: the model must zero the query's one-hot itself); `item_ids` the
/// item's row in its item set ([`NO_ITEM`] for K = inf).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub b: usize,
    pub n: usize,
    pub d: usize,
    pub x: Vec<f32>,
    pub labels: Vec<f32>,
    pub item_ids: Vec<u32>,
    /// Set by [`Sampler::fill_batch`] at finite K on a batch made by [`Batch::by_reference`]:
    /// tokens are read from this item set and `x` is left untouched. Copying every token into
    /// `x` cost ~8% of a training step at N = 100 (the items are random rows of a table that
    /// does not fit in L2), and the model reads each token from memory once either way.
    pub items: Option<Arc<ItemSet>>,
    pub(crate) by_reference: bool,
}

impl Batch {
    pub fn new(b: usize, n: usize, d: usize) -> Self {
        Batch {
            b,
            n,
            d,
            x: vec![0.0; b * n * d],
            labels: vec![0.0; b * n],
            item_ids: vec![NO_ITEM; b * n],
            items: None,
            by_reference: false,
        }
    }

    /// A batch that [`Sampler::fill_batch`] fills without copying finite-K items (it sets
    /// `items` instead of writing `x`); read its tokens with [`Batch::token`].
    pub fn by_reference(b: usize, n: usize, d: usize) -> Self {
        Batch {
            by_reference: true,
            ..Batch::new(b, n, d)
        }
    }

    /// Token p of sequence s (its item, `d` floats).
    #[inline(always)]
    pub fn token(&self, s: usize, p: usize) -> &[f32] {
        let t = s * self.n + p;
        match &self.items {
            Some(items) => items.item(self.item_ids[t] as usize),
            None => &self.x[t * self.d..(t + 1) * self.d],
        }
    }

    /// Sequence s's tokens, `n*d` floats (a batch whose `items` is not set).
    pub fn seq_x(&self, s: usize) -> &[f32] {
        assert!(
            self.items.is_none(),
            "seq_x on a batch that reads its items by reference"
        );
        &self.x[s * self.n * self.d..(s + 1) * self.n * self.d]
    }

    /// Sequence s's labels, query last.
    pub fn seq_labels(&self, s: usize) -> &[f32] {
        &self.labels[s * self.n..(s + 1) * self.n]
    }

    /// The target (query label) of sequence s.
    pub fn target(&self, s: usize) -> f32 {
        self.labels[s * self.n + self.n - 1]
    }
}

/// The sampler's resumable RNG position. Serializes to JSON (`word_pos` as a decimal string,
/// since JSON numbers cannot carry a u128 portably).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerState {
    pub seed: u64,
    pub stream: u64,
    #[serde(with = "u128_string")]
    pub word_pos: u128,
}

mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

enum Source {
    Finite {
        items: Arc<ItemSet>,
        labels: Vec<f32>,
        /// Item ids with label +1 and -1 (for equalized contexts).
        plus: Vec<u32>,
        minus: Vec<u32>,
    },
    /// K = inf: the normal generator's workspace (its lanes are seeded per sequence from `rng`).
    Infinite(Box<KinfNormals>),
}

/// Online training-sequence sampler. One `ChaCha8Rng` (run seed, stream [`STREAM_TRAIN`]) drives
/// every draw, so [`Sampler::state`] / [`Sampler::restore`] resume bit-identically.
pub struct Sampler {
    n: usize,
    d: usize,
    mode: ContextMode,
    seed: u64,
    stream: u64,
    rng: ChaCha8Rng,
    source: Source,
    ids: Vec<u32>,
}

impl Sampler {
    /// A sampler of sequences of `n` tokens (query included) from `data`, seeded by the run seed.
    pub fn new(
        data: TrainData,
        n: usize,
        mode: ContextMode,
        seed: u64,
    ) -> Result<Self, DatagenError> {
        Self::with_stream(data, n, mode, seed, STREAM_TRAIN)
    }

    pub(crate) fn with_stream(
        data: TrainData,
        n: usize,
        mode: ContextMode,
        seed: u64,
        stream: u64,
    ) -> Result<Self, DatagenError> {
        if n < 2 {
            return Err(DatagenError::invalid(
                "N",
                format!("must be >= 2 (query plus context; got {n})"),
            ));
        }
        if mode == ContextMode::Equalized && (!n.is_multiple_of(2) || n < 4) {
            return Err(DatagenError::invalid(
                "N",
                format!(
                    "equalized contexts need an even N >= 4 (N/2 draws per label, query label \
                     in the minority N/2-1 vs N/2; got {n})"
                ),
            ));
        }
        let (d, source) = match data {
            TrainData::Infinite { d } => {
                if d == 0 {
                    return Err(DatagenError::invalid("D", "must be >= 1 (got 0)"));
                }
                if mode == ContextMode::Equalized {
                    return Err(DatagenError::invalid(
                        "context",
                        "equalized contexts need a finite K (got K = inf)",
                    ));
                }
                (
                    d,
                    Source::Infinite(Box::new(KinfNormals::new(Isa::detect()))),
                )
            }
            TrainData::Finite { items, labels } => {
                let k = items.len();
                if items.d == 0 {
                    return Err(DatagenError::invalid("D", "must be >= 1 (got 0)"));
                }
                if k < 2 || k > u32::MAX as usize {
                    return Err(DatagenError::invalid(
                        "K",
                        format!("must be in 2..=2^32-1 (got {k})"),
                    ));
                }
                if labels.len() != k {
                    return Err(DatagenError::invalid(
                        "labels",
                        format!(
                            "need one label per item: {} labels for {k} items",
                            labels.len()
                        ),
                    ));
                }
                if let Some(bad) = labels.iter().find(|l| **l != 1 && **l != -1) {
                    return Err(DatagenError::invalid(
                        "labels",
                        format!("must be +1 or -1 (got {bad})"),
                    ));
                }
                let plus: Vec<u32> = (0..k as u32).filter(|i| labels[*i as usize] == 1).collect();
                let minus: Vec<u32> = (0..k as u32)
                    .filter(|i| labels[*i as usize] == -1)
                    .collect();
                if mode == ContextMode::Equalized && (plus.is_empty() || minus.is_empty()) {
                    return Err(DatagenError::invalid(
                        "labels",
                        "equalized contexts need items of both labels",
                    ));
                }
                let d = items.d;
                let labels = labels.iter().map(|l| *l as f32).collect();
                (
                    d,
                    Source::Finite {
                        items,
                        labels,
                        plus,
                        minus,
                    },
                )
            }
        };
        Ok(Sampler {
            n,
            d,
            mode,
            seed,
            stream,
            rng: rng_for(seed, stream),
            source,
            ids: vec![0; n],
        })
    }

    pub fn n(&self) -> usize {
        self.n
    }
    pub fn d(&self) -> usize {
        self.d
    }
    pub fn mode(&self) -> ContextMode {
        self.mode
    }
    pub fn is_infinite(&self) -> bool {
        matches!(self.source, Source::Infinite(_))
    }

    /// Makes samplers created from now on run the K = inf generator on its portable kernels
    /// (`on`), or on the best this CPU has. For tests: the data are the same bits either way.
    #[doc(hidden)]
    pub fn force_portable_kernels(on: bool) {
        force_portable(on);
    }

    /// The RNG position, to checkpoint alongside the model.
    pub fn state(&self) -> SamplerState {
        SamplerState {
            seed: self.seed,
            stream: self.stream,
            word_pos: self.rng.get_word_pos(),
        }
    }

    /// Continue exactly where `state` was taken. The state must come from a sampler with the same
    /// seed (resuming a different run's stream is a wiring bug, not a feature).
    pub fn restore(&mut self, state: &SamplerState) -> Result<(), DatagenError> {
        if state.seed != self.seed || state.stream != self.stream {
            return Err(DatagenError::invalid(
                "sampler_state",
                format!(
                    "saved for seed {} stream {}, but this sampler has seed {} stream {}",
                    state.seed, state.stream, self.seed, self.stream
                ),
            ));
        }
        self.rng = rng_for(self.seed, self.stream);
        self.rng.set_word_pos(state.word_pos);
        Ok(())
    }

    /// Draws one sequence's item ids (finite K only); the query is last and always matched.
    /// Returns `None` for K = inf, where items have no ids.
    pub fn next_ids(&mut self) -> Option<&[u32]> {
        match &self.source {
            Source::Infinite(_) => None,
            Source::Finite {
                items, plus, minus, ..
            } => {
                match self.mode {
                    ContextMode::Standard => {
                        draw_standard(&mut self.rng, items.len() as u32, &mut self.ids)
                    }
                    ContextMode::Equalized => {
                        draw_equalized(&mut self.rng, plus, minus, &mut self.ids)
                    }
                }
                Some(&self.ids)
            }
        }
    }

    /// Fills all `batch.b` sequences. Allocation-free; `batch` must have this sampler's n and d.
    pub fn fill_batch(&mut self, batch: &mut Batch) {
        let (n, d) = (self.n, self.d);
        assert!(
            batch.n == n && batch.d == d,
            "batch shape (n={}, d={}) does not match the sampler (n={n}, d={d})",
            batch.n,
            batch.d
        );
        assert!(
            batch.x.len() == batch.b * n * d
                && batch.labels.len() == batch.b * n
                && batch.item_ids.len() == batch.b * n
        );
        batch.items = match &self.source {
            Source::Finite { items, .. } if batch.by_reference => Some(items.clone()),
            _ => None,
        };
        let copy = batch.items.is_none();
        for s in 0..batch.b {
            let x = &mut batch.x[s * n * d..(s + 1) * n * d];
            let lab = &mut batch.labels[s * n..(s + 1) * n];
            let ids = &mut batch.item_ids[s * n..(s + 1) * n];
            match &mut self.source {
                Source::Infinite(normals) => {
                    fill_infinite(&mut self.rng, normals, n, d, x, lab);
                    ids.fill(NO_ITEM);
                }
                Source::Finite {
                    items,
                    labels,
                    plus,
                    minus,
                } => {
                    match self.mode {
                        ContextMode::Standard => {
                            draw_standard(&mut self.rng, items.len() as u32, ids)
                        }
                        ContextMode::Equalized => draw_equalized(&mut self.rng, plus, minus, ids),
                    }
                    let (items, labels) = (&*items, &*labels);
                    for p in 0..n {
                        let id = ids[p] as usize;
                        if copy {
                            x[p * d..(p + 1) * d].copy_from_slice(items.item(id));
                        }
                        lab[p] = labels[id];
                    }
                }
            }
        }
    }
}

/// Standard context (reference `burstiness = 1`): n uniform draws with replacement from k items;
/// if the last (the query) does not occur among the first n-1, it is replaced by a uniformly
/// chosen context position's item.
#[inline]
pub(crate) fn draw_standard<R: Rng>(rng: &mut R, k: u32, ids: &mut [u32]) {
    let n = ids.len();
    for v in ids.iter_mut() {
        *v = rng.random_range(0..k);
    }
    let q = ids[n - 1];
    if !ids[..n - 1].contains(&q) {
        ids[n - 1] = ids[rng.random_range(0..n - 1)];
    }
}

/// Equalized context (reference `is_equalize_classes`), for even n >= 4:
/// draw h = n/2 items from each label group (positions 0..h from `a`, h..n from `b`). Pick a
/// uniform position j; if its item occurs elsewhere, it becomes the query. Otherwise pick a group
/// uniformly, overwrite that group's last draw with a copy of one of its other h-1 draws, and make
/// that copy the query. Either way the context holds h-1 items of the query's label and h of the
/// other, and the query is matched. The context is then uniformly shuffled.
pub(crate) fn draw_equalized<R: Rng>(rng: &mut R, a: &[u32], b: &[u32], ids: &mut [u32]) {
    let n = ids.len();
    let h = n / 2;
    for v in ids[..h].iter_mut() {
        *v = a[rng.random_range(0..a.len())];
    }
    for v in ids[h..].iter_mut() {
        *v = b[rng.random_range(0..b.len())];
    }
    let j = rng.random_range(0..n);
    let t = ids[j];
    let repeated = ids.iter().filter(|v| **v == t).count() > 1;
    if repeated {
        ids.swap(j, n - 1);
    } else if rng.random::<bool>() {
        // group a: its last draw (position h-1) becomes a copy of one of positions 0..h-1
        ids[h - 1] = ids[rng.random_range(0..h - 1)];
        ids.swap(h - 1, n - 1);
    } else {
        // group b: its last draw is already at n-1
        ids[n - 1] = ids[h + rng.random_range(0..h - 1)];
    }
    ids[..n - 1].shuffle(rng);
}

/// K = inf (reference `K < 0`): n-1 fresh items x ~ N(0, I/d) with fresh i.i.d. labels
/// (+1/-1 with probability 1/2 each, as the reference draws them); the query copies a uniformly
/// chosen context token (item and label). The items come from [`KinfNormals`] on lanes seeded by
/// 64 words of the ChaCha8 stream (normal.rs says why); labels and the query from the stream.
#[inline]
fn fill_infinite(
    rng: &mut ChaCha8Rng,
    normals: &mut KinfNormals,
    n: usize,
    d: usize,
    x: &mut [f32],
    lab: &mut [f32],
) {
    let scale = 1.0 / (d as f64).sqrt();
    let mut seed = [0u32; SEED_WORDS];
    rng.fill(&mut seed);
    normals.fill(&seed, &mut x[..(n - 1) * d], scale);
    // The labels are `rng.random::<bool>()` (a word's sign bit) for each context token, read 64
    // words at a time: the same words and values, without a buffer check per word (that cost
    // ~6% of a width-64 step).
    let mut words = [0u32; 64];
    for chunk in lab[..n - 1].chunks_mut(64) {
        let w = &mut words[..chunk.len()];
        rng.fill(w);
        for (l, w) in chunk.iter_mut().zip(w.iter()) {
            *l = if (*w as i32) < 0 { 1.0 } else { -1.0 };
        }
    }
    let j = rng.random_range(0..n - 1);
    x.copy_within(j * d..(j + 1) * d, (n - 1) * d);
    lab[n - 1] = lab[j];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ISA path gives the same batches, and the resumable word position does not depend on
    /// the path either.
    #[test]
    fn k_inf_batches_are_identical_on_every_isa() {
        let isas = Isa::available();
        for (n, d, b) in [(100usize, 63usize, 16usize), (7, 5, 9), (2, 1, 3)] {
            let run = |isa: Isa| {
                let mut s =
                    Sampler::new(TrainData::Infinite { d }, n, ContextMode::Standard, 42).unwrap();
                if let Source::Infinite(g) = &mut s.source {
                    g.set_isa(isa);
                }
                let mut batch = Batch::new(b, n, d);
                let mut out = Vec::new();
                for _ in 0..4 {
                    s.fill_batch(&mut batch);
                    out.push((
                        batch.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        batch.labels.clone(),
                        s.state().word_pos,
                    ));
                }
                out
            };
            let want = run(Isa::Portable);
            for &isa in &isas[1..] {
                assert!(run(isa) == want, "{isa:?} n {n} d {d}");
            }
        }
    }

    /// Pins the K = inf stream: a CPU without AVX-512 (or a later change to the kernels) must
    /// reproduce these bytes; changing them means every K = inf run reruns.
    #[test]
    fn k_inf_stream_is_pinned() {
        let mut s = Sampler::new(
            TrainData::Infinite { d: 63 },
            100,
            ContextMode::Standard,
            42,
        )
        .unwrap();
        let mut batch = Batch::new(4, 100, 63);
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for _ in 0..3 {
            s.fill_batch(&mut batch);
            for v in batch.x.iter().chain(&batch.labels) {
                h = (h ^ v.to_bits() as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        assert_eq!(
            (h, s.state().word_pos),
            (PINNED_HASH, PINNED_POS),
            "K = inf stream changed"
        );
    }
    const PINNED_HASH: u64 = 3_958_188_508_883_463_631;
    const PINNED_POS: u128 = 1968;
}
