//! The image-grid painter: pictures ([`ImageTile`]) in rows of cells on one canvas. The
//! training grids, the probes' figures ([`image_grid_png`]) and `rensou data preview` all paint
//! with it; they differ only in their [`GridStyle`] and in the text around the tiles. Which item
//! shapes are pictures is decided once, by [`crate::image_dims`].
//!
//! The layout, in pixels of the canvas before [`GridStyle::zoom`]:
//!
//! - Every tile is enlarged [`GridStyle::scale`] times; the *tile box* is the largest tile's
//!   size. A cell is as wide as the tile box, [`GridStyle::min_cell_width`], its column label and
//!   every caption (text plus 4 pixels), and as high as the tile box plus an 18-pixel caption
//!   band when any tile has a caption. A tile is centred horizontally in its cell and sits at the
//!   top of the tile box or in its middle ([`Align`]), framed when [`GridStyle::frame`] is set.
//! - Every cell and every row is followed by [`GridStyle::gap`]; a row that starts a group
//!   ([`GridRow::starts_group`]) has [`GridStyle::group_gap`] more above it (not the first row).
//! - Left of the cells: [`GridStyle::margin_left`], then the row labels (right-aligned, 10
//!   pixels before what follows) when any row has one, then the row markers (colour strips
//!   [`GridStyle::marker_width`] wide beside the tile box, and a gap) when any row has one.
//!   Above the cells: [`GridStyle::margin_top`], or instead a 36-pixel title band when there is
//!   a title; then a 22-pixel band of column labels when there are any. Below the last row's
//!   gap: [`GridStyle::margin_bottom`].
//! - A title wider than that widens the canvas to the title and a gap either side; each side is
//!   at least [`GridStyle::min_side`]. Then the whole canvas is enlarged [`GridStyle::zoom`]
//!   times (nearest neighbour), text and gaps included.

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use rensou_api::{Error, Result};

use crate::draw::{draw_err, encode_png, font};
use crate::tile::ImageTile;

mod figure;
mod layout;

pub use figure::image_grid_png;
use layout::Layout;

const TITLE_SIZE: f64 = 18.0;
const LABEL_SIZE: f64 = 14.0;
const CAPTION_SIZE: f64 = 12.0;
const TITLE_BAND: u64 = 36;
const COL_LABEL_BAND: u64 = 22;
const CAPTION_BAND: u64 = 18;
const CAPTION_OFFSET: u64 = 3;
const LABEL_PAD: u64 = 10;
const TEXT_PAD: u64 = 4;

/// Where a tile sits vertically in the tile box (horizontally it is always centred).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Align {
    /// At the top.
    #[default]
    Top,
    /// In the middle (an odd spare pixel below).
    Centre,
}

/// How an image grid looks: colours, spacing and enlargement. Lengths are pixels of the canvas
/// before [`GridStyle::zoom`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridStyle {
    /// Canvas colour.
    pub background: [u8; 3],
    /// Each item pixel becomes `scale x scale` pixels (at least 1).
    pub scale: u32,
    /// The finished canvas is enlarged `zoom` times, nearest neighbour (at least 1).
    pub zoom: u32,
    /// Space after every cell and every row.
    pub gap: u32,
    /// Extra space above a row that starts a group.
    pub group_gap: u32,
    /// Width of the row markers.
    pub marker_width: u32,
    /// Colour of a one-pixel frame around every tile, if any.
    pub frame: Option<[u8; 3]>,
    /// Vertical placement of a tile smaller than the tile box.
    pub align: Align,
    /// Space left of everything.
    pub margin_left: u32,
    /// Space above everything when there is no title.
    pub margin_top: u32,
    /// Space below the last row's gap.
    pub margin_bottom: u32,
    /// The narrowest cell.
    pub min_cell_width: u32,
    /// The shortest side of the canvas before zoom (at least 1).
    pub min_side: u32,
}

impl Default for GridStyle {
    /// White, tiles at their size, touching, no margins.
    fn default() -> Self {
        GridStyle {
            background: [255, 255, 255],
            scale: 1,
            zoom: 1,
            gap: 0,
            group_gap: 0,
            marker_width: 0,
            frame: None,
            align: Align::Top,
            margin_left: 0,
            margin_top: 0,
            margin_bottom: 0,
            min_cell_width: 0,
            min_side: 1,
        }
    }
}

