//! `rensou probe`: run analysis probes on a trained run.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use rensou_api::probe::ProbeConfig;
use rensou_api::registry::ProbeRegistry;
use rensou_api::Split;
use rensou_train::analysis::{probe_run, ClassifierConfig, ProbeRunOptions};

use crate::backend;
use crate::progress::Bars;

/// Arguments of `rensou probe`.
#[derive(Args)]
pub struct ProbeArgs {
    /// The run directory (written by `rensou train`).
    #[arg(long)]
    pub run: PathBuf,
    /// Probes to run (repeat or comma-separate); default: every registered probe.
    #[arg(long = "probe", value_delimiter = ',')]
    pub probes: Vec<String>,
    /// Which split to analyse.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Probe settings (TOML with `[[probes]]` tables and an optional `[classifier]` table);
    /// probes named with --probe take their table from here when it has one.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to cache the shared classifiers (default RUN/classifiers).
    #[arg(long)]
    pub classifiers: Option<PathBuf>,
    /// Seed of the probes' random choices.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// A probe settings file.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProbeFile {
    /// Probe configs.
    #[serde(default)]
    pub probes: Vec<Box<dyn ProbeConfig>>,
    /// Classifier settings.
    #[serde(default)]
    pub classifier: ClassifierConfig,
}

/// The probes named (or all registered), configured from `file` where it has them.
pub fn select_probes(
    names: &[String],
    file: &mut ProbeFile,
) -> anyhow::Result<Vec<Box<dyn ProbeConfig>>> {
    let registry = ProbeRegistry::collect()?;
    let mut from_file = std::collections::BTreeMap::new();
    for p in file.probes.drain(..) {
        from_file.insert(rensou_api::probe::probe_type_name(&*p)?, p);
    }
    let names: Vec<String> = if !names.is_empty() {
        names.iter().map(|n| n.trim().to_owned()).collect()
    } else if !from_file.is_empty() {
        from_file.keys().cloned().collect()
    } else {
        registry.names().into_iter().map(str::to_owned).collect()
    };
    let mut probes = Vec::new();
    for name in names {
        let plugin = registry.get(&name)?;
        let p = from_file
            .remove(&name)
            .unwrap_or_else(|| (plugin.default_config)());
        p.validate()?;
        probes.push(p);
    }
    if probes.is_empty() {
        bail!("no probes are registered");
    }
    Ok(probes)
}

/// Reads a probe settings file.
pub fn read_probe_file(path: Option<&std::path::Path>) -> anyhow::Result<ProbeFile> {
    let Some(path) = path else {
        return Ok(ProbeFile::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read probe config {}", path.display()))?;
    let file: ProbeFile =
        toml::from_str(&text).map_err(|e| rensou_api::Error::toml_parse(path, &text, &e))?;
    file.classifier.validate()?;
    Ok(file)
}

/// Runs `rensou probe`.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let split: Split = args.split.parse()?;
    if !args.run.join("config.toml").is_file() {
        bail!(
            "{} is not a run directory (no config.toml; train one with `rensou train`)",
            args.run.display()
        );
    }
    let mut file = read_probe_file(args.config.as_deref())?;
    let probes = select_probes(&args.probes, &mut file)?;
    let device = backend::try_device()?;
    eprintln!("backend: {}", backend::describe(&device));
    let bars = Bars::new();
    let summary = probe_run::<backend::Train>(
        &args.run,
        ProbeRunOptions {
            probes,
            split,
            classifier_dir: args.classifiers.clone(),
            classifier: file.classifier,
            seed: args.seed,
        },
        &device,
        &backend::describe(&device),
        &bars,
    )?;
    bars.finish();
    for line in &summary.classifier_log {
        println!("{line}");
    }
    let mut failed = Vec::new();
    for (name, v) in &summary.probes {
        if v["ok"].as_bool() == Some(true) {
            println!(
                "probe {name}: ok ({:.1} s) -> {}",
                v["seconds"].as_f64().unwrap_or(0.0),
                args.run
                    .join("probes")
                    .join(name)
                    .join("metrics.json")
                    .display()
            );
        } else {
            let reason = v["error"].as_str().unwrap_or("no reason recorded");
            println!("probe {name}: FAILED: {reason}");
            failed.push(format!("{name} ({reason})"));
        }
    }
    println!("latents: {}", args.run.join("latents.h5").display());
    if !failed.is_empty() {
        bail!(
            "{} of {} probes failed: {}; the others' results are in {}",
            failed.len(),
            summary.probes.len(),
            failed.join("; "),
            args.run.join("probes").display()
        );
    }
    Ok(())
}
