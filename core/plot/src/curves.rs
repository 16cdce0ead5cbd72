//! Line charts of named series: training curves, accuracy against a parameter.

use plotters::prelude::*;

use rensou_api::Result;

use crate::draw::{axes_chart, draw_err, font, padded_range, palette, render, tick, titled};
use crate::DEFAULT_SIZE;

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
        let mut chart = axes_chart(&area, (xr, yr), (x_label, y_label), (&tick, &tick))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::tests::{decode, dump, richness};

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
}
