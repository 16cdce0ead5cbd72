//! rensou-plot: the figures every probe and the training loop share. Depends on `rensou-api`,
//! plotters and image only, so a probe crate that draws does not link burn or HDF5.
//!
//! Every figure is drawn with [`plotters`] into an in-memory RGB buffer and returned as PNG bytes
//! (encoded with the `image` crate), ready for [`rensou_api::probe::ProbeContext::write_file`]. Text
//! uses the embedded DejaVu Sans ([`FONT_FAMILY`]), registered with plotters once per process, so
//! figures look the same on every machine and need no system fonts.
//!
//! - [`scatter_png`]: points coloured by class, with a legend (t-SNE, PCA).
//! - [`lines_png`]: named series of `(x, y)` points (training curves, accuracy against a
//!   parameter).
//! - [`heatmap_png`]: a matrix with row and column labels and a colour bar (confusion matrices,
//!   distance matrices).
//! - [`image_grid_png`]: item images ([`ImageTile`]) in a labelled grid (reconstructions,
//!   arithmetic results, generations).
//!
//! Sizes are `(width, height)` in pixels; [`DEFAULT_SIZE`] suits most figures.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use rensou_api::{Error, Result};

/// Font family name under which the embedded DejaVu Sans is registered (it is also registered as
/// `sans-serif`, plotters' default family).
pub const FONT_FAMILY: &str = "DejaVu Sans";

/// A good default figure size, `(width, height)` in pixels.
pub const DEFAULT_SIZE: (u32, u32) = (900, 700);

/// Largest accepted figure side in pixels (a guard against absurd sizes).
pub const MAX_SIDE: u32 = 16_384;

static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();
static FONT_OK: AtomicBool = AtomicBool::new(false);

/// Registers the embedded font with plotters (once per process).
fn ensure_font() -> Result<()> {
    FONT_ONCE.call_once(|| {
        let ok = plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
            && plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES).is_ok();
        FONT_OK.store(ok, Ordering::SeqCst);
    });
    if FONT_OK.load(Ordering::SeqCst) {
        Ok(())
    } else {
        Err(plot_error(
            "the embedded font DejaVu Sans could not be loaded",
        ))
    }
}

fn plot_error(message: impl std::fmt::Display) -> Error {
    Error::Data(format!("cannot draw figure: {message}"))
}

/// A text style in the embedded font.
fn font(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size).into_font().color(&BLACK)
}

/// Maps any drawing error to the crate's error.
fn draw_err<E: std::fmt::Debug>(e: E) -> Error {
    plot_error(format!("{e:?}"))
}

fn check_size((w, h): (u32, u32)) -> Result<()> {
    if w < 32 || h < 32 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(Error::Data(format!(
            "figure size {w}x{h} is outside 32..={MAX_SIDE} pixels per side"
        )));
    }
    Ok(())
}

/// Encodes an RGB8 buffer as PNG bytes.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(Error::Data(format!(
            "an RGB buffer of {} bytes is not {width}x{height}x3",
            rgb.len()
        )));
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| plot_error(format!("PNG encoding failed: {e}")))?;
    Ok(png)
}

/// Draws with `draw` on a white `size` canvas and returns the PNG.
fn render<F>(size: (u32, u32), draw: F) -> Result<Vec<u8>>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
{
    ensure_font()?;
    check_size(size)?;
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    encode_png(&buf, size.0, size.1)
}

/// The `i`-th colour of the categorical palette: matplotlib's tab10, then the lighter tab20
/// shades, then evenly spread hues. Distinct for the first 20 indices.
pub fn palette(i: usize) -> RGBColor {
    const TAB20: [(u8, u8, u8); 20] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (174, 199, 232),
        (255, 187, 120),
        (152, 223, 138),
        (255, 152, 150),
        (197, 176, 213),
        (196, 156, 148),
        (247, 182, 210),
        (199, 199, 199),
        (219, 219, 141),
        (158, 218, 229),
    ];
    if let Some(&(r, g, b)) = TAB20.get(i) {
        return RGBColor(r, g, b);
    }
    // Golden-ratio hue steps: well spread for any count.
    let hue = ((i - TAB20.len()) as f64 * 0.618_033_988_75).fract();
    let (r, g, b) = HSLColor(hue, 0.65, 0.45).rgb();
    RGBColor(r, g, b)
}

