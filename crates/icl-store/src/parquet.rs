//! Deterministic Parquet IO. Bytes depend on content only: a fixed `created_by`, no key-value
//! metadata, one row group per batch (up to a fixed size), fixed compression. This is what lets
//! an artifact be named by the hash of its bytes.

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::path::Path;

/// The `created_by` string written into every file, fixed so that the writer's version string
/// (which changes with the parquet crate) does not leak into artifact hashes unnoticed.
pub const CREATED_BY: &str = "icl-store parquet v1";

const ROW_GROUP_ROWS: usize = 1 << 20;

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(CREATED_BY.to_string())
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build()
}

/// Encode a batch as Parquet bytes.
pub fn to_bytes(batch: &RecordBatch) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(writer_properties()))
        .context("cannot create Parquet writer")?;
    writer
        .write(batch)
        .context("cannot encode batch as Parquet")?;
    writer.close().context("cannot finish Parquet file")?;
    Ok(buf)
}

/// Write a batch to `path` (via a sibling temporary file and a rename, so a crash never leaves a
/// truncated file under the final name).
pub fn write_batch(path: &Path, batch: &RecordBatch) -> anyhow::Result<()> {
    let bytes = to_bytes(batch)?;
    write_atomic(path, &bytes)
}

/// Write bytes to `path` through `path.partial` + rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Decode Parquet bytes into one batch (row groups concatenated).
pub fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<RecordBatch> {
    let bytes = bytes::Bytes::from(bytes);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).context("not a valid Parquet file")?;
    let schema = builder.schema().clone();
    let reader = builder.build().context("cannot read Parquet row groups")?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .context("cannot decode Parquet data")?;
    arrow::compute::concat_batches(&schema, &batches).context("cannot concatenate row groups")
}

/// Read a whole Parquet file as one batch.
pub fn read_batch(path: &Path) -> anyhow::Result<RecordBatch> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(bytes).with_context(|| format!("while reading {}", path.display()))
}

/// Read a Parquet file and check that its bytes hash to `expected` first.
pub fn read_batch_verified(path: &Path, expected: &str) -> anyhow::Result<RecordBatch> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let actual = crate::hash::hash_bytes(&bytes);
    anyhow::ensure!(
        actual == expected,
        "{} is corrupted: its blake3 is {actual}, expected {expected}",
        path.display()
    );
    from_bytes(bytes).with_context(|| format!("while reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float32Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn sample() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "K",
                Arc::new(Int64Array::from(vec![Some(10), None])) as ArrayRef,
            ),
            (
                "acc",
                Arc::new(Float32Array::from(vec![0.5, 0.99])) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn roundtrip_and_deterministic_bytes() {
        let b = sample();
        let x = to_bytes(&b).unwrap();
        let y = to_bytes(&b).unwrap();
        assert_eq!(x, y, "same content must give the same bytes");
        assert_eq!(from_bytes(x.clone()).unwrap(), b);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        write_batch(&p, &b).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), x);
        let h = crate::hash::hash_bytes(&x);
        assert_eq!(read_batch_verified(&p, &h).unwrap(), b);
        assert!(read_batch_verified(&p, &"0".repeat(64)).is_err());
        assert!(!dir.path().join("t.parquet.partial").exists());
    }

    #[test]
    fn created_by_is_fixed() {
        let x = to_bytes(&sample()).unwrap();
        let needle = CREATED_BY.as_bytes();
        assert!(x.windows(needle.len()).any(|w| w == needle));
    }
}
