//! PNG grids of reconstructions and cross-modal generations.
//!
//! Layout: one column per shown test pair (one per number 1..9). For each source modality `m`
//! a block of rows: the input items of `m` (marked by a white strip on the left), then one row
//! per decoded modality `d` from `m`'s posterior location (green strip: `d = m`, the
//! reconstruction; blue strip: `d != m`, the cross-generation). Blocks are separated by a
//! wider gap. Only image modalities (`[H, W]`, `[H, W, 1]`, `[H, W, 3]`) are drawn.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use image::{Rgb, RgbImage};

use rensou_api::fsutil::write_bytes_atomically;
use rensou_api::Result;
use rensou_model::mmvae::Mmvae;
use rensou_model::nn::{tensor_values, Decoder, Encoder};
use rensou_plot::encode_png;

const GAP: u32 = 2;
const BLOCK_GAP: u32 = 8;
const STRIP: u32 = 4;
const SCALE: u32 = 2;
const BACKGROUND: [u8; 3] = [40, 40, 40];

/// `[H, W, C]` of an item shape that can be drawn as an image (C = 1 or 3), else `None`.
pub fn image_dims(shape: &[usize]) -> Option<[usize; 3]> {
    match shape {
        [h, w] => Some([*h, *w, 1]),
        [h, w, c] if *c == 1 || *c == 3 => Some([*h, *w, *c]),
        _ => None,
    }
}

/// One row of the grid: the items (bytes, HWC) and the strip colour marking the row's kind.
struct Row {
    strip: [u8; 3],
    dims: [usize; 3],
    items: Vec<Vec<u8>>,
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
    let dims: Vec<Option<[usize; 3]>> = specs.iter().map(|m| image_dims(&m.item_shape)).collect();
    for (m, d) in specs.iter().zip(&dims) {
        if d.is_none() {
            notes.push(format!(
                "`{}` items {:?} are not images; left out of the grid",
                m.name, m.item_shape
            ));
        }
    }
    let mut rows = Vec::new();
    for (m, dm) in dims.iter().enumerate() {
        let Some(dm) = dm else { continue };
        let features = specs[m].item_shape.iter().product::<usize>();
        let n = input_bytes[m].len() / features.max(1);
        rows.push(Row {
            strip: [255, 255, 255],
            dims: *dm,
            items: input_bytes[m]
                .chunks(features)
                .map(<[u8]>::to_vec)
                .collect(),
        });
        let z = model.encode(m, inputs[m].clone())?.loc; // [n, latent]
        for (d, dd) in dims.iter().enumerate() {
            let Some(dd) = dd else { continue };
            let out = model.decode(d, z.clone())?; // [n, features_d]
            let values: Vec<f32> = tensor_values(out, "decoded items")?;
            present(Decoded {
                source: m,
                target: d,
                values: &values,
            })?;
            let fd = specs[d].item_shape.iter().product::<usize>();
            let bytes: Vec<u8> = values
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect();
            rows.push(Row {
                strip: if d == m {
                    [60, 200, 60]
                } else {
                    [70, 110, 255]
                },
                dims: *dd,
                items: bytes.chunks(fd).take(n).map(<[u8]>::to_vec).collect(),
            });
        }
        // A marker row break between blocks: handled by `block_starts`.
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let image_modalities = dims.iter().filter(|d| d.is_some()).count();
    let rows_per_block = 1 + image_modalities;
    Ok(Some(draw(&rows, rows_per_block)?))
}

fn draw(rows: &[Row], rows_per_block: usize) -> Result<Vec<u8>> {
    let cell_h = rows.iter().map(|r| r.dims[0]).max().unwrap_or(1) as u32;
    let cell_w = rows.iter().map(|r| r.dims[1]).max().unwrap_or(1) as u32;
    let cols = rows.iter().map(|r| r.items.len()).max().unwrap_or(0).max(1) as u32;
    let blocks = rows.len().div_ceil(rows_per_block) as u32;
    let width = STRIP + GAP + cols * (cell_w + GAP);
    let height = rows.len() as u32 * (cell_h + GAP) + blocks.saturating_sub(1) * BLOCK_GAP + GAP;
    let mut img = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
    for (r, row) in rows.iter().enumerate() {
        let block = (r / rows_per_block) as u32;
        let y0 = GAP + r as u32 * (cell_h + GAP) + block * BLOCK_GAP;
        for y in 0..cell_h {
            for x in 0..STRIP {
                img.put_pixel(x, y0 + y, Rgb(row.strip));
            }
        }
        let [h, w, c] = row.dims;
        let (oy, ox) = ((cell_h - h as u32) / 2, (cell_w - w as u32) / 2);
        for (i, item) in row.items.iter().enumerate() {
            let x0 = STRIP + GAP + i as u32 * (cell_w + GAP);
            for y in 0..h {
                for x in 0..w {
                    let p = (y * w + x) * c;
                    let rgb = if c == 3 {
                        [item[p], item[p + 1], item[p + 2]]
                    } else {
                        [item[p]; 3]
                    };
                    img.put_pixel(x0 + ox + x as u32, y0 + oy + y as u32, Rgb(rgb));
                }
            }
        }
    }
    let img = image::imageops::resize(
        &img,
        width * SCALE,
        height * SCALE,
        image::imageops::FilterType::Nearest,
    );
    encode_png(img.as_raw(), img.width(), img.height())
}

/// Writes PNG bytes to `path` atomically.
pub fn write_png(path: &Path, png: &[u8]) -> Result<()> {
    write_bytes_atomically(path, png)
}
