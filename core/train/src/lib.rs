//! rensou-train: the training loop (batches, optimiser, per-epoch metrics, grids, checkpoints
//! and resume), the probes' access to a trained run ([`analysis`]) and the memory estimates
//! ([`memory`]) every command checks before it starts.
//!
//! [`train`] runs a [`RunConfig`] into a run directory (layout in [`checkpoint`]) on any
//! autodiff backend; the binary picks the backend. A run is a pure function of its config:
//!
//! - the model is initialised after seeding the backend with `derive_seed(seed, ["init"])`;
//! - epoch `n` visits the training pairs in the order [`epoch_order`] gives
//!   (`derive_seed(seed, ["epoch", n])`) and re-seeds the backend's random stream (the
//!   objective's sampling noise) with `derive_seed(seed, ["epoch", n, "backend"])` first;
//! - the test pass re-seeds with `["epoch", n, "test"]`.
//!
//! So the state after epoch `n` depends only on the state after epoch `n - 1`, the seed and
//! `n`: resuming from the checkpoint of epoch `n - 1` gives the same epoch `n` as an
//! uninterrupted run (bit-identical on CPU).
//!
//! Data stay bytes in memory ([`PairedData`]) and are turned into float batches per step.
//! The loss is checked for NaN/Inf every `check_every` steps (1 on CPU; the binary uses ~50 on
//! GPUs, where each check is a host synchronisation) and at the end of each epoch; a
//! non-finite loss stops the run with [`Error::NonFinite`], leaving the last good
//! checkpoint in place.

#![warn(missing_docs)]

pub mod analysis;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod events;
pub mod grid;
pub mod memory;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};

pub use checkpoint::{
    grid_path, latest_checkpoint, load_run, load_run_with_epoch, read_metrics, Checkpoint,
    CheckpointState, EpochMetrics, CHECKPOINTS_DIR, GRIDS_DIR, METRICS_FILE,
};
pub use config::{
    DataConfig, DataSpec, ModalitySpec, ModelSpec, NetChoice, NetSpec, Overrides, PriorSpec,
    RunConfig, RunSpec, TrainingConfig, TrainingSpec, MAX_BATCH_SIZE, MAX_K, MAX_SEED,
    RUN_CONFIG_FILE,
};
pub use data::{epoch_order, subset_indices, PairedData, SplitData};

use rensou_api::fsutil::write_bytes_atomically;
use rensou_api::progress::{NoProgress, Progress};
use rensou_api::rng::derive_seed;
use rensou_api::{Error, Result};
use rensou_model::mmvae::{paper_adam, train_step, Mmvae};
use rensou_model::nn::{AnyDecoder, AnyEncoder};

/// The model a run trains: the MMVAE with the built-in nets its config names.
pub type Model<B> = Mmvae<B, AnyEncoder<B>, AnyDecoder<B>>;

/// The optimizer a run uses (Adam, AMSGrad per config).
pub type RunOptimizer<B> = OptimizerAdaptor<Adam, Model<B>, B>;

/// How [`train`] runs (not part of the config: nothing here changes the results).
pub struct TrainOptions<'a> {
    /// Continue the run in the directory from its last complete checkpoint.
    pub resume: bool,
    /// Read the loss back (and check it for NaN) every this many steps; 1 on CPU, ~50 on GPU.
    pub check_every: usize,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Epochs whose model is kept as a snapshot (`RUN/snapshots/epoch-NNN`, see [`snapshot`])
    /// for probing the run as it learned; empty: none.
    pub keep_epochs: &'a [usize],
}

impl Default for TrainOptions<'_> {
    fn default() -> Self {
        TrainOptions {
            resume: false,
            check_every: 1,
            progress: &NoProgress,
            keep_epochs: &[],
        }
    }
}

/// What a finished [`train`] call did.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The epoch the run started from (0: a new run).
    pub resumed_from: usize,
    /// Metrics of every epoch of the run (including epochs before the resume).
    pub metrics: Vec<EpochMetrics>,
    /// The run directory.
    pub run_dir: PathBuf,
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io("cannot read", dir, e)),
    }
}

