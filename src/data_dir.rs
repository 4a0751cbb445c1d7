//! The data directory: private to Longin's user (0700, its database files 0600, as
//! the CIS benchmarks ask of secrets and databases), and held by one process at a
//! time through an exclusive lock on `longin.lock`.
//!
//! The lock is what lets a single-node server that restarts after a crash take its
//! controller lease at once: the kernel releases a dead process's lock, so holding it
//! proves no other process of this data dir is alive.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::Context as _;

/// The lock file inside the data dir.
pub const LOCK_FILE: &str = "longin.lock";

/// Held for the life of the process; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Creates the data dir if needed and makes it private.
///
/// # Errors
/// It cannot be created or its mode set.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making data dir {} private (0700)", dir.display()))?;
    Ok(())
}

/// Takes the data dir's exclusive lock, or `None` when another live process holds it.
///
/// # Errors
/// The lock file cannot be opened.
pub fn lock(dir: &Path) -> anyhow::Result<Option<DataDirLock>> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(DataDirLock { _file: file })),
        Err(err) if err == rustix::io::Errno::WOULDBLOCK => Ok(None),
        Err(err) => {
            Err(io::Error::from(err)).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Makes the SQLite database and its journal files in `dir` readable by their owner
/// only (SQLite creates them with the umask's mode).
///
/// # Errors
/// A file exists but its mode cannot be set.
pub fn restrict_database_files(dir: &Path) -> anyhow::Result<()> {
    for name in ["longin.db", "longin.db-wal", "longin.db-shm"] {
        let path = dir.join(name);
        match fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("making {} private", path.display()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_one_data_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path()).expect("prepare");
        let mode = fs::metadata(dir.path()).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let first = lock(dir.path()).expect("lock").expect("free");
        assert!(
            lock(dir.path()).expect("lock").is_none(),
            "held by the first"
        );
        drop(first);
        assert!(lock(dir.path()).expect("lock").is_some(), "released");
    }
}
