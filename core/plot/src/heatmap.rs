//! Heatmaps of a labelled matrix with a colour bar: confusion and distance matrices, effect
//! sizes of every model against a baseline.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use rensou_api::{Error, Result};

use crate::draw::{draw_err, font, render, titled, viridis};
use crate::DEFAULT_SIZE;

/// A heatmap of `matrix` (rows of equal length; row 0 at the top) with row and column labels
/// (`row_labels.len()` rows, `col_labels.len()` columns), a viridis colour scale from the finite
/// minimum to maximum with a colour bar, and each cell's value written in it when cells are large
/// enough. Non-finite cells are grey. Drawn at [`DEFAULT_SIZE`]; see [`heatmap_png_sized`].
pub fn heatmap_png<S: AsRef<str>, T: AsRef<str>>(
    title: &str,
    matrix: &[Vec<f64>],
    row_labels: &[S],
    col_labels: &[T],
) -> Result<Vec<u8>> {
    heatmap_png_sized(title, matrix, row_labels, col_labels, DEFAULT_SIZE)
}

/// [`heatmap_png`] at a chosen `(width, height)`.
pub fn heatmap_png_sized<S: AsRef<str>, T: AsRef<str>>(
    title: &str,
    matrix: &[Vec<f64>],
    row_labels: &[S],
    col_labels: &[T],
    size: (u32, u32),
) -> Result<Vec<u8>> {
    let rows = matrix.len();
    let cols = matrix.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 || matrix.iter().any(|r| r.len() != cols) {
        return Err(Error::Data(
            "heatmap: the matrix must be non-empty with rows of equal length".into(),
        ));
    }
    if row_labels.len() != rows || col_labels.len() != cols {
        return Err(Error::Data(format!(
            "heatmap: a {rows}x{cols} matrix needs {rows} row labels and {cols} column labels, \
             got {} and {}",
            row_labels.len(),
            col_labels.len()
        )));
    }
    let (lo, hi) = {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in matrix.iter().flatten().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            (0.0, 1.0)
        } else {
            (lo, hi)
        }
    };
    let norm = |v: f64| {
        if hi > lo {
            (v - lo) / (hi - lo)
        } else {
            0.5
        }
    };
    render(size, |root| {
        let area = titled(root, title, 20.0)?;
        let (main, bar) = area.split_horizontally(size.0.saturating_sub(90));
        let row_w = row_labels
            .iter()
            .map(|l| {
                main.estimate_text_size(l.as_ref(), &font(13.0))
                    .map(|(w, _)| w)
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let mut chart = ChartBuilder::on(&main)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(row_w + 16)
            .build_cartesian_2d(0.0..cols as f64, 0.0..rows as f64)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .draw()
            .map_err(draw_err)?;
        // Row r is drawn at y in [rows - 1 - r, rows - r): row 0 on top.
        let cell_rect = |r: usize, c: usize| {
            let y = (rows - 1 - r) as f64;
            [(c as f64, y), (c as f64 + 1.0, y + 1.0)]
        };
        let (pw, ph) = chart.plotting_area().dim_in_pixel();
        let cell_w = f64::from(pw) / cols as f64;
        let cell_h = f64::from(ph) / rows as f64;
        let annotate = cell_w >= 34.0 && cell_h >= 16.0;
        for (r, row) in matrix.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let colour = if v.is_finite() {
                    viridis(norm(v))
                } else {
                    RGBColor(200, 200, 200)
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        cell_rect(r, c),
                        colour.filled(),
                    )))
                    .map_err(draw_err)?;
                if annotate && v.is_finite() {
                    let luminance = 0.299 * f64::from(colour.0)
                        + 0.587 * f64::from(colour.1)
                        + 0.114 * f64::from(colour.2);
                    let ink = if luminance > 140.0 { BLACK } else { WHITE };
                    let fsize = (cell_h * 0.35).clamp(9.0, 14.0);
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format_value(v),
                            (c as f64 + 0.5, (rows - 1 - r) as f64 + 0.5),
                            font(fsize)
                                .color(&ink)
                                .pos(Pos::new(HPos::Center, VPos::Center)),
                        )))
                        .map_err(draw_err)?;
                }
            }
        }
        // Labels centred on their rows and columns, in canvas pixels.
        for (c, label) in col_labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
            root.draw_text(
                label.as_ref(),
                &font(13.0).pos(Pos::new(HPos::Center, VPos::Top)),
                (x, y + 6),
            )
            .map_err(draw_err)?;
        }
        for (r, label) in row_labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, (rows - 1 - r) as f64 + 0.5));
            root.draw_text(
                label.as_ref(),
                &font(13.0).pos(Pos::new(HPos::Right, VPos::Center)),
                (x - 6, y),
            )
            .map_err(draw_err)?;
        }
        draw_colour_bar(&bar, lo, hi)
    })
}

/// A short text for a cell value.
fn format_value(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A vertical viridis bar from `lo` (bottom) to `hi` (top) with its end values.
fn draw_colour_bar(area: &DrawingArea<BitMapBackend<'_>, Shift>, lo: f64, hi: f64) -> Result<()> {
    let (_, h) = area.dim_in_pixel();
    let (top, bottom) = (30i32, h as i32 - 50);
    if bottom <= top + 10 {
        return Ok(());
    }
    let (x0, x1) = (10i32, 30i32);
    for y in top..bottom {
        let t = 1.0 - f64::from(y - top) / f64::from(bottom - top - 1);
        area.draw(&Rectangle::new([(x0, y), (x1, y + 1)], viridis(t).filled()))
            .map_err(draw_err)?;
    }
    area.draw(&Rectangle::new(
        [(x0, top), (x1, bottom)],
        BLACK.stroke_width(1),
    ))
    .map_err(draw_err)?;
    let style = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
    area.draw_text(&format_value(hi), &style, (x1 + 4, top))
        .map_err(draw_err)?;
    area.draw_text(&format_value(lo), &style, (x1 + 4, bottom))
        .map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::tests::{decode, dump, richness};

    #[test]
    fn heatmap_decodes_and_checks_labels() {
        let m: Vec<Vec<f64>> = (0..9)
            .map(|i| (0..9).map(|j| f64::from(i - j).abs()).collect())
            .collect();
        let labels: Vec<String> = (1..=9).map(|i| i.to_string()).collect();
        let png = heatmap_png("distances", &m, &labels, &labels).unwrap();
        dump("heatmap.png", &png);
        let img = decode(&png);
        assert_eq!(img.dimensions(), DEFAULT_SIZE);
        let (colours, _) = richness(&img);
        assert!(colours > 20);
        let RGBColor(r, g, b) = viridis(1.0);
        assert!(img.pixels().any(|p| p.0 == [r, g, b]), "max colour missing");
        assert!(heatmap_png("bad", &m, &labels[..3], &labels).is_err());
        assert!(heatmap_png::<&str, &str>("empty", &[], &[], &[]).is_err());
        let constant = vec![vec![f64::NAN, 2.0], vec![2.0, 2.0]];
        assert!(heatmap_png_sized("c", &constant, &["a", "b"], &["x", "y"], (300, 300)).is_ok());
    }
}
