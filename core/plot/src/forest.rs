//! Forest plots: one effect size with its interval per row, against a reference line at zero
//! (the verdicts of a study against the paper's claims).

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use rensou_api::Result;

use crate::draw::{draw_err, font, padded_range, render, snap, tick, titled};

/// Height of one row of [`forest_png`] in pixels when the height is automatic.
pub const FOREST_ROW_HEIGHT: u32 = 28;

/// Height of a [`forest_png`] figure besides its rows (title, axis) when the height is
/// automatic.
pub const FOREST_CHROME_HEIGHT: u32 = 100;

/// Font size of row labels and notes.
const TEXT_SIZE: f64 = 13.0;

/// One row of a forest plot.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestRow {
    /// Written left of the row, e.g. `1 number separability · oscn · mmvae vs vae`.
    pub label: String,
    /// The effect size, drawn as a marker; non-finite draws `n/a` instead.
    pub estimate: f64,
    /// Lower end of the interval; the interval is drawn only when both ends are finite.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
    /// How the row is drawn.
    pub style: ForestStyle,
    /// Short text written right of the row, e.g. `reproduced` (may be empty).
    pub note: String,
}

/// How a row of a forest plot is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForestStyle {
    /// A favourable result: green.
    Positive,
    /// An unfavourable result: red.
    Negative,
    /// Neither: dark grey.
    Neutral,
    /// A result that cannot be judged: light grey, hollow marker, greyed label.
    Muted,
}

impl ForestStyle {
    /// The marker, interval and note colour.
    fn colour(self) -> RGBColor {
        match self {
            ForestStyle::Positive => RGBColor(34, 139, 34),
            ForestStyle::Negative => RGBColor(214, 39, 40),
            ForestStyle::Neutral => RGBColor(70, 70, 70),
            ForestStyle::Muted => RGBColor(170, 170, 170),
        }
    }

    /// The colour of the row's label and note text (muted text stays readable).
    fn text_colour(self) -> RGBColor {
        match self {
            ForestStyle::Muted => RGBColor(125, 125, 125),
            _ => RGBColor(0, 0, 0),
        }
    }
}

