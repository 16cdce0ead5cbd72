//! Hostile but realistic inputs fed to the binary: every one is refused with a one-line error
//! that names the problem, a non-zero exit code, and no existing file changed (hashes before and
//! after); or, where the input is recoverable, handled without losing anything.

mod common;

use std::path::Path;

use common::*;

/// A tiny dataset, config and a trained 1-epoch run `run` in a fresh directory.
fn trained(epochs: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny(dir.path());
    write_config(dir.path());
    ok(&rensou(
        dir.path(),
        &train_args(&["--out", "run", "--epochs", epochs, "--grid-every", "0"]),
    ));
    dir
}

/// Rewrites `/{split}/{modality}/data` of a dataset file as float32 values in [0, 1].
fn store_float_pixels(path: &Path, split: &str, modality: &str) {
    let _no_spawning = spawn_lock();
    let f = hdf5::File::open_rw(path).expect("open rw");
    let g = f.group(&format!("{split}/{modality}")).expect("group");
    let ds = g.dataset("data").expect("data");
    let shape = ds.shape();
    let bytes: Vec<u8> = ds.read_raw().expect("read");
    drop(ds);
    g.unlink("data").expect("unlink");
    let floats: Vec<f32> = bytes.iter().map(|&b| f32::from(b) / 255.0).collect();
    g.new_dataset::<f32>()
        .shape(shape)
        .create("data")
        .expect("create float data")
        .write_raw(&floats)
        .expect("write float data");
}

#[test]
fn preview_never_writes_over_its_input_or_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tiny(d);
    let e = refused(d, &["data", "preview", "tiny.h5", "--out", "tiny.h5"]);
    assert!(e.contains("is the dataset being previewed"), "{e}");
    let e = refused(
        d,
        &[
            "data",
            "preview",
            "tiny.h5",
            "--out",
            "./tiny.h5",
            "--force",
        ],
    );
    assert!(e.contains("is the dataset being previewed"), "{e}");
    std::fs::write(d.join("notes.png"), b"my own picture").expect("write");
    let e = refused(d, &["data", "preview", "tiny.h5", "--out", "notes.png"]);
    assert!(e.contains("already exists") && e.contains("--force"), "{e}");
    ok(&rensou(
        d,
        &[
            "data",
            "preview",
            "tiny.h5",
            "--out",
            "notes.png",
            "--force",
        ],
    ));
    assert!(image::open(d.join("notes.png")).is_ok());
}

#[test]
fn preview_bounds_and_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tiny(d);
    let e = refused(
        d,
        &[
            "data",
            "preview",
            "tiny.h5",
            "--out",
            "p.png",
            "--per-row",
            "1000000",
        ],
    );
    assert!(e.contains("--per-row must be in 1..=200"), "{e}");
    let e = refused(
        d,
        &[
            "data",
            "preview",
            "tiny.h5",
            "--out",
            "p.png",
            "--per-row",
            "-3",
        ],
    );
    assert!(e.contains("--per-row") || e.contains("-3"), "{e}");
    // Within the bounds, but more than this (pretended) machine has: refused with the estimate.
    let e = refused_env(
        d,
        &[
            "data",
            "preview",
            "tiny.h5",
            "--out",
            "p.png",
            "--per-row",
            "200",
            "--scale",
            "16",
        ],
        &[("RENSOU_MEMORY_LIMIT", "1000000")],
    );
    assert!(
        e.contains("the preview needs about") && e.contains("lower `--per-row`"),
        "{e}"
    );
}

#[test]
fn resume_with_data_of_another_shape_changes_nothing() {
    let dir = trained("1");
    let d = dir.path();
    Tiny {
        shape: vec![4, 4, 3],
        ..Tiny::default()
    }
    .write(&d.join("other.h5"));
    let e = refused(
        d,
        &[
            "train", "--out", "run", "--resume", "--epochs", "2", "--data", "other.h5",
        ],
    );
    assert!(e.contains("item_shape") && e.contains("[4, 4, 3]"), "{e}");
    // The run still resumes on its own data.
    ok(&rensou(
        d,
        &["train", "--out", "run", "--resume", "--epochs", "2"],
    ));
    assert!(d.join("run/checkpoints/epoch-002/state.json").is_file());
}

