//! `rensou doctor`: the first command to run on a new machine, GPU or not. It says what the
//! build is, which devices it sees and which driver libraries it loaded, then times the path
//! to a training step stage by stage (device start, one matmul compiled then run, a small
//! autodiff step, the paper's training step cold, then warm), one live line per stage. A
//! watchdog reports a stage that stalls: what it was doing, the last lines of cubecl's log and
//! every thread's stack. It ends with a one-line verdict; the exit status is 0 when every stage
//! passed, 1 when one failed and 3 when one stalled.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, ElementConversion, Tensor};
use clap::Args;
use rensou_model::fusion::resolve_objective;
use rensou_model::mmvae::{paper_adam, train_step};
use rensou_train::NetChoice;
use serde_json::{json, Value};

use crate::backend;

/// The exit status of a stalled run (1 is a failed stage, 2 a usage error).
pub const STALL_EXIT: i32 = 3;

/// Arguments of `rensou doctor`.
#[derive(Args)]
pub struct DoctorArgs {
    /// Seconds without progress after which the watchdog reports a stage stalled and ends the
    /// process. Progress: the stage's start, or (GPU builds) a new line in cubecl's log, i.e.
    /// a kernel compiled or an autotune result; a first step that compiles for many minutes is
    /// slow, not stalled.
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    pub stall_after: f64,
    /// Training steps of the paper's model to time: the first compiles its kernels, the rest
    /// run warm (`--steps 10` gives the tenth).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub steps: u32,
    /// Samples per modality K of the training step (the paper's: 20).
    #[arg(long, default_value_t = 20)]
    pub k: usize,
    /// Batch size of the training step (the paper's: 128).
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Also write the measurements as JSON to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Keep cubecl's compilation and autotune log in FILE (GPU builds; default: a temporary
    /// file, kept only when a stage fails or stalls). `CUBECL_DEBUG_LOG` is honoured too.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Internal, for the watchdog's test: the named stage (`device`, `matmul`, `autodiff`,
    /// `model`, `step`) sleeps forever.
    #[arg(long, hide = true, value_name = "STAGE")]
    pub simulate_stall: Option<String>,
}

/// What the watchdog watches: the stage running now.
#[derive(Default)]
struct Watched {
    /// (stage title, what it is doing, when it started); `None` between stages.
    current: Option<(String, String, Instant)>,
    /// Set when every stage has ended (the watchdog then stops).
    done: bool,
    /// The stages finished so far, as in `--json`'s report (a stall report includes them).
    finished: Vec<Value>,
}

/// One timed stage's outcome.
struct StageResult {
    key: String,
    title: String,
    seconds: f64,
    kernels: Option<usize>,
    detail: Option<String>,
}

