//! Same seed, same bytes on any x86-64 CPU: a run on the portable kernels (icl-datagen's K = inf
//! generator and icl-train's element-wise kernels forced to their fallbacks) writes the same
//! curve, summary and checkpoint as a run on the best kernels this CPU has (AVX-512 here).
//! Its own test binary, because the forcing switches are process-wide.

use icl_datagen::Sampler;
use icl_train::TrainParams;

fn outputs(p: &TrainParams, dir: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::create_dir_all(dir).unwrap();
    let inputs = icl_train::fit::generate(p, 200).unwrap();
    let r = icl_train::train(p, &inputs, None, &mut |_| {}).unwrap();
    icl_train::stage::write_outputs(p, &r, |n, e| dir.join(format!("{n}.{e}"))).unwrap();
    ["curve.parquet", "summary.parquet", "checkpoint.safetensors"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

#[test]
fn forced_fallback_kernels_give_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    for (model, k) in [
        ("transformer", serde_json::json!("inf")),
        ("minimal", serde_json::json!("inf")),
        ("two_layer", serde_json::json!("inf")),
        ("transformer", serde_json::json!(20)),
    ] {
        let p = TrainParams::from_json(&serde_json::json!({
            "model": model, "D": 16, "N": 8, "K": k, "width": 32, "batch": 32, "lr": 0.05,
            "epochs": 2, "iters_per_epoch": 20, "seed": 5, "early_stop": null
        }))
        .unwrap();
        Sampler::force_portable_kernels(false);
        icl_train::fast::isa::force_baseline(false);
        let native = outputs(&p, &tmp.path().join(format!("{model}-{k}-native")));
        Sampler::force_portable_kernels(true);
        icl_train::fast::isa::force_baseline(true);
        let portable = outputs(&p, &tmp.path().join(format!("{model}-{k}-portable")));
        Sampler::force_portable_kernels(false);
        icl_train::fast::isa::force_baseline(false);
        assert_eq!(
            native, portable,
            "{model} K={k}: forced fallback kernels changed the outputs"
        );
    }
}
