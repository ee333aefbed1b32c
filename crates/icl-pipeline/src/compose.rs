//! Composition, the step before validation: named parameter sets (`defaults:`, inherited with
//! `use:`), templates and the experiments that instantiate them, and one profile's overrides of
//! all three, flattened into plain stages. Every parameter and matrix axis keeps the YAML path it
//! was written at, so an error found later (a stage binary's `check`) names the line the user
//! wrote, not the stage that inherited the value.
//!
//! Layers of a stage's params, lowest first: its `use:` sets (after the profile's `defaults:`),
//! the template role's `params`, the experiment's `params` (only the keys in the role's `takes`),
//! then the profile's overrides of the experiment (filtered the same way) and of the stage by
//! name. In-file layers keep `null` as a value (`early_stop: null`); profile layers delete with
//! it, as they always did.

use crate::config::{Config, RawMatrix, RawOverride, RawStage};
use crate::error::ConfigError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A key path into pipeline.yaml, e.g. `["defaults", "training", "lr"]`.
pub type YamlPath = Vec<String>;

fn path(parts: &[&str]) -> YamlPath {
    parts.iter().map(|s| s.to_string()).collect()
}

fn child(p: &[String], k: &str) -> YamlPath {
    let mut v = p.to_vec();
    v.push(k.to_string());
    v
}

/// Params whose every value remembers where it was written (dotted param key -> YAML path).
#[derive(Debug, Clone, Default)]
pub struct Located {
    pub params: Map<String, Value>,
    pub origins: BTreeMap<String, YamlPath>,
}

impl Located {
    /// Merge `over`, written at `at`: objects key by key, anything else replaces; `null` deletes
    /// a key when `null_deletes`, else it is stored as a value.
    pub fn merge(&mut self, over: &Map<String, Value>, at: &[String], null_deletes: bool) {
        merge_into(
            &mut self.params,
            &mut self.origins,
            over,
            "",
            at,
            null_deletes,
        );
    }
}

/// Where the value at a dotted key (or its nearest ancestor) was written.
pub fn origin<'a>(origins: &'a BTreeMap<String, YamlPath>, key: &str) -> Option<&'a YamlPath> {
    let mut k = key;
    loop {
        if let Some(p) = origins.get(k) {
            return Some(p);
        }
        k = &k[..k.rfind('.')?];
    }
}

fn merge_into(
    base: &mut Map<String, Value>,
    origins: &mut BTreeMap<String, YamlPath>,
    over: &Map<String, Value>,
    prefix: &str,
    at: &[String],
    null_deletes: bool,
) {
    for (k, v) in over {
        let dotted = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let here = child(at, k);
        match (base.get_mut(k), v) {
            (_, Value::Null) if null_deletes => {
                base.remove(k);
            }
            (Some(Value::Object(b)), Value::Object(o)) => {
                merge_into(b, origins, o, &dotted, &here, null_deletes)
            }
            _ => {
                base.insert(k.clone(), v.clone());
                origins.retain(|key, _| !key.starts_with(&format!("{dotted}.")));
                if let Value::Object(o) = v {
                    record_leaves(origins, o, &dotted, &here);
                }
                origins.insert(dotted, here);
            }
        }
    }
}

/// Origins of every key inside an object value written at `at`.
fn record_leaves(
    origins: &mut BTreeMap<String, YamlPath>,
    o: &Map<String, Value>,
    prefix: &str,
    at: &[String],
) {
    for (k, v) in o {
        let dotted = format!("{prefix}.{k}");
        let here = child(at, k);
        if let Value::Object(inner) = v {
            record_leaves(origins, inner, &dotted, &here);
        }
        origins.insert(dotted, here);
    }
}

/// Params of the `use:` sets named (located at the `use:` key for errors).
type Inherit<'a> =
    dyn Fn(&Option<crate::config::Names>, YamlPath, &mut Vec<ConfigError>) -> Located + 'a;

/// A matrix axis as written (generators are expanded during validation) and where.
#[derive(Debug, Clone)]
pub struct FlatAxis {
    pub key: String,
    pub value: serde_yaml::Value,
    pub at: YamlPath,
}