/// Runs `rensou doctor`.
pub fn run(args: DoctorArgs) -> anyhow::Result<()> {
    if !(args.stall_after > 0.0 && args.stall_after.is_finite()) {
        bail!("--stall-after must be a positive number of seconds");
    }
    if args.k == 0 || args.batch == 0 {
        bail!("--k and --batch must be at least 1");
    }
    let log = cubecl_log(&args)?;
    let pid = std::process::id();
    println!("rensou {} doctor (pid {pid})", env!("CARGO_PKG_VERSION"));
    println!("build: {}", build_line());
    #[cfg(feature = "gpu")]
    {
        let setup = crate::gpu::configure_with(log.as_ref().map(|l| l.path.clone()));
        match &setup.cache {
            Some(dir) => println!(
                "cubecl caches: {} ({} stale lock{} removed)",
                dir.display(),
                setup.stale_locks_removed,
                if setup.stale_locks_removed == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            None => println!("cubecl caches: cubecl's default place (rensou's could not be made)"),
        }
        for problem in setup.note.iter().chain(&setup.error) {
            println!("cubecl settings: {problem}");
        }
    }
    if let Some(log) = &log {
        println!("cubecl log: {}", log.path.display());
    }
    let watched = Arc::new(Mutex::new(Watched::default()));
    let stall_after = Duration::try_from_secs_f64(args.stall_after)
        .map_err(|_| anyhow::anyhow!("--stall-after {} is out of range", args.stall_after))?;
    let watchdog = {
        let watched = Arc::clone(&watched);
        let log_path = log.as_ref().map(|l| l.path.clone());
        let json = args.json.clone();
        std::thread::Builder::new()
            .name("rensou-watchdog".into())
            .spawn(move || watchdog(&watched, stall_after, log_path.as_deref(), json.as_deref()))
            .context("starting the watchdog thread")?
    };

    println!("stages:");
    let mut doctor = Doctor {
        watched: Arc::clone(&watched),
        log: log.as_ref().map(|l| l.path.clone()),
        stall: args.simulate_stall.clone(),
        results: Vec::new(),
        terminal: std::io::stderr().is_terminal(),
    };
    let outcome = stages(&mut doctor, &args);
    if let Ok(mut w) = watched.lock() {
        w.done = true;
        w.current = None;
    }
    watchdog.thread().unpark();
    let _ = watchdog.join();

    let libraries = loaded_libraries();
    if !libraries.is_empty() {
        println!("driver libraries loaded:");
        for lib in &libraries {
            println!("  {lib}");
        }
    }
    let verdict = match &outcome {
        Ok(summary) => format!("verdict: OK: {summary}"),
        Err(e) => format!("verdict: FAILED: {e:#}"),
    };
    println!("{verdict}");
    if let Some(path) = &args.json {
        let report = json!({
            "build": build_json(),
            "backend": backend::NAME,
            "devices": devices(),
            "libraries": libraries,
            "k": args.k,
            "batch": args.batch,
            "stages": doctor.results.iter().map(StageResult::to_json).collect::<Vec<_>>(),
            "ok": outcome.is_ok(),
            "verdict": verdict,
        });
        rensou_api::fsutil::write_bytes_atomically(
            path,
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    match outcome {
        Ok(_) => {
            if let Some(log) = log {
                log.finish(true);
            }
            Ok(())
        }
        Err(e) => {
            if let Some(log) = log {
                log.finish(false);
            }
            Err(e.context("rensou doctor found a problem (see the stage above)"))
        }
    }
}

/// The stages, in order; returns the verdict's summary.
fn stages(doctor: &mut Doctor, args: &DoctorArgs) -> anyhow::Result<String> {
    type Inner = backend::Inner;
    let device = doctor.stage(
        "device",
        "device start",
        "starting the backend's device",
        || {
            let device = backend::try_device()?;
            let x = Tensor::<Inner, 1>::from_floats([1.0, 2.0, 3.0], &device);
            let sum = x.sum().into_scalar().elem::<f64>();
            if sum != 6.0 {
                bail!("1 + 2 + 3 gave {sum}");
            }
            Ok((device, None))
        },
    )?;
    println!("devices:");
    for line in devices() {
        println!("  {line}");
    }
    println!("  running on: {}", backend::describe(&device));

    let n = 256;
    let matmul = |a: &Tensor<Inner, 2>, b: &Tensor<Inner, 2>| -> anyhow::Result<f64> {
        // Checked against the same product summed another way: sum(A B) = 1ᵀ A B 1.
        let got = a
            .clone()
            .matmul(b.clone())
            .sum()
            .into_scalar()
            .elem::<f64>();
        let want = a
            .clone()
            .sum_dim(0)
            .matmul(b.clone().sum_dim(1))
            .into_scalar()
            .elem::<f64>();
        if !got.is_finite() || (got - want).abs() > 1e-3 * want.abs().max(1.0) {
            bail!("a {n}x{n} matmul summed to {got}, expected {want}");
        }
        Ok(got)
    };
    let (a, b) = doctor.stage(
        "matmul",
        &format!("matmul {n}x{n} (compile + run)"),
        "the first matmul: on a GPU, compiling its kernels (with autotune, every candidate), \
         then running them",
        || {
            let a = Tensor::<Inner, 2>::random([n, n], Distribution::Default, &device);
            let b = Tensor::<Inner, 2>::random([n, n], Distribution::Default, &device);
            matmul(&a, &b).map(|_| ((a, b), None))
        },
    )?;
    doctor.stage(
        "matmul-warm",
        &format!("matmul {n}x{n} (run)"),
        "the same matmul again, compiled",
        || matmul(&a, &b).map(|_| ((), None)),
    )?;

    doctor.stage(
        "autodiff",
        "small autodiff step",
        "forward, backward and an SGD update of a 64-32-1 MLP",
        || {
            autodiff_step::<backend::Train>(&device)
                .map(|loss| ((), Some(format!("loss {loss:.4}"))))
        },
    )?;

    let config =
        crate::bench_cmd::bench_config(2, NetChoice::Mlp, rensou_model::fusion::DEFAULT_FUSION)?;
    let design = config.fusion_design()?;
    let objective = resolve_objective(&*design, None, args.k)?;
    let what = format!(
        "paper MLP MMVAE, {} objective, K = {}, batch {}",
        objective.name(),
        args.k,
        args.batch
    );
    let (mut model, xs) = doctor.stage(
        "model",
        "paper model on the device",
        "initialising the MMVAE's parameters and random inputs on the device",
        || {
            let model = config.init::<backend::Train>(&device)?;
            let xs: Vec<Tensor<backend::Train, 2>> = config
                .modalities
                .iter()
                .map(|m| Tensor::random([args.batch, m.features()], Distribution::Default, &device))
                .collect();
            let _ = xs[0].clone().sum().into_scalar();
            Ok(((model, xs), None))
        },
    )?;
    let mut optim = paper_adam().init::<backend::Train, _>();
    let mut first = 0.0;
    let mut warm = Vec::new();
    for step in 1..=args.steps as usize {
        let (title, doing) = if step == 1 {
            (
                format!("training step 1 ({what})"),
                "the first training step: forward, backward (twice for dreg) and the Adam update, \
                 compiling every kernel they use"
                    .to_owned(),
            )
        } else {
            (
                format!("training step {step} (warm)"),
                format!("training step {step}, kernels already compiled"),
            )
        };
        let (next, seconds) =
            doctor.timed_stage(&format!("step-{step}"), &title, &doing, || {
                let (next, loss) = train_step(model.clone(), &mut optim, &xs, &objective, 1e-3)?;
                let loss = loss.into_scalar().elem::<f64>();
                if !loss.is_finite() {
                    bail!("the loss is {loss}");
                }
                Ok((next, Some(format!("loss {loss:.2}"))))
            })?;
        model = next;
        if step == 1 {
            first = seconds;
        } else {
            warm.push(seconds);
        }
    }
    warm.sort_by(f64::total_cmp);
    let median = warm[warm.len() / 2];
    let kernels = doctor
        .results
        .iter()
        .filter_map(|r| r.kernels)
        .sum::<usize>();
    let kernels = if doctor.log.is_some() {
        format!(", {kernels} kernels compiled in all")
    } else {
        String::new()
    };
    Ok(format!(
        "{} trains: first step {:.2} s, warm step {:.3} s (median of {}){kernels}",
        backend::describe(&device),
        first,
        median,
        warm.len()
    ))
}

/// A small MLP's forward, backward and SGD update; returns the loss.
fn autodiff_step<B: AutodiffBackend>(device: &B::Device) -> anyhow::Result<f64> {
    use burn::nn::{Linear, LinearConfig};
    #[derive(burn::module::Module, Debug)]
    struct Mlp<B: burn::tensor::backend::Backend> {
        a: Linear<B>,
        b: Linear<B>,
    }
    let mlp = Mlp {
        a: LinearConfig::new(64, 32).init(device),
        b: LinearConfig::new(32, 1).init(device),
    };
    let x = Tensor::<B, 2>::random([16, 64], Distribution::Default, device);
    let loss = mlp.b.forward(mlp.a.forward(x).tanh()).powi_scalar(2).mean();
    let value = loss.clone().into_scalar().elem::<f64>();
    let grads = GradientsParams::from_grads(loss.backward(), &mlp);
    let mut optim = SgdConfig::new().init::<B, Mlp<B>>();
    let mlp = optim.step(0.1, mlp, grads);
    let check = mlp.a.weight.val().sum().into_scalar().elem::<f64>();
    if !value.is_finite() || !check.is_finite() {
        bail!("loss {value}, updated weights sum to {check}");
    }
    Ok(value)
}

/// Stage bookkeeping: the live line, the watchdog's view, the kernel count.
struct Doctor {
    watched: Arc<Mutex<Watched>>,
    log: Option<PathBuf>,
    stall: Option<String>,
    results: Vec<StageResult>,
    terminal: bool,
}

impl Doctor {
    /// Runs one stage; see [`Doctor::timed_stage`].
    fn stage<T>(
        &mut self,
        key: &str,
        title: &str,
        doing: &str,
        f: impl FnOnce() -> anyhow::Result<(T, Option<String>)>,
    ) -> anyhow::Result<T> {
        self.timed_stage(key, title, doing, f).map(|(t, _)| t)
    }

    /// Runs one stage under the watchdog, with a live line; a panic inside it is a failure of
    /// the stage. Returns its value and seconds.
    fn timed_stage<T>(
        &mut self,
        key: &str,
        title: &str,
        doing: &str,
        f: impl FnOnce() -> anyhow::Result<(T, Option<String>)>,
    ) -> anyhow::Result<(T, f64)> {
        let kernels_before = self.log.as_deref().map(count_compiled);
        let spinner = self.live_line(title);
        let start = Instant::now();
        if let Ok(mut w) = self.watched.lock() {
            w.current = Some((title.to_owned(), doing.to_owned(), start));
        }
        let stall_here = self
            .stall
            .as_deref()
            .is_some_and(|s| key == s || key.starts_with(&format!("{s}-")));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if stall_here {
                simulated_stall();
            }
            f()
        }));
        let seconds = start.elapsed().as_secs_f64();
        if let Ok(mut w) = self.watched.lock() {
            w.current = None;
        }
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        let kernels = match (kernels_before, self.log.as_deref()) {
            (Some(before), Some(log)) => {
                settle(log);
                Some(count_compiled(log).saturating_sub(before))
            }
            _ => None,
        };
        let outcome = match outcome {
            Ok(result) => result,
            Err(panic) => Err(anyhow::anyhow!("panicked: {}", panic_message(&*panic))),
        };
        match outcome {
            Ok((value, detail)) => {
                let mut line = format!("  ok    {title:<58} {seconds:>8.3} s");
                if let Some(k) = kernels {
                    line.push_str(&format!("  {k:>4} kernels compiled"));
                }
                if let Some(d) = &detail {
                    line.push_str(&format!("  ({d})"));
                }
                println!("{line}");
                let result = StageResult {
                    key: key.to_owned(),
                    title: title.to_owned(),
                    seconds,
                    kernels,
                    detail,
                };
                if let Ok(mut w) = self.watched.lock() {
                    w.finished.push(result.to_json());
                }
                self.results.push(result);
                Ok((value, seconds))
            }
            Err(e) => {
                println!("  FAIL  {title:<58} {seconds:>8.3} s  {e:#}");
                Err(e.context(format!("stage '{title}'")))
            }
        }
    }

    /// On a terminal, a spinner with the stage's title and elapsed time (on stderr); in a log,
    /// one line saying the stage started, so a killed run still shows where it was.
    fn live_line(&self, title: &str) -> Option<indicatif::ProgressBar> {
        if self.terminal {
            let bar = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_message(title.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            Some(bar)
        } else {
            eprintln!("  ...   {title}");
            None
        }
    }
}

impl StageResult {
    fn to_json(&self) -> Value {
        json!({
            "stage": self.key,
            "title": self.title,
            "seconds": self.seconds,
            "kernels_compiled": self.kernels,
            "detail": self.detail,
        })
    }
}

/// Sleeps forever (the watchdog's test); its name shows in the stack report.
#[inline(never)]
fn simulated_stall() {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into())
}

