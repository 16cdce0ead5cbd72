//! `rensou paper slurm`: the study as a Slurm job array (one array element per task) plus a
//! report job that runs once the array has ended, written as sbatch scripts and, with
//! `--submit`, submitted.
//!
//! Each element runs `rensou paper run-task --task $SLURM_ARRAY_TASK_ID`, which is idempotent:
//! a requeued or preempted element (`--requeue`, `scontrol requeue`) resumes its run from the
//! last checkpoint, a finished one is skipped. The report job (`--dependency=afterany:ARRAY`)
//! writes the report from whatever finished and names what did not.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;
use rensou_api::fsutil::write_bytes_atomically;

use super::layout::StudyLayout;
use super::tasks::Study;
use super::PaperArgs;

/// Arguments of `rensou paper slurm`.
#[derive(Args)]
pub struct SlurmArgs {
    /// The study's settings (as for `rensou paper`).
    #[command(flatten)]
    pub paper: PaperArgs,
    /// Slurm partition (default: the cluster's default).
    #[arg(long)]
    pub partition: Option<String>,
    /// GPUs per task (CUDA build; each task trains on one).
    #[arg(long)]
    pub gpus_per_task: Option<usize>,
    /// Wall-time limit per task, HH:MM:SS (or D-HH:MM:SS).
    #[arg(long)]
    pub time: Option<String>,
    /// CPU cores per task (the task's CPU threads).
    #[arg(long, default_value_t = 2)]
    pub cpus_per_task: usize,
    /// Extra `#SBATCH` lines' options, repeatable (e.g. `--sbatch=--account=proj42`).
    #[arg(long = "sbatch")]
    pub extra: Vec<String>,
    /// Submit both jobs with sbatch (otherwise only write the scripts and print the commands).
    #[arg(long)]
    pub submit: bool,
    /// The sbatch program.
    #[arg(long, default_value = "sbatch")]
    pub sbatch_program: String,
}

/// Checks a Slurm time limit: `MM`, `HH:MM:SS`, `D-HH:MM:SS` and the other forms sbatch takes
/// are digits with `:` and at most one `-`.
fn check_time(time: &str) -> anyhow::Result<()> {
    let ok = !time.is_empty()
        && time
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '-')
        && time.matches('-').count() <= 1
        && time.matches(':').count() <= 2
        && !time.starts_with([':', '-'])
        && !time.ends_with([':', '-']);
    if !ok {
        bail!("--time `{time}` is not a Slurm time limit (e.g. 04:00:00 or 1-12:00:00)");
    }
    Ok(())
}

/// Refuses a value that would land in a generated script with a control character in it (a
/// newline would end the `#SBATCH` comment and start a command bash runs).
fn check_no_control(what: &str, value: &str) -> anyhow::Result<()> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        bail!(
            "{what} holds a control character ({}); it would break the generated sbatch \
             script, so it is refused",
            c.escape_default()
        );
    }
    Ok(())
}

/// Checks a Slurm partition name (or a comma-separated list of them): letters, digits and
/// `_ . -` only.
fn check_partition(partition: &str) -> anyhow::Result<()> {
    let ok = !partition.is_empty()
        && partition.split(',').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        });
    if !ok {
        bail!(
            "--partition `{}` is not a Slurm partition name (letters, digits, `_`, `.`, `-`; \
             several separated by commas)",
            partition.escape_default()
        );
    }
    Ok(())
}

/// Checks an extra `#SBATCH` option: one line, starting with `-`.
fn check_extra(extra: &str) -> anyhow::Result<()> {
    check_no_control(&format!("--sbatch=`{}`", extra.escape_default()), extra)?;
    if !extra.trim_start().starts_with('-') {
        bail!("--sbatch=`{extra}` is not an sbatch option (e.g. --sbatch=--account=proj42)");
    }
    Ok(())
}

