//! The run directory: resolved config, metrics log, grids and checkpoints.
//!
//! ```text
//! RUN/config.toml                      the resolved RunConfig
//! RUN/metrics.jsonl                    one EpochMetrics JSON line per completed epoch
//! RUN/grids/epoch-NNN.png              reconstruction / cross-generation grids
//! RUN/tensorboard/                    TensorBoard event files ([`crate::events`])
//! RUN/snapshots/epoch-NNN/             the model of an epoch kept for probing ([`crate::snapshot`])
//! RUN/checkpoints/epoch-NNN/           the last two complete epochs (older ones are removed):
//!     model.mpk                        model record (named MessagePack, full precision)
//!     optimizer.mpk                    optimizer record (Adam moments, step counts)
//!     state.json                       epoch, metrics so far, config, versions, and the size
//!                                      and FNV-1a hash of both records
//! ```
//!
//! A checkpoint directory is filled under a temporary name and renamed into place, so a
//! directory called `epoch-NNN` is always complete, even after a `SIGKILL`. A record damaged
//! afterwards (a truncated copy, a disk error) no longer matches the size and hash in its
//! `state.json`: loading it fails with [`Error::DamagedCheckpoint`], which names the epoch
//! before it, kept for this case.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::config::{RunConfig, RUN_CONFIG_FILE};
use super::Model;
use rensou_api::fsutil::write_bytes_atomically;
use rensou_api::{Error, Result};

/// File name of the metrics log inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Directory of the grids inside a run directory.
pub const GRIDS_DIR: &str = "grids";
/// Directory of the checkpoints inside a run directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
pub(crate) const MODEL_FILE: &str = "model.mpk";
const OPTIMIZER_FILE: &str = "optimizer.mpk";
pub(crate) const STATE_FILE: &str = "state.json";
const CHECKPOINT_FORMAT: &str = "rensou-checkpoint";
const CHECKPOINT_VERSION: u32 = 1;

/// The recorder of model and optimizer records.
pub type CheckpointRecorder = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// What one epoch measured; one line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss (`-objective`) over the epoch's pairs.
    pub train_loss: f64,
    /// Mean test loss (`-objective`, no gradient) after the epoch.
    pub test_loss: f64,
    /// Wall time of the epoch (training, test, grid, checkpoint), seconds.
    pub seconds: f64,
    /// Wall time of the training steps, seconds.
    pub train_seconds: f64,
    /// Wall time of the test pass, seconds.
    pub test_seconds: f64,
    /// Training pairs per second.
    pub samples_per_s: f64,
    /// Training pairs in the epoch.
    pub train_pairs: usize,
    /// Test pairs evaluated.
    pub test_pairs: usize,
    /// Optimisation steps in the epoch.
    pub steps: usize,
}

/// `state.json` of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Always `rensou-checkpoint`.
    pub format: String,
    /// Checkpoint format version (1).
    pub version: u32,
    /// The last completed epoch.
    pub epoch: usize,
    /// Metrics of epochs `1..=epoch`.
    pub metrics: Vec<EpochMetrics>,
    /// The config the epochs were trained under.
    pub config: RunConfig,
    /// Writer (`rensou-train 0.1.0`).
    pub created_by: String,
    /// Size and hash of each record file (`model.mpk`, `optimizer.mpk`), checked on load;
    /// absent in checkpoints written before it existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileDigest>,
}

/// Size and FNV-1a hash of a checkpoint file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Length in bytes.
    pub bytes: u64,
    /// FNV-1a (64-bit) of the contents, as 16 hex digits.
    pub fnv1a: String,
}

impl FileDigest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        FileDigest {
            bytes: data.len() as u64,
            fnv1a: format!("{:016x}", rensou_api::rng::fnv1a_bytes(data)),
        }
    }
}

/// A checkpoint found on disk.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Its directory (`RUN/checkpoints/epoch-NNN`).
    pub dir: PathBuf,
    /// Its state.
    pub state: CheckpointState,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(action, path, e)
}

pub(crate) fn epoch_dir_name(epoch: usize) -> String {
    format!("epoch-{epoch:03}")
}

pub(crate) fn parse_epoch_dir(name: &str) -> Option<usize> {
    name.strip_prefix("epoch-")?.parse().ok()
}

/// Path of the grid of `epoch`.
pub fn grid_path(run_dir: &Path, epoch: usize) -> PathBuf {
    run_dir
        .join(GRIDS_DIR)
        .join(format!("{}.png", epoch_dir_name(epoch)))
}

/// Rewrites `RUN/metrics.jsonl` atomically from `metrics` (so a resumed run never repeats the
/// lines of re-done epochs).
pub fn write_metrics(run_dir: &Path, metrics: &[EpochMetrics]) -> Result<()> {
    let mut text = String::new();
    for m in metrics {
        let line = serde_json::to_string(m).map_err(|e| Error::Data(format!("metrics: {e}")))?;
        text.push_str(&line);
        text.push('\n');
    }
    write_bytes_atomically(&run_dir.join(METRICS_FILE), text.as_bytes())?;
    Ok(())
}

