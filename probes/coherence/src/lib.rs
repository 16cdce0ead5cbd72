#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod figure;
pub mod probe;

pub use config::CoherenceConfig;
pub use error::CoherenceError;
pub use probe::FIGURE_FILE;

/// The probe's name: its typetag `type`, its plugin name and its output directory.
pub const NAME: &str = "coherence";
