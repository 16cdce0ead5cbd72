//! Where everything of an image grid goes (see the [grid module](super) for the rules).

use rensou_api::{Error, Result};

use super::{
    Align, ImageGrid, CAPTION_BAND, CAPTION_SIZE, COL_LABEL_BAND, LABEL_PAD, LABEL_SIZE, TEXT_PAD,
    TITLE_BAND, TITLE_SIZE,
};
use crate::draw::{ensure_font, text_size};
use crate::tile::ImageTile;

/// Where everything goes, in pixels before zoom.
pub(super) struct Layout {
    pub(super) width: u64,
    pub(super) height: u64,
    pub(super) tile_h: u64,
    pub(super) cell_w: u64,
    /// Where the row labels end (right-aligned there).
    pub(super) label_right: u64,
    pub(super) marker_x: u64,
    /// x of the first column.
    pub(super) left: u64,
    /// y of each row.
    pub(super) row_y: Vec<u64>,
    /// y of the column labels' centres.
    pub(super) col_label_y: u64,
}

impl Layout {
    pub(super) fn cell_x(&self, c: usize, gap: u64) -> u64 {
        self.left + c as u64 * (self.cell_w + gap)
    }
}

impl ImageGrid {
    /// Checks the grid and places everything.
    pub(super) fn layout(&self) -> Result<Layout> {
        let s = &self.style;
        if s.scale == 0 || s.zoom == 0 {
            return Err(Error::Data(format!(
                "image grid: scale {} and zoom {} must be at least 1",
                s.scale, s.zoom
            )));
        }
        let longest = self.rows.iter().map(|r| r.tiles.len()).max().unwrap_or(0);
        let cols = match self.columns {
            Some(0) => return Err(Error::Data("image grid: needs at least one column".into())),
            Some(c) if c < longest => {
                return Err(Error::Data(format!(
                    "image grid: a row of {longest} tiles does not fit in {c} columns"
                )))
            }
            Some(c) => c,
            None => longest.max(1),
        };
        if !self.col_labels.is_empty() && self.col_labels.len() != cols {
            return Err(Error::Data(format!(
                "image grid: {cols} columns but {} column labels",
                self.col_labels.len()
            )));
        }
        for t in self.tiles() {
            if t.rgb.len() != t.height * t.width * 3 {
                return Err(Error::Data(format!(
                    "image grid: a {}x{} tile has {} bytes, not {}",
                    t.height,
                    t.width,
                    t.rgb.len(),
                    t.height * t.width * 3
                )));
            }
        }
        if self.has_text() {
            ensure_font()?;
        }
        let measure =
            |text: &str, size: f64| -> Result<u64> { Ok(text_size(text, size)?.0.into()) };
        let scale = u64::from(s.scale);
        let gap = u64::from(s.gap);
        let side = |f: fn(&ImageTile) -> usize| {
            (self.tiles().map(f).max().unwrap_or(0).max(1) as u64).saturating_mul(scale)
        };
        let (tile_w, tile_h) = (side(|t| t.width), side(|t| t.height));
        let mut cell_w = tile_w.max(u64::from(s.min_cell_width));
        for label in &self.col_labels {
            cell_w = cell_w.max(measure(label, LABEL_SIZE)? + TEXT_PAD);
        }
        let mut has_captions = false;
        for caption in self.tiles().filter_map(|t| t.caption.as_deref()) {
            has_captions = true;
            cell_w = cell_w.max(measure(caption, CAPTION_SIZE)? + TEXT_PAD);
        }
        let cell_h = tile_h + if has_captions { CAPTION_BAND } else { 0 };
        let mut label_w = None;
        for label in self.rows.iter().filter_map(|r| r.label.as_deref()) {
            label_w = Some(label_w.unwrap_or(0).max(measure(label, LABEL_SIZE)?));
        }
        let label_right = u64::from(s.margin_left) + label_w.unwrap_or(0);
        let marker_x = label_right + label_w.map_or(0, |_| LABEL_PAD);
        let left = marker_x
            + if self.rows.iter().any(|r| r.marker.is_some()) {
                u64::from(s.marker_width) + gap
            } else {
                0
            };
        let title_band = if self.title.is_empty() {
            u64::from(s.margin_top)
        } else {
            TITLE_BAND
        };
        let col_label_y = title_band + COL_LABEL_BAND / 2;
        let mut y = title_band
            + if self.col_labels.is_empty() {
                0
            } else {
                COL_LABEL_BAND
            };
        let mut row_y = Vec::with_capacity(self.rows.len());
        for (r, row) in self.rows.iter().enumerate() {
            if r > 0 && row.starts_group {
                y += u64::from(s.group_gap);
            }
            row_y.push(y);
            y = y.saturating_add(cell_h + gap);
        }
        let height = y.saturating_add(u64::from(s.margin_bottom));
        let mut width = left.saturating_add((cols as u64).saturating_mul(cell_w + gap));
        if !self.title.is_empty() {
            width = width.max(measure(&self.title, TITLE_SIZE)? + 2 * gap);
        }
        let min = u64::from(s.min_side.max(1));
        Ok(Layout {
            width: width.max(min),
            height: height.max(min),
            tile_h,
            cell_w,
            label_right,
            marker_x,
            left,
            row_y,
            col_label_y,
        })
    }

    /// Top-left corner of the tile in row `r`, column `c`.
    pub(super) fn tile_at(&self, l: &Layout, r: usize, c: usize, tile: &ImageTile) -> (u64, u64) {
        let scale = u64::from(self.style.scale);
        let (w, h) = (tile.width as u64 * scale, tile.height as u64 * scale);
        let x = l.cell_x(c, self.style.gap.into()) + (l.cell_w - w) / 2;
        let y = l.row_y[r]
            + match self.style.align {
                Align::Top => 0,
                Align::Centre => (l.tile_h - h) / 2,
            };
        (x, y)
    }
}
