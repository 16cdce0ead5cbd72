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

#[cfg(test)]
mod tests {
    use super::*;

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
