//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rensou_cmnist::idx::write_mnist_dir;
use rensou_cmnist::Digits;

/// The `rensou` binary built beside this test (`cargo test --workspace` builds it).
pub fn rensou_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/rensou
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let bin = dir.join(format!("rensou{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --release --workspace`, which builds the binary",
        bin.display()
    );
    bin
}

/// Runs `rensou args...` in `cwd`.
pub fn rensou(cwd: &Path, args: &[&str]) -> Output {
    Command::new(rensou_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("RENSOU_MNIST")
        .output()
        .expect("run rensou")
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "rensou failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts failure with a one-line error on stderr (no panic) and returns it.
pub fn fails(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected failure, got success: {err}"
    );
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error is not one line: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// Synthetic digits: `per_class` images of each digit 0..=9, pixel values a function of
/// digit and index (distinct images).
pub fn synthetic_digits(per_class: usize, salt: u8) -> Digits {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for i in 0..per_class {
        for d in 0..10u8 {
            labels.push(d);
            for p in 0..784usize {
                let v = (p as u8)
                    .wrapping_mul(d.wrapping_add(1))
                    .wrapping_add(i as u8)
                    .wrapping_add(salt);
                images.push(if p % 7 == 0 { 0 } else { v });
            }
        }
    }
    Digits::new(images, labels).expect("synthetic digits")
}

/// Writes a tiny MNIST (IDX, gzipped) into `dir`: `train_per_class` and `test_per_class` digits
/// of each of 0..=9.
pub fn tiny_mnist(dir: &Path, train_per_class: usize, test_per_class: usize) {
    write_mnist_dir(
        dir,
        &synthetic_digits(train_per_class, 0),
        &synthetic_digits(test_per_class, 101),
        true,
    )
    .expect("write tiny MNIST");
}

/// The `epoch` of every line of `RUN/metrics.jsonl`, in order.
pub fn metric_epochs(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("a JSON line")["epoch"]
                .as_u64()
                .expect("an epoch")
        })
        .collect()
}

/// Waits (polling every 20 ms) until `path` is a file; false when `limit` passed first.
pub fn wait_for_file(path: &Path, limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while !path.is_file() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}
