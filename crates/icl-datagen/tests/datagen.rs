//! Properties of the generated task data (issue 2, "Tests of the task's properties").
#![allow(clippy::needless_range_loop)] // index loops mirror the (seq, pos) layout

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use icl_datagen::stage::{run_testsets, DatagenStage, ItemsParams, TestsetsParams};
use icl_datagen::*;
use icl_store::task::{InputRef, Stage, TaskSpec};

fn finite_sampler(
    k: usize,
    d: usize,
    n: usize,
    mode: ContextMode,
    seed: u64,
) -> (Sampler, Arc<ItemSet>, Vec<i8>) {
    let items = Arc::new(generate_items(k, d, 11));
    let labels = assign_labels(k, seed).unwrap();
    let s = Sampler::new(
        TrainData::Finite {
            items: items.clone(),
            labels: labels.clone(),
        },
        n,
        mode,
        seed,
    )
    .unwrap();
    (s, items, labels)
}

fn query_matched(ids: &[u32]) -> bool {
    let n = ids.len();
    ids[..n - 1].contains(&ids[n - 1])
}

#[test]
fn training_queries_always_matched_and_tokens_consistent() {
    for &(k, n) in &[
        (2usize, 2usize),
        (2, 10),
        (10, 5),
        (1000, 100),
        (100_000, 100),
        (64, 300),
    ] {
        let (mut s, items, labels) = finite_sampler(k, 7, n, ContextMode::Standard, 5);
        let mut b = Batch::new(64, n, 7);
        for _ in 0..20 {
            s.fill_batch(&mut b);
            for q in 0..b.b {
                let ids = &b.item_ids[q * n..(q + 1) * n];
                assert!(query_matched(ids), "K={k} N={n}: unmatched query {ids:?}");
                for p in 0..n {
                    let id = ids[p] as usize;
                    assert!(id < k);
                    assert_eq!(&b.x[(q * n + p) * 7..(q * n + p + 1) * 7], items.item(id));
                    assert_eq!(b.labels[q * n + p], labels[id] as f32);
                }
            }
        }
    }
}

#[test]
fn standard_context_items_are_uniform() {
    // Context draws are uniform over the K items; the query's label is +1 half the time.
    let k = 20;
    let (mut s, _, labels) = finite_sampler(k, 3, 50, ContextMode::Standard, 9);
    let mut b = Batch::new(128, 50, 3);
    let mut counts = vec![0f64; k];
    let mut plus_targets = 0usize;
    let rounds = 100;
    for _ in 0..rounds {
        s.fill_batch(&mut b);
        for q in 0..b.b {
            for p in 0..49 {
                counts[b.item_ids[q * 50 + p] as usize] += 1.0;
            }
            plus_targets += (b.target(q) > 0.0) as usize;
        }
    }
    let total: f64 = counts.iter().sum();
    let e = total / k as f64;
    let chi2: f64 = counts.iter().map(|c| (c - e).powi(2) / e).sum();
    // 19 degrees of freedom: P(chi2 > 50) < 1e-4.
    assert!(chi2 < 50.0, "chi2 {chi2}");
    let frac = plus_targets as f64 / (rounds * 128) as f64;
    assert!((frac - 0.5).abs() < 0.03, "fraction of +1 targets {frac}");
    assert_eq!(labels.iter().filter(|l| **l == 1).count(), k / 2);
}

