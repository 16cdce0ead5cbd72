//! `rensou bench train`: training throughput beside the PyTorch reference, measured so that it
//! cannot flatter us.
//!
//! # Protocol
//! For each config, rensou and torch run as separate child processes, interleaved
//! (`rensou, torch, rensou, torch, ...`) for `--rounds` rounds; each run builds its model, warms
//! up, then times `--steps` steps. The report gives the median samples/s of each side, the
//! spread (min..max over rounds), the ratio of the medians, and each side's peak resident memory
//! (the child's own `VmHWM` for rensou, `ru_maxrss` of the Python process for torch: median over
//! rounds).
//!
//! # Busy machine
//! Around every run the bench reads the machine's busy CPU time (`/proc/stat`: user, nice,
//! system, irq, softirq, steal) and subtracts the child's own CPU time: what is left is CPU
//! taken by other processes (or the hypervisor) while we measured, as a number of cores
//! ("foreign load"); the same is measured over 2 idle seconds before the first run. A config
//! is flagged `"busy": true` when any of its runs, or those 2 seconds, saw a foreign load above
//! `--busy-threshold` (0.25 cores by default); its ratio is then printed as
//! `ratio_vs_torch_busy` and must not be quoted. (The load average is recorded before and
//! after each config and the whole bench, but not used for the flag: our own runs raise it.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rensou_model::dist::DistFamily;
use rensou_model::fusion::{objective_for, resolve_objective, FusionRegistry, DEFAULT_FUSION};
use rensou_model::mmvae::{
    bench_train_steps, MmvaeConfig, ModalityNetConfig, ObjectiveKind, ObjectiveName,
};
use rensou_model::nn::{Conv2dNet, NetConfig};
use rensou_train::NetChoice;
use serde_json::{json, Value};

use crate::backend;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Training samples/s of the paper's models on random inputs, interleaved with the PyTorch
    /// reference (one JSON line per config, then a summary line).
    ///
    /// With RENSOU_BENCH_TRACE=1, each rensou run prints its stages (model built, inputs on the
    /// device, every step with its loss) to stderr as they finish, each waited for: for a first
    /// run on a new device, where kernel compilation can dominate.
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
    /// Timed steps per run.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Warm-up steps per run.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Interleaved rounds (rensou run, torch run) per config; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Foreign load (cores used by other processes during a run) above which a config is
    /// flagged busy.
    #[arg(long, default_value_t = 0.25)]
    pub busy_threshold: f64,
    /// Nets: mlp, conv (conv for the 32x32 OSCN images, MLP for 28x28 CMNIST).
    #[arg(long, value_delimiter = ',', default_value = "mlp")]
    pub net: Vec<NetChoice>,
    /// 2: OSCN + CMNIST MMVAE; 1: OSCN-only VAE.
    #[arg(long, value_delimiter = ',', default_value = "2")]
    pub modalities: Vec<usize>,
    /// Objective: dreg (torch `--estimator dreg`) or dreg-reference (`--estimator reference`);
    /// elbo, iwae and the looser variants run without a torch comparison. Default: each
    /// fusion's own (moe: dreg), as `rensou train` trains it.
    #[arg(long)]
    pub objective: Option<ObjectiveName>,
    /// Fusions (joint posteriors) to measure, interleaved round by round: moe (default), poe,
    /// mopoe, ... Each trains its own objective where it does not implement --objective (poe
    /// and mopoe: elbo); only moe has a PyTorch reference. Lines of other fusions carry their
    /// ratio to moe's samples/s when moe is measured too.
    #[arg(long, value_delimiter = ',', default_value = "moe")]
    pub fusion: Vec<String>,
    /// PyTorch reference script (`torch_reference.py`) to run beside each config.
    #[arg(long)]
    pub torch: Option<PathBuf>,
    /// PyTorch reference for `--net conv` (default: `torch_reference_conv.py` beside --torch,
    /// else `bench/torch_reference_conv.py`).
    #[arg(long)]
    pub torch_conv: Option<PathBuf>,
    /// Passed to the torch scripts as `--device` (e.g. `cuda`; the repo's `bench/` scripts
    /// take it, the shared CPU reference does not). Omitted when not given.
    #[arg(long)]
    pub torch_device: Option<String>,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Threads for torch (default: the threads the CPU backend uses).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the JSON lines to this file (atomically, at the end).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Internal: measure one rensou config in this process and print one JSON line (the bench
    /// runs itself this way for each rensou run).
    #[arg(long, hide = true)]
    pub child: bool,
}