#[test]
fn probe_refuses_test_items_of_another_shape() {
    let dir = trained("1");
    let d = dir.path();
    // The dataset the run points at is replaced by one with smaller items.
    Tiny {
        shape: vec![4, 4, 3],
        ..Tiny::default()
    }
    .write(&d.join("tiny.h5"));
    let e = refused(d, &["probe", "--run", "run", "--probe", "tsne"]);
    assert!(
        e.contains("items of shape [8, 8, 3]") && e.contains("[4, 4, 3]"),
        "{e}"
    );
    assert!(!d.join("run/latents.h5").exists());
}

#[test]
fn a_run_that_cannot_start_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tiny(d);
    write_config(d);
    Tiny {
        number: |i| if i == 5 { 42 } else { (i % 9 + 1) as i64 },
        ..Tiny::default()
    }
    .write(&d.join("bad.h5"));
    let e = refused(
        d,
        &[
            "train",
            "--data",
            "bad.h5",
            "--config",
            "tiny.toml",
            "--out",
            "run",
        ],
    );
    assert!(
        e.contains("row 5 is 42") && e.contains("numbers 1..=9"),
        "{e}"
    );
    assert!(!d.join("run").exists(), "no stub run directory");
    // The same --out then works with good data.
    ok(&rensou(d, &train_args(&["--out", "run", "--epochs", "1"])));
}

#[test]
fn labels_outside_their_declared_values_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_config(d);
    Tiny {
        colour: Some(|i| if i == 7 { -1 } else { (i % 4) as i64 }),
        ..Tiny::default()
    }
    .write(&d.join("colour.h5"));
    let e = refused(d, &["data", "info", "colour.h5"]);
    assert!(
        e.contains("colour") && e.contains("row 7 is -1") && e.contains("3 = white"),
        "{e}"
    );
    let e = refused(
        d,
        &[
            "train",
            "--data",
            "colour.h5",
            "--config",
            "tiny.toml",
            "--out",
            "run",
        ],
    );
    assert!(e.contains("row 7 is -1"), "{e}");
}

#[test]
fn float_pixels_are_refused_with_the_expected_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_config(d);
    let path = write_tiny(d);
    store_float_pixels(&path, "train", "a");
    let e = refused(d, &train_args(&["--out", "run"]));
    assert!(
        e.contains("float32") && e.contains("expected uint8") && e.contains("/train/a/data"),
        "{e}"
    );
    let e = refused(d, &["data", "preview", "tiny.h5", "--out", "p.png"]);
    assert!(e.contains("expected uint8"), "{e}");
}

#[test]
fn memory_is_estimated_before_anything_is_allocated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tiny(d);
    write_config(d);
    // Beyond the documented bounds.
    let e = refused(d, &train_args(&["--out", "run", "--k", "1000000"]));
    assert!(e.contains("training.k") && e.contains("1..=10000"), "{e}");
    std::fs::write(d.join("latent.toml"), "[model]\nlatent_dim = 10000000\n").expect("write");
    let e = refused(
        d,
        &[
            "train",
            "--data",
            "tiny.h5",
            "--config",
            "latent.toml",
            "--out",
            "run",
        ],
    );
    assert!(
        e.contains("model.latent_dim") && e.contains("1..=4096"),
        "{e}"
    );
    let e = refused(d, &train_args(&["--out", "run", "--batch-size", "1000000"]));
    assert!(e.contains("training.batch_size"), "{e}");
    // Within them, but more than this (pretended) machine has: refused with the estimate.
    let e = refused_env(
        d,
        &train_args(&["--out", "run", "--k", "10000"]),
        &[("RENSOU_MEMORY_LIMIT", "500000000")],
    );
    assert!(
        e.contains("training needs about")
            && e.contains("more than the 500.0 MB available")
            && e.contains("lower `training.k`"),
        "{e}"
    );
    assert!(!d.join("run").exists());
    // The bench too.
    let e = refused(d, &["bench", "train", "--k", "1000000"]);
    assert!(e.contains("training.k") && e.contains("1..=10000"), "{e}");
    let e = refused_env(
        d,
        &["bench", "train", "--k", "10000"],
        &[("RENSOU_MEMORY_LIMIT", "500000000")],
    );
    assert!(e.contains("the bench needs about"), "{e}");
}