/// A perceptually uniform sequential colour (viridis, interpolated) for `t` in `[0, 1]`.
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// A tick label: the shortest decimal (up to 6 places) for the value, `-0` shown as `0`.
fn tick(v: &f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    if v.abs() >= 1e6 || (v.abs() < 1e-4 && *v != 0.0) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Draws `title` centred at the top of `area` at up to `size` points, smaller if it would not
/// fit the width, and returns the area below it.
fn titled<'a>(
    area: &DrawingArea<BitMapBackend<'a>, Shift>,
    title: &str,
    size: f64,
) -> Result<DrawingArea<BitMapBackend<'a>, Shift>> {
    let (w, _) = area.dim_in_pixel();
    let mut size = size;
    while size > 9.0 {
        let (tw, _) = area
            .estimate_text_size(title, &font(size))
            .map_err(draw_err)?;
        if tw + 16 <= w {
            break;
        }
        size -= 1.0;
    }
    area.titled(title, font(size).pos(Pos::new(HPos::Center, VPos::Top)))
        .map_err(draw_err)
}

/// `(min, max)` of finite values, padded by `pad` of the span; a degenerate span is widened.
fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(1.0) {
        let w = lo.abs().max(1.0) * 0.5;
        return (lo - w, hi + w);
    }
    (lo - pad * span, hi + pad * span)
}

/// A scatter plot of `points` coloured by `classes` (one class per point), with a legend.
///
/// Class `c` is named `class_names[c]` in the legend, or by its value when absent (numeric
/// labels such as `number` need no names). Classes get [`palette`] colours in ascending order.
/// Points are small filled circles drawn in a fixed pseudo-random order so no class hides another;
/// tens of thousands of points are fine. Non-finite points are skipped. `size` is
/// `(width, height)` in pixels; the legend takes a strip on the right.
pub fn scatter_png(
    title: &str,
    points: &[(f32, f32)],
    classes: &[i64],
    class_names: &BTreeMap<i64, String>,
    size: (u32, u32),
) -> Result<Vec<u8>> {
    if points.len() != classes.len() {
        return Err(Error::Data(format!(
            "scatter: {} points but {} classes",
            points.len(),
            classes.len()
        )));
    }
    let mut distinct: Vec<i64> = classes.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let colour_of: BTreeMap<i64, RGBColor> = distinct
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, palette(i)))
        .collect();
    let name_of = |c: i64| {
        class_names
            .get(&c)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    let (xr, yr) = (
        padded_range(points.iter().map(|p| f64::from(p.0)), 0.04),
        padded_range(points.iter().map(|p| f64::from(p.1)), 0.04),
    );
    // A fixed permutation (multiplicative hashing of the index) as drawing order.
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| rensou_api::rng::mix64(i as u64));
    let radius = if points.len() > 20_000 {
        1
    } else if points.len() > 2_000 {
        2
    } else {
        3
    };

    render(size, |root| {
        let area = titled(root, title, 20.0)?;
        let legend_w = legend_width(&area, distinct.iter().map(|&c| name_of(c)), size.0 / 3)?;
        let (plot_area, legend_area) = area.split_horizontally(size.0 - legend_w);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(draw_err)?;
        let (pw, ph) = chart.plotting_area().dim_in_pixel();
        chart
            .configure_mesh()
            .x_labels((pw / 70).max(2) as usize)
            .y_labels((ph / 50).max(2) as usize)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .label_style(font(12.0))
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(
                order
                    .iter()
                    .filter(|&&i| points[i].0.is_finite() && points[i].1.is_finite())
                    .map(|&i| {
                        let (x, y) = points[i];
                        Circle::new(
                            (f64::from(x), f64::from(y)),
                            radius,
                            colour_of[&classes[i]].mix(0.8).filled(),
                        )
                    }),
            )
            .map_err(draw_err)?;
        let entries: Vec<(String, RGBColor)> = distinct
            .iter()
            .map(|&c| (name_of(c), colour_of[&c]))
            .collect();
        draw_legend(&legend_area, &entries)
    })
}

