//! pipeline.yaml: typed parsing (structural errors carry file:line:column), profile merging,
//! matrix expansion and the semantic checks that need the whole file (see the crate docs for
//! the format).

use crate::error::{ConfigError, ConfigErrors};
use crate::yamlpos::YamlText;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The only pipeline.yaml format version this runner reads.
pub const FORMAT_VERSION: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Raw (structural) layer: exactly what the file says.

/// A YAML mapping that keeps its key order (stage order, matrix-key order and input order are
/// meaningful).
#[derive(Debug, Clone)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V> Ordered<V> {
    pub fn get(&self, k: &str) -> Option<&V> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v)
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    if out.iter().any(|(x, _)| *x == k) {
                        return Err(de::Error::custom(format!("duplicate key `{k}`")));
                    }
                    let v = m.next_value::<V>()?;
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_any(V2(PhantomData))
    }
}

/// An input: one reference `stage.output` (`stage.output[*]` gathers) or a list of them.
#[derive(Debug, Clone)]
pub struct RawInput(pub Vec<String>);

impl<'de> Deserialize<'de> for RawInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a reference `stage.output` (or `stage.output[*]`) or a list of references",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawInput, E> {
                Ok(RawInput(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RawInput, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = s.next_element::<String>()? {
                    v.push(x);
                }
                Ok(RawInput(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub version: u32,
    #[serde(default)]
    pub default_profile: Option<String>,
    #[serde(default)]
    pub publish_dir: Option<String>,
    #[serde(default)]
    pub diff: Option<DiffConfig>,
    /// Defaults of `icl reproduce --executor slurm` (see [`SlurmSettings`]).
    #[serde(default)]
    pub slurm: Option<RawSlurm>,
    /// Named parameter sets that stages and templates inherit with `use:`.
    #[serde(default)]
    pub defaults: Ordered<serde_yaml::Mapping>,
    /// Chains of stages that an experiment (`template:` in `stages:`) instantiates.
    #[serde(default)]
    pub templates: Ordered<Ordered<RawRole>>,
    pub stages: Ordered<RawStage>,
    #[serde(default)]
    pub profiles: Ordered<Option<RawProfile>>,
}

/// A stage, or an experiment (`template:` set) that expands into the template's stages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    /// Experiment: expand this template (bin, command, inputs, outputs come from it).
    #[serde(default)]
    pub template: Option<String>,
    /// Stage binary, found next to `icl`; its crate is `crates/<bin>` (for the code fingerprint).
    #[serde(default)]
    pub bin: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    /// Parameter sets of `defaults:` inherited in order; `params` then override them.
    #[serde(default, rename = "use")]
    pub uses: Option<Names>,
    #[serde(default)]
    pub params: Option<serde_yaml::Mapping>,
    #[serde(default)]
    pub matrix: RawMatrix,
    #[serde(default)]
    pub inputs: Ordered<RawInput>,
    #[serde(default)]
    pub outputs: Option<Vec<String>>,
    #[serde(default)]
    pub publish: Ordered<String>,
    /// Threads per task (TaskSpec.threads and RAYON_NUM_THREADS); 1 by default.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Experiment only: stage names other than `<role>_<experiment>`.
    #[serde(default)]
    pub names: Ordered<String>,
    /// Experiment only: roles not generated but taken from an existing stage.
    #[serde(default)]
    pub share: Ordered<String>,
}

/// One stage of a template. Its name in the pipeline is `<role>_<experiment>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub bin: String,
    pub command: String,
    #[serde(default, rename = "use")]
    pub uses: Option<Names>,
    #[serde(default)]
    pub params: Option<serde_yaml::Mapping>,
    /// The experiment's params and matrix axes this stage receives [default: all of them].
    #[serde(default)]
    pub takes: Option<Vec<String>>,
    /// References to another role of the template (`items.items`) name that role's stage.
    #[serde(default)]
    pub inputs: Ordered<RawInput>,
    pub outputs: Vec<String>,
    #[serde(default)]
    pub threads: Option<usize>,
}

/// `matrix:` as written: one mapping of axes (one task per point of their product), or a list
/// of such mappings, "blocks", whose points are united (axes that move together, such as a K
/// range and a budget per context length N). Every block must have the same keys.
#[derive(Debug, Clone, Default)]
pub struct RawMatrix {
    pub blocks: Vec<Ordered<serde_yaml::Value>>,
    /// Written as a list (a profile's list replaces every block; a mapping edits each).
    pub listed: bool,
}

impl<'de> Deserialize<'de> for RawMatrix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let block = |v: serde_yaml::Value| {
            serde_yaml::from_value::<Ordered<serde_yaml::Value>>(v).map_err(|e| {
                de::Error::custom(format!(
                    "a matrix is a mapping of axes or a list of such mappings ({e})"
                ))
            })
        };
        match v {
            serde_yaml::Value::Null => Ok(RawMatrix::default()),
            serde_yaml::Value::Sequence(items) => {
                if items.is_empty() {
                    return Err(de::Error::custom("a matrix list needs at least one block"));
                }
                Ok(RawMatrix {
                    blocks: items.into_iter().map(block).collect::<Result<_, _>>()?,
                    listed: true,
                })
            }
            other => Ok(RawMatrix {
                blocks: vec![block(other)?],
                listed: false,
            }),
        }
    }
}

