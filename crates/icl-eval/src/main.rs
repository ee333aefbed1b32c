//! `icl-eval`: the claim stages C1, C2, C7, C9 (see the library docs).
fn main() -> std::process::ExitCode {
    icl_store::task::stage_main(icl_eval::EvalStage)
}
