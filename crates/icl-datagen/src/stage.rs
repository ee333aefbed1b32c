//! The `icl-datagen` pipeline stage: commands `items` and `testsets`.

use std::collections::HashSet;

use anyhow::Context;
use icl_store::task::{check_params, ParamError, Stage, TaskSpec};
use serde::{Deserialize, Serialize};

use crate::{
    generate_items, make_icl_test, make_iwl_test, make_novel, ItemSet, NumItems, DEFAULT_D,
    DEFAULT_N_TEST,
};

fn default_d() -> usize {
    DEFAULT_D
}
fn default_n_test() -> usize {
    DEFAULT_N_TEST
}

/// `items`: the training item set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemsParams {
    #[serde(rename = "D", default = "default_d")]
    pub d: usize,
    #[serde(rename = "K")]
    pub k: NumItems,
    pub data_seed: u64,
}

/// `testsets`: novel items, ICL test and IWL test for one (K, N) from the `items` input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestsetsParams {
    #[serde(rename = "D", default = "default_d")]
    pub d: usize,
    #[serde(rename = "K")]
    pub k: NumItems,
    #[serde(rename = "N")]
    pub n: usize,
    #[serde(default = "default_n_test")]
    pub n_test: usize,
    pub test_seed: u64,
    /// When given, the `items` input is checked against a regeneration from this seed, which
    /// catches a pipeline that wires the wrong item set.
    #[serde(default)]
    pub data_seed: Option<u64>,
    /// Not a test-set parameter: accepted only to reject it with a clear message. Every run,
    /// whatever its training context rule, is scored on the standard ICL test (as in the
    /// reference code), where label counts carry no information about the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

fn check_d(d: usize, errs: &mut Vec<ParamError>) {
    if d == 0 {
        errs.push(ParamError::new("D", "must be >= 1 (got 0)"));
    } else if d > i32::MAX as usize {
        errs.push(ParamError::new(
            "D",
            format!("must be at most {} (got {d})", i32::MAX),
        ));
    }
}

fn check_k(k: NumItems, errs: &mut Vec<ParamError>) {
    if let Err(m) = k.validate() {
        errs.push(ParamError::new("K", m));
    }
}

impl ItemsParams {
    pub fn validate(&self) -> Vec<ParamError> {
        let mut errs = Vec::new();
        check_d(self.d, &mut errs);
        check_k(self.k, &mut errs);
        errs
    }
}

impl TestsetsParams {
    pub fn validate(&self) -> Vec<ParamError> {
        let mut errs = Vec::new();
        check_d(self.d, &mut errs);
        check_k(self.k, &mut errs);
        if self.n < 2 {
            errs.push(ParamError::new(
                "N",
                format!("must be >= 2 (query plus context; got {})", self.n),
            ));
        } else if self.n > u32::MAX as usize {
            errs.push(ParamError::new(
                "N",
                format!("must be at most {} (got {})", u32::MAX, self.n),
            ));
        }
        if self.n_test == 0 {
            errs.push(ParamError::new("n_test", "must be >= 1 (got 0)"));
        } else if self.n_test.saturating_mul(self.n) > u32::MAX as usize {
            errs.push(ParamError::new("n_test", "n_test * N must fit in 32 bits"));
        }
        if let Some(c) = &self.context {
            errs.push(ParamError::new(
                "context",
                format!(
                    "the ICL test is built with standard contexts for every run (got `{c}`): an equalized test \
                     lets the minority-label shortcut score; `context` belongs to the train stage"
                ),
            ));
        }
        errs
    }
}

fn bail_on(errs: Vec<ParamError>, stage: &str) -> anyhow::Result<()> {
    if errs.is_empty() {
        return Ok(());
    }
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    anyhow::bail!("stage {stage}: invalid parameters: {}", msgs.join("; "))
}

/// The stage implementation handed to `icl_store::task::stage_main`.
pub struct DatagenStage;

