//! A run's TensorBoard event files, `RUN/tensorboard/`, written as it trains:
//!
//! - `train/loss` and `train/lr` at every step whose loss is read back (every step on the CPU,
//!   every `check_every` steps on a GPU), at the global step: the mean loss per pair of the
//!   steps since the last read-back, and the learning rate of that step;
//! - `epoch/train_loss`, `epoch/test_loss`, `epoch/samples_per_s`, `epoch/seconds` at the epoch
//!   (the same numbers as `metrics.jsonl`), and the epoch's grid as the image `grid`;
//! - `probe/<probe>/<metric>/<of>` for every scalar a probe declares, at the epoch of the model
//!   probed (a run's snapshots log into the run's own files: [`crate::snapshot`]).
//!
//! `tensorboard --logdir RUN` shows one run; `tensorboard --logdir STUDY/runs` every model and
//! seed of a study side by side. A resumed run appends to the same directory and drops any step
//! already written ([`rensou_tboard::EventWriter::resume`]), so its curves continue without a
//! repeated or backward step.

use std::path::{Path, PathBuf};

use rensou_api::probe::Scalars;
use rensou_api::{Error, Result};
use rensou_tboard::EventWriter;

use crate::checkpoint::EpochMetrics;
use crate::snapshot::SNAPSHOTS_DIR;

/// Directory of the event files inside a run directory.
pub const TENSORBOARD_DIR: &str = "tensorboard";

fn tb_error(dir: &Path, e: rensou_tboard::Error) -> Error {
    Error::Data(format!(
        "cannot write TensorBoard events in {}: {e}",
        dir.display()
    ))
}

/// The event files of the run in `run_dir`.
pub struct RunEvents {
    dir: PathBuf,
    writer: EventWriter,
}

impl RunEvents {
    /// Opens (or continues) the event files of the run in `run_dir`.
    pub fn open(run_dir: &Path) -> Result<Self> {
        let dir = run_dir.join(TENSORBOARD_DIR);
        let writer = EventWriter::resume(&dir).map_err(|e| tb_error(&dir, e))?;
        Ok(RunEvents { dir, writer })
    }

    /// Logs a step's loss (per pair) and learning rate at global step `step`.
    pub fn step(&mut self, step: usize, loss: f64, lr: f64) -> Result<()> {
        let s = step as i64;
        self.writer
            .add_scalars(&[("train/loss", loss), ("train/lr", lr)], s)
            .map_err(|e| tb_error(&self.dir, e))?;
        Ok(())
    }

    /// Logs an epoch's metrics (as in `metrics.jsonl`).
    pub fn epoch(&mut self, m: &EpochMetrics) -> Result<()> {
        self.writer
            .add_scalars(
                &[
                    ("epoch/train_loss", m.train_loss),
                    ("epoch/test_loss", m.test_loss),
                    ("epoch/samples_per_s", m.samples_per_s),
                    ("epoch/seconds", m.seconds),
                ],
                m.epoch as i64,
            )
            .map_err(|e| tb_error(&self.dir, e))?;
        self.writer.flush().map_err(|e| tb_error(&self.dir, e))
    }

    /// Logs an epoch's grid (PNG bytes) as the image `grid`.
    pub fn grid(&mut self, png: &[u8], epoch: usize) -> Result<()> {
        let Some((width, height, channels)) = png_dims(png) else {
            return Err(Error::Data("the grid is not a PNG".into()));
        };
        self.writer
            .add_image_png("grid", png, width, height, channels, epoch as i64)
            .map_err(|e| tb_error(&self.dir, e))?;
        Ok(())
    }

    /// Logs every scalar of `probes` (`(probe, scalars)`) at `epoch`, and flushes.
    pub fn probes(&mut self, epoch: usize, probes: &[(String, Scalars)]) -> Result<()> {
        let mut values: Vec<(String, f64)> = Vec::new();
        for (probe, scalars) in probes {
            for (metric, per) in &scalars.values {
                for (of, v) in per {
                    let tag = if of.is_empty() {
                        format!("probe/{probe}/{metric}")
                    } else {
                        format!("probe/{probe}/{metric}/{of}")
                    };
                    values.push((tag, *v));
                }
            }
        }
        let refs: Vec<(&str, f64)> = values.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.writer
            .add_scalars(&refs, epoch as i64)
            .map_err(|e| tb_error(&self.dir, e))?;
        self.writer.flush().map_err(|e| tb_error(&self.dir, e))
    }
}

/// The run whose event files a probe of `dir` logs into: the run itself, or for a snapshot
/// (`RUN/snapshots/epoch-NNN`) the run it was kept from.
pub fn owning_run(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(parent) if parent.file_name().is_some_and(|n| n == SNAPSHOTS_DIR) => parent
            .parent()
            .map_or_else(|| dir.to_path_buf(), Path::to_path_buf),
        _ => dir.to_path_buf(),
    }
}

/// Width, height and channels of a PNG from its header (None when `png` is not one).
fn png_dims(png: &[u8]) -> Option<(u32, u32, u8)> {
    if png.len() < 26 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let channels = match png[25] {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return None,
    };
    Some((be(&png[16..20]), be(&png[20..24]), channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_logs_into_its_run() {
        assert_eq!(
            owning_run(Path::new("/s/runs/m-s0/snapshots/epoch-002")),
            PathBuf::from("/s/runs/m-s0")
        );
        assert_eq!(
            owning_run(Path::new("/s/runs/m-s0")),
            PathBuf::from("/s/runs/m-s0")
        );
    }

    #[test]
    fn png_dims_read_the_header() {
        let png = rensou_plot::encode_png(&[0u8; 2 * 3 * 3], 2, 3).unwrap();
        assert_eq!(png_dims(&png), Some((2, 3, 3)));
        assert_eq!(png_dims(b"not a png at all, not at all"), None);
    }

    #[test]
    fn epochs_and_probes_are_read_back_and_resume_drops_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let m = |epoch: usize| EpochMetrics {
            epoch,
            train_loss: 10.0 - epoch as f64,
            test_loss: 11.0 - epoch as f64,
            seconds: 1.0,
            train_seconds: 0.9,
            test_seconds: 0.1,
            samples_per_s: 100.0,
            train_pairs: 64,
            test_pairs: 16,
            steps: 1,
        };
        {
            let mut ev = RunEvents::open(dir.path()).unwrap();
            ev.step(1, 5.0, 1e-3).unwrap();
            ev.epoch(&m(1)).unwrap();
        }
        {
            // Resumed after epoch 1: a repeat of epoch 1 is dropped, epoch 2 is written.
            let mut ev = RunEvents::open(dir.path()).unwrap();
            ev.epoch(&m(1)).unwrap();
            ev.epoch(&m(2)).unwrap();
        }
        let tb = dir.path().join(TENSORBOARD_DIR);
        let mut steps = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(&tb).unwrap().flatten().collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            for e in rensou_tboard::read_events(&f.path()).unwrap() {
                for (tag, v) in &e.scalars {
                    if tag == "epoch/test_loss" {
                        steps.push((e.step, *v));
                    }
                }
            }
        }
        assert_eq!(steps, vec![(1, 10.0), (2, 9.0)]);
    }
}
