//! `icl`: the pipeline runner (all logic lives in the library).
fn main() -> std::process::ExitCode {
    icl_pipeline::cli::main()
}
