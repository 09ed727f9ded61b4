//! One writer per warehouse.
//!
//! A writing `mdp` process holds an exclusive lock for as long as it runs; a second writer gets
//! [`WarehouseError::Locked`] naming the holder instead of interleaving its writes. The lock is one
//! the operating system (DuckDB: `flock` on a file beside the database) or the server (Postgres: a
//! session advisory lock) drops by itself when its process dies, so a killed writer never blocks the
//! next one. The holder's details are written down when the lock is taken and erased on a clean
//! release: details still present when the next writer takes the lock are a *stale* lock, the trace
//! of a process that died mid-run, and are reported so its run can be marked failed.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Result, WarehouseError};

/// Who holds (or held) the writer lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
    pub since: DateTime<Utc>,
    /// The mdp command line verb that took the lock (`ingest`, `build`, …).
    pub command: String,
}

impl LockHolder {
    /// A holder for the current process.
    pub fn current(run_id: impl Into<String>, command: impl Into<String>) -> Self {
        LockHolder {
            run_id: run_id.into(),
            pid: std::process::id(),
            host: hostname(),
            since: Utc::now(),
            command: command.into(),
        }
    }
}

/// The host name, for lock messages ("pid 123 on build-box").
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// The path of the lock file that guards a DuckDB database file.
pub fn lock_file_path(database: &Path) -> PathBuf {
    let mut name = database.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".mdp-lock");
    database.with_file_name(name)
}

/// An exclusive `flock` on a file, released when dropped (and by the OS if the process dies).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

/// The outcome of taking a lock: the guard, and the details of a holder that died without releasing.
#[derive(Debug)]
pub struct Acquired<G> {
    pub guard: G,
    pub stale: Option<LockHolder>,
}

impl FileLock {
    /// Take the lock at `path` for `holder`, or fail with the current holder.
    pub fn acquire(path: &Path, holder: &LockHolder) -> Result<Acquired<FileLock>> {
        let io =
            |context: &str, source| WarehouseError::Io { context: format!("{context} {}", path.display()), source };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io("cannot open lock file", e))?;
        // A reader (`FileLock::holder`) takes a shared lock for an instant, and a writer writes its
        // details just after locking: a lock held without details is retried for up to a second
        // before it is reported, so neither instant makes a writer fail.
        let mut attempts = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => match read_holder(&mut file) {
                    Some(holder) => return Err(WarehouseError::Locked { holder }),
                    None if attempts < 40 => {
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    None => {
                        return Err(WarehouseError::LockedUnknownHolder {
                            lock: format!("lock file {}", path.display()),
                        })
                    }
                },
                Err(TryLockError::Error(e)) => return Err(io("cannot lock", e)),
            }
        }
        let stale = read_holder(&mut file);
        let json = serde_json::to_vec(holder).map_err(|e| WarehouseError::Internal(e.to_string()))?;
        file.set_len(0).map_err(|e| io("cannot write lock file", e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| io("cannot write lock file", e))?;
        file.write_all(&json).map_err(|e| io("cannot write lock file", e))?;
        file.sync_data().map_err(|e| io("cannot write lock file", e))?;
        Ok(Acquired { guard: FileLock { file, path: path.to_path_buf() }, stale })
    }

    /// Who holds the lock at `path` right now, if anyone (without taking it).
    pub fn holder(path: &Path) -> Result<Option<LockHolder>> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(WarehouseError::Io { context: format!("cannot open {}", path.display()), source })
            }
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => Ok(read_holder(&mut file)),
            Err(TryLockError::Error(source)) => {
                Err(WarehouseError::Io { context: format!("cannot inspect lock {}", path.display()), source })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // A clean release erases the holder, so the next writer does not report a stale lock.
        let _ = self.file.set_len(0);
        let _ = self.file.sync_data();
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// The advisory-lock key for a metadata schema: distinct schemas in one database lock independently.
pub fn advisory_lock_key(metadata_schema: &str) -> i64 {
    // FNV-1a: stable across releases and platforms (std's hasher is not).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("mdp-writer:{metadata_schema}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_first_holder_and_a_dropped_lock_is_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.duckdb.mdp-lock");
        let first = LockHolder::current("run-1", "ingest");
        let acquired = FileLock::acquire(&path, &first).unwrap();
        assert!(acquired.stale.is_none());
        match FileLock::acquire(&path, &LockHolder::current("run-2", "build")) {
            Err(WarehouseError::Locked { holder }) => assert_eq!(holder, first),
            other => panic!("expected Locked, got {other:?}"),
        }
        assert_eq!(FileLock::holder(&path).unwrap(), Some(first));
        drop(acquired);
        assert_eq!(FileLock::holder(&path).unwrap(), None);
        let again = FileLock::acquire(&path, &LockHolder::current("run-3", "build")).unwrap();
        assert!(again.stale.is_none(), "a clean release must not look stale");
    }

    #[test]
    fn details_left_by_a_dead_holder_are_reported_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.duckdb.mdp-lock");
        let dead = LockHolder::current("run-killed", "ingest");
        std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        let acquired = FileLock::acquire(&path, &LockHolder::current("run-next", "ingest")).unwrap();
        assert_eq!(acquired.stale, Some(dead));
    }

    #[test]
    fn lock_file_sits_beside_the_database() {
        assert_eq!(lock_file_path(Path::new("/p/warehouse.duckdb")), PathBuf::from("/p/warehouse.duckdb.mdp-lock"));
    }
}
