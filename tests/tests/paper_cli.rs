//! `rensou paper` end to end on a tiny dataset: every stage runs, the report carries the four
//! claims with numbers and figures, and a second invocation skips finished work.

mod common;

use common::{fails, ok, rensou, tiny_mnist};

#[test]
fn paper_runs_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    tiny_mnist(&dir.path().join("mnist"), 3, 2);
    let args = [
        "paper",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--k",
        "2",
        "--max-train-pairs",
        "64",
        "--out",
        "study",
        "--mnist",
        "mnist",
    ];
    let out = ok(&rensou(dir.path(), &args));
    assert!(out.contains("report.md"), "{out}");
    let study = dir.path().join("study");
    let md = std::fs::read_to_string(study.join("report.md")).unwrap();
    for claim in 1..=4 {
        assert!(
            md.contains(&format!("## Claim {claim}:")),
            "claim {claim} missing:\n{md}"
        );
    }
    assert!(md.contains("Verdict:"), "{md}");
    assert!(md.contains("MMVAE mean [95% CI]"), "{md}");
    // Numbers, not placeholders: the primary metrics have values for both models.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("summary.json")).unwrap())
            .unwrap();
    let comps = summary["comparisons"].as_array().unwrap();
    let primary: Vec<_> = comps.iter().filter(|c| c["primary"] == true).collect();
    assert!(primary.len() >= 4, "{primary:?}");
    for c in &primary {
        assert_eq!(c["mmvae"]["n"], 2, "{c}");
        assert_eq!(c["vae"]["n"], 2, "{c}");
        assert!(c["mmvae"]["mean"].as_f64().unwrap().is_finite(), "{c}");
    }
    assert_eq!(summary["verdicts"].as_object().unwrap().len(), 4);
    let html = std::fs::read_to_string(study.join("report.html")).unwrap();
    assert!(
        html.contains("data:image/png;base64,"),
        "no embedded figures"
    );
    for model in ["mmvae", "vae-oscn", "vae-cmnist"] {
        for seed in 0..2 {
            let run = study.join(format!("runs/{model}-s{seed}"));
            assert!(
                run.join("probes/summary.json").is_file(),
                "{}",
                run.display()
            );
            assert!(run.join("latents.h5").is_file());
        }
    }

    // Again: everything is skipped, the report is rewritten.
    let err_before = std::fs::metadata(study.join("runs/mmvae-s0/config.toml"))
        .unwrap()
        .modified()
        .unwrap();
    ok(&rensou(dir.path(), &args));
    let md2 = std::fs::read_to_string(study.join("report.md")).unwrap();
    assert!(md2.contains("already done"), "{md2}");
    let after = std::fs::metadata(study.join("runs/mmvae-s0/config.toml"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(err_before, after, "a finished run was retrained");

    // Other settings in the same directory are refused.
    let e = fails(&rensou(
        dir.path(),
        &[
            "paper", "--seeds", "2", "--epochs", "2", "--k", "2", "--out", "study", "--mnist",
            "mnist",
        ],
    ));
    assert!(e.contains("other settings"), "{e}");

    // The same plan in pieces: plan, a report of nothing, two tasks by index and by id, then
    // the rest two at a time. Same numbers as the sequential study.
    let pieces: Vec<&str> = args
        .iter()
        .map(|a| if *a == "study" { "pieces" } else { *a })
        .collect();
    let mut plan = vec!["paper", "plan"];
    plan.extend_from_slice(&pieces[1..]);
    let out = ok(&rensou(dir.path(), &plan));
    assert!(
        out.contains("planned 6 tasks") && out.contains("mmvae-s0"),
        "{out}"
    );
    let tasks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("pieces/tasks.json")).unwrap(),
    )
    .unwrap();
    let list = tasks["tasks"].as_array().unwrap();
    assert_eq!(list.len(), 6);
    assert_eq!(list[2]["id"], "vae-cmnist-s0");
    assert_eq!(list[2]["outputs"][0], "runs/vae-cmnist-s0");
    let report = rensou(dir.path(), &["paper", "report", "--out", "pieces"]);
    let err = String::from_utf8_lossy(&report.stderr).into_owned();
    assert!(report.status.success(), "{err}");
    assert!(err.contains("6 of 6 tasks are not finished"), "{err}");
    let md = std::fs::read_to_string(dir.path().join("pieces/report.md")).unwrap();
    assert!(md.contains("Incomplete study: 6 task(s)"), "{md}");
    ok(&rensou(
        dir.path(),
        &["paper", "run-task", "--out", "pieces", "--task", "0"],
    ));
    ok(&rensou(
        dir.path(),
        &[
            "paper",
            "run-task",
            "--out",
            "pieces",
            "--task",
            "vae-cmnist-s1",
        ],
    ));
    let again = rensou(
        dir.path(),
        &["paper", "run-task", "--out", "pieces", "--task", "0"],
    );
    let again = format!("{}{}", ok(&again), String::from_utf8_lossy(&again.stderr));
    assert!(again.contains("already finished"), "{again}");
    let e = fails(&rensou(
        dir.path(),
        &["paper", "run-task", "--out", "pieces", "--task", "9"],
    ));
    assert!(e.contains("no task `9`"), "{e}");
    let mut jobs = pieces.clone();
    jobs.extend_from_slice(&["--jobs", "2"]);
    let out = rensou(dir.path(), &jobs);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 tasks at once"), "{err}");
    for id in ["mmvae-s1", "vae-oscn-s0"] {
        assert!(dir.path().join(format!("pieces/logs/{id}.log")).is_file());
    }
    let numbers = |d: &str| {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(d).join("summary.json")).unwrap(),
        )
        .unwrap();
        (
            v["comparisons"].clone(),
            v["verdicts"].clone(),
            v["missing_tasks"].clone(),
        )
    };
    let (seq, par) = (numbers("study"), numbers("pieces"));
    assert_eq!(
        seq.0, par.0,
        "same numbers from the pieces as from one process"
    );
    assert_eq!(seq.1, par.1);
    assert_eq!(par.2, serde_json::json!([]));
    let md = std::fs::read_to_string(dir.path().join("pieces/report.md")).unwrap();
    assert!(!md.contains("Incomplete study"), "{md}");
    assert!(!md.contains("on incomplete seeds"), "{md}");

    // A probe that fails for one seed: its directory is taken by a file, so the cluster probe of
    // vae-oscn-s1 cannot write its results when the study probes it again.
    let probes = dir.path().join("pieces/runs/vae-oscn-s1/probes");
    std::fs::remove_dir_all(probes.join("cluster")).unwrap();
    std::fs::write(probes.join("cluster"), "in the way").unwrap();
    std::fs::remove_file(probes.join("summary.json")).unwrap();
    let e = error_after_progress(&rensou(dir.path(), &pieces));
    assert!(
        e.contains("task vae-oscn-s1 failed")
            && e.contains("cluster (")
            && e.contains("--keep-going"),
        "{e}"
    );
    let md = std::fs::read_to_string(dir.path().join("pieces/report.md")).unwrap();
    let claim1 = md
        .lines()
        .find(|l| l.starts_with("Verdict:") && l.contains("oscn"))
        .unwrap_or_else(|| panic!("no verdict line in:\n{md}"));
    assert!(
        claim1.contains("on incomplete seeds") && claim1.contains("1 of 2 for the VAE"),
        "{claim1}"
    );
    // Asked to carry on, the study completes and exits 0; the verdicts still say what is missing.
    let mut keep_going = pieces.clone();
    keep_going.push("--keep-going");
    ok(&rensou(dir.path(), &keep_going));
    let md = std::fs::read_to_string(dir.path().join("pieces/report.md")).unwrap();
    assert!(md.contains("1 of 2 for the VAE"), "{md}");
    // A run trained with other settings is never taken for a finished run of this plan.
    let state = dir
        .path()
        .join("study/runs/mmvae-s0/checkpoints/epoch-001/state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["config"]["training"]["k"] = serde_json::json!(3);
    std::fs::write(&state, serde_json::to_string(&v).unwrap()).unwrap();
    let e = error_after_progress(&rensou(dir.path(), &args));
    assert!(
        e.contains("mmvae-s0 was trained with other settings") && e.contains("training.k"),
        "{e}"
    );
}