/// One stage after composition: what a plain stage of the old format said, plus locations.
#[derive(Debug, Clone)]
pub struct FlatStage {
    pub name: String,
    /// Where the stage (or the experiment that made it) is written.
    pub at: YamlPath,
    /// Where its structural fields were written: its own entry, or its template role.
    pub fields_at: YamlPath,
    pub bin: String,
    pub command: String,
    pub params: Located,
    /// Matrix blocks (one unless the YAML gave a list), axes as written.
    pub matrix: Vec<Vec<FlatAxis>>,
    pub inputs: Vec<(String, Vec<String>)>,
    pub outputs: Vec<String>,
    pub publish: Vec<(String, String)>,
    pub threads: Option<usize>,
}

impl FlatStage {
    /// A profile's `matrix:` (written at `at`): a list of blocks replaces the matrix; a
    /// mapping replaces axes key by key in every block (`null` deletes an axis, new keys are
    /// appended). `keep` filters the keys (an experiment's `takes`).
    fn override_matrix(&mut self, m: &RawMatrix, at: &YamlPath, keep: &dyn Fn(&str) -> bool) {
        if m.listed {
            self.matrix = flat_matrix(m, at, keep);
            return;
        }
        let Some(block) = m.blocks.first() else {
            return;
        };
        if self.matrix.is_empty() {
            self.matrix.push(Vec::new());
        }
        for (key, value) in block.0.iter().filter(|(k, _)| keep(k)) {
            let at = child(at, key);
            for axes in &mut self.matrix {
                if value.is_null() {
                    axes.retain(|a| a.key != *key);
                    continue;
                }
                match axes.iter_mut().find(|a| a.key == *key) {
                    Some(a) => {
                        a.value = value.clone();
                        a.at = at.clone();
                    }
                    None => axes.push(FlatAxis {
                        key: key.clone(),
                        value: value.clone(),
                        at: at.clone(),
                    }),
                }
            }
        }
    }
}

/// The blocks of a `matrix:` written at `at`, keeping the keys `keep` accepts.
fn flat_matrix(m: &RawMatrix, at: &YamlPath, keep: &dyn Fn(&str) -> bool) -> Vec<Vec<FlatAxis>> {
    m.blocks
        .iter()
        .enumerate()
        .map(|(b, block)| {
            let at = if m.listed {
                child(at, &b.to_string())
            } else {
                at.clone()
            };
            block
                .0
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| FlatAxis {
                    key: k.clone(),
                    value: v.clone(),
                    at: child(&at, k),
                })
                .collect()
        })
        .collect()
}

