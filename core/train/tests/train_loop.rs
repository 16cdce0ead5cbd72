//! The training loop on a tiny synthetic dataset: learning, exact resume, NaN stop, run
//! directory rules, `load_run`, config resolution.

use rensou_moe as _; // the default fusion
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rensou_api::modality::{ItemSet, LabelSpec, Split};
use rensou_api::rng::derive_seed;
use rensou_api::Error;
use rensou_model::dist::DistFamily;
use rensou_model::nn::NetConfig;
use rensou_store::{write_dataset, DatasetContents, Provenance};
use rensou_train::{
    self as train, dataset_modalities, latest_checkpoint, load_run, read_metrics, Model,
    PairedData, RunConfig, RunSpec, TrainOptions,
};

type TestBackend = burn::backend::Autodiff<burn_flex::Flex>;
type Inner = <TestBackend as AutodiffBackend>::InnerBackend;

/// burn-flex keeps one global random stream: tests that train must not interleave.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A deterministic item of modality `kind` for number `n` (1..=9) and variant `v`: `n` lit
/// cells of a 3x3 layout (modality `a`) or a bar of height `n` (modality `b`), plus a little
/// variant-dependent texture.
fn item(kind: char, shape: &[usize], n: usize, v: usize) -> Vec<u8> {
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    let mut out = vec![0u8; h * w * c];
    for y in 0..h {
        for x in 0..w {
            let on = match kind {
                'a' => {
                    let cell = (y * 3 / h) * 3 + (x * 3 / w);
                    cell < n
                }
                _ => (h - 1 - y) * 9 < n * h && x >= w / 4 && x < w - w / 4,
            };
            for ch in 0..c {
                let p = (y * w + x) * c + ch;
                out[p] = if on {
                    200 + ((v * 7 + ch * 13 + x) % 50) as u8
                } else {
                    ((v * 3 + y + ch) % 20) as u8
                };
            }
        }
    }
    out
}

fn split_set(kind: char, shape: &[usize], pairs: usize, offset: usize) -> ItemSet {
    let mut set = ItemSet::new(shape.to_vec(), &["number"]);
    for i in 0..pairs {
        let n = i % 9 + 1;
        set.push(&item(kind, shape, n, i + offset), &[("number", n as i64)])
            .expect("push");
    }
    set
}

/// Writes a dataset with modalities `a` [8, 8, 3] and `b` [8, 8, 3]: 180 train, 45 test pairs.
fn write_tiny(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.h5");
    let shape = [8, 8, 3];
    let mut contents = DatasetContents {
        modalities: vec!["a".into(), "b".into()],
        provenance: Provenance {
            seed: 0,
            config_toml: String::new(),
            sources: vec!["a: synthetic".into(), "b: synthetic".into()],
        },
        suggested: Default::default(),
        ..Default::default()
    };
    for m in ["a", "b"] {
        contents.label_specs.insert(
            m.into(),
            vec![LabelSpec::numeric("number", "number of things")],
        );
    }
    for (split, pairs, offset) in [(Split::Train, 180, 0), (Split::Test, 45, 1000)] {
        let mut sets = BTreeMap::new();
        for m in ['a', 'b'] {
            sets.insert(m.to_string(), split_set(m, &shape, pairs, offset));
        }
        contents.splits.insert(split, sets);
    }
    write_dataset(&path, &contents).expect("write tiny dataset");
    path
}

/// A resolved config for the tiny dataset: latent 4, MLP hidden [16], batch 32, K 2.
fn tiny_config(data: &Path, extra_training: &str, modalities: &str) -> RunConfig {
    let text = format!(
        r#"
[data]
file = "{}"
modalities = [{modalities}]

[model]
latent_dim = 4
net = {{ type = "mlp", hidden = [16] }}

[training]
epochs = 2
batch_size = 32
k = 2
seed = 7
lr = 0.003
{extra_training}
"#,
        data.display()
    );
    let spec = RunSpec::from_toml(&text, Path::new("<test>")).expect("spec parses");
    let available = dataset_modalities(data).expect("dataset modalities");
    let (config, _notes) = spec.resolve(&available).expect("spec resolves");
    config
}

fn run(config: &RunConfig, dir: &Path, resume: bool) -> rensou_api::Result<train::TrainOutcome> {
    let options = TrainOptions {
        resume,
        ..Default::default()
    };
    train::train::<TestBackend>(config, dir, &Default::default(), &options)
}

/// Every float parameter of a model, flattened, in visiting order.
struct Collect(Vec<Vec<f32>>);

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let values = param
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 data");
        self.0.push(values);
    }
}