/// Writes `path` as one argument of an `#SBATCH` line: sbatch reads a backslash as "the next
/// character is literal" (and `#`, quotes and blanks as syntax otherwise), and a `%` in a file
/// name as a pattern, written `%%` for itself.
fn sbatch_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '%' {
            out.push_str("%%");
        } else if c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c) {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

/// Quotes `s` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The `#SBATCH` header shared by both scripts; `logs` is the log directory, `log` the file
/// name pattern in it (`task-%a.log`).
fn header(args: &SlurmArgs, name: &str, logs: &Path, log: &str) -> String {
    let mut lines = vec![
        "#!/bin/bash".to_owned(),
        format!("#SBATCH --job-name={name}"),
        format!(
            "#SBATCH --output={}/{log}",
            sbatch_path(&logs.display().to_string())
        ),
        "#SBATCH --open-mode=append".to_owned(),
    ];
    if let Some(p) = &args.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(t) = &args.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    for extra in &args.extra {
        lines.push(format!("#SBATCH {extra}"));
    }
    lines.join("\n") + "\n"
}

/// The two scripts: the task array and the report job.
pub struct Scripts {
    /// `slurm/tasks.sbatch`.
    pub tasks: PathBuf,
    /// `slurm/report.sbatch`.
    pub report: PathBuf,
    /// `slurm/logs/`, where the jobs write their output.
    pub logs: PathBuf,
}

/// Writes `OUT/slurm/tasks.sbatch` and `OUT/slurm/report.sbatch` for `study`.
pub fn write_scripts(study: &Study, args: &SlurmArgs, exe: &Path) -> anyhow::Result<Scripts> {
    let out = study
        .out
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", study.out.display()))?;
    // Every value that lands in a script: no control character anywhere (the options are
    // checked in `run`, the paths here).
    for (what, path) in [
        ("the study path", out.as_path()),
        ("the rensou executable's path", exe),
    ] {
        let text = path.display().to_string();
        check_no_control(&format!("{what} `{}`", text.escape_default()), &text)?;
    }
    let layout = StudyLayout::new(&out);
    let logs = layout.slurm_logs();
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let exe = sh_quote(&exe.display().to_string());
    let out_q = sh_quote(&out.display().to_string());
    let n = study.tasks.len();

    let mut tasks = header(args, "rensou-paper", &logs, "task-%a.log");
    tasks.push_str(&format!("#SBATCH --array=0-{}\n", n.saturating_sub(1)));
    tasks.push_str(&format!("#SBATCH --cpus-per-task={}\n", args.cpus_per_task));
    tasks.push_str("#SBATCH --ntasks=1\n#SBATCH --requeue\n");
    if let Some(g) = args.gpus_per_task {
        tasks.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    tasks.push_str(&format!(
        "# One element per task of {out_q} (tasks.json lists them by index).\n\
         # Idempotent: a finished task is skipped, a requeued or preempted one resumes from its\n\
         # last checkpoint; two elements never train the same task (a lock in runs/).\n\
         set -euo pipefail\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{}}}\"\n\
         echo \"[$(date -Is)] $(hostname) task $SLURM_ARRAY_TASK_ID restart ${{SLURM_RESTART_COUNT:-0}}\"\n\
         exec {exe} paper run-task --out {out_q} --task \"$SLURM_ARRAY_TASK_ID\"\n",
        args.cpus_per_task
    ));

    let mut report = header(args, "rensou-paper-report", &logs, "report.log");
    report.push_str("#SBATCH --cpus-per-task=1\n#SBATCH --ntasks=1\n");
    report.push_str(&format!(
        "# Runs after the task array has ended (submitted with --dependency=afterany:ARRAY):\n\
         # the report covers the finished tasks and names the others.\n\
         set -euo pipefail\n\
         exec {exe} paper report --out {out_q}\n"
    ));

    let scripts = Scripts {
        tasks: layout.slurm_tasks(),
        report: layout.slurm_report(),
        logs,
    };
    write_bytes_atomically(&scripts.tasks, tasks.as_bytes())?;
    write_bytes_atomically(&scripts.report, report.as_bytes())?;
    for path in [&scripts.tasks, &scripts.report] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(scripts)
}

/// Runs `sbatch --parsable ARGS SCRIPT` and returns the job id it prints.
fn sbatch(program: &str, extra: &[String], script: &Path) -> anyhow::Result<String> {
    let output = Command::new(program)
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .with_context(|| format!("cannot run `{program}` (is Slurm installed here?)"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `--parsable` prints `JOBID` or `JOBID;CLUSTER`.
    let id = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("`{program}` printed no job id (got `{}`)", stdout.trim());
    }
    Ok(id)
}

/// `rensou paper slurm`.
pub fn run(args: &SlurmArgs) -> anyhow::Result<()> {
    // Values that land in the scripts, checked before anything is written.
    if let Some(t) = &args.time {
        check_time(t)?;
    }
    if let Some(p) = &args.partition {
        check_partition(p)?;
    }
    for extra in &args.extra {
        check_extra(extra)?;
    }
    if let Some(out) = &args.paper.out {
        let text = out.display().to_string();
        check_no_control(&format!("--out `{}`", text.escape_default()), &text)?;
    }
    if args.cpus_per_task == 0 {
        bail!("--cpus-per-task must be at least 1");
    }
    if args.gpus_per_task == Some(0) {
        bail!("--gpus-per-task must be at least 1 when given");
    }
    if args.paper.jobs != 1 || args.paper.devices.is_some() {
        bail!("--jobs and --devices are for local runs; Slurm places the tasks");
    }
    let study = Study::prepare(&args.paper)?;
    let exe = std::env::current_exe().context("cannot find the rensou executable")?;
    let scripts = write_scripts(&study, args, &exe)?;
    println!(
        "wrote {} ({} tasks as one job array) and {}",
        scripts.tasks.display(),
        study.tasks.len(),
        scripts.report.display()
    );
    if !args.submit {
        println!(
            "submit with:\n  ARRAY=$({} --parsable {})\n  {} --dependency=afterany:$ARRAY {}",
            sh_quote(&args.sbatch_program),
            sh_quote(&scripts.tasks.display().to_string()),
            sh_quote(&args.sbatch_program),
            sh_quote(&scripts.report.display().to_string())
        );
        return Ok(());
    }
    let array = sbatch(&args.sbatch_program, &[], &scripts.tasks)?;
    let report = sbatch(
        &args.sbatch_program,
        &[format!("--dependency=afterany:{array}")],
        &scripts.report,
    )?;
    println!(
        "submitted job array {array} ({} tasks) and report job {report}",
        study.tasks.len()
    );
    println!(
        "follow with `squeue -j {array},{report}`; logs in {}",
        scripts.logs.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_in_slurm_forms_pass() {
        for t in ["30", "04:00:00", "1-12:00:00", "1-12", "90:00"] {
            check_time(t).unwrap();
        }
        for t in ["", "4h", "1-2-3", ":30", "01:00:00:00", "$(rm)"] {
            assert!(check_time(t).is_err(), "{t}");
        }
    }

    #[test]
    fn script_values_cannot_start_a_line() {
        for p in ["gpu", "gpu,debug", "a_b.c-d"] {
            check_partition(p).unwrap();
        }
        for p in ["gpu\ntouch X", "", "gpu;rm", "a b", "gpu,", "$(x)"] {
            assert!(check_partition(p).is_err(), "{p:?}");
        }
        check_extra("--account=proj42").unwrap();
        check_extra("--comment=\"a b\"").unwrap();
        for e in ["--account=x\ntouch X", "--a=\rb", "touch X", ""] {
            assert!(check_extra(e).is_err(), "{e:?}");
        }
        assert_eq!(sbatch_path("/data/run_1"), "/data/run_1");
        assert_eq!(sbatch_path("/my runs/#1 'q'"), "/my\\ runs/\\#1\\ \\'q\\'");
        assert_eq!(sbatch_path("/a%b"), "/a%%b");
    }

    #[test]
    fn shell_quoting_keeps_odd_paths_one_word() {
        assert_eq!(sh_quote("/data/run_1"), "/data/run_1");
        assert_eq!(sh_quote("/my runs/x"), "'/my runs/x'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }
}