impl Config {
    /// Flatten `stages:` for one profile. Problems are pushed to `errs`; the stages returned
    /// are as complete as the errors allow.
    pub fn flatten(
        &self,
        profile: &str,
        prof_defaults: &crate::config::Ordered<serde_yaml::Mapping>,
        overrides: &crate::config::Ordered<Option<RawOverride>>,
        errs: &mut Vec<ConfigError>,
    ) -> Vec<FlatStage> {
        let pp = |rest: &[&str]| -> YamlPath {
            let mut v = path(&["profiles", profile]);
            v.extend(rest.iter().map(|s| s.to_string()));
            v
        };
        // The named sets, with the profile's changes.
        let mut sets: BTreeMap<String, Located> = BTreeMap::new();
        for (name, m) in &self.raw.defaults.0 {
            let at = path(&["defaults", name]);
            let mut l = Located::default();
            if let Some(o) = self.mapping_json(m, &at, errs) {
                l.merge(&o, &at, false);
            }
            sets.insert(name.clone(), l);
        }
        for (name, m) in &prof_defaults.0 {
            let at = pp(&["defaults", name]);
            match sets.get_mut(name) {
                Some(l) => {
                    if let Some(o) = self.mapping_json(m, &at, errs) {
                        l.merge(&o, &at, true);
                    }
                }
                None => errs.push(self.err_at(
                    &at,
                    format!(
                        "profile changes unknown parameter set `{name}` (defaults: {})",
                        self.raw.defaults.keys().collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }
        let inherit = |uses: &Option<crate::config::Names>,
                       at: YamlPath,
                       errs: &mut Vec<ConfigError>|
         -> Located {
            let mut l = Located::default();
            for name in uses.iter().flat_map(|u| u.0.iter()) {
                match sets.get(name) {
                    Some(s) => {
                        // Keep each value's own origin (the set's line, or the profile's).
                        l.params.extend(s.params.clone());
                        l.origins.extend(s.origins.clone());
                    }
                    None => errs.push(self.err_at(
                        &at,
                        format!(
                            "unknown parameter set `{name}` (defaults: {})",
                            self.raw.defaults.keys().collect::<Vec<_>>().join(", ")
                        ),
                    )),
                }
            }
            l
        };

        let mut out: Vec<FlatStage> = Vec::new();
        // Profile override keys that name something; the rest are reported as unknown.
        let mut known: Vec<String> = Vec::new();
        for (sname, st) in &self.raw.stages.0 {
            let at = path(&["stages", sname]);
            known.push(sname.clone());
            let exp_over = overrides.get(sname).cloned().flatten();
            let Some(tname) = &st.template else {
                let mut f = self.plain_stage(sname, st, &at, &inherit, errs);
                if let Some(ov) = &exp_over {
                    self.apply_override(&mut f, ov, &pp(&["stages", sname]), None, errs);
                }
                out.push(f);
                continue;
            };
            let Some(template) = self.raw.templates.get(tname) else {
                errs.push(self.err_at(
                    &child(&at, "template"),
                    format!(
                        "unknown template `{tname}` (templates: {})",
                        self.raw.templates.keys().collect::<Vec<_>>().join(", ")
                    ),
                ));
                continue;
            };
            for (field, set) in [
                ("bin", st.bin.is_some()),
                ("command", st.command.is_some()),
                ("use", st.uses.is_some()),
                ("inputs", !st.inputs.0.is_empty()),
                ("outputs", st.outputs.is_some()),
                ("publish", !st.publish.0.is_empty()),
            ] {
                if set {
                    errs.push(self.err_at(
                        &child(&at, field),
                        format!("an experiment takes `{field}` from its template `{tname}` (allowed here: template, params, matrix, threads, names, share)"),
                    ));
                }
            }
            for (what, m) in [("names", &st.names), ("share", &st.share)] {
                for (role, _) in &m.0 {
                    if template.get(role).is_none() {
                        errs.push(self.err_at(
                            &path(&["stages", sname, what, role]),
                            format!(
                                "template `{tname}` has no stage `{role}` (its stages: {})",
                                template.keys().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
            }
            let stage_name = |role: &str| -> String {
                st.share
                    .get(role)
                    .or_else(|| st.names.get(role))
                    .cloned()
                    .unwrap_or_else(|| format!("{role}_{sname}"))
            };
            let exp_params = st
                .params
                .as_ref()
                .and_then(|m| self.mapping_json(m, &child(&at, "params"), errs));
            for (role, r) in &template.0 {
                if st.share.get(role).is_some() {
                    continue;
                }
                let name = stage_name(role);
                known.push(name.clone());
                let rat = path(&["templates", tname, role]);
                let takes = |k: &str| r.takes.as_ref().is_none_or(|t| t.iter().any(|x| x == k));
                let mut params = inherit(&r.uses, child(&rat, "use"), errs);
                if let Some(m) = &r.params {
                    if let Some(o) = self.mapping_json(m, &child(&rat, "params"), errs) {
                        params.merge(&o, &child(&rat, "params"), false);
                    }
                }
                if let Some(o) = &exp_params {
                    let o: Map<String, Value> = o
                        .iter()
                        .filter(|(k, _)| takes(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    params.merge(&o, &child(&at, "params"), false);
                }
                let matrix = flat_matrix(&st.matrix, &path(&["stages", sname, "matrix"]), &takes);
                let inputs = r
                    .inputs
                    .0
                    .iter()
                    .map(|(n, refs)| {
                        let refs = refs
                            .0
                            .iter()
                            .map(|x| match x.split_once('.') {
                                Some((s, rest)) if template.get(s).is_some() => {
                                    format!("{}.{rest}", stage_name(s))
                                }
                                _ => x.clone(),
                            })
                            .collect();
                        (n.clone(), refs)
                    })
                    .collect();
                let mut f = FlatStage {
                    name: name.clone(),
                    at: at.clone(),
                    fields_at: rat.clone(),
                    bin: r.bin.clone(),
                    command: r.command.clone(),
                    params,
                    matrix,
                    inputs,
                    outputs: r.outputs.clone(),
                    publish: Vec::new(),
                    threads: st.threads.or(r.threads),
                };
                if let Some(ov) = &exp_over {
                    self.apply_override(&mut f, ov, &pp(&["stages", sname]), Some(&takes), errs);
                }
                if let Some(ov) = overrides.get(&name).cloned().flatten() {
                    self.apply_override(&mut f, &ov, &pp(&["stages", &name]), None, errs);
                }
                out.push(f);
            }
        }
        for (sname, _) in &overrides.0 {
            if !known.contains(sname) {
                errs.push(self.err_at(
                    &pp(&["stages", sname]),
                    format!(
                        "profile overrides unknown stage `{sname}` (stages and experiments: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        for (i, f) in out.iter().enumerate() {
            if out[..i].iter().any(|g| g.name == f.name) {
                errs.push(self.err_at(
                    &f.at,
                    format!("stage `{}` is defined twice (an experiment's stages are named `<template stage>_<experiment>`; rename with `names:`)", f.name),
                ));
            }
        }
        out
    }

    fn plain_stage(
        &self,
        sname: &str,
        st: &RawStage,
        at: &YamlPath,
        inherit: &Inherit,
        errs: &mut Vec<ConfigError>,
    ) -> FlatStage {
        for (field, missing) in [
            ("bin", st.bin.is_none()),
            ("command", st.command.is_none()),
            ("outputs", st.outputs.is_none()),
        ] {
            if missing {
                errs.push(self.err_at(
                    at,
                    format!("missing field `{field}` (a stage needs bin, command and outputs, or a `template:`)"),
                ));
            }
        }
        for (field, set) in [("names", &st.names), ("share", &st.share)] {
            if !set.0.is_empty() {
                errs.push(self.err_at(
                    &child(at, field),
                    format!("`{field}` is for experiments (stages with a `template:`)"),
                ));
            }
        }
        let mut params = inherit(&st.uses, child(at, "use"), errs);
        if let Some(m) = &st.params {
            if let Some(o) = self.mapping_json(m, &child(at, "params"), errs) {
                params.merge(&o, &child(at, "params"), false);
            }
        }
        FlatStage {
            name: sname.to_string(),
            at: at.clone(),
            fields_at: at.clone(),
            bin: st.bin.clone().unwrap_or_default(),
            command: st.command.clone().unwrap_or_default(),
            params,
            matrix: flat_matrix(&st.matrix, &path(&["stages", sname, "matrix"]), &|_| true),
            inputs: st
                .inputs
                .0
                .iter()
                .map(|(n, r)| (n.clone(), r.0.clone()))
                .collect(),
            outputs: st.outputs.clone().unwrap_or_default(),
            publish: st.publish.0.clone(),
            threads: st.threads,
        }
    }

    /// A profile's override (written at `at`); `takes` filters an experiment's override.
    fn apply_override(
        &self,
        f: &mut FlatStage,
        ov: &RawOverride,
        at: &YamlPath,
        takes: Option<&dyn Fn(&str) -> bool>,
        errs: &mut Vec<ConfigError>,
    ) {
        let keep = |k: &str| takes.is_none_or(|t| t(k));
        if let Some(m) = &ov.params {
            if let Some(o) = self.mapping_json(m, &child(at, "params"), errs) {
                let o: Map<String, Value> = o.into_iter().filter(|(k, _)| keep(k)).collect();
                f.params.merge(&o, &child(at, "params"), true);
            }
        }
        f.override_matrix(&ov.matrix, &child(at, "matrix"), &keep);
        if ov.threads.is_some() {
            f.threads = ov.threads;
        }
    }

    fn mapping_json(
        &self,
        m: &serde_yaml::Mapping,
        at: &[String],
        errs: &mut Vec<ConfigError>,
    ) -> Option<Map<String, Value>> {
        match self.to_json(&serde_yaml::Value::Mapping(m.clone()), at, errs) {
            Some(Value::Object(o)) => Some(o),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::listing::listing;
    use crate::plan::Plan;
    use std::path::{Path, PathBuf};

    /// An experiment, shared sets, a shared stage, a renamed stage and profile overrides...
    const COMPOSED: &str = "version: 1
default_profile: quick
defaults:
  data: {D: 63, data_seed: 1}
  tests: {test_seed: 2}
  testsets: {n_test: 2000}
  training:
    lr: 0.01
    batch: 128
    early_stop: 0.99
templates:
  experiment:
    items: {bin: icl-datagen, command: items, use: data, takes: [K], outputs: [items]}
    testsets:
      bin: icl-datagen
      command: testsets
      use: [data, tests, testsets]
      takes: [K, N, context]
      inputs: {items: items.items}
      outputs: [novel_items, icl_test, iwl_test]
    train:
      bin: icl-train
      command: train
      use: [data, tests, training]
      inputs: {items: items.items, icl_test: testsets.icl_test}
      outputs: [curve, summary]
stages:
  sweep:
    template: experiment
    params: {N: 100, early_stop: null}
    matrix:
      K: {logspace: [2, 3, 2], round: even}
      seed: {range: [0, 2]}
  reuse:
    template: experiment
    share: {items: items_sweep}
    names: {train: train_reuse_k}
    params: {K: 100, N: 20}
  claim:
    bin: icl-eval
    command: c1
    use: data
    inputs: {summaries: \"train_sweep.summary[*]\"}
    outputs: [claim]
profiles:
  quick:
    defaults: {testsets: {n_test: 500}}
    stages:
      sweep: {params: {N: 8}, matrix: {K: [64, 100], context: [standard, equalized]}}
      testsets_reuse: {params: {n_test: 100}}
  paper: {}
";

    /// ...and the same pipeline written out stage by stage.
    const FLAT: &str = "version: 1
default_profile: quick
stages:
  items_sweep:
    bin: icl-datagen
    command: items
    params: {D: 63, data_seed: 1}
    matrix: {K: {logspace: [2, 3, 2], round: even}}
    outputs: [items]
  testsets_sweep:
    bin: icl-datagen
    command: testsets
    params: {D: 63, data_seed: 1, test_seed: 2, n_test: 2000, N: 100}
    matrix: {K: {logspace: [2, 3, 2], round: even}}
    inputs: {items: items_sweep.items}
    outputs: [novel_items, icl_test, iwl_test]
  train_sweep:
    bin: icl-train
    command: train
    params: {D: 63, data_seed: 1, test_seed: 2, lr: 0.01, batch: 128, early_stop: null, N: 100}
    matrix: {K: {logspace: [2, 3, 2], round: even}, seed: {range: [0, 2]}}
    inputs: {items: items_sweep.items, icl_test: testsets_sweep.icl_test}
    outputs: [curve, summary]
  testsets_reuse:
    bin: icl-datagen
    command: testsets
    params: {D: 63, data_seed: 1, test_seed: 2, n_test: 2000, K: 100, N: 20}
    inputs: {items: items_sweep.items}
    outputs: [novel_items, icl_test, iwl_test]
  train_reuse_k:
    bin: icl-train
    command: train
    params: {D: 63, data_seed: 1, test_seed: 2, lr: 0.01, batch: 128, early_stop: 0.99, K: 100, N: 20}
    inputs: {items: items_sweep.items, icl_test: testsets_reuse.icl_test}
    outputs: [curve, summary]
  claim:
    bin: icl-eval
    command: c1
    params: {D: 63, data_seed: 1}
    inputs: {summaries: \"train_sweep.summary[*]\"}
    outputs: [claim]
profiles:
  quick:
    stages:
      items_sweep: {matrix: {K: [64, 100]}}
      testsets_sweep:
        params: {N: 8, n_test: 500}
        matrix: {K: [64, 100], context: [standard, equalized]}
      train_sweep: {params: {N: 8}, matrix: {K: [64, 100], context: [standard, equalized]}}
      testsets_reuse: {params: {n_test: 100}}
  paper: {}
";

    fn cfg(text: &str) -> Config {
        Config::from_text(Path::new("p.yaml"), PathBuf::from("/w"), text.to_string()).unwrap()
    }

    fn plan(c: &Config, profile: &str) -> Plan {
        Plan::build(c, c.resolve(Some(profile)).unwrap()).unwrap()
    }

    fn codes(p: &Plan) -> Vec<String> {
        p.res
            .stages
            .iter()
            .map(|s| format!("code-of-{}", s.bin))
            .collect()
    }

    #[test]
    fn matrix_blocks_unite_their_products_and_a_profile_mapping_edits_every_block() {
        // A K range and a budget per N: two blocks. items takes K only, so K = 100 (in both
        // blocks) is one items task; train gets the union of both products.
        let text = COMPOSED.replace(
            "    matrix:\n      K: {logspace: [2, 3, 2], round: even}\n      seed: {range: [0, 2]}\n",
            "    matrix:\n      - {N: [8], epochs: [30], K: [64, 100], seed: [0, 1]}\n      - {N: [16], K: [100, 256, 512], seed: [0, 1], epochs: [60]}\n",
        );
        let p = plan(&cfg(&text), "paper");
        let si = |p: &Plan, s: &str| p.res.stages.iter().position(|x| x.name == s).unwrap();
        let keys = |p: &Plan, s: &str| p.res.stages[si(p, s)].matrix.keys().join(",");
        assert_eq!(keys(&p, "train_sweep"), "N,epochs,K,seed");
        assert_eq!(keys(&p, "items_sweep"), "K");
        let ids = |p: &Plan, s: &str| -> Vec<String> {
            p.by_stage[si(p, s)]
                .iter()
                .map(|&t| p.tasks[t].point_id.clone())
                .collect()
        };
        assert_eq!(ids(&p, "items_sweep"), ["K=64", "K=100", "K=256", "K=512"]);
        assert_eq!(ids(&p, "testsets_sweep").len(), 5);
        let train = ids(&p, "train_sweep");
        assert_eq!(train.len(), 2 * 2 + 3 * 2);
        assert_eq!(train.last().unwrap(), "N=16,epochs=60,K=512,seed=1");
        let last = &p.tasks[*p.by_stage[si(&p, "train_sweep")].last().unwrap()];
        assert_eq!(last.params["epochs"], 60);
        assert_eq!(
            last.position,
            vec![0, 0, 2, 1, 1],
            "axis indices, then the block"
        );

        // quick's mapping replaces K and adds `context` in every block.
        let q = plan(&cfg(&text), "quick");
        assert_eq!(keys(&q, "train_sweep"), "N,epochs,K,seed,context");
        assert_eq!(ids(&q, "train_sweep").len(), 2 * (2 * 2 * 2));
        assert_eq!(ids(&q, "items_sweep"), ["K=64", "K=100"]);

        // Blocks with different keys are refused, naming both key sets.
        let bad = text.replace("seed: [0, 1], epochs: [60]}", "seed: [0, 1]}");
        let e = cfg(&bad).resolve(Some("paper")).unwrap_err();
        let msg = &e.0[0].message;
        assert!(
            msg.contains("matrix block 1 has keys K, N, seed but block 0 has K, N, epochs, seed"),
            "{msg}"
        );
    }

    #[test]
    fn an_experiment_and_the_same_stages_written_out_give_identical_tasks_and_keys() {
        let (a, b) = (cfg(COMPOSED), cfg(FLAT));
        for profile in ["quick", "paper"] {
            let (pa, pb) = (plan(&a, profile), plan(&b, profile));
            let (la, lb) = (listing(&pa, &codes(&pa)), listing(&pb, &codes(&pb)));
            assert_eq!(la.len(), lb.len(), "{profile}");
            for (x, y) in la.iter().zip(&lb) {
                assert_eq!(x, y, "{profile}");
            }
        }
        // The quick profile: 2 K x 2 seeds x 2 contexts of training, reusing the shared items.
        let q = plan(&a, "quick");
        let train = q.res.stage("train_sweep").unwrap();
        assert_eq!(q.by_stage[2].len(), 8, "{:?}", train.matrix);
        assert_eq!(q.tasks[q.by_stage[3][0]].params["n_test"], 100);
        // null is kept as a value in the file (early_stop: null = never stop).
        let p = plan(&a, "paper");
        let t = &p.tasks[p.by_stage[2][0]];
        assert!(t.params["early_stop"].is_null());
        assert_eq!(t.params["K"], 100);
    }

    #[test]
    fn inherited_and_expanded_values_are_located_where_written() {
        let c = cfg(COMPOSED);
        let line = |needle: &str| COMPOSED.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let q = c.resolve(Some("quick")).unwrap();
        let at = |stage: &str, key: &str| {
            let p = q.param_yaml_path(q.stage(stage).unwrap(), key);
            let e = c.err_at(&p, "x");
            (e.key, e.line.unwrap())
        };
        assert_eq!(
            at("train_sweep", "lr"),
            ("defaults.training.lr".into(), line("lr: 0.01"))
        );
        assert_eq!(
            at("testsets_sweep", "n_test"),
            (
                "profiles.quick.defaults.testsets.n_test".into(),
                line("n_test: 500")
            )
        );
        assert_eq!(
            at("testsets_reuse", "n_test"),
            (
                "profiles.quick.stages.testsets_reuse.params.n_test".into(),
                line("n_test: 100")
            )
        );
        assert_eq!(
            at("train_sweep", "N"),
            (
                "profiles.quick.stages.sweep.params.N".into(),
                line("sweep: {params: {N: 8}")
            )
        );
        assert_eq!(
            at("testsets_sweep", "context"),
            (
                "profiles.quick.stages.sweep.matrix.context".into(),
                line("sweep: {params")
            )
        );
        assert_eq!(
            at("train_reuse_k", "K"),
            (
                "stages.reuse.params.K".into(),
                line("params: {K: 100, N: 20}")
            )
        );
        assert_eq!(
            at("train_sweep", "seed"),
            (
                "stages.sweep.matrix.seed".into(),
                line("seed: {range: [0, 2]}")
            )
        );
        assert_eq!(
            at("claim", "D"),
            ("defaults.data.D".into(), line("data: {D: 63"))
        );
        // A key nobody set is blamed on the stage's (or experiment's) params.
        assert_eq!(at("train_sweep", "width").0, "stages.sweep.params.width");
        // Structural fields of a generated stage live in its template.
        let t = q.stage("testsets_sweep").unwrap();
        assert_eq!(
            t.yaml(&["bin"]).join("."),
            "templates.experiment.testsets.bin"
        );
    }

    #[test]
    fn composition_errors_are_located() {
        let errs = |text: &str, profile: &str| -> Vec<String> {
            cfg(text)
                .resolve(Some(profile))
                .unwrap_err()
                .0
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        let e = errs(
            &COMPOSED.replace(
                "use: [data, tests, training]",
                "use: [data, test, training]",
            ),
            "paper",
        );
        assert!(e[0].contains("unknown parameter set `test`"), "{e:?}");
        assert!(e[0].starts_with("p.yaml:24:"), "{e:?}");
        let e = errs(
            &COMPOSED.replace(
                "    template: experiment\n    share",
                "    template: experimnt\n    share",
            ),
            "paper",
        );
        assert!(e[0].contains("unknown template `experimnt`"), "{e:?}");
        let e = errs(
            &COMPOSED.replace("    names: {train: train_reuse_k}", "    names: {trian: x}"),
            "paper",
        );
        assert!(e[0].contains("has no stage `trian`"), "{e:?}");
        let e = errs(
            &COMPOSED.replace("    names: {train: train_reuse_k}", "    bin: icl-train"),
            "paper",
        );
        assert!(e[0].contains("takes `bin` from its template"), "{e:?}");
        let e = errs(
            &COMPOSED.replace("testsets_reuse: {params", "testsets_reuze: {params"),
            "quick",
        );
        assert!(e[0].contains("unknown stage `testsets_reuze`"), "{e:?}");
        let e = errs(
            &COMPOSED.replace("defaults: {testsets:", "defaults: {testset:"),
            "quick",
        );
        assert!(e[0].contains("unknown parameter set `testset`"), "{e:?}");
        let e = errs(
            &COMPOSED.replace(
                "names: {train: train_reuse_k}",
                "names: {train: train_sweep}",
            ),
            "paper",
        );
        assert!(
            e.iter()
                .any(|e| e.contains("`train_sweep` is defined twice")),
            "{e:?}"
        );
    }

    #[test]
    fn logspace_gives_floats_unless_asked_to_round() {
        let c = cfg(&COMPOSED.replace("seed: {range: [0, 2]}", "lr: {logspace: [-3, -1, 3]}"));
        let p = c.resolve(Some("paper")).unwrap();
        let lr = &p.stage("train_sweep").unwrap().matrix.blocks[0][1];
        assert_eq!(
            lr.values,
            vec![
                serde_json::json!(0.001),
                serde_json::json!(0.01),
                serde_json::json!(0.1)
            ]
        );
        let k = &p.stage("items_sweep").unwrap().matrix.blocks[0][0];
        assert_eq!(
            k.values,
            vec![serde_json::json!(100), serde_json::json!(1000)]
        );
        let c = cfg(&COMPOSED.replace("round: even", "round: odd"));
        let e = c.resolve(Some("paper")).unwrap_err().0;
        assert!(e[0].message.contains("allowed: int or even"), "{:?}", e[0]);
        assert_eq!(e[0].key, "stages.sweep.matrix.K.round");
    }
}