/// Width of the legend strip for these entry names, at most `max`.
fn legend_width(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    names: impl Iterator<Item = String>,
    max: u32,
) -> Result<u32> {
    let style = font(14.0);
    let mut widest = 0;
    for name in names {
        let (w, _) = area.estimate_text_size(&name, &style).map_err(draw_err)?;
        widest = widest.max(w);
    }
    Ok((widest + 50).clamp(60, max.max(60)))
}

/// Draws legend entries (a marker and a name per line) from the top of `area`.
fn draw_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    entries: &[(String, RGBColor)],
) -> Result<()> {
    let line_h = 22;
    let (_, h) = area.dim_in_pixel();
    let fits = ((h as i32 - 30) / line_h).max(1) as usize;
    let shown = if entries.len() > fits {
        fits.saturating_sub(1)
    } else {
        entries.len()
    };
    for (k, (name, colour)) in entries.iter().take(shown).enumerate() {
        let y = 30 + k as i32 * line_h;
        area.draw(&Circle::new((14, y), 6, colour.filled()))
            .map_err(draw_err)?;
        area.draw_text(
            name,
            &font(14.0).pos(Pos::new(HPos::Left, VPos::Center)),
            (28, y),
        )
        .map_err(draw_err)?;
    }
    if shown < entries.len() {
        let y = 30 + shown as i32 * line_h;
        area.draw_text(
            &format!("… {} more", entries.len() - shown),
            &font(14.0).pos(Pos::new(HPos::Left, VPos::Center)),
            (8, y),
        )
        .map_err(draw_err)?;
    }
    Ok(())
}

/// A line chart of named series, each a polyline of `(x, y)` points with markers, with axis
/// titles and a legend (upper right). Non-finite points are skipped. Drawn at [`DEFAULT_SIZE`];
/// see [`lines_png_sized`].
pub fn lines_png<S: AsRef<str>>(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(S, Vec<(f64, f64)>)],
) -> Result<Vec<u8>> {
    lines_png_sized(title, x_label, y_label, series, DEFAULT_SIZE)
}

/// [`lines_png`] at a chosen `(width, height)`.
pub fn lines_png_sized<S: AsRef<str>>(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(S, Vec<(f64, f64)>)],
    size: (u32, u32),
) -> Result<Vec<u8>> {
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let xr = padded_range(series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)), 0.02);
    let yr = padded_range(series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)), 0.05);
    render(size, |root| {
        let area = titled(root, title, 20.0)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(draw_err)?;
        let (pw, ph) = chart.plotting_area().dim_in_pixel();
        chart
            .configure_mesh()
            .x_labels((pw / 70).max(2) as usize)
            .y_labels((ph / 50).max(2) as usize)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc(x_label)
            .y_desc(y_label)
            .axis_desc_style(font(15.0))
            .label_style(font(12.0))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(draw_err)?;
        for (k, (name, points)) in series.iter().enumerate() {
            let colour = palette(k);
            let pts: Vec<(f64, f64)> = points.iter().filter(finite).copied().collect();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(draw_err)?
                .label(name.as_ref())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                });
            if pts.len() <= 200 {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(draw_err)?;
            }
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(font(13.0))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .draw()
                .map_err(draw_err)?;
        }
        Ok(())
    })
}

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

