//! Scatter plots of points coloured by class, with a legend (t-SNE, PCA).

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use rensou_api::{Error, Result};

use crate::draw::{draw_err, font, padded_range, palette, render, tick, titled};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::tests::{decode, dump, richness};

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
}