/// The watchdog: when a stage makes no progress for `stall_after`, reports it and ends the
/// process.
fn watchdog(
    watched: &Mutex<Watched>,
    stall_after: Duration,
    log: Option<&Path>,
    json: Option<&Path>,
) {
    loop {
        let start = {
            let Ok(w) = watched.lock() else { return };
            if w.done {
                return;
            }
            match &w.current {
                Some((_, _, start)) => *start,
                None => {
                    drop(w);
                    std::thread::park_timeout(Duration::from_millis(100));
                    continue;
                }
            }
        };
        // Progress is the stage's start or cubecl's last log line (a kernel compiled, an
        // autotune result), whichever is later: a first step that compiles for ten minutes is
        // slow, not stalled; one that logs nothing for `stall_after` is.
        let idle = |start: Instant| {
            let running = start.elapsed();
            log.and_then(|l| std::fs::metadata(l).ok())
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .map_or(running, |since_log| since_log.min(running))
        };
        let waited = idle(start);
        if waited < stall_after {
            std::thread::park_timeout((stall_after - waited).min(Duration::from_millis(250)));
            continue;
        }
        // Stalled, unless the stage ended meanwhile: decide and report holding the lock, so the
        // stage cannot end (nor the next begin) while its stacks are taken.
        let Ok(w) = watched.lock() else { return };
        let Some((stage, doing, start)) = w.current.clone() else {
            continue;
        };
        let waited = idle(start);
        if waited < stall_after {
            continue;
        }
        stall_report(&w, &stage, &doing, start, waited, stall_after, log, json);
    }
}