#[test]
fn paper_adds_a_model_on_every_modality() {
    let dir = tempfile::tempdir().unwrap();
    tiny_mnist(&dir.path().join("mnist"), 3, 2);
    let e = fails(&rensou(
        dir.path(),
        &["paper", "--modalities", "oscn", "--mnist", "mnist"],
    ));
    assert!(e.contains("at least two"), "{e}");
    let args = [
        "paper",
        "--modalities",
        "oscn,cmnist,audio",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--k",
        "2",
        "--max-train-pairs",
        "64",
        "--out",
        "three",
        "--mnist",
        "mnist",
    ];
    ok(&rensou(dir.path(), &args));
    let study = dir.path().join("three");
    assert!(study.join("data/oscn-cmnist-audio.h5").is_file());
    let all = "mmvae-oscn-cmnist-audio";
    for model in ["mmvae", all, "vae-oscn", "vae-cmnist", "vae-audio"] {
        for seed in 0..2 {
            let run = study.join(format!("runs/{model}-s{seed}"));
            assert!(
                run.join("probes/summary.json").is_file(),
                "{}",
                run.display()
            );
        }
    }
    // The audio modality's suggestion (recorded in the dataset) gives its nets 1-D convolutions;
    // the pictures keep the paper's MLP.
    for model in [all, "vae-audio"] {
        let config: toml::Value = toml::from_str(
            &std::fs::read_to_string(study.join(format!("runs/{model}-s0/config.toml"))).unwrap(),
        )
        .unwrap();
        let nets: Vec<(String, String)> = config["model"]["modalities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let name = m["name"].as_str().unwrap().to_owned();
                (name, m["net"]["type"].as_str().unwrap().to_owned())
            })
            .collect();
        for (name, net) in &nets {
            let want = if name == "audio" { "conv1d" } else { "mlp" };
            assert_eq!(net, want, "{model}: {nets:?}");
        }
    }
    // The three-modality grid holds sound -> picture generations, and decoded sounds as WAV.
    let grids = study.join(format!("runs/{all}-s0/grids"));
    assert!(grids.join("epoch-001.png").is_file());
    let wav = grids.join("epoch-001-audio/oscn-to-audio-n1.wav");
    assert!(
        std::fs::read(&wav).unwrap().starts_with(b"RIFF"),
        "{}",
        wav.display()
    );
    let md = std::fs::read_to_string(study.join("report.md")).unwrap();
    assert!(
        md.contains("Beyond the paper: an MMVAE on oscn, cmnist, audio"),
        "{md}"
    );
    assert!(md.contains("audio -> oscn"), "{md}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("summary.json")).unwrap())
            .unwrap();
    let rows = summary["all_modalities"].as_array().unwrap();
    let audio_primary: Vec<_> = rows
        .iter()
        .filter(|r| r["modality"] == "audio" && r["primary"] == true)
        .collect();
    assert!(!audio_primary.is_empty(), "{rows:?}");
    for r in audio_primary {
        assert_eq!(r["values"]["n"], 2, "{r}");
        assert_eq!(r["vae"]["n"], 2, "{r}");
        assert!(r["mmvae"].is_null(), "the paper's pair has no audio: {r}");
    }
    // The paper's claims stay about the paper's pair.
    let comps = summary["comparisons"].as_array().unwrap();
    assert!(comps.iter().all(|c| c["modality"] != "audio"));
}

