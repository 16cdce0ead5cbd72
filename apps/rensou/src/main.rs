//! `rensou`: build datasets, train multimodal VAEs and run the number-sense study from one binary.
//!
//! This is the only crate that names a burn backend (see `backend.rs`). Plugins are linked with
//! `use ... as _;` lines below: inventory only collects from linked crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Linking the plugin crates registers them (inventory collects only from linked crates).
use rensou_arithmetic as _;
use rensou_audio as _;
use rensou_cluster as _;
use rensou_cmnist as _;
use rensou_coherence as _;
use rensou_oscn as _;
use rensou_tsne as _;

mod backend;
mod bench_cmd;
mod data_cmd;
mod paper;
mod probe_cmd;
mod progress;
mod train_cmd;

/// Multimodal deep generative models and the number-sense study.
#[derive(Parser)]
#[command(name = "rensou", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build, inspect and preview paired datasets (HDF5).
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// List the registered plugins (modalities and probes).
    List,
    /// Run analysis probes on a trained run (metrics.json and figures per probe).
    Probe(probe_cmd::ProbeArgs),
    /// The paper setup end to end: dataset, MMVAE and VAEs per seed, probes, report.
    Paper(Box<paper::PaperCli>),
    /// Train an MMVAE (or, with one modality, a VAE) on a paired dataset.
    Train(train_cmd::TrainArgs),
    /// Benchmarks (training throughput, beside the PyTorch reference).
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Data(cmd) => data_cmd::run(cmd),
        Command::List => list(),
        Command::Probe(args) => probe_cmd::run(args),
        Command::Paper(args) => paper::run(*args),
        Command::Train(args) => train_cmd::run(args),
        Command::Bench(cmd) => bench_cmd::run(cmd),
    }
}

fn list() -> anyhow::Result<()> {
    let modalities = rensou_core::registry::ModalityRegistry::collect()?;
    println!("modalities:");
    for p in modalities.list() {
        println!("  {:<12} {}", p.name, p.description);
    }
    let probes = rensou_core::registry::ProbeRegistry::collect()?;
    println!("probes:");
    for p in probes.list() {
        println!("  {:<12} {}", p.name, p.description);
    }
    Ok(())
}

/// The error and its causes on one line, skipping causes whose text the previous one already shows.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A command-line usage error as one line (`error: ...` plus where to look), as every other
/// error is; help and version requests print as clap prints them.
fn usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.trim().trim_start_matches("error:").trim();
    let tip = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip:"))
        .map(|t| format!(" ({})", t.trim()))
        .unwrap_or_default();
    format!("error: {first}{tip}; see `rensou --help` or `rensou <command> --help`")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            eprintln!("{}", usage_error(&e));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}