/// Prints the stall report (and writes `--json`'s report, marked stalled), then ends the
/// process with [`STALL_EXIT`] without running exit handlers: the stalled thread may hold a
/// lock that a driver library's destructor would wait on.
#[allow(clippy::too_many_arguments)]
fn stall_report(
    w: &Watched,
    stage: &str,
    doing: &str,
    start: Instant,
    waited: Duration,
    stall_after: Duration,
    log: Option<&Path>,
    json: Option<&Path>,
) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "  STALL {stage}: no progress for {:.0} s (--stall-after {:.0}; running {:.0} s)",
        waited.as_secs_f64(),
        stall_after.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "stall report:");
    let _ = writeln!(out, "  stage: {stage}");
    let _ = writeln!(out, "  doing: {doing}");
    match log {
        Some(log) => {
            let _ = writeln!(
                out,
                "  cubecl log ({}; {} kernels compiled so far), last lines:",
                log.display(),
                count_compiled(log)
            );
            for line in tail_lines(log, 20) {
                let _ = writeln!(out, "    {line}");
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  cubecl log: none (this build runs no cubecl kernels)"
            );
        }
    }
    let _ = out.flush();
    let (how, stacks) = thread_stacks();
    let _ = writeln!(out, "  thread stacks ({how}):");
    for line in stacks.lines() {
        let _ = writeln!(out, "    {line}");
    }
    let verdict = format!(
        "verdict: STALLED: '{stage}' made no progress for {:.0} s; the report above says where \
         it waited",
        waited.as_secs_f64()
    );
    let _ = writeln!(out, "{verdict}");
    let _ = out.flush();
    if let Some(path) = json {
        let report = json!({
            "build": build_json(),
            "backend": backend::NAME,
            "stages": w.finished,
            "ok": false,
            "stalled": stage,
            "verdict": verdict,
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        let _ = rensou_api::fsutil::write_bytes_atomically(path, text.as_bytes());
    }
    if let Some(log) = log {
        eprintln!("cubecl's log is kept at {}", log.display());
    }
    // SAFETY: _exit ends the process at once; everything worth keeping is flushed above.
    unsafe { libc::_exit(STALL_EXIT) }
}

/// Every thread's stack: with gdb when present (symbols from the binary), else each thread's
/// name, state and kernel wait channel from /proc.
fn thread_stacks() -> (&'static str, String) {
    if let Some(text) = gdb_stacks() {
        return ("gdb", text);
    }
    ("/proc; install gdb for full stacks", proc_threads())
}

fn gdb_stacks() -> Option<String> {
    let pid = std::process::id();
    // Yama's ptrace_scope 1 lets a process be traced only by its ancestors unless it names a
    // tracer; gdb is our grandchild, so allow any (this process is about to exit anyway).
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PTRACER) changes only who may trace this process.
    unsafe {
        libc::prctl(
            libc::PR_SET_PTRACER,
            libc::PR_SET_PTRACER_ANY as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    // gdb stops every thread of this one while it prints, this thread too: its output goes to
    // a file (a pipe could fill and never drain), and the time limit is kept by a shell outside
    // this process, which also sends SIGCONT in case gdb is killed while it holds us stopped.
    let out = new_temp_file("stacks").ok()?;
    let script = format!(
        "timeout -s KILL 30 gdb -nx -batch -p {pid} -ex 'set pagination off' \
         -ex 'thread apply all bt 40' >'{}' 2>/dev/null; kill -CONT {pid}",
        out.display()
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    status.ok()?;
    let stacks: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Thread ") || l.starts_with('#'))
        .collect();
    (!stacks.is_empty()).then(|| stacks.join("\n"))
}

/// A new, empty file of this process's in the temporary directory (create_new: never an
/// existing file or link).
fn new_temp_file(what: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir();
    let mut attempt = 0u32;
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!(
            "rensou-doctor-{}-{nanos:x}-{attempt}.{what}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(e) if attempt >= 20 => return Err(e),
            Err(_) => attempt += 1,
        }
    }
}

fn proc_threads() -> String {
    let mut out = String::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return "(no /proc/self/task)".into();
    };
    let mut tasks: Vec<PathBuf> = tasks.flatten().map(|e| e.path()).collect();
    tasks.sort();
    for task in tasks {
        let read = |f: &str| {
            std::fs::read_to_string(task.join(f))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let state = read("stat")
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default();
        let tid = task.file_name().map(|n| n.to_string_lossy().into_owned());
        out.push_str(&format!(
            "thread {} \"{}\" state {} waiting in {}\n",
            tid.unwrap_or_default(),
            read("comm"),
            state,
            read("wchan")
        ));
        for frame in read("stack").lines() {
            out.push_str(&format!("  {frame}\n"));
        }
    }
    out
}

/// Waits (at most a second) until cubecl's log stops growing: its lines are written by a
/// thread of cubecl's own, a moment after the kernel was compiled.
fn settle(log: &Path) {
    let size = || std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let mut last = size();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        let now = size();
        if now == last {
            return;
        }
        last = now;
    }
}

/// The last `n` lines of a file (empty when unreadable).
fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(300).collect())
        .collect()
}

