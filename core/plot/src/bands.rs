//! Line charts with interval bands: a mean line per series and a shaded band from its lower to
//! its upper bound (accuracy against a parameter over seeds), alone or as a grid of panels.

use std::collections::HashMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use rensou_api::{Error, Result};

use crate::draw::{
    axes_chart, check_size, draw_err, font, padded_range, palette, render, snap, tick, titled,
};

/// One series with an interval band: mean line and a shaded band from lo to hi at each x.
#[derive(Debug, Clone, PartialEq)]
pub struct Band<S> {
    /// The series' name in the legend.
    pub name: S,
    /// The points, drawn in ascending `x` (any order is accepted).
    pub points: Vec<BandPoint>,
}

/// One x of a band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandPoint {
    /// Position on the x axis; a point with a non-finite `x` is skipped.
    pub x: f64,
    /// The line's value; a non-finite mean leaves the point off the line.
    pub mean: f64,
    /// Lower bound of the band; the band covers only points where `lo` and `hi` are finite.
    pub lo: f64,
    /// Upper bound of the band.
    pub hi: f64,
}

/// One panel of [`bands_grid_png`].
#[derive(Debug, Clone, PartialEq)]
pub struct BandPanel {
    /// The panel's title.
    pub title: String,
    /// Title of the x axis.
    pub x_label: String,
    /// Title of the y axis.
    pub y_label: String,
    /// The series, coloured by name consistently across panels.
    pub series: Vec<Band<String>>,
    /// A horizontal reference line at `y` with its label, e.g. `(0.111, "chance")`.
    pub reference: Option<(f64, String)>,
}

/// A line chart of bands: for each series a translucent band (its [`palette`] colour) between
/// `lo` and `hi` and its mean as a line with markers, with axis titles and a legend in the
/// corner with the least data (upper left when tied).
///
/// Each stretch of consecutive points (in ascending `x`) with finite `lo` and `hi` is one band; a
/// lone such point draws an error bar, and a series without any draws its line only. `reference`
/// draws a dashed grey horizontal line at its `y`, labelled at the right end. The y range covers
/// every finite mean, bound and the reference. No series draws the title and empty axes.
/// `size` is `(width, height)` in pixels.
pub fn bands_png<S: AsRef<str>>(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Band<S>],
    reference: Option<(f64, &str)>,
    size: (u32, u32),
) -> Result<Vec<u8>> {
    let series: Vec<Series<'_>> = series
        .iter()
        .enumerate()
        .map(|(k, b)| Series {
            name: b.name.as_ref(),
            colour: palette(k),
            points: &b.points,
        })
        .collect();
    render(size, |root| {
        let area = titled(root, title, 20.0)?;
        draw_bands(&area, x_label, y_label, &series, reference)
    })
}

/// Several [`bands_png`] charts in one PNG: `panels` row-major, `columns` per row (fewer when
/// there are fewer panels; the last row may be short), each `panel_size` pixels. A series name
/// has the same colour in every panel ([`palette`] in order of first appearance across
/// panels). Needs at least one panel and one column.
pub fn bands_grid_png(
    panels: &[BandPanel],
    columns: usize,
    panel_size: (u32, u32),
) -> Result<Vec<u8>> {
    if panels.is_empty() || columns == 0 {
        return Err(Error::Data(
            "bands grid: needs at least one panel and one column".into(),
        ));
    }
    let cols = columns.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let size = (
        u64::from(panel_size.0) * cols as u64,
        u64::from(panel_size.1) * rows as u64,
    );
    check_size(size)?;
    check_size((u64::from(panel_size.0), u64::from(panel_size.1)))?;
    let mut index: HashMap<&str, usize> = HashMap::new();
    for band in panels.iter().flat_map(|p| &p.series) {
        let next = index.len();
        index.entry(band.name.as_str()).or_insert(next);
    }
    render((size.0 as u32, size.1 as u32), |root| {
        for (panel, cell) in panels.iter().zip(root.split_evenly((rows, cols))) {
            let series: Vec<Series<'_>> = panel
                .series
                .iter()
                .map(|b| Series {
                    name: &b.name,
                    colour: palette(index[b.name.as_str()]),
                    points: &b.points,
                })
                .collect();
            let area = titled(&cell.margin(6, 4, 4, 4), &panel.title, 17.0)?;
            let reference = panel.reference.as_ref().map(|(y, l)| (*y, l.as_str()));
            draw_bands(&area, &panel.x_label, &panel.y_label, &series, reference)?;
        }
        Ok(())
    })
}

/// A series ready to draw: its legend name, colour and points.
struct Series<'a> {
    name: &'a str,
    colour: RGBColor,
    points: &'a [BandPoint],
}