fn params<B: Backend>(model: &Model<B>) -> Vec<Vec<f32>> {
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

#[test]
fn loss_decreases_and_run_dir_is_complete() {
    let _g = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write_tiny(tmp.path());
    let mut config = tiny_config(&data, "grid_every = 2", r#""a", "b""#);
    config.training.epochs = 6;
    assert_eq!(config.model.prior.family, DistFamily::Laplace);
    let dir = tmp.path().join("run");
    let out = run(&config, &dir, false).expect("training runs");
    assert_eq!(out.resumed_from, 0);
    let m = &out.metrics;
    assert_eq!(m.len(), 6);
    assert!(
        m[5].train_loss < m[0].train_loss && m[5].test_loss < m[0].test_loss,
        "loss should decrease: {m:?}"
    );
    assert!(m
        .iter()
        .all(|e| e.steps == 6 && e.train_pairs == 180 && e.test_pairs == 45));
    // Files: config, metrics, grids every 2 epochs (and at the end), only the last checkpoint.
    assert_eq!(read_metrics(&dir).expect("metrics"), *m);
    let stored = RunConfig::read(&dir.join("config.toml")).expect("config.toml");
    assert_eq!(stored, config);
    for e in [2, 4, 6] {
        assert!(train::grid_path(&dir, e).is_file(), "grid of epoch {e}");
    }
    assert!(!train::grid_path(&dir, 1).exists());
    let png = image::open(train::grid_path(&dir, 6)).expect("grid is a PNG");
    assert!(png.width() > 100 && png.height() > 50);
    let mut ckpts: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .expect("checkpoints dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    ckpts.sort();
    // The last two epochs are kept (the earlier one in case the last is damaged later).
    assert_eq!(ckpts, vec!["epoch-005".to_owned(), "epoch-006".to_owned()]);
}

#[test]
fn resume_gives_the_same_run_as_training_straight_through() {
    let _g = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write_tiny(tmp.path());
    let two = tiny_config(&data, "", r#""a", "b""#);
    let mut one = two.clone();
    one.training.epochs = 1;

    let straight = tmp.path().join("straight");
    let a = run(&two, &straight, false).expect("straight run");

    let resumed = tmp.path().join("resumed");
    run(&one, &resumed, false).expect("first epoch");
    // Debris of a run killed during epoch 2: a half-written checkpoint directory.
    let debris = resumed.join("checkpoints").join(".epoch-002.tmp-999");
    std::fs::create_dir_all(&debris).expect("debris");
    std::fs::write(debris.join("model.mpk"), b"half").expect("debris file");
    let b = run(&two, &resumed, true).expect("resumed run");
    assert_eq!(b.resumed_from, 1);
    assert!(!debris.exists(), "partial checkpoints are cleaned up");

    for (x, y) in a.metrics.iter().zip(&b.metrics) {
        assert_eq!(x.epoch, y.epoch);
        assert_eq!(
            x.train_loss, y.train_loss,
            "train loss of epoch {}",
            x.epoch
        );
        assert_eq!(x.test_loss, y.test_loss, "test loss of epoch {}", x.epoch);
    }
    assert_eq!(a.metrics.len(), 2);
    assert_eq!(b.metrics.len(), 2);
    assert_eq!(read_metrics(&resumed).expect("metrics").len(), 2);

    let device = Default::default();
    let (ma, _) = load_run::<Inner>(&straight, &device).expect("load straight");
    let (mb, cb) = load_run::<Inner>(&resumed, &device).expect("load resumed");
    assert_eq!(cb, two);
    let (pa, pb) = (params(&ma), params(&mb));
    assert!(!pa.is_empty());
    assert_eq!(pa, pb, "final parameters differ");
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_checkpoint() {
    let _g = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write_tiny(tmp.path());
    let mut config = tiny_config(&data, "", r#""a", "b""#);
    config.training.epochs = 1;
    let dir = tmp.path().join("run");
    run(&config, &dir, false).expect("a good first epoch");
    let before = params(
        &load_run::<Inner>(&dir, &Default::default())
            .expect("load")
            .0,
    );

    config.training.epochs = 3;
    config.training.lr = 1e30; // the first update overflows the next forward pass
    let err = run(&config, &dir, true).expect_err("training must stop");
    match &err {
        Error::NonFinite {
            epoch,
            step,
            last_good,
            what,
            ..
        } => {
            assert_eq!((*epoch, *last_good, *what), (2, 1, "training loss"));
            assert!(*step >= 1 && *step <= 6, "step {step}");
        }
        other => panic!("expected NonFinite, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("epoch 2") && msg.contains("step"), "{msg}");
    let ckpt = latest_checkpoint(&dir)
        .expect("scan")
        .expect("a checkpoint");
    assert_eq!(ckpt.state.epoch, 1);
    assert_eq!(read_metrics(&dir).expect("metrics").len(), 1);
    let after = params(
        &load_run::<Inner>(&dir, &Default::default())
            .expect("load")
            .0,
    );
    assert_eq!(before, after, "the good checkpoint is untouched");
    assert!(after.iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn load_run_reproduces_the_recorded_test_loss() {
    let _g = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write_tiny(tmp.path());
    let mut config = tiny_config(&data, "", r#""a", "b""#);
    config.training.epochs = 1;
    let dir = tmp.path().join("run");
    let out = run(&config, &dir, false).expect("train");

    let device = Default::default();
    let (model, loaded) = load_run::<Inner>(&dir, &device).expect("load_run");
    assert_eq!(loaded, config);
    // The loop's test pass, replayed: same seed, same batches, same summation.
    let data = PairedData::load(&loaded).expect("data");
    let t = &loaded.training;
    Inner::seed(&device, derive_seed(t.seed, &["epoch", "1", "test"]));
    let objective = loaded.objective();
    let n = data.test.len();
    let order: Vec<usize> = (0..n).collect();
    let mut sum: Option<Tensor<Inner, 1>> = None;
    for chunk in order.chunks(t.batch_size) {
        let xs = data.test.batch::<Inner>(chunk, &device).expect("batch");
        let v = model
            .objective(&xs, &objective)
            .expect("objective")
            .value
            .sum();
        sum = Some(match sum {
            Some(s) => s.add(v),
            None => v,
        });
    }
    let test_loss = -sum.expect("batches").into_scalar().elem::<f64>() / n as f64;
    assert_eq!(test_loss, out.metrics[0].test_loss);

    // Two loads give the same model on either backend.
    let (again, _) = load_run::<TestBackend>(&dir, &device).expect("load on autodiff");
    assert_eq!(params(&model), params(&again));
}

#[test]
fn run_directory_rules() {
    let _g = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write_tiny(tmp.path());
    let mut config = tiny_config(&data, "", r#""a", "b""#);
    config.training.epochs = 1;

    // Resuming nothing.
    let empty = tmp.path().join("empty");
    let err = run(&config, &empty, true).expect_err("nothing to resume");
    assert!(matches!(err, Error::NothingToResume { .. }), "{err}");
    let err = load_run::<Inner>(&empty, &Default::default()).expect_err("no run");
    assert!(err.to_string().contains("config.toml"), "{err}");

    // A new run in a used directory.
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("notes.txt"), "mine").expect("write");
    let err = run(&config, &dir, false).expect_err("non-empty dir");
    assert!(matches!(err, Error::RunDirNotEmpty { .. }), "{err}");
    assert!(err.to_string().contains("--resume"), "{err}");

    // A run killed before its first checkpoint resumes from scratch.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).expect("mkdir");
    std::fs::write(fresh.join("config.toml"), config.to_toml().expect("toml")).expect("write");
    let err = load_run::<Inner>(&fresh, &Default::default()).expect_err("no checkpoint");
    assert!(matches!(err, Error::NoCheckpoint { .. }), "{err}");
    let out = run(&config, &fresh, true).expect("resume from scratch");
    assert_eq!((out.resumed_from, out.metrics.len()), (0, 1));

    // A resumed run cannot change the model.
    let mut other = config.clone();
    other.model.latent_dim = 5;
    let err = run(&other, &fresh, true).expect_err("model differs");
    assert!(
        matches!(&err, Error::ResumeMismatch { field, .. } if field.contains("latent_dim")),
        "{err}"
    );
    // The CLI's stricter rule: only epochs and the data path may change.
    let mut more = config.clone();
    more.training.epochs = 9;
    more.data.file = PathBuf::from("/elsewhere.h5");
    assert_eq!(more.resume_conflict(&config), None);
    more.training.k = 3;
    let conflict = more.resume_conflict(&config).expect("k differs");
    assert!(conflict.contains("training.k"), "{conflict}");
}

#[test]
fn single_modality_vae_and_conv_net() {
    let _g = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write_tiny(tmp.path());
    // One modality: a VAE, Normal prior by default.
    let mut vae = tiny_config(&data, "", r#""b""#);
    vae.training.epochs = 1;
    assert_eq!(vae.model.prior.family, DistFamily::Normal);
    assert_eq!(vae.model.modalities.len(), 1);
    let out = run(&vae, &tmp.path().join("vae"), false).expect("VAE trains");
    assert!(out.metrics[0].train_loss.is_finite());

    // A conv net for `a` (8x8 survives two stride-2 convolutions), MLP for `b`.
    let text = format!(
        r#"
[data]
file = "{}"
[model]
latent_dim = 4
net = {{ type = "mlp", hidden = [16] }}
[[model.modalities]]
name = "a"
net = {{ type = "conv2d", channels = [4, 8] }}
[training]
epochs = 1
batch_size = 64
k = 2
"#,
        data.display()
    );
    let spec = RunSpec::from_toml(&text, Path::new("<test>")).expect("parses");
    let (config, _) = spec
        .resolve(&dataset_modalities(&data).expect("modalities"))
        .expect("resolves");
    assert!(matches!(
        config.model.modalities[0].net,
        NetConfig::Conv2d(_)
    ));
    assert!(matches!(config.model.modalities[1].net, NetConfig::Mlp(_)));
    // The stored TOML round-trips.
    let back = RunConfig::from_toml(&config.to_toml().expect("toml"), Path::new("<x>"))
        .expect("round trip");
    assert_eq!(back, config);
    let out = run(&config, &tmp.path().join("conv"), false).expect("conv trains");
    assert!(out.metrics[0].train_loss.is_finite());
}

#[test]
fn config_errors_name_the_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write_tiny(tmp.path());
    let available = dataset_modalities(&data).expect("modalities");
    let resolve = |text: &str| -> String {
        let full = format!("[data]\nfile = \"{}\"\n{text}", data.display());
        match RunSpec::from_toml(&full, Path::new("<t>")) {
            Err(e) => e.to_string(),
            Ok(spec) => match spec.resolve(&available) {
                Err(e) => e.to_string(),
                Ok(_) => String::from("ok"),
            },
        }
    };
    assert!(resolve("[training]\nbatch_size = 0").contains("training.batch_size"));
    assert!(resolve("[training]\nlr = -1.0").contains("training.lr"));
    assert!(resolve("[training]\nobjective = \"elbo\"\nlooser = true").contains("training.looser"));
    assert!(resolve("[training]\nobjektive = \"dreg\"").contains("objektive"));
    assert!(resolve("[training]\nobjective = \"vae\"").contains("vae"));
    assert!(resolve("[model]\nnet = \"transformer\"").contains("transformer"));
    let e = resolve("[[model.modalities]]\nname = \"audio\"");
    assert!(
        e.contains("audio") && e.contains("model.modalities[0].name"),
        "{e}"
    );
    // A conv net asked for by name where it cannot work is an error; as the default, a note.
    let spec = RunSpec::from_toml(
        &format!(
            "[data]\nfile = \"{}\"\n[model]\nnet = \"conv\"\n[[model.modalities]]\nname = \"b\"\nnet = \"mlp\"",
            data.display()
        ),
        Path::new("<t>"),
    )
    .expect("parses");
    let (config, notes) = spec.resolve(&available).expect("resolves");
    assert!(matches!(
        config.model.modalities[0].net,
        NetConfig::Conv2d(_)
    ));
    assert!(notes.is_empty(), "{notes:?}");
    let missing = RunSpec::default()
        .resolve(&available)
        .expect_err("no data file");
    assert!(missing.to_string().contains("data.file"), "{missing}");
}

#[test]
fn a_modality_suggestion_picks_the_net_and_likelihood_unless_the_config_names_one() {
    use rensou_api::{Likelihood, NetKind};
    use rensou_train::DatasetModality;
    let available = vec![
        DatasetModality {
            suggested_net: Some(NetKind::Conv1d),
            suggested_likelihood: Some(Likelihood::Laplace),
            ..DatasetModality::new("audio", &[32, 64])
        },
        // Too short for three stride-2 convolutions: the suggestion cannot fit.
        DatasetModality {
            suggested_net: Some(NetKind::Conv1d),
            ..DatasetModality::new("tiny", &[4, 3])
        },
        DatasetModality::new("plain", &[8]),
    ];
    let resolve = |extra: &str| {
        RunSpec::from_toml(
            &format!("[data]\nfile = \"x.h5\"\n{extra}"),
            Path::new("<t>"),
        )
        .expect("parses")
        .resolve(&available)
        .expect("resolves")
    };
    let (config, notes) = resolve("");
    let net = |i: usize| config.model.modalities[i].net.kind().expect("a built-in");
    assert_eq!(net(0), NetKind::Conv1d);
    assert_eq!(config.model.modalities[0].likelihood, Likelihood::Laplace);
    assert_eq!(net(1), NetKind::Mlp);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`tiny` suggests a conv1d net")),
        "{notes:?}"
    );
    assert_eq!(net(2), NetKind::Mlp);
    assert_eq!(config.model.modalities[2].likelihood, Likelihood::Normal);
    // The config's choice wins over the suggestion.
    let (config, _) = resolve("[model]\nnet = \"mlp\"");
    assert_eq!(config.model.modalities[0].net.kind(), Some(NetKind::Mlp));
    let (config, _) = resolve("[[model.modalities]]\nname = \"audio\"\nlikelihood = \"normal\"");
    assert_eq!(config.model.modalities[0].likelihood, Likelihood::Normal);
}
