//! Where everything of a study lives: [`StudyLayout`] names every path of a study directory, so
//! the planner, the workers, the report and the Slurm scripts agree on them and no other code
//! spells one out.
//!
//! ```text
//! OUT/plan.json                 the settings (under OUT/.plan.lock, with tasks.json and data/)
//! OUT/tasks.json                the tasks: id, model, seed, inputs and outputs
//! OUT/data/<dataset>.h5         the dataset, built once (under data/<dataset>.h5.lock)
//! OUT/classifiers/              the label classifiers every run's probes share
//! OUT/runs/<id>/                a task's run (id `<model>-s<seed>`): rensou-train's run layout
//! OUT/runs/<id>/task.json       what the task's workers measured
//! OUT/runs/<id>/snapshots/      the run at each --probe-epochs epoch, with its probes
//! OUT/runs/<id>.lock            held while a worker runs the task
//! OUT/logs/<id>.log             a task's output when it ran as a child process (`--jobs`)
//! OUT/figures/                  the report's own figures
//! OUT/report.md, report.html    the report, with OUT/summary.json (under OUT/.report.lock)
//! OUT/slurm/                    the Slurm scripts, their logs in slurm/logs/
//! ```
//!
//! Inside a run directory the names are rensou-train's ([`rensou_train::RUN_CONFIG_FILE`],
//! [`rensou_train::GRIDS_DIR`], [`rensou_train::analysis::PROBES_DIR`]).

use std::path::{Path, PathBuf};

/// The lock under which a study's plan is written.
const PLAN_LOCK: &str = ".plan.lock";
/// The settings.
const PLAN: &str = "plan.json";
/// The tasks.
const TASKS: &str = "tasks.json";
/// The dataset directory.
const DATA: &str = "data";

/// The id of the task (and name of the run directory) that trains `model` with `seed`.
pub fn task_id(model: &str, seed: u64) -> String {
    format!("{model}-s{seed}")
}

/// Every path of a study directory. [`StudyLayout::relative`] gives the same paths relative to
/// the study directory (as `tasks.json` and the report's links name them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudyLayout {
    root: PathBuf,
}