/// Checks the run directory without writing to it: a new run needs an empty (or absent)
/// directory; a resumed one needs the run's `config.toml`, whose model and modalities must equal
/// `config`'s. Returns the last complete checkpoint (resume only).
fn inspect_run_dir(dir: &Path, config: &RunConfig, resume: bool) -> Result<Option<Checkpoint>> {
    let config_path = dir.join(RUN_CONFIG_FILE);
    if resume {
        if !config_path.is_file() {
            return Err(Error::NothingToResume {
                file: RUN_CONFIG_FILE,
                dir: dir.to_path_buf(),
            });
        }
        let stored = RunConfig::read(&config_path)?;
        if let Some(field) = config.checkpoint_conflict(&stored) {
            return Err(Error::ResumeMismatch {
                dir: dir.to_path_buf(),
                field,
            });
        }
        let checkpoint = latest_checkpoint(dir)?;
        if let Some(c) = &checkpoint {
            // The parameters belong to the model they were trained as (burn loads a record of
            // another shape without a word).
            if let Some(field) = config.checkpoint_conflict(&c.state.config) {
                return Err(Error::ResumeMismatch {
                    dir: dir.to_path_buf(),
                    field,
                });
            }
        }
        Ok(checkpoint)
    } else {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Data(format!(
                "--out {} is a file, not a run directory",
                dir.display()
            )));
        }
        if !is_empty_dir(dir)? {
            return Err(Error::RunDirNotEmpty {
                dir: dir.to_path_buf(),
            });
        }
        Ok(None)
    }
}

/// Writes the run directory once the run can start: creates it (new run) or removes what a
/// killed run left half-written (resume), then writes `config` as `RUN/config.toml`.
fn open_run_dir(dir: &Path, config: &RunConfig, resume: bool) -> Result<()> {
    if resume {
        checkpoint::remove_partial_files(dir)?;
    } else {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    write_bytes_atomically(&dir.join(RUN_CONFIG_FILE), config.to_toml()?.as_bytes())
}

/// Pairs a run keeps in memory (train + test, after the configured subsets), read from the data
/// file's metadata without loading the items.
fn pairs_in_memory(config: &RunConfig) -> Result<u64> {
    let file = rensou_store::DatasetFile::open(&config.data.file)?;
    let t = &config.training;
    let mut pairs = 0u64;
    for (split, max) in [
        (rensou_api::Split::Train, t.max_train_pairs),
        (rensou_api::Split::Test, t.max_test_pairs),
    ] {
        if file.splits().contains(&split) {
            let n = file.pairs(split)?;
            pairs += max.map_or(n, |m| m.min(n)) as u64;
        }
    }
    Ok(pairs)
}

fn check_finite(
    what: &'static str,
    value: f64,
    epoch: usize,
    (first_step, step): (usize, usize),
    last_good: usize,
) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite {
            what,
            value,
            epoch,
            step,
            first_step,
            last_good,
        })
    }
}

