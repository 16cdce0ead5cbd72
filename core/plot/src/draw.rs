//! What every figure shares: the embedded font, the canvas and its PNG encoding, colours, tick
//! labels, titles and axis ranges.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use rensou_api::{Error, Result};

use crate::{FONT_FAMILY, MAX_SIDE};

static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();
static FONT_OK: AtomicBool = AtomicBool::new(false);

/// Registers the embedded font with plotters (once per process).
pub(crate) fn ensure_font() -> Result<()> {
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

pub(crate) fn plot_error(message: impl std::fmt::Display) -> Error {
    Error::Data(format!("cannot draw figure: {message}"))
}

/// A text style in the embedded font.
pub(crate) fn font(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size).into_font().color(&BLACK)
}

/// Maps any drawing error to the crate's error.
pub(crate) fn draw_err<E: std::fmt::Debug>(e: E) -> Error {
    plot_error(format!("{e:?}"))
}

/// Refuses a figure size outside `32..=MAX_SIDE` pixels per side.
pub(crate) fn check_size((w, h): (u64, u64)) -> Result<()> {
    if w < 32 || h < 32 || w > u64::from(MAX_SIDE) || h > u64::from(MAX_SIDE) {
        return Err(Error::Data(format!(
            "figure size {w}x{h} is outside 32..={MAX_SIDE} pixels per side"
        )));
    }
    Ok(())
}

/// The width and height of `text` at `size` points in the embedded font (which must be
/// registered, [`ensure_font`]).
pub(crate) fn text_size(text: &str, size: f64) -> Result<(u32, u32)> {
    // Sizes do not depend on the canvas: measure on a throw-away one.
    let mut scratch = vec![0u8; 32 * 32 * 3];
    let area = BitMapBackend::with_buffer(&mut scratch, (32, 32)).into_drawing_area();
    area.estimate_text_size(text, &font(size)).map_err(draw_err)
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
pub(crate) fn render<F>(size: (u32, u32), draw: F) -> Result<Vec<u8>>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
{
    ensure_font()?;
    check_size((u64::from(size.0), u64::from(size.1)))?;
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
pub(crate) fn tick(v: &f64) -> String {
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

/// `v`, or 0 when it is within rounding noise of 0 for an axis spanning `span` (plotters' tick
/// positions can land a hair off 0, which [`tick`] would write as `-5.6e-17`).
pub(crate) fn snap(v: f64, span: f64) -> f64 {
    if v.abs() <= span.abs() * 1e-9 {
        0.0
    } else {
        v
    }
}

/// How an axis writes its tick labels.
pub(crate) type TickFormat<'a> = dyn Fn(&f64) -> String + 'a;

/// The Cartesian chart of the line figures ([`crate::lines_png`], [`crate::bands_png`]) over
/// `xr` x `yr` on `area`: the same margins, a light grid with a tick every 70 px across and
/// 50 px up, tick labels from `x_tick` and `y_tick`, and the axis titles.
pub(crate) fn axes_chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    (xr, yr): ((f64, f64), (f64, f64)),
    (x_label, y_label): (&str, &str),
    (x_tick, y_tick): (&TickFormat<'_>, &TickFormat<'_>),
) -> Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(area)
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
        .x_label_formatter(x_tick)
        .y_label_formatter(y_tick)
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style(font(15.0))
        .label_style(font(12.0))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(draw_err)?;
    Ok(chart)
}

/// Draws `title` centred at the top of `area` at up to `size` points, smaller if it would not
/// fit the width, and returns the area below it.
pub(crate) fn titled<'a>(
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
pub(crate) fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes `png` under `$RENSOU_PLOT_DIR` when set, to look at the figures.
    pub(crate) fn dump(name: &str, png: &[u8]) {
        if let Some(dir) = std::env::var_os("RENSOU_PLOT_DIR") {
            let _ = std::fs::write(std::path::Path::new(&dir).join(name), png);
        }
    }

    pub(crate) fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("a valid PNG")
            .to_rgb8()
    }

    /// Number of distinct colours and of non-white pixels.
    pub(crate) fn richness(img: &image::RgbImage) -> (usize, usize) {
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
        assert_eq!(tick(&snap(-5.551115123125783e-17, 1.0)), "0");
        assert_eq!(snap(1e-5, 1.0), 1e-5);
    }

    #[test]
    fn sizes_outside_the_bounds_are_refused() {
        assert!(check_size((32, 32)).is_ok());
        assert!(check_size((31, 100)).is_err());
        assert!(check_size((100, u64::from(MAX_SIDE) + 1)).is_err());
        assert!(encode_png(&[0; 5], 1, 2).is_err());
    }
}
