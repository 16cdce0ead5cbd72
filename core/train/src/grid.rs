//! PNG grids of reconstructions and cross-modal generations.
//!
//! Layout: one column per shown test pair (one per number 1..9). For each source modality `m`
//! a block of rows: the input items of `m` (marked by a white strip on the left), then one row
//! per decoded modality `d` from `m`'s posterior location (green strip: `d = m`, the
//! reconstruction; blue strip: `d != m`, the cross-generation). Blocks are separated by a
//! wider gap. Only modalities whose items are pictures ([`rensou_plot::image_dims`]) are drawn,
//! by the one image-grid painter ([`ImageGrid`]).

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use rensou_api::fsutil::write_bytes_atomically;
use rensou_api::Result;
use rensou_model::mmvae::Mmvae;
use rensou_model::nn::{tensor_values, Decoder, Encoder};
use rensou_plot::{is_image_shape, Align, GridRow, GridStyle, ImageGrid, ImageTile, IMAGE_SHAPES};

/// Marker of a row of input items.
const INPUT: [u8; 3] = [255, 255, 255];
/// Marker of a row of reconstructions (`d = m`).
const RECONSTRUCTION: [u8; 3] = [60, 200, 60];
/// Marker of a row of cross-generations (`d != m`).
const CROSS: [u8; 3] = [70, 110, 255];

/// The training grids' look: dark, items at their size 2 pixels apart, each row marked by a
/// strip, blocks 8 pixels apart, the whole picture doubled.
fn style() -> GridStyle {
    GridStyle {
        background: [40, 40, 40],
        zoom: 2,
        gap: 2,
        group_gap: 8,
        marker_width: 4,
        align: Align::Centre,
        margin_top: 2,
        ..GridStyle::default()
    }
}

/// Decoded items handed to [`render_grid`]'s `present` callback: modality `source` encoded,
/// modality `target` decoded from the posterior location.
pub struct Decoded<'a> {
    /// Index of the encoded modality.
    pub source: usize,
    /// Index of the decoded modality.
    pub target: usize,
    /// `n` items of the target's shape, row-major, one after the other (values in `[0, 1]`).
    pub values: &'a [f32],
}

/// Encodes `inputs[m]` (the shown pairs of every modality, bytes) with every image modality and
/// decodes every image modality from the posterior location; returns the PNG bytes, or `None`
/// when no modality is an image. `notes` receives a line per skipped modality; `present` sees
/// every decoded block (reconstructions and cross-generations), e.g. to write them as sound.
///
/// # Shapes
/// - `inputs`: one `[n, features_m]` tensor per modality (values in `[0, 1]`)
pub fn render_grid<B, E, D>(
    model: &Mmvae<B, E, D>,
    inputs: &[Tensor<B, 2>],
    input_bytes: &[Vec<u8>],
    notes: &mut Vec<String>,
    present: &mut dyn FnMut(Decoded<'_>) -> Result<()>,
) -> Result<Option<Vec<u8>>>
where
    B: Backend,
    E: Encoder<B>,
    D: Decoder<B>,
{
    let specs = &model.config().modalities;
    let images: Vec<usize> = (0..specs.len())
        .filter(|&m| is_image_shape(&specs[m].item_shape))
        .collect();
    for m in specs.iter().filter(|m| !is_image_shape(&m.item_shape)) {
        notes.push(format!(
            "`{}` items {:?} are not pictures ({IMAGE_SHAPES}); left out of the grid",
            m.name, m.item_shape
        ));
    }
    let mut rows = Vec::new();
    for &m in &images {
        let shape = &specs[m].item_shape;
        let features = shape.iter().product::<usize>();
        let n = input_bytes[m].len() / features.max(1);
        let tiles = input_bytes[m]
            .chunks_exact(features)
            .map(|item| ImageTile::from_u8(shape, item))
            .collect::<Result<_>>()?;
        rows.push(GridRow::new(tiles).with_marker(INPUT).starting_group());
        let z = model.encode(m, inputs[m].clone())?.loc; // [n, latent]
        for &d in &images {
            let out = model.decode(d, z.clone())?; // [n, features_d]
            let values: Vec<f32> = tensor_values(out, "decoded items")?;
            present(Decoded {
                source: m,
                target: d,
                values: &values,
            })?;
            let shape = &specs[d].item_shape;
            let fd = shape.iter().product::<usize>();
            let tiles = values
                .chunks_exact(fd)
                .take(n)
                .map(|item| ImageTile::from_unit_f32(shape, item))
                .collect::<Result<_>>()?;
            let marker = if d == m { RECONSTRUCTION } else { CROSS };
            rows.push(GridRow::new(tiles).with_marker(marker));
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(ImageGrid::new(rows, style()).png()?))
}

/// Writes PNG bytes to `path` atomically.
pub fn write_png(path: &Path, png: &[u8]) -> Result<()> {
    write_bytes_atomically(path, png)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Item bytes that differ from pixel to pixel.
    fn pattern(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(salt))
            .collect()
    }

    /// A row of `n` items of `shape` in the training grids' look.
    fn row(shape: &[usize], n: usize, salt: u8, marker: [u8; 3]) -> GridRow {
        let len: usize = shape.iter().product();
        let tiles = (0..n)
            .map(|i| ImageTile::from_u8(shape, &pattern(len, salt.wrapping_add(i as u8 * 11))))
            .collect::<Result<_>>()
            .unwrap();
        GridRow::new(tiles).with_marker(marker)
    }

    /// The grids are the same PNG bytes as those the painter before the one grid painter drew
    /// (`tests/golden/*.png`, written by that code from these items): two blocks of an RGB and a
    /// smaller grey modality, and one block of one modality.
    #[test]
    fn grids_match_the_earlier_painter_byte_for_byte() {
        let (a, b) = ([6, 5, 3], [4, 4, 1]);
        let two = vec![
            row(&a, 3, 1, INPUT).starting_group(),
            row(&a, 3, 2, RECONSTRUCTION),
            row(&b, 3, 3, CROSS),
            row(&b, 3, 4, INPUT).starting_group(),
            row(&a, 3, 5, CROSS),
            row(&b, 3, 6, RECONSTRUCTION),
        ];
        let c = [3, 3, 1];
        let one = vec![
            row(&c, 2, 7, INPUT).starting_group(),
            row(&c, 2, 8, RECONSTRUCTION),
        ];
        for (rows, golden) in [
            (two, &include_bytes!("../tests/golden/two-blocks.png")[..]),
            (one, &include_bytes!("../tests/golden/one-block.png")[..]),
        ] {
            let png = ImageGrid::new(rows, style()).png().unwrap();
            assert!(png == golden, "the grid's pixels changed");
        }
    }
}