#[test]
fn numbers_out_of_range_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tiny(d);
    write_config(d);
    let e = refused(d, &train_args(&["--out", "run", "--lr", "-0.01"]));
    assert!(e.contains("training.lr") && e.contains("> 0"), "{e}");
    let e = refused(
        d,
        &train_args(&["--out", "run", "--seed", "18446744073709551615"]),
    );
    assert!(
        e.contains("training.seed") && e.contains("9223372036854775807"),
        "{e}"
    );
    let e = refused(
        d,
        &[
            "data",
            "build",
            "--out",
            "x.h5",
            "--seed",
            "18446744073709551615",
        ],
    );
    assert!(
        e.contains("seed") && e.contains("9223372036854775807"),
        "{e}"
    );
    // Usage errors are one line too, with exit code 2.
    let out = rensou(d, &train_args(&["--out", "run", "--objective", "vae"]));
    assert_eq!(out.status.code(), Some(2));
    let e = fails(&out);
    assert!(e.contains("vae") && e.contains("--help"), "{e}");
}

#[test]
fn run_config_errors_name_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tiny(d);
    std::fs::write(
        d.join("bad.toml"),
        "[model]\nlatent_dim = 4\n\n[training]\nepochz = 3\n",
    )
    .expect("write");
    let e = refused(
        d,
        &[
            "train", "--data", "tiny.h5", "--config", "bad.toml", "--out", "run",
        ],
    );
    assert!(
        e.contains("bad.toml") && e.contains("line 5") && e.contains("epochz"),
        "{e}"
    );
}

#[test]
fn a_damaged_checkpoint_is_named_with_the_way_back() {
    let dir = trained("2");
    let d = dir.path();
    let model = d.join("run/checkpoints/epoch-002/model.mpk");
    let len = std::fs::metadata(&model).expect("model.mpk").len();
    let bytes = std::fs::read(&model).expect("read");
    std::fs::write(&model, &bytes[..(len / 2) as usize]).expect("truncate");
    let e = refused(d, &["train", "--out", "run", "--resume", "--epochs", "3"]);
    assert!(
        e.contains("checkpoint of epoch 2 is damaged")
            && e.contains("model.mpk has")
            && e.contains("to resume from epoch 1"),
        "{e}"
    );
    let e = refused(d, &["probe", "--run", "run", "--probe", "tsne"]);
    assert!(e.contains("checkpoint of epoch 2 is damaged"), "{e}");
    // Following the advice: the run continues from epoch 1.
    std::fs::rename(
        d.join("run/checkpoints/epoch-002"),
        d.join("damaged-epoch-002"),
    )
    .expect("move aside");
    let out = ok(&rensou(
        d,
        &["train", "--out", "run", "--resume", "--epochs", "3"],
    ));
    assert!(
        out.contains("resuming") && out.contains("after epoch 1"),
        "{out}"
    );
    assert!(d.join("run/checkpoints/epoch-003/state.json").is_file());
}

#[test]
fn a_resume_config_is_read_over_the_run() {
    let dir = trained("1");
    let d = dir.path();
    // tiny.toml trained with batch 32; this file sets only K.
    std::fs::write(d.join("k7.toml"), "[training]\nk = 7\n").expect("write");
    let e = refused(
        d,
        &["train", "--out", "run", "--resume", "--config", "k7.toml"],
    );
    assert!(e.contains("training.k") && !e.contains("batch_size"), "{e}");
    // A file that changes only the epochs resumes.
    std::fs::write(d.join("more.toml"), "[training]\nepochs = 2\n").expect("write");
    ok(&rensou(
        d,
        &["train", "--out", "run", "--resume", "--config", "more.toml"],
    ));
    assert!(d.join("run/checkpoints/epoch-002/state.json").is_file());
}

#[test]
fn probe_failures_are_explained_and_a_damaged_classifier_cache_is_rebuilt() {
    let dir = trained("1");
    let d = dir.path();
    std::fs::write(
        d.join("probes.toml"),
        "[[probes]]\ntype = \"arithmetic\"\nmodality = \"zzz\"\n",
    )
    .expect("write");
    let out = rensou(
        d,
        &[
            "probe",
            "--run",
            "run",
            "--config",
            "probes.toml",
            "--probe",
            "arithmetic,tsne",
        ],
    );
    let e = fails(&out);
    assert!(
        e.contains("1 of 2 probes failed") && e.contains("arithmetic (") && e.contains("zzz"),
        "{e}"
    );
    assert!(d.join("run/probes/tsne/metrics.json").is_file());

    // The arithmetic probe trains the `a` number classifier and caches it.
    std::fs::write(
        d.join("probes.toml"),
        "[[probes]]\ntype = \"arithmetic\"\nmodality = \"a\"\nsamples = 8\n",
    )
    .expect("write");
    let arithmetic = ["probe", "--run", "run", "--config", "probes.toml"];
    ok(&rensou(d, &arithmetic));
    let cache = d.join("run/classifiers/a-number.mpk");
    let bytes = std::fs::read(&cache).expect("classifier cache");
    std::fs::write(&cache, &bytes[..bytes.len() / 3]).expect("truncate");
    let out = ok(&rensou(d, &arithmetic));
    assert!(
        out.contains("cannot be read") && out.contains("retraining"),
        "{out}"
    );
    assert_eq!(std::fs::read(&cache).expect("rebuilt").len(), bytes.len());
}