/// Kernels compiled so far, from cubecl's compilation log: one `[Compiling ...]` entry each.
fn count_compiled(log: &Path) -> usize {
    let text = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| is_compile_line(l))
        .count()
}

/// Whether a cubecl log line records a kernel compilation.
pub(crate) fn is_compile_line(line: &str) -> bool {
    line.starts_with("[Compiling kernel]")
}

/// The cubecl log doctor reads: the user's `--log` or `CUBECL_DEBUG_LOG` file, else a
/// temporary one. `None` on the CPU build.
struct CubeclLog {
    path: PathBuf,
    /// Removed at the end when all went well.
    temporary: bool,
}

impl CubeclLog {
    fn finish(self, ok: bool) {
        if self.temporary && ok {
            let _ = std::fs::remove_file(&self.path);
        } else if !ok {
            eprintln!("cubecl's log is kept at {}", self.path.display());
        }
    }
}

fn cubecl_log(args: &DoctorArgs) -> anyhow::Result<Option<CubeclLog>> {
    if !backend::IS_GPU {
        return Ok(None);
    }
    if let Some(path) = &args.log {
        // A fresh file of our own: refuse to write through one that exists (it may be a link).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("--log {}: creating a new file", path.display()))?;
        return Ok(Some(CubeclLog {
            path: path.clone(),
            temporary: false,
        }));
    }
    if let Some(path) = std::env::var_os("CUBECL_DEBUG_LOG")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(Some(CubeclLog {
            path,
            temporary: false,
        }));
    }
    let path = new_temp_file("log").context("creating a temporary file for cubecl's log")?;
    Ok(Some(CubeclLog {
        path,
        temporary: true,
    }))
}

