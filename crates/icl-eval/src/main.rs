//! `icl-eval`: the claim stages C1, C2, C7, C8, C9 (see the library docs).
fn main() -> std::process::ExitCode {
    // The tables are tiny; one polars thread is plenty and leaves the cores to training tasks
    // running beside this one. Set before polars starts (its pool reads this once).
    if std::env::var_os("POLARS_MAX_THREADS").is_none() {
        std::env::set_var("POLARS_MAX_THREADS", "1");
    }
    icl_store::task::stage_main(icl_eval::STAGE)
}
