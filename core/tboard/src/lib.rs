//! rensou-tboard: TensorBoard event files, written and read without a protobuf compiler.
//!
//! [`EventWriter`] writes one new `events.out.tfevents.*` file per writer: scalars
//! ([`EventWriter::add_scalar`], [`EventWriter::add_scalars`]) and PNG images
//! ([`EventWriter::add_image_png`]), each at a step. [`EventWriter::resume`] continues a run in
//! the same directory: it reads the steps already there ([`last_steps`]) and drops anything at
//! or before a tag's last step, so curves go on without repeated or backward steps.
//! [`read_events`] reads a file back (tests, tools).
//!
//! # Why not an existing crate
//!
//! The published Rust crates were weighed and none fits: `tboard` 0.1.1 generates its protobuf
//! code with `prost-build` in a build script (a `protoc` binary at build time); `tensorboard-rs`
//! 0.5.9 brings `protobuf` 2, a proto crate and `image` 0.23 (a second, old `image` beside the
//! workspace's), is MIT only, and panics where it could return errors; `tfrecord` 0.15 brings
//! prost, `num`, `itertools`, `noisy_float`, and `ureq`, `tar` and `prost-build` as build
//! dependencies (its build script can download TensorFlow's protos). Each is a one-author crate
//! whose last release pins dependencies a few years old (prost 0.12, image 0.23/0.24,
//! thiserror 1), and none reads back the last step per tag that a resumed run needs. What rensou
//! needs (TFRecord framing, CRC-32C and four protobuf messages) is small, so it is written here,
//! on `thiserror` and `libc` alone.
//!
//! # Format
//!
//! An event file is a sequence of TFRecord records (length, masked CRC-32C of the length, data,
//! masked CRC-32C of the data), each holding one protobuf `Event`. The first event of a file
//! carries `file_version = "brain.Event:2"`; with it TensorBoard purges data only on an explicit
//! restart marker (which this crate never writes), never because one tag's step is below
//! another's, so per-step and per-epoch tags may use different step scales. TensorBoard reads
//! every file with `tfevents` in its name in a run directory, in file-name order.
//!
//! # Files and links
//!
//! A writer creates its file with `create_new` (`O_CREAT | O_EXCL`), which refuses any existing
//! name, a symbolic link included, so nothing is ever written through a planted link. The
//! directory itself is followed and created if missing.

#![warn(missing_docs)]

mod crc32c;
mod proto;
mod reader;
mod record;
mod writer;

use std::path::PathBuf;

pub use reader::{last_steps, read_events};
pub use writer::EventWriter;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("creating", "writing", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An event file has a record whose CRC does not match, or whose event does not decode.
    #[error("{path}: corrupt record at byte {offset}: {reason}")]
    Corrupt {
        /// The event file.
        path: PathBuf,
        /// Byte offset of the record in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An image given to [`EventWriter::add_image_png`] is not what its arguments say.
    #[error("image {tag:?}: {reason}")]
    Image {
        /// The image's tag.
        tag: String,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One event as read by [`read_events`]: its time, its step and what it carries. Summary values
/// other than scalars and images (histograms, tensors, audio) are skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch when the event was written.
    pub wall_time: f64,
    /// The step (0 when the event does not set one).
    pub step: i64,
    /// The file version, set on a file's first event (`"brain.Event:2"`).
    pub file_version: Option<String>,
    /// Scalar values (`simple_value`), as `(tag, value)`.
    pub scalars: Vec<(String, f32)>,
    /// Image values.
    pub images: Vec<Image>,
}

/// One image value of an [`Event`], as stored (`Summary.Image`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    /// The value's tag.
    pub tag: String,
    /// Height in pixels.
    pub height: i32,
    /// Width in pixels.
    pub width: i32,
    /// Channels: 1 grey, 2 grey and alpha, 3 RGB, 4 RGBA.
    pub colorspace: i32,
    /// The encoded image (PNG for images this crate writes).
    pub encoded: Vec<u8>,
}
