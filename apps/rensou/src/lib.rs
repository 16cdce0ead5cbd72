//! `rensou` as a library: the whole command line ([`cli::main`]) with every built-in plugin
//! linked, so a crate of your own plugins builds a `rensou`-compatible binary in a few lines:
//!
//! ```no_run
//! // src/main.rs of a crate that depends on `rensou` and defines (or links) its own plugins.
//! fn main() -> std::process::ExitCode {
//!     rensou::cli::main()
//! }
//! ```
//!
//! Plugins defined in that crate (or linked with `use my_plugins as _;`) are registered next to
//! the built-in ones: inventory collects from every linked crate. This is the only crate that
//! names a burn backend (see `backend.rs`).

#![warn(missing_docs)]

// Linking the plugin crates registers them (inventory collects only from linked crates).
use rensou_arithmetic as _;
use rensou_audio as _;
use rensou_cluster as _;
use rensou_cmnist as _;
use rensou_coherence as _;
use rensou_mmvaeplus as _;
use rensou_moe as _;
use rensou_mopoe as _;
use rensou_oscn as _;
use rensou_poe as _;
use rensou_tsne as _;

pub mod backend;
mod bench_cmd;
mod data_cmd;
mod doctor;
mod epoch_list;
#[cfg(feature = "gpu")]
pub mod gpu;
mod paper;
mod probe_cmd;
mod progress;
mod train_cmd;

/// The command line: parsing, dispatch and one-line errors.
pub mod cli {
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};

    use crate::{bench_cmd, data_cmd, doctor, paper, probe_cmd, train_cmd};

    /// Multimodal deep generative models and the number-sense study.
    #[derive(Parser)]
    #[command(name = "rensou", version, about, propagate_version = true)]
    pub(crate) struct Cli {
        /// The command.
        #[command(subcommand)]
        pub(crate) command: Command,
    }

    #[derive(Subcommand)]
    pub(crate) enum Command {
        /// Build, inspect and preview paired datasets (HDF5).
        #[command(subcommand)]
        Data(data_cmd::DataCommand),
        /// List the registered plugins (modalities, probes, nets and fusions).
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
        /// Check this build on this machine: backend, devices, driver libraries, then a matmul,
        /// an autodiff step and the paper's training step, each timed, under a stall watchdog.
        Doctor(doctor::DoctorArgs),
    }

    /// Runs a parsed command line.
    pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
        match cli.command {
            Command::Data(cmd) => data_cmd::run(cmd),
            Command::List => list(),
            Command::Probe(args) => probe_cmd::run(args),
            Command::Paper(args) => paper::run(*args),
            Command::Train(args) => train_cmd::run(args),
            Command::Bench(cmd) => bench_cmd::run(cmd),
            Command::Doctor(args) => doctor::run(args),
        }
    }

    fn list() -> anyhow::Result<()> {
        let modalities = rensou_api::registry::ModalityRegistry::collect()?;
        println!("modalities:");
        for p in modalities.list() {
            println!("  {:<12} {}", p.name, p.description);
        }
        let probes = rensou_api::registry::ProbeRegistry::collect()?;
        println!("probes:");
        for p in probes.list() {
            println!("  {:<12} {}", p.name, p.description);
        }
        let nets = rensou_api::registry::NetRegistry::collect()?;
        println!("nets:");
        for (name, description) in rensou_model::nn::BUILT_IN_NETS {
            println!("  {name:<12} {description} (built in)");
        }
        for p in nets.list() {
            println!("  {:<12} {}", p.name, p.description);
        }
        let fusions = rensou_model::fusion::FusionRegistry::collect()?;
        fusions.check_names()?;
        println!("fusions:");
        for p in fusions.list() {
            let default = if p.name == rensou_model::fusion::DEFAULT_FUSION {
                " (default)"
            } else {
                ""
            };
            // What `train --fusion NAME` trains without --objective: the fusion's own.
            let design = (fusions.get(p.name)?.default_config)();
            let objective = rensou_model::fusion::resolve_objective(&*design, None, 1)?;
            println!(
                "  {:<12} {}{default}; trains {} unless --objective says otherwise",
                p.name,
                p.description,
                objective.name()
            );
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

    /// Parses the process's arguments, runs the command and reports an error as one line on
    /// stderr; returns the exit code (0, 1 for errors, 2 for usage errors).
    pub fn main() -> ExitCode {
        // A closed pipe (`rensou data info FILE | head`) ends the process quietly, as for any
        // command-line tool, instead of a panic on the next write to stdout.
        #[cfg(unix)]
        // SAFETY: called once at start-up, before any thread exists; restores the default
        // action of SIGPIPE, which the Rust runtime sets to ignore.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        main_from(std::env::args_os())
    }

    /// [`main`] with the given arguments (the first is the program name).
    pub fn main_from<I, T>(args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = match Cli::try_parse_from(args) {
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
}