/// Runs a bench subcommand.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Train(args) if args.child => bench_child(&args),
        BenchCommand::Train(args) => bench_train(args),
    }
}

/// The benchmark model: OSCN [32, 32, 3] (+ CMNIST [28, 28, 3]), paper sizes, Laplace prior as
/// in the reference script (also for one modality).
pub(crate) fn bench_config(
    modalities: usize,
    net: NetChoice,
    fusion: &str,
) -> anyhow::Result<MmvaeConfig> {
    let mut specs = vec![ModalityNetConfig::new("oscn", vec![32, 32, 3])];
    match modalities {
        1 => {}
        2 => specs.push(ModalityNetConfig::new("cmnist", vec![28, 28, 3])),
        other => bail!("--modalities must be 1 or 2, got {other}"),
    }
    match net {
        NetChoice::Mlp => {}
        NetChoice::Conv => specs[0].net = NetConfig::Conv2d(Conv2dNet::default()),
        NetChoice::Conv1d => {
            bail!("bench train measures the paper's image models: --net mlp or conv, not conv1d")
        }
    }
    let design = (FusionRegistry::collect()?.get(fusion)?.default_config)();
    let mut config = MmvaeConfig::new(specs).with_fusion(design);
    config.prior.family = DistFamily::Laplace;
    config.validate()?;
    Ok(config)
}

