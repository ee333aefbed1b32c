//! `icl-train fit`: one run outside the pipeline, for a researcher at a terminal. Data are
//! generated in-process from `data_seed` / `test_seed` (0 when null) exactly as icl-datagen's
//! stage would, unless artifact files are given. A progress bar shows rate and ETA, and one line
//! is logged per evaluation. Outputs go to `--out` (curve.parquet, summary.parquet,
//! checkpoint.safetensors, params.json); the state in `--out/resume` lets an interrupted fit
//! continue where it stopped (`--fresh` ignores it).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use icl_datagen::{
    generate_items, make_icl_test, make_iwl_test, make_novel, IclTest, ItemSet, IwlTest, NumItems,
    DEFAULT_N_TEST,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::params::TrainParams;
use crate::train::{train, Event, RunInputs};

#[derive(Parser)]
#[command(name = "icl-train fit", about = "Train one model outside the pipeline")]
struct FitArgs {
    /// JSON file with the run's parameters (the `train` stage's params object).
    #[arg(long)]
    params: Option<PathBuf>,
    /// Override or add a parameter: key=value (value parsed as JSON, else as a string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Artifact files instead of in-process generation (all four, or none).
    #[arg(long)]
    items: Option<PathBuf>,
    #[arg(long)]
    novel_items: Option<PathBuf>,
    #[arg(long)]
    icl_test: Option<PathBuf>,
    #[arg(long)]
    iwl_test: Option<PathBuf>,
    /// Sequences per generated test set.
    #[arg(long, default_value_t = DEFAULT_N_TEST)]
    n_test_generate: usize,
    /// Ignore a saved state in OUT/resume and start over.
    #[arg(long)]
    fresh: bool,
    /// No progress bar (log lines only).
    #[arg(long)]
    quiet: bool,
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let a = FitArgs::parse_from(args);
    let mut v = match &a.params {
        Some(f) => serde_json::from_str(
            &std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        )
        .with_context(|| format!("{} is not JSON", f.display()))?,
        None => serde_json::json!({}),
    };
    for kv in &a.set {
        let (k, val) = kv
            .split_once('=')
            .with_context(|| format!("--set expects key=value (got {kv:?})"))?;
        let val = serde_json::from_str(val)
            .unwrap_or_else(|_| serde_json::Value::String(val.to_string()));
        v.as_object_mut()
            .context("params must be a JSON object")?
            .insert(k.to_string(), val);
    }
    let p = TrainParams::from_json(&v).map_err(|errs| {
        anyhow::anyhow!(
            "invalid parameters: {}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let inputs = if a.items.is_some() || a.icl_test.is_some() {
        read_files(&a)?
    } else {
        generate(&p, a.n_test_generate)?
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    std::fs::write(a.out.join("params.json"), serde_json::to_string_pretty(&p)?)?;
    let resume = a.out.join("resume");
    if a.fresh {
        let _ = std::fs::remove_dir_all(&resume);
    }

    let total = p.total_iters();
    let pb = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} it  {rate}  ETA {eta}  {msg}",
        )
        .expect("static template")
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} it/s", s.per_sec());
            },
        )
        .progress_chars("=> "),
    );
    let quiet = a.quiet;
    let mut on_event = |e: Event| match e {
        Event::Resumed { iteration } => {
            pb.set_position(iteration);
            pb.reset_eta();
            pb.println(format!(
                "resumed from {} at iteration {iteration}",
                resume.display()
            ));
        }
        Event::Step { iteration, .. } => pb.set_position(iteration),
        Event::Saved { .. } => {}
        Event::Eval { row } => {
            pb.set_position(row.iteration);
            let line = log_line(row);
            pb.set_message(format!("ICL {:.3} IWL {:.3}", row.icl_acc, row.iwl_acc));
            if quiet {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        }
    };
    let result = train(&p, &inputs, Some(&resume), &mut on_event)?;
    pb.finish_and_clear();
    crate::stage::write_outputs(&p, &result, |name, ext| a.out.join(format!("{name}.{ext}")))?;
    let _ = std::fs::remove_dir_all(&resume);
    let s = &result.summary;
    println!(
        "done: {} iterations{} | final ICL acc {:.4} IWL acc {:.4} | t_ICL {} | outputs in {}",
        s.iterations,
        if s.early_stopped { " (early stop)" } else { "" },
        s.final_icl_acc,
        s.final_iwl_acc,
        s.t_icl.map_or("never".to_string(), |t| t.to_string()),
        a.out.display()
    );
    Ok(())
}

/// One readable line per evaluation.
pub fn log_line(row: &crate::train::CurveRow) -> String {
    format!(
        "it {:>9} ep {:>8.2} | train loss {:.4} acc {:.3} | ICL acc {:.3} loss {:.4} | IWL acc {:.3} loss {:.4} | beta_eff {:.3} w_eff {:.3} | c1 {:.3e} c3 {:.3e}",
        row.iteration, row.epoch, row.train_loss, row.train_acc, row.icl_acc, row.icl_loss, row.iwl_acc, row.iwl_loss,
        row.beta_eff, row.w_eff, row.c1, row.c3
    )
}

fn read_files(a: &FitArgs) -> anyhow::Result<RunInputs> {
    let mut r = RunInputs::default();
    if let Some(f) = &a.items {
        let items = ItemSet::read(f)?;
        r.items = (!items.is_empty()).then(|| Arc::new(items));
    }
    if let Some(f) = &a.novel_items {
        r.novel_items = Some(Arc::new(ItemSet::read(f)?));
    }
    if let Some(f) = &a.icl_test {
        r.icl_test = Some(IclTest::read(f)?);
    }
    if let Some(f) = &a.iwl_test {
        let t = IwlTest::read(f)?;
        r.iwl_test = (t.n_seq() > 0).then_some(t);
    }
    Ok(r)
}

/// The run's data as icl-datagen's stage builds them (`data_seed`, `test_seed` default 0).
pub fn generate(p: &TrainParams, n_test: usize) -> anyhow::Result<RunInputs> {
    let data_seed = p.data_seed.unwrap_or(0);
    let test_seed = p.test_seed.unwrap_or(0);
    let items = match p.k {
        NumItems::Finite(k) => Some(Arc::new(generate_items(k, p.d, data_seed))),
        NumItems::Infinite => None,
    };
    let novel = make_novel(p.k, p.d, test_seed)?;
    let icl = make_icl_test(&novel, p.n, n_test, test_seed)?;
    let iwl = make_iwl_test(p.k, p.n, n_test, test_seed)?;
    Ok(RunInputs {
        items,
        novel_items: Some(novel.items.clone()),
        icl_test: Some(icl),
        iwl_test: (iwl.n_seq() > 0).then_some(iwl),
    })
}
