//! `rensou train`: train an MMVAE (or, with one modality, a VAE) on a paired dataset.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use rensou_model::fusion::FusionRegistry;
use rensou_model::mmvae::ObjectiveName;
use rensou_train::{
    self as train, NetChoice, Overrides, RunConfig, RunSpec, TrainOptions, TrainingSpec,
    RUN_CONFIG_FILE,
};

use crate::backend;
use crate::progress::Bars;

/// Arguments of `rensou train`. Flags override the config file.
#[derive(Args, Clone)]
pub struct TrainArgs {
    /// The dataset (HDF5 from `rensou data build`); overrides `[data] file`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Comma-separated modalities to train on (one modality: a single-modality VAE); default:
    /// the config's, else every modality of the file.
    #[arg(long, value_delimiter = ',')]
    pub modalities: Option<Vec<String>>,
    /// The run directory (config.toml, metrics.jsonl, grids/, checkpoints/).
    #[arg(long)]
    pub out: PathBuf,
    /// Run config (TOML: [data], [model], [training]); see docs/training.md.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in --out from its last complete checkpoint (only --epochs and --data
    /// may change).
    #[arg(long)]
    pub resume: bool,
    /// Number of epochs (50).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Seed (0).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Samples per modality K (20).
    #[arg(long, allow_negative_numbers = true)]
    pub k: Option<usize>,
    /// Objective: elbo, iwae, dreg, dreg-reference, the last three also as `-looser`
    /// (dreg-looser); default: the fusion's own (moe: dreg, poe and mopoe: elbo, mmvaeplus:
    /// dreg-looser). `rensou list` shows what each fusion implements.
    #[arg(long)]
    pub objective: Option<ObjectiveName>,
    /// The joint posterior, a fusion plugin with its default settings: moe (the MMVAE's
    /// mixture of experts, default), poe, mopoe, ... (`rensou list`); `[model.fusion]` in the
    /// config sets its options.
    #[arg(long)]
    pub fusion: Option<String>,
    /// Replaced by the objective's name (`--objective dreg-looser`); refused with that advice.
    #[arg(long, hide = true)]
    pub looser: bool,
    /// Pairs per step (128).
    #[arg(long, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Adam learning rate (1e-3).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Linear learning-rate warm-up over this many steps (0: none, as the paper; a few hundred
    /// keeps an encoder from running away from the prior early on)
    #[arg(long, allow_negative_numbers = true)]
    pub warmup_steps: Option<usize>,
    /// Train on a seeded random subset of this many pairs.
    #[arg(long, allow_negative_numbers = true)]
    pub max_train_pairs: Option<usize>,
    /// Evaluate on a seeded random subset of this many test pairs.
    #[arg(long, allow_negative_numbers = true)]
    pub max_test_pairs: Option<usize>,
    /// Write a grid every N epochs (1; 0: only at the end).
    #[arg(long, allow_negative_numbers = true)]
    pub grid_every: Option<usize>,
    /// Every modality's net: mlp, or conv (where the items allow it, e.g. 32x32 images; others
    /// keep an MLP).
    #[arg(long)]
    pub net: Option<NetChoice>,
    /// Keep the model of these epochs as snapshots (`OUT/snapshots/epoch-NNN`, 25 MB each for
    /// the paper's MLP MMVAE), e.g. `1,2,5,10`; probe one with `rensou probe --run
    /// OUT/snapshots/epoch-005`.
    #[arg(long, value_delimiter = ',')]
    pub keep_epochs: Vec<usize>,
    /// Keep the model of every N-th epoch as a snapshot (with --keep-epochs: both).
    #[arg(long)]
    pub keep_every: Option<usize>,
}