/// A forest plot: one horizontal row per entry of `rows`, top to bottom in the given order, each
/// with its label on the left, its interval (`lo..hi`, a line with end ticks) and estimate (a
/// square marker) in the middle, and its note on the right; a dashed grey reference line at
/// `x = 0` and the x axis titled `x_label` at the bottom.
///
/// Colours follow [`ForestStyle`]. A row with a non-finite estimate shows `n/a` by the reference
/// line; one with a non-finite `lo` or `hi` shows its marker only. The x range covers every
/// finite `lo`, `hi` and estimate, and 0. The label and note columns are as wide as their longest
/// text, up to about half and a third of the width (longer texts are shortened with `…`).
///
/// `size` is `(width, height)` in pixels; a height of 0 is automatic:
/// [`FOREST_CHROME_HEIGHT`] plus [`FOREST_ROW_HEIGHT`] per row. No rows draws the title and an
/// empty axis.
pub fn forest_png(
    title: &str,
    x_label: &str,
    rows: &[ForestRow],
    size: (u32, u32),
) -> Result<Vec<u8>> {
    let size = if size.1 == 0 {
        let h = u64::from(FOREST_CHROME_HEIGHT) + u64::from(FOREST_ROW_HEIGHT) * rows.len() as u64;
        (size.0, u32::try_from(h).unwrap_or(u32::MAX))
    } else {
        size
    };
    let xr = padded_range(
        rows.iter()
            .flat_map(|r| [r.estimate, r.lo, r.hi])
            .chain(std::iter::once(0.0)),
        0.05,
    );
    let n = rows.len().max(1);
    render(size, |root| {
        let area = titled(root, title, 20.0)?;
        let (w, _) = area.dim_in_pixel();
        let labels = shortened(&area, rows.iter().map(|r| r.label.as_str()), w / 2)?;
        let notes = shortened(&area, rows.iter().map(|r| r.note.as_str()), w / 3)?;
        let label_w = widest(&area, &labels)?;
        let note_w = widest(&area, &notes)?;
        let mut chart = ChartBuilder::on(&area)
            .margin_top(6)
            .margin_bottom(10)
            .margin_left(label_w + 22)
            .margin_right(note_w + 22)
            .x_label_area_size(45)
            .build_cartesian_2d(xr.0..xr.1, 0.0..n as f64)
            .map_err(draw_err)?;
        // Row r is centred at y = n - r - 0.5: row 0 on top.
        let centre = |r: usize| (n - r) as f64 - 0.5;
        // Every other row shaded across the whole width, to lead the eye from label to note.
        let (x_left, _) = chart.backend_coord(&(xr.0, 0.0));
        let (x_right, _) = chart.backend_coord(&(xr.1, 0.0));
        let (left, right) = (x_left - label_w as i32 - 16, x_right + note_w as i32 + 16);
        for r in (0..rows.len()).step_by(2) {
            let (_, top) = chart.backend_coord(&(xr.0, centre(r) + 0.5));
            let (_, bottom) = chart.backend_coord(&(xr.0, centre(r) - 0.5));
            root.draw(&Rectangle::new(
                [(left, top), (right, bottom)],
                RGBColor(244, 244, 246).filled(),
            ))
            .map_err(draw_err)?;
        }
        let (pw, _) = chart.plotting_area().dim_in_pixel();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels((pw / 70).max(2) as usize)
            .x_label_formatter(&|v| tick(&snap(*v, xr.1 - xr.0)))
            .x_desc(x_label)
            .axis_desc_style(font(15.0))
            .label_style(font(12.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (0.0, n as f64)],
                6,
                4,
                RGBColor(120, 120, 120).stroke_width(1),
            ))
            .map_err(draw_err)?;
        for (r, row) in rows.iter().enumerate() {
            let y = centre(r);
            let colour = row.style.colour();
            let text_colour = row.style.text_colour();
            let text = font(TEXT_SIZE).color(&text_colour);
            let (xl, yc) = chart.backend_coord(&(xr.0, y));
            root.draw_text(
                &labels[r],
                &text.pos(Pos::new(HPos::Right, VPos::Center)),
                (xl - 12, yc),
            )
            .map_err(draw_err)?;
            let (xn, _) = chart.backend_coord(&(xr.1, y));
            let note_style = if row.style == ForestStyle::Muted {
                text.clone()
            } else {
                font(TEXT_SIZE).color(&colour)
            };
            root.draw_text(
                &notes[r],
                &note_style.pos(Pos::new(HPos::Left, VPos::Center)),
                (xn + 12, yc),
            )
            .map_err(draw_err)?;
            draw_row(&mut chart, row, y, colour)?;
        }
        Ok(())
    })
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The interval, its end ticks and the marker of one row centred at `y`.
fn draw_row(chart: &mut Chart<'_, '_>, row: &ForestRow, y: f64, colour: RGBColor) -> Result<()> {
    if !row.estimate.is_finite() {
        let grey = font(12.0).color(&RGBColor(120, 120, 120));
        return chart
            .draw_series(std::iter::once(
                EmptyElement::at((0.0, y))
                    + Text::new("n/a", (6, 0), grey.pos(Pos::new(HPos::Left, VPos::Center))),
            ))
            .map(|_| ())
            .map_err(draw_err);
    }
    if row.lo.is_finite() && row.hi.is_finite() {
        let (lo, hi) = (row.lo.min(row.hi), row.lo.max(row.hi));
        let stroke = colour.stroke_width(2);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(lo, y), (hi, y)],
                stroke,
            )))
            .map_err(draw_err)?;
        chart
            .draw_series([lo, hi].into_iter().map(|x| {
                EmptyElement::at((x, y)) + PathElement::new(vec![(0, -5), (0, 5)], stroke)
            }))
            .map_err(draw_err)?;
    }
    let half = 5;
    let marker: ShapeStyle = if row.style == ForestStyle::Muted {
        colour.stroke_width(2)
    } else {
        colour.filled()
    };
    chart
        .draw_series(std::iter::once(
            EmptyElement::at((row.estimate, y))
                + Rectangle::new([(-half, -half), (half, half)], WHITE.filled())
                + Rectangle::new([(-half, -half), (half, half)], marker),
        ))
        .map_err(draw_err)?;
    Ok(())
}

/// The texts, each shortened with `…` to at most `max` pixels wide at the row font size.
fn shortened<'t>(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    texts: impl Iterator<Item = &'t str>,
    max: u32,
) -> Result<Vec<String>> {
    let style = font(TEXT_SIZE);
    texts
        .map(|t| {
            let mut s = t.to_owned();
            let mut cut = false;
            loop {
                let shown = if cut { format!("{s}…") } else { s.clone() };
                let (w, _) = area.estimate_text_size(&shown, &style).map_err(draw_err)?;
                if w <= max || s.is_empty() {
                    return Ok(shown);
                }
                s.pop();
                cut = true;
            }
        })
        .collect()
}

