//! rensou-plot: the figures every probe and the training loop share. Depends on `rensou-api`,
//! plotters and image only, so a probe crate that draws does not link burn or HDF5.
//!
//! Every figure is drawn with [`plotters`] into an in-memory RGB buffer and returned as PNG bytes
//! (encoded with the `image` crate), ready for [`rensou_api::probe::ProbeContext::write_file`]. Text
//! uses the embedded DejaVu Sans ([`FONT_FAMILY`]), registered with plotters once per process, so
//! figures look the same on every machine and need no system fonts.
//!
//! One module per figure kind:
//!
//! - `scatter`: [`scatter_png`], points coloured by class, with a legend (t-SNE, PCA).
//! - `curves`: [`lines_png`], named series of `(x, y)` points (training curves, accuracy
//!   against a parameter).
//! - `bands`: [`bands_png`], mean lines with shaded interval bands and an optional reference
//!   line (accuracy over seeds against a parameter, chance level), and [`bands_grid_png`], a grid
//!   of such panels with one colour per series name.
//! - `heatmap`: [`heatmap_png`], a matrix with row and column labels and a colour bar
//!   (confusion matrices, distance matrices, effect sizes).
//! - `forest`: [`forest_png`], a forest plot: one labelled effect size with its interval per row
//!   against a reference line at zero, coloured by verdict ([`ForestStyle`]), with a note per row.
//! - `tile` and `grid`: the one rule for which item shapes are pictures ([`image_dims`]) and the
//!   one image-grid painter ([`ImageGrid`]) that the training grids, `rensou data preview` and
//!   the labelled figures of [`image_grid_png`] (reconstructions, arithmetic results,
//!   generations) all use.
//! - `draw`: what they share (font, canvas, PNG encoding, [`palette`], [`viridis`]).
//!
//! Sizes are `(width, height)` in pixels; [`DEFAULT_SIZE`] suits most figures.

#![warn(missing_docs)]

mod bands;
mod curves;
mod draw;
mod forest;
mod grid;
mod heatmap;
mod scatter;
mod tile;

pub use bands::{bands_grid_png, bands_png, Band, BandPanel, BandPoint};
pub use curves::{lines_png, lines_png_sized};
pub use draw::{encode_png, palette, viridis};
pub use forest::{forest_png, ForestRow, ForestStyle, FOREST_CHROME_HEIGHT, FOREST_ROW_HEIGHT};
pub use grid::{image_grid_png, Align, GridRow, GridStyle, ImageGrid};
pub use heatmap::{heatmap_png, heatmap_png_sized};
pub use scatter::scatter_png;
pub use tile::{image_dims, is_image_shape, ImageTile, IMAGE_SHAPES};

/// Font family name under which the embedded DejaVu Sans is registered (it is also registered as
/// `sans-serif`, plotters' default family).
pub const FONT_FAMILY: &str = "DejaVu Sans";

/// A good default figure size, `(width, height)` in pixels.
pub const DEFAULT_SIZE: (u32, u32) = (900, 700);

/// Largest accepted figure side in pixels (a guard against absurd sizes).
pub const MAX_SIDE: u32 = 16_384;