#[test]
fn equalized_contexts_put_query_label_in_minority() {
    let n = 100;
    let (mut s, _, labels) = finite_sampler(1000, 5, n, ContextMode::Equalized, 3);
    let mut b = Batch::new(128, n, 5);
    let mut plus_targets = 0usize;
    for _ in 0..20 {
        s.fill_batch(&mut b);
        for q in 0..b.b {
            let ids = &b.item_ids[q * n..(q + 1) * n];
            assert!(query_matched(ids));
            let target = b.target(q);
            let same = b.labels[q * n..q * n + n - 1]
                .iter()
                .filter(|l| **l == target)
                .count();
            assert_eq!(same, 49, "query label count in context");
            assert_eq!(n - 1 - same, 50);
            assert_eq!(labels[ids[n - 1] as usize] as f32, target);
            plus_targets += (target > 0.0) as usize;
        }
    }
    let frac = plus_targets as f64 / (20 * 128) as f64;
    assert!((frac - 0.5).abs() < 0.05, "fraction of +1 targets {frac}");
    // Even N in general; odd N and N = 2 are refused with the key.
    for (nn, ok) in [(4usize, true), (6, true), (99, false), (2, false)] {
        let items = Arc::new(generate_items(10, 3, 1));
        let r = Sampler::new(
            TrainData::Finite {
                items,
                labels: assign_labels(10, 1).unwrap(),
            },
            nn,
            ContextMode::Equalized,
            1,
        );
        assert_eq!(r.is_ok(), ok, "N={nn}");
        if let Err(DatagenError::Invalid { key, .. }) = r {
            assert_eq!(key, "N");
        }
    }
    // N = 4: one context item of the query's label (its match) and two of the other.
    let (mut s, _, _) = finite_sampler(6, 2, 4, ContextMode::Equalized, 8);
    let mut b = Batch::new(500, 4, 2);
    s.fill_batch(&mut b);
    for q in 0..b.b {
        assert!(query_matched(&b.item_ids[q * 4..q * 4 + 4]));
        let t = b.target(q);
        assert_eq!(
            b.labels[q * 4..q * 4 + 3]
                .iter()
                .filter(|l| **l == t)
                .count(),
            1
        );
    }
}

#[test]
fn infinite_mode_fresh_items_and_labels() {
    let (n, d) = (20, 63);
    let mut s = Sampler::new(TrainData::Infinite { d }, n, ContextMode::Standard, 4).unwrap();
    assert!(s.next_ids().is_none());
    let mut b = Batch::new(256, n, d);
    s.fill_batch(&mut b);
    let first = b.clone();
    s.fill_batch(&mut b);
    assert_ne!(first.x, b.x, "fresh items every batch");
    let mut seen = HashSet::new();
    let mut plus = 0usize;
    let mut sq = 0f64;
    for q in 0..b.b {
        let xs = b.seq_x(q);
        let query = &xs[(n - 1) * d..];
        let j = (0..n - 1)
            .find(|p| &xs[p * d..(p + 1) * d] == query)
            .expect("query copies a context item");
        assert_eq!(b.labels[q * n + j], b.target(q));
        for p in 0..n - 1 {
            assert!(seen.insert(
                xs[p * d..(p + 1) * d]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            ));
            sq += xs[p * d..(p + 1) * d]
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>();
            plus += (b.labels[q * n + p] > 0.0) as usize;
        }
        assert!(b.item_ids[q * n..(q + 1) * n].iter().all(|i| *i == NO_ITEM));
    }
    let tokens = (b.b * (n - 1)) as f64;
    assert!(
        (sq / tokens - 1.0).abs() < 0.02,
        "mean squared norm {}",
        sq / tokens
    );
    assert!((plus as f64 / tokens - 0.5).abs() < 0.03);
    assert!(Sampler::new(TrainData::Infinite { d }, n, ContextMode::Equalized, 4).is_err());
}

#[test]
fn sampler_resumes_bit_identically() {
    for inf in [false, true] {
        let make = || {
            if inf {
                Sampler::new(TrainData::Infinite { d: 9 }, 12, ContextMode::Standard, 77).unwrap()
            } else {
                finite_sampler(40, 9, 12, ContextMode::Equalized, 77).0
            }
        };
        let mut a = make();
        let mut b1 = Batch::new(16, 12, 9);
        for _ in 0..3 {
            a.fill_batch(&mut b1);
        }
        let state = a.state();
        let json = serde_json::to_string(&state).unwrap();
        let mut expect = Vec::new();
        for _ in 0..3 {
            a.fill_batch(&mut b1);
            expect.push(b1.clone());
        }
        let mut c = make();
        c.restore(&serde_json::from_str(&json).unwrap()).unwrap();
        let mut b2 = Batch::new(16, 12, 9);
        for e in &expect {
            c.fill_batch(&mut b2);
            assert_eq!(&b2, e);
        }
        // A different seed's state is refused, and a different seed gives different data.
        let mut other =
            Sampler::new(TrainData::Infinite { d: 9 }, 12, ContextMode::Standard, 78).unwrap();
        assert!(other.restore(&state).is_err());
        let mut b3 = Batch::new(16, 12, 9);
        other.fill_batch(&mut b3);
        assert_ne!(b3.x, expect[0].x);
    }
}

