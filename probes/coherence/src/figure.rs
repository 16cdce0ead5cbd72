//! The cross-generation figure, drawn with rensou-plot's labelled image grid.

use rensou_plot::{image_grid_png, ImageTile};

use crate::error::Result;

/// Target size in pixels of the longer side of one enlarged tile.
const TILE_SIDE: usize = 96;

pub use rensou_plot::is_image_shape;

/// A grid of tiles: one row per test pair, columns labelled.
#[derive(Clone, Debug, Default)]
pub struct Grid {
    /// Column labels (`oscn`, `oscn -> cmnist`, ...).
    pub columns: Vec<String>,
    /// Row labels (`number 3`).
    pub row_labels: Vec<String>,
    /// Tiles, `cells[row][column]`.
    pub cells: Vec<Vec<ImageTile>>,
}

/// Renders `grid` as a PNG.
pub fn render(grid: &Grid) -> Result<Vec<u8>> {
    let side = grid
        .cells
        .iter()
        .flatten()
        .map(|t| t.height.max(t.width))
        .max()
        .unwrap_or(1)
        .max(1);
    let scale = (TILE_SIDE / side).clamp(1, 32) as u32;
    let cols = grid.columns.len();
    let mut tiles = Vec::with_capacity(grid.cells.len() * cols);
    for row in &grid.cells {
        tiles.extend(row.iter().cloned());
        tiles.extend((row.len()..cols).map(|_| ImageTile::blank()));
    }
    Ok(image_grid_png(
        "cross-generation from posterior locations (test pairs)",
        &tiles,
        cols,
        &grid.row_labels,
        &grid.columns,
        scale,
    )?)
}
