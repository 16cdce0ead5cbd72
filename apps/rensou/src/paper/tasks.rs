//! The study as a plan of tasks, run by one process, by a pool of child processes, or by any
//! scheduler (Slurm: [`super::slurm`]).
//!
//! A task is one model of one seed: train it, then run every probe on it. Tasks are
//! independent; what they share is created once under a lock that survives a killed holder
//! ([`FileLock`]):
//!
//! ```text
//! OUT/plan.json, tasks.json          written by `paper plan` (under OUT/.plan.lock, with the
//!                                    dataset: a second starter waits, then finds the plan)
//! OUT/data/<modalities>.h5           built once by `paper plan` (under its .lock)
//! OUT/classifiers/<m>-<label>.mpk    trained once by the first task that needs it (own lock)
//! OUT/runs/<id>/                     the task's run; OUT/runs/<id>.lock while a worker runs it
//! OUT/runs/<id>/task.json            what the task's workers measured (seconds, host)
//! OUT/report.md, .html, summary.json written under OUT/.report.lock
//! OUT/logs/<id>.log                  a task's output when it ran as a child (`--jobs`)
//! ```
//!
//! Every file is written atomically (temporary name, rename), so a worker killed at any moment
//! leaves no half-written file, and its task resumes from its last checkpoint when run again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use rensou_api::fsutil::{write_bytes_atomically, FileLock};
use rensou_api::progress::Progress;
use rensou_store::build::build_dataset;
use serde::{Deserialize, Serialize};

use super::layout::{task_id, StudyLayout};
use super::{
    check_fusions, check_modalities, check_study_dir, emergence, ensure_mnist, models, probes_done,
    probes_for, report, train_model, ModelKind, PaperArgs, Plan, Preset, Stage,
};
use crate::backend;
use crate::progress::Bars;

/// Arguments of `rensou paper run-task`.
#[derive(Args)]
pub struct RunTaskArgs {
    /// The study directory (written by `rensou paper plan`).
    #[arg(long)]
    pub out: PathBuf,
    /// The task: its id (`mmvae-s0`, see tasks.json) or its index (Slurm's
    /// `$SLURM_ARRAY_TASK_ID`).
    #[arg(long)]
    pub task: String,
    /// Succeed even when a probe fails (its metrics are then missing from the report).
    #[arg(long)]
    pub keep_going: bool,
}

/// Arguments of `rensou paper report`.
#[derive(Args)]
pub struct ReportArgs {
    /// The study directory.
    #[arg(long)]
    pub out: PathBuf,
}

/// One task: one model of one seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    /// Position in tasks.json (the Slurm array index).
    pub index: usize,
    /// `<model>-s<seed>`, also the run directory's name.
    pub id: String,
    /// The model.
    pub model: ModelKind,
    /// The seed.
    pub seed: u64,
    /// Files it reads (relative to the study directory).
    pub inputs: Vec<PathBuf>,
    /// What it writes (relative to the study directory).
    pub outputs: Vec<PathBuf>,
}

/// What the workers of a task measured, `runs/<id>/task.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Seconds spent training, over every invocation that trained.
    pub train_seconds: f64,
    /// Seconds of the last probe run.
    pub probe_seconds: f64,
    /// Invocations that did work on it.
    pub invocations: usize,
    /// Host and process of the last one.
    pub last_worker: String,
}

/// A planned study on disk.
pub struct Study {
    /// The study directory.
    pub out: PathBuf,
    /// Its settings.
    pub plan: Plan,
    /// The dataset file.
    pub dataset: PathBuf,
    /// The dataset's modalities.
    pub modalities: Vec<String>,
    /// The models.
    pub models: Vec<ModelKind>,
    /// The tasks, seed by seed.
    pub tasks: Vec<Task>,
    /// Building the dataset, as this invocation saw it.
    pub dataset_stage: Stage,
}

/// The most seeds a study takes (the paper has 20; 1,000 keeps every file of the plan, the
/// report and a Slurm array of default size limits small).
pub const MAX_SEEDS: usize = 1_000;
/// The most tasks (models x seeds) a study takes.
pub const MAX_TASKS: usize = 10_000;
/// The most epochs per model.
pub const MAX_EPOCHS: usize = 100_000;

