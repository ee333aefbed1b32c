//! `icl-report`: REPORT.md and claims.parquet from the gathered claim tables.
fn main() -> std::process::ExitCode {
    icl_store::task::stage_main(icl_report::ReportStage)
}