impl TrainArgs {
    /// The flags: the top layer of the config pipeline.
    fn overrides(&self) -> anyhow::Result<Overrides> {
        if self.looser {
            bail!(
                "--looser is part of the objective's name now: write --objective dreg-looser \
                 (or iwae-looser, dreg-reference-looser)"
            );
        }
        Ok(Overrides {
            data: self.data.clone(),
            modalities: self.modalities.clone(),
            net: self.net,
            fusion: match &self.fusion {
                Some(name) => Some((FusionRegistry::collect()?.get(name)?.default_config)()),
                None => None,
            },
            training: TrainingSpec {
                epochs: self.epochs,
                seed: self.seed,
                k: self.k,
                objective: self.objective,
                batch_size: self.batch_size,
                lr: self.lr,
                warmup_steps: self.warmup_steps,
                max_train_pairs: self.max_train_pairs,
                max_test_pairs: self.max_test_pairs,
                grid_every: self.grid_every,
                ..TrainingSpec::default()
            },
        })
    }
}

/// Resolves a new run's config: the `--config` file (or nothing), the flags on top, resolved
/// once against the data file's item shapes.
fn new_config(args: &TrainArgs) -> anyhow::Result<(RunConfig, Vec<String>)> {
    let spec = match &args.config {
        Some(path) => RunSpec::read(path)?,
        None => RunSpec::default(),
    };
    Ok(spec.resolve_with(&args.overrides()?)?)
}

/// A resumed run's config: the stored one with the flags applied; anything but `--epochs` and
/// `--data` must agree with the run.
fn resumed_config(args: &TrainArgs) -> anyhow::Result<(RunConfig, Vec<String>)> {
    let stored_path = args.out.join(RUN_CONFIG_FILE);
    if !stored_path.is_file() {
        bail!(
            "nothing to resume in {}: it has no {RUN_CONFIG_FILE} (start a new run without --resume)",
            args.out.display()
        );
    }
    let stored = RunConfig::read(&stored_path)?;
    if let Some(m) = &args.modalities {
        if m != &stored.data.modalities {
            bail!(
                "cannot resume {} with --modalities {}: the run trains on {}",
                args.out.display(),
                m.join(","),
                stored.data.modalities.join(",")
            );
        }
    }
    // The layers: the stored run, the file (what it leaves out is the run's, not the
    // defaults, so a conflict names the field the file changes), the flags.
    let spec = match &args.config {
        Some(path) => RunSpec::read_over(path, &stored)?,
        None => RunSpec::of_run(&stored),
    };
    let (config, notes) = spec.resolve_with(&args.overrides()?)?;
    if let Some(field) = config.resume_conflict(&stored) {
        bail!(
            "cannot resume {} with a different config: {field}; a resumed run may only change \
             --epochs and --data",
            args.out.display()
        );
    }
    Ok((config, notes))
}

/// Runs `rensou train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let (config, notes) = if args.resume {
        resumed_config(&args)?
    } else {
        new_config(&args)?
    };
    let device = backend::try_device()?;
    let bars = Bars::new();
    let t = &config.training;
    eprintln!("backend: {}", backend::describe(&device));
    eprintln!(
        "training {} on {} ({}): {} epochs, batch {}, {} K={}, lr {:?}, seed {}",
        if config.model.modalities.len() > 1 {
            "an MMVAE"
        } else {
            "a VAE"
        },
        config.data.modalities.join(","),
        config
            .model
            .modalities
            .iter()
            .map(|m| format!("{}: {}", m.name, m.net.name()))
            .collect::<Vec<_>>()
            .join(", "),
        t.epochs,
        t.batch_size,
        config.objective().name(),
        t.k,
        t.lr,
        t.seed
    );
    for note in &notes {
        eprintln!("note: {note}");
    }
    let keep = crate::epoch_list::resolve(
        &args.keep_epochs,
        args.keep_every,
        t.epochs,
        true,
        ("--keep-epochs", "--keep-every"),
    )?;
    let options = TrainOptions {
        resume: args.resume,
        check_every: backend::CHECK_EVERY,
        progress: &bars,
        keep_epochs: &keep,
    };
    let outcome = train::train::<backend::Train>(&config, &args.out, &device, &options);
    bars.finish();
    let outcome = outcome.with_context(|| format!("training {}", args.out.display()))?;
    if let Some(last) = outcome.metrics.last() {
        eprintln!(
            "done: {} epochs in {}; last epoch: train loss {:.2}, test loss {:.2}",
            last.epoch,
            args.out.display(),
            last.train_loss,
            last.test_loss
        );
    }
    Ok(())
}