#[test]
fn paper_refuses_a_directory_that_is_not_a_study() {
    let dir = trained("1");
    let d = dir.path();
    let e = refused(d, &["paper", "--out", "run", "--seeds", "1"]);
    assert!(e.contains("holds a training run"), "{e}");
    std::fs::create_dir(d.join("stuff")).expect("mkdir");
    std::fs::write(d.join("stuff/thesis.tex"), "chapter 1").expect("write");
    let e = refused(d, &["paper", "--out", "stuff"]);
    assert!(e.contains("not a study"), "{e}");
}

/// The fields of `/proc/PID/stat` after the command name ("state ppid ..."): the name is in
/// parentheses and may hold spaces, so the split is after the last ')'.
#[cfg(target_os = "linux")]
fn proc_stat_fields(proc_dir: &std::path::Path) -> Option<String> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.trim_start().to_string())
}

/// The PIDs of `rensou bench train --child` processes whose parent is `parent`.
#[cfg(target_os = "linux")]
fn bench_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let ppid = proc_stat_fields(&entry.path())
            .and_then(|fields| fields.split_whitespace().nth(1)?.parse::<u32>().ok());
        let is_child = cmdline.split(|&b| b == 0).any(|arg| arg == b"--child");
        if is_child && ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// A bench that is killed (a timeout, Ctrl-C) takes its measuring child with it: on the first
/// GPU, `timeout` killed the bench and its CUDA child ran on, holding the GPU.
#[cfg(target_os = "linux")]
#[test]
fn killing_a_bench_kills_its_child() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut bench = {
        let _spawning = spawn_lock();
        Command::new(env!("CARGO_BIN_EXE_rensou"))
            .current_dir(dir.path())
            .args([
                "bench", "train", "--k", "20", "--steps", "100000", "--rounds", "1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the bench")
    };
    let parent = bench.id();
    let start = Instant::now();
    let children = loop {
        let found = bench_children(parent);
        if !found.is_empty() || start.elapsed() > Duration::from_secs(30) {
            break found;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !children.is_empty(),
        "the bench started no child within 30 s"
    );
    bench.kill().expect("kill the bench");
    let _ = bench.wait();
    let alive = |pid: u32| {
        // A killed child is reaped by init; until then it shows as a zombie ("Z").
        proc_stat_fields(std::path::Path::new(&format!("/proc/{pid}")))
            .is_some_and(|fields| !fields.starts_with('Z'))
    };
    let start = Instant::now();
    while children.iter().any(|&pid| alive(pid)) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let survivors: Vec<u32> = children.iter().copied().filter(|&pid| alive(pid)).collect();
    for pid in &survivors {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status(); // no stray load
    }
    assert!(
        survivors.is_empty(),
        "the bench's child outlived it: {survivors:?}"
    );
}

/// A tiny dataset and a run config whose `[model]` section is `model` (batch 32, K = 2).
fn with_model(model: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny(dir.path());
    std::fs::write(
        dir.path().join("tiny.toml"),
        format!("[model]\nlatent_dim = 4\n{model}\n\n[training]\nbatch_size = 32\nk = 2\n"),
    )
    .expect("write config");
    dir
}

#[test]
fn an_explicit_net_that_cannot_work_is_an_error_naming_the_field() {
    // Each is a choice the user made; none may be replaced by an MLP.
    for (net, expect) in [
        ("net = { type = \"conv2d\", kernel = 40 }", "model.net"),
        ("net = { type = \"conv2d\", stride = 0 }", "model.net"),
        ("net = { type = \"conv2d\", channels = [] }", "model.net"),
        ("net = { type = \"conv1d\" }", "model.net"),
        ("net = { type = \"mlp\", hidden = [0] }", "model.net.hidden"),
        ("net = \"conv1d\"", "the conv1d net fits none of the items"),
    ] {
        let dir = with_model(net);
        let e = refused(dir.path(), &train_args(&["--out", "run", "--epochs", "1"]));
        assert!(
            e.contains("model.net") && e.contains(expect) && !e.contains("keeps an MLP"),
            "{net}: {e}"
        );
    }
    // On the command line too.
    let dir = with_model("");
    let e = refused(
        dir.path(),
        &train_args(&["--out", "run", "--epochs", "1", "--net", "conv1d"]),
    );
    assert!(e.contains("--net") && e.contains("fits none"), "{e}");
}

#[test]
fn a_huge_hidden_width_names_the_hidden_widths() {
    let dir = with_model("net = { type = \"mlp\", hidden = [200000000] }");
    let e = refused(dir.path(), &train_args(&["--out", "run", "--epochs", "1"]));
    assert!(
        e.contains("lower `model.net.hidden`") && !e.contains("latent_dim"),
        "{e}"
    );
}

#[test]
fn the_memory_limit_takes_sizes_and_refuses_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tiny(d);
    write_config(d);
    let args = train_args(&["--out", "run", "--epochs", "1", "--grid-every", "0"]);
    for bad in ["abc", "0", "12Q"] {
        let e = refused_env(d, &args, &[("RENSOU_MEMORY_LIMIT", bad)]);
        assert!(
            e.contains("RENSOU_MEMORY_LIMIT") && e.contains(bad) && e.contains("not a memory size"),
            "{bad}: {e}"
        );
    }
    // A size with a unit is honoured: 100k is too little for this run, 100M enough.
    let e = refused_env(d, &args, &[("RENSOU_MEMORY_LIMIT", "100k")]);
    assert!(e.contains("102.4 kB available"), "{e}");
    let out = rensou_env(d, &args, &[("RENSOU_MEMORY_LIMIT", "100M")]);
    ok(&out);
    assert!(d.join("run/checkpoints/epoch-001/state.json").is_file());
}

