//! `icl runs STAGE --profile quick --out runs.parquet` is a table polars reads as it is
//! (issue 13): one row per task of the real pipeline.yaml's stage, with its matrix values,
//! status and key (the summary columns join once runs are in the store; this test uses an
//! empty store, so it runs in CI in a second).
//!
//! Needs every binary built first (`make test` does it).

use polars::prelude::*;
use std::path::PathBuf;
use std::process::Command;

fn release_dir() -> PathBuf {
    // target/release/deps/<this test> -> target/release
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

#[test]
fn runs_table_of_the_quick_transition_sweep_reads_back_in_polars() {
    let icl = release_dir().join("icl");
    assert!(
        icl.is_file(),
        "{} is missing: build every binary first (`make test` does)",
        icl.display()
    );
    // Read at run time: cargo reuses a workspace member's test binary across clones that share
    // one target dir, so a path baked in at compile time can name another clone.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let repo = manifest.join("../..");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs.parquet");
    let st = Command::new(&icl)
        .args(["runs", "train_transition", "--profile", "quick", "--file"])
        .arg(repo.join("pipeline.yaml"))
        .arg("--data-dir")
        .arg(tmp.path().join("store"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let df = ParquetReader::new(std::fs::File::open(&out).unwrap())
        .finish()
        .unwrap();
    // quick: K = 64..4096 (7 values) x 3 seeds.
    assert_eq!(df.height(), 21);
    for c in [
        "task",
        "K",
        "seed",
        "status",
        "key",
        "started",
        "duration_s",
    ] {
        assert!(
            df.column(c).is_ok(),
            "column {c} missing: {:?}",
            df.get_column_names()
        );
    }
    let k = df.column("K").unwrap().cast(&DataType::Int64).unwrap();
    let ks: Vec<i64> = k.i64().unwrap().into_no_null_iter().collect();
    assert_eq!(ks.iter().min(), Some(&64));
    assert_eq!(ks.iter().max(), Some(&4096));
    // An empty store: every run is missing, and so are its key (it hashes the item and test
    // sets, which do not exist yet) and timings.
    let status = df.column("status").unwrap().str().unwrap().clone();
    assert!(status.iter().all(|s| s == Some("missing")));
    assert_eq!(df.column("key").unwrap().null_count(), 21);
    assert_eq!(df.column("duration_s").unwrap().null_count(), 21);
}
