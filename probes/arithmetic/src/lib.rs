#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod figure;
pub mod probe;

pub use config::{ArithmeticConfig, PAPER_EQUATIONS};
pub use error::ArithmeticError;
pub use probe::{equation_name, target, ClassMeans, TripleResult, FIGURE_FILE};

/// The probe's name: its typetag `type`, its plugin name and its output directory.
pub const NAME: &str = "arithmetic";
