//! `rensou paper --probe-epochs` on a tiny budget: every model is probed at the chosen epochs,
//! the report plots the curves and judges its verdicts beside the models' adequacy, an
//! interrupted study resumes without redoing finished probe points, and `--jobs 2` gives the
//! same numbers.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{ok, rensou, rensou_bin, tiny_mnist, wait_for_file};

const MODELS: [&str; 3] = ["mmvae", "vae-oscn", "vae-cmnist"];

fn args(out: &str) -> Vec<&str> {
    vec![
        "paper",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--k",
        "2",
        "--max-train-pairs",
        "64",
        "--probe-epochs",
        "1,2",
        "--out",
        out,
        "--mnist",
        "mnist",
    ]
}

fn summary(study: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(study.join("summary.json")).unwrap()).unwrap()
}

/// The modification time of every probe point's summary (snapshot or last epoch).
fn probe_points(study: &Path) -> Vec<(String, SystemTime)> {
    let mut out = Vec::new();
    for model in MODELS {
        for seed in 0..2 {
            for epoch in [1, 2] {
                let p = study.join(format!(
                    "runs/{model}-s{seed}/snapshots/epoch-{epoch:03}/probes/summary.json"
                ));
                if let Ok(m) = std::fs::metadata(&p) {
                    out.push((p.display().to_string(), m.modified().unwrap()));
                }
            }
        }
    }
    out
}

#[test]
fn probes_over_training_resume_and_match_with_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_mnist(&d.join("mnist"), 3, 2);

    // Interrupted: killed once the first probe point is written.
    let log = std::fs::File::create(d.join("victim.log")).unwrap();
    let mut victim = std::process::Command::new(rensou_bin())
        .args(args("study"))
        .current_dir(d)
        .env_remove("RENSOU_MNIST")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let first = d.join("study/runs/mmvae-s0/snapshots/epoch-001/probes/summary.json");
    assert!(
        wait_for_file(&first, Duration::from_secs(300)),
        "no probe point: {}",
        std::fs::read_to_string(d.join("victim.log")).unwrap_or_default()
    );
    victim.kill().unwrap();
    let _ = victim.wait();
    let before = probe_points(&d.join("study"));
    assert!(!before.is_empty());

    // Resumed: finishes, and the probe points done before are not done again.
    let err = rensou(d, &args("study"));
    ok(&err);
    let after = probe_points(&d.join("study"));
    for (path, when) in &before {
        let again = after.iter().find(|(p, _)| p == path).map(|(_, t)| *t);
        assert_eq!(again, Some(*when), "{path} was probed again");
    }
    assert_eq!(after.len(), MODELS.len() * 2 * 2, "{after:?}");
    let study = d.join("study");
    for model in MODELS {
        for seed in 0..2 {
            let run = study.join(format!("runs/{model}-s{seed}"));
            for epoch in [1, 2] {
                let snap = run.join(format!("snapshots/epoch-{epoch:03}"));
                assert!(snap.join("probes/cluster/scalars.json").is_file());
                assert!(snap.join("probes/coherence/scalars.json").is_file());
                assert!(
                    !snap.join("probes/tsne").exists(),
                    "no t-SNE at probe epochs"
                );
                // Disk stays bounded: the model of a probed snapshot is dropped.
                assert!(!snap.join("checkpoints").exists(), "{}", snap.display());
            }
            assert!(!run.join("snapshots/epoch-003").exists());
        }
    }

    // The report: curves for every model at epochs 1, 2 and 3, with n = 2 seeds each.
    let s = summary(&study);
    assert_eq!(s["emergence"]["epochs"], serde_json::json!([1, 2, 3]));
    let series = s["emergence"]["series"].as_array().unwrap();
    for model in MODELS {
        let mine: Vec<_> = series.iter().filter(|x| x["model"] == model).collect();
        assert!(!mine.is_empty(), "no curve for {model}");
        for x in &mine {
            let points = x["points"].as_array().unwrap();
            assert_eq!(points.len(), 3, "{x}");
            for p in points {
                assert_eq!(p["values"]["n"], 2, "{x}");
            }
        }
    }
    assert!(series
        .iter()
        .any(|x| x["metric"] == "silhouette.number" && x["claim"] == 1));
    assert!(series
        .iter()
        .any(|x| x["metric"] == "cross.number" && x["of"] == "oscn -> cmnist"));
    assert!(study.join("figures/emergence.png").is_file());
    assert!(study.join("figures/claims.png").is_file());
    let md = std::fs::read_to_string(study.join("report.md")).unwrap();
    assert!(md.contains("## When number sense emerges"), "{md}");

    // Adequacy: a tiny budget reconstructs at chance, so claims cannot be judged, and the
    // report says so (and that this preset is a smoke test).
    assert!(md.contains("## How well the models learned"), "{md}");
    assert!(md.contains("smoke-scale run"), "{md}");
    assert!(md.contains("**at chance**"), "{md}");
    assert!(md.contains("**cannot be judged**"), "{md}");
    let judged = s["judgements"].as_array().unwrap();
    assert!(
        judged.iter().any(|j| j["outcome"] == "cannot be judged"
            && j["judgement"]["kind"] == "cannot_judge"),
        "{judged:?}"
    );
    assert!(s["adequacy"]["rule"].as_str().unwrap().contains("chance"));
    let rows = s["adequacy"]["rows"].as_array().unwrap();
    assert!(rows
        .iter()
        .any(|r| r["model"] == "mmvae" && r["measure"] == "reconstruction" && r["of"] == "oscn"));
    assert!(rows
        .iter()
        .any(|r| r["model"] == "vae-cmnist" && r["measure"] == "test loss"));

    // The same study run two tasks at a time gives the same numbers.
    let mut par = args("par");
    par.extend_from_slice(&["--jobs", "2"]);
    ok(&rensou(d, &par));
    let p = summary(&d.join("par"));
    assert_eq!(s["emergence"], p["emergence"]);
    assert_eq!(s["adequacy"]["rows"], p["adequacy"]["rows"]);
    assert_eq!(s["judgements"], p["judgements"]);
}