/// One name or a list of names.
#[derive(Debug, Clone, Default)]
pub struct Names(pub Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Names, E> {
                Ok(Names(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Names, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = s.next_element::<String>()? {
                    v.push(x);
                }
                Ok(Names(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    #[serde(default)]
    pub publish_dir: Option<String>,
    /// Overrides the top-level `slurm:` section key by key.
    #[serde(default)]
    pub slurm: Option<RawSlurm>,
    /// Deep-merged into the named parameter sets of `defaults:` (`null` deletes a key).
    #[serde(default)]
    pub defaults: Ordered<serde_yaml::Mapping>,
    /// Keyed by stage, experiment (applies to each stage it expands to, filtered by `takes`)
    /// or generated stage name.
    #[serde(default)]
    pub stages: Ordered<Option<RawOverride>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverride {
    /// Deep-merged into the stage's params (`null` deletes a key).
    #[serde(default)]
    pub params: Option<serde_yaml::Mapping>,
    /// A mapping replaces matrix entries key by key in every block (`null` deletes an axis);
    /// a list of blocks replaces the whole matrix.
    #[serde(default)]
    pub matrix: RawMatrix,
    #[serde(default)]
    pub threads: Option<usize>,
}

/// `slurm:` section (top level, or in a profile to override it key by key): the Slurm
/// executor's job options. Every key is optional; the command line overrides them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlurm {
    /// `sbatch --partition`.
    #[serde(default)]
    pub partition: Option<String>,
    /// `sbatch --account`.
    #[serde(default)]
    pub account: Option<String>,
    /// `sbatch --time` per array task: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M` or `D-H:M:S`.
    #[serde(default)]
    pub time: Option<String>,
    /// `sbatch --mem` per array task: an integer with an optional unit K, M, G or T.
    #[serde(default)]
    pub mem: Option<String>,
    /// `sbatch --cpus-per-task` [default: the largest `threads` of the batch's tasks].
    #[serde(default)]
    pub cpus_per_task: Option<u32>,
    /// At most this many array tasks of one job run at once (`--array=0-N%THROTTLE`).
    #[serde(default)]
    pub array_throttle: Option<u32>,
    /// A failed array task is resubmitted up to this many times [default 2].
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Seconds between two squeue polls [default 10].
    #[serde(default)]
    pub poll_interval: Option<f64>,
}

/// The Slurm executor's options after merging file, profile and command line.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub time: Option<String>,
    pub mem: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub array_throttle: Option<u32>,
    pub max_retries: u32,
    pub poll_interval: f64,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        SlurmSettings {
            partition: None,
            account: None,
            time: None,
            mem: None,
            cpus_per_task: None,
            array_throttle: None,
            max_retries: 2,
            poll_interval: 10.0,
        }
    }
}

impl RawSlurm {
    /// `self` with `over`'s keys replacing its own.
    pub fn merged(&self, over: &RawSlurm) -> RawSlurm {
        RawSlurm {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            time: over.time.clone().or_else(|| self.time.clone()),
            mem: over.mem.clone().or_else(|| self.mem.clone()),
            cpus_per_task: over.cpus_per_task.or(self.cpus_per_task),
            array_throttle: over.array_throttle.or(self.array_throttle),
            max_retries: over.max_retries.or(self.max_retries),
            poll_interval: over.poll_interval.or(self.poll_interval),
        }
    }

    /// Check every key that is set: `(key, message)` per problem, message naming what is allowed.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (k, v) in [("partition", &self.partition), ("account", &self.account)] {
            if let Some(v) = v {
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == ',') {
                    out.push((
                        k,
                        format!("`{v}` is not a Slurm {k} name (allowed: a non-empty name without spaces or commas)"),
                    ));
                }
            }
        }
        if let Some(t) = &self.time {
            if !valid_slurm_time(t) {
                out.push((
                    "time",
                    format!("`{t}` is not a Slurm time limit (allowed: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S)"),
                ));
            }
        }
        if let Some(m) = &self.mem {
            let digits = m.trim_end_matches(['K', 'M', 'G', 'T']);
            let ok = m.len() - digits.len() <= 1
                && !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && digits.parse::<u64>().is_ok_and(|n| n > 0);
            if !ok {
                out.push((
                    "mem",
                    format!("`{m}` is not a memory size (allowed: a positive integer with an optional unit K, M, G or T, e.g. 4G)"),
                ));
            }
        }
        for (k, v) in [
            ("cpus_per_task", self.cpus_per_task),
            ("array_throttle", self.array_throttle),
        ] {
            if v == Some(0) {
                out.push((k, "must be >= 1 (got 0)".to_string()));
            }
        }
        if let Some(p) = self.poll_interval {
            if !(p.is_finite() && p > 0.0) {
                out.push((
                    "poll_interval",
                    format!("must be a positive number of seconds (got {p})"),
                ));
            }
        }
        out
    }

    /// Defaults filled in (call after [`RawSlurm::problems`] came back empty).
    pub fn settings(&self) -> SlurmSettings {
        let d = SlurmSettings::default();
        SlurmSettings {
            partition: self.partition.clone(),
            account: self.account.clone(),
            time: self.time.clone(),
            mem: self.mem.clone(),
            cpus_per_task: self.cpus_per_task,
            array_throttle: self.array_throttle,
            max_retries: self.max_retries.unwrap_or(d.max_retries),
            poll_interval: self.poll_interval.unwrap_or(d.poll_interval),
        }
    }
}

/// Slurm's time formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S` (all fields integers).
pub fn valid_slurm_time(t: &str) -> bool {
    let num = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, t),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if !parts.iter().all(|p| num(p)) {
        return false;
    }
    match days {
        Some(d) => num(d) && (1..=3).contains(&parts.len()),
        None => (1..=3).contains(&parts.len()),
    }
}

/// `diff:` section: how `icl diff` compares claim tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffConfig {
    /// Columns that identify a row.
    #[serde(default)]
    pub key: Vec<String>,
    /// Per-column numeric tolerance; `default` applies to numeric columns not listed.
    #[serde(default)]
    pub tolerances: BTreeMap<String, Tolerance>,
    /// Columns not compared.
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// Two numbers a, b agree iff |a - b| <= abs + rel * |a|.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    #[serde(default)]
    pub abs: f64,
    #[serde(default)]
    pub rel: f64,
}

// ---------------------------------------------------------------------------------------------
// Loaded file.

