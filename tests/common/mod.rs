//! Helpers shared by the integration-test binaries (`e2e`, `slurm`); each uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub const ICL: &str = env!("CARGO_BIN_EXE_icl");

/// The folder of the stage binaries: next to `icl`, or `ICL_BIN_DIR`.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("ICL_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(ICL).parent().unwrap().to_path_buf(),
    }
}

/// The workspace root (the tests live in `icl-pipeline`, two levels down).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A process's exit code, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
