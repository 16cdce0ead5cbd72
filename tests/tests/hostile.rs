//! A hostile or careless user against the study commands: values that would inject commands
//! into the generated Slurm scripts, symbolic links planted where rensou writes, studies larger
//! than a machine holds, and two studies started at once. Each refusal is checked for its exit
//! code, a one-line message naming the problem, and the hashes of every file under the test
//! directory and of a decoy outside it, before and after; the generated scripts are run under
//! bash with a stub `sbatch`.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{ok, rensou, rensou_bin, tiny_mnist};

/// Non-zero exit, no panic, and exactly one error line on stderr (a command may print its
/// start-up line before it); returns that line.
fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "rensou should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    errors[0].to_owned()
}

/// A test directory `work/` (the commands' working directory, with a tiny MNIST) and a decoy
/// file outside it that no command may touch.
struct Scene {
    root: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("work")).expect("work dir");
        std::fs::write(root.path().join("decoy.txt"), b"precious, not rensou's").expect("decoy");
        tiny_mnist(&root.path().join("work/mnist"), 3, 2);
        Scene { root }
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn decoy(&self) -> PathBuf {
        self.root.path().join("decoy.txt")
    }

    /// Runs `rensou args` in `work/`.
    fn rensou(&self, args: &[&str]) -> Output {
        rensou(&self.work(), args)
    }

    /// Runs `rensou args` expecting a one-line error, and checks that nothing under the root
    /// (the work directory and the decoy) changed. Returns the error.
    fn refused(&self, args: &[&str]) -> String {
        let before = snapshot(self.root.path());
        let e = fails(&self.rensou(args));
        assert_eq!(
            before,
            snapshot(self.root.path()),
            "`rensou {}` changed files",
            args.join(" ")
        );
        e
    }

    /// Asserts the decoy is as written.
    fn decoy_intact(&self) {
        assert_eq!(
            std::fs::read(self.decoy()).expect("decoy"),
            b"precious, not rensou's"
        );
    }
}

/// Every entry under `dir` without following links: files by size and FNV-1a hash, links by
/// their target.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&p).unwrap_or_default();
                out.insert(rel, format!("link -> {}", target.display()));
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let h = rensou_api::rng::fnv1a_bytes(&bytes);
                out.insert(rel, format!("{} bytes, {h:016x}", bytes.len()));
            }
        }
    }
    out
}

/// The settings of a tiny study (one seed, one epoch of 64 pairs, K = 2) in `out`.
fn tiny_study(out: &str) -> Vec<String> {
    [
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--k",
        "2",
        "--max-train-pairs",
        "64",
        "--mnist",
        "mnist",
        "--out",
        out,
    ]
    .map(String::from)
    .to_vec()
}

fn args<'a>(head: &[&'a str], tail: &'a [String]) -> Vec<&'a str> {
    head.iter()
        .copied()
        .chain(tail.iter().map(String::as_str))
        .collect()
}

#[test]
fn slurm_values_that_could_start_a_command_are_refused() {
    let scene = Scene::new();
    let study = tiny_study("study");
    for (extra, named) in [
        ("--partition=gpu\ntouch X", "--partition"),
        ("--partition=gpu;touch X", "--partition"),
        ("--sbatch=--account=a\ntouch X", "--sbatch"),
        ("--sbatch=--account=a\rtouch X", "--sbatch"),
        ("--sbatch=touch X", "not an sbatch option"),
    ] {
        let e = scene.refused(&args(&["paper", "slurm", extra], &study));
        assert!(e.contains(named), "{extra:?}: {e}");
    }
    let bad_out = tiny_study("st\nudy");
    let e = scene.refused(&args(&["paper", "slurm"], &bad_out));
    assert!(
        e.contains("--out") && e.contains("control character"),
        "{e}"
    );
    scene.decoy_intact();
}