#[test]
fn a_last_checkpoint_without_its_state_is_named_not_skipped() {
    let dir = trained("2");
    let d = dir.path();
    std::fs::remove_file(d.join("run/checkpoints/epoch-002/state.json")).expect("remove");
    let e = refused(d, &["train", "--out", "run", "--resume", "--epochs", "3"]);
    assert!(
        e.contains("checkpoint of epoch 2 is damaged")
            && e.contains("state.json is missing")
            && e.contains("to resume from epoch 1"),
        "{e}"
    );
}

#[test]
fn a_dataset_whose_stored_config_is_not_toml_is_read_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    Tiny {
        config_toml: "this is [not toml",
        ..Tiny::default()
    }
    .write(&d.join("tiny.h5"));
    write_config(d);
    let out = ok(&rensou(
        d,
        &train_args(&["--out", "run", "--epochs", "1", "--grid-every", "0"]),
    ));
    assert!(
        out.contains("not TOML") && out.contains("read as it is") && out.contains("tiny.h5"),
        "{out}"
    );
    let out = ok(&rensou(d, &["data", "info", "tiny.h5"]));
    assert!(out.contains("warning") && out.contains("not TOML"), "{out}");
}

#[test]
fn the_looser_variant_has_one_spelling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tiny(d);
    write_config(d);
    let e = refused(
        d,
        &train_args(&["--out", "run", "--objective", "iwae", "--looser"]),
    );
    assert!(e.contains("--objective dreg-looser"), "{e}");
    std::fs::write(
        d.join("old.toml"),
        "[training]\nobjective = \"iwae\"\nlooser = true\n",
    )
    .expect("write");
    let e = refused(
        d,
        &[
            "train", "--data", "tiny.h5", "--config", "old.toml", "--out", "run",
        ],
    );
    assert!(
        e.contains("training.looser") && e.contains("objective = \"dreg-looser\""),
        "{e}"
    );
    let e = refused(
        d,
        &train_args(&["--out", "run", "--objective", "elbo-looser"]),
    );
    assert!(e.contains("no looser variant"), "{e}");
    // The one spelling trains and is stored as the run's objective.
    ok(&rensou(
        d,
        &train_args(&[
            "--out",
            "run",
            "--objective",
            "iwae-looser",
            "--epochs",
            "1",
            "--grid-every",
            "0",
        ]),
    ));
    let config = std::fs::read_to_string(d.join("run/config.toml")).expect("config");
    assert!(
        config.contains("objective = \"iwae\"") && config.contains("looser = true"),
        "{config}"
    );
}