/// One image for [`image_grid_png`]: RGB pixels, `height x width`, and an optional caption
/// written under it.
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

    /// A tile from stored item bytes with shape `[h, w]`, `[h, w, 1]` (grey), `[h, w, 3]` (RGB)
    /// or `[h, w, 4]` (RGBA; alpha dropped), row-major (HWC).
    pub fn from_u8(shape: &[usize], data: &[u8]) -> Result<Self> {
        let (h, w, c) = image_shape(shape, data.len())?;
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

    /// The same tile with a caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    fn is_blank(&self) -> bool {
        self.height == 0 || self.width == 0
    }
}

/// Whether items of `shape` can be drawn as image tiles (`[H, W]` or `[H, W, 1|3|4]`, non-empty).
pub fn is_image_shape(shape: &[usize]) -> bool {
    match *shape {
        [h, w] => h > 0 && w > 0,
        [h, w, c] => h > 0 && w > 0 && matches!(c, 1 | 3 | 4),
        _ => false,
    }
}

fn image_shape(shape: &[usize], len: usize) -> Result<(usize, usize, usize)> {
    let (h, w, c) = match *shape {
        [h, w] => (h, w, 1),
        [h, w, c] if matches!(c, 1 | 3 | 4) => (h, w, c),
        _ => {
            return Err(Error::Data(format!(
                "image tile: shape {shape:?} is not [h, w] or [h, w, 1|3|4]"
            )))
        }
    };
    if h * w * c != len {
        return Err(Error::Data(format!(
            "image tile: shape {shape:?} needs {} values, got {len}",
            h * w * c
        )));
    }
    Ok((h, w, c))
}