/// One row of an image grid: tiles from the left, with an optional label and marker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GridRow {
    /// The tiles, one per cell ([`ImageTile::blank`] leaves a cell empty).
    pub tiles: Vec<ImageTile>,
    /// Text left of the row.
    pub label: Option<String>,
    /// Colour of the strip left of the row.
    pub marker: Option<[u8; 3]>,
    /// Whether the row starts a group ([`GridStyle::group_gap`] above it).
    pub starts_group: bool,
}

impl GridRow {
    /// A row of `tiles`, unlabelled and unmarked.
    pub fn new(tiles: Vec<ImageTile>) -> Self {
        GridRow {
            tiles,
            ..GridRow::default()
        }
    }

    /// The same row with a label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The same row with a marker strip of `colour`.
    pub fn with_marker(mut self, colour: [u8; 3]) -> Self {
        self.marker = Some(colour);
        self
    }

    /// The same row, starting a group.
    pub fn starting_group(mut self) -> Self {
        self.starts_group = true;
        self
    }
}

/// Pictures in rows of cells, with an optional title and column labels, painted in a
/// [`GridStyle`] (see the [module](self) for the layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageGrid {
    /// Text centred above everything (empty: none).
    pub title: String,
    /// Text above the columns: none, or one per column.
    pub col_labels: Vec<String>,
    /// The rows, top to bottom.
    pub rows: Vec<GridRow>,
    /// The number of columns (`None`: the longest row's, at least 1).
    pub columns: Option<usize>,
    /// How it looks.
    pub style: GridStyle,
}

impl ImageGrid {
    /// A grid of `rows` in `style`, without title or column labels, as many columns as the
    /// longest row.
    pub fn new(rows: Vec<GridRow>, style: GridStyle) -> Self {
        ImageGrid {
            title: String::new(),
            col_labels: Vec::new(),
            rows,
            columns: None,
            style,
        }
    }

    fn tiles(&self) -> impl Iterator<Item = &ImageTile> {
        self.rows.iter().flat_map(|r| r.tiles.iter())
    }

    fn has_text(&self) -> bool {
        !self.title.is_empty()
            || !self.col_labels.is_empty()
            || self.rows.iter().any(|r| r.label.is_some())
            || self.tiles().any(|t| t.caption.is_some())
    }

    /// `(width, height)` of the painted grid in pixels, zoom included: what [`ImageGrid::paint`]
    /// allocates (three bytes a pixel), for callers to bound before painting.
    pub fn size(&self) -> Result<(u64, u64)> {
        let l = self.layout()?;
        let zoom = u64::from(self.style.zoom);
        Ok((l.width.saturating_mul(zoom), l.height.saturating_mul(zoom)))
    }

    /// Paints the grid.
    pub fn paint(&self) -> Result<RgbImage> {
        let l = self.layout()?;
        let too_large = || {
            Error::Data(format!(
                "image grid: a {}x{} canvas (before a {}x zoom) is too large",
                l.width, l.height, self.style.zoom
            ))
        };
        let (w, h) = match (u32::try_from(l.width), u32::try_from(l.height)) {
            (Ok(w), Ok(h)) if w.checked_mul(self.style.zoom).is_some() => (w, h),
            _ => return Err(too_large()),
        };
        if h.checked_mul(self.style.zoom).is_none() {
            return Err(too_large());
        }
        let pixels = (w as usize).checked_mul(h as usize).ok_or_else(too_large)?;
        let mut buf: Vec<u8> = self
            .style
            .background
            .iter()
            .copied()
            .cycle()
            .take(pixels.checked_mul(3).ok_or_else(too_large)?)
            .collect();
        if self.has_text() || self.style.frame.is_some() {
            self.draw_text_and_frames(&mut buf, (w, h), &l)?;
        }
        let stride = w as usize * 3;
        if let Some(mw) = (self.style.marker_width > 0).then_some(self.style.marker_width as usize)
        {
            for (row, &y0) in self.rows.iter().zip(&l.row_y) {
                let Some(colour) = row.marker else { continue };
                for y in y0 as usize..(y0 + l.tile_h) as usize {
                    let at = y * stride + l.marker_x as usize * 3;
                    for px in buf[at..at + mw * 3].chunks_exact_mut(3) {
                        px.copy_from_slice(&colour);
                    }
                }
            }
        }
        // The pixels, enlarged, into their places (inside the frames drawn above).
        let scale = self.style.scale as usize;
        for (r, row) in self.rows.iter().enumerate() {
            for (c, tile) in row.tiles.iter().enumerate() {
                if tile.is_blank() {
                    continue;
                }
                let (x0, y0) = self.tile_at(&l, r, c, tile);
                let (x0, y0) = (x0 as usize, y0 as usize);
                let w = tile.width * scale;
                for ty in 0..tile.height * scale {
                    let src = &tile.rgb[(ty / scale) * tile.width * 3..][..tile.width * 3];
                    let dst = &mut buf[(y0 + ty) * stride + x0 * 3..][..w * 3];
                    for (tx, px) in dst.chunks_exact_mut(3).enumerate() {
                        px.copy_from_slice(&src[(tx / scale) * 3..][..3]);
                    }
                }
            }
        }
        let img = RgbImage::from_raw(w, h, buf).ok_or_else(too_large)?;
        Ok(enlarge(&img, self.style.zoom))
    }