/// Trains `config` into `run_dir` on `device` (see the module docs). Returns the metrics of
/// every epoch; errors leave the last complete checkpoint in place.
pub fn train<B: AutodiffBackend>(
    config: &RunConfig,
    run_dir: &Path,
    device: &B::Device,
    options: &TrainOptions<'_>,
) -> Result<TrainOutcome> {
    config.validate()?;
    let progress = options.progress;
    let check_every = options.check_every.max(1);
    // Everything is checked before anything is written: a run that cannot start leaves the
    // directory as it was (no stub config, no config pointing at the wrong data).
    let checkpoint = inspect_run_dir(run_dir, config, options.resume)?;
    crate::memory::check(
        "training",
        &crate::memory::training_estimate(config, pairs_in_memory(config)?),
    )?;
    let t = &config.training;
    let seed = t.seed;
    let objective = config.objective();

    progress.message(&format!("reading {}", config.data.file.display()));
    let data = PairedData::load(config)?;
    let (n_train, n_test) = (data.train.len(), data.test.len());

    B::seed(device, derive_seed(seed, &["init"]));
    let mut model: Model<B> = config.model.init::<B>(device)?;
    let adam = paper_adam().with_amsgrad(t.amsgrad);
    let mut optim: RunOptimizer<B> = adam.init::<B, Model<B>>();
    let mut metrics: Vec<EpochMetrics> = Vec::new();
    let mut start = 1;
    if let Some(ckpt) = &checkpoint {
        model = ckpt.load_model::<B, _>(model, device)?;
        let record =
            ckpt.load_optimizer::<B, <RunOptimizer<B> as Optimizer<Model<B>, B>>::Record>(device)?;
        optim = optim.load_record(record);
        metrics = ckpt.state.metrics.clone();
        start = ckpt.state.epoch + 1;
        if options.keep_epochs.contains(&ckpt.state.epoch) {
            // Killed between writing this checkpoint and keeping it.
            snapshot::keep(run_dir, ckpt)?;
        }
        progress.message(&format!(
            "resuming {} after epoch {}",
            run_dir.display(),
            ckpt.state.epoch
        ));
    }
    let resumed_from = start - 1;
    // Modalities that present decoded items in other forms (sound as WAV) beside the grid;
    // read before the directory is written.
    let presenters = grid_presenters(config)?;
    open_run_dir(run_dir, config, options.resume)?;
    checkpoint::write_metrics(run_dir, &metrics)?;
    let mut events = events::RunEvents::open(run_dir)?;

    let grid_indices = data.test.grid_indices();
    let grid_bytes: Vec<Vec<u8>> = data
        .test
        .sets
        .iter()
        .map(|s| {
            grid_indices
                .iter()
                .flat_map(|&i| s.item(i).to_vec())
                .collect()
        })
        .collect();
    let mut grid_notes_shown = false;

    if start > t.epochs {
        progress.message(&format!(
            "{} already has {} epochs (asked for {}); nothing to train",
            run_dir.display(),
            resumed_from,
            t.epochs
        ));
    }

    let steps = n_train.div_ceil(t.batch_size);
    for epoch in start..=t.epochs {
        let epoch_start = Instant::now();
        let last_good = epoch - 1;
        let e = epoch.to_string();

        // --- training ---
        let order = epoch_order(n_train, seed, epoch);
        B::seed(device, derive_seed(seed, &["epoch", &e, "backend"]));
        progress.stage(&format!("epoch {epoch}/{}", t.epochs), Some(steps as u64));
        let mut loss_sum = 0.0f64;
        let mut window: Option<Tensor<B::InnerBackend, 1>> = None;
        let mut window_start = 1;
        let mut window_pairs = 0usize;
        for (s, chunk) in order.chunks(t.batch_size).enumerate() {
            let step = s + 1;
            let xs = data.train.batch::<B>(chunk, device)?;
            let lr = t.lr_at((epoch - 1) * steps + step);
            let (next, loss) = train_step(model, &mut optim, &xs, &objective, lr)?;
            model = next;
            let weighted = loss.mul_scalar(chunk.len() as f64); // [1]
            window_pairs += chunk.len();
            window = Some(match window.take() {
                Some(acc) => acc.add(weighted),
                None => weighted,
            });
            if step % check_every == 0 || step == steps {
                if let Some(acc) = window.take() {
                    let v: f64 = acc.into_scalar().elem();
                    check_finite("training loss", v, epoch, (window_start, step), last_good)?;
                    loss_sum += v;
                    events.step(
                        (epoch - 1) * steps + step,
                        v / window_pairs.max(1) as f64,
                        lr,
                    )?;
                    window_pairs = 0;
                }
                window_start = step + 1;
            }
            progress.advance(1);
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let train_loss = loss_sum / n_train as f64;

        // --- test ---
        let test_start = Instant::now();
        let valid = model.valid();
        B::InnerBackend::seed(device, derive_seed(seed, &["epoch", &e, "test"]));
        let test_steps = n_test.div_ceil(t.batch_size);
        progress.stage("test", Some(test_steps as u64));
        let mut test_sum: Option<Tensor<B::InnerBackend, 1>> = None;
        let test_order: Vec<usize> = (0..n_test).collect();
        for chunk in test_order.chunks(t.batch_size) {
            let xs = data.test.batch::<B::InnerBackend>(chunk, device)?;
            let value = valid.objective(&xs, &objective)?.value.sum(); // [1]
            test_sum = Some(match test_sum.take() {
                Some(acc) => acc.add(value),
                None => value,
            });
            progress.advance(1);
        }
        let test_loss = match test_sum {
            Some(acc) => -acc.into_scalar().elem::<f64>() / n_test as f64,
            None => f64::NAN,
        };
        check_finite(
            "test loss",
            test_loss,
            epoch,
            (test_steps, test_steps),
            last_good,
        )?;
        let test_seconds = test_start.elapsed().as_secs_f64();

        // --- grid ---
        let grid_due = epoch == t.epochs || (t.grid_every > 0 && epoch % t.grid_every == 0);
        if grid_due && !grid_indices.is_empty() {
            let inputs = data.test.batch::<B::InnerBackend>(&grid_indices, device)?;
            let mut notes = Vec::new();
            let png_path = grid_path(run_dir, epoch);
            let mut present = |d: grid::Decoded<'_>| {
                write_presented(
                    &presenters,
                    &config.model.modalities,
                    &data.test,
                    &grid_indices,
                    &png_path,
                    d,
                )
            };
            if let Some(png) =
                grid::render_grid(&valid, &inputs, &grid_bytes, &mut notes, &mut present)?
            {
                grid::write_png(&png_path, &png)?;
                events.grid(&png, epoch)?;
            }
            if !grid_notes_shown {
                for n in &notes {
                    progress.message(n);
                }
                grid_notes_shown = true;
            }
        }

        // --- checkpoint and metrics ---
        metrics.push(EpochMetrics {
            epoch,
            train_loss,
            test_loss,
            seconds: epoch_start.elapsed().as_secs_f64(),
            train_seconds,
            test_seconds,
            samples_per_s: n_train as f64 / train_seconds.max(1e-9),
            train_pairs: n_train,
            test_pairs: n_test,
            steps,
        });
        let state = checkpoint::new_state(epoch, metrics.clone(), config.clone());
        let saved =
            checkpoint::save_checkpoint::<B, _, _>(run_dir, &model, optim.to_record(), &state)?;
        if options.keep_epochs.contains(&epoch) {
            snapshot::keep(run_dir, &Checkpoint { dir: saved, state })?;
        }
        if let Some(m) = metrics.last_mut() {
            // The epoch's wall time includes writing its checkpoint.
            m.seconds = epoch_start.elapsed().as_secs_f64();
        }
        checkpoint::write_metrics(run_dir, &metrics)?;
        if let Some(m) = metrics.last() {
            events.epoch(m)?;
            progress.message(&format!(
                "epoch {epoch}/{}: train loss {:.2}, test loss {:.2}, {:.1} s ({:.0} pairs/s)",
                t.epochs, m.train_loss, m.test_loss, m.seconds, m.samples_per_s
            ));
        }
    }
    Ok(TrainOutcome {
        resumed_from,
        metrics,
        run_dir: run_dir.to_path_buf(),
    })
}

