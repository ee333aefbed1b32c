//! One writer per store: an exclusive `flock` on `data/.lock` (std's `File::lock`). The lock dies
//! with its process, so a `kill -9`ed runner never leaves a stale lock behind.

use crate::error::CliError;
use icl_store::store::Store;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};

/// Held for as long as the runner writes to the store.
pub struct StoreLock {
    _file: File,
}

/// Take the store's lock, waiting for another runner unless `no_wait` (then exit code 3).
/// Creates the store folder (only ever called after the config validated).
pub fn acquire(store: &Store, no_wait: bool) -> Result<StoreLock, CliError> {
    let root = store.root();
    std::fs::create_dir_all(root).map_err(|e| {
        CliError::Other(anyhow::anyhow!(
            "cannot create the store {}: {e}",
            root.display()
        ))
    })?;
    let path = store.lock_path();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| CliError::Other(anyhow::anyhow!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = holder(&path);
            if no_wait {
                return Err(CliError::LockBusy(format!(
                    "the store {} is locked by another runner ({holder}); not waiting because of --no-wait",
                    root.display()
                )));
            }
            eprintln!(
                "icl: waiting for the lock on {} held by another runner ({holder}) ...",
                path.display()
            );
            file.lock().map_err(|e| {
                CliError::Other(anyhow::anyhow!("cannot lock {}: {e}", path.display()))
            })?;
            eprintln!("icl: lock acquired");
        }
        Err(TryLockError::Error(e)) => {
            return Err(CliError::Other(anyhow::anyhow!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    // Record who holds it, for the message another runner prints.
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = writeln!(file, "pid {}", std::process::id());
    let _ = file.flush();
    Ok(StoreLock { _file: file })
}

fn holder(path: &std::path::Path) -> String {
    let mut s = String::new();
    match File::open(path).and_then(|mut f| f.read_to_string(&mut s)) {
        Ok(_) if !s.trim().is_empty() => s.trim().to_string(),
        _ => "pid unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_with_no_wait_is_refused_until_release() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path().join("data"));
        let first = acquire(&store, true).unwrap();
        match acquire(&store, true) {
            Err(CliError::LockBusy(m)) => {
                assert!(m.contains(&format!("pid {}", std::process::id())), "{m}")
            }
            other => panic!("expected LockBusy, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(acquire(&store, true).is_ok());
    }
}