    /// Paints the grid and encodes it as PNG.
    pub fn png(&self) -> Result<Vec<u8>> {
        let img = self.paint()?;
        encode_png(img.as_raw(), img.width(), img.height())
    }

    /// The title, labels, captions and frames, drawn with plotters onto `buf`.
    fn draw_text_and_frames(&self, buf: &mut [u8], size: (u32, u32), l: &Layout) -> Result<()> {
        let gap = u64::from(self.style.gap);
        let at = |x: u64, y: u64| (x as i32, y as i32);
        let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
        if !self.title.is_empty() {
            root.draw_text(
                &self.title,
                &font(TITLE_SIZE).pos(Pos::new(HPos::Center, VPos::Center)),
                (size.0 as i32 / 2, TITLE_BAND as i32 / 2),
            )
            .map_err(draw_err)?;
        }
        for (c, label) in self.col_labels.iter().enumerate() {
            root.draw_text(
                label,
                &font(LABEL_SIZE).pos(Pos::new(HPos::Center, VPos::Center)),
                at(l.cell_x(c, gap) + l.cell_w / 2, l.col_label_y),
            )
            .map_err(draw_err)?;
        }
        for (row, &y) in self.rows.iter().zip(&l.row_y) {
            if let Some(label) = &row.label {
                root.draw_text(
                    label,
                    &font(LABEL_SIZE).pos(Pos::new(HPos::Right, VPos::Center)),
                    at(l.label_right, y + l.tile_h / 2),
                )
                .map_err(draw_err)?;
            }
        }
        let scale = u64::from(self.style.scale);
        for (r, row) in self.rows.iter().enumerate() {
            for (c, tile) in row.tiles.iter().enumerate() {
                if tile.is_blank() {
                    continue;
                }
                if let Some([red, green, blue]) = self.style.frame {
                    let (x0, y0) = self.tile_at(l, r, c, tile);
                    let (w, h) = (tile.width as u64 * scale, tile.height as u64 * scale);
                    let (x0, y0) = (x0 as i32, y0 as i32);
                    root.draw(&Rectangle::new(
                        [(x0 - 1, y0 - 1), (x0 + w as i32, y0 + h as i32)],
                        RGBColor(red, green, blue).stroke_width(1),
                    ))
                    .map_err(draw_err)?;
                }
                if let Some(caption) = &tile.caption {
                    root.draw_text(
                        caption,
                        &font(CAPTION_SIZE).pos(Pos::new(HPos::Center, VPos::Top)),
                        at(
                            l.cell_x(c, gap) + l.cell_w / 2,
                            l.row_y[r] + l.tile_h + CAPTION_OFFSET,
                        ),
                    )
                    .map_err(draw_err)?;
                }
            }
        }
        root.present().map_err(draw_err)
    }
}

/// `img` enlarged `zoom` times, each pixel a `zoom x zoom` square.
fn enlarge(img: &RgbImage, zoom: u32) -> RgbImage {
    if zoom == 1 {
        return img.clone();
    }
    let z = zoom as usize;
    let (w, h) = (img.width(), img.height());
    let mut out = Vec::with_capacity(img.as_raw().len() * z * z);
    for row in img.as_raw().chunks_exact(w as usize * 3) {
        let wide: Vec<u8> = row
            .chunks_exact(3)
            .flat_map(|px| std::iter::repeat_n(px, z).flatten().copied())
            .collect();
        for _ in 0..z {
            out.extend_from_slice(&wide);
        }
    }
    RgbImage::from_raw(w * zoom, h * zoom, out).unwrap_or_default()
}

#[cfg(test)]
mod tests;