/// Draws one bands chart (axes, bands, lines, reference, legend) filling `area`.
fn draw_bands(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    reference: Option<(f64, &str)>,
) -> Result<()> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let xr = padded_range(all().map(|p| p.x), 0.02);
    let yr = padded_range(
        all()
            .filter(|p| p.x.is_finite())
            .flat_map(|p| [p.mean, p.lo, p.hi])
            .chain(reference.map(|r| r.0)),
        0.05,
    );
    let x_tick = |v: &f64| tick(&snap(*v, xr.1 - xr.0));
    let y_tick = |v: &f64| tick(&snap(*v, yr.1 - yr.0));
    let mut chart = axes_chart(area, (xr, yr), (x_label, y_label), (&x_tick, &y_tick))?;
    if let Some((y, label)) = reference.filter(|r| r.0.is_finite()) {
        let grey = RGBColor(110, 110, 110);
        chart
            .draw_series(DashedLineSeries::new(
                [(xr.0, y), (xr.1, y)],
                6,
                4,
                grey.stroke_width(2),
            ))
            .map_err(draw_err)?;
        // Above the line at its right end, below it when the line is near the top.
        let (dy, v) = if (y - yr.0) / (yr.1 - yr.0) > 0.9 {
            (4, VPos::Top)
        } else {
            (-4, VPos::Bottom)
        };
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((xr.1, y))
                    + Text::new(
                        label.to_owned(),
                        (-6, dy),
                        font(12.0).color(&grey).pos(Pos::new(HPos::Right, v)),
                    ),
            ))
            .map_err(draw_err)?;
    }
    let sorted: Vec<Vec<BandPoint>> = series
        .iter()
        .map(|s| {
            let mut pts: Vec<BandPoint> = s
                .points
                .iter()
                .filter(|p| p.x.is_finite())
                .copied()
                .collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            pts
        })
        .collect();
    // All bands first, so no band veils another series' line.
    for (s, pts) in series.iter().zip(&sorted) {
        let bounded = |p: &BandPoint| p.lo.is_finite() && p.hi.is_finite();
        for run in pts.split(|p| !bounded(p)).filter(|r| !r.is_empty()) {
            if let [p] = run {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(p.x, p.lo), (p.x, p.hi)],
                        s.colour.mix(0.45).stroke_width(3),
                    )))
                    .map_err(draw_err)?;
                continue;
            }
            let outline: Vec<(f64, f64)> = run
                .iter()
                .map(|p| (p.x, p.lo))
                .chain(run.iter().rev().map(|p| (p.x, p.hi)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    s.colour.mix(0.2).filled(),
                )))
                .map_err(draw_err)?;
        }
    }
    for (s, pts) in series.iter().zip(&sorted) {
        let colour = s.colour;
        // The legend shows the band's swatch only for a series with a band.
        let swatch = if pts.iter().any(|p| p.lo.is_finite() && p.hi.is_finite()) {
            0.2
        } else {
            0.0
        };
        let line: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.mean.is_finite())
            .map(|p| (p.x, p.mean))
            .collect();
        chart
            .draw_series(LineSeries::new(
                line.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label(s.name)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + Rectangle::new([(0, -6), (20, 6)], colour.mix(swatch).filled())
                    + PathElement::new(vec![(0, 0), (20, 0)], colour.stroke_width(2))
            });
        if line.len() <= 200 {
            chart
                .draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(draw_err)?;
        }
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .position(quietest_corner(&sorted, reference.map(|r| r.0), xr, yr))
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

