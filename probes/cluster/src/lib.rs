#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod compare;
pub mod error;
mod figures;
pub mod kmeans;
pub mod linear;
pub mod magnitude;
pub mod matrix;
mod parallel;
pub mod probe;
pub mod silhouette;

pub use compare::{adjusted_rand_index, normalized_mutual_info, Contingency};
pub use error::{ClusterError, Result};
pub use kmeans::{KMeans, KMeansFit};
pub use linear::{LinearProbe, LinearProbeScore, Softmax, SoftmaxModel};
pub use magnitude::{magnitude, pearson, spearman, Magnitude};
pub use matrix::Matrix;
pub use probe::ClusterProbe;
pub use silhouette::{silhouette_samples, silhouette_score, Silhouette, SilhouetteScores};