/// Refuses settings that cannot make a study, before anything is written: counts out of range
/// and sizes beyond the bounds above (with the flag to lower).
fn check_plan(plan: &Plan) -> anyhow::Result<()> {
    if plan.seeds == 0 || plan.epochs == 0 {
        bail!("--seeds and --epochs must be at least 1");
    }
    if plan.seeds > MAX_SEEDS {
        bail!(
            "--seeds {} is more than a study takes (at most {MAX_SEEDS}; the paper uses 20): \
             lower `--seeds`",
            plan.seeds
        );
    }
    if plan.epochs > MAX_EPOCHS {
        bail!(
            "--epochs {} is more than a study takes (at most {MAX_EPOCHS}; the paper trains 50): \
             lower `--epochs`",
            plan.epochs
        );
    }
    check_modalities(&plan.modalities)?;
    check_fusions(&plan.fusions)?;
    let tasks = plan
        .seeds
        .saturating_mul(models(&plan.modalities, &plan.fusions).len());
    if tasks > MAX_TASKS {
        bail!(
            "the study would have {tasks} tasks ({} seeds x {} models), more than {MAX_TASKS}: \
             lower `--seeds` (or use fewer --modalities / --fusions)",
            plan.seeds,
            tasks / plan.seeds.max(1)
        );
    }
    Ok(())
}

/// The settings in which plan `old` (on disk) and `new` (asked for) differ, each as
/// `name: old there, new here (--flag)`, other than those that may grow a study (seeds,
/// fusions).
fn plan_differences(old: &Plan, new: &Plan) -> Vec<String> {
    let flag = |key: &str| match key {
        "preset" | "epochs" | "k" | "objective" | "modalities" => format!(" (--{key})"),
        "warmup_steps" => " (--warmup-steps)".into(),
        "probe_epochs" => " (--probe-epochs, --probe-every)".into(),
        "max_train_pairs" => " (--max-train-pairs)".into(),
        _ => " (from the preset)".into(),
    };
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "none".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return vec!["the settings".into()];
    };
    let keys: BTreeSet<&String> = a
        .as_object()
        .into_iter()
        .chain(b.as_object())
        .flat_map(|o| o.keys())
        .collect();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "seeds" | "fusions"))
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} there, {} here{}",
                show(a.get(k)),
                show(b.get(k)),
                flag(k)
            )
        })
        .collect()
}

/// Checks `plan` against the one stored at `plan_path`, if any: the same study, or refused
/// naming every setting that differs. Returns whether a plan is stored.
fn check_stored_plan(out: &Path, plan_path: &Path, plan: &Plan) -> anyhow::Result<bool> {
    let Ok(text) = std::fs::read_to_string(plan_path) else {
        return Ok(false);
    };
    let old: Plan = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is damaged; remove it to start over",
            plan_path.display()
        )
    })?;
    // More or fewer seeds, or other fusions beside the paper's models, extend the same study:
    // every task the two plans share is the same task.
    let differences = plan_differences(&old, plan);
    if !differences.is_empty() {
        bail!(
            "{} holds a study with other settings ({}); use the same settings, another --out, \
             or remove it",
            out.display(),
            differences.join("; ")
        );
    }
    Ok(true)
}

/// Removes the plan files a failed `prepare` wrote, so that no half-written plan stays behind;
/// disarmed once the plan is complete.
struct PlanGuard {
    files: Vec<PathBuf>,
}

