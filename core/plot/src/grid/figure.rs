//! The labelled figure the probes draw: [`image_grid_png`] in [`GridStyle::figure`].

use rensou_api::{Error, Result};

use super::{GridRow, GridStyle, ImageGrid};
use crate::draw::check_size;
use crate::tile::ImageTile;

impl GridStyle {
    /// The labelled figure of [`image_grid_png`]: white, each tile enlarged `scale` times and
    /// framed in grey, 6 pixels apart, at least 32 pixels a side.
    pub fn figure(scale: u32) -> Self {
        GridStyle {
            scale,
            gap: 6,
            frame: Some([150, 150, 150]),
            margin_left: 6,
            margin_top: 8,
            margin_bottom: 6,
            min_cell_width: 4,
            min_side: 32,
            ..GridStyle::default()
        }
    }
}

/// Tiles `tiles` (row-major, `cols` per row; the last row may be short) into one labelled PNG
/// in [`GridStyle::figure`].
///
/// Each tile is enlarged `scale` times (nearest neighbour, `1..=32`) and framed in grey; blank
/// tiles ([`ImageTile::blank`]) leave their cell empty. `row_labels` (empty, or one per row) are
/// written left of the rows, `col_labels` (empty, or one per column) above the columns, and tile
/// captions under the tiles. The figure is sized to fit.
pub fn image_grid_png<S: AsRef<str>, T: AsRef<str>>(
    title: &str,
    tiles: &[ImageTile],
    cols: usize,
    row_labels: &[S],
    col_labels: &[T],
    scale: u32,
) -> Result<Vec<u8>> {
    if cols == 0 || tiles.is_empty() {
        return Err(Error::Data(
            "image grid: needs at least one tile and one column".into(),
        ));
    }
    if !(1..=32).contains(&scale) {
        return Err(Error::Data(format!(
            "image grid: scale {scale} is outside 1..=32"
        )));
    }
    let rows = tiles.len().div_ceil(cols);
    if !row_labels.is_empty() && row_labels.len() != rows {
        return Err(Error::Data(format!(
            "image grid: {rows} rows but {} row labels",
            row_labels.len()
        )));
    }
    let rows = tiles
        .chunks(cols)
        .enumerate()
        .map(|(r, chunk)| {
            let row = GridRow::new(chunk.to_vec());
            match row_labels.get(r) {
                Some(label) => row.with_label(label.as_ref()),
                None => row,
            }
        })
        .collect();
    let grid = ImageGrid {
        title: title.to_owned(),
        col_labels: col_labels.iter().map(|l| l.as_ref().to_owned()).collect(),
        rows,
        columns: Some(cols),
        style: GridStyle::figure(scale),
    };
    check_size(grid.size()?)?;
    grid.png()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::tests::{decode, dump};

    #[test]
    fn image_grid_places_pixels_and_labels() {
        let red: Vec<u8> = (0..8 * 8).flat_map(|_| [255u8, 0, 0]).collect();
        let grey: Vec<f32> = vec![0.5; 8 * 8];
        let tiles = vec![
            ImageTile::from_u8(&[8, 8, 3], &red)
                .unwrap()
                .with_caption("3"),
            ImageTile::from_unit_f32(&[8, 8], &grey).unwrap(),
            ImageTile::blank(),
            ImageTile::from_u8(&[8, 8, 1], &[0u8; 64]).unwrap(),
        ];
        let png = image_grid_png("grid", &tiles, 2, &["a", "b"], &["x", "y"], 4).unwrap();
        dump("grid.png", &png);
        let img = decode(&png);
        let (w, h) = img.dimensions();
        assert!(w >= 2 * 32 && h >= 2 * 32, "{w}x{h}");
        let reds = img.pixels().filter(|p| p.0 == [255, 0, 0]).count();
        assert_eq!(reds, 32 * 32, "the red tile enlarged 4x");
        let greys = img.pixels().filter(|p| p.0 == [128, 128, 128]).count();
        assert!(greys >= 32 * 32, "{greys} grey pixels");
        let blacks = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(blacks >= 32 * 32);

        assert!(ImageTile::from_u8(&[8, 8, 3], &red[..10]).is_err());
        assert!(ImageTile::from_u8(&[8, 8, 2], &[0; 128]).is_err());
        assert!(image_grid_png::<&str, &str>("x", &tiles, 2, &["only one"], &[], 1).is_err());
        assert!(image_grid_png::<&str, &str>("x", &tiles, 0, &[], &[], 1).is_err());
        assert!(image_grid_png::<&str, &str>("x", &tiles, 2, &[], &[], 0).is_err());
        assert!(image_grid_png::<&str, &str>("x", &tiles, 2, &[], &["one"], 1).is_err());
        let png = image_grid_png::<&str, &str>("", &tiles[..1], 1, &[], &[], 1).unwrap();
        assert!(decode(&png).dimensions().0 >= 32);
    }

    /// Item bytes that differ from pixel to pixel.
    fn pattern(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(salt))
            .collect()
    }

    /// The figures are the same PNG bytes as those the painter before the one grid painter drew
    /// (`tests/golden/*.png`, written by that code from these inputs).
    #[test]
    fn figures_match_the_earlier_painter_byte_for_byte() {
        let red: Vec<u8> = (0..8 * 8).flat_map(|_| [255u8, 0, 0]).collect();
        let tiles = vec![
            ImageTile::from_u8(&[8, 8, 3], &red)
                .unwrap()
                .with_caption("3"),
            ImageTile::from_unit_f32(&[8, 8], &[0.5; 64]).unwrap(),
            ImageTile::blank(),
            ImageTile::from_u8(&[8, 8, 1], &[0u8; 64]).unwrap(),
        ];
        let labelled = image_grid_png("grid", &tiles, 2, &["a", "b"], &["x", "y"], 4).unwrap();
        let tiles = vec![
            ImageTile::from_u8(&[5, 7, 3], &pattern(105, 1))
                .unwrap()
                .with_caption("five"),
            ImageTile::from_u8(&[8, 8], &pattern(64, 2)).unwrap(),
            ImageTile::from_u8(&[3, 4, 4], &pattern(48, 3))
                .unwrap()
                .with_caption("rgba tile"),
            ImageTile::from_u8(&[6, 3, 1], &pattern(18, 4)).unwrap(),
        ];
        let mixed = image_grid_png::<&str, &str>("", &tiles, 3, &[], &[], 3).unwrap();
        let tiles = [ImageTile::from_u8(&[2, 2], &pattern(4, 5)).unwrap()];
        let title = "a title much wider than the tile";
        let titled = image_grid_png::<&str, &str>(title, &tiles, 1, &["row"], &[], 1).unwrap();
        for (name, png, golden) in [
            (
                "labelled",
                labelled,
                &include_bytes!("../../tests/golden/labelled.png")[..],
            ),
            (
                "mixed",
                mixed,
                &include_bytes!("../../tests/golden/mixed.png")[..],
            ),
            (
                "title",
                titled,
                &include_bytes!("../../tests/golden/title.png")[..],
            ),
        ] {
            dump(&format!("golden-{name}.png"), &png);
            assert!(png == golden, "{name}: the figure's pixels changed");
        }
    }
}