/// Tiles `tiles` (row-major, `cols` per row; the last row may be short) into one labelled PNG.
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
    ensure_font()?;
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
    for t in tiles {
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
    let rows = tiles.len().div_ceil(cols);
    if !row_labels.is_empty() && row_labels.len() != rows {
        return Err(Error::Data(format!(
            "image grid: {rows} rows but {} row labels",
            row_labels.len()
        )));
    }
    if !col_labels.is_empty() && col_labels.len() != cols {
        return Err(Error::Data(format!(
            "image grid: {cols} columns but {} column labels",
            col_labels.len()
        )));
    }
    let scale = scale as usize;
    let tile_h = tiles.iter().map(|t| t.height).max().unwrap_or(0).max(1) * scale;
    let tile_w = tiles.iter().map(|t| t.width).max().unwrap_or(0).max(1) * scale;

    // Measure text with a throw-away backend (sizes do not depend on the canvas).
    let measure = |text: &str, size: f64| -> Result<(u32, u32)> {
        let mut scratch = vec![0u8; 32 * 32 * 3];
        let area = BitMapBackend::with_buffer(&mut scratch, (32, 32)).into_drawing_area();
        area.estimate_text_size(text, &font(size)).map_err(draw_err)
    };
    let label_size = 14.0;
    let caption_size = 12.0;
    let mut row_w = 0;
    for l in row_labels {
        row_w = row_w.max(measure(l.as_ref(), label_size)?.0);
    }
    let mut col_w = 0;
    for l in col_labels {
        col_w = col_w.max(measure(l.as_ref(), label_size)?.0);
    }
    let mut caption_w = 0;
    for c in tiles.iter().filter_map(|t| t.caption.as_deref()) {
        caption_w = caption_w.max(measure(c, caption_size)?.0);
    }
    let has_captions = tiles.iter().any(|t| t.caption.is_some());
    let gap = 6usize;
    let cell_w = tile_w.max(col_w as usize + 4).max(caption_w as usize + 4);
    let caption_h = if has_captions { 18 } else { 0 };
    let cell_h = tile_h + caption_h;
    let title_h = if title.is_empty() { 8 } else { 36 };
    let col_label_h = if col_labels.is_empty() { 0 } else { 22 };
    let left = gap
        + if row_labels.is_empty() {
            0
        } else {
            row_w as usize + 10
        };
    let top = title_h + col_label_h;
    let width = (left + cols * (cell_w + gap)).max(measure(title, 18.0)?.0 as usize + 2 * gap);
    let height = top + rows * (cell_h + gap) + gap;
    let size = (width as u32, height as u32);
    check_size((size.0.max(32), size.1.max(32)))?;
    let size = (size.0.max(32), size.1.max(32));

    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    let cell_x = |c: usize| left + c * (cell_w + gap);
    let cell_y = |r: usize| top + r * (cell_h + gap);
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        if !title.is_empty() {
            root.draw_text(
                title,
                &font(18.0).pos(Pos::new(HPos::Center, VPos::Center)),
                (size.0 as i32 / 2, title_h as i32 / 2),
            )
            .map_err(draw_err)?;
        }
        for (c, l) in col_labels.iter().enumerate() {
            root.draw_text(
                l.as_ref(),
                &font(label_size).pos(Pos::new(HPos::Center, VPos::Center)),
                (
                    (cell_x(c) + cell_w / 2) as i32,
                    (title_h + col_label_h / 2) as i32,
                ),
            )
            .map_err(draw_err)?;
        }
        for (r, l) in row_labels.iter().enumerate() {
            root.draw_text(
                l.as_ref(),
                &font(label_size).pos(Pos::new(HPos::Right, VPos::Center)),
                ((left - 10) as i32, (cell_y(r) + tile_h / 2) as i32),
            )
            .map_err(draw_err)?;
        }
        for (k, tile) in tiles.iter().enumerate() {
            let (r, c) = (k / cols, k % cols);
            if tile.is_blank() {
                continue;
            }
            let (w, h) = (tile.width * scale, tile.height * scale);
            let x0 = (cell_x(c) + (cell_w - w) / 2) as i32;
            let y0 = cell_y(r) as i32;
            root.draw(&Rectangle::new(
                [(x0 - 1, y0 - 1), (x0 + w as i32, y0 + h as i32)],
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .map_err(draw_err)?;
            if let Some(caption) = &tile.caption {
                root.draw_text(
                    caption,
                    &font(caption_size).pos(Pos::new(HPos::Center, VPos::Top)),
                    (
                        (cell_x(c) + cell_w / 2) as i32,
                        (cell_y(r) + tile_h + 3) as i32,
                    ),
                )
                .map_err(draw_err)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    // The pixels themselves are copied, enlarged, into the frames drawn above.
    let stride = size.0 as usize * 3;
    for (k, tile) in tiles.iter().enumerate() {
        if tile.is_blank() {
            continue;
        }
        let (r, c) = (k / cols, k % cols);
        let w = tile.width * scale;
        let x0 = cell_x(c) + (cell_w - w) / 2;
        let y0 = cell_y(r);
        for ty in 0..tile.height * scale {
            let src_row = &tile.rgb[(ty / scale) * tile.width * 3..][..tile.width * 3];
            let dst = &mut buf[(y0 + ty) * stride + x0 * 3..][..w * 3];
            for (tx, px) in dst.chunks_exact_mut(3).enumerate() {
                px.copy_from_slice(&src_row[(tx / scale) * 3..][..3]);
            }
        }
    }
    encode_png(&buf, size.0, size.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `png` under `$RENSOU_PLOT_DIR` when set, to look at the figures.
    fn dump(name: &str, png: &[u8]) {
        if let Some(dir) = std::env::var_os("RENSOU_PLOT_DIR") {
            let _ = std::fs::write(std::path::Path::new(&dir).join(name), png);
        }
    }

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("a valid PNG")
            .to_rgb8()
    }

    /// Number of distinct colours and of non-white pixels.
    fn richness(img: &image::RgbImage) -> (usize, usize) {
        let mut colours = std::collections::HashSet::new();
        let mut ink = 0;
        for p in img.pixels() {
            colours.insert(p.0);
            if p.0 != [255, 255, 255] {
                ink += 1;
            }
        }
        (colours.len(), ink)
    }

    #[test]
    fn scatter_decodes_with_size_and_class_colours() {
        let n = 3000;
        let points: Vec<(f32, f32)> = (0..n)
            .map(|i| {
                let t = i as f32 * 0.01;
                ((i % 3) as f32 * 5.0 + t.cos(), t.sin())
            })
            .collect();
        let classes: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
        let names: BTreeMap<i64, String> = [(0, "red".to_owned()), (1, "green".to_owned())]
            .into_iter()
            .collect();
        let png = scatter_png("test scatter", &points, &classes, &names, (640, 480)).unwrap();
        dump("scatter.png", &png);
        let img = decode(&png);
        assert_eq!(img.dimensions(), (640, 480));
        let (colours, ink) = richness(&img);
        assert!(colours > 10, "{colours} colours");
        assert!(ink > 640 * 480 / 50, "{ink} inked pixels");
        // The three class colours are present (slightly blended with white by the alpha).
        for k in 0..3 {
            let RGBColor(r, g, b) = palette(k);
            assert!(
                img.pixels().any(|p| p.0 == [r, g, b]),
                "legend marker of class {k} missing"
            );
        }
    }

    #[test]
    fn scatter_rejects_mismatched_lengths_and_handles_degenerate_input() {
        let names = BTreeMap::new();
        assert!(scatter_png("x", &[(0.0, 0.0)], &[], &names, (200, 200)).is_err());
        // All points equal, and a non-finite one: still a figure.
        let png = scatter_png(
            "same",
            &[(1.0, 1.0), (1.0, 1.0), (f32::NAN, 0.0)],
            &[0, 1, 1],
            &names,
            (200, 160),
        )
        .unwrap();
        assert_eq!(decode(&png).dimensions(), (200, 160));
        assert!(scatter_png("tiny", &[], &[], &names, (10, 10)).is_err());
    }

    #[test]
    fn many_classes_fit_the_legend() {
        let points: Vec<(f32, f32)> = (0..200).map(|i| (i as f32, (i * i) as f32)).collect();
        let classes: Vec<i64> = (0..200).collect();
        let png = scatter_png("many", &points, &classes, &BTreeMap::new(), (400, 300)).unwrap();
        dump("many.png", &png);
        assert_eq!(decode(&png).dimensions(), (400, 300));
        assert_ne!(palette(25), palette(26));
    }

    #[test]
    fn lines_decode_and_are_not_blank() {
        let series = vec![
            (
                "train",
                (0..50)
                    .map(|i| (f64::from(i), (f64::from(i) * 0.1).exp()))
                    .collect(),
            ),
            ("test", vec![(0.0, 1.0), (10.0, 5.0), (f64::NAN, 3.0)]),
        ];
        let png = lines_png("loss", "epoch", "value", &series).unwrap();
        dump("lines.png", &png);
        let img = decode(&png);
        assert_eq!(img.dimensions(), DEFAULT_SIZE);
        let (colours, ink) = richness(&img);
        assert!(colours > 10 && ink > 5000, "{colours} colours, {ink} ink");
        let RGBColor(r, g, b) = palette(0);
        assert!(img.pixels().any(|p| p.0 == [r, g, b]));
        let empty: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        let png = lines_png_sized("nothing", "x", "y", &empty, (300, 200)).unwrap();
        assert_eq!(decode(&png).dimensions(), (300, 200));
    }

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
        let png = image_grid_png::<&str, &str>("", &tiles[..1], 1, &[], &[], 1).unwrap();
        assert!(decode(&png).dimensions().0 >= 32);
    }

    #[test]
    fn viridis_and_ranges() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
        assert_eq!(padded_range([2.0, 2.0].into_iter(), 0.1), (1.0, 3.0));
        assert_eq!(padded_range(std::iter::empty(), 0.1), (0.0, 1.0));
        assert_eq!(tick(&30.0), "30");
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&-12.5), "-12.5");
        assert_eq!(tick(&2e7), "2.0e7");
    }
}