impl Drop for PlanGuard {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Study {
    /// Plans a study from the command line: checks the directory and the settings, writes
    /// `plan.json` (or checks it against an earlier one) and `tasks.json`, and builds the
    /// dataset once.
    pub fn prepare(args: &PaperArgs) -> anyhow::Result<Study> {
        let plan = Plan::new(args)?;
        check_plan(&plan)?;
        let out = args.out.clone().unwrap_or_else(|| {
            PathBuf::from(match plan.preset {
                Preset::Quick => "paper-quick",
                Preset::Standard => "paper-standard",
                Preset::Paper => "paper-full",
            })
        });
        let layout = StudyLayout::new(&out);
        let plan_path = layout.plan();
        // Checked before anything is written, then again under the lock (another `rensou
        // paper` may have written the plan meanwhile).
        check_study_dir(&out, &plan_path)?;
        check_stored_plan(&out, &plan_path, &plan)?;
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        // The whole plan (plan.json, the dataset, tasks.json) is made under the plan lock: a
        // second `rensou paper` started on the same directory waits here, then finds the plan.
        let _lock = FileLock::acquire(&layout.plan_lock(), |who| {
            eprintln!("waiting for {who}, which is writing the plan");
        })?;
        check_study_dir(&out, &plan_path)?;
        let mut guard = PlanGuard { files: Vec::new() };
        if !check_stored_plan(&out, &plan_path, &plan)? {
            guard.files.push(plan_path.clone());
        }
        write_bytes_atomically(&plan_path, serde_json::to_string_pretty(&plan)?.as_bytes())?;
        let dataset = layout.dataset(&plan.dataset_name());
        let t = Instant::now();
        let built = {
            let _lock = FileLock::acquire(&layout.dataset_lock(&plan.dataset_name()), |who| {
                eprintln!("waiting for {who}, which is building the dataset");
            })?;
            if dataset.is_file() {
                false
            } else {
                let env = ensure_mnist(args)?;
                let cfg = crate::data_cmd::data_config(None, Some(&plan.modalities), None)?;
                let bars = Bars::new();
                let report = build_dataset(&cfg, &env, &dataset, &bars)
                    .with_context(|| format!("cannot build {}", dataset.display()))?;
                bars.finish();
                eprintln!(
                    "dataset: {} ({} s)",
                    report
                        .splits
                        .iter()
                        .map(|(s, p, _)| format!("{s} {p} pairs"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    report.elapsed.as_secs()
                );
                true
            }
        };
        let dataset_stage = Stage {
            name: "dataset".into(),
            kind: "data".into(),
            seconds: if built {
                t.elapsed().as_secs_f64()
            } else {
                0.0
            },
            skipped: !built,
        };
        let study = Study::open(out, plan, dataset_stage)?;
        let tasks_json = serde_json::json!({
            "study": study.out,
            "dataset": study.dataset,
            "tasks": study.tasks,
        });
        write_bytes_atomically(
            &layout.tasks(),
            serde_json::to_string_pretty(&tasks_json)?.as_bytes(),
        )?;
        guard.files.clear();
        Ok(study)
    }

    /// A study planned earlier (by `paper plan` or `rensou paper`) in `out`.
    pub fn load(out: &Path) -> anyhow::Result<Study> {
        let plan_path = StudyLayout::new(out).plan();
        let text = std::fs::read_to_string(&plan_path).map_err(|_| {
            anyhow::anyhow!(
                "{} holds no planned study (no plan.json); run `rensou paper plan --out {}` first",
                out.display(),
                out.display()
            )
        })?;
        let plan: Plan = serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged", plan_path.display()))?;
        check_plan(&plan)?;
        let stage = Stage {
            name: "dataset".into(),
            kind: "data".into(),
            seconds: 0.0,
            skipped: true,
        };
        Study::open(out.to_path_buf(), plan, stage)
    }

    fn open(out: PathBuf, plan: Plan, dataset_stage: Stage) -> anyhow::Result<Study> {
        let dataset = StudyLayout::new(&out).dataset(&plan.dataset_name());
        if !dataset.is_file() {
            bail!(
                "the study's dataset {} is missing; run `rensou paper plan --out {}` to build it",
                dataset.display(),
                out.display()
            );
        }
        let modalities = rensou_store::DatasetFile::open(&dataset)?
            .modalities()
            .to_vec();
        let models = models(&modalities, &plan.fusions);
        let rel = StudyLayout::relative();
        let dataset_rel = rel.dataset(&plan.dataset_name());
        let mut tasks = Vec::new();
        for seed in 0..plan.seeds as u64 {
            for model in &models {
                let id = task_id(&model.name, seed);
                tasks.push(Task {
                    index: tasks.len(),
                    outputs: vec![rel.run_dir(&id)],
                    inputs: vec![dataset_rel.clone(), rel.classifiers()],
                    id,
                    model: model.clone(),
                    seed,
                });
            }
        }
        Ok(Study {
            out,
            plan,
            dataset,
            modalities,
            models,
            tasks,
            dataset_stage,
        })
    }

    /// The task named `key`: its id or its index.
    pub fn task(&self, key: &str) -> anyhow::Result<&Task> {
        let key = key.trim();
        let found = match key.parse::<usize>() {
            Ok(i) => self.tasks.get(i),
            Err(_) => self.tasks.iter().find(|t| t.id == key),
        };
        found.ok_or_else(|| {
            anyhow::anyhow!(
                "the study in {} has no task `{key}` (its {} tasks are 0..{} or {} ... {})",
                self.out.display(),
                self.tasks.len(),
                self.tasks.len().saturating_sub(1),
                self.tasks.first().map_or("", |t| t.id.as_str()),
                self.tasks.last().map_or("", |t| t.id.as_str())
            )
        })
    }

    /// The paths of the study directory.
    pub fn layout(&self) -> StudyLayout {
        StudyLayout::new(&self.out)
    }

    /// The run directory of `task`.
    pub fn run_dir(&self, task: &Task) -> PathBuf {
        self.layout().run_dir(&task.id)
    }

    fn lock_path(&self, task: &Task) -> PathBuf {
        self.layout().run_lock(&task.id)
    }

    /// Whether `task` is finished: trained for the plan's epochs and every probe ok.
    pub fn is_done(&self, task: &Task) -> bool {
        let run = self.run_dir(task);
        let trained = rensou_train::latest_checkpoint(&run)
            .ok()
            .flatten()
            .is_some_and(|c| c.state.epoch >= self.plan.epochs);
        trained && probes_done(&run)
    }

    /// The ids of the tasks that are not finished.
    pub fn missing(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| !self.is_done(t))
            .map(|t| t.id.clone())
            .collect()
    }
}

fn read_record(path: &Path) -> TaskRecord {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Runs one task in this process: waits while another worker runs it, then trains (resuming)
/// and probes what is not done yet. Returns whether it did any work (false: already finished).
pub fn run_task(
    study: &Study,
    task: &Task,
    progress: &Bars,
    keep_going: bool,
) -> anyhow::Result<bool> {
    let _lock = FileLock::acquire(&study.lock_path(task), |who| {
        progress.message(&format!(
            "[{}] waiting: {who} is running this task",
            task.id
        ))
    })?;
    let run_dir = study.run_dir(task);
    let plan = &study.plan;
    let t = Instant::now();
    let seed = task.seed;
    let trained = train_model(&study.dataset, &task.model, seed, plan, &run_dir, progress)?;
    progress.finish();
    let train_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // The snapshots first: each probe point logs into the run's TensorBoard files in the order
    // of its epoch.
    let snapshots = emergence::probe_snapshots(study, task, progress, keep_going)?;
    let probed = trained || !probes_done(&run_dir);
    if probed {
        progress.message(&format!("[seed {seed}] probing {} ...", task.model.name));
        let probes = probes_for(&task.model, plan, &[])?;
        emergence::run_probes(study, task, &run_dir, probes, progress, keep_going)?;
    }
    let probed = snapshots > 0 || probed;
    let probe_seconds = t.elapsed().as_secs_f64();
    if trained || probed {
        let record_path = study.layout().task_record(&task.id);
        let mut record = read_record(&record_path);
        if trained {
            record.train_seconds += train_seconds;
        }
        if probed {
            record.probe_seconds = probe_seconds;
        }
        record.invocations += 1;
        record.last_worker = FileLock::holder(&study.lock_path(task)).unwrap_or_default();
        write_bytes_atomically(
            &record_path,
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )?;
    }
    Ok(trained || probed)
}

/// How the tasks of `rensou paper` run.
pub enum Parallelism {
    /// One after another in this process.
    Sequential,
    /// `jobs` child processes at once, `threads` CPU threads each.
    Jobs {
        /// Processes at once.
        jobs: usize,
        /// CPU threads of each.
        threads: usize,
    },
    /// One child process per GPU.
    Devices(Vec<usize>),
}

impl Parallelism {
    /// From `--jobs` and `--devices`.
    pub fn from_args(args: &PaperArgs) -> anyhow::Result<Self> {
        if let Some(devices) = &args.devices {
            if !backend::IS_GPU {
                bail!(
                    "--devices needs a GPU build (cargo build --release --features cuda, or \
                     --features wgpu); on the CPU use --jobs N"
                );
            }
            if devices.is_empty() {
                bail!("--devices needs at least one GPU index");
            }
            return Ok(Parallelism::Devices(devices.clone()));
        }
        match args.jobs {
            0 => bail!("--jobs must be at least 1"),
            1 => Ok(Parallelism::Sequential),
            jobs => Ok(Parallelism::Jobs {
                jobs,
                threads: (backend::cpu_threads() / jobs).max(1),
            }),
        }
    }

    /// A note for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            Parallelism::Sequential => String::new(),
            Parallelism::Jobs { jobs, threads } => {
                format!(" ({jobs} tasks at once, {threads} threads each)")
            }
            Parallelism::Devices(d) => format!(" (one task per GPU: {d:?})"),
        }
    }