/// The corner of the plot with the fewest finite values (means and bounds) in its outer 40 % of
/// the x range and 35 % of the y range, never the right corner holding the reference's label;
/// upper left, upper right, lower left, lower right when tied.
fn quietest_corner(
    series: &[Vec<BandPoint>],
    reference: Option<f64>,
    xr: (f64, f64),
    yr: (f64, f64),
) -> SeriesLabelPosition {
    let (xw, yw) = (xr.1 - xr.0, yr.1 - yr.0);
    let corners = [
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerLeft, false, false),
        (SeriesLabelPosition::LowerRight, true, false),
    ];
    let in_y = |v: f64, upper: bool| {
        let fy = (v - yr.0) / yw;
        v.is_finite() && if upper { fy >= 0.65 } else { fy <= 0.35 }
    };
    // (holds the reference's label, values inside): the smallest wins.
    let crowding = |right: bool, upper: bool| {
        let label = right && reference.is_some_and(|y| in_y(y, upper));
        let values = series
            .iter()
            .flatten()
            .filter(|p| {
                let fx = (p.x - xr.0) / xw;
                if right {
                    fx >= 0.6
                } else {
                    fx <= 0.4
                }
            })
            .flat_map(|p| [p.mean, p.lo, p.hi])
            .filter(|&v| in_y(v, upper))
            .count();
        (label, values)
    };
    corners
        .into_iter()
        .min_by_key(|&(_, right, upper)| crowding(right, upper))
        .map_or(SeriesLabelPosition::UpperLeft, |c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::tests::{decode, dump, richness};

    /// A rising accuracy curve over `n` steps with a band of half-width `spread`.
    fn band(name: &str, n: usize, top: f64, spread: f64) -> Band<String> {
        Band {
            name: name.to_owned(),
            points: (0..n)
                .map(|i| {
                    let x = (i + 1) as f64 * 10.0;
                    let mean = 0.111 + (top - 0.111) * (1.0 - (-(i as f64) / 3.0).exp());
                    BandPoint {
                        x,
                        mean,
                        lo: mean - spread * (1.0 + i as f64 * 0.1),
                        hi: mean + spread,
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn bands_decode_with_size_colours_and_a_reference() {
        let mut gappy = band("mvae", 9, 0.6, 0.05);
        gappy.points[3].lo = f64::NAN;
        gappy.points[6].hi = f64::INFINITY;
        gappy.points[1].mean = f64::NAN;
        let nan_only = Band {
            name: "broken".to_owned(),
            points: vec![BandPoint {
                x: f64::NAN,
                mean: 1.0,
                lo: 0.0,
                hi: 2.0,
            }],
        };
        let series = vec![band("mmvae", 9, 0.9, 0.04), gappy, nan_only];
        let png = bands_png(
            "latent accuracy against epochs",
            "epoch",
            "accuracy",
            &series,
            Some((0.111, "chance 0.111")),
            (800, 560),
        )
        .unwrap();
        dump("bands.png", &png);
        let img = decode(&png);
        assert_eq!(img.dimensions(), (800, 560));
        let (colours, ink) = richness(&img);
        assert!(colours > 20 && ink > 5000, "{colours} colours, {ink} ink");
        for k in 0..2 {
            let RGBColor(r, g, b) = palette(k);
            assert!(img.pixels().any(|p| p.0 == [r, g, b]), "line {k} missing");
        }
        // The band: palette(0) at alpha 0.2 over white.
        let RGBColor(r, g, b) = palette(0);
        let tint = |c: u8| (f64::from(c) * 0.2 + 255.0 * 0.8) as i32;
        let (tr, tg, tb) = (tint(r), tint(g), tint(b));
        assert!(
            img.pixels().any(|p| (i32::from(p.0[0]) - tr).abs() <= 2
                && (i32::from(p.0[1]) - tg).abs() <= 2
                && (i32::from(p.0[2]) - tb).abs() <= 2),
            "band tint missing"
        );
    }

    #[test]
    fn bands_without_bounds_or_series_still_draw() {
        let mut lines = band("lines only", 5, 0.5, 0.0);
        for p in &mut lines.points {
            p.lo = f64::NAN;
            p.hi = f64::NAN;
        }
        let png = bands_png("no bounds", "x", "y", &[lines], None, (400, 300)).unwrap();
        dump("bands-lines.png", &png);
        assert_eq!(decode(&png).dimensions(), (400, 300));
        let empty: Vec<Band<&str>> = Vec::new();
        let png = bands_png("nothing", "x", "y", &empty, Some((0.5, "ref")), (300, 200)).unwrap();
        dump("bands-empty.png", &png);
        assert_eq!(decode(&png).dimensions(), (300, 200));
    }

    #[test]
    fn grid_tiles_panels_with_shared_colours() {
        let panel = |title: &str, series: Vec<Band<String>>| BandPanel {
            title: title.to_owned(),
            x_label: "epoch".to_owned(),
            y_label: "accuracy".to_owned(),
            series,
            reference: Some((0.111, "chance".to_owned())),
        };
        let panels = vec![
            panel(
                "oscn",
                vec![band("mmvae", 8, 0.9, 0.04), band("mvae", 8, 0.6, 0.06)],
            ),
            panel(
                "cub",
                vec![band("mvae", 8, 0.5, 0.03), band("vae", 8, 0.3, 0.02)],
            ),
            panel("polymnist", vec![band("vae", 6, 0.7, 0.05)]),
        ];
        let png = bands_grid_png(&panels, 2, (460, 340)).unwrap();
        dump("bands-grid.png", &png);
        let img = decode(&png);
        assert_eq!(img.dimensions(), (920, 680));
        // mvae is palette(1) in both panels, vae palette(2): the left panel of the second row
        // (polymnist) draws vae's colour.
        let RGBColor(r, g, b) = palette(2);
        let in_third = (340..680)
            .flat_map(|y| (0..460).map(move |x| (x, y)))
            .any(|(x, y)| img.get_pixel(x, y).0 == [r, g, b]);
        assert!(in_third, "vae's colour missing from the third panel");
        let RGBColor(r, g, b) = palette(0);
        let mmvae_elsewhere = (0..680)
            .flat_map(|y| (460..920).map(move |x| (x, y)))
            .any(|(x, y)| img.get_pixel(x, y).0 == [r, g, b]);
        assert!(!mmvae_elsewhere, "mmvae's colour in a panel without mmvae");
        assert!(bands_grid_png(&[], 2, (300, 200)).is_err());
        assert!(bands_grid_png(&panels, 0, (300, 200)).is_err());
        assert!(bands_grid_png(&panels, 1, (300, 10_000)).is_err());
        let png = bands_grid_png(&panels[..1], 4, (300, 200)).unwrap();
        assert_eq!(decode(&png).dimensions(), (300, 200));
    }
}
