//! `icl-train`: the training stage (`run --task F`, `check`), a standalone `fit` for researchers,
//! and `bench`, the speed benchmark behind `make bench`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = icl_store::task::dispatch(&icl_train::stage::TrainStage, &args) {
        return code;
    }
    let result = match args.get(1).map(String::as_str) {
        Some("fit") => icl_train::fit::main(&args[1..]),
        Some("bench") => icl_train::bench::main(&args[1..]),
        _ => {
            eprintln!(
                "usage: icl-train run --task TASK.json   (pipeline stage)\n       icl-train check                (validate params on stdin)\n       icl-train fit --params P.json --out DIR [--set key=value ...]\n       icl-train bench [--quick] [--no-reference]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
