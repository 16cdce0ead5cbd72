//! HDF5 round trips through the public API, and the errors for damaged or foreign files.

mod common;

use std::path::Path;

// Linking the plugins registers them with typetag and inventory.
use rensou_cmnist as _;
use rensou_oscn as _;

use rensou_api::progress::NoProgress;
use rensou_api::{Error, SourceEnv, Split};
use rensou_store::build::{build_dataset, DataConfig};
use rensou_store::DatasetFile;

fn config(mnist: &Path) -> (DataConfig, SourceEnv) {
    let text = "seed = 11\npairs_per_item = 2\n[[modalities]]\ntype = \"oscn\"\n[[modalities]]\ntype = \"cmnist\"\n";
    let cfg = DataConfig::from_toml(text, Path::new("inline.toml")).unwrap();
    let mut env = SourceEnv::default();
    env.dirs.insert("mnist".into(), mnist.to_path_buf());
    (cfg, env)
}

#[test]
fn pairs_share_number_and_colour_and_each_item_is_used_twice() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_mnist(&dir.path().join("mnist"), 4, 2);
    let (cfg, env) = config(&dir.path().join("mnist"));
    let out = dir.path().join("d.h5");
    let report = build_dataset(&cfg, &env, &out, &NoProgress).unwrap();
    assert_eq!(report.shared_labels, ["colour", "number"]);

    let ds = DatasetFile::open(&out).unwrap();
    assert_eq!(ds.modalities(), ["oscn", "cmnist"]);
    assert_eq!(ds.seed().unwrap(), 11);
    for split in [Split::Train, Split::Test] {
        let oscn = ds.read(split, "oscn").unwrap();
        let cmnist = ds.read(split, "cmnist").unwrap();
        assert_eq!(oscn.len(), cmnist.len());
        assert_eq!(oscn.shape, [32, 32, 3]);
        assert_eq!(cmnist.shape, [28, 28, 3]);
        for label in ["number", "colour"] {
            assert_eq!(oscn.label(label).unwrap(), cmnist.label(label).unwrap());
        }
        // Every CMNIST item (digit, colour) appears exactly twice (pairs_per_item = 2).
        let mut uses = std::collections::BTreeMap::new();
        let src = cmnist.label("source_index").unwrap();
        let col = cmnist.label("colour").unwrap();
        for i in 0..cmnist.len() {
            *uses.entry((src[i], col[i])).or_insert(0) += 1;
        }
        assert!(uses.values().all(|&n| n == 2), "{uses:?}");
        // Numbers 1..=9 only (zero dropped).
        assert!(cmnist
            .label("number")
            .unwrap()
            .iter()
            .all(|n| (1..=9).contains(n)));
    }
    // Labels alone match what `read` returns.
    let labels = ds.read_labels(Split::Train, "oscn").unwrap();
    assert_eq!(
        labels["number"],
        ds.read(Split::Train, "oscn").unwrap().labels["number"]
    );
    let info = ds.modality_info(Split::Train, "oscn").unwrap();
    let colour = info
        .labels
        .iter()
        .find(|l| l.spec.name == "colour")
        .unwrap();
    assert_eq!(colour.spec.values[&3], "white");
}

#[test]
fn foreign_truncated_and_incomplete_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_mnist(&dir.path().join("mnist"), 2, 1);
    let (cfg, env) = config(&dir.path().join("mnist"));
    let good = dir.path().join("good.h5");
    build_dataset(&cfg, &env, &good, &NoProgress).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    // Truncated.
    let cut = dir.path().join("cut.h5");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let err = DatasetFile::open(&cut)
        .and_then(|d| d.read(Split::Train, "oscn"))
        .expect_err("a truncated file must fail");
    assert!(
        matches!(err, Error::Format { .. } | Error::Hdf5 { .. }),
        "{err}"
    );

    // Another HDF5 file (no format attribute).
    let foreign = dir.path().join("foreign.h5");
    hdf5::File::create(&foreign)
        .unwrap()
        .create_group("train")
        .unwrap();
    let err = DatasetFile::open(&foreign).err().unwrap().to_string();
    assert!(err.contains("no `format` attribute"), "{err}");

    // A future format version.
    let future = dir.path().join("future.h5");
    std::fs::copy(&good, &future).unwrap();
    {
        let f = hdf5::File::open_rw(&future).unwrap();
        f.attr("format_version")
            .unwrap()
            .write_scalar(&2u64)
            .unwrap();
    }
    let err = DatasetFile::open(&future).err().unwrap().to_string();
    assert!(err.contains("format version 2"), "{err}");

    // A missing dataset.
    let holed = dir.path().join("holed.h5");
    std::fs::copy(&good, &holed).unwrap();
    {
        let f = hdf5::File::open_rw(&holed).unwrap();
        f.unlink("test/cmnist/labels/number").unwrap();
    }
    let ds = DatasetFile::open(&holed).unwrap();
    let err = ds.read(Split::Test, "cmnist").err().unwrap().to_string();
    assert!(err.contains("number") || err.contains("rows"), "{err}");
    let err = ds.read(Split::Test, "audio").err().unwrap().to_string();
    assert!(err.contains("no modality `audio`"), "{err}");
}

#[test]
fn failed_build_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _) = config(&dir.path().join("nowhere"));
    let out = dir.path().join("never.h5");
    assert!(build_dataset(&cfg, &SourceEnv::default(), &out, &NoProgress).is_err());
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
