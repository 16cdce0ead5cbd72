//! Reading and writing MNIST's IDX files, plain or gzipped.
//!
//! An IDX image file is a big-endian header `0x00000803, count, rows, cols` followed by
//! `count * rows * cols` bytes; a label file is `0x00000801, count` followed by `count` bytes.
//! A path ending in `.gz` is (de)compressed with gzip.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::CmnistError;
use crate::source::{Digits, DIGIT_PIXELS, DIGIT_SIDE};

/// Magic number of an IDX file of unsigned-byte 3-D arrays (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte 1-D arrays (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The standard MNIST file names (without `.gz`), in the order train images, train labels,
/// test images, test labels.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The images of an IDX image file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `len() * rows * cols` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        match self.rows * self.cols {
            0 => 0,
            n => self.pixels.len() / n,
        }
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Reads a whole file, decompressing it when its name ends in `.gz`.
fn read_all(path: &Path) -> Result<Vec<u8>, CmnistError> {
    let io = |action| {
        move |source| CmnistError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let mut file = File::open(path).map_err(io("cannot open"))?;
    let mut bytes = Vec::new();
    if is_gz(path) {
        GzDecoder::new(file)
            .read_to_end(&mut bytes)
            .map_err(io("cannot decompress"))?;
    } else {
        if let Ok(meta) = file.metadata() {
            bytes.reserve(usize::try_from(meta.len()).unwrap_or(0));
        }
        file.read_to_end(&mut bytes).map_err(io("cannot read"))?;
    }
    Ok(bytes)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the magic number and that the file holds exactly `header + body` bytes.
fn check_layout(
    path: &Path,
    bytes: &[u8],
    kind: &'static str,
    magic: u32,
    header: usize,
    body: impl Fn(&[u8]) -> u64,
) -> Result<(), CmnistError> {
    let decompressed = is_gz(path);
    let actual = bytes.len() as u64;
    if bytes.len() < 4 {
        return Err(CmnistError::Truncated {
            path: path.to_owned(),
            expected: header as u64,
            actual,
            decompressed,
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(CmnistError::BadMagic {
            path: path.to_owned(),
            kind,
            found,
            expected: magic,
        });
    }
    if bytes.len() < header {
        return Err(CmnistError::Truncated {
            path: path.to_owned(),
            expected: header as u64,
            actual,
            decompressed,
        });
    }
    let expected = header as u64 + body(bytes);
    if actual < expected {
        return Err(CmnistError::Truncated {
            path: path.to_owned(),
            expected,
            actual,
            decompressed,
        });
    }
    if actual > expected {
        return Err(CmnistError::TrailingData {
            path: path.to_owned(),
            expected,
            actual,
            decompressed,
        });
    }
    Ok(())
}

/// Parses the bytes of an IDX image file; `path` only names the file in errors.
pub fn parse_images(path: &Path, mut bytes: Vec<u8>) -> Result<IdxImages, CmnistError> {
    check_layout(path, &bytes, "images", IMAGES_MAGIC, 16, |b| {
        u64::from(be_u32(b, 4)) * u64::from(be_u32(b, 8)) * u64::from(be_u32(b, 12))
    })?;
    let rows = be_u32(&bytes, 8) as usize;
    let cols = be_u32(&bytes, 12) as usize;
    bytes.drain(..16);
    Ok(IdxImages {
        rows,
        cols,
        pixels: bytes,
    })
}

/// Parses the bytes of an IDX label file; `path` only names the file in errors.
pub fn parse_labels(path: &Path, mut bytes: Vec<u8>) -> Result<Vec<u8>, CmnistError> {
    check_layout(path, &bytes, "labels", LABELS_MAGIC, 8, |b| {
        u64::from(be_u32(b, 4))
    })?;
    bytes.drain(..8);
    Ok(bytes)
}

/// Reads an IDX image file (`.gz` is decompressed).
pub fn read_images(path: &Path) -> Result<IdxImages, CmnistError> {
    parse_images(path, read_all(path)?)
}

/// Reads an IDX label file (`.gz` is decompressed).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, CmnistError> {
    parse_labels(path, read_all(path)?)
}

fn header_u32(what: &str, n: usize) -> Result<[u8; 4], CmnistError> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| CmnistError::Shape(format!("{what} {n} does not fit an IDX header")))
}

/// Writes `header` then `body` to `path`, gzipped when the name ends in `.gz`; atomically
/// (a temporary file renamed over `path`), so a link planted at `path` is replaced, never
/// written through.
fn write_all(path: &Path, header: &[u8], body: &[u8]) -> Result<(), CmnistError> {
    let io = |source| CmnistError::Io {
        action: "cannot write",
        path: path.to_owned(),
        source,
    };
    let bytes = if is_gz(path) {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(header).map_err(io)?;
        gz.write_all(body).map_err(io)?;
        gz.finish().map_err(io)?
    } else {
        [header, body].concat()
    };
    rensou_api::fsutil::write_bytes_atomically(path, &bytes)
        .map_err(|e| io(std::io::Error::other(e.to_string())))
}

/// Writes an IDX image file of `rows x cols` images (`pixels.len()` must be a multiple of
/// `rows * cols`); gzipped when `path` ends in `.gz`.
pub fn write_images(
    path: &Path,
    rows: usize,
    cols: usize,
    pixels: &[u8],
) -> Result<(), CmnistError> {
    let per = rows * cols;
    if per == 0 || !pixels.len().is_multiple_of(per) {
        return Err(CmnistError::Shape(format!(
            "{} pixels are not a whole number of {rows}x{cols} images",
            pixels.len()
        )));
    }
    let mut header = Vec::with_capacity(16);
    header.extend(IMAGES_MAGIC.to_be_bytes());
    header.extend(header_u32("image count", pixels.len() / per)?);
    header.extend(header_u32("rows", rows)?);
    header.extend(header_u32("cols", cols)?);
    write_all(path, &header, pixels)
}

/// Writes an IDX label file; gzipped when `path` ends in `.gz`.
pub fn write_labels(path: &Path, labels: &[u8]) -> Result<(), CmnistError> {
    let mut header = Vec::with_capacity(8);
    header.extend(LABELS_MAGIC.to_be_bytes());
    header.extend(header_u32("label count", labels.len())?);
    write_all(path, &header, labels)
}

/// Writes the four standard MNIST files for `train` and `test` into `dir` (created if needed),
/// gzipped or not. Used by tests and benchmarks to make synthetic MNIST.
pub fn write_mnist_dir(
    dir: &Path,
    train: &Digits,
    test: &Digits,
    gz: bool,
) -> Result<(), CmnistError> {
    std::fs::create_dir_all(dir).map_err(|source| CmnistError::Io {
        action: "cannot create",
        path: dir.to_owned(),
        source,
    })?;
    let name = |i: usize| {
        let base = MNIST_FILES[i];
        dir.join(if gz {
            format!("{base}.gz")
        } else {
            base.to_owned()
        })
    };
    write_images(&name(0), DIGIT_SIDE, DIGIT_SIDE, &train.images)?;
    write_labels(&name(1), &train.labels)?;
    write_images(&name(2), DIGIT_SIDE, DIGIT_SIDE, &test.images)?;
    write_labels(&name(3), &test.labels)?;
    Ok(())
}

/// Finds `base` or `base.gz` in `dir` (also accepting the `train-images.idx3-ubyte` spelling
/// some mirrors use).
pub fn find_file(dir: &Path, base: &str) -> Option<PathBuf> {
    let dotted = base.replacen("-idx", ".idx", 1);
    let found = [base, dotted.as_str()]
        .into_iter()
        .flat_map(|b| [b.to_owned(), format!("{b}.gz")])
        .map(|name| dir.join(name))
        .find(|p| p.is_file());
    found
}

/// Reads one split (images + labels) and checks dims, counts and label values.
pub fn read_split(images: &Path, labels: &Path) -> Result<Digits, CmnistError> {
    let img = read_images(images)?;
    if img.rows != DIGIT_SIDE || img.cols != DIGIT_SIDE {
        return Err(CmnistError::Dims {
            path: images.to_owned(),
            rows: img.rows,
            cols: img.cols,
        });
    }
    let lab = read_labels(labels)?;
    if img.len() != lab.len() {
        return Err(CmnistError::CountMismatch {
            images: images.to_owned(),
            n_images: img.len(),
            labels: labels.to_owned(),
            n_labels: lab.len(),
        });
    }
    if let Some((index, &value)) = lab.iter().enumerate().find(|(_, &v)| v > 9) {
        return Err(CmnistError::BadLabel {
            path: labels.to_owned(),
            index,
            value,
        });
    }
    debug_assert_eq!(img.pixels.len(), lab.len() * DIGIT_PIXELS);
    Digits::new(img.pixels, lab)
}

/// Reads the training and test splits from a directory of the four standard MNIST files.
pub fn read_mnist_dir(dir: &Path) -> Result<(Digits, Digits), CmnistError> {
    let mut paths = Vec::with_capacity(4);
    for base in MNIST_FILES {
        paths.push(find_file(dir, base).ok_or_else(|| CmnistError::NotASource {
            path: dir.to_owned(),
            reason: format!("the IDX file {base} (or {base}.gz) is missing"),
        })?);
    }
    let train = read_split(&paths[0], &paths[1])?;
    let test = read_split(&paths[2], &paths[3])?;
    Ok((train, test))
}
