//! Expansion of stages into tasks (one per matrix point) and resolution of every input to the
//! upstream tasks that feed it. The whole task graph is known at load time.

use crate::config::{values_equal, Config, Resolved};
use crate::error::{ConfigError, ConfigErrors};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One unit of work: a stage at one matrix point.
#[derive(Debug, Clone)]
pub struct Task {
    /// Index into `Plan::res.stages`.
    pub stage: usize,
    /// Matrix values, in matrix-key order.
    pub point: Vec<(String, Value)>,
    /// Index of each value in its axis.
    pub position: Vec<usize>,
    /// File-name-safe point id (`K=1000,seed=0`, or `_` without a matrix).
    pub point_id: String,
    /// Stage params with the matrix point applied: what the binary receives.
    pub params: Map<String, Value>,
    /// Per declared input, in declared order: the (task, output) pairs that feed it.
    pub inputs: Vec<(String, Vec<(usize, String)>)>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub res: Resolved,
    /// Tasks in a topological order: every task comes after the tasks it reads.
    pub tasks: Vec<Task>,
    /// Task indices per stage (indexed like `res.stages`), in matrix order.
    pub by_stage: Vec<Vec<usize>>,
}

impl Task {
    pub fn deps(&self) -> BTreeSet<usize> {
        self.inputs
            .iter()
            .flat_map(|(_, v)| v.iter().map(|(t, _)| *t))
            .collect()
    }

    pub fn point_json(&self) -> Value {
        Value::Object(self.point.iter().cloned().collect())
    }
}

impl Plan {
    pub fn build(cfg: &Config, res: Resolved) -> Result<Plan, ConfigErrors> {
        let n = res.stages.len();
        // Stage topological order, stable with respect to file order (cycles were refused).
        let deps_of = |i: usize| -> BTreeSet<usize> {
            res.stages[i]
                .inputs
                .iter()
                .flat_map(|d| d.refs.iter())
                .filter_map(|r| res.stages.iter().position(|s| s.name == r.stage))
                .collect()
        };
        let mut order = Vec::with_capacity(n);
        let mut placed = vec![false; n];
        while order.len() < n {
            let next = (0..n).find(|&i| !placed[i] && deps_of(i).iter().all(|&d| placed[d]));
            let Some(i) = next else { break };
            placed[i] = true;
            order.push(i);
        }

        let mut tasks: Vec<Task> = Vec::new();
        let mut by_stage: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut errs: Vec<ConfigError> = Vec::new();
        for &si in &order {
            let st = &res.stages[si];
            for (point, position) in st.matrix.points() {
                let mut params = st.params.clone();
                for (k, v) in &point {
                    params.insert(k.clone(), v.clone());
                }
                let point_id = point_id(&point);
                let label = label(&st.name, &point);
                let mut inputs = Vec::new();
                for decl in &st.inputs {
                    let mut feeds = Vec::new();
                    for r in &decl.refs {
                        let ui = res
                            .stages
                            .iter()
                            .position(|s| s.name == r.stage)
                            .expect("checked in resolve");
                        let matches: Vec<usize> = by_stage[ui]
                            .iter()
                            .copied()
                            .filter(|&t| {
                                tasks[t].point.iter().all(|(k, v)| match params.get(k) {
                                    Some(mine) => values_equal(mine, v),
                                    // A single input needs every upstream matrix key; a gather
                                    // filters only on the keys this task has.
                                    None => r.gather,
                                })
                            })
                            .collect();
                        let up_keys = res.stages[ui].matrix.keys();
                        if r.gather && matches.is_empty() {
                            errs.push(cfg.err_at(
                                &st.yaml(&["inputs", &decl.name]),
                                format!(
                                    "`{}` gathers no task of stage `{}` for task {label} (its matrix keys {} must equal this task's params where both have them)",
                                    r.text(),
                                    r.stage,
                                    up_keys.join(", ")
                                ),
                            ));
                        } else if !r.gather && matches.len() != 1 {
                            let mine: Vec<String> = up_keys
                                .iter()
                                .map(|k| match params.get(*k) {
                                    Some(v) => format!("{k}={}", show(v)),
                                    None => format!("{k} missing"),
                                })
                                .collect();
                            errs.push(cfg.err_at(
                                &st.yaml(&["inputs", &decl.name]),
                                format!(
                                    "`{}` must match exactly one task of stage `{}` for task {label}, but matches {} (allowed: this task's params agree with exactly one point of {}'s matrix {}; this task has {}; use `{}[*]` to gather many)",
                                    r.text(),
                                    r.stage,
                                    matches.len(),
                                    r.stage,
                                    up_keys.join(" x "),
                                    mine.join(", "),
                                    r.text()
                                ),
                            ));
                        }
                        feeds.extend(matches.into_iter().map(|t| (t, r.output.clone())));
                    }
                    inputs.push((decl.name.clone(), feeds));
                }
                by_stage[si].push(tasks.len());
                tasks.push(Task {
                    stage: si,
                    point,
                    position,
                    point_id,
                    params,
                    inputs,
                });
            }
        }
        if !errs.is_empty() {
            // One message per (stage, input) is enough: the first failing point shows the pattern.
            let mut seen = BTreeSet::new();
            errs.retain(|e| seen.insert(e.key.clone()));
            return Err(ConfigErrors(errs));
        }
        Ok(Plan {
            res,
            tasks,
            by_stage,
        })
    }

