//! The analysis on real training output: a tiny transformer (D = 16, N = 6, width 32, lr 0.1,
//! K = 128, attention decay 0.01; ~0.5 s) acquires ICL and loses it while it memorizes. Its
//! artifacts go through the same Parquet files and readers as in the pipeline.

use icl_claim::params::check;
use icl_transience::analysis::{analyze_run, Class, Curve, Thresholds};
use icl_transience::params::C10Params;

fn run(wd_attn: f64, dir: &std::path::Path) {
    let p = icl_train::TrainParams::from_json(&serde_json::json!({
        "model": "transformer", "D": 16, "N": 6, "K": 128, "width": 32, "batch": 32, "lr": 0.1,
        "epochs": 200, "iters_per_epoch": 50, "seed": 11, "early_stop": null, "wd_attn": wd_attn
    }))
    .unwrap();
    let inputs = icl_train::fit::generate(&p, 500).unwrap();
    let r = icl_train::train(&p, &inputs, None, &mut |_| {}).unwrap();
    icl_train::stage::write_outputs(&p, &r, |n, e| dir.join(format!("{n}.{e}"))).unwrap();
}

#[test]
fn tiny_decayed_run_is_transient_and_c10_sees_it() {
    let tmp = tempfile::tempdir().unwrap();
    run(0.01, tmp.path());
    let curve = Curve::read(&tmp.path().join("curve.parquet"), "tiny").unwrap();
    let a = analyze_run(&curve, Thresholds::for_n(0.9, None, 6));
    eprintln!("{a:?}");
    assert_eq!(a.class, Class::Transient, "{a:?}");
    assert!(a.t_loss.unwrap() > a.t_acquire.unwrap());
    // IWL rises while ICL fades: up by the loss (with the floor-based loss threshold the loss
    // is called early, at 0.79 for N = 6), and well up by the end.
    assert!(
        a.iwl_rise.unwrap() > 0.0,
        "IWL should rise while ICL fades: {a:?}"
    );
    assert!(
        a.final_iwl_acc - a.iwl_acc_at_acquire.unwrap() > 0.1,
        "{a:?}"
    );

    // The claim stage's path: summaries give wd_attn, curves pair up in order.
    let df = icl_claim::frame::read_stacked(&[tmp.path().join("summary.parquet")]).unwrap();
    let runs = icl_transience::runs_from(&df, |_, l| {
        Curve::read(&tmp.path().join("curve.parquet"), l)
    })
    .unwrap();
    assert_eq!(runs[0].wd_attn, 0.01);
    // This tiny run loses ICL (at the floor-based threshold) after IWL rose 0.058.
    let p: C10Params =
        check(&serde_json::json!({"profile": "test", "n_boot": 50, "min_iwl_rise": 0.05})).unwrap();
    let c = icl_transience::c10::analyze(runs, &p).unwrap();
    assert!(c.checks[0].pass, "{:?}", c.checks);
    assert!(
        !c.points.is_empty(),
        "post-acquisition points with measured c3"
    );
    eprintln!("relation: {:?}", c.relation);
}