    fn slots(&self) -> Vec<Slot> {
        match self {
            Parallelism::Sequential => vec![(None, backend::cpu_threads())],
            Parallelism::Jobs { jobs, threads } => vec![(None, *threads); *jobs],
            Parallelism::Devices(d) => d.iter().map(|&i| (Some(i), 1)).collect(),
        }
    }
}

/// A slot: the GPU (if any) and CPU threads a child gets.
type Slot = (Option<usize>, usize);

/// A task running as a child process in a slot since an instant.
type Running<'a> = (Child, &'a Task, Slot, Instant);

/// Makes `cmd`'s process die with this one (Linux: the kernel sends it SIGKILL when this
/// process ends, however it ends). A killed `rensou paper --jobs N` thus stops its tasks too,
/// instead of leaving them running unseen: each resumes from its last checkpoint (every file is
/// written atomically) when the study is run again.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child's own settings.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Runs every unfinished task as a child process (`rensou paper run-task`), as many at once as
/// `parallel` allows, their output in `OUT/logs/<id>.log`. Failed tasks do not stop the others;
/// they are listed in the error once all have ended. Returns the ids of the tasks run.
pub fn run_in_processes(
    study: &Study,
    parallel: &Parallelism,
    keep_going: bool,
) -> anyhow::Result<BTreeSet<String>> {
    let exe = std::env::current_exe().context("cannot find the rensou executable")?;
    let layout = study.layout();
    let logs = layout.logs();
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let bars = Bars::new();
    let todo: Vec<&Task> = study.tasks.iter().filter(|t| !study.is_done(t)).collect();
    bars.stage("tasks", Some(todo.len() as u64));
    let mut queue = todo.into_iter();
    let mut free = parallel.slots();
    let mut running: Vec<Running<'_>> = Vec::new();
    let mut failed = Vec::new();
    let mut ran = BTreeSet::new();
    loop {
        while let Some(slot) = free.pop() {
            let Some(task) = queue.next() else {
                free.push(slot);
                break;
            };
            let log_path = layout.task_log(&task.id);
            let log = rensou_api::fsutil::open_append(&log_path)?;
            let mut cmd = Command::new(&exe);
            cmd.args(["paper", "run-task", "--task", &task.id, "--out"])
                .arg(&study.out)
                .args(keep_going.then_some("--keep-going"))
                .env("RAYON_NUM_THREADS", slot.1.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().context("cannot share the log file")?)
                .stderr(log);
            die_with_parent(&mut cmd);
            if let Some(device) = slot.0 {
                cmd.env(backend::DEVICE_ENV, device.to_string());
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            bars.message(&format!(
                "[{}] started (log: {})",
                task.id,
                log_path.display()
            ));
            running.push((child, task, slot, Instant::now()));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            let status = running[i]
                .0
                .try_wait()
                .with_context(|| format!("cannot wait for task {}", running[i].1.id))?;
            let Some(status) = status else {
                i += 1;
                continue;
            };
            let (_, task, slot, started) = running.swap_remove(i);
            free.push(slot);
            let seconds = started.elapsed().as_secs_f64();
            bars.advance(1);
            if status.success() {
                bars.message(&format!("[{}] done in {seconds:.1} s", task.id));
                ran.insert(task.id.clone());
            } else {
                bars.message(&format!(
                    "[{}] FAILED ({status}); see {}",
                    task.id,
                    layout.task_log(&task.id).display()
                ));
                failed.push(task.id.clone());
            }
        }
    }
    bars.finish();
    if !failed.is_empty() {
        // The report still covers the finished tasks.
        let written = write_report(study, &ran, Instant::now());
        bail!(
            "{} of {} tasks failed: {} (logs in {}){}",
            failed.len(),
            study.tasks.len(),
            failed.join(", "),
            logs.display(),
            match written {
                Ok(_) => "; the report covers the finished tasks".to_owned(),
                Err(e) => format!("; the report could not be written either: {e}"),
            }
        );
    }
    Ok(ran)
}

/// Writes the report from the finished tasks (under the report lock). The wall-time table
/// gives every task's recorded training and probe times (`runs/<id>/task.json`), marking those
/// of tasks not in `ran_here` (this invocation's) as done earlier or by another worker.
/// Returns the files written.
pub fn write_report(
    study: &Study,
    ran_here: &BTreeSet<String>,
    start: Instant,
) -> anyhow::Result<Vec<PathBuf>> {
    let layout = study.layout();
    let _lock = FileLock::acquire(&layout.report_lock(), |who| {
        eprintln!("waiting for {who}, which is writing the report");
    })?;
    let mut stages = vec![study.dataset_stage.clone()];
    for task in &study.tasks {
        let record = read_record(&layout.task_record(&task.id));
        if record.invocations == 0 {
            continue;
        }
        for (kind, seconds) in [
            ("train", record.train_seconds),
            ("probe", record.probe_seconds),
        ] {
            stages.push(Stage {
                name: format!("{kind} {}", task.id),
                kind: kind.into(),
                seconds,
                skipped: !ran_here.contains(&task.id),
            });
        }
    }
    let missing = study.missing();
    let backend_line = backend::describe(&backend::try_device()?);
    let inputs = report::Inputs {
        layout: &layout,
        plan: &study.plan,
        models: &study.models,
        modalities: &study.modalities,
        backend: &backend_line,
        dataset: &study.dataset,
        missing: &missing,
    };
    report::write(&inputs, &mut stages, Instant::now(), start)
}

/// `rensou paper plan`.
pub fn plan_command(args: &PaperArgs) -> anyhow::Result<()> {
    let study = Study::prepare(args)?;
    println!(
        "planned {} tasks in {} (dataset {}):",
        study.tasks.len(),
        study.out.display(),
        study.dataset.display()
    );
    for t in &study.tasks {
        let state = if study.is_done(t) { "  (finished)" } else { "" };
        println!("  {:>3}  {}{state}", t.index, t.id);
    }
    println!(
        "run one with `rensou paper run-task --out {} --task ID`, then `rensou paper report --out {}`",
        study.out.display(),
        study.out.display()
    );
    Ok(())
}

/// `rensou paper run-task`.
pub fn run_task_command(args: &RunTaskArgs) -> anyhow::Result<()> {
    let study = Study::load(&args.out)?;
    let task = study.task(&args.task)?;
    let device = backend::try_device()?;
    eprintln!(
        "backend: {}; task {} ({} of {}) of {}",
        backend::describe(&device),
        task.id,
        task.index + 1,
        study.tasks.len(),
        study.out.display()
    );
    let bars = Bars::new();
    if !run_task(&study, task, &bars, args.keep_going)? {
        eprintln!("task {} was already finished; nothing to do", task.id);
    } else {
        eprintln!("task {} finished", task.id);
    }
    Ok(())
}

/// `rensou paper report`.
pub fn report_command(args: &ReportArgs) -> anyhow::Result<()> {
    let study = Study::load(&args.out)?;
    let written = write_report(&study, &BTreeSet::new(), Instant::now())?;
    for path in written {
        println!("wrote {}", path.display());
    }
    let missing = study.missing();
    if missing.is_empty() {
        eprintln!("all {} tasks are finished", study.tasks.len());
    } else {
        eprintln!(
            "{} of {} tasks are not finished: {}",
            missing.len(),
            study.tasks.len(),
            missing.join(", ")
        );
    }
    Ok(())
}