/// Reads `RUN/metrics.jsonl`.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<EpochMetrics>> {
    let path = run_dir.join(METRICS_FILE);
    let text = fs::read_to_string(&path).map_err(io("cannot read", &path))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| Error::Data(format!("{}: {e}", path.display())))
        })
        .collect()
}

/// The last complete checkpoint of a run, if any.
pub fn latest_checkpoint(run_dir: &Path) -> Result<Option<Checkpoint>> {
    let dir = run_dir.join(CHECKPOINTS_DIR);
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut epochs: Vec<(usize, PathBuf)> = fs::read_dir(&dir)
        .map_err(io("cannot read", &dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            parse_epoch_dir(&name).map(|n| (n, e.path()))
        })
        .collect();
    epochs.sort();
    let Some((epoch, path)) = epochs.pop() else {
        return Ok(None);
    };
    let state_path = path.join(STATE_FILE);
    if !state_path.is_file() {
        // Never resume silently from an older epoch: say which checkpoint is damaged and how
        // to go back to the one before, as for a damaged record.
        return Err(damaged(&path, epoch, format!("{STATE_FILE} is missing")));
    }
    let text = fs::read_to_string(&state_path).map_err(io("cannot read", &state_path))?;
    let state: CheckpointState = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
        path: state_path.clone(),
        message: e.to_string(),
    })?;
    if state.format != CHECKPOINT_FORMAT
        || state.version != CHECKPOINT_VERSION
        || state.epoch != epoch
        || state.metrics.len() != epoch
    {
        return Err(Error::Checkpoint {
            path: state_path,
            message: format!(
                "not a {CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION} state of epoch {epoch} with \
                 {epoch} metric lines"
            ),
        });
    }
    Ok(Some(Checkpoint { dir: path, state }))
}

/// Removes what a killed run left half-written: temporary checkpoint directories and the
/// temporary files of atomic writes (`.NAME.tmp-PID`) in the run and grid directories.
pub fn remove_partial_files(run_dir: &Path) -> Result<()> {
    for dir in [
        run_dir.join(CHECKPOINTS_DIR),
        run_dir.join(GRIDS_DIR),
        run_dir.join(crate::snapshot::SNAPSHOTS_DIR),
        run_dir.to_path_buf(),
    ] {
        if !dir.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&dir)
            .map_err(io("cannot read", &dir))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with('.') && name.contains(".tmp-")) {
                continue;
            }
            let p = entry.path();
            if p.is_dir() {
                fs::remove_dir_all(&p).map_err(io("cannot remove", &p))?;
            } else {
                fs::remove_file(&p).map_err(io("cannot remove", &p))?;
            }
        }
    }
    Ok(())
}

fn record_bytes<B: Backend, R: Record<B>>(record: R, what: &Path) -> Result<Vec<u8>> {
    CheckpointRecorder::default()
        .record(record, ())
        .map_err(|e| Error::Checkpoint {
            path: what.to_path_buf(),
            message: e.to_string(),
        })
}

fn load_record<B: Backend, R: Record<B>>(
    ckpt: &Checkpoint,
    file: &str,
    device: &B::Device,
) -> Result<R> {
    let path = &ckpt.dir.join(file);
    let bytes = fs::read(path).map_err(io("cannot read", path))?;
    if let Some(expected) = ckpt.state.files.get(file) {
        let found = FileDigest::of(&bytes);
        if &found != expected {
            let problem = if found.bytes == expected.bytes {
                format!(
                    "{file} does not match the hash written with it ({} vs {})",
                    found.fnv1a, expected.fnv1a
                )
            } else {
                format!(
                    "{file} has {} bytes, {} were written",
                    found.bytes, expected.bytes
                )
            };
            return Err(ckpt.damaged(problem));
        }
    }
    CheckpointRecorder::default()
        .load(bytes, device)
        .map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string().replace('\n', " "),
        })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).map_err(io("cannot create", path))?;
    f.write_all(bytes).map_err(io("cannot write", path))?;
    f.sync_all().map_err(io("cannot sync", path))
}

