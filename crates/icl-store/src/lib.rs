//! The artifact layer: the only crate that reads or writes Parquet bytes.
//!
//! - [`parquet`]: deterministic Parquet read/write of Arrow record batches.
//! - [`hash`]: blake3 content hashes (the names of objects in the store).
//! - [`store`]: the object store (`objects/`), run records (`runs/`), the point index, logs.
//! - [`task`]: the stage protocol between the `icl` runner and every stage binary.

pub mod hash;
pub mod parquet;
pub mod store;
pub mod task;
