#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod modality;
pub mod render;
pub mod shape;

pub use config::{Layout, OscnConfig};
pub use error::OscnError;
pub use modality::Oscn;
pub use render::{draw_object, render, Drawing, Renderer, CELLS, NO_CELLS};
pub use shape::{Shape, SHAPE};

/// The modality's name: its typetag `type`, its plugin name and its HDF5 group name.
pub const NAME: &str = "oscn";