#[test]
fn iwl_test_distinct_items_and_unmatched_query() {
    let t = make_iwl_test(NumItems::Finite(1000), 100, 2000, 5).unwrap();
    assert_eq!(t.n_seq(), 2000);
    let mut query_counts = vec![0usize; 1000];
    for s in 0..t.n_seq() {
        let seq = &t.item[s * 100..(s + 1) * 100];
        let set: HashSet<u32> = seq.iter().copied().collect();
        assert_eq!(set.len(), 100, "items in an IWL sequence are distinct");
        assert!(!query_matched(seq));
        query_counts[seq[99] as usize] += 1;
    }
    // The query is roughly uniform over items (2 per item on average).
    assert!(query_counts.iter().filter(|c| **c > 0).count() > 800);
    // K = N: every sequence is a permutation of all items.
    let t = make_iwl_test(NumItems::Finite(100), 100, 50, 5).unwrap();
    for s in 0..50 {
        let set: HashSet<u32> = t.item[s * 100..(s + 1) * 100].iter().copied().collect();
        assert_eq!(set.len(), 100);
    }
    // K < N: query still unmatched.
    let t = make_iwl_test(NumItems::Finite(10), 100, 200, 5).unwrap();
    for s in 0..200 {
        let seq = &t.item[s * 100..(s + 1) * 100];
        assert!(!query_matched(seq));
        assert!(seq.iter().all(|i| *i < 10));
    }
    // K = inf: no sequences.
    assert_eq!(
        make_iwl_test(NumItems::Infinite, 100, 2000, 5)
            .unwrap()
            .n_seq(),
        0
    );
    // The IWL item choice does not depend on any run seed: the same test_seed gives the same set.
    assert_eq!(
        make_iwl_test(NumItems::Finite(500), 50, 10, 1).unwrap(),
        make_iwl_test(NumItems::Finite(500), 50, 10, 1).unwrap()
    );
    assert_ne!(
        make_iwl_test(NumItems::Finite(500), 50, 10, 1).unwrap(),
        make_iwl_test(NumItems::Finite(500), 50, 10, 2).unwrap()
    );
}

#[test]
fn icl_test_novel_balanced_matched_and_disjoint() {
    let train = generate_items(30_000, 63, 42);
    // Even with test_seed == data_seed the novel items differ (separate streams).
    let novel = make_novel(NumItems::Finite(30_000), 63, 42).unwrap();
    assert_eq!(novel.items.len(), NOVEL_CAP);
    assert_eq!(
        novel.labels.iter().filter(|l| **l == 1).count(),
        NOVEL_CAP / 2
    );
    let train_bits: HashSet<Vec<u32>> = (0..train.len())
        .map(|k| train.item(k).iter().map(|v| v.to_bits()).collect())
        .collect();
    for i in 0..novel.items.len() {
        let v: Vec<u32> = novel.items.item(i).iter().map(|v| v.to_bits()).collect();
        assert!(
            !train_bits.contains(&v),
            "novel item {i} equals a training item"
        );
    }
    let t = make_icl_test(&novel, 100, 2000, 42).unwrap();
    assert_eq!(t.n_seq(), 2000);
    for s in 0..2000 {
        let seq = &t.item[s * 100..(s + 1) * 100];
        assert!(query_matched(seq));
        for p in 0..100 {
            assert_eq!(t.label[s * 100 + p], novel.labels[seq[p] as usize]);
        }
    }
    assert_eq!(
        make_novel(NumItems::Finite(500), 63, 1)
            .unwrap()
            .items
            .len(),
        500
    );
    assert_eq!(
        make_novel(NumItems::Infinite, 63, 1).unwrap().items.len(),
        NOVEL_CAP
    );
    // Dense form agrees with the ids.
    let b = t.dense(&novel.items).unwrap();
    assert_eq!((b.b, b.n, b.d), (2000, 100, 63));
    assert_eq!(b.seq_x(7)[..63], *novel.items.item(t.item[700] as usize));
    assert_eq!(b.target(7), t.label[799] as f32);
}

