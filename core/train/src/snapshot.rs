//! Snapshots: the model of chosen epochs kept beside a run, for probing the run as it learned.
//!
//! ```text
//! RUN/snapshots/epoch-NNN/             a run directory of its own, frozen at epoch NNN:
//!     config.toml                      the run's config
//!     metrics.jsonl                    the run's metrics up to epoch NNN
//!     checkpoints/epoch-NNN/model.mpk  the model record of epoch NNN (no optimizer record)
//!     checkpoints/epoch-NNN/state.json its state (as the run's checkpoint wrote it)
//! ```
//!
//! A snapshot is a run directory, so everything that reads a run (`rensou probe`,
//! [`crate::analysis::probe_run`], [`crate::load_run`]) reads it unchanged, and writes its
//! outputs (`probes/`, `latents.h5`) inside it. It costs one model record (the paper's MLP
//! MMVAE: 25 MB; the optimizer record, three times that, is not kept). The record is a hard link
//! to the checkpoint's own file where the file system allows it (no copy), else a copy; the
//! directory is filled under a temporary name and renamed into place, so `epoch-NNN` is
//! always complete. [`drop_weights`] removes the model of a snapshot once it has been probed,
//! keeping what the probes wrote: the disk a run's snapshots hold is then bounded by the ones
//! not probed yet.

use std::fs;
use std::path::{Path, PathBuf};

use rensou_api::fsutil::write_bytes_atomically;
use rensou_api::{Error, Result};

use crate::checkpoint::{
    epoch_dir_name, parse_epoch_dir, write_metrics, Checkpoint, CHECKPOINTS_DIR, MODEL_FILE,
    STATE_FILE,
};
use crate::config::RUN_CONFIG_FILE;

/// Directory of the snapshots inside a run directory.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// `RUN/snapshots/epoch-NNN`: the snapshot of `epoch`.
pub fn snapshot_dir(run_dir: &Path, epoch: usize) -> PathBuf {
    run_dir.join(SNAPSHOTS_DIR).join(epoch_dir_name(epoch))
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(action, path, e)
}

/// Keeps checkpoint `ckpt` of the run in `run_dir` as the snapshot of its epoch, unless that
/// snapshot exists already (a snapshot is never rewritten). Returns its directory.
pub fn keep(run_dir: &Path, ckpt: &Checkpoint) -> Result<PathBuf> {
    let epoch = ckpt.state.epoch;
    let target = snapshot_dir(run_dir, epoch);
    if target.is_dir() {
        return Ok(target);
    }
    let root = run_dir.join(SNAPSHOTS_DIR);
    fs::create_dir_all(&root).map_err(io("cannot create", &root))?;
    let tmp = root.join(format!(
        ".{}.tmp-{}",
        epoch_dir_name(epoch),
        std::process::id()
    ));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io("cannot remove", &tmp))?;
    }
    let result = (|| {
        let inner = tmp.join(CHECKPOINTS_DIR).join(epoch_dir_name(epoch));
        fs::create_dir_all(&inner).map_err(io("cannot create", &inner))?;
        for file in [MODEL_FILE, STATE_FILE] {
            let (from, to) = (ckpt.dir.join(file), inner.join(file));
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to).map_err(io("cannot copy", &from))?;
            }
        }
        let config = fs::read(run_dir.join(RUN_CONFIG_FILE))
            .map_err(io("cannot read", &run_dir.join(RUN_CONFIG_FILE)))?;
        write_bytes_atomically(&tmp.join(RUN_CONFIG_FILE), &config)?;
        write_metrics(&tmp, &ckpt.state.metrics)?;
        fs::rename(&tmp, &target).map_err(io("cannot rename into", &target))
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(target)
}

/// The epochs of the run in `run_dir` that have a snapshot, in order.
pub fn kept(run_dir: &Path) -> Result<Vec<usize>> {
    let root = run_dir.join(SNAPSHOTS_DIR);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut epochs: Vec<usize> = fs::read_dir(&root)
        .map_err(io("cannot read", &root))?
        .flatten()
        .filter_map(|e| parse_epoch_dir(&e.file_name().to_string_lossy()))
        .collect();
    epochs.sort_unstable();
    Ok(epochs)
}

/// Whether the snapshot in `dir` still holds its model.
pub fn has_weights(dir: &Path) -> bool {
    dir.join(CHECKPOINTS_DIR).is_dir()
}

/// Removes the model of the snapshot in `dir` (its `checkpoints/`, and the `latents.h5` a
/// probe wrote), keeping its config, metrics and probe outputs.
pub fn drop_weights(dir: &Path) -> Result<()> {
    let ckpts = dir.join(CHECKPOINTS_DIR);
    if ckpts.is_dir() {
        fs::remove_dir_all(&ckpts).map_err(io("cannot remove", &ckpts))?;
    }
    let latents = dir.join("latents.h5");
    if latents.is_file() {
        fs::remove_file(&latents).map_err(io("cannot remove", &latents))?;
    }
    Ok(())
}
