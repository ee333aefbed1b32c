//! The cache key, computed here and nowhere else.
//!
//! key = blake3(canonical JSON of [`KeyComponents`]): the key-scheme version, stage name,
//! command, the code fingerprint of the stage binary's crate and its workspace dependencies
//! (see [`crate::fingerprint`]), the resolved params, and the input artifact hashes in declared
//! order. Canonical JSON: object keys sorted at every depth, no whitespace, serde_json's number
//! formatting (shortest round-trip for floats). Because input *hashes* (not upstream keys) enter
//! the key, a rerun upstream that produces identical bytes leaves everything downstream cached
//! (early cutoff).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bump when anything about how keys are computed changes: every old record then misses.
/// 2: code fingerprints hash a `.rs` file's tokens (comments and layout left out), not its bytes.
pub const KEY_SCHEME: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyComponents {
    pub scheme: u32,
    pub stage: String,
    pub command: String,
    /// Code fingerprint (blake3) of the stage binary's crate and its workspace dependencies.
    pub code: String,
    /// Resolved params (flat object, matrix point applied).
    pub params: Value,
    /// Inputs in declared order; a gathered input lists its hashes in matrix order.
    pub inputs: Vec<KeyInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    pub name: String,
    pub hashes: Vec<String>,
}

impl KeyComponents {
    /// The cache key of these components.
    pub fn key(&self) -> String {
        let v = serde_json::to_value(self).expect("key components serialize");
        blake3::hash(canonical_json(&v).as_bytes())
            .to_hex()
            .to_string()
    }
}

/// JSON with object keys sorted at every level and no insignificant whitespace.
///
/// Written out by hand rather than trusting `serde_json::Map`'s ordering, which becomes
/// insertion order if any crate in the build enables serde_json's `preserve_order` feature.
pub fn canonical_json(v: &Value) -> String {
    let mut s = String::new();
    write_canonical(v, &mut s);
    s
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn comps() -> KeyComponents {
        KeyComponents {
            scheme: KEY_SCHEME,
            stage: "train".into(),
            command: "train".into(),
            code: "c0de".into(),
            params: json!({"lr": 0.01, "K": 1000, "opt": {"wd": 0.5, "a": [1, 2]}}),
            inputs: vec![KeyInput {
                name: "items".into(),
                hashes: vec!["h1".into()],
            }],
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": "s"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":"s","y":[1,{"c":3,"d":2}]},"b":1}"#
        );
    }

    #[test]
    fn key_changes_with_every_component_and_only_then() {
        let base = comps();
        let k = base.key();
        assert_eq!(k.len(), 64);
        assert_eq!(k, comps().key(), "deterministic");
        let mut reordered = comps();
        reordered.params = json!({"opt": {"a": [1, 2], "wd": 0.5}, "K": 1000, "lr": 0.01});
        assert_eq!(reordered.key(), k, "param order must not matter");
        type Mutation = Box<dyn Fn(&mut KeyComponents)>;
        let variants: Vec<Mutation> = vec![
            Box::new(|c| c.scheme += 1),
            Box::new(|c| c.stage = "train2".into()),
            Box::new(|c| c.command = "other".into()),
            Box::new(|c| c.code = "c0df".into()),
            Box::new(|c| c.params["lr"] = json!(0.02)),
            Box::new(|c| c.params["opt"]["a"] = json!([2, 1])),
            Box::new(|c| c.inputs[0].hashes[0] = "h2".into()),
            Box::new(|c| c.inputs[0].name = "other".into()),
            Box::new(|c| {
                c.inputs.push(KeyInput {
                    name: "x".into(),
                    hashes: vec![],
                })
            }),
        ];
        for (i, f) in variants.iter().enumerate() {
            let mut c = comps();
            f(&mut c);
            assert_ne!(c.key(), k, "variant {i} must change the key");
        }
    }

    #[test]
    fn key_is_stable_across_releases() {
        // Pinned: if this changes, old caches silently miss; bump KEY_SCHEME deliberately instead.
        assert_eq!(
            canonical_json(&serde_json::to_value(comps()).unwrap()),
            r#"{"code":"c0de","command":"train","inputs":[{"hashes":["h1"],"name":"items"}],"params":{"K":1000,"lr":0.01,"opt":{"a":[1,2],"wd":0.5}},"scheme":2,"stage":"train"}"#
        );
    }
}