/// Writes the checkpoint of `state.epoch` (model record, optimizer record, state) atomically
/// and removes older checkpoints.
pub fn save_checkpoint<B: Backend, M: Module<B>, R: Record<B>>(
    run_dir: &Path,
    model: &M,
    optimizer: R,
    state: &CheckpointState,
) -> Result<PathBuf> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    fs::create_dir_all(&root).map_err(io("cannot create", &root))?;
    let name = epoch_dir_name(state.epoch);
    let tmp = root.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io("cannot remove", &tmp))?;
    }
    fs::create_dir(&tmp).map_err(io("cannot create", &tmp))?;
    let result = (|| {
        let model_bytes = record_bytes::<B, _>(model.clone().into_record(), &tmp.join(MODEL_FILE))?;
        write_synced(&tmp.join(MODEL_FILE), &model_bytes)?;
        let optim_bytes = record_bytes::<B, _>(optimizer, &tmp.join(OPTIMIZER_FILE))?;
        write_synced(&tmp.join(OPTIMIZER_FILE), &optim_bytes)?;
        let mut state = state.clone();
        state.files = BTreeMap::from([
            (MODEL_FILE.to_owned(), FileDigest::of(&model_bytes)),
            (OPTIMIZER_FILE.to_owned(), FileDigest::of(&optim_bytes)),
        ]);
        let json = serde_json::to_vec_pretty(&state)
            .map_err(|e| Error::Data(format!("checkpoint state: {e}")))?;
        write_synced(&tmp.join(STATE_FILE), &json)?;
        if let Ok(d) = fs::File::open(&tmp) {
            let _ = d.sync_all();
        }
        let target = root.join(&name);
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io("cannot remove", &target))?;
        }
        fs::rename(&tmp, &target).map_err(io("cannot rename into", &target))?;
        if let Ok(d) = fs::File::open(&root) {
            let _ = d.sync_all();
        }
        Ok(target)
    })();
    let target = match result {
        Ok(t) => t,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // Older checkpoints are superseded; the one before is kept in case this one is damaged later.
    for entry in fs::read_dir(&root)
        .map_err(io("cannot read", &root))?
        .flatten()
    {
        let n = entry.file_name().to_string_lossy().into_owned();
        if parse_epoch_dir(&n).is_some_and(|e| e + 1 < state.epoch) {
            let p = entry.path();
            fs::remove_dir_all(&p).map_err(io("cannot remove", &p))?;
        }
    }
    Ok(target)
}

impl Checkpoint {
    /// Loads the model record into `model` (built from the same model config).
    pub fn load_model<B: Backend, M: Module<B>>(&self, model: M, device: &B::Device) -> Result<M> {
        let record = load_record::<B, M::Record>(self, MODEL_FILE, device)?;
        Ok(model.load_record(record))
    }

    /// Loads the optimizer record.
    pub fn load_optimizer<B: Backend, R: Record<B>>(&self, device: &B::Device) -> Result<R> {
        load_record::<B, R>(self, OPTIMIZER_FILE, device)
    }

    /// The error for a damaged record of this checkpoint, naming the way back.
    fn damaged(&self, problem: String) -> Error {
        damaged(&self.dir, self.state.epoch, problem)
    }
}

/// The error for the damaged checkpoint of `epoch` in `dir`, naming the way back (the previous
/// epoch's checkpoint, when one is kept).
fn damaged(dir: &Path, epoch: usize, problem: String) -> Error {
    let run_dir = dir
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
    let previous = epoch.checked_sub(1).filter(|&p| {
        p > 0
            && dir
                .with_file_name(epoch_dir_name(p))
                .join(STATE_FILE)
                .is_file()
    });
    let remedy = match previous {
        Some(p) => format!(
            "to resume from epoch {p}, move {} out of the way and run `rensou train --out {} \
             --resume` again",
            dir.display(),
            run_dir.display()
        ),
        None => "no earlier checkpoint is kept, so the run must start again".to_owned(),
    };
    Error::DamagedCheckpoint {
        epoch,
        dir: dir.to_path_buf(),
        problem,
        remedy,
    }
}

/// A new checkpoint state.
pub fn new_state(epoch: usize, metrics: Vec<EpochMetrics>, config: RunConfig) -> CheckpointState {
    CheckpointState {
        format: CHECKPOINT_FORMAT.into(),
        version: CHECKPOINT_VERSION,
        epoch,
        metrics,
        config,
        created_by: concat!("rensou-train ", env!("CARGO_PKG_VERSION")).into(),
        files: BTreeMap::new(),
    }
}

/// Rebuilds the trained model of a run: the model from the config stored with its last
/// complete checkpoint (the one its parameters were trained under), the data file from
/// `RUN/config.toml` (which a resumed run may change). For inference and analyses (any
/// backend, no optimizer). [`load_run_with_epoch`] also says which epoch it loaded.
pub fn load_run<B: Backend>(run_dir: &Path, device: &B::Device) -> Result<(Model<B>, RunConfig)> {
    load_run_with_epoch(run_dir, device).map(|(model, config, _)| (model, config))
}

/// [`load_run`], with the epoch of the checkpoint loaded.
pub fn load_run_with_epoch<B: Backend>(
    run_dir: &Path,
    device: &B::Device,
) -> Result<(Model<B>, RunConfig, usize)> {
    let mut config = RunConfig::read(&run_dir.join(RUN_CONFIG_FILE))?;
    let checkpoint = latest_checkpoint(run_dir)?.ok_or_else(|| Error::NoCheckpoint {
        dir: run_dir.to_path_buf(),
    })?;
    let trained = &checkpoint.state.config;
    trained.validate()?;
    if config.model != trained.model || config.data.modalities != trained.data.modalities {
        // The model must be the one the parameters belong to (burn does not check shapes).
        config.model = trained.model.clone();
        config.data.modalities = trained.data.modalities.clone();
    }
    crate::memory::check(
        "loading the model",
        &crate::memory::model_estimate(&config.model),
    )?;
    let model = config.model.init::<B>(device)?;
    let model = checkpoint.load_model::<B, _>(model, device)?;
    Ok((model, config, checkpoint.state.epoch))
}
