//! `rensou bench train`: training throughput, optionally beside the PyTorch reference.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rensou_core::dist::DistFamily;
use rensou_core::mmvae::{
    bench_train_steps, MmvaeConfig, ModalityNetConfig, ObjectiveConfig, ObjectiveKind,
};
use rensou_core::nn::{Conv2dNet, NetConfig};
use rensou_core::train::NetChoice;
use serde_json::{json, Value};

use crate::backend;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Training samples/s of the paper's models on random inputs (one JSON line per config).
    Train(BenchTrainArgs),
}

/// Arguments of `rensou bench train`. `--k`, `--modalities` and `--net` take comma lists; every
/// combination is measured.
#[derive(Args)]
pub struct BenchTrainArgs {
    /// Samples per modality K.
    #[arg(long, value_delimiter = ',', default_value = "20")]
    pub k: Vec<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Timed steps per config (after 3 warm-up steps).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Warm-up steps.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Nets: mlp, conv (conv for the 32x32 OSCN images, MLP for 28x28 CMNIST).
    #[arg(long, value_delimiter = ',', default_value = "mlp")]
    pub net: Vec<NetChoice>,
    /// 2: OSCN + CMNIST MMVAE; 1: OSCN-only VAE.
    #[arg(long, value_delimiter = ',', default_value = "2")]
    pub modalities: Vec<usize>,
    /// Objective: dreg (torch `--estimator dreg`) or dreg-reference (`--estimator reference`);
    /// elbo and iwae run without a torch comparison.
    #[arg(long, default_value = "dreg")]
    pub objective: ObjectiveKind,
    /// PyTorch reference script (`torch_reference.py`) to run beside each config.
    #[arg(long)]
    pub torch: Option<PathBuf>,
    /// PyTorch reference for `--net conv` (default: `torch_reference_conv.py` beside --torch,
    /// else `bench/torch_reference_conv.py`).
    #[arg(long)]
    pub torch_conv: Option<PathBuf>,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Threads for torch (default: the threads the CPU backend uses).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs a bench subcommand.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Train(args) => bench_train(args),
    }
}

/// The benchmark model: OSCN [32, 32, 3] (+ CMNIST [28, 28, 3]), paper sizes, Laplace prior as
/// in the reference script (also for one modality).
fn bench_config(modalities: usize, net: NetChoice) -> anyhow::Result<MmvaeConfig> {
    let mut specs = vec![ModalityNetConfig::new("oscn", vec![32, 32, 3])];
    match modalities {
        1 => {}
        2 => specs.push(ModalityNetConfig::new("cmnist", vec![28, 28, 3])),
        other => bail!("--modalities must be 1 or 2, got {other}"),
    }
    if net == NetChoice::Conv {
        specs[0].net = NetConfig::Conv2d(Conv2dNet::default());
    }
    let mut config = MmvaeConfig::new(specs);
    config.prior.family = DistFamily::Laplace;
    config.validate()?;
    Ok(config)
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(backend::cpu_threads)
}

fn torch_script(args: &BenchTrainArgs, net: NetChoice) -> Option<PathBuf> {
    let mlp = args.torch.clone()?;
    match net {
        NetChoice::Mlp => Some(mlp),
        NetChoice::Conv => {
            if let Some(p) = &args.torch_conv {
                return Some(p.clone());
            }
            let sibling = mlp
                .parent()
                .unwrap_or(Path::new("."))
                .join("torch_reference_conv.py");
            if sibling.is_file() {
                return Some(sibling);
            }
            let local = PathBuf::from("bench/torch_reference_conv.py");
            local.is_file().then_some(local)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_torch(
    args: &BenchTrainArgs,
    script: &Path,
    k: usize,
    modalities: usize,
    estimator: &str,
    threads: usize,
) -> anyhow::Result<Value> {
    let out = Command::new(&args.python)
        .arg(script)
        .args(["--k", &k.to_string()])
        .args(["--modalities", &modalities.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--estimator", estimator])
        .output()
        .with_context(|| format!("cannot run {} {}", args.python, script.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("{} failed ({}): {last}", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{} printed no JSON line", script.display()))?;
    serde_json::from_str(line).with_context(|| format!("{} printed bad JSON", script.display()))
}

fn bench_train(args: BenchTrainArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.steps == 0 {
        bail!("--batch and --steps must be >= 1");
    }
    let device = backend::device();
    eprintln!("backend: {}", backend::describe(&device));
    let threads = args.threads.unwrap_or_else(rayon_threads);
    let estimator = match args.objective {
        ObjectiveKind::Dreg => Some("dreg"),
        ObjectiveKind::DregReference => Some("reference"),
        _ => None,
    };
    for &modalities in &args.modalities {
        for &net in &args.net {
            for &k in &args.k {
                let config = bench_config(modalities, net)?;
                let objective = ObjectiveConfig::new(args.objective, k);
                let result = bench_train_steps::<backend::Train>(
                    &config,
                    args.batch,
                    &objective,
                    args.steps,
                    args.warmup,
                    &device,
                )?;
                let model = format!("{}-{net}", if modalities > 1 { "mmvae" } else { "vae" });
                let mut line = json!({
                    "bench": "train",
                    "backend": backend::describe(&device),
                    "model": model,
                    "modalities": modalities,
                    "net": net.to_string(),
                    "objective": result.objective,
                    "k": k,
                    "batch": args.batch,
                    "steps": args.steps,
                    "seconds_per_step": round(result.seconds_per_step, 5),
                    "steps_per_s": round(result.steps_per_s, 3),
                    "samples_per_s": round(result.samples_per_s, 1),
                    "last_loss": round(result.last_loss, 3),
                });
                if let (Some(script), Some(est)) = (torch_script(&args, net), estimator) {
                    let torch = run_torch(&args, &script, k, modalities, est, threads)?;
                    let torch_sps = torch.get("samples_per_s").and_then(Value::as_f64);
                    line["torch"] = torch;
                    if let Some(t) = torch_sps.filter(|t| *t > 0.0) {
                        line["ratio_vs_torch"] = json!(round(result.samples_per_s / t, 3));
                    }
                } else if args.torch.is_some() {
                    let why = if estimator.is_none() {
                        "no torch reference for this objective".to_owned()
                    } else {
                        format!("no torch reference for --net {net} (pass --torch-conv)")
                    };
                    line["torch"] = json!(why);
                }
                println!("{line}");
            }
        }
    }
    Ok(())
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