#[test]
fn generated_slurm_scripts_run_only_what_rensou_meant() {
    let scene = Scene::new();
    let work = scene.work();
    // A study directory whose name holds every character a shell or sbatch treats specially.
    let odd = "my study #1 $(touch PWNED-dir) `touch PWNED-tick` 'q' \"d\" 50%";
    let study = tiny_study(odd);
    // A stub sbatch: records what it was given, prints a job id.
    let stub = work.join("stub-sbatch");
    std::fs::write(
        &stub,
        "#!/bin/bash\nprintf '%s\\n' \"$@\" >> \"$(dirname \"$0\")/sbatch-calls\"\necho 4242\n",
    )
    .expect("stub");
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let stub_arg = format!("--sbatch-program={}", stub.display());
    let out = ok(&scene.rensou(&args(
        &[
            "paper",
            "slurm",
            "--partition",
            "gpu,debug",
            "--sbatch=--comment=a b; touch PWNED-extra",
            "--submit",
            &stub_arg,
        ],
        &study,
    )));
    assert!(out.contains("4242"), "{out}");
    let calls = std::fs::read_to_string(work.join("sbatch-calls")).expect("sbatch was called");
    assert!(calls.contains("--dependency=afterany:4242"), "{calls}");

    let dir = work.join(odd).join("slurm");
    let tasks = std::fs::read_to_string(dir.join("tasks.sbatch")).expect("tasks.sbatch");
    // Every line before the commands is a comment or the shebang; no bare command sneaked in.
    let body: Vec<&str> = tasks
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(body.len(), 4, "{tasks}");
    assert!(tasks.contains("#SBATCH --partition=gpu,debug"), "{tasks}");
    assert!(tasks.contains("50%%"), "{tasks}");

    // Run both scripts under bash as Slurm would: the task script with an index the study
    // does not have (so it ends quickly, in rensou's own error naming the study), the report
    // script for real.
    let run = |script: &str, index: &str| {
        Command::new("bash")
            .arg(dir.join(script))
            .current_dir(&work)
            .env("SLURM_ARRAY_TASK_ID", index)
            .env("SLURM_CPUS_PER_TASK", "1")
            .output()
            .expect("bash")
    };
    let t = run("tasks.sbatch", "99");
    let stderr = String::from_utf8_lossy(&t.stderr);
    assert!(!t.status.success(), "{stderr}");
    assert!(
        stderr.contains("has no task `99`") && stderr.contains(odd),
        "the study path must reach rensou whole: {stderr}"
    );
    let r = run("report.sbatch", "");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(work.join(odd).join("report.md").is_file());
    // Nothing the values held ran, anywhere.
    let all = snapshot(scene.root.path());
    let pwned: Vec<_> = all
        .keys()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("PWNED"))
        })
        .collect();
    assert!(pwned.is_empty(), "{pwned:?}");
    scene.decoy_intact();
}

#[test]
fn planted_links_are_never_written_through() {
    let scene = Scene::new();
    let work = scene.work();
    let study = tiny_study("study");
    ok(&scene.rensou(&args(&["paper", "plan"], &study)));
    let s = work.join("study");

    // A lock file that is a link: refused, naming it.
    std::fs::create_dir_all(s.join("runs")).expect("runs");
    symlink(scene.decoy(), s.join("runs/mmvae-s0.lock")).expect("link");
    let e = scene.refused(&["paper", "run-task", "--out", "study", "--task", "mmvae-s0"]);
    assert!(
        e.contains("mmvae-s0.lock") && e.contains("symbolic link"),
        "{e}"
    );
    std::fs::remove_file(s.join("runs/mmvae-s0.lock")).expect("unlink");

    // A task's log that is a link: `paper --jobs 2` refuses it before starting any task.
    std::fs::create_dir_all(s.join("logs")).expect("logs");
    symlink(scene.decoy(), s.join("logs/mmvae-s0.log")).expect("link");
    let e = fails(&scene.rensou(&args(&["paper", "--jobs", "2"], &study)));
    assert!(
        e.contains("mmvae-s0.log") && e.contains("symbolic link"),
        "{e}"
    );
    scene.decoy_intact();
    std::fs::remove_file(s.join("logs/mmvae-s0.log")).expect("unlink");

    // Whole files (the task list, a run's task record, the report and its figures) that are
    // links are replaced by rensou's own files; their targets stay as they were. The study
    // runs once, then the files are swapped for links and one task's probes redone.
    ok(&scene.rensou(&args(&["paper"], &study)));
    let planted = [
        "tasks.json",
        "report.md",
        "report.html",
        "summary.json",
        "runs/vae-oscn-s0/task.json",
        "figures/curves-mmvae.png",
    ];
    for rel in planted {
        let p = s.join(rel);
        assert!(p.is_file(), "{rel} should exist after the study");
        std::fs::remove_file(&p).expect("remove");
        symlink(scene.decoy(), &p).expect("link");
    }
    std::fs::remove_file(s.join("runs/vae-oscn-s0/probes/summary.json")).expect("unprobe");
    ok(&scene.rensou(&args(&["paper"], &study)));
    for rel in planted {
        let meta = std::fs::symlink_metadata(s.join(rel)).expect(rel);
        assert!(
            meta.file_type().is_file(),
            "{rel} should be rensou's own file now"
        );
    }
    scene.decoy_intact();
}

