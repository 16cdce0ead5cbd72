#![warn(missing_docs)]
//! rensou's HDF5 store: the dataset format, its reader and writer, the dataset builder
//! ([`build`]) and the latents file written by `rensou probe`.
//!
//! # The dataset format
//!
//! One file per dataset, readable from Python with h5py without rensou:
//!
//! ```text
//! /                                   attrs: format = "rensou-dataset", format_version = 1,
//!                                            seed, config (TOML), modalities, provenance, created_by
//! /{split}                            attrs: pairs
//! /{split}/{modality}                 attrs: labels (comma-separated label names)
//! /{split}/{modality}/data            uint8 [N, *item_shape] (images: [N, H, W, C])
//! /{split}/{modality}/labels/{name}   int64 [N]; attrs: description, values (JSON: value -> name)
//! ```
//!
//! Row `i` of every modality in a split is pair `i`.

pub mod build;
mod latents;
mod reader;
mod writer;

pub use latents::write_latents;
pub use reader::{DatasetFile, LabelHistograms, LabelInfo, ModalityInfo, SplitSummary, Summary};
pub(crate) use writer::str_attr;
pub use writer::{write_dataset, DatasetContents, Provenance};

/// Value of the root `format` attribute.
pub const FORMAT_NAME: &str = "rensou-dataset";
/// Value of the root `format_version` attribute this version writes and reads.
pub const FORMAT_VERSION: u32 = 1;

fn hdf5_err(path: &std::path::Path, what: impl std::fmt::Display) -> rensou_api::Error {
    rensou_api::Error::Hdf5 {
        path: path.to_path_buf(),
        message: what.to_string(),
    }
}
