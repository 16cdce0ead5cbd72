//! Atomic file output: write to a temporary file beside the target, then rename, so a crash never
//! leaves a half-written dataset, checkpoint or report under the final name.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Removes the temporary file on drop unless the write was committed.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The temporary path used while `target` is being written (same directory, so rename is atomic).
pub fn temp_path_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    target.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Calls `write` with a temporary path beside `target`, then renames it onto `target`.
/// On error (or panic) the temporary file is removed and `target` is untouched.
pub fn write_atomically<T>(target: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
    }
    let tmp = temp_path_for(target);
    let mut guard = TempGuard {
        path: tmp.clone(),
        armed: true,
    };
    let value = write(&tmp)?;
    // Flush file contents to disk before the rename makes them visible under the final name.
    if let Ok(f) = fs::File::open(&tmp) {
        let _ = f.sync_all();
    }
    fs::rename(&tmp, target).map_err(|e| Error::io("cannot rename into", target, e))?;
    guard.armed = false;
    Ok(value)
}

/// Writes `bytes` to `target` atomically.
pub fn write_bytes_atomically(target: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(target, |tmp| {
        fs::write(tmp, bytes).map_err(|e| Error::io("cannot write", tmp, e))
    })
}

/// An exclusive lock on a file beside a shared artefact (`dataset.h5.lock`), held until dropped.
///
/// Many workers (threads, processes, Slurm tasks on other nodes) may share one output
/// directory; whatever is created once (the dataset, a classifier, a training run, the report)
/// is created under such a lock. The lock is the operating system's (`flock`, which Linux maps
/// to POSIX byte-range locks on NFS), so it **survives a killed holder**: the kernel (or the
/// NFS server, once the dead client's lease expires) releases it when the holder's process
/// ends, however it ends, and the next worker proceeds. Lock files are never deleted (deleting
/// one while another worker waits on it would let two workers hold "the" lock); each holds one
/// line saying who holds or last held it.
pub struct FileLock {
    file: fs::File,
}

/// Who holds a lock: `host pid=N since UNIX-SECONDS`.
fn holder_line() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{host} pid={} since {since}\n", std::process::id())
}

impl FileLock {
    fn open(path: &Path) -> Result<fs::File> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
        }
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("cannot open lock file", path, e))
    }

    fn mark_held(file: fs::File) -> Self {
        use std::io::{Seek, Write};
        let mut f = &file;
        let line = holder_line();
        // Best effort: the line only tells waiting workers who holds the lock.
        let _ = f.set_len(0);
        let _ = f.seek(std::io::SeekFrom::Start(0));
        let _ = f.write_all(line.as_bytes());
        FileLock { file }
    }

    /// Takes the lock at `path` if nobody holds it; `None` when another worker does.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self::mark_held(file))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("cannot lock", path, e)),
        }
    }

    /// Takes the lock at `path`, waiting as long as another worker holds it; `waiting` is
    /// called once with the holder's line when the lock is busy.
    pub fn acquire(path: &Path, waiting: impl FnOnce(&str)) -> Result<Self> {
        if let Some(lock) = Self::try_acquire(path)? {
            return Ok(lock);
        }
        waiting(Self::holder(path).as_deref().unwrap_or("another worker"));
        let file = Self::open(path)?;
        file.lock().map_err(|e| Error::io("cannot lock", path, e))?;
        Ok(Self::mark_held(file))
    }

    /// Who holds (or last held) the lock at `path`, from its file.
    pub fn holder(path: &Path) -> Option<String> {
        fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/thing.lock");
        let held = FileLock::try_acquire(&path).unwrap().expect("free");
        // Another open file description is another holder, as another process would be.
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        let who = FileLock::holder(&path).unwrap();
        assert!(
            who.contains(&format!("pid={}", std::process::id())),
            "{who}"
        );
        drop(held);
        let again = FileLock::try_acquire(&path).unwrap();
        assert!(again.is_some());
        assert!(path.is_file(), "lock files are never deleted");
    }

    #[test]
    fn a_waiting_worker_gets_the_lock_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = FileLock::try_acquire(&path).unwrap().expect("free");
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let mut told = String::new();
            let lock = FileLock::acquire(&p, |who| told = who.to_owned()).unwrap();
            drop(lock);
            told
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
        let told = waiter.join().unwrap();
        assert!(told.contains("pid="), "{told}");
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let r: Result<()> = write_atomically(&target, |tmp| {
            fs::write(tmp, b"half").unwrap();
            Err(Error::Data("boom".into()))
        });
        assert!(r.is_err());
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn successful_write_replaces_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/out.bin");
        write_bytes_atomically(&target, b"one").unwrap();
        write_bytes_atomically(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
    }
}