#[test]
fn a_study_larger_than_a_machine_holds_is_refused_before_anything_is_written() {
    let scene = Scene::new();
    let e = scene.refused(&["paper", "plan", "--seeds", "1000000", "--out", "big"]);
    assert!(
        e.contains("--seeds 1000000") && e.contains("lower `--seeds`"),
        "{e}"
    );
    let e = scene.refused(&["paper", "plan", "--epochs", "10000000", "--out", "big"]);
    assert!(e.contains("lower `--epochs`"), "{e}");
    // A plan on disk that asks for too much (written by hand, or by an older rensou) is refused
    // at once by the commands that read it.
    let work = scene.work();
    ok(&scene.rensou(&args(&["paper", "plan"], &tiny_study("study"))));
    let plan_path = work.join("study/plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).expect("plan")).expect("json");
    plan["seeds"] = 1_000_000.into();
    std::fs::write(&plan_path, plan.to_string()).expect("write");
    let start = Instant::now();
    let e = scene.refused(&["paper", "report", "--out", "study"]);
    assert!(e.contains("lower `--seeds`"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_study_with_other_settings_is_refused_naming_them() {
    let scene = Scene::new();
    ok(&scene.rensou(&args(&["paper", "plan"], &tiny_study("study"))));
    let mut other = tiny_study("study");
    other[3] = "3".into(); // --epochs 3
    other[5] = "4".into(); // --k 4
    let e = scene.refused(&args(&["paper", "plan"], &other));
    assert!(
        e.contains("epochs: 1 there, 3 here (--epochs)") && e.contains("k: 2 there, 4 here (--k)"),
        "{e}"
    );
    // More seeds extend the same study.
    let mut more = tiny_study("study");
    more[1] = "2".into();
    ok(&scene.rensou(&args(&["paper", "plan"], &more)));
}

#[test]
fn two_studies_started_at_once_on_one_directory_both_proceed() {
    let scene = Scene::new();
    for round in 0..3 {
        let out = format!("study-{round}");
        let study = tiny_study(&out);
        let a = args(&["paper", "plan"], &study);
        let spawn = || {
            Command::new(rensou_bin())
                .args(&a)
                .current_dir(scene.work())
                .output()
        };
        let (first, second) = std::thread::scope(|s| {
            let one = s.spawn(spawn);
            let two = s.spawn(spawn);
            (
                one.join().expect("thread").expect("run"),
                two.join().expect("thread").expect("run"),
            )
        });
        ok(&first);
        ok(&second);
        assert!(scene.work().join(&out).join("tasks.json").is_file());
    }
}

#[test]
fn a_plan_that_cannot_be_completed_leaves_no_plan_behind() {
    let scene = Scene::new();
    // No MNIST where it is said to be: the dataset cannot be built.
    let mut study = tiny_study("study");
    study[9] = "no-such-mnist".into();
    fails(&scene.rensou(&args(&["paper", "plan"], &study)));
    let s = scene.work().join("study");
    assert!(!s.join("plan.json").exists());
    assert!(!s.join("tasks.json").exists());
    // The directory can be planned again with the right settings.
    ok(&scene.rensou(&args(&["paper", "plan"], &tiny_study("study"))));
}

#[test]
fn a_dataset_config_with_only_a_seed_builds_the_default_pair() {
    let scene = Scene::new();
    let work = scene.work();
    std::fs::write(work.join("seed.toml"), "seed = 3\n").expect("write");
    ok(&scene.rensou(&[
        "data",
        "build",
        "--config",
        "seed.toml",
        "--mnist",
        "mnist",
        "--out",
        "d.h5",
    ]));
    let info = ok(&scene.rensou(&["data", "info", "d.h5"]));
    assert!(
        info.contains("seed 3") && info.contains("oscn") && info.contains("cmnist"),
        "{info}"
    );
}

/// The children of process `parent` (from /proc).
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // Fields after the command name: state, ppid, ...
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Whether `pid` is gone (or a zombie, which has stopped running).
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(true)
}

#[test]
fn killing_a_parallel_study_stops_its_tasks() {
    let scene = Scene::new();
    let mut study = tiny_study("study");
    study[3] = "1000".into(); // --epochs: long enough to be running when killed
    ok(&scene.rensou(&args(&["paper", "plan"], &study)));
    let mut parent = Command::new(rensou_bin())
        .args(args(&["paper", "--jobs", "2"], &study))
        .current_dir(scene.work())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start paper");
    let start = Instant::now();
    let mut kids = Vec::new();
    while kids.len() < 2 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        kids = children(parent.id());
    }
    assert_eq!(kids.len(), 2, "two task processes expected");
    parent.kill().expect("kill the parent");
    parent.wait().expect("reap");
    let start = Instant::now();
    while !kids.iter().all(|&k| gone(k)) && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        kids.iter().all(|&k| gone(k)),
        "task processes outlived their parent: {kids:?}"
    );
}
