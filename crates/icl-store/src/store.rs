//! The content-addressed object store and the run records beside it.
//!
//! Layout under the store root (`data/` next to pipeline.yaml):
//!
//! ```text
//! objects/<2 hex>/<blake3>.<ext>   artifacts, named by the blake3 of their bytes
//! runs/<stage>/<key>.json          one run record per successful task execution, written last
//! index/<stage>/<point-id>.json    the last key run for that matrix point (what `icl why` compares)
//! logs/<key>.log                   stdout + stderr of the task's last attempt
//! resume/<key>/                    a task's mid-run checkpoints; removed when the task succeeds
//! tmp/                             scratch (task folders); wiped by the runner at start
//! .lock                            held by the one runner that may write
//! ```
//!
//! Crash safety: an object is fully written and synced in `tmp/` before it is renamed into
//! `objects/`, and the run record that makes a task count as done is written last, by rename.
//! A crash at any point leaves garbage in `tmp/` (wiped next time) or an unreferenced object
//! (found by `icl gc`), never a valid-looking half artifact.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the run-record layout (not of the cache key, which the runner versions itself).
pub const RECORD_SCHEME: u32 = 1;

/// A stored artifact: its blake3 and the extension of its file name (no dot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    pub hash: String,
    pub ext: String,
}

/// What verifying an object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectState {
    Ok,
    Missing,
    /// The file exists but its bytes hash to `actual`.
    Corrupt {
        actual: String,
    },
}

/// Provenance of one successful task execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub scheme: u32,
    pub stage: String,
    pub command: String,
    /// The task's matrix values (empty object for a stage without a matrix).
    pub point: serde_json::Value,
    /// The cache key: blake3 of the canonical key components.
    pub key: String,
    /// The key components exactly as hashed (owned by the runner; opaque here).
    pub components: serde_json::Value,
    pub outputs: BTreeMap<String, ObjectRef>,
    /// Log file, relative to the store root.
    pub log: String,
    /// Timings live only here, never in an artifact (RFC 3339, UTC).
    pub started: String,
    pub finished: String,
    pub duration_s: f64,
}

/// The last key run for one matrix point of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    pub stage: String,
    pub point: serde_json::Value,
    /// Position of each matrix value in its list, in matrix-key order (lets `icl why` pair a
    /// point whose value was edited with the point that held its place).
    #[serde(default)]
    pub position: Vec<usize>,
    pub key: String,
}

/// A store rooted at a folder. Creating the handle touches nothing on disk.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Create the folder layout (the runner calls this only after the config validated).
    pub fn create_layout(&self) -> anyhow::Result<()> {
        for d in ["objects", "runs", "index", "logs", "resume", "tmp"] {
            let p = self.root.join(d);
            fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        }
        Ok(())
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }
    pub fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn resume_root(&self) -> PathBuf {
        self.root.join("resume")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// `objects/<first 2 hex>/<hash>.<ext>`.
    pub fn object_path(&self, obj: &ObjectRef) -> PathBuf {
        let prefix = obj.hash.get(..2).unwrap_or("xx");
        let name = if obj.ext.is_empty() {
            obj.hash.clone()
        } else {
            format!("{}.{}", obj.hash, obj.ext)
        };
        self.objects_dir().join(prefix).join(name)
    }

    pub fn record_path(&self, stage: &str, key: &str) -> PathBuf {
        self.runs_dir().join(stage).join(format!("{key}.json"))
    }

    pub fn index_path(&self, stage: &str, point_id: &str) -> PathBuf {
        self.index_dir()
            .join(stage)
            .join(format!("{point_id}.json"))
    }

    /// Relative (to the root) and absolute path of a task's log.
    pub fn log_rel(&self, key: &str) -> String {
        format!("logs/{key}.log")
    }
    pub fn log_path(&self, key: &str) -> PathBuf {
        self.root.join(self.log_rel(key))
    }

    pub fn resume_path(&self, key: &str) -> PathBuf {
        self.resume_root().join(key)
    }

    /// Check that an object exists and hashes to its name.
    pub fn verify(&self, obj: &ObjectRef) -> anyhow::Result<ObjectState> {
        let p = self.object_path(obj);
        if !p.is_file() {
            return Ok(ObjectState::Missing);
        }
        let actual = crate::hash::hash_file(&p)?;
        Ok(if actual == obj.hash {
            ObjectState::Ok
        } else {
            ObjectState::Corrupt { actual }
        })
    }

    /// Move a finished file (which must live on the store's filesystem, e.g. under `tmp/`)
    /// into `objects/`, named by its hash. The bytes are synced before the rename so that the
    /// name never points at content that is not on disk.
    pub fn ingest(&self, src: &Path, ext: &str) -> anyhow::Result<ObjectRef> {
        let file = fs::File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot sync {}", src.display()))?;
        drop(file);
        let hash = crate::hash::hash_file(src)?;
        let obj = ObjectRef {
            hash,
            ext: ext.to_string(),
        };
        let dst = self.object_path(&obj);
        let dir = dst.parent().expect("object path has a parent");
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Same content already stored (another task produced identical bytes): replacing it by
        // rename is atomic and harmless, and also heals a corrupted copy.
        fs::rename(src, &dst)
            .with_context(|| format!("cannot move {} to {}", src.display(), dst.display()))?;
        Ok(obj)
    }

    /// Delete an object (used when verification failed).
    pub fn remove_object(&self, obj: &ObjectRef) -> anyhow::Result<()> {
        let p = self.object_path(obj);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot delete {}", p.display())),
        }
    }

    pub fn read_record(&self, stage: &str, key: &str) -> anyhow::Result<Option<RunRecord>> {
        read_json_opt(&self.record_path(stage, key))
    }

    /// Write a run record atomically (temporary sibling, sync, rename).
    pub fn write_record(&self, rec: &RunRecord) -> anyhow::Result<()> {
        write_json_atomic(&self.record_path(&rec.stage, &rec.key), rec)
    }

    pub fn read_index(&self, stage: &str, point_id: &str) -> anyhow::Result<Option<IndexEntry>> {
        read_json_opt(&self.index_path(stage, point_id))
    }

    pub fn write_index(&self, point_id: &str, entry: &IndexEntry) -> anyhow::Result<()> {
        write_json_atomic(&self.index_path(&entry.stage, point_id), entry)
    }

    /// Every index entry of a stage, with its point id (file stem), sorted by point id.
    pub fn index_entries(&self, stage: &str) -> anyhow::Result<Vec<(String, IndexEntry)>> {
        let dir = self.index_dir().join(stage);
        let mut out = Vec::new();
        for path in list_files(&dir)? {
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let id = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if let Some(e) = read_json_opt::<IndexEntry>(&path)? {
                out.push((id, e));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Empty `tmp/` (only the lock holder may call this).
    pub fn wipe_tmp(&self) -> anyhow::Result<()> {
        let tmp = self.tmp_dir();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).with_context(|| format!("cannot wipe {}", tmp.display()))?;
        }
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(())
    }
}

