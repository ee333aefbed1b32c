//! The thin binary speaks the stage protocol: `check` on stdin/stdout, `run --task F`, usage
//! errors with exit code 2.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_icl-eval");

#[test]
fn check_reports_keys_by_index() {
    let mut child = Command::new(BIN)
        .arg("check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = r#"[{"command": "c1", "params": {"profile": "ci"}},
                    {"command": "c7", "params": {"profile": "ci", "min_r2": 2}},
                    {"command": "c5", "params": {}}]"#;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 2, "{v}");
    assert_eq!(
        (a[0]["index"].as_u64(), a[0]["key"].as_str()),
        (Some(1), Some("min_r2"))
    );
    assert_eq!(
        (a[1]["index"].as_u64(), a[1]["key"].as_str()),
        (Some(2), Some("command"))
    );
}

#[test]
fn run_with_a_task_file_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Four run summaries at one K: two acquire early, two never.
    let mut inputs = Vec::new();
    for (i, t) in [Some(900u64), None, Some(1100), None].iter().enumerate() {
        use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, UInt64Array};
        use std::sync::Arc;
        let b = arrow::record_batch::RecordBatch::try_from_iter(vec![
            ("K", Arc::new(Int64Array::from(vec![300])) as ArrayRef),
            ("N", Arc::new(Int64Array::from(vec![100])) as ArrayRef),
            (
                "final_icl_acc",
                Arc::new(Float64Array::from(vec![if t.is_some() {
                    0.99
                } else {
                    0.5
                }])) as ArrayRef,
            ),
            (
                "iterations",
                Arc::new(UInt64Array::from(vec![10_000u64])) as ArrayRef,
            ),
            ("t_icl", Arc::new(UInt64Array::from(vec![*t])) as ArrayRef),
            (
                "acquired",
                Arc::new(BooleanArray::from(vec![t.is_some()])) as ArrayRef,
            ),
        ])
        .unwrap();
        let p = dir.path().join(format!("s{i}.parquet"));
        icl_store::parquet::write_batch(&p, &b).unwrap();
        inputs
            .push(serde_json::json!({"path": p, "hash": icl_store::hash::hash_file(&p).unwrap()}));
    }
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let task = serde_json::json!({
        "stage": "claim_c9", "command": "c9", "params": {"profile": "ci", "n_boot": 50},
        "inputs": {"summaries": inputs}, "outputs": ["claim", "figure_png", "figure_svg"],
        "out_dir": out_dir, "threads": 1,
    });
    let tf = dir.path().join("task.json");
    std::fs::write(&tf, task.to_string()).unwrap();
    let st = Command::new(BIN)
        .args(["run", "--task"])
        .arg(&tf)
        .status()
        .unwrap();
    assert!(st.success());
    for f in ["claim.parquet", "figure_png.png", "figure_svg.svg"] {
        assert!(out_dir.join(f).metadata().unwrap().len() > 0, "{f}");
    }
    let c = icl_eval::claim::read(&out_dir.join("claim.parquet")).unwrap();
    assert_eq!(c[0].claim, "C9");
    assert_eq!(c[0].n_runs, 4);
    assert_eq!(c[0].value, 0.5);

    let st = Command::new(BIN)
        .arg("frobnicate")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(2));
}
