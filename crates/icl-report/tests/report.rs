//! The report stage end to end: claim tables in (as claim stages write them), REPORT.md and
//! claims.parquet out; claims.parquet read back through polars.

use icl_claim::claim::{self, Claim, Verdict};
use icl_report::ReportStage;
use icl_store::task::{InputRef, Stage, TaskSpec};
use polars::prelude::*;
use serde_json::json;
use std::path::Path;

fn c(id: &str, v: Verdict, value: f64) -> Claim {
    Claim {
        claim: id.into(),
        figure: format!("Fig {id}"),
        statement: format!("statement of {id} | with a pipe"),
        paper_value: "paper value".into(),
        value,
        low: value * 0.8,
        high: value * 1.25,
        unit: "units".into(),
        profile: "ci".into(),
        verdict: v,
        n_runs: 7,
        details: json!({"checks": [{"name": "x_ok", "pass": true, "value": 0.5, "rule": "x > 0.1"}], "verdict_rule": "all pass", "n": 3}).to_string(),
    }
}

fn table(dir: &Path, name: &str, claims: &[Claim]) -> InputRef {
    let p = dir.join(format!("{name}.parquet"));
    claim::write(&p, claims).unwrap();
    InputRef {
        hash: icl_store::hash::hash_file(&p).unwrap(),
        path: p,
    }
}

fn task(dir: &Path, out: &str, inputs: Vec<InputRef>, params: serde_json::Value) -> TaskSpec {
    let out_dir = dir.join(out);
    std::fs::create_dir_all(&out_dir).unwrap();
    TaskSpec {
        stage: "report".into(),
        command: "report".into(),
        params,
        inputs: [("claims".to_string(), inputs)].into_iter().collect(),
        outputs: vec!["report".into(), "claims".into()],
        out_dir,
        resume_dir: None,
        threads: 1,
    }
}

#[test]
fn report_and_claims_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut nan = c("C2", Verdict::Partly, 3.0);
    nan.low = f64::NAN;
    nan.high = f64::NAN;
    let inputs = vec![
        table(dir.path(), "a", &[c("C10", Verdict::Not, 0.1)]),
        table(dir.path(), "b", &[c("C9", Verdict::Reproduced, 0.45), nan]),
        table(dir.path(), "c", &[c("C1", Verdict::Reproduced, 9812.0)]),
    ];
    let params = json!({"notes": "Quick profile: N scaled from 100 to 20 because t_ICL ~ N."});
    assert!(ReportStage.check("report", &params).is_empty());
    let t = task(dir.path(), "out", inputs.clone(), params.clone());
    ReportStage.run(&t).unwrap();

    // claims.parquet through polars: sorted by claim id, plain columns.
    let f = std::fs::File::open(t.output_path("claims", "parquet")).unwrap();
    let df = ParquetReader::new(f).finish().unwrap();
    let ids: Vec<&str> = df
        .column("claim")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(ids, ["C1", "C2", "C9", "C10"]);
    for col in icl_claim::claim::COLUMNS {
        assert!(df.column(col).is_ok(), "column {col}");
    }
    let verdicts: Vec<&str> = df
        .column("verdict")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["reproduced", "partly", "reproduced", "not reproduced"]
    );
    assert_eq!(
        df.column("value").unwrap().f64().unwrap().get(0),
        Some(9812.0)
    );
    assert_eq!(df.column("n_runs").unwrap().i64().unwrap().get(3), Some(7));
    assert_eq!(
        df.column("low").unwrap().f64().unwrap().get(1),
        None,
        "no interval is null"
    );

    let md = std::fs::read_to_string(t.output_path("report", "md")).unwrap();
    assert!(md.contains("## Notes\n\nQuick profile: N scaled from 100 to 20"));
    assert!(md.contains("reproduced 2, partly 1, not reproduced 1, inconclusive 0"));
    // One table row per claim, in order, with figure links.
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| [C")).collect();
    assert_eq!(rows.len(), 4);
    assert!(rows[0].starts_with("| [C1](#c1) | Fig C1 |"));
    assert!(rows[0].contains("9812 [7850, 12265]"), "{}", rows[0]);
    assert!(rows[0].contains("figures/c1.png"));
    assert!(
        rows[0].contains("statement of C1 \\| with a pipe"),
        "pipes are escaped"
    );
    assert!(
        rows[1].contains("| 3.00 |"),
        "no interval when undefined: {}",
        rows[1]
    );
    assert!(rows[3].contains("figures/c10.png") && rows[3].contains("not reproduced"));
    assert!(md.contains("## C9: **reproduced** (Fig C9)"));
    assert!(md.contains("![C10 figure](figures/c10.png)"));
    assert!(md.contains("| x_ok | yes | 0.500 | x > 0.1 |"));
    assert!(md.contains("\"verdict_rule\": \"all pass\""));

    // Deterministic bytes.
    let t2 = task(dir.path(), "out2", inputs, params);
    ReportStage.run(&t2).unwrap();
    for (n, e) in [("report", "md"), ("claims", "parquet")] {
        assert_eq!(
            std::fs::read(t.output_path(n, e)).unwrap(),
            std::fs::read(t2.output_path(n, e)).unwrap()
        );
    }
}

#[test]
fn duplicate_claims_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = vec![
        table(dir.path(), "a", &[c("C1", Verdict::Not, 1.0)]),
        table(dir.path(), "b", &[c("C1", Verdict::Reproduced, 2.0)]),
    ];
    let t = task(dir.path(), "out", inputs, json!({}));
    let e = ReportStage.run(&t).unwrap_err().to_string();
    assert!(e.contains("C1") && e.contains("more than one"), "{e}");
}

#[test]
fn bad_command_and_params_are_named() {
    assert_eq!(ReportStage.check("render", &json!({}))[0].key, "command");
    assert_eq!(
        ReportStage.check("report", &json!({"figures_dir": "/abs"}))[0].key,
        "figures_dir"
    );
}
