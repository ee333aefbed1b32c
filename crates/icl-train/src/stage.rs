//! The `icl-train` pipeline stage (command `train`) and the artifacts it writes:
//! `curve` (Parquet, one row per evaluation), `summary` (Parquet, one row: every parameter plus
//! the outcome) and `checkpoint` (safetensors, final parameters) — schemas in ARCHITECTURE.md.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use icl_datagen::{IclTest, ItemSet, IwlTest};
use icl_store::task::{check_params, ParamError, Stage, TaskSpec};

use crate::params::TrainParams;
use crate::train::{train, CurveRow, Event, RunInputs, RunResult, Summary};

pub struct TrainStage;

impl Stage for TrainStage {
    fn check(&self, command: &str, params: &serde_json::Value) -> Vec<ParamError> {
        if command != "train" {
            return vec![ParamError::new(
                "command",
                format!("unknown command {command:?}; allowed: train"),
            )];
        }
        match check_params::<TrainParams>(params) {
            Ok(p) => p.validate(),
            Err(e) => e,
        }
    }

    fn run(&self, task: &TaskSpec) -> anyhow::Result<()> {
        anyhow::ensure!(
            task.command == "train",
            "stage {}: unknown command {:?}; allowed: train",
            task.stage,
            task.command
        );
        let p: TrainParams = task.params_as()?;
        let errs = p.validate();
        anyhow::ensure!(
            errs.is_empty(),
            "stage {}: invalid parameters: {}",
            task.stage,
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
        let inputs = read_inputs(task)?;
        // One line per evaluation on stderr (the runner keeps it as the task's log).
        let mut log = |e: Event| match e {
            Event::Resumed { iteration } => eprintln!("resumed at iteration {iteration}"),
            Event::Eval { row } => eprintln!("{}", crate::fit::log_line(row)),
            Event::Saved { iteration } => eprintln!("state saved at iteration {iteration}"),
            Event::Step { .. } => {}
        };
        let result = train(&p, &inputs, task.resume_dir.as_deref(), &mut log)?;
        write_outputs(&p, &result, |name, ext| task.output_path(name, ext))
    }
}

/// Reads whichever of `items`, `novel_items`, `icl_test`, `iwl_test` are declared.
fn read_inputs(task: &TaskSpec) -> anyhow::Result<RunInputs> {
    let one = |name: &str| -> anyhow::Result<Option<&Path>> {
        match task.inputs_all(name) {
            [] => Ok(None),
            _ => Ok(Some(task.input(name)?)),
        }
    };
    let mut r = RunInputs::default();
    if let Some(path) = one("items")? {
        let items = ItemSet::read(path).context("input `items`")?;
        r.items = (!items.is_empty()).then(|| Arc::new(items));
    }
    if let Some(path) = one("novel_items")? {
        r.novel_items = Some(Arc::new(
            ItemSet::read(path).context("input `novel_items`")?,
        ));
    }
    if let Some(path) = one("icl_test")? {
        r.icl_test = Some(IclTest::read(path).context("input `icl_test`")?);
    }
    if let Some(path) = one("iwl_test")? {
        let t = IwlTest::read(path).context("input `iwl_test`")?;
        r.iwl_test = (t.n_seq() > 0).then_some(t);
    }
    Ok(r)
}

/// Writes `curve.parquet`, `summary.parquet`, `checkpoint.safetensors` at `path(name, ext)`.
pub fn write_outputs(
    p: &TrainParams,
    r: &RunResult,
    path: impl Fn(&str, &str) -> std::path::PathBuf,
) -> anyhow::Result<()> {
    icl_store::parquet::write_batch(&path("curve", "parquet"), &curve_batch(&r.curve)?)?;
    icl_store::parquet::write_batch(&path("summary", "parquet"), &summary_batch(p, &r.summary)?)?;
    let ckpt = path("checkpoint", "safetensors");
    let mut tmp = ckpt.as_os_str().to_owned();
    tmp.push(".partial");
    crate::reference::save_safetensors(&r.params, Path::new(&tmp))?;
    std::fs::rename(&tmp, &ckpt).with_context(|| format!("cannot write {}", ckpt.display()))?;
    Ok(())
}

/// The `curve` table.
pub fn curve_batch(curve: &[CurveRow]) -> anyhow::Result<RecordBatch> {
    let mut fields = vec![Field::new("iteration", DataType::UInt64, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from_iter_values(
        curve.iter().map(|r| r.iteration),
    ))];
    for (i, name) in CurveRow::COLUMNS[1..].iter().enumerate() {
        fields.push(Field::new(*name, DataType::Float64, false));
        cols.push(Arc::new(Float64Array::from_iter_values(
            curve.iter().map(|r| r.floats()[i]),
        )));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// The one-row `summary` table: every parameter (resolved defaults; `K` null for infinity), then
/// the outcome.
pub fn summary_batch(p: &TrainParams, s: &Summary) -> anyhow::Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    let mut push = |name: &str, dt: DataType, nullable: bool, a: ArrayRef| {
        fields.push(Field::new(name, dt, nullable));
        cols.push(a);
    };
    let int = |v: Option<i64>| -> ArrayRef { Arc::new(Int64Array::from(vec![v])) };
    let float = |v: Option<f64>| -> ArrayRef { Arc::new(Float64Array::from(vec![v])) };
    let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
    let i = |v: u64| Some(v as i64);
    push("model", DataType::Utf8, false, text(p.model.as_str()));
    push("D", DataType::Int64, false, int(i(p.d as u64)));
    push("N", DataType::Int64, false, int(i(p.n as u64)));
    push(
        "K",
        DataType::Int64,
        true,
        int(p.k.finite().map(|k| k as i64)),
    );
    push("width", DataType::Int64, false, int(i(p.width as u64)));
    push("lr", DataType::Float64, false, float(Some(p.lr)));
    push("batch", DataType::Int64, false, int(i(p.batch as u64)));
    push("wd_attn", DataType::Float64, false, float(Some(p.wd_attn)));
    push("wd_mlp", DataType::Float64, false, float(Some(p.wd_mlp)));
    push("epochs", DataType::Int64, false, int(i(p.epochs)));
    push(
        "iters_per_epoch",
        DataType::Int64,
        false,
        int(i(p.iters_per_epoch)),
    );
    push(
        "eval_every",
        DataType::Int64,
        false,
        int(i(p.eval_interval())),
    );
    push("early_stop", DataType::Float64, true, float(p.early_stop));
    push(
        "t_icl_threshold",
        DataType::Float64,
        false,
        float(Some(p.t_icl_threshold)),
    );
    push("seed", DataType::Int64, false, int(i(p.seed)));
    push(
        "data_seed",
        DataType::Int64,
        true,
        int(p.data_seed.map(|v| v as i64)),
    );
    push(
        "test_seed",
        DataType::Int64,
        true,
        int(p.test_seed.map(|v| v as i64)),
    );
    push(
        "context",
        DataType::Utf8,
        false,
        text(&p.context.to_string()),
    );
    push("beta0", DataType::Float64, true, float(p.beta0));
    push(
        "n_test",
        DataType::Int64,
        true,
        int(p.n_test.map(|v| v as i64)),
    );
    push(
        "save_every",
        DataType::Int64,
        false,
        int(i(p.save_interval())),
    );
    push(
        "final_icl_acc",
        DataType::Float64,
        false,
        float(Some(s.final_icl_acc)),
    );
    push(
        "final_iwl_acc",
        DataType::Float64,
        false,
        float(Some(s.final_iwl_acc)),
    );
    push(
        "final_icl_loss",
        DataType::Float64,
        false,
        float(Some(s.final_icl_loss)),
    );
    push(
        "final_iwl_loss",
        DataType::Float64,
        false,
        float(Some(s.final_iwl_loss)),
    );
    push(
        "iterations",
        DataType::UInt64,
        false,
        Arc::new(UInt64Array::from(vec![s.iterations])),
    );
    push(
        "t_icl",
        DataType::UInt64,
        true,
        Arc::new(UInt64Array::from(vec![s.t_icl])),
    );
    push(
        "acquired",
        DataType::Boolean,
        false,
        Arc::new(BooleanArray::from(vec![s.acquired])),
    );
    push(
        "peak_icl_acc",
        DataType::Float64,
        false,
        float(Some(s.peak_icl_acc)),
    );
    push(
        "early_stopped",
        DataType::Boolean,
        false,
        Arc::new(BooleanArray::from(vec![s.early_stopped])),
    );
    push(
        "beta0_eff",
        DataType::Float64,
        false,
        float(Some(s.beta0_eff)),
    );
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}
