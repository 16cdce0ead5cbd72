//! The net extension point: encoder and decoder architectures as plugins.
//!
//! A net plugin is a crate that provides a [`NetDesign`] (typetag: `net = { type = "my-net" }`
//! in a run's config) and a [`NetPlugin`] record submitted with inventory, like modalities and
//! probes. A design describes its networks as a sequence of [`Layer`]s for the item shape and
//! latent size it is given; rensou builds them on any burn backend, adds the location and scale
//! heads to the encoder and the clamped sigmoid to the decoder, trains, checkpoints and resumes
//! them, and every probe sees them through `ModelView` — so a plugin crate needs no burn.
//!
//! Per-item shapes: the encoder's layers start from the item as stored (`[H, W, C]` images,
//! `[C, L]` spectrograms, `[F]` vectors) and may end in any shape (it is flattened before the
//! heads); the decoder's start from the latent `[latent_dim]` and must end in as many values as
//! an item has, in the item's stored order (a `Permute` puts convolution channels last again).

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

use crate::Result;

/// One layer of a plugin net. Shapes are per item (the batch axis is implicit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Layer {
    /// Affine map over the last axis to `out` features.
    Linear {
        /// Output features.
        out: usize,
    },
    /// 1-D convolution over `[C, L]` to `[out, L']`.
    Conv1d {
        /// Output channels.
        out: usize,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on both sides.
        padding: usize,
    },
    /// 2-D convolution over `[C, H, W]` to `[out, H', W']`.
    Conv2d {
        /// Output channels.
        out: usize,
        /// Kernel size (square).
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on every side.
        padding: usize,
    },
    /// 1-D transposed convolution over `[C, L]` to `[out, L']`.
    ConvTranspose1d {
        /// Output channels.
        out: usize,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding.
        padding: usize,
    },
    /// 2-D transposed convolution over `[C, H, W]` to `[out, H', W']`.
    ConvTranspose2d {
        /// Output channels.
        out: usize,
        /// Kernel size (square).
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding.
        padding: usize,
    },
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `x * sigmoid(1.702 x)`-like GELU (burn's).
    Gelu,
    /// Reinterprets the item as `shape` (same number of values, row-major).
    Reshape {
        /// The new per-item shape (1 to 3 axes).
        shape: Vec<usize>,
    },
    /// Reorders the item's axes (`[2, 0, 1]` turns `[H, W, C]` into `[C, H, W]`).
    Permute {
        /// The new order of the per-item axes (2 or 3 axes).
        axes: Vec<usize>,
    },
    /// Flattens the item to one axis.
    Flatten,
}

/// A net plugin's configuration; typetag makes `type = "<name>"` select the implementation.
#[typetag::serde(tag = "type")]
pub trait NetDesign: Debug + Send + Sync {
    /// Checks every field once; errors name the field and the allowed range.
    fn validate(&self) -> Result<()>;
    /// The encoder's layers for items of `item_shape`; rensou flattens their output and adds
    /// two linear heads (location, and scale through the MMVAE's softmax activation).
    fn encoder(&self, item_shape: &[usize], latent_dim: usize) -> Result<Vec<Layer>>;
    /// The decoder's layers from a latent `[latent_dim]` to an item's values (as many as the
    /// item has, in its stored order); rensou adds the clamped sigmoid.
    fn decoder(&self, item_shape: &[usize], latent_dim: usize) -> Result<Vec<Layer>>;
    /// Added to the encoder scale; also the decoder's output clamp `[eps, 1 - eps]`.
    fn eps(&self) -> f64 {
        1e-6
    }
    /// A copy of this config (trait objects cannot derive `Clone`).
    fn clone_box(&self) -> Box<dyn NetDesign>;
}

impl Clone for Box<dyn NetDesign> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The registration record of a net plugin.
pub struct NetPlugin {
    /// Plugin name; equals the typetag name of its config.
    pub name: &'static str,
    /// One line for `rensou list`.
    pub description: &'static str,
    /// The default configuration.
    pub default_config: fn() -> Box<dyn NetDesign>,
}

inventory::collect!(NetPlugin);

/// The typetag name (`type = ...`) of a net design.
pub fn net_type_name(design: &dyn NetDesign) -> Result<String> {
    crate::registry::typetag_name(design, "a net design")
}
