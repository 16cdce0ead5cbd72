//! When number sense emerges: the probes of every model at the epochs of `--probe-epochs`.
//!
//! A run of a study with probe epochs keeps its model at each of them as a snapshot
//! (`runs/<id>/snapshots/epoch-NNN/`, [`rensou_train::snapshot`]). After the run's own probes,
//! its task probes each snapshot not probed yet (every probe but t-SNE, whose figures the
//! curves do not need), then drops the snapshot's model, keeping what the probes wrote. Each
//! snapshot is a piece of its task: a finished one (its `probes/summary.json` all ok) is
//! skipped, so an interrupted task resumes with the first snapshot not probed; the task's lock
//! makes it safe on a shared directory, and `--jobs` and Slurm run it as part of the task.

use std::path::Path;

use anyhow::bail;
use rensou_api::progress::Progress;
use rensou_api::Split;
use rensou_train::analysis::{probe_run, ProbeRunOptions};
use rensou_train::snapshot;

use super::tasks::{Study, Task};
use super::{probes_done, probes_for};
use crate::backend;
use crate::progress::Bars;

/// The probe that is not run at probe epochs: its figures are the end point's, and its one
/// claim metric (k-NN accuracy in the embedding) is not a primary one.
const SKIPPED_AT_PROBE_EPOCHS: &str = "tsne";

/// Runs `probes` on the run (or snapshot) in `dir`, with the study's shared classifiers; a
/// failed probe is an error unless `keep_going`.
pub fn run_probes(
    study: &Study,
    task: &Task,
    dir: &Path,
    probes: Vec<Box<dyn rensou_api::probe::ProbeConfig>>,
    progress: &Bars,
    keep_going: bool,
) -> anyhow::Result<()> {
    let device = backend::try_device()?;
    let summary = probe_run::<backend::Train>(
        dir,
        ProbeRunOptions {
            probes,
            split: Split::Test,
            classifier_dir: Some(study.layout().classifiers()),
            classifier: study.plan.classifier.clone(),
            seed: task.seed,
        },
        &device,
        &backend::describe(&device),
        progress,
    )?;
    progress.finish();
    for line in &summary.classifier_log {
        progress.message(&format!("  {line}"));
    }
    let failed: Vec<String> = summary
        .probes
        .iter()
        .filter(|(_, v)| v["ok"].as_bool() != Some(true))
        .map(|(name, v)| {
            format!(
                "{name} ({})",
                v["error"].as_str().unwrap_or("no reason recorded")
            )
        })
        .collect();
    for f in &failed {
        progress.message(&format!("  probe FAILED: {f}"));
    }
    if !failed.is_empty() && !keep_going {
        bail!(
            "{} probe(s) failed on {}: {} (pass --keep-going to carry on without them)",
            failed.len(),
            dir.display(),
            failed.join("; ")
        );
    }
    Ok(())
}

/// Probes every snapshot of the task's run not probed yet (see the module docs); returns how
/// many it probed.
pub fn probe_snapshots(
    study: &Study,
    task: &Task,
    progress: &Bars,
    keep_going: bool,
) -> anyhow::Result<usize> {
    let run_dir = study.run_dir(task);
    let epochs = &study.plan.probe_epochs;
    let mut probed = 0;
    for (i, &epoch) in epochs.iter().enumerate() {
        let dir = snapshot::snapshot_dir(&run_dir, epoch);
        if probes_done(&dir) {
            if snapshot::has_weights(&dir) {
                snapshot::drop_weights(&dir)?;
            }
            continue;
        }
        if !snapshot::has_weights(&dir) {
            bail!(
                "{} has no model of epoch {epoch} to probe (the run was trained without \
                 --probe-epochs {epoch}); move {} away to retrain it",
                task.id,
                run_dir.display()
            );
        }
        progress.message(&format!(
            "[seed {}] probing {} at epoch {epoch} ({} of {}) ...",
            task.seed,
            task.model.name,
            i + 1,
            epochs.len()
        ));
        let probes = probes_for(&task.model, &study.plan, &[SKIPPED_AT_PROBE_EPOCHS])?;
        progress.set_prefix(&format!(
            "point {}/{} (epoch {epoch}): ",
            i + 1,
            epochs.len()
        ));
        let result = run_probes(study, task, &dir, probes, progress, keep_going);
        progress.set_prefix("");
        result?;
        if probes_done(&dir) {
            snapshot::drop_weights(&dir)?;
        }
        probed += 1;
    }
    Ok(probed)
}