/// Every regular file below `dir` (recursively), sorted; empty if `dir` does not exist.
pub fn list_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_json_opt<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a valid record", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Write JSON through `<path>.tmp` + fsync + rename, so readers see the old file or the new one.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let dir = path.parent().context("record path has no parent")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(&bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
    }
    fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// RFC 3339 UTC timestamp of a system time, to the second (for run records only).
pub fn rfc3339_utc(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_names_objects_by_hash_and_verify_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("data"));
        store.create_layout().unwrap();
        let src = store.tmp_dir().join("a.parquet");
        fs::write(&src, b"hello world").unwrap();
        let obj = store.ingest(&src, "parquet").unwrap();
        assert_eq!(obj.hash, crate::hash::hash_bytes(b"hello world"));
        let p = store.object_path(&obj);
        assert!(p.starts_with(store.objects_dir().join(&obj.hash[..2])));
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            format!("{}.parquet", obj.hash)
        );
        assert!(!src.exists());
        assert_eq!(store.verify(&obj).unwrap(), ObjectState::Ok);
        fs::write(&p, b"hello worle").unwrap();
        assert!(matches!(
            store.verify(&obj).unwrap(),
            ObjectState::Corrupt { .. }
        ));
        store.remove_object(&obj).unwrap();
        assert_eq!(store.verify(&obj).unwrap(), ObjectState::Missing);
    }

    #[test]
    fn records_and_index_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let rec = RunRecord {
            scheme: RECORD_SCHEME,
            stage: "items".into(),
            command: "items".into(),
            point: serde_json::json!({"K": 4}),
            key: "k1".into(),
            components: serde_json::json!({"a": 1}),
            outputs: BTreeMap::from([(
                "items".to_string(),
                ObjectRef {
                    hash: "ab".repeat(32),
                    ext: "parquet".into(),
                },
            )]),
            log: store.log_rel("k1"),
            started: "2025-01-01T00:00:00Z".into(),
            finished: "2025-01-01T00:00:01Z".into(),
            duration_s: 1.0,
        };
        assert_eq!(store.read_record("items", "k1").unwrap(), None);
        store.write_record(&rec).unwrap();
        assert_eq!(store.read_record("items", "k1").unwrap(), Some(rec));
        assert!(!store
            .record_path("items", "k1")
            .with_extension("json.tmp")
            .exists());
        let e = IndexEntry {
            stage: "items".into(),
            point: serde_json::json!({"K": 4}),
            position: vec![0],
            key: "k1".into(),
        };
        store.write_index("K=4", &e).unwrap();
        assert_eq!(store.read_index("items", "K=4").unwrap(), Some(e.clone()));
        assert_eq!(
            store.index_entries("items").unwrap(),
            vec![("K=4".to_string(), e)]
        );
    }

    #[test]
    fn rfc3339_known_dates() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2000-02-29T12:34:56Z
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_827_696)),
            "2000-02-29T12:34:56Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_735_689_599)),
            "2024-12-31T23:59:59Z"
        );
    }
}
