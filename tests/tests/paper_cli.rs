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
        assert_eq!(r["all"]["n"], 2, "{r}");
        assert_eq!(r["vae"]["n"], 2, "{r}");
        assert!(r["mmvae"].is_null(), "the paper's pair has no audio: {r}");
    }
    // The paper's claims stay about the paper's pair.
    let comps = summary["comparisons"].as_array().unwrap();
    assert!(comps.iter().all(|c| c["modality"] != "audio"));
}