/// Accuracy of "predict the majority (or minority) label of the context" on an ICL test set;
/// ties count half.
fn count_rule_accuracy(t: &icl_datagen::IclTest, minority: bool) -> f64 {
    let n = t.n;
    let mut right = 0.0;
    for s in 0..t.n_seq() {
        let lab = &t.label[s * n..(s + 1) * n];
        let sum: i32 = lab[..n - 1].iter().map(|&l| l as i32).sum();
        let pred = if minority {
            -sum.signum()
        } else {
            sum.signum()
        };
        right += if pred == 0 {
            0.5
        } else if pred == lab[n - 1] as i32 {
            1.0
        } else {
            0.0
        };
    }
    right / t.n_seq() as f64
}

/// The ICL test every run is scored on (equalized-trained runs included) gives the label count
/// no information about the query beyond the match's vote: the majority rule scores the count
/// floor, the minority shortcut that equalized training rewards scores below it (below chance).
/// Built through the `testsets` stage, as the pipeline builds the equalized arm's test.
#[test]
fn icl_test_gives_the_minority_shortcut_nothing() {
    for n in [8usize, 16, 32] {
        let p: TestsetsParams = serde_json::from_value(serde_json::json!(
            {"D": 8, "K": 512, "N": n, "n_test": 4000, "test_seed": 2, "data_seed": 1}
        ))
        .unwrap();
        let items = icl_datagen::generate_items(512, 8, 1);
        let t = run_testsets(&p, &items).unwrap().icl_test;
        let floor = icl_eval::floor::count_floor(n as u64);
        let (maj, min) = (
            count_rule_accuracy(&t, false),
            count_rule_accuracy(&t, true),
        );
        // 4 binomial standard deviations of 4000 sequences: 0.032.
        assert!(
            (maj - floor).abs() < 0.032,
            "N = {n}: majority rule {maj} vs floor {floor}"
        );
        assert!(
            min <= floor,
            "N = {n}: the minority shortcut scores {min} > floor {floor}"
        );
        assert!(min < 0.5, "N = {n}: minority rule {min}");
    }
    // An equalized ICL test is refused, with a message naming the key.
    let bad: TestsetsParams = serde_json::from_value(serde_json::json!(
        {"K": 512, "N": 8, "test_seed": 2, "context": "equalized"}
    ))
    .unwrap();
    let e = bad.validate();
    assert!(
        e.iter()
            .any(|x| x.key == "context" && x.message.contains("standard contexts")),
        "{e:?}"
    );
}

fn write_and_hash(
    dir: &std::path::Path,
    name: &str,
    f: impl FnOnce(&std::path::Path) -> anyhow::Result<()>,
) -> String {
    let p = dir.join(format!("{name}.parquet"));
    f(&p).unwrap();
    icl_store::hash::hash_file(&p).unwrap()
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let gen = |data_seed: u64, test_seed: u64, tag: &str| -> Vec<String> {
        let items = generate_items(2000, 63, data_seed);
        let p = TestsetsParams {
            d: 63,
            k: NumItems::Finite(2000),
            n: 50,
            n_test: 300,
            test_seed,
            data_seed: Some(data_seed),
            context: None,
        };
        let out = run_testsets(&p, &items).unwrap();
        vec![
            write_and_hash(dir.path(), &format!("items{tag}"), |p| items.write(p)),
            write_and_hash(dir.path(), &format!("novel{tag}"), |p| {
                out.novel_items.write(p)
            }),
            write_and_hash(dir.path(), &format!("icl{tag}"), |p| out.icl_test.write(p)),
            write_and_hash(dir.path(), &format!("iwl{tag}"), |p| out.iwl_test.write(p)),
        ]
    };
    let a = gen(1, 2, "a");
    let b = gen(1, 2, "b");
    assert_eq!(a, b);
    let c = gen(3, 2, "c");
    assert_ne!(a[0], c[0]);
    assert_eq!(a[1..], c[1..], "test sets depend on test_seed only");
    let d = gen(1, 4, "d");
    assert_eq!(a[0], d[0]);
    for i in 1..4 {
        assert_ne!(a[i], d[i]);
    }
}

