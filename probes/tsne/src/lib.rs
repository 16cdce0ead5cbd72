#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod affinity;
pub mod bh;
pub mod error;
pub mod knn;
pub mod metrics;
mod parallel;
pub mod pca;
pub mod points;
pub mod probe;
pub mod tsne;

pub use error::{Result, TsneError};
pub use knn::{exact_knn, Neighbours};
pub use metrics::{knn_accuracy, trustworthiness};
pub use points::Points;
pub use probe::TsneProbe;
pub use tsne::{Embedding, Init, Tsne};
