//! Atomic file output: write to a temporary file beside the target, then rename, so a crash never
//! leaves a half-written dataset, checkpoint or report under the final name.
//!
//! One rule for every file rensou writes in a run or study directory: **it never writes through
//! a symbolic link it did not create.** A directory is often shared (a cluster's scratch space),
//! and a link planted where rensou writes would otherwise redirect its output into any file the
//! user can write. Whole files are replaced (a new temporary file, created exclusively, renamed
//! over the name: a link there is replaced, its target untouched); files that are kept open or
//! appended to (locks, logs) are opened with `O_NOFOLLOW` and refused with
//! [`Error::PlantedLink`] when the name is a link. Directories are followed: a study may live
//! on another disk through a link its owner made.

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

/// `OpenOptions` that refuse to open a symbolic link at the path's last component.
fn no_follow(opts: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    opts
}

/// Whether `path` itself (not what it points to) is a symbolic link.
pub fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Maps an open error: a link at the path (`ELOOP` under `O_NOFOLLOW`) is
/// [`Error::PlantedLink`], anything else an I/O error with `action`.
fn open_error(action: &'static str, path: &Path, e: std::io::Error) -> Error {
    if is_symlink(path) {
        Error::PlantedLink {
            path: path.to_path_buf(),
        }
    } else {
        Error::io(action, path, e)
    }
}

/// Opens `path` to append to it, creating it when missing, and refusing a symbolic link there
/// ([`Error::PlantedLink`]); for logs and other files that grow.
pub fn open_append(path: &Path) -> Result<fs::File> {
    no_follow(fs::OpenOptions::new().create(true).append(true))
        .open(path)
        .map_err(|e| open_error("cannot open", path, e))
}

/// Creates the temporary file for `target` exclusively: whatever stands at its name (a file
/// left by a killed process of the same id, or a planted link) is removed first, never
/// written through.
fn create_temp(target: &Path) -> Result<PathBuf> {
    let tmp = temp_path_for(target);
    if fs::symlink_metadata(&tmp).is_ok() {
        fs::remove_file(&tmp).map_err(|e| Error::io("cannot remove stale", &tmp, e))?;
    }
    no_follow(fs::OpenOptions::new().write(true).create_new(true))
        .open(&tmp)
        .map_err(|e| open_error("cannot create", &tmp, e))?;
    Ok(tmp)
}

/// Calls `write` with a temporary path beside `target`, then renames it onto `target`.
/// On error (or panic) the temporary file is removed and `target` is untouched. The temporary
/// file is created (empty) before `write` runs, so `write` opens a file this process made; a
/// symbolic link at `target` is replaced, never written through.
pub fn write_atomically<T>(target: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
    }
    let tmp = create_temp(target)?;
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
        no_follow(
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .open(path)
        .map_err(|e| open_error("cannot open lock file", path, e))
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
        if is_symlink(path) {
            return None;
        }
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

    #[cfg(unix)]
    #[test]
    fn planted_links_are_never_written_through() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let decoy = dir.path().join("decoy.txt");
        fs::write(&decoy, b"precious").unwrap();
        // A lock file and a log that are links: refused, the decoy untouched.
        let lock = dir.path().join("t.lock");
        symlink(&decoy, &lock).unwrap();
        let e = FileLock::try_acquire(&lock).err().expect("refused");
        assert!(matches!(e, Error::PlantedLink { .. }), "{e}");
        assert!(e.to_string().contains("t.lock"), "{e}");
        let log = dir.path().join("t.log");
        symlink(&decoy, &log).unwrap();
        assert!(matches!(open_append(&log), Err(Error::PlantedLink { .. })));
        // A link at the target is replaced; one at the temporary name is removed first.
        let target = dir.path().join("out.json");
        symlink(&decoy, &target).unwrap();
        symlink(&decoy, temp_path_for(&target)).unwrap();
        write_bytes_atomically(&target, b"mine").unwrap();
        assert!(!is_symlink(&target));
        assert_eq!(fs::read(&target).unwrap(), b"mine");
        assert_eq!(fs::read(&decoy).unwrap(), b"precious");
        assert!(!temp_path_for(&target).exists());
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