fn task(
    dir: &std::path::Path,
    command: &str,
    params: serde_json::Value,
    inputs: &[(&str, &std::path::Path)],
    outputs: &[&str],
) -> TaskSpec {
    let out_dir = dir.join(format!("out-{command}"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut map = BTreeMap::new();
    for (name, path) in inputs {
        map.insert(
            name.to_string(),
            vec![InputRef {
                path: path.to_path_buf(),
                hash: icl_store::hash::hash_file(path).unwrap(),
            }],
        );
    }
    TaskSpec {
        stage: "datagen".into(),
        command: command.into(),
        params,
        inputs: map,
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        out_dir,
        resume_dir: None,
        threads: 1,
    }
}

#[test]
fn stage_runs_and_artifacts_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let t = task(
        dir.path(),
        "items",
        serde_json::json!({"K": 600, "data_seed": 5}),
        &[],
        &["items"],
    );
    DatagenStage.run(&t).unwrap();
    let items_path = t.output_path("items", "parquet");
    let items = ItemSet::read(&items_path).unwrap();
    assert_eq!(items, generate_items(600, DEFAULT_D, 5));
    let mean_sq = (0..items.len())
        .map(|k| {
            items
                .item(k)
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / 600.0;
    assert!((mean_sq - 1.0).abs() < 0.03, "{mean_sq}");

    let params =
        serde_json::json!({"K": 600, "N": 40, "n_test": 100, "test_seed": 9, "data_seed": 5});
    let t2 = task(
        dir.path(),
        "testsets",
        params,
        &[("items", &items_path)],
        &["novel_items", "icl_test", "iwl_test"],
    );
    DatagenStage.run(&t2).unwrap();
    let novel = ItemSet::read(&t2.output_path("novel_items", "parquet")).unwrap();
    let icl = IclTest::read(&t2.output_path("icl_test", "parquet")).unwrap();
    let iwl = IwlTest::read(&t2.output_path("iwl_test", "parquet")).unwrap();
    assert_eq!(
        (novel.len(), icl.n, icl.n_seq(), iwl.n, iwl.n_seq()),
        (600, 40, 100, 40, 100)
    );
    let labels = assign_labels(600, 123).unwrap();
    let b = iwl.dense(&items, &labels).unwrap();
    for s in 0..b.b {
        let q = iwl.item[s * 40 + 39] as usize;
        assert_eq!(b.target(s), labels[q] as f32);
        assert_eq!(&b.x[(s * 40 + 39) * 63..(s * 40 + 40) * 63], items.item(q));
    }
    let bi = icl.dense(&novel).unwrap();
    assert_eq!(bi.b, 100);
    // Wrong item set for the test: out-of-range ids are refused.
    assert!(iwl
        .dense(&generate_items(10, 63, 1), &assign_labels(10, 1).unwrap())
        .is_err());

    // Mis-wired data_seed is caught.
    let bad = task(
        dir.path(),
        "testsets",
        serde_json::json!({"K": 600, "N": 40, "test_seed": 9, "data_seed": 6}),
        &[("items", &items_path)],
        &[],
    );
    let e = DatagenStage.run(&bad).unwrap_err().to_string();
    assert!(e.contains("data_seed"), "{e}");
    // K disagreeing with the input is caught.
    let bad = task(
        dir.path(),
        "testsets",
        serde_json::json!({"K": 602, "N": 40, "test_seed": 9}),
        &[("items", &items_path)],
        &[],
    );
    assert!(DatagenStage.run(&bad).is_err());

    // K = inf: zero-row items, 20000 novel items, zero-row IWL test.
    let dir2 = tempfile::tempdir().unwrap();
    let t = task(
        dir2.path(),
        "items",
        serde_json::json!({"K": "inf", "data_seed": 5, "D": 63}),
        &[],
        &["items"],
    );
    DatagenStage.run(&t).unwrap();
    let p = t.output_path("items", "parquet");
    assert!(ItemSet::read(&p).unwrap().is_empty());
    let t2 = task(
        dir2.path(),
        "testsets",
        serde_json::json!({"K": "inf", "N": 10, "n_test": 20, "test_seed": 1}),
        &[("items", &p)],
        &[],
    );
    DatagenStage.run(&t2).unwrap();
    assert_eq!(
        ItemSet::read(&t2.output_path("novel_items", "parquet"))
            .unwrap()
            .len(),
        NOVEL_CAP
    );
    let iwl = IwlTest::read(&t2.output_path("iwl_test", "parquet")).unwrap();
    assert_eq!(iwl.n_seq(), 0);
    assert_eq!(iwl.dense(&ItemSet { d: 63, x: vec![] }, &[]).unwrap().b, 0);
}

#[test]
fn check_names_keys() {
    let keys = |cmd: &str, v: serde_json::Value| -> Vec<String> {
        DatagenStage
            .check(cmd, &v)
            .into_iter()
            .map(|e| e.key)
            .collect()
    };
    assert!(keys("items", serde_json::json!({"K": 1000, "data_seed": 1})).is_empty());
    assert!(keys(
        "items",
        serde_json::json!({"K": "inf", "D": 63, "data_seed": 1})
    )
    .is_empty());
    assert_eq!(
        keys("items", serde_json::json!({"K": 0, "data_seed": 1})),
        ["K"]
    );
    assert_eq!(
        keys("items", serde_json::json!({"K": 999, "data_seed": 1})),
        ["K"]
    );
    assert_eq!(
        keys("items", serde_json::json!({"K": -2, "data_seed": 1})),
        ["K"]
    );
    assert_eq!(
        keys("items", serde_json::json!({"K": "many", "data_seed": 1})),
        ["K"]
    );
    assert_eq!(
        keys(
            "items",
            serde_json::json!({"K": 10, "D": 0, "data_seed": 1})
        ),
        ["D"]
    );
    assert_eq!(
        keys(
            "items",
            serde_json::json!({"K": 10, "data_seed": 1, "seed": 2})
        ),
        ["seed"]
    );
    assert_eq!(keys("items", serde_json::json!({"K": 10})), ["data_seed"]);
    let ok = serde_json::json!({"K": 10, "N": 100, "n_test": 5, "test_seed": 1, "data_seed": 2});
    assert!(keys("testsets", ok).is_empty());
    assert_eq!(
        keys(
            "testsets",
            serde_json::json!({"K": 10, "N": 1, "test_seed": 1})
        ),
        ["N"]
    );
    assert_eq!(
        keys(
            "testsets",
            serde_json::json!({"K": 10, "N": 10, "n_test": 0, "test_seed": 1})
        ),
        ["n_test"]
    );
    assert_eq!(
        keys(
            "testsets",
            serde_json::json!({"K": "inf", "N": 10, "test_seed": 1, "context": "equalized"})
        ),
        ["context"]
    );
    assert_eq!(
        keys(
            "testsets",
            serde_json::json!({"K": 10, "N": 10, "test_seed": 1, "context": "bursty"})
        ),
        ["context"]
    );
    assert_eq!(keys("frobnicate", serde_json::json!({})), ["command"]);
    let msg = &DatagenStage.check("items", &serde_json::json!({"K": 7, "data_seed": 1}))[0].message;
    assert!(msg.contains("even") && msg.contains("7"), "{msg}");
    // The typed params round-trip through JSON (what the pipeline hashes).
    let p = ItemsParams {
        d: 63,
        k: NumItems::Infinite,
        data_seed: 3,
    };
    assert_eq!(
        serde_json::from_value::<ItemsParams>(serde_json::to_value(&p).unwrap()).unwrap(),
        p
    );
}

/// Throughput of the online sampler (the trainer's per-step data cost).
/// `cargo test --release -p icl-datagen -- --ignored --nocapture sampler_throughput`
#[test]
#[ignore]
fn sampler_throughput() {
    let t = std::time::Instant::now();
    let items = generate_items(100_000, 63, 0);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "generate_items: {:.2} ns per normal draw ({} items)",
        secs * 1e9 / items.x.len() as f64,
        items.len()
    );
    for (label, data, mode) in [
        (
            "K=1000 standard",
            TrainData::Finite {
                items: Arc::new(generate_items(1000, 63, 0)),
                labels: assign_labels(1000, 0).unwrap(),
            },
            ContextMode::Standard,
        ),
        (
            "K=1000 equalized",
            TrainData::Finite {
                items: Arc::new(generate_items(1000, 63, 0)),
                labels: assign_labels(1000, 0).unwrap(),
            },
            ContextMode::Equalized,
        ),
        (
            "K=inf",
            TrainData::Infinite { d: 63 },
            ContextMode::Standard,
        ),
    ] {
        let mut s = Sampler::new(data, 100, mode, 1).unwrap();
        let mut b = Batch::new(128, 100, 63);
        let reps = 500;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            s.fill_batch(&mut b);
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{label}, N=100, batch 128: {:.0} sequences/s, {:.0} batches/s",
            (reps * 128) as f64 / secs,
            reps as f64 / secs
        );
    }
}
