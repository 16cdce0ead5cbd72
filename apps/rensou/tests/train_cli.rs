//! `rensou train` and `rensou bench train` end to end on a tiny synthetic dataset.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    fails, kill_after_checkpoint, ok, rensou, spawn_lock, train_args as args, write_config,
    write_tiny,
};

fn metrics_epochs(run: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics.jsonl");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            assert!(v["train_loss"].as_f64().is_some_and(f64::is_finite), "{l}");
            assert!(v["test_loss"].as_f64().is_some_and(f64::is_finite), "{l}");
            assert!(v["samples_per_s"].as_f64().is_some_and(|s| s > 0.0), "{l}");
            v["epoch"].as_u64().expect("epoch")
        })
        .collect()
}

#[test]
fn train_writes_the_run_directory_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny(dir.path());
    write_config(dir.path());
    let out = ok(&rensou(
        dir.path(),
        &args(&["--out", "run", "--epochs", "2", "--grid-every", "1"]),
    ));
    assert!(
        out.contains("backend: flex") || out.contains("backend: cuda"),
        "{out}"
    );
    assert!(out.contains("epoch 2/2"), "per-epoch lines in logs: {out}");
    let run = dir.path().join("run");
    assert_eq!(metrics_epochs(&run), vec![1, 2]);
    for f in [
        "config.toml",
        "grids/epoch-001.png",
        "grids/epoch-002.png",
        "checkpoints/epoch-002/model.mpk",
        "checkpoints/epoch-002/optimizer.mpk",
        "checkpoints/epoch-002/state.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    // The epoch before the last is kept, in case the last one is damaged later.
    assert!(run.join("checkpoints/epoch-001/state.json").is_file());
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config.toml");
    assert!(
        config.contains("hidden = [16]") && config.contains("epochs = 2"),
        "{config}"
    );

    // Same directory without --resume: refused.
    let e = fails(&rensou(
        dir.path(),
        &args(&["--out", "run", "--epochs", "2"]),
    ));
    assert!(e.contains("not empty") && e.contains("--resume"), "{e}");
    // Resume with a different K: refused, naming the field.
    let e = fails(&rensou(
        dir.path(),
        &["train", "--out", "run", "--resume", "--k", "3"],
    ));
    assert!(e.contains("training.k"), "{e}");
    // Resume to 3 epochs: one more line, no repeats.
    ok(&rensou(
        dir.path(),
        &["train", "--out", "run", "--resume", "--epochs", "3"],
    ));
    assert_eq!(metrics_epochs(&run), vec![1, 2, 3]);
    assert!(run.join("checkpoints/epoch-003/state.json").is_file());
    assert!(run.join("checkpoints/epoch-002/state.json").is_file());
    assert!(!run.join("checkpoints/epoch-001").exists());
    assert!(run.join("grids/epoch-003.png").is_file());
}

#[test]
fn killed_run_resumes_from_its_last_complete_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny(dir.path());
    write_config(dir.path());
    let run = dir.path().join("run");
    let reached = kill_after_checkpoint(
        dir.path(),
        &args(&["--out", "run", "--epochs", "100000", "--grid-every", "0"]),
        &run,
        "epoch-003",
        Duration::from_secs(120),
    );
    assert!(reached, "no checkpoint within two minutes");

    let latest = rensou_train::latest_checkpoint(&run)
        .expect("checkpoints")
        .expect("a complete checkpoint")
        .state
        .epoch as u64;
    let target = (latest + 2).to_string();
    ok(&rensou(
        dir.path(),
        &["train", "--out", "run", "--resume", "--epochs", &target],
    ));
    let epochs = metrics_epochs(&run);
    assert_eq!(epochs, (1..=latest + 2).collect::<Vec<_>>());
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .expect("checkpoints")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            format!("epoch-{:03}", latest + 1),
            format!("epoch-{:03}", latest + 2)
        ]
    );
}

#[test]
fn single_modality_vae() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny(dir.path());
    write_config(dir.path());
    let out = ok(&rensou(
        dir.path(),
        &[
            "train",
            "--data",
            "tiny.h5",
            "--config",
            "tiny.toml",
            "--modalities",
            "b",
            "--out",
            "vae",
            "--epochs",
            "1",
            "--objective",
            "iwae-looser",
        ],
    ));
    assert!(out.contains("a VAE"), "{out}");
    let config = std::fs::read_to_string(dir.path().join("vae/config.toml")).expect("config");
    assert!(config.contains("family = \"normal\""), "{config}");
    assert!(config.contains("looser = true"), "{config}");
    assert_eq!(metrics_epochs(&dir.path().join("vae")), vec![1]);
}

