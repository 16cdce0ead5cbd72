//! Fusion plugins from the binary: `rensou train --fusion poe|mopoe|mmvaeplus` on two and three
//! modalities (oscn, cmnist, audio), every probe on each, resume after SIGKILL, clear errors,
//! and `rensou paper --fusions` with its report section.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{fails, metric_epochs, ok, rensou, tiny_mnist, wait_for_file};
// Reading a run's checkpoint here needs its fusion registered in this process too.
use rensou_mmvaeplus as _;
use rensou_mopoe as _;
use rensou_poe as _;

/// The run config's `[model.fusion]` type and `[training]` objective.
fn fusion_and_objective(run: &Path) -> (String, String) {
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(run.join("config.toml")).unwrap()).unwrap();
    (
        config["model"]["fusion"]["type"]
            .as_str()
            .unwrap()
            .to_owned(),
        {
            let kind = config["training"]["objective"].as_str().unwrap();
            match config["training"]
                .get("looser")
                .and_then(toml::Value::as_bool)
            {
                Some(true) => format!("{kind}-looser"),
                _ => kind.to_owned(),
            }
        },
    )
}

#[test]
fn fusions_train_probe_and_resume_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_mnist(&d.join("mnist"), 3, 2);
    ok(&rensou(
        d,
        &[
            "data",
            "build",
            "--out",
            "d.h5",
            "--mnist",
            "mnist",
            "--modalities",
            "oscn,cmnist,audio",
        ],
    ));

    let e = fails(&rensou(
        d,
        &["train", "--data", "d.h5", "--out", "x", "--fusion", "nope"],
    ));
    assert!(
        e.contains("unknown fusion `nope`") && e.contains("mopoe"),
        "{e}"
    );
    // Asking a fusion for an objective it does not implement names what it does implement.
    let e = fails(&rensou(
        d,
        &[
            "train",
            "--data",
            "d.h5",
            "--out",
            "x",
            "--fusion",
            "poe",
            "--objective",
            "dreg",
        ],
    ));
    assert!(
        e.contains("training.objective") && e.contains("`dreg`") && e.contains("elbo"),
        "{e}"
    );

    // A fusion in the config file and the objective on the command line: the layers merge
    // before anything is checked.
    std::fs::write(d.join("poe.toml"), "[model.fusion]\ntype = \"poe\"\n").unwrap();
    ok(&rensou(
        d,
        &[
            "train",
            "--data",
            "d.h5",
            "--config",
            "poe.toml",
            "--objective",
            "elbo",
            "--modalities",
            "oscn,cmnist",
            "--k",
            "2",
            "--epochs",
            "1",
            "--out",
            "poe-file",
        ],
    ));
    assert_eq!(
        fusion_and_objective(&d.join("poe-file")),
        ("poe".to_owned(), "elbo".to_owned())
    );

    // Each fusion with its paper's objective: the default when none is asked, and the same
    // when asked by its one spelling.
    for (fusion, objective) in [
        ("poe", "elbo"),
        ("mopoe", "elbo"),
        ("mmvaeplus", "dreg-looser"),
    ] {
        let objective_args: &[&str] = &["--objective", objective];
        for (i, modalities) in ["oscn,cmnist", "oscn,cmnist,audio"].into_iter().enumerate() {
            // The two-modality run names no objective: the plain command a user types first.
            let objective_args: &[&str] = if i == 0 { &[] } else { objective_args };
            let out = format!("{fusion}-{}", modalities.matches(',').count() + 1);
            let mut args = vec![
                "train",
                "--data",
                "d.h5",
                "--modalities",
                modalities,
                "--fusion",
                fusion,
                "--k",
                "2",
                "--epochs",
                "2",
                "--out",
                &out,
            ];
            args.extend(objective_args);
            ok(&rensou(d, &args));
            let run = d.join(&out);
            assert_eq!(
                fusion_and_objective(&run),
                (fusion.to_owned(), objective.to_owned())
            );
            let text = ok(&rensou(d, &["probe", "--run", &out]));
            let summary: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(run.join("probes/summary.json")).unwrap(),
            )
            .unwrap();
            let probes = summary["probes"].as_object().unwrap();
            for name in ["arithmetic", "cluster", "coherence", "tsne"] {
                assert_eq!(probes[name]["ok"], true, "{out}: {name}: {text}");
            }
            // Coherence covers every source -> target pair of the model.
            let scalars: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(run.join("probes/coherence/scalars.json")).unwrap(),
            )
            .unwrap();
            assert!(scalars.to_string().contains("cross.number"), "{scalars}");
        }

        // SIGKILL mid-training, then --resume: every epoch exactly once, same fusion.
        let out = format!("{fusion}-killed");
        let mut child = std::process::Command::new(common::rensou_bin())
            .args([
                "train", "--data", "d.h5", "--fusion", fusion, "--k", "2", "--epochs", "40",
                "--out", &out,
            ])
            .args(objective_args)
            .current_dir(d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let run = d.join(&out);
        assert!(wait_for_file(
            &run.join("checkpoints/epoch-003/state.json"),
            Duration::from_secs(180)
        ));
        child.kill().unwrap();
        let _ = child.wait();
        let done = rensou_train::latest_checkpoint(&run)
            .unwrap()
            .expect("a complete checkpoint")
            .state
            .epoch;
        assert!((3..40).contains(&done), "{fusion}: {done} epochs");
        let resumed = rensou(d, &["train", "--resume", "--out", &out, "--epochs", "40"]);
        ok(&resumed);
        let text = String::from_utf8_lossy(&resumed.stderr);
        assert!(
            text.contains(&format!("after epoch {done}")),
            "{fusion}: {text}"
        );
        assert_eq!(
            metric_epochs(&run),
            (1..=40).collect::<Vec<_>>(),
            "{fusion}"
        );
        assert_eq!(fusion_and_objective(&run).0, fusion);
        // Resuming with another fusion is refused, naming the field.
        let e = fails(&rensou(
            d,
            &[
                "train", "--resume", "--out", &out, "--epochs", "41", "--fusion", "moe",
            ],
        ));
        assert!(e.contains("model.fusion"), "{e}");
    }
}

