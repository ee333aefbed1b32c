//! `icl-transience`: the claim stages C10, C11, C12 (see the library docs).
fn main() -> std::process::ExitCode {
    // Tiny tables: one polars thread leaves the cores to training tasks running beside this one.
    if std::env::var_os("POLARS_MAX_THREADS").is_none() {
        std::env::set_var("POLARS_MAX_THREADS", "1");
    }
    icl_store::task::stage_main(icl_transience::STAGE)
}
