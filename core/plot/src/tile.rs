//! Items as pictures: the one rule for which item shapes are images ([`image_dims`]), and the
//! RGB tile ([`ImageTile`]) every image grid paints.

use rensou_api::{Error, Result};

/// The item shapes that are pictures, in words (for messages).
pub const IMAGE_SHAPES: &str = "[H, W] or [H, W, C] with C = 1 (grey), 3 (RGB) or 4 (RGBA)";

/// `(height, width, channels)` of items of `shape` when they are pictures, else `None`.
///
/// The one rule every image grid follows: `[H, W]` (grey, one channel), `[H, W, 1]` (grey),
/// `[H, W, 3]` (RGB) or `[H, W, 4]` (RGBA, drawn without its alpha), row-major (HWC), with
/// `H` and `W` at least 1.
pub fn image_dims(shape: &[usize]) -> Option<(usize, usize, usize)> {
    let (h, w, c) = match *shape {
        [h, w] => (h, w, 1),
        [h, w, c] if matches!(c, 1 | 3 | 4) => (h, w, c),
        _ => return None,
    };
    (h > 0 && w > 0).then_some((h, w, c))
}

/// Whether items of `shape` are pictures ([`image_dims`]).
pub fn is_image_shape(shape: &[usize]) -> bool {
    image_dims(shape).is_some()
}

/// [`image_dims`] of an item of `len` values, or an error naming what is wrong.
fn checked_dims(shape: &[usize], len: usize) -> Result<(usize, usize, usize)> {
    let Some((h, w, c)) = image_dims(shape) else {
        return Err(Error::Data(format!(
            "image tile: shape {shape:?} is not a picture ({IMAGE_SHAPES})"
        )));
    };
    if h * w * c != len {
        return Err(Error::Data(format!(
            "image tile: shape {shape:?} needs {} values, got {len}",
            h * w * c
        )));
    }
    Ok((h, w, c))
}

/// One picture of an image grid: RGB pixels, `height x width`, and an optional caption written
/// under it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageTile {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `height * width * 3` bytes, row-major RGB.
    pub rgb: Vec<u8>,
    /// Text under the tile (e.g. a predicted class).
    pub caption: Option<String>,
}

impl ImageTile {
    /// An empty cell (nothing drawn there).
    pub fn blank() -> Self {
        ImageTile::default()
    }

    /// A tile from stored item bytes of a picture shape ([`image_dims`]); grey is repeated into
    /// the three channels, alpha is dropped.
    pub fn from_u8(shape: &[usize], data: &[u8]) -> Result<Self> {
        let (h, w, c) = checked_dims(shape, data.len())?;
        let rgb = match c {
            1 => data.iter().flat_map(|&v| [v, v, v]).collect(),
            3 => data.to_vec(),
            _ => data
                .chunks_exact(c)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
        };
        Ok(ImageTile {
            height: h,
            width: w,
            rgb,
            caption: None,
        })
    }

    /// A tile from values in `[0, 1]` (decoder outputs) with the shapes of
    /// [`ImageTile::from_u8`]; values are clamped and rounded to bytes, non-finite ones are 0.
    pub fn from_unit_f32(shape: &[usize], data: &[f32]) -> Result<Self> {
        let bytes: Vec<u8> = data
            .iter()
            .map(|&v| {
                if v.is_finite() {
                    (v.clamp(0.0, 1.0) * 255.0).round() as u8
                } else {
                    0
                }
            })
            .collect();
        ImageTile::from_u8(shape, &bytes)
    }

    /// `tiles` side by side in one tile, `gap` pixels apart, aligned at the top; what they do not
    /// cover is `fill`. Captions are dropped.
    pub fn beside(tiles: &[ImageTile], gap: usize, fill: [u8; 3]) -> ImageTile {
        let width =
            tiles.iter().map(|t| t.width).sum::<usize>() + gap * tiles.len().saturating_sub(1);
        let height = tiles.iter().map(|t| t.height).max().unwrap_or(0);
        let mut rgb: Vec<u8> = fill
            .iter()
            .copied()
            .cycle()
            .take(width * height * 3)
            .collect();
        let mut x0 = 0;
        for t in tiles {
            if t.is_blank() {
                x0 += t.width + gap;
                continue;
            }
            for (y, row) in t.rgb.chunks_exact(t.width * 3).enumerate().take(t.height) {
                let at = (y * width + x0) * 3;
                rgb[at..at + row.len()].copy_from_slice(row);
            }
            x0 += t.width + gap;
        }
        ImageTile {
            height,
            width,
            rgb,
            caption: None,
        }
    }

    /// The same tile with a caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    /// Whether the tile is empty (its cell is left blank).
    pub fn is_blank(&self) -> bool {
        self.height == 0 || self.width == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_rule() {
        assert_eq!(image_dims(&[28, 28]), Some((28, 28, 1)));
        assert_eq!(image_dims(&[28, 28, 1]), Some((28, 28, 1)));
        assert_eq!(image_dims(&[32, 32, 3]), Some((32, 32, 3)));
        assert_eq!(image_dims(&[4, 5, 4]), Some((4, 5, 4)));
        for not in [
            &[28, 28, 2][..],
            &[0, 5],
            &[5, 0, 3],
            &[784],
            &[2, 2, 2, 3],
            &[],
        ] {
            assert_eq!(image_dims(not), None, "{not:?}");
            assert!(!is_image_shape(not));
        }
    }

    #[test]
    fn tiles_convert_grey_rgb_and_rgba() {
        let grey = ImageTile::from_u8(&[1, 2], &[7, 9]).unwrap();
        assert_eq!(grey.rgb, [7, 7, 7, 9, 9, 9]);
        let rgba = ImageTile::from_u8(&[1, 1, 4], &[1, 2, 3, 4]).unwrap();
        assert_eq!(rgba.rgb, [1, 2, 3]);
        let unit = ImageTile::from_unit_f32(&[1, 3], &[0.5, f32::NAN, 2.0]).unwrap();
        assert_eq!(unit.rgb, [128, 128, 128, 0, 0, 0, 255, 255, 255]);
        assert!(ImageTile::from_u8(&[2, 2], &[0; 3]).is_err());
        assert!(ImageTile::from_u8(&[2, 2, 2], &[0; 8]).is_err());
        assert!(ImageTile::blank().is_blank());
    }

    #[test]
    fn tiles_beside_each_other_are_top_aligned() {
        let a = ImageTile::from_u8(&[2, 1], &[10, 20]).unwrap();
        let b = ImageTile::from_u8(&[1, 2], &[30, 40]).unwrap();
        let t = ImageTile::beside(&[a, b], 1, [0, 0, 1]);
        assert_eq!((t.height, t.width), (2, 4));
        let px: Vec<[u8; 3]> = t.rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        #[rustfmt::skip]
        assert_eq!(px, [
            [10; 3], [0, 0, 1], [30; 3], [40; 3],
            [20; 3], [0, 0, 1], [0, 0, 1], [0, 0, 1],
        ]);
    }
}
