//! `icl-datagen`: the data-generation pipeline stage (`run --task F`, `check`), plus `bench`,
//! a throughput measurement of the online training sampler.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use icl_datagen::stage::DatagenStage;
use icl_datagen::{
    assign_labels, generate_items, Batch, ContextMode, NumItems, Sampler, TrainData,
};

#[derive(Parser)]
#[command(
    name = "icl-datagen bench",
    about = "Training-sampler throughput (sequences per second)"
)]
struct BenchArgs {
    /// Sequence length N (query included).
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// Number of items K (integer or "inf").
    #[arg(long, default_value = "1000")]
    k: NumItems,
    /// Item dimension.
    #[arg(long, default_value_t = 63)]
    d: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Batches to draw.
    #[arg(long, default_value_t = 2000)]
    batches: usize,
    /// Use equalized contexts.
    #[arg(long)]
    equalized: bool,
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    // parse_from prints --help and usage errors itself (exit 0 / 2).
    let a = BenchArgs::parse_from(args);
    let mode = if a.equalized {
        ContextMode::Equalized
    } else {
        ContextMode::Standard
    };
    let data = match a.k {
        NumItems::Infinite => TrainData::Infinite { d: a.d },
        NumItems::Finite(k) => TrainData::Finite {
            items: Arc::new(generate_items(k, a.d, 0)),
            labels: assign_labels(k, 0)?,
        },
    };
    let mut sampler = Sampler::new(data, a.n, mode, 0)?;
    let mut batch = Batch::new(a.batch, a.n, a.d);
    let t = Instant::now();
    let mut checksum = 0f64;
    for _ in 0..a.batches {
        sampler.fill_batch(&mut batch);
        checksum += batch.target(0) as f64;
    }
    let secs = t.elapsed().as_secs_f64();
    let seqs = (a.batches * a.batch) as f64;
    println!(
        "bench: n={} k={} d={} mode={mode} seqs_per_s={:.0} batches_per_s={:.1} (checksum {checksum})",
        a.n,
        a.k,
        a.d,
        seqs / secs,
        a.batches as f64 / secs
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = icl_store::task::dispatch(&DatagenStage, &args) {
        return code;
    }
    if args.get(1).map(String::as_str) == Some("bench") {
        return match bench(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    eprintln!(
        "usage: icl-datagen run --task TASK.json | icl-datagen check | icl-datagen bench [--n N --k K ...]"
    );
    ExitCode::from(2)
}
