#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod error;
pub mod fsutil;
pub mod modality;
pub mod net;
pub mod probe;
pub mod progress;
pub mod registry;
pub mod rng;
pub mod stats;
pub mod vocab;

pub use error::{Error, Result};
pub use modality::{
    ClassCounts, ItemRequest, ItemSet, LabelSpec, Likelihood, Modality, ModalityConfig,
    ModalityPlugin, NetKind, PreviewFile, SourceEnv, Split, Suggested, Supply,
};

/// Re-exported so plugin crates can register themselves without depending on `inventory` directly.
pub use inventory;
/// Re-exported so plugin crates can use `#[rensou_api::typetag::serde]`.
pub use typetag;