#[test]
fn paper_compares_fusions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_mnist(&d.join("mnist"), 3, 2);
    let e = fails(&rensou(
        d,
        &["paper", "--fusions", "poe,poe", "--mnist", "mnist"],
    ));
    assert!(e.contains("twice"), "{e}");
    let args = |fusions: &'static str| {
        [
            "paper",
            "--fusions",
            fusions,
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
        ]
    };
    // A study with one fusion, then extended with the others: what is finished is kept.
    ok(&rensou(d, &args("poe")));
    let poe_config = d.join("study/runs/fusion-poe-s0/config.toml");
    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let poe_before = modified(&poe_config);
    ok(&rensou(d, &args("moe,poe,mopoe,mmvaeplus")));
    assert_eq!(
        modified(&poe_config),
        poe_before,
        "fusion-poe was not retrained"
    );
    let study = d.join("study");
    for (model, objective) in [
        ("fusion-poe", "elbo"),
        ("fusion-mopoe", "elbo"),
        ("fusion-mmvaeplus", "dreg-looser"),
    ] {
        for seed in 0..2 {
            let run = study.join(format!("runs/{model}-s{seed}"));
            assert!(run.join("probes/summary.json").is_file(), "{model}");
        }
        assert_eq!(
            fusion_and_objective(&study.join(format!("runs/{model}-s0"))).1,
            objective,
            "a fusion without the study's objective trains its own"
        );
    }
    // The paper's MMVAE is still the mixture of experts with the study's objective.
    let (_, objective) = {
        let config: toml::Value = toml::from_str(
            &std::fs::read_to_string(study.join("runs/mmvae-s0/config.toml")).unwrap(),
        )
        .unwrap();
        assert!(config["model"].get("fusion").is_none(), "{config}");
        (
            (),
            config["training"]["objective"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(objective, "dreg-reference");
    let md = std::fs::read_to_string(study.join("report.md")).unwrap();
    assert!(md.contains("which kind of multimodal learning?"), "{md}");
    assert!(
        md.contains("| fusion-mopoe | 1: silhouette by number (primary)"),
        "{md}"
    );
    assert!(md.contains("fusion-poe"), "{md}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("summary.json")).unwrap())
            .unwrap();
    let rows = summary["fusions"].as_array().unwrap();
    assert!(md.contains("shared latent"), "{md}");
    for model in ["mmvae", "fusion-poe", "fusion-mopoe", "fusion-mmvaeplus"] {
        let primary: Vec<_> = rows
            .iter()
            .filter(|r| r["model"] == model && r["primary"] == true)
            .collect();
        assert!(primary.len() >= 4, "{model}: {rows:?}");
        for r in primary {
            assert_eq!(r["values"]["n"], 2, "{r}");
            assert_eq!(r["vae"]["n"], 2, "{r}");
            if model == "mmvae" {
                assert!(r["vs_mmvae"].is_null(), "{r}");
            } else {
                assert!(r["vs_mmvae"]["p"].is_number() || r["vs_mmvae"]["p"].is_null());
                assert_eq!(r["mmvae"]["n"], 2, "{r}");
            }
        }
    }
    // The effect-size figure, drawn from the table's numbers whenever one is finite.
    let any_g = rows.iter().any(|r| {
        r["primary"] == true && r["vs_vae"]["hedges_g"].as_f64().is_some_and(f64::is_finite)
    });
    assert_eq!(study.join("figures/fusions-effect.png").is_file(), any_g);
    // Cross-modal coherence per fusion.
    assert!(md.contains("| fusion-poe | oscn -> cmnist |"), "{md}");
    assert!(
        md.contains("| fusion-mopoe | joint (prior samples) |"),
        "{md}"
    );
}

#[test]
fn memory_estimates_count_what_each_fusion_decodes() {
    use rensou_model::mmvae::{MmvaeConfig, ModalityNetConfig};
    use rensou_train::memory::training_estimate;
    use rensou_train::{DataConfig, RunConfig, TrainingConfig};
    let run = |model: MmvaeConfig| RunConfig {
        data: DataConfig {
            file: "d.h5".into(),
            modalities: vec!["oscn".into(), "cmnist".into()],
        },
        model,
        training: TrainingConfig::default(),
    };
    let pair = || {
        MmvaeConfig::new(vec![
            ModalityNetConfig::new("oscn", vec![32, 32, 3]),
            ModalityNetConfig::new("cmnist", vec![28, 28, 3]),
        ])
    };
    let activations = |model: MmvaeConfig| {
        training_estimate(&run(model), 1000)
            .parts
            .iter()
            .find(|p| p.what.starts_with("activations"))
            .unwrap()
            .bytes
    };
    let moe = activations(pair());
    // mopoe decodes 3 blocks of K x batch samples per decoder at M = 2 where moe decodes 2.
    let mopoe = activations(pair().with_fusion(Box::new(rensou_mopoe::Mopoe::default())));
    assert_eq!(mopoe * 2, moe * 3);
    let plus = activations(pair().with_fusion(Box::new(rensou_mmvaeplus::MmvaePlus::default())));
    assert_eq!(plus, moe);
}
