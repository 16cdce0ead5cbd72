//! The magnitude figures: the distance matrix of the number means (heatmap) and distance against
//! |i − j| (mean, smallest and largest distance over the pairs with each gap).

use std::collections::BTreeMap;

use rensou_api::probe::ProbeContext;
use rensou_plot::{heatmap_png, lines_png};

use crate::magnitude::Magnitude;

/// A file-name-safe version of a modality name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `r` to three decimals, or "n/a".
fn fmt(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"))
}

/// Writes `magnitude_distances_<modality>.png` and `magnitude_gap_<modality>.png`; returns
/// their file names.
pub(crate) fn write(
    ctx: &ProbeContext<'_>,
    modality: &str,
    m: &Magnitude,
) -> rensou_api::Result<Vec<String>> {
    let stem = file_stem(modality);
    let k = m.numbers.len();
    let rows: Vec<Vec<f64>> = m
        .distances
        .chunks_exact(k.max(1))
        .map(<[f64]>::to_vec)
        .collect();
    let names: Vec<String> = m.numbers.iter().map(i64::to_string).collect();
    let heat = heatmap_png(
        &format!("{modality}: distances between per-number mean latents"),
        &rows,
        &names,
        &names,
    )?;
    let heat_file = format!("magnitude_distances_{stem}.png");
    ctx.write_file(&heat_file, &heat)?;

    let mut by_gap: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for (gap, dist) in m.pairs_by_gap() {
        by_gap.entry(gap as u64).or_default().push(dist);
    }
    let stat = |f: fn(&[f64]) -> f64| -> Vec<(f64, f64)> {
        by_gap.iter().map(|(&gap, d)| (gap as f64, f(d))).collect()
    };
    let series = vec![
        (
            "mean over pairs",
            stat(|d| d.iter().sum::<f64>() / d.len() as f64),
        ),
        (
            "smallest",
            stat(|d| d.iter().copied().fold(f64::INFINITY, f64::min)),
        ),
        (
            "largest",
            stat(|d| d.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        ),
    ];
    let lines = lines_png(
        &format!(
            "{modality}: |r| = {}, Spearman rho = {}",
            fmt(m.abs_pearson_r()),
            fmt(m.spearman_rho)
        ),
        "|i - j|",
        "distance between the means of i and j",
        &series,
    )?;
    let gap_file = format!("magnitude_gap_{stem}.png");
    ctx.write_file(&gap_file, &lines)?;
    Ok(vec![heat_file, gap_file])
}