/// Width in pixels of the widest of `texts` at the row font size (0 when none).
fn widest(area: &DrawingArea<BitMapBackend<'_>, Shift>, texts: &[String]) -> Result<u32> {
    let style = font(TEXT_SIZE);
    let mut widest = 0;
    for t in texts.iter().filter(|t| !t.is_empty()) {
        widest = widest.max(area.estimate_text_size(t, &style).map_err(draw_err)?.0);
    }
    Ok(widest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::tests::{decode, dump, richness};

    fn row(
        label: &str,
        estimate: f64,
        lo: f64,
        hi: f64,
        style: ForestStyle,
        note: &str,
    ) -> ForestRow {
        ForestRow {
            label: label.to_owned(),
            estimate,
            lo,
            hi,
            style,
            note: note.to_owned(),
        }
    }

    fn rows() -> Vec<ForestRow> {
        use ForestStyle::*;
        vec![
            row(
                "1 number separability · oscn · mmvae vs vae",
                0.42,
                0.18,
                0.66,
                Positive,
                "reproduced",
            ),
            row(
                "2 coherence · oscn · mmvae vs mvae",
                -0.31,
                -0.55,
                -0.02,
                Negative,
                "contradicted",
            ),
            row(
                "3 likelihood · cub · mmvae vs mvae",
                0.05,
                -0.2,
                0.3,
                Neutral,
                "inconclusive",
            ),
            row(
                "4 latent accuracy · oscn · mmvae",
                0.01,
                -0.4,
                0.38,
                Muted,
                "cannot be judged: at chance",
            ),
            row(
                "5 cross generation · oscn · mmvae vs vae",
                f64::NAN,
                f64::NAN,
                f64::NAN,
                Muted,
                "not run",
            ),
            row(
                "6 a point without an interval",
                1.1,
                f64::NAN,
                f64::INFINITY,
                Positive,
                "reproduced",
            ),
            row("7 reversed ends", -0.6, -0.1, -0.9, Negative, ""),
        ]
    }

    #[test]
    fn forest_decodes_with_auto_height_and_row_colours() {
        let rows = rows();
        let png = forest_png(
            "claims against the paper",
            "effect size (Cohen's d)",
            &rows,
            (900, 0),
        )
        .unwrap();
        dump("forest.png", &png);
        let img = decode(&png);
        let h = FOREST_CHROME_HEIGHT + FOREST_ROW_HEIGHT * rows.len() as u32;
        assert_eq!(img.dimensions(), (900, h));
        let (colours, ink) = richness(&img);
        assert!(colours > 20 && ink > 5000, "{colours} colours, {ink} ink");
        for style in [
            ForestStyle::Positive,
            ForestStyle::Negative,
            ForestStyle::Neutral,
            ForestStyle::Muted,
        ] {
            let RGBColor(r, g, b) = style.colour();
            assert!(
                img.pixels().any(|p| p.0 == [r, g, b]),
                "{style:?} colour missing"
            );
        }
    }

    #[test]
    fn forest_sized_empty_and_degenerate() {
        let png = forest_png("fixed", "d", &rows(), (640, 400)).unwrap();
        assert_eq!(decode(&png).dimensions(), (640, 400));
        // No rows: the title and an empty axis.
        let png = forest_png("nothing to show", "d", &[], (500, 0)).unwrap();
        dump("forest-empty.png", &png);
        assert_eq!(decode(&png).dimensions(), (500, FOREST_CHROME_HEIGHT));
        // Only non-finite values, and a label far too long for the width.
        let long = "a label that goes on and on ".repeat(8);
        let nan = vec![row(
            &long,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            ForestStyle::Neutral,
            "n/a",
        )];
        let png = forest_png("all missing", "d", &nan, (400, 0)).unwrap();
        dump("forest-nan.png", &png);
        assert_eq!(decode(&png).dimensions().0, 400);
        assert!(forest_png("too narrow", "d", &nan, (10, 0)).is_err());
        // Narrower than its columns and margins: a figure or an error, never a panic.
        for w in [40, 80, 120] {
            let _ = forest_png("narrow", "d", &rows(), (w, 0));
        }
    }
}