/// A structurally valid pipeline.yaml.
#[derive(Debug, Clone)]
pub struct Config {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    /// Absolute folder of the file (relative paths in it are relative to this).
    pub dir: PathBuf,
    pub text: String,
    pub raw: RawPipeline,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                key: String::new(),
                message: format!("cannot read the pipeline file: {e}"),
            }])
        })?;
        let dir = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_text(path, dir, text)
    }

    pub fn from_text(path: &Path, dir: PathBuf, text: String) -> Result<Config, ConfigErrors> {
        let raw: RawPipeline = serde_yaml::from_str(&text).map_err(|e| {
            let loc = e.location();
            let mut msg = e.to_string();
            // serde_yaml appends " at line L column C"; we print the location up front instead.
            if let Some(i) = msg.rfind(" at line ") {
                msg.truncate(i);
            }
            // serde_yaml prefixes the key path ("stages.x: ..."); split it off into `key`.
            let (key, message) = match msg.split_once(": ") {
                Some((k, m)) if !k.contains(' ') => (k.to_string(), m.to_string()),
                _ => (String::new(), msg.clone()),
            };
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                key,
                message,
            }])
        })?;
        Ok(Config {
            path: path.to_path_buf(),
            dir,
            text,
            raw,
        })
    }

    /// An error located at a YAML key path.
    pub fn err_at<S: AsRef<str>>(
        &self,
        yaml_path: &[S],
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, col) = YamlText::new(&self.text).locate(yaml_path);
        ConfigError {
            file: self.path.clone(),
            line: Some(line),
            column: Some(col),
            key: yaml_path
                .iter()
                .map(|s| s.as_ref())
                .collect::<Vec<_>>()
                .join("."),
            message: message.into(),
        }
    }

    /// An error not tied to a line of the file (e.g. a command-line option).
    pub fn err_plain(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            line: None,
            column: None,
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn profile_names(&self) -> Vec<String> {
        self.raw.profiles.keys().map(str::to_string).collect()
    }

    pub fn diff_config(&self) -> DiffConfig {
        self.raw.diff.clone().unwrap_or_default()
    }

    /// The `slurm:` section with the profile's `slurm:` applied, each bad value located at the
    /// line that set it.
    pub fn slurm(&self, profile: &str) -> Result<RawSlurm, ConfigErrors> {
        let base = self.raw.slurm.clone().unwrap_or_default();
        let over = self
            .raw
            .profiles
            .get(profile)
            .and_then(|p| p.as_ref())
            .and_then(|p| p.slurm.clone())
            .unwrap_or_default();
        let merged = base.merged(&over);
        let errs: Vec<ConfigError> = merged
            .problems()
            .into_iter()
            .map(|(k, msg)| {
                let from_profile = over.problems().iter().any(|(ok, _)| *ok == k);
                if from_profile {
                    self.err_at(&["profiles", profile, "slurm", k], msg)
                } else {
                    self.err_at(&["slurm", k], msg)
                }
            })
            .collect();
        if errs.is_empty() {
            Ok(merged)
        } else {
            Err(ConfigErrors(errs))
        }
    }

    /// Apply a profile (the given one, else `default_profile`, else none) and check everything
    /// that does not need a stage binary.
    pub fn resolve(&self, profile: Option<&str>) -> Result<Resolved, ConfigErrors> {
        let mut errs = Vec::new();
        if self.raw.version != FORMAT_VERSION {
            errs.push(self.err_at(
                &["version"],
                format!(
                    "unsupported version {} (allowed: {FORMAT_VERSION})",
                    self.raw.version
                ),
            ));
        }
        let allowed_profiles = || {
            let n = self.profile_names();
            if n.is_empty() {
                "none are defined".to_string()
            } else {
                n.join(", ")
            }
        };
        let (profile_name, prof) = match (profile, &self.raw.default_profile) {
            (Some(p), _) => match self.raw.profiles.get(p) {
                Some(pr) => (p.to_string(), pr.clone().unwrap_or_default()),
                None => {
                    errs.push(self.err_plain(
                        "--profile",
                        format!("unknown profile `{p}` (allowed: {})", allowed_profiles()),
                    ));
                    return Err(ConfigErrors(errs));
                }
            },
            (None, Some(p)) => match self.raw.profiles.get(p) {
                Some(pr) => (p.clone(), pr.clone().unwrap_or_default()),
                None => {
                    errs.push(self.err_at(
                        &["default_profile"],
                        format!("unknown profile `{p}` (allowed: {})", allowed_profiles()),
                    ));
                    return Err(ConfigErrors(errs));
                }
            },
            (None, None) => ("default".to_string(), RawProfile::default()),
        };
        let publish_dir_str = prof
            .publish_dir
            .clone()
            .or_else(|| self.raw.publish_dir.clone())
            .unwrap_or_else(|| "results".to_string());
        let publish_dir = self.dir.join(&publish_dir_str);

        let flat = self.flatten(&profile_name, &prof.defaults, &prof.stages, &mut errs);
        let mut stages = Vec::new();
        for f in flat {
            let sname = f.name.clone();
            let sp = |rest: &[&str]| -> Vec<String> {
                let mut v = f.fields_at.clone();
                v.extend(rest.iter().map(|s| s.to_string()));
                v
            };
            if !valid_name(&sname) {
                errs.push(self.err_at(
                    &f.at,
                    format!("invalid stage name `{sname}` (allowed: letters, digits, `_`, `-`)"),
                ));
            }
            let mut matrix = Matrix::default();
            for (b, block) in f.matrix.iter().enumerate() {
                let mut axes: Vec<MatrixAxis> = Vec::new();
                for a in block {
                    if let Some(values) = self.parse_axis(&a.value, &a.at, &mut errs) {
                        axes.push(MatrixAxis {
                            key: a.key.clone(),
                            values,
                            origin: a.at.clone(),
                        });
                    }
                }
                // Every block has the first block's keys; its axes are put in that order.
                if let Some(first) = matrix.blocks.first() {
                    let want: BTreeSet<&str> = first.iter().map(|a| a.key.as_str()).collect();
                    let have: BTreeSet<&str> = axes.iter().map(|a| a.key.as_str()).collect();
                    if want != have {
                        let at = block.first().map(|a| a.at[..a.at.len() - 1].to_vec());
                        errs.push(self.err_at(
                            &at.unwrap_or_else(|| f.at.clone()),
                            format!(
                                "matrix block {b} has keys {} but block 0 has {} (allowed: every block of a matrix list has the same keys)",
                                have.iter().copied().collect::<Vec<_>>().join(", "),
                                want.iter().copied().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                        continue;
                    }
                    let order: Vec<String> = first.iter().map(|a| a.key.clone()).collect();
                    axes.sort_by_key(|a| order.iter().position(|k| *k == a.key));
                }
                matrix.blocks.push(axes);
            }

            // outputs
            let mut seen = BTreeSet::new();
            for o in &f.outputs {
                if !valid_name(o) {
                    errs.push(self.err_at(
                        &sp(&["outputs"]),
                        format!("invalid output name `{o}` (allowed: letters, digits, `_`, `-`)"),
                    ));
                }
                if !seen.insert(o.clone()) {
                    errs.push(
                        self.err_at(&sp(&["outputs"]), format!("output `{o}` is declared twice")),
                    );
                }
            }
            if f.outputs.is_empty() {
                errs.push(self.err_at(
                    &sp(&["outputs"]),
                    "a stage must declare at least one output",
                ));
            }

            // inputs
            let mut inputs = Vec::new();
            for (name, raw) in &f.inputs {
                let mut refs = Vec::new();
                if raw.is_empty() {
                    errs.push(self.err_at(&sp(&["inputs", name]), "empty list of references"));
                }
                for r in raw {
                    match parse_ref(r) {
                        Some(sel) => refs.push(sel),
                        None => errs.push(self.err_at(
                            &sp(&["inputs", name]),
                            format!("invalid reference `{r}` (allowed: `stage.output` or `stage.output[*]`)"),
                        )),
                    }
                }
                inputs.push(InputDecl {
                    name: name.clone(),
                    refs,
                });
            }

            // publish
            for (out, dest) in &f.publish {
                if !f.outputs.contains(out) {
                    errs.push(self.err_at(
                        &sp(&["publish", out]),
                        format!(
                            "publishes `{out}`, which is not an output of this stage (outputs: {})",
                            f.outputs.join(", ")
                        ),
                    ));
                }
                let d = Path::new(dest);
                if d.is_absolute()
                    || d.components()
                        .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    errs.push(self.err_at(
                        &sp(&["publish", out]),
                        format!(
                            "`{dest}` must be a relative path inside publish_dir, without `..`"
                        ),
                    ));
                }
            }
            if !f.publish.is_empty() && !matrix.is_empty() {
                let keys = matrix.keys();
                errs.push(self.err_at(
                    &sp(&["publish"]),
                    format!("a stage with a matrix ({}) has many tasks and cannot publish (allowed: publish on stages without a matrix)", keys.join(", ")),
                ));
            }

            let threads = f.threads.unwrap_or(1);
            if threads == 0 {
                errs.push(self.err_at(&sp(&["threads"]), "must be >= 1 (got 0)"));
            }
            if !valid_name(&f.bin) {
                errs.push(self.err_at(&sp(&["bin"]), format!("invalid binary name `{}`", f.bin)));
            }

            stages.push(StageSpec {
                name: sname,
                bin: f.bin,
                command: f.command,
                params: f.params.params,
                origins: f.params.origins,
                at: f.at,
                fields_at: f.fields_at,
                matrix,
                inputs,
                outputs: f.outputs,
                publish: f.publish,
                threads,
            });
        }

        // Input references must name an existing stage and one of its outputs.
        for s in &stages {
            for inp in &s.inputs {
                for r in &inp.refs {
                    let at = s.yaml(&["inputs", &inp.name]);
                    match stages.iter().find(|u| u.name == r.stage) {
                        None => errs.push(self.err_at(
                            &at,
                            format!(
                                    "`{}` names stage `{}`, which does not exist (stages: {})",
                                    r.text(),
                                    r.stage,
                                    stages
                                        .iter()
                                        .map(|u| u.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                        )),
                        Some(u) if !u.outputs.contains(&r.output) => errs.push(self.err_at(
                            &at,
                            format!(
                                "`{}`: stage `{}` has no output `{}` (its outputs: {})",
                                r.text(),
                                u.name,
                                r.output,
                                u.outputs.join(", ")
                            ),
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        if errs.is_empty() {
            if let Some(cycle) = find_cycle(&stages) {
                let first = &stages[cycle[0]];
                let names: Vec<&str> = cycle
                    .iter()
                    .chain(std::iter::once(&cycle[0]))
                    .map(|&i| stages[i].name.as_str())
                    .collect();
                errs.push(self.err_at(
                    &first.yaml(&["inputs"]),
                    format!(
                        "the inputs form a cycle: {} (allowed: a directed acyclic graph)",
                        names.join(" -> ")
                    ),
                ));
            }
        }
        if let Err(e) = self.slurm(&profile_name) {
            errs.extend(e.0);
        }
        // An experiment's value reaches several stages; report each problem once.
        let mut unique: Vec<ConfigError> = Vec::new();
        for e in errs {
            if !unique.contains(&e) {
                unique.push(e);
            }
        }
        let errs = unique;
        if errs.is_empty() {
            Ok(Resolved {
                profile: profile_name,
                publish_dir,
                stages,
            })
        } else {
            Err(ConfigErrors(errs))
        }
    }

    /// YAML value -> JSON value: `.inf` becomes the string "inf", NaN is refused.
    pub(crate) fn to_json<S: AsRef<str>>(
        &self,
        v: &serde_yaml::Value,
        path: &[S],
        errs: &mut Vec<ConfigError>,
    ) -> Option<Value> {
        use serde_yaml::Value as Y;
        Some(match v {
            Y::Null => Value::Null,
            Y::Bool(b) => Value::Bool(*b),
            Y::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::from(i)
                } else if let Some(u) = n.as_u64() {
                    Value::from(u)
                } else {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    if f.is_nan() {
                        errs.push(self.err_at(
                            path,
                            "NaN is not allowed (allowed: a number, or .inf / \"inf\")",
                        ));
                        return None;
                    } else if f.is_infinite() {
                        Value::String(if f > 0.0 { "inf".into() } else { "-inf".into() })
                    } else {
                        Value::from(f)
                    }
                }
            }
            Y::String(s) => Value::String(s.clone()),
            Y::Sequence(seq) => {
                let mut out = Vec::new();
                for x in seq {
                    out.push(self.to_json(x, path, errs)?);
                }
                Value::Array(out)
            }
            Y::Mapping(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    let Some(k) = k.as_str() else {
                        errs.push(
                            self.err_at(path, format!("mapping keys must be strings (got {k:?})")),
                        );
                        return None;
                    };
                    let mut p: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
                    p.push(k.to_string());
                    out.insert(k.to_string(), self.to_json(x, &p, errs)?);
                }
                Value::Object(out)
            }
            Y::Tagged(t) => {
                errs.push(self.err_at(
                    path,
                    format!("YAML tags are not supported (got !{})", t.tag),
                ));
                return None;
            }
        })
    }

    /// One matrix axis: a list, `{range: [a, b]}`, `{logspace: [a, b, n]}` or `{linspace: [a, b, n]}`.
    fn parse_axis<S: AsRef<str>>(
        &self,
        v: &serde_yaml::Value,
        path: &[S],
        errs: &mut Vec<ConfigError>,
    ) -> Option<Vec<Value>> {
        const ALLOWED: &str = "allowed: a list of values, {range: [a, b]}, {logspace: [a, b, n]} or {linspace: [a, b, n]}, the last two optionally with `round: int` or `round: even`";
        // `round:` asks for integers (e.g. K, which a stage may require to be even).
        let (gen, round) = match v {
            serde_yaml::Value::Mapping(m) if m.len() == 2 && m.contains_key("round") => {
                let mut g = m.clone();
                let r = g.remove("round").expect("checked");
                match r.as_str() {
                    Some("int") => (serde_yaml::Value::Mapping(g), Some("int")),
                    Some("even") => (serde_yaml::Value::Mapping(g), Some("even")),
                    _ => {
                        let mut p: Vec<String> =
                            path.iter().map(|s| s.as_ref().to_string()).collect();
                        p.push("round".into());
                        errs.push(self.err_at(
                            &p,
                            format!("round: {} (allowed: int or even)", yaml_inline(&r)),
                        ));
                        return None;
                    }
                }
            }
            other => (other.clone(), None),
        };
        let v = &gen;
        let values = match v {
            serde_yaml::Value::Sequence(_) => match self.to_json(v, path, errs)? {
                Value::Array(a) => a,
                _ => unreachable!("a sequence converts to an array"),
            },
            serde_yaml::Value::Mapping(m) if m.len() == 1 => {
                let (k, args) = m.iter().next().expect("one entry");
                let kind = k.as_str().unwrap_or("");
                let nums: Option<Vec<f64>> = args
                    .as_sequence()
                    .and_then(|s| s.iter().map(|x| x.as_f64()).collect());
                let ints: Option<Vec<i64>> = args
                    .as_sequence()
                    .and_then(|s| s.iter().map(|x| x.as_i64()).collect());
                let bad = |msg: String| {
                    let mut p: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
                    p.push(kind.to_string());
                    self.err_at(&p, msg)
                };
                match kind {
                    "range" => {
                        match ints.as_deref() {
                            Some(&[a, b]) if a < b => (a..b).map(Value::from).collect(),
                            _ => {
                                errs.push(bad(format!("range needs two integers [a, b] with a < b (b exclusive); got {}", yaml_inline(args))));
                                return None;
                            }
                        }
                    }
                    "logspace" => match nums.as_deref() {
                        Some(&[a, b, n])
                            if n >= 1.0 && n.fract() == 0.0 && a.is_finite() && b.is_finite() =>
                        {
                            let n = n as usize;
                            (0..n)
                                .map(|i| {
                                    let e = if n == 1 {
                                        a
                                    } else {
                                        a + (b - a) * i as f64 / (n - 1) as f64
                                    };
                                    10f64.powf(e)
                                })
                                // Rounded below when asked; tidied only when not, so that
                                // `round: even` reproduces the old integer values exactly.
                                .map(|x| match round {
                                    Some(_) => Value::from(x),
                                    None => tidy_float(Value::from(x)),
                                })
                                .collect()
                        }
                        _ => {
                            errs.push(bad(format!("logspace needs [a, b, n]: base-10 exponents a, b and a count n >= 1; got {}", yaml_inline(args))));
                            return None;
                        }
                    },
                    "linspace" => match nums.as_deref() {
                        Some(&[a, b, n])
                            if n >= 1.0 && n.fract() == 0.0 && a.is_finite() && b.is_finite() =>
                        {
                            let n = n as usize;
                            let vals: Vec<f64> = (0..n)
                                .map(|i| {
                                    if n == 1 {
                                        a
                                    } else {
                                        a + (b - a) * i as f64 / (n - 1) as f64
                                    }
                                })
                                .collect();
                            // Integer endpoints and integral steps give integers (e.g. context lengths).
                            let integral = ints.as_ref().is_some_and(|v| v.len() == 3)
                                && vals.iter().all(|x| x.fract() == 0.0);
                            if integral {
                                vals.into_iter().map(|x| Value::from(x as i64)).collect()
                            } else {
                                vals.into_iter().map(Value::from).collect()
                            }
                        }
                        _ => {
                            errs.push(bad(format!(
                                "linspace needs [a, b, n] with a count n >= 1; got {}",
                                yaml_inline(args)
                            )));
                            return None;
                        }
                    },
                    _ => {
                        errs.push(self.err_at(
                            path,
                            format!("unknown matrix generator `{kind}` ({ALLOWED})"),
                        ));
                        return None;
                    }
                }
            }
            other => {
                errs.push(self.err_at(path, format!("got {} ({ALLOWED})", yaml_inline(other))));
                return None;
            }
        };
        let values = match round {
            None => values,
            Some(r) => {
                let vals: Vec<i64> = values
                    .iter()
                    .map(|x| {
                        let x = x.as_f64().unwrap_or(f64::NAN);
                        if r == "even" {
                            ((x / 2.0).round() * 2.0) as i64
                        } else {
                            x.round() as i64
                        }
                    })
                    .collect();
                let uniq: BTreeSet<i64> = vals.iter().copied().collect();
                if uniq.len() != vals.len() {
                    errs.push(self.err_at(
                        path,
                        format!("gives duplicate values after rounding to {r} integers: {vals:?}"),
                    ));
                    return None;
                }
                vals.into_iter().map(Value::from).collect()
            }
        };
        if values.is_empty() {
            errs.push(self.err_at(path, "a matrix axis needs at least one value"));
            return None;
        }
        for (i, a) in values.iter().enumerate() {
            if values[..i].iter().any(|b| values_equal(a, b)) {
                errs.push(self.err_at(
                    path,
                    format!("value {a} appears twice (each matrix point must be distinct)"),
                ));
                return None;
            }
        }
        Some(values)
    }
}

/// A generated float at 12 significant digits (10^-3 is 0.001, not 0.0010000000000000002);
/// integers and strings pass through.
fn tidy_float(v: Value) -> Value {
    match v.as_f64() {
        Some(x) if !v.is_i64() && !v.is_u64() && x.is_finite() => {
            Value::from(format!("{x:.11e}").parse::<f64>().unwrap_or(x))
        }
        _ => v,
    }
}

fn yaml_inline(v: &serde_yaml::Value) -> String {
    serde_yaml::to_string(v)
        .map(|s| s.trim().replace('\n', " "))
        .unwrap_or_else(|_| format!("{v:?}"))
}

/// Names used as folder and file names in the store.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Recursive merge: objects merge key by key, anything else replaces, `null` deletes.
pub fn deep_merge(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (_, Value::Null) => {
                base.remove(k);
            }
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Parameter equality for matrix matching: numbers compare by value (1000 == 1000.0).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

fn parse_ref(s: &str) -> Option<InputSel> {
    let (body, gather) = match s.strip_suffix("[*]") {
        Some(b) => (b, true),
        None => (s, false),
    };
    let (stage, output) = body.split_once('.')?;
    (valid_name(stage) && valid_name(output)).then(|| InputSel {
        stage: stage.into(),
        output: output.into(),
        gather,
    })
}

/// Stage indices of one cycle in the input graph, if any.
fn find_cycle(stages: &[StageSpec]) -> Option<Vec<usize>> {
    let idx = |n: &str| stages.iter().position(|s| s.name == n);
    let edges: Vec<Vec<usize>> = stages
        .iter()
        .map(|s| {
            s.inputs
                .iter()
                .flat_map(|i| i.refs.iter())
                .filter_map(|r| idx(&r.stage))
                .collect()
        })
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done
    let mut mark = vec![0u8; stages.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn dfs(
        v: usize,
        edges: &[Vec<usize>],
        mark: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[v] = 1;
        stack.push(v);
        for &u in &edges[v] {
            if mark[u] == 1 {
                let at = stack.iter().position(|&x| x == u).expect("on stack");
                // Report the cycle in data-flow order (producer -> consumer).
                let mut c: Vec<usize> = stack[at..].to_vec();
                c.reverse();
                // Start at the stage that comes first in the file, so the message is stable.
                let first = (0..c.len()).min_by_key(|&i| c[i]).expect("non-empty cycle");
                c.rotate_left(first);
                return Some(c);
            }
            if mark[u] == 0 {
                if let Some(c) = dfs(u, edges, mark, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        mark[v] = 2;
        None
    }
    for v in 0..stages.len() {
        if mark[v] == 0 {
            if let Some(c) = dfs(v, &edges, &mut mark, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Resolved layer: one profile applied.

#[derive(Debug, Clone)]
pub struct Resolved {
    pub profile: String,
    /// Absolute folder that `publish:` paths are relative to.
    pub publish_dir: PathBuf,
    /// In file order.
    pub stages: Vec<StageSpec>,
}

#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub bin: String,
    pub command: String,
    /// Stage params after inheritance and the profile (matrix values are applied per task).
    pub params: Map<String, Value>,
    /// Where each param was written (dotted key -> YAML path), to locate errors.
    pub origins: BTreeMap<String, Vec<String>>,
    /// Where the stage, or the experiment that expands to it, is written.
    pub at: Vec<String>,
    /// Where its bin, command, inputs and outputs are written (its entry or template role).
    pub fields_at: Vec<String>,
    pub matrix: Matrix,
    pub inputs: Vec<InputDecl>,
    pub outputs: Vec<String>,
    /// (output, path relative to publish_dir)
    pub publish: Vec<(String, String)>,
    pub threads: usize,
}

/// A stage's matrix: the union of its blocks' cartesian products (one block unless the YAML
/// gave a list). Every block has the same keys, in the same order.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub blocks: Vec<Vec<MatrixAxis>>,
}

/// Matrix values of one point, in matrix-key order.
pub type Point = Vec<(String, Value)>;

impl Matrix {
    /// The matrix keys, in order (none for a stage without a matrix).
    pub fn keys(&self) -> Vec<&str> {
        self.blocks
            .first()
            .map(|b| b.iter().map(|a| a.key.as_str()).collect())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }

    /// The axis `key` of the first block (where it was written, for errors).
    pub fn axis(&self, key: &str) -> Option<&MatrixAxis> {
        self.blocks.first()?.iter().find(|a| a.key == key)
    }

    /// Every point, block by block, first key outermost, with its position: the index of each
    /// value in its axis, then the block's index when there are several blocks. A point that
    /// two blocks share (as when an experiment's stage takes only some of its keys) is kept once.
    pub fn points(&self) -> Vec<(Point, Vec<usize>)> {
        let mut out: Vec<(Point, Vec<usize>)> = Vec::new();
        if let [block] = self.blocks.as_slice() {
            // One block: its axes hold distinct values, so its points are distinct; skip the
            // quadratic check (the paper profile has stages of 15000 points).
            out = cartesian(block);
        }
        for (b, block) in self
            .blocks
            .iter()
            .enumerate()
            .filter(|_| self.blocks.len() > 1)
        {
            for (p, mut pos) in cartesian(block) {
                if out.iter().any(|(q, _)| points_equal(q, &p)) {
                    continue;
                }
                pos.push(b);
                out.push((p, pos));
            }
        }
        if out.is_empty() {
            out.push((Vec::new(), Vec::new()));
        }
        out
    }
}

fn points_equal(a: &Point, b: &Point) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((k, x), (l, y))| k == l && values_equal(x, y))
}

/// All points of one block, first key outermost, with the index of each value.
fn cartesian(axes: &[MatrixAxis]) -> Vec<(Point, Vec<usize>)> {
    let mut out: Vec<(Point, Vec<usize>)> = vec![(Vec::new(), Vec::new())];
    for a in axes {
        let mut next = Vec::with_capacity(out.len() * a.values.len());
        for (p, pos) in &out {
            for (i, v) in a.values.iter().enumerate() {
                let mut p2 = p.clone();
                p2.push((a.key.clone(), v.clone()));
                let mut pos2 = pos.clone();
                pos2.push(i);
                next.push((p2, pos2));
            }
        }
        out = next;
    }
    out
}

#[derive(Debug, Clone)]
pub struct MatrixAxis {
    pub key: String,
    pub values: Vec<Value>,
    /// Where the axis was written (the stage, its experiment, or a profile).
    pub origin: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct InputDecl {
    pub name: String,
    /// Several references concatenate, in order.
    pub refs: Vec<InputSel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSel {
    pub stage: String,
    pub output: String,
    /// `[*]`: all matching upstream tasks instead of exactly one.
    pub gather: bool,
}

impl InputSel {
    pub fn text(&self) -> String {
        format!(
            "{}.{}{}",
            self.stage,
            self.output,
            if self.gather { "[*]" } else { "" }
        )
    }
}

impl Resolved {
    pub fn stage(&self, name: &str) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The index of stage `name`, or the usage error every command gives for an unknown stage
    /// (`what` names the argument, e.g. "--stage x"; the allowed names follow).
    pub fn stage_index(&self, name: &str, what: &str) -> Result<usize, crate::error::CliError> {
        self.stages
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| {
                crate::error::CliError::Usage(format!(
                    "{what} (allowed: {})",
                    self.stages
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// The YAML key path a (possibly dotted) parameter of `stage` came from: its matrix axis,
    /// else the layer (parameter set, template, experiment, stage or profile) that set it, else
    /// the stage's params.
    pub fn param_yaml_path(&self, stage: &StageSpec, key: &str) -> Vec<String> {
        let first = key.split('.').next().unwrap_or("");
        if let Some(axis) = stage.matrix.axis(first) {
            return axis.origin.clone();
        }
        if let Some(p) = crate::compose::origin(&stage.origins, key) {
            return p.clone();
        }
        let mut p = stage.at.clone();
        p.push("params".into());
        p.extend(key.split('.').filter(|s| !s.is_empty()).map(str::to_string));
        p
    }
}

impl StageSpec {
    /// The YAML path of a structural field (`bin`, `inputs`, ...) of this stage.
    pub fn yaml(&self, rest: &[&str]) -> Vec<String> {
        let mut v = self.fields_at.clone();
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_text(
            Path::new("pipeline.yaml"),
            PathBuf::from("/w"),
            text.to_string(),
        )
    }

    const BASE: &str = "version: 1
default_profile: quick
stages:
  items:
    bin: icl-datagen
    command: items
    params: {D: 63, data_seed: 1}
    matrix: {K: [1000, 2000]}
    outputs: [items]
  train:
    bin: icl-train
    command: train
    params:
      lr: 0.01
      opt: {wd: 0.0, mom: 0}
    matrix:
      K: [1000, 2000]
      seed: {range: [0, 3]}
    inputs: {items: items.items}
    outputs: [curve]
  c1:
    bin: icl-eval
    command: c1
    inputs: {curves: \"train.curve[*]\"}
    outputs: [claim]
    publish: {claim: c1.parquet}
profiles:
  ci:
    publish_dir: results/ci
    stages:
      train: {params: {opt: {wd: 0.5}}, matrix: {seed: [0]}}
  quick: {}
  paper:
    stages:
      items: {matrix: {K: {logspace: [2, 4, 3], round: even}}}
";

    #[test]
    fn profiles_merge_params_and_replace_matrix_axes() {
        let c = cfg(BASE).unwrap();
        let q = c.resolve(None).unwrap();
        assert_eq!(q.profile, "quick");
        assert_eq!(q.publish_dir, PathBuf::from("/w/results"));
        let t = q.stage("train").unwrap();
        assert_eq!(
            t.matrix.blocks[0][1].values,
            vec![Value::from(0), Value::from(1), Value::from(2)]
        );
        let ci = c.resolve(Some("ci")).unwrap();
        assert_eq!(ci.publish_dir, PathBuf::from("/w/results/ci"));
        let t = ci.stage("train").unwrap();
        assert_eq!(t.params["opt"], serde_json::json!({"wd": 0.5, "mom": 0}));
        assert_eq!(t.params["lr"], serde_json::json!(0.01));
        assert_eq!(t.matrix.blocks[0][1].values, vec![Value::from(0)]);
        assert_eq!(
            t.matrix.blocks[0][1].origin.join("."),
            "profiles.ci.stages.train.matrix.seed"
        );
        assert_eq!(
            t.matrix.blocks[0][0].origin.join("."),
            "stages.train.matrix.K"
        );
        let p = c.resolve(Some("paper")).unwrap();
        assert_eq!(
            p.stage("items").unwrap().matrix.blocks[0][0].values,
            vec![Value::from(100), Value::from(1000), Value::from(10000)]
        );
        // Error locations follow the origin of the value.
        assert_eq!(
            ci.param_yaml_path(t, "opt.wd").join("."),
            "profiles.ci.stages.train.params.opt.wd"
        );
        assert_eq!(
            ci.param_yaml_path(t, "opt.mom").join("."),
            "stages.train.params.opt.mom"
        );
        assert_eq!(
            ci.param_yaml_path(t, "seed").join("."),
            "profiles.ci.stages.train.matrix.seed"
        );
        assert_eq!(
            ci.param_yaml_path(t, "K").join("."),
            "stages.train.matrix.K"
        );
    }

    #[test]
    fn slurm_section_merges_profiles_and_locates_errors() {
        let text = BASE.replace(
            "profiles:\n  ci:\n    publish_dir: results/ci\n",
            "slurm:\n  partition: cpu\n  time: \"1:00:00\"\n  max_retries: 3\nprofiles:\n  ci:\n    publish_dir: results/ci\n    slurm: {time: \"0:30\", array_throttle: 4}\n",
        );
        let c = cfg(&text).unwrap();
        let q = c.slurm("quick").unwrap().settings();
        assert_eq!(q.partition.as_deref(), Some("cpu"));
        assert_eq!(q.time.as_deref(), Some("1:00:00"));
        assert_eq!(
            (q.max_retries, q.poll_interval, q.array_throttle),
            (3, 10.0, None)
        );
        let ci = c.slurm("ci").unwrap().settings();
        assert_eq!(ci.time.as_deref(), Some("0:30"));
        assert_eq!(
            (ci.partition.as_deref(), ci.array_throttle),
            (Some("cpu"), Some(4))
        );

        // Bad values: file:line of the key that set them, what is allowed; resolve() reports them.
        let bad = text
            .replace("time: \"1:00:00\"", "time: \"1h\"")
            .replace("array_throttle: 4", "array_throttle: 0");
        let c = cfg(&bad).unwrap();
        let e = c.resolve(Some("ci")).unwrap_err().0;
        let throttle = e
            .iter()
            .find(|e| e.key == "profiles.ci.slurm.array_throttle")
            .unwrap();
        assert!(throttle.message.contains(">= 1"), "{throttle}");
        assert_eq!(
            throttle.line,
            Some(
                bad.lines()
                    .position(|l| l.contains("array_throttle: 0"))
                    .unwrap()
                    + 1
            )
        );
        // The profile overrides `time`, so the top-level bad value is not used by `ci`...
        assert!(!e.iter().any(|e| e.key == "slurm.time"));
        // ...but is by `quick`.
        let e = c.resolve(Some("quick")).unwrap_err().0;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].key, "slurm.time");
        assert_eq!(
            e[0].line,
            Some(
                bad.lines()
                    .position(|l| l.contains("time: \"1h\""))
                    .unwrap()
                    + 1
            )
        );
        assert!(e[0].message.contains("allowed: M, M:S"), "{}", e[0]);
        // Unknown keys are structural errors with a line.
        let e = cfg(&text.replace("max_retries: 3", "retries: 3"))
            .unwrap_err()
            .0;
        assert!(
            e[0].message.contains("unknown field `retries`"),
            "{:?}",
            e[0]
        );
        assert!(e[0].line.is_some());
        for t in ["5", "5:00", "1:00:00", "2-0", "2-3:00", "2-03:00:00"] {
            assert!(valid_slurm_time(t), "{t}");
        }
        for t in ["", "1h", "1:2:3:4", "-5", "2-", "a:00"] {
            assert!(!valid_slurm_time(t), "{t}");
        }
    }

    #[test]
    fn structural_errors_have_line_and_key() {
        let e = cfg(&BASE.replace(
            "    command: items\n",
            "    command: items\n    colour: red\n",
        ))
        .unwrap_err();
        let e = &e.0[0];
        assert_eq!(e.line, Some(7));
        assert_eq!(e.key, "stages.items");
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
        let e = cfg(&BASE.replace("outputs: [items]", "outputs: items")).unwrap_err();
        assert_eq!(e.0[0].line, Some(9));
        assert!(
            e.0[0].to_string().starts_with("pipeline.yaml:9:"),
            "{}",
            e.0[0]
        );
    }

    #[test]
    fn semantic_errors() {
        let c = cfg(&BASE.replace("items.items}", "itemz.items}")).unwrap();
        let e = c.resolve(None).unwrap_err();
        assert_eq!(e.0[0].line, Some(19));
        assert!(
            e.0[0]
                .message
                .contains("stage `itemz`, which does not exist"),
            "{}",
            e.0[0]
        );
        let c = cfg(&BASE.replace("items.items}", "items.nope}")).unwrap();
        assert!(c.resolve(None).unwrap_err().0[0]
            .message
            .contains("has no output `nope`"));
        let cyc = BASE.replace(
            "    outputs: [items]\n",
            "    inputs: {x: c1.claim}\n    outputs: [items]\n",
        );
        let e = cfg(&cyc).unwrap().resolve(None).unwrap_err();
        assert!(e.0[0].message.contains("cycle: "), "{}", e.0[0]);
        assert!(
            e.0[0].message.contains("items -> train -> c1 -> items"),
            "{}",
            e.0[0]
        );
        let e = cfg(BASE).unwrap().resolve(Some("nope")).unwrap_err();
        assert!(e.0[0]
            .message
            .contains("unknown profile `nope` (allowed: ci, quick, paper)"));
        let e = cfg(&BASE.replace(
            "    outputs: [claim]\n",
            "    outputs: [claim]\n    matrix: {N: [1, 2]}\n",
        ))
        .unwrap();
        assert!(e.resolve(None).unwrap_err().0[0]
            .message
            .contains("cannot publish"));
        let e = cfg(&BASE.replace("{range: [0, 3]}", "{range: [3, 0]}"))
            .unwrap()
            .resolve(None)
            .unwrap_err();
        assert_eq!(e.0[0].key, "stages.train.matrix.seed.range");
        let e = cfg(&BASE.replace("[1000, 2000]}", "[1000, 1000]}"))
            .unwrap()
            .resolve(None)
            .unwrap_err();
        assert!(e.0[0].message.contains("appears twice"));
    }

    #[test]
    fn infinity_becomes_the_string_inf() {
        let c = cfg(&BASE.replace("K: [1000, 2000]}", "K: [1000, .inf]}")).unwrap();
        let r = c.resolve(None).unwrap();
        assert_eq!(
            r.stage("items").unwrap().matrix.blocks[0][0].values[1],
            Value::from("inf")
        );
    }

    #[test]
    fn linspace_and_values_equal() {
        let c = cfg(&BASE.replace("{range: [0, 3]}", "{linspace: [10, 30, 3]}")).unwrap();
        let r = c.resolve(None).unwrap();
        assert_eq!(
            r.stage("train").unwrap().matrix.blocks[0][1].values,
            vec![Value::from(10), Value::from(20), Value::from(30)]
        );
        assert!(values_equal(
            &serde_json::json!(1000),
            &serde_json::json!(1000.0)
        ));
        assert!(!values_equal(
            &serde_json::json!(1000),
            &serde_json::json!("1000")
        ));
    }
}
