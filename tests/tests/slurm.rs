//! `rensou paper slurm --submit` against a real Slurm: a single-node cluster on localhost
//! (slurmctld + slurmd + munged, configured and started by `tests/slurm/cluster.sh`).
//!
//! Needs Slurm (Debian's slurm-wlm and munge) and root. Without them the test says so and
//! passes, unless `RENSOU_REQUIRE_SLURM=1` (set by `.ci/run`, which installs Slurm), where it
//! fails: in CI it always runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{ok, rensou_bin, tiny_mnist};

/// The running cluster; stopped on drop, whatever the test's outcome.
struct Cluster {
    script: PathBuf,
    state: PathBuf,
    conf: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.state)
            .output();
    }
}

fn slurm_available() -> Result<(), String> {
    let which = |p: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(which("slurmctld") && which("slurmd") && which("sbatch") && which("munged")) {
        return Err("Slurm is not installed (apt-get install slurm-wlm munge)".into());
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("starting slurmctld and slurmd needs root".into());
    }
    Ok(())
}

fn start_cluster(state: &Path) -> Cluster {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("slurm/cluster.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .arg(state)
        .output()
        .expect("run cluster.sh");
    assert!(
        out.status.success(),
        "cluster.sh start failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = state.join("slurm.conf").display().to_string();
    Cluster {
        script,
        state: state.to_path_buf(),
        conf,
    }
}

impl Cluster {
    fn cmd(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .expect("run a Slurm command")
    }

    fn rensou(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(rensou_bin())
            .args(args)
            .current_dir(cwd)
            .env("SLURM_CONF", &self.conf)
            .env_remove("RENSOU_MNIST")
            .output()
            .expect("run rensou")
    }

    /// Waits until none of `jobs` is in the queue.
    fn wait_for(&self, jobs: &[&str], limit: Duration) {
        let start = Instant::now();
        loop {
            let q = self.cmd("squeue", &["-h", "-j", &jobs.join(","), "-o", "%i %T"]);
            let text = String::from_utf8_lossy(&q.stdout).into_owned();
            if text.trim().is_empty() {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "jobs still queued after {limit:?}:\n{text}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.state.join("log/jobcomp.txt")).unwrap_or_default()
    }
}

/// `submitted job array A (N tasks) and report job R` -> (A, R).
fn job_ids(stdout: &str) -> (String, String) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("submitted job array"))
        .unwrap_or_else(|| panic!("no submission line in: {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[3].to_owned(), words[words.len() - 1].to_owned())
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
        .expect("JSON")
}

#[test]
fn a_study_runs_as_a_slurm_job_array() {
    if let Err(why) = slurm_available() {
        assert!(
            std::env::var("RENSOU_REQUIRE_SLURM").is_err(),
            "RENSOU_REQUIRE_SLURM is set but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cluster = start_cluster(&d.join("slurm-state"));
    tiny_mnist(&d.join("mnist"), 3, 2);
    let study = [
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--k",
        "2",
        "--max-train-pairs",
        "64",
        "--mnist",
        "mnist",
    ];

    // The study as an array of 2 seeds x 3 models, and the report job after it.
    let mut submit = vec![
        "paper",
        "slurm",
        "--submit",
        "--cpus-per-task",
        "1",
        "--out",
        "array",
    ];
    submit.extend_from_slice(&study);
    let out = cluster.rensou(d, &submit);
    let stdout = ok(&out);
    let (array, report) = job_ids(&stdout);
    let script = std::fs::read_to_string(d.join("array/slurm/tasks.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-5") && script.contains("--requeue"),
        "{script}"
    );
    cluster.wait_for(&[&array, &report], Duration::from_secs(300));
    let array_dir = d.join("array");
    assert!(
        array_dir.join("report.md").is_file(),
        "no report; report job log:\n{}\n{}",
        std::fs::read_to_string(array_dir.join("slurm/logs/report.log")).unwrap_or_default(),
        cluster.logs()
    );
    let from_slurm = summary(&array_dir);
    assert_eq!(
        from_slurm["missing_tasks"],
        serde_json::json!([]),
        "{from_slurm}"
    );

    // The same plan run by one sequential `rensou paper`: the same numbers.
    let mut sequential = vec!["paper", "--out", "sequential"];
    sequential.extend_from_slice(&study);
    ok(&cluster.rensou(d, &sequential));
    let from_one_process = summary(&d.join("sequential"));
    assert_eq!(from_slurm["comparisons"], from_one_process["comparisons"]);
    assert_eq!(from_slurm["verdicts"], from_one_process["verdicts"]);
    eprintln!(
        "slurm study and comparison: {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // A task killed mid-training and requeued (as preemption does) resumes from its checkpoint.
    let t1 = Instant::now();
    let submit = vec![
        "paper",
        "slurm",
        "--submit",
        "--cpus-per-task",
        "2",
        "--out",
        "requeue",
        "--seeds",
        "1",
        "--epochs",
        "40",
        "--k",
        "2",
        "--max-train-pairs",
        "64",
        "--mnist",
        "mnist",
    ];
    let stdout = ok(&cluster.rensou(d, &submit));
    let (array, report) = job_ids(&stdout);
    let run = d.join("requeue/runs/mmvae-s0");
    assert!(
        common::wait_for_file(
            &run.join("checkpoints/epoch-003/state.json"),
            Duration::from_secs(180)
        ),
        "task 0 made no checkpoint: {}",
        cluster.logs()
    );
    let requeue = cluster.cmd("scontrol", &["requeue", &format!("{array}_0")]);
    assert!(
        requeue.status.success(),
        "scontrol requeue: {}",
        String::from_utf8_lossy(&requeue.stderr)
    );
    cluster.wait_for(&[&array, &report], Duration::from_secs(300));
    let log = std::fs::read_to_string(d.join("requeue/slurm/logs/task-0.log")).unwrap_or_default();
    assert!(
        log.contains("restart 1"),
        "the task ran again after the requeue:\n{log}"
    );
    assert!(
        log.contains("resuming") && log.contains("after epoch"),
        "{log}"
    );
    let epochs = common::metric_epochs(&run);
    assert_eq!(epochs, (1..=40).collect::<Vec<_>>(), "every epoch once");
    assert_eq!(
        summary(&d.join("requeue"))["missing_tasks"],
        serde_json::json!([])
    );
    eprintln!("requeue scenario: {:.1} s", t1.elapsed().as_secs_f64());
    eprintln!("slurm test wall time: {:.1} s", t0.elapsed().as_secs_f64());
}
