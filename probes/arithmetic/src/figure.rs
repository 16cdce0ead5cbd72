//! `arithmetic.png`, like the paper's figure 3: drawn with rensou-plot's labelled image grid.

use rensou_plot::{image_grid_png, ImageTile};

use crate::error::Result;
use crate::probe::{target, Triple};

/// Target size in pixels of the longer side of one enlarged tile.
const TILE_SIDE: usize = 96;

pub use rensou_plot::is_image_shape;

/// One figure row: an equation, its decoded operands and decoded result samples.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureRow {
    /// The equation `a + b − c`.
    pub triple: Triple,
    /// Decoded class means of `a`, `b`, `c` (one item each, values in `[0, 1]`).
    pub operands: [Vec<f32>; 3],
    /// Decoded result samples, item after item.
    pub samples: Vec<f32>,
    /// The classifier's verdict on each sample.
    pub predictions: Vec<i64>,
}

/// The sanity row: every class mean decoded and classified.
#[derive(Clone, Debug, PartialEq)]
pub struct SanityRow {
    /// Class values, ascending.
    pub classes: Vec<i64>,
    /// Decoded class means, item after item.
    pub items: Vec<f32>,
    /// The classifier's verdict on each.
    pub predictions: Vec<i64>,
}

fn minus(x: i64) -> String {
    if x < 0 {
        format!("\u{2212}{}", x.unsigned_abs())
    } else {
        x.to_string()
    }
}

/// Renders the figure: per row z(a), z(b), z(c) decoded, then result samples captioned with
/// their predicted number (a cross marks a wrong one); last, the decoded class means.
pub fn render(shape: &[usize], rows: &[FigureRow], sanity: &SanityRow) -> Result<Vec<u8>> {
    let item_len: usize = shape.iter().product::<usize>().max(1);
    let samples = rows.iter().map(|r| r.predictions.len()).max().unwrap_or(0);
    let cols = (3 + samples).max(1);
    let mut tiles = Vec::new();
    let mut row_labels = Vec::new();
    for row in rows {
        let [a, b, c] = row.triple;
        let goal = target(row.triple);
        let names = [
            format!("z({a})"),
            format!("+ z({b})"),
            format!("\u{2212} z({c})"),
        ];
        for (item, name) in row.operands.iter().zip(names) {
            tiles.push(ImageTile::from_unit_f32(shape, item)?.with_caption(name));
        }
        for (k, item) in row.samples.chunks_exact(item_len).enumerate() {
            let p = row.predictions.get(k).copied();
            let caption = match p {
                Some(p) if Some(p) == goal => minus(p),
                Some(p) => format!("{} \u{2717}", minus(p)),
                None => String::new(),
            };
            tiles.push(ImageTile::from_unit_f32(shape, item)?.with_caption(caption));
        }
        tiles.extend((3 + row.predictions.len()..cols).map(|_| ImageTile::blank()));
        let right = goal.map_or_else(|| "?".to_owned(), minus);
        row_labels.push(format!("{a} + {b} \u{2212} {c} = {right}"));
    }
    let means: Vec<(&i64, (&[f32], &i64))> = sanity
        .classes
        .iter()
        .zip(sanity.items.chunks_exact(item_len).zip(&sanity.predictions))
        .collect();
    for (r, chunk) in means.chunks(cols).enumerate() {
        for (class, (item, p)) in chunk {
            let caption = if p == class {
                format!("{} \u{2192} {}", minus(**class), minus(**p))
            } else {
                format!("{} \u{2192} {} \u{2717}", minus(**class), minus(**p))
            };
            tiles.push(ImageTile::from_unit_f32(shape, item)?.with_caption(caption));
        }
        tiles.extend((chunk.len()..cols).map(|_| ImageTile::blank()));
        row_labels.push(if r == 0 {
            "class means".to_owned()
        } else {
            String::new()
        });
    }
    let side = shape.iter().take(2).copied().max().unwrap_or(1).max(1);
    let scale = (TILE_SIDE / side).clamp(1, 32) as u32;
    Ok(image_grid_png(
        "decoded z(a), z(b), z(c) and samples at z(a) + z(b) \u{2212} z(c), captioned with the \
         predicted number",
        &tiles,
        cols,
        &row_labels,
        &[] as &[&str],
        scale,
    )?)
}