/// Refuses a bench config beyond the documented bounds (`training.k`, batch size) or larger
/// than the machine's available memory, before any process starts.
fn check_fits(
    modalities: usize,
    net: NetChoice,
    fusion: &str,
    k: usize,
    batch: usize,
) -> anyhow::Result<()> {
    use rensou_train::{DataConfig, RunConfig, TrainingConfig};
    let model = bench_config(modalities, net, fusion)?;
    let training = TrainingConfig {
        k,
        batch_size: batch,
        ..TrainingConfig::default()
    };
    training.validate()?;
    let config = RunConfig {
        data: DataConfig {
            file: "random inputs".into(),
            modalities: model.modalities.iter().map(|m| m.name.clone()).collect(),
        },
        model,
        training,
    };
    let estimate = rensou_train::memory::training_estimate(&config, batch as u64);
    rensou_train::memory::check("the bench", &estimate)?;
    Ok(())
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
        NetChoice::Conv1d => None,
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

/// The child side: one config, measured in this process.
fn bench_child(args: &BenchTrainArgs) -> anyhow::Result<()> {
    let (&[k], &[modalities], &[net], [fusion]) = (
        args.k.as_slice(),
        args.modalities.as_slice(),
        args.net.as_slice(),
        args.fusion.as_slice(),
    ) else {
        bail!("--child measures one config: give one --k, --modalities, --net and --fusion");
    };
    let device = backend::try_device()?;
    let config = bench_config(modalities, net, fusion)?;
    let design = config.fusion_design()?;
    // The study's rule: the objective asked for where the fusion implements it, else its own.
    let objective = match args.objective {
        Some(asked) => objective_for(&*design, asked.with_k(k)),
        None => resolve_objective(&*design, None, k)?,
    };
    let result = bench_train_steps::<backend::Train>(
        &config,
        args.batch,
        &objective,
        args.steps,
        args.warmup,
        &device,
        trace_requested().then_some(&|stage: &str| eprintln!("  [child] {stage}")),
    )?;
    let line = json!({
        "backend": backend::describe(&device),
        "objective": result.objective,
        "fusion": fusion,
        "samples_per_s": result.samples_per_s,
        "seconds_per_step": result.seconds_per_step,
        "last_loss": result.last_loss,
        "peak_rss_kb": proc_status_kb("VmHWM"),
        "cpu_s": self_cpu_seconds(),
    });
    println!("{line}");
    Ok(())
}

/// Python that runs a reference script as `__main__` and then prints the process's own peak
/// RSS and CPU time as a second JSON line.
const TORCH_WRAPPER: &str = "import json, resource, runpy, sys\n\
script = sys.argv[1]\n\
sys.argv = sys.argv[1:]\n\
runpy.run_path(script, run_name='__main__')\n\
r = resource.getrusage(resource.RUSAGE_SELF)\n\
print(json.dumps({'peak_rss_kb': r.ru_maxrss, 'cpu_s': r.ru_utime + r.ru_stime}))\n";

/// The environment variable that makes `rensou bench train` show each child's stages (model
/// built, inputs on the device, every step, each waited for) as they finish, on stderr.
pub const TRACE_ENV: &str = "RENSOU_BENCH_TRACE";

fn trace_requested() -> bool {
    std::env::var_os(TRACE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// One measured run of either side.
#[derive(Clone, Debug)]
struct Run {
    samples_per_s: f64,
    peak_rss_kb: Option<f64>,
    /// Cores used by other processes during the run (None off Linux).
    foreign_load: Option<f64>,
    /// The run's own report (its first JSON line).
    report: Value,
}

/// Runs `cmd` to completion, timing it and the machine's busy CPU around it; the child prints
/// one or more JSON lines, the first being its result and any line holding `cpu_s` /
/// `peak_rss_kb` adding those.
fn measure(mut cmd: Command, what: &str) -> anyhow::Result<Run> {
    if trace_requested() {
        cmd.stderr(std::process::Stdio::inherit()); // the child's stages, as they happen
    }
    // A child must not outlive an interrupted bench (a timeout kills only this process): on
    // Linux the kernel kills it when this process dies.
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
    let busy_before = busy_cpu_seconds();
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run the {what} benchmark"))?;
    let wall = start.elapsed().as_secs_f64();
    let busy_after = busy_cpu_seconds();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("the {what} benchmark failed ({}): {last}", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let Some(report) = lines.first().cloned() else {
        bail!("the {what} benchmark printed no JSON line");
    };
    let field = |name: &str| lines.iter().rev().find_map(|l| l.get(name)?.as_f64());
    let samples_per_s = report
        .get("samples_per_s")
        .and_then(Value::as_f64)
        .with_context(|| format!("the {what} benchmark reported no samples_per_s"))?;
    let foreign_load = match (busy_before, busy_after, field("cpu_s")) {
        (Some(b0), Some(b1), Some(own)) if wall > 0.0 => Some(((b1 - b0 - own) / wall).max(0.0)),
        _ => None,
    };
    Ok(Run {
        samples_per_s,
        peak_rss_kb: field("peak_rss_kb"),
        foreign_load,
        report,
    })
}

fn rensou_command(
    args: &BenchTrainArgs,
    k: usize,
    modalities: usize,
    net: NetChoice,
    fusion: &str,
) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the rensou executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "train", "--child"])
        .args(["--k", &k.to_string()])
        .args(["--modalities", &modalities.to_string()])
        .args(["--net", &net.to_string()])
        .args(["--fusion", fusion])
        .args(
            args.objective
                .iter()
                .flat_map(|o| ["--objective".to_owned(), o.to_string()]),
        )
        .args(["--batch", &args.batch.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--warmup", &args.warmup.to_string()]);
    Ok(cmd)
}

#[allow(clippy::too_many_arguments)]
fn torch_command(
    args: &BenchTrainArgs,
    script: &Path,
    k: usize,
    modalities: usize,
    estimator: &str,
    threads: usize,
) -> Command {
    let mut cmd = Command::new(&args.python);
    cmd.args(["-c", TORCH_WRAPPER])
        .arg(script)
        .args(["--k", &k.to_string()])
        .args(["--modalities", &modalities.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--estimator", estimator]);
    if let Some(device) = &args.torch_device {
        cmd.args(["--device", device]);
    }
    cmd
}

/// Median, min and max of `values` (not empty).
fn spread(values: &[f64]) -> Value {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(f64::total_cmp);
    json!({
        "median": round(median_sorted(&v), 2),
        "min": round(v[0], 2),
        "max": round(v[v.len() - 1], 2),
        "runs": values.iter().map(|x| round(*x, 2)).collect::<Vec<_>>(),
    })
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| median_sorted(&v))
}

/// What one side's runs of a config add to the report line.
fn side_report(runs: &[Run]) -> Value {
    let sps: Vec<f64> = runs.iter().map(|r| r.samples_per_s).collect();
    let rss = median(runs.iter().filter_map(|r| r.peak_rss_kb));
    json!({
        "samples_per_s": spread(&sps),
        "peak_rss_mb": rss.map(|kb| round(kb / 1024.0, 1)),
        "foreign_load": runs.iter().map(|r| r.foreign_load.map(|l| round(l, 2))).collect::<Vec<_>>(),
    })
}

fn bench_train(args: BenchTrainArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.steps == 0 || args.rounds == 0 {
        bail!("--batch, --steps and --rounds must be >= 1");
    }
    for &modalities in &args.modalities {
        for &net in &args.net {
            for &k in &args.k {
                for fusion in &args.fusion {
                    check_fits(modalities, net, fusion, k, args.batch)?;
                }
            }
        }
    }
    let device = backend::try_device()?;
    eprintln!("backend: {}", backend::describe(&device));
    let threads = args.threads.unwrap_or_else(rayon_threads);
    // The torch reference is the mixture of experts: moe's objective decides its estimator.
    let moe_objective = match args.objective {
        Some(asked) => asked,
        None => resolve_objective(&*rensou_model::fusion::resolve_design(None)?, None, 1)?
            .objective_name(),
    };
    let estimator = match (moe_objective.kind, moe_objective.looser) {
        (ObjectiveKind::Dreg, false) => Some("dreg"),
        (ObjectiveKind::DregReference, false) => Some("reference"),
        _ => None,
    };
    let load_start = loadavg();
    // Two idle seconds: whatever CPU is used meanwhile belongs to other processes.
    let idle_load = idle_foreign_load(std::time::Duration::from_secs(2));
    let busy_at_start = idle_load.is_some_and(|l| l > args.busy_threshold);
    if busy_at_start {
        eprintln!(
            "warning: other processes use {:.2} cores before the bench: the machine is busy, \
             ratios will be flagged",
            idle_load.unwrap_or(0.0)
        );
    }
    let mut lines = Vec::new();
    let mut any_busy = busy_at_start;
    for &modalities in &args.modalities {
        for &net in &args.net {
            for &k in &args.k {
                let script = torch_script(&args, net).filter(|_| estimator.is_some());
                let load_before = loadavg();
                // Round by round, every fusion once (and torch beside moe): A T B C A T B C ...
                let mut ours: Vec<Vec<Run>> = vec![Vec::new(); args.fusion.len()];
                let mut torch_runs = Vec::new();
                for round in 0..args.rounds {
                    for (i, fusion) in args.fusion.iter().enumerate() {
                        let cmd = rensou_command(&args, k, modalities, net, fusion)?;
                        let run = measure(cmd, "rensou")?;
                        eprintln!(
                            "  k={k} m={modalities} {net} {fusion} round {}: rensou {:.1} samples/s",
                            round + 1,
                            run.samples_per_s
                        );
                        ours[i].push(run);
                        if fusion != DEFAULT_FUSION {
                            continue;
                        }
                        if let (Some(script), Some(est)) = (&script, estimator) {
                            let cmd = torch_command(&args, script, k, modalities, est, threads);
                            let run = measure(cmd, "torch")?;
                            eprintln!("  {:>34} torch {:.1} samples/s", "", run.samples_per_s);
                            torch_runs.push(run);
                        }
                    }
                }
                let load_after = loadavg();
                let moe_runs = args
                    .fusion
                    .iter()
                    .position(|f| f == DEFAULT_FUSION)
                    .map(|i| ours[i].clone());
                for (fusion, ours) in args.fusion.iter().zip(&ours) {
                    let is_moe = fusion == DEFAULT_FUSION;
                    let theirs: &[Run] = if is_moe { &torch_runs } else { &[] };
                    let kind = if modalities > 1 { "mmvae" } else { "vae" };
                    let model = if is_moe {
                        format!("{kind}-{net}")
                    } else {
                        format!("{kind}-{net}-{fusion}")
                    };
                    let first = ours
                        .first()
                        .map(|r| r.report.clone())
                        .unwrap_or(Value::Null);
                    let mut line = json!({
                        "bench": "train",
                        "backend": first.get("backend").cloned().unwrap_or(Value::Null),
                        "model": model,
                        "fusion": fusion,
                        "modalities": modalities,
                        "net": net.to_string(),
                        "objective": first.get("objective").cloned().unwrap_or(Value::Null),
                        "k": k,
                        "batch": args.batch,
                        "steps": args.steps,
                        "warmup": args.warmup,
                        "rounds": args.rounds,
                        "threads": threads,
                        "rensou": side_report(ours),
                        "loadavg_before": load_before,
                        "loadavg_after": load_after,
                    });
                    let foreign_max = ours
                        .iter()
                        .chain(theirs)
                        .filter_map(|r| r.foreign_load)
                        .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))));
                    let busy =
                        busy_at_start || foreign_max.is_some_and(|l| l > args.busy_threshold);
                    line["foreign_load_max"] = json!(foreign_max.map(|l| round(l, 2)));
                    line["busy"] = json!(busy);
                    any_busy |= busy;
                    let ours_med = median(ours.iter().map(|r| r.samples_per_s));
                    if let (false, Some(moe)) = (is_moe, &moe_runs) {
                        let moe_med = median(moe.iter().map(|r| r.samples_per_s));
                        if let (Some(a), Some(b)) = (ours_med, moe_med.filter(|m| *m > 0.0)) {
                            line["ratio_vs_moe"] = json!(round(a / b, 3));
                            let per_round: Vec<f64> = ours
                                .iter()
                                .zip(moe)
                                .map(|(a, b)| a.samples_per_s / b.samples_per_s)
                                .collect();
                            line["ratio_vs_moe_per_round"] = spread(&per_round);
                            eprintln!(
                                "{model} K={k}: {a:.1} samples/s, x{:.3} of moe's {b:.1}",
                                a / b
                            );
                        }
                    }
                    if !theirs.is_empty() {
                        line["torch"] = side_report(theirs);
                        line["torch_report"] = theirs[0].report.clone();
                        let theirs_med = median(theirs.iter().map(|r| r.samples_per_s));
                        if let (Some(a), Some(b)) = (ours_med, theirs_med.filter(|t| *t > 0.0)) {
                            let key = if busy {
                                "ratio_vs_torch_busy"
                            } else {
                                "ratio_vs_torch"
                            };
                            line[key] = json!(round(a / b, 3));
                            let per_round: Vec<f64> = ours
                                .iter()
                                .zip(theirs)
                                .map(|(a, b)| a.samples_per_s / b.samples_per_s)
                                .collect();
                            line["ratio_per_round"] = spread(&per_round);
                            eprintln!(
                                "{model} K={k}: rensou {a:.1} vs torch {b:.1} samples/s, x{:.3}{}",
                                a / b,
                                if busy {
                                    " (BUSY machine: do not quote)"
                                } else {
                                    ""
                                }
                            );
                        }
                    } else if args.torch.is_some() {
                        let why = if !is_moe {
                            format!("no torch reference for fusion {fusion}")
                        } else if estimator.is_none() {
                            "no torch reference for this objective".to_owned()
                        } else {
                            format!("no torch reference for --net {net} (pass --torch-conv)")
                        };
                        line["torch"] = json!(why);
                    }
                    println!("{line}");
                    lines.push(line);
                }
            }
        }
    }
    let summary = json!({
        "bench": "train-summary",
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "loadavg_start": load_start,
        "foreign_load_before": idle_load.map(|l| round(l, 2)),
        "loadavg_end": loadavg(),
        "busy": any_busy,
        "busy_rule": format!(
            "busy when other processes used more than {} cores in the 2 s before the bench \
             or during any run of the config",
            args.busy_threshold
        ),
    });
    println!("{summary}");
    lines.push(summary);
    if let Some(path) = &args.out {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        rensou_api::fsutil::write_bytes_atomically(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Cores kept busy by other processes while this one sleeps for `span`, None off Linux.
fn idle_foreign_load(span: std::time::Duration) -> Option<f64> {
    let before = busy_cpu_seconds()?;
    std::thread::sleep(span);
    let after = busy_cpu_seconds()?;
    Some(((after - before) / span.as_secs_f64()).max(0.0))
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), None off Linux.
fn loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Seconds of CPU the whole machine spent busy so far (`/proc/stat` first line: user, nice,
/// system, irq, softirq, steal; clock ticks at the usual 100 Hz), None off Linux.
fn busy_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| f.get(i).copied().unwrap_or(0))
        .sum::<u64>();
    Some(busy as f64 / 100.0)
}

/// A `kB` field of `/proc/self/status` (e.g. `VmHWM`, the peak resident set), None off Linux.
fn proc_status_kb(field: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) this process used so far (`/proc/self/stat`, 100 Hz ticks).
fn self_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit(')').next()?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_reports_median_and_range() {
        let s = spread(&[3.0, 1.0, 2.0]);
        assert_eq!(s["median"], json!(2.0));
        assert_eq!(s["min"], json!(1.0));
        assert_eq!(s["max"], json!(3.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn proc_readers_give_plausible_values_on_linux() {
        if !Path::new("/proc/self/status").exists() {
            return;
        }
        let rss = proc_status_kb("VmHWM").unwrap_or(0.0);
        assert!(rss > 100.0, "peak RSS {rss} kB");
        let load = loadavg().unwrap_or([-1.0; 3]);
        assert!(load.iter().all(|l| *l >= 0.0));
        let busy = busy_cpu_seconds().unwrap_or(-1.0);
        assert!(busy > 0.0);
        let before = self_cpu_seconds().unwrap_or(-1.0);
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(self_cpu_seconds().unwrap_or(-1.0) >= before);
    }
}