/// The one error line of a failed run that printed progress on stderr before it.
fn error_after_progress(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_owned()
}

/// Starts `rensou args` in `cwd` with its stderr in `log`.
fn spawn(cwd: &std::path::Path, args: &[&str], log: &str) -> std::process::Child {
    let log = std::fs::File::create(cwd.join(log)).unwrap();
    std::process::Command::new(common::rensou_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[test]
fn workers_share_a_study_safely() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_mnist(&d.join("mnist"), 3, 2);
    let plan = [
        "paper",
        "plan",
        "--seeds",
        "1",
        "--epochs",
        "40",
        "--k",
        "2",
        "--max-train-pairs",
        "64",
        "--out",
        "study",
        "--mnist",
        "mnist",
    ];
    ok(&rensou(d, &plan));
    let task = [
        "paper",
        "run-task",
        "--out",
        "study",
        "--task",
        "vae-oscn-s0",
    ];

    // A worker killed mid-training (SIGKILL: no clean-up) loses nothing: its lock goes with
    // it, and the next worker resumes from the last checkpoint.
    let mut victim = spawn(d, &task, "victim.log");
    let run = d.join("study/runs/vae-oscn-s0");
    common::wait_for_file(
        &run.join("checkpoints/epoch-003/state.json"),
        std::time::Duration::from_secs(120),
    );
    victim.kill().unwrap();
    let _ = victim.wait();
    // The last complete checkpoint (the metrics log is rewritten just after it).
    let done_before = rensou_train::latest_checkpoint(&run)
        .unwrap()
        .expect("a complete checkpoint")
        .state
        .epoch;
    assert!(
        (3..40).contains(&done_before),
        "{done_before} epochs before the kill"
    );

    // Two workers started on the same task: one trains it, the other waits and finds it done.
    let mut a = spawn(d, &task, "a.log");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut b = spawn(d, &task, "b.log");
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let (la, lb) = (
        std::fs::read_to_string(d.join("a.log")).unwrap(),
        std::fs::read_to_string(d.join("b.log")).unwrap(),
    );
    assert!(
        la.contains(&format!("after epoch {done_before}")),
        "resumed: {la}"
    );
    assert!(
        lb.contains("waiting") && lb.contains("already finished"),
        "{lb}"
    );
    let epochs = common::metric_epochs(&run);
    assert_eq!(epochs, (1..=40).collect::<Vec<_>>(), "every epoch once");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("task.json")).unwrap()).unwrap();
    assert_eq!(
        record["invocations"], 1,
        "only one worker did work: {record}"
    );
}