/// Per modality of the run (in model order): its dataset config, which may present decoded
/// items in other forms than pictures
/// ([`ModalityConfig::preview_files`](rensou_api::ModalityConfig::preview_files)), or `None` when
/// the dataset's stored config cannot be read (files written by other tools present nothing).
fn grid_presenters(config: &RunConfig) -> Result<Vec<Option<Box<dyn rensou_api::ModalityConfig>>>> {
    let mut configs = rensou_store::DatasetFile::open(&config.data.file)?
        .modality_configs()
        .unwrap_or_default();
    Ok(config
        .model
        .modalities
        .iter()
        .map(|m| configs.remove(&m.name))
        .collect())
}

/// Writes the files presenting one decoded grid block (e.g. WAVs of decoded sounds) into
/// `<grid stem>-<target>/<source>-to-<target>-n<number>.<ext>` beside the grid PNG.
fn write_presented(
    presenters: &[Option<Box<dyn rensou_api::ModalityConfig>>],
    specs: &[rensou_model::mmvae::ModalityNetConfig],
    test: &data::SplitData,
    shown: &[usize],
    png_path: &Path,
    d: grid::Decoded<'_>,
) -> Result<()> {
    let Some(config) = presenters.get(d.target).and_then(Option::as_ref) else {
        return Ok(());
    };
    let (source, target) = (&specs[d.source], &specs[d.target]);
    let features = target.item_shape.iter().product::<usize>().max(1);
    let numbers = test.sets.iter().find_map(|s| s.label("number").ok());
    let stem = png_path
        .file_stem()
        .map_or_else(|| "grid".into(), |s| s.to_string_lossy().into_owned());
    let dir = png_path.with_file_name(format!("{stem}-{}", target.name));
    for (k, item) in d.values.chunks(features).take(shown.len()).enumerate() {
        let tag = numbers.map_or(format!("item{k}"), |n| format!("n{}", n[shown[k]]));
        let name = format!("{}-to-{}-{tag}", source.name, target.name);
        config.write_preview_files(&target.item_shape, item, &dir, &name)?;
    }
    Ok(())
}

/// The modality names and item shapes of a dataset file's training split, in file order (what
/// [`RunSpec::resolve`] needs).
pub fn dataset_modalities(path: &Path) -> Result<Vec<DatasetModality>> {
    modalities_of(&rensou_store::DatasetFile::open(path)?)
}

/// [`dataset_modalities`] of a dataset file already open.
pub(crate) fn modalities_of(file: &rensou_store::DatasetFile) -> Result<Vec<DatasetModality>> {
    let split = if file.splits().contains(&rensou_api::Split::Train) {
        rensou_api::Split::Train
    } else {
        rensou_api::Split::Test
    };
    file.modalities()
        .iter()
        .map(|m| {
            let info = file.modality_info(split, m)?;
            Ok(DatasetModality {
                name: m.clone(),
                item_shape: info.item_shape,
                suggested_net: info.suggested_net,
                suggested_likelihood: info.suggested_likelihood,
            })
        })
        .collect()
}

/// A modality of a dataset file as training sees it: its item shape and what it suggests.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetModality {
    /// Its name.
    pub name: String,
    /// Shape of one item.
    pub item_shape: Vec<usize>,
    /// The net it suggests (used when the config names none).
    pub suggested_net: Option<rensou_api::NetKind>,
    /// The likelihood it suggests (used when the config names none).
    pub suggested_likelihood: Option<rensou_api::Likelihood>,
}

impl DatasetModality {
    /// A modality with no suggestions (an MLP and the default likelihood).
    pub fn new(name: &str, item_shape: &[usize]) -> Self {
        DatasetModality {
            name: name.to_owned(),
            item_shape: item_shape.to_vec(),
            suggested_net: None,
            suggested_likelihood: None,
        }
    }
}
