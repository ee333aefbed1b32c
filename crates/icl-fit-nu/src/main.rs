//! `icl-fit-nu`: the stage binary (see the library's `stage` module for its commands).

fn main() -> std::process::ExitCode {
    icl_store::task::stage_main(icl_fit_nu::stage::STAGE)
}