impl StudyLayout {
    /// The layout of the study directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StudyLayout { root: root.into() }
    }

    /// Paths relative to the study directory.
    pub fn relative() -> Self {
        StudyLayout::new("")
    }

    /// The study directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `plan.json`: the settings.
    pub fn plan(&self) -> PathBuf {
        self.root.join(PLAN)
    }

    /// `.plan.lock`: held while the plan, the dataset and the tasks are written.
    pub fn plan_lock(&self) -> PathBuf {
        self.root.join(PLAN_LOCK)
    }

    /// `tasks.json`: the tasks.
    pub fn tasks(&self) -> PathBuf {
        self.root.join(TASKS)
    }

    /// `data/<name>`: the dataset file `name` ([`super::Plan::dataset_name`]).
    pub fn dataset(&self, name: &str) -> PathBuf {
        self.root.join(DATA).join(name)
    }

    /// `data/<name>.lock`: held while the dataset `name` is built.
    pub fn dataset_lock(&self, name: &str) -> PathBuf {
        self.root.join(DATA).join(format!("{name}.lock"))
    }

    /// `classifiers/`: the label classifiers the runs' probes share.
    pub fn classifiers(&self) -> PathBuf {
        self.root.join("classifiers")
    }

    /// `classifiers/<modality>-<label>.json`: the record of a shared classifier (its test
    /// accuracy among others), named as rensou-train's cache names it.
    pub fn classifier_record(&self, modality: &str, label: &str) -> PathBuf {
        rensou_train::analysis::classifier_files(&self.classifiers(), modality, label).1
    }

    /// `runs/<id>/`: the run of task `id` ([`task_id`]).
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.root.join("runs").join(id)
    }

    /// `runs/<id>.lock`: held while a worker runs task `id`.
    pub fn run_lock(&self, id: &str) -> PathBuf {
        self.root.join("runs").join(format!("{id}.lock"))
    }

    /// `runs/<id>/task.json`: what the workers of task `id` measured.
    pub fn task_record(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("task.json")
    }

    /// `runs/<id>/probes/<probe>/`: what probe `probe` wrote on the run of task `id`.
    pub fn probe_dir(&self, id: &str, probe: &str) -> PathBuf {
        self.run_dir(id)
            .join(rensou_train::analysis::PROBES_DIR)
            .join(probe)
    }

    /// `runs/<id>/snapshots/epoch-NNN/probes/<probe>/`: what probe `probe` wrote on the model
    /// of task `id` at `epoch` (`--probe-epochs`); the run's own [`Self::probe_dir`] at its last
    /// epoch.
    pub fn snapshot_probe_dir(&self, id: &str, epoch: usize, probe: &str) -> PathBuf {
        rensou_train::snapshot::snapshot_dir(&self.run_dir(id), epoch)
            .join(rensou_train::analysis::PROBES_DIR)
            .join(probe)
    }

    /// `logs/`: the output of tasks run as child processes.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// `logs/<id>.log`: the output of task `id` run as a child process.
    pub fn task_log(&self, id: &str) -> PathBuf {
        self.logs().join(format!("{id}.log"))
    }

    /// `figures/`: the report's own figures.
    pub fn figures(&self) -> PathBuf {
        self.root.join("figures")
    }

    /// `figures/<name>`: one of the report's figures.
    pub fn figure(&self, name: &str) -> PathBuf {
        self.figures().join(name)
    }

    /// `report.md`.
    pub fn report_md(&self) -> PathBuf {
        self.root.join("report.md")
    }

    /// `report.html`.
    pub fn report_html(&self) -> PathBuf {
        self.root.join("report.html")
    }

    /// `summary.json`: the report's numbers.
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// `.report.lock`: held while the report is written.
    pub fn report_lock(&self) -> PathBuf {
        self.root.join(".report.lock")
    }

    /// `slurm/`: the Slurm scripts.
    pub fn slurm(&self) -> PathBuf {
        self.root.join("slurm")
    }

    /// `slurm/logs/`: the Slurm jobs' output.
    pub fn slurm_logs(&self) -> PathBuf {
        self.slurm().join("logs")
    }

    /// `slurm/tasks.sbatch`: the task array.
    pub fn slurm_tasks(&self) -> PathBuf {
        self.slurm().join("tasks.sbatch")
    }

    /// `slurm/report.sbatch`: the report job.
    pub fn slurm_report(&self) -> PathBuf {
        self.slurm().join("report.sbatch")
    }

    /// Whether `name`, an entry of the study directory, is one a study being started holds
    /// before its plan is written: the plan lock, the dataset directory, or a temporary name of
    /// the plan files (written atomically).
    pub fn is_starting_entry(name: &str) -> bool {
        let temporary = |file: &str| name.starts_with(&format!(".{file}.tmp-"));
        name == PLAN_LOCK || name == DATA || temporary(PLAN) || temporary(TASKS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_the_study_directory() {
        let l = StudyLayout::new("/s");
        let id = task_id("vae-oscn", 3);
        assert_eq!(id, "vae-oscn-s3");
        for (path, want) in [
            (l.plan(), "/s/plan.json"),
            (l.plan_lock(), "/s/.plan.lock"),
            (l.tasks(), "/s/tasks.json"),
            (l.dataset("a-b.h5"), "/s/data/a-b.h5"),
            (l.dataset_lock("a-b.h5"), "/s/data/a-b.h5.lock"),
            (l.classifiers(), "/s/classifiers"),
            (
                l.classifier_record("oscn", "number"),
                "/s/classifiers/oscn-number.json",
            ),
            (l.run_dir(&id), "/s/runs/vae-oscn-s3"),
            (l.run_lock(&id), "/s/runs/vae-oscn-s3.lock"),
            (l.task_record(&id), "/s/runs/vae-oscn-s3/task.json"),
            (l.probe_dir(&id, "tsne"), "/s/runs/vae-oscn-s3/probes/tsne"),
            (
                l.snapshot_probe_dir(&id, 5, "cluster"),
                "/s/runs/vae-oscn-s3/snapshots/epoch-005/probes/cluster",
            ),
            (l.task_log(&id), "/s/logs/vae-oscn-s3.log"),
            (l.figure("f.png"), "/s/figures/f.png"),
            (l.report_md(), "/s/report.md"),
            (l.report_html(), "/s/report.html"),
            (l.summary(), "/s/summary.json"),
            (l.report_lock(), "/s/.report.lock"),
            (l.slurm_logs(), "/s/slurm/logs"),
            (l.slurm_tasks(), "/s/slurm/tasks.sbatch"),
            (l.slurm_report(), "/s/slurm/report.sbatch"),
        ] {
            assert_eq!(path, PathBuf::from(want));
        }
        assert_eq!(
            StudyLayout::relative().run_dir(&id),
            PathBuf::from("runs/vae-oscn-s3")
        );
    }

    #[test]
    fn a_starting_study_holds_its_lock_data_and_temporary_plan_files() {
        for name in [
            ".plan.lock",
            "data",
            ".plan.json.tmp-12",
            ".tasks.json.tmp-3",
        ] {
            assert!(StudyLayout::is_starting_entry(name), "{name}");
        }
        for name in ["plan.json", "runs", "report.md", ".report.lock", "x"] {
            assert!(!StudyLayout::is_starting_entry(name), "{name}");
        }
    }
}