    pub fn label(&self, t: usize) -> String {
        let task = &self.tasks[t];
        label(&self.res.stages[task.stage].name, &task.point)
    }

    /// The named stages and everything upstream of them (all tasks when `stages` is empty).
    pub fn select(&self, stages: &[String]) -> Vec<bool> {
        if stages.is_empty() {
            return vec![true; self.tasks.len()];
        }
        let mut sel = vec![false; self.tasks.len()];
        for (t, task) in self.tasks.iter().enumerate().rev() {
            if stages.contains(&self.res.stages[task.stage].name) {
                sel[t] = true;
            }
            if sel[t] {
                for d in task.deps() {
                    sel[d] = true;
                }
            }
        }
        sel
    }
}

pub use crate::config::Point;

/// A value as written in labels: strings without quotes.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `stage[K=1000,seed=0]`, or just `stage` without a matrix.
pub fn label(stage: &str, point: &[(String, Value)]) -> String {
    if point.is_empty() {
        stage.to_string()
    } else {
        let parts: Vec<String> = point
            .iter()
            .map(|(k, v)| format!("{k}={}", show(v)))
            .collect();
        format!("{stage}[{}]", parts.join(","))
    }
}

/// A file-name-safe id of a matrix point; unusual characters are replaced and a short hash of
/// the exact point keeps ids distinct.
pub fn point_id(point: &[(String, Value)]) -> String {
    if point.is_empty() {
        return "_".to_string();
    }
    let raw: Vec<String> = point
        .iter()
        .map(|(k, v)| format!("{k}={}", show(v)))
        .collect();
    let raw = raw.join(",");
    let safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe == raw && raw.len() <= 200 {
        raw
    } else {
        let h = blake3::hash(raw.as_bytes()).to_hex();
        let mut s: String = safe.chars().take(150).collect();
        s.push('~');
        s.push_str(&h[..12]);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn plan(text: &str, profile: Option<&str>) -> Result<Plan, ConfigErrors> {
        let c =
            Config::from_text(Path::new("p.yaml"), PathBuf::from("/w"), text.to_string()).unwrap();
        let r = c.resolve(profile)?;
        Plan::build(&c, r)
    }

    const P: &str = "version: 1
stages:
  c1:
    bin: icl-eval
    command: c1
    inputs: {curves: \"train.curve[*]\", items: [items.items]}
    params: {K: 1000}
    outputs: [claim]
  items:
    bin: icl-datagen
    command: items
    matrix: {K: [1000, 2000]}
    outputs: [items]
  train:
    bin: icl-train
    command: train
    matrix: {K: [1000, 2000], seed: [0, 1, 2]}
    inputs: {items: items.items}
    outputs: [curve]
";

    #[test]
    fn expands_matrix_and_matches_inputs() {
        let p = plan(P, None).unwrap();
        // Topological: items, train, c1.
        let names: Vec<&str> = p
            .tasks
            .iter()
            .map(|t| p.res.stages[t.stage].name.as_str())
            .collect();
        assert_eq!(
            names,
            ["items", "items", "train", "train", "train", "train", "train", "train", "c1"]
        );
        assert_eq!(p.label(3), "train[K=1000,seed=1]");
        assert_eq!(p.tasks[3].point_id, "K=1000,seed=1");
        assert_eq!(p.tasks[3].position, vec![0, 1]);
        assert_eq!(p.tasks[5].inputs[0].1, vec![(1, "items".to_string())]);
        // c1 has K = 1000, so its gather keeps only the K = 1000 runs, in matrix order.
        let c1 = &p.tasks[8];
        assert_eq!(
            c1.inputs[0].1.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(c1.inputs[1].1, vec![(0, "items".to_string())]);
        assert_eq!(c1.point_id, "_");
        let sel = p.select(&["items".to_string()]);
        assert_eq!(sel.iter().filter(|x| **x).count(), 2);
        let sel = p.select(&["c1".to_string()]);
        assert_eq!(
            sel,
            vec![true, false, true, true, true, false, false, false, true]
        );
    }

    #[test]
    fn single_input_must_match_exactly_one() {
        let bad = P.replace(
            "    matrix: {K: [1000, 2000], seed: [0, 1, 2]}\n",
            "    matrix: {seed: [0, 1, 2]}\n",
        );
        let e = plan(&bad, None).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.0[0].message.contains("matches 0"), "{}", e.0[0]);
        assert!(e.0[0].message.contains("K missing"), "{}", e.0[0]);
        assert_eq!(e.0[0].line, Some(18));
    }

    #[test]
    fn point_ids_are_safe() {
        assert_eq!(point_id(&[("K".into(), Value::from("inf"))]), "K=inf");
        let odd = point_id(&[("name".into(), Value::from("a/b c"))]);
        assert!(odd.starts_with("name=a_b_c~") && !odd.contains('/'));
        assert_ne!(odd, point_id(&[("name".into(), Value::from("a_b c"))]));
    }
}
