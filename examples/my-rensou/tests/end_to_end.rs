//! `my-rensou` end to end: the crate's own modality and probe work through the whole command
//! line (list, data build, train, probe) beside the built-in plugins.

use std::path::Path;
use std::process::{Command, Output};

fn my_rensou(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_my-rensou"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run my-rensou")
}

fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "my-rensou failed: {text}");
    text
}

#[test]
fn a_binary_of_our_own_plugins_runs_the_study_pieces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let list = ok(&my_rensou(d, &["list"]));
    for name in [
        "bars", "spread", "gelu-mlp", "oscn", "cmnist", "tsne", "conv1d",
    ] {
        assert!(list.contains(name), "{name} missing from:\n{list}");
    }

    // Our modality paired with a built-in one by the shared `number` label.
    std::fs::write(
        d.join("data.toml"),
        "[[modalities]]\ntype = \"bars\"\ntrain_per_class = 12\ntest_per_class = 4\n\n\
         [[modalities]]\ntype = \"oscn\"\ntrain_per_class = 3\ntest_per_class = 1\n",
    )
    .expect("write");
    ok(&my_rensou(
        d,
        &["data", "build", "--config", "data.toml", "--out", "d.h5"],
    ));
    let info = ok(&my_rensou(d, &["data", "info", "d.h5"]));
    assert!(info.contains("bars items of shape [12, 20]"), "{info}");

    std::fs::write(
        d.join("run.toml"),
        "[model]\nlatent_dim = 4\nnet = { type = \"mlp\", hidden = [16] }\n\n\
         [training]\nbatch_size = 32\nk = 2\nepochs = 1\n",
    )
    .expect("write");
    ok(&my_rensou(
        d,
        &[
            "train", "--data", "d.h5", "--config", "run.toml", "--out", "run",
        ],
    ));
    let probe = ok(&my_rensou(
        d,
        &["probe", "--run", "run", "--probe", "spread"],
    ));
    assert!(probe.contains("probe spread: ok"), "{probe}");
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("run/probes/spread/metrics.json")).expect("metrics"),
    )
    .expect("JSON");
    for m in ["bars", "oscn"] {
        let spread = metrics[m]["mean_spread"].as_f64().expect("a number");
        assert!(spread.is_finite() && spread > 0.0, "{metrics}");
    }

    // Our net trains from the binary, checkpoints, resumes and is probed like a built-in.
    std::fs::write(
        d.join("gelu.toml"),
        "[model]\nlatent_dim = 4\nnet = { type = \"gelu-mlp\", hidden = [24, 12] }\n\n\
         [training]\nbatch_size = 32\nk = 2\nepochs = 1\n",
    )
    .expect("write");
    let args = [
        "train",
        "--data",
        "d.h5",
        "--config",
        "gelu.toml",
        "--out",
        "gelu",
    ];
    let first = ok(&my_rensou(d, &args));
    assert!(first.contains("gelu-mlp"), "{first}");
    let config = std::fs::read_to_string(d.join("gelu/config.toml")).expect("config");
    assert!(config.contains("type = \"gelu-mlp\"") && config.contains("hidden = [24, 12]"));
    let resumed = ok(&my_rensou(
        d,
        &[&args[..], &["--resume", "--epochs", "2"]].concat(),
    ));
    assert!(resumed.contains("resuming"), "{resumed}");
    let metrics = std::fs::read_to_string(d.join("gelu/metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 2, "{metrics}");
    let probe = ok(&my_rensou(
        d,
        &[
            "probe", "--run", "gelu", "--probe", "spread", "--probe", "cluster",
        ],
    ));
    assert!(
        probe.contains("probe spread: ok") && probe.contains("probe cluster: ok"),
        "{probe}"
    );

    // A design whose layers do not fit is refused before training, naming the layer.
    std::fs::write(
        d.join("bad.toml"),
        "[model]\nnet = { type = \"gelu-mlp\", hidden = [] }\n",
    )
    .expect("write");
    let bad = my_rensou(
        d,
        &[
            "train", "--data", "d.h5", "--config", "bad.toml", "--out", "bad",
        ],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("gelu-mlp.hidden"), "{err}");
}