/// The build's backend features, one line.
fn build_line() -> String {
    let features: Vec<&str> = build_features();
    format!(
        "backend {} ({}), features [{}], {} profile",
        backend::NAME,
        if backend::IS_GPU { "GPU" } else { "CPU" },
        features.join(", "),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}

fn build_features() -> Vec<&'static str> {
    [
        ("flex", cfg!(feature = "flex")),
        ("cuda", cfg!(feature = "cuda-bare")),
        ("wgpu", cfg!(feature = "wgpu-bare")),
        ("gpu-fusion", cfg!(feature = "gpu-fusion")),
        ("gpu-autotune", cfg!(feature = "gpu-autotune")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

fn build_json() -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "backend": backend::NAME,
        "features": build_features(),
        "release": !cfg!(debug_assertions),
    })
}

/// One line per device each compiled-in backend sees.
fn devices() -> Vec<String> {
    let mut lines = vec![format!(
        "cpu: {}, {} threads for the CPU backend",
        cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        backend::cpu_threads()
    )];
    lines.extend(crate::backend::gpu_devices());
    lines
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
}

/// Driver libraries mapped into this process (CUDA driver, NVRTC, Vulkan loader and ICDs),
/// from /proc/self/maps: the ones actually loaded, wherever the loader found them.
fn loaded_libraries() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut libs: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            [
                "libcuda.",
                "libnvrtc",
                "libnvJitLink",
                "libvulkan",
                "libnvidia",
                "libLLVM",
            ]
            .iter()
            .any(|k| name.starts_with(k))
        })
        .map(str::to_owned)
        .collect();
    libs.sort();
    libs.dedup();
    libs
}