impl Stage for DatagenStage {
    fn check(&self, command: &str, params: &serde_json::Value) -> Vec<ParamError> {
        match command {
            "items" => match check_params::<ItemsParams>(params) {
                Ok(p) => p.validate(),
                Err(e) => e,
            },
            "testsets" => match check_params::<TestsetsParams>(params) {
                Ok(p) => p.validate(),
                Err(e) => e,
            },
            other => vec![ParamError::new(
                "command",
                format!("unknown command {other:?}; allowed: items, testsets"),
            )],
        }
    }

    fn run(&self, task: &TaskSpec) -> anyhow::Result<()> {
        match task.command.as_str() {
            "items" => {
                let p: ItemsParams = task.params_as()?;
                bail_on(p.validate(), &task.stage)?;
                run_items(&p)?.write(&task.output_path("items", "parquet"))
            }
            "testsets" => {
                let p: TestsetsParams = task.params_as()?;
                bail_on(p.validate(), &task.stage)?;
                let items_path = task.input("items")?;
                let items = ItemSet::read(items_path)?;
                let out = run_testsets(&p, &items)?;
                out.novel_items
                    .write(&task.output_path("novel_items", "parquet"))?;
                out.icl_test
                    .write(&task.output_path("icl_test", "parquet"))?;
                out.iwl_test.write(&task.output_path("iwl_test", "parquet"))
            }
            other => anyhow::bail!(
                "stage {}: unknown command {other:?}; allowed: items, testsets",
                task.stage
            ),
        }
    }
}

/// The `items` command's output (zero rows for K = inf).
pub fn run_items(p: &ItemsParams) -> anyhow::Result<ItemSet> {
    let k = p.k.finite().unwrap_or(0);
    Ok(generate_items(k, p.d, p.data_seed))
}

/// The `testsets` command's outputs.
pub struct TestsetsOutput {
    pub novel_items: ItemSet,
    pub icl_test: crate::IclTest,
    pub iwl_test: crate::IwlTest,
}

pub fn run_testsets(p: &TestsetsParams, items: &ItemSet) -> anyhow::Result<TestsetsOutput> {
    let expected_rows = p.k.finite().unwrap_or(0);
    if items.len() != expected_rows || (items.d != p.d && expected_rows > 0) {
        anyhow::bail!(
            "input `items` has {} items of dimension {}, but params say K = {} and D = {}",
            items.len(),
            items.d,
            p.k,
            p.d
        );
    }
    if let Some(seed) = p.data_seed {
        if *items != generate_items(expected_rows, p.d, seed) {
            anyhow::bail!(
                "input `items` was not generated from data_seed = {seed} (K = {}, D = {})",
                p.k,
                p.d
            );
        }
    }
    let novel = make_novel(p.k, p.d, p.test_seed).context("novel items")?;
    ensure_disjoint(items, &novel.items)?;
    let icl_test = make_icl_test(&novel, p.n, p.n_test, p.test_seed).context("ICL test set")?;
    let iwl_test = make_iwl_test(p.k, p.n, p.n_test, p.test_seed).context("IWL test set")?;
    Ok(TestsetsOutput {
        novel_items: (*novel.items).clone(),
        icl_test,
        iwl_test,
    })
}

/// The ICL test must be unsolvable by memorization: no novel vector may equal a training vector.
/// (With continuous draws from separate streams a clash has probability zero; this guards against
/// wiring mistakes such as reusing the training stream.)
fn ensure_disjoint(train: &ItemSet, novel: &ItemSet) -> anyhow::Result<()> {
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
    let set: HashSet<Vec<u32>> = (0..novel.len()).map(|i| bits(novel.item(i))).collect();
    if let Some(k) = (0..train.len()).find(|k| set.contains(&bits(train.item(*k)))) {
        anyhow::bail!(
            "novel items are not disjoint from the training items (training item {k} repeats)"
        );
    }
    Ok(())
}