#[test]
fn bad_arguments_give_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny(dir.path());
    write_config(dir.path());
    let d = dir.path();
    let e = fails(&rensou(d, &["train", "--out", "r1"]));
    assert!(e.contains("--data"), "{e}");
    let e = fails(&rensou(
        d,
        &["train", "--data", "missing.h5", "--out", "r1"],
    ));
    assert!(e.contains("missing.h5"), "{e}");
    let e = fails(&rensou(
        d,
        &args(&["--out", "r1", "--modalities", "a,nope"]),
    ));
    assert!(e.contains("nope"), "{e}");
    let e = fails(&rensou(d, &args(&["--out", "r1", "--epochs", "0"])));
    assert!(e.contains("training.epochs"), "{e}");
    let e = fails(&rensou(d, &args(&["--out", "r1", "--batch-size", "0"])));
    assert!(e.contains("training.batch_size"), "{e}");
    let e = fails(&rensou(d, &args(&["--out", "r1", "--lr=-1"])));
    assert!(e.contains("training.lr"), "{e}");
    let e = fails(&rensou(d, &["train", "--out", "nothing", "--resume"]));
    assert!(e.contains("nothing to resume"), "{e}");
    std::fs::write(d.join("bad.toml"), "[training]\nepochz = 3\n").expect("write");
    let e = fails(&rensou(
        d,
        &[
            "train", "--data", "tiny.h5", "--config", "bad.toml", "--out", "r1",
        ],
    ));
    assert!(e.contains("bad.toml") && e.contains("epochz"), "{e}");
    // `--net conv` where no modality can take it is fine (a note), but asking for a conv net
    // for a modality by name in the config when it cannot work is an error.
    std::fs::write(
        d.join("conv.toml"),
        "[model]\nlatent_dim = 4\n[[model.modalities]]\nname = \"a\"\n\
         net = { type = \"conv2d\", channels = [4, 8, 16, 32] }\n",
    )
    .expect("write");
    let e = fails(&rensou(
        d,
        &[
            "train",
            "--data",
            "tiny.h5",
            "--config",
            "conv.toml",
            "--out",
            "r1",
        ],
    ));
    assert!(e.contains("model.modalities"), "{e}");
    // Clap rejects unknown values before we run (exit code 2, usage on stderr).
    let out = rensou(d, &args(&["--out", "r1", "--objective", "vae"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("vae"));
    assert!(!d.join("r1").exists(), "failed runs leave no directory");
}

#[test]
fn bench_train_prints_json_and_compares_with_torch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = [
        "bench", "train", "--k", "2", "--batch", "4", "--steps", "1", "--warmup", "0",
    ];
    let json_lines = |out: &Output| -> Vec<serde_json::Value> {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    };
    let mut plain = base.to_vec();
    plain.extend(["--modalities", "1,2", "--rounds", "1"]);
    let lines = json_lines(&rensou(dir.path(), &plain));
    assert_eq!(lines.len(), 3, "two configs and a summary: {lines:?}");
    for l in &lines[..2] {
        let sps = &l["rensou"]["samples_per_s"];
        assert!(sps["median"].as_f64().is_some_and(|s| s > 0.0), "{l}");
        assert!(
            l["rensou"]["peak_rss_mb"].as_f64().is_some_and(|m| m > 1.0),
            "{l}"
        );
        assert_eq!(l["k"], 2);
    }
    assert_eq!(lines[0]["model"], "vae-mlp");
    assert_eq!(lines[1]["model"], "mmvae-mlp");
    assert_eq!(lines[2]["bench"], "train-summary");
    assert!(lines[2]["busy"].is_boolean());

    // A stand-in for the PyTorch reference: the same flags in, one JSON line out.
    let python = {
        let _spawning = spawn_lock();
        Command::new("python3").arg("--version").output()
    };
    if python.is_err() {
        return;
    }
    let fake = dir.path().join("torch_reference.py");
    std::fs::write(
        &fake,
        "import json, sys\nargs = sys.argv[1:]\nassert '--k' in args and '--threads' in args\n\
         print('warming up')\nprint(json.dumps({'samples_per_s': 2.0, 'k': int(args[args.index('--k') + 1])}))\n",
    )
    .expect("write fake");
    let mut with_torch = base.to_vec();
    with_torch.extend(["--rounds", "2", "--torch", "torch_reference.py"]);
    let lines = json_lines(&rensou(dir.path(), &with_torch));
    assert_eq!(lines.len(), 2, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["torch_report"]["k"], 2);
    // Interleaved rounds: two runs of each side.
    let runs = |side: &str| line[side]["samples_per_s"]["runs"].as_array().map(Vec::len);
    assert_eq!(
        (runs("rensou"), runs("torch")),
        (Some(2), Some(2)),
        "{line}"
    );
    assert!(
        line["torch"]["peak_rss_mb"]
            .as_f64()
            .is_some_and(|m| m > 1.0),
        "{line}"
    );
    // The ratio is the ratio of the medians; on a busy machine it is flagged, not dropped.
    let ratio = line["ratio_vs_torch"]
        .as_f64()
        .or_else(|| line["ratio_vs_torch_busy"].as_f64())
        .expect("ratio");
    assert_eq!(
        line["busy"].as_bool(),
        Some(line["ratio_vs_torch"].is_null())
    );
    let sps = line["rensou"]["samples_per_s"]["median"]
        .as_f64()
        .expect("sps");
    assert!((ratio - sps / 2.0).abs() < 1e-2 * ratio.max(1.0), "{line}");
}
