//! Memory estimates, checked before anything large is allocated.
//!
//! A config that asks for more memory than the machine has should be refused with a one-line
//! error that names the field responsible and the estimate, not end in an allocation abort
//! (exit 134) or hours of swapping. [`training_estimate`] estimates a training run from its
//! config alone (no tensor is allocated); [`check`] compares an estimate with the memory the
//! operating system says is available.

use std::fmt;

use crate::RunConfig;
use rensou_api::{Error, Result};
use rensou_model::nn::{layer_parameters, layer_units, NetConfig};

/// Bytes of one `f32`.
const F32: u64 = 4;
/// Copies of every parameter while training: the value, its gradient, Adam's two moments,
/// AMSGrad's running maximum and the record written with a checkpoint.
const PARAM_COPIES: u64 = 6;
/// Buffers of the size of the decoder outputs alive at once in a training step: the output
/// logits, the clamped sigmoid, the likelihood terms, and their gradients (measured: the paper's
/// MMVAE at K = 20 peaks near this).
const OUTPUT_BUFFERS: u64 = 8;
/// Buffers per hidden activation: the activation, its ReLU mask and gradient, and a spare.
const HIDDEN_BUFFERS: u64 = 4;

/// An estimate of the peak memory of some work, by component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Components: what, bytes, and the config field that controls it.
    pub parts: Vec<Part>,
}

/// One component of an [`Estimate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// What it holds (`parameters and optimizer state`).
    pub what: String,
    /// Bytes.
    pub bytes: u64,
    /// The config field that controls it (`model.latent_dim`).
    pub field: String,
}

impl Estimate {
    /// Adds a component.
    pub fn add(&mut self, what: impl Into<String>, bytes: u64, field: impl Into<String>) {
        self.parts.push(Part {
            what: what.into(),
            bytes,
            field: field.into(),
        });
    }

    /// Total bytes (saturating).
    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |acc, p| acc.saturating_add(p.bytes))
    }

    /// The largest component.
    pub fn largest(&self) -> Option<&Part> {
        self.parts.iter().max_by_key(|p| p.bytes)
    }
}

/// Bytes as a human-readable size (`1.9 GB`, `512.0 MB`).
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if b >= 1e12 {
            write!(f, "{:.1} TB", b / 1e12)
        } else if b >= 1e9 {
            write!(f, "{:.1} GB", b / 1e9)
        } else if b >= 1e6 {
            write!(f, "{:.1} MB", b / 1e6)
        } else {
            write!(f, "{:.1} kB", b / 1e3)
        }
    }
}

/// The environment variable that overrides the available memory.
pub const MEMORY_LIMIT_ENV: &str = "RENSOU_MEMORY_LIMIT";

/// Memory the operating system can give this process now, in bytes: `MemAvailable` from
/// `/proc/meminfo` (Linux), or `None` where it cannot be read. `RENSOU_MEMORY_LIMIT` (bytes, or
/// a size such as `8G`, `500M`, `2GB`, `1.5GiB`; see [`parse_size`]) overrides it, e.g. to
/// check a config against a smaller machine; a value that is not a size is an error, never
/// ignored.
pub fn available_bytes() -> Result<Option<u64>> {
    if let Ok(value) = std::env::var(MEMORY_LIMIT_ENV) {
        return parse_size(&value).map(Some).map_err(|why| {
            Error::config(
                MEMORY_LIMIT_ENV,
                format!("`{value}` is not a memory size ({why}; e.g. 8G, 500M or 2000000000)"),
            )
        });
    }
    Ok(std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_meminfo(&text)))
}

/// Parses a memory size: a number of bytes, or a number (decimals allowed) with a unit:
/// `K`, `M`, `G`, `T` and `KiB` ... `TiB` are powers of 1024 (as Slurm's `--mem`), `kB`, `MB`,
/// `GB`, `TB` powers of 1000, `B` bytes. Zero is refused.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    if number.is_empty() {
        return Err("no number".into());
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let scale: f64 = match unit {
        "" | "B" | "b" => 1.0,
        "k" | "K" | "KiB" | "kiB" => 1024.0,
        "M" | "m" | "MiB" => 1024f64.powi(2),
        "G" | "g" | "GiB" => 1024f64.powi(3),
        "T" | "t" | "TiB" => 1024f64.powi(4),
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        other => return Err(format!("unknown unit `{other}`")),
    };
    let bytes = value * scale;
    if bytes.is_nan() || bytes < 1.0 || !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err("must be at least one byte".into());
    }
    Ok(bytes as u64)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("MemAvailable:")?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb.saturating_mul(1024))
    })
}

/// Refuses `estimate` for `work` when it exceeds the available memory (see
/// [`available_bytes`]); the error names the largest component's field and the estimate.
pub fn check(work: &str, estimate: &Estimate) -> Result<()> {
    let Some(available) = available_bytes()? else {
        return Ok(());
    };
    check_against(work, estimate, available)
}

/// [`check`] against a given amount of available memory.
pub fn check_against(work: &str, estimate: &Estimate, available: u64) -> Result<()> {
    let total = estimate.total();
    if total <= available {
        return Ok(());
    }
    let (field, detail) = match estimate.largest() {
        Some(p) => (
            p.field.clone(),
            format!("{} of it {}", Bytes(p.bytes), p.what),
        ),
        None => ("memory".to_owned(), String::new()),
    };
    Err(Error::Memory {
        field,
        message: format!(
            "{work} needs about {} of memory ({detail}), more than the {} available",
            Bytes(total),
            Bytes(available)
        ),
    })
}

/// Parameters of one modality's encoder and decoder, for items of `features` values (and
/// `item_shape`) and latents of `latent` values.
pub fn net_parameters(net: &NetConfig, item_shape: &[usize], latent: u64) -> u64 {
    let features: u64 = item_shape.iter().map(|&d| d as u64).product();
    match net {
        NetConfig::Mlp(mlp) => {
            let layer = |i: u64, o: u64| i.saturating_mul(o).saturating_add(o);
            let hidden: Vec<u64> = mlp.hidden.iter().map(|&h| h as u64).collect();
            let (first, last) = match (hidden.first(), hidden.last()) {
                (Some(&f), Some(&l)) => (f, l),
                _ => (features, features),
            };
            let between: u64 = hidden
                .windows(2)
                .map(|w| layer(w[0], w[1]))
                .fold(0, u64::saturating_add);
            // Encoder: features -> hidden..., two heads (location, scale); decoder: latent ->
            // the hidden widths reversed -> features.
            let encoder = layer(features, first)
                .saturating_add(between)
                .saturating_add(layer(last, latent).saturating_mul(2));
            let decoder = layer(latent, last)
                .saturating_add(between)
                .saturating_add(layer(first, features));
            encoder.saturating_add(decoder)
        }
        NetConfig::Conv2d(conv) => {
            let k2 = (conv.kernel as u64).saturating_mul(conv.kernel as u64);
            let channels_in = item_shape.last().map_or(1, |&c| c as u64);
            let mut chans = vec![channels_in];
            chans.extend(conv.channels.iter().map(|&c| c as u64));
            let body: u64 = chans
                .windows(2)
                .map(|w| w[0].saturating_mul(w[1]).saturating_mul(k2))
                .fold(0, u64::saturating_add);
            let last = *chans.last().unwrap_or(&channels_in);
            let heads = 2 * last.saturating_mul(latent).saturating_mul(k2);
            body.saturating_mul(2)
                .saturating_add(heads.saturating_mul(2))
                .saturating_add(features)
        }
        NetConfig::Conv1d(conv) => {
            let k = conv.kernel as u64;
            let (channels_in, mut length) = match item_shape {
                [c, l] => (*c as u64, *l as u64),
                _ => (1, features),
            };
            let mut chans = vec![channels_in];
            chans.extend(conv.channels.iter().map(|&c| c as u64));
            let body: u64 = chans
                .windows(2)
                .map(|w| w[0].saturating_mul(w[1]).saturating_mul(k))
                .fold(0, u64::saturating_add);
            for _ in &conv.channels {
                length = (length / conv.stride.max(1) as u64).max(1);
            }
            let flat = chans.last().map_or(1, |&c| c.saturating_mul(length));
            // Encoder: body + two linear heads; decoder: a linear input + the mirrored body.
            let heads = 3 * flat.saturating_mul(latent);
            body.saturating_mul(2)
                .saturating_add(heads)
                .saturating_add(features)
        }
        NetConfig::Plugin(design) => {
            let latent_dim = latent as usize;
            let encoder = design.encoder(item_shape, latent_dim).map_or(0, |l| {
                let flat = rensou_model::nn::infer_shapes("net", &l, item_shape)
                    .ok()
                    .and_then(|s| s.last().map(|x| x.iter().product::<usize>() as u64))
                    .unwrap_or(features);
                layer_parameters(&l, item_shape)
                    .saturating_add(2 * (flat + 1).saturating_mul(latent))
            });
            let decoder = design
                .decoder(item_shape, latent_dim)
                .map_or(0, |l| layer_parameters(&l, &[latent_dim]));
            encoder.saturating_add(decoder)
        }
    }
}

/// Activations per decoded latent sample (hidden units) of a net.
fn hidden_units(net: &NetConfig, item_shape: &[usize]) -> u64 {
    match net {
        NetConfig::Mlp(mlp) => mlp.hidden.iter().map(|&h| h as u64).sum(),
        NetConfig::Conv2d(conv) => {
            // Feature maps shrink by the stride at each layer.
            let (mut h, mut w) = (
                item_shape.first().map_or(1, |&d| d as u64),
                item_shape.get(1).map_or(1, |&d| d as u64),
            );
            let mut units = 0u64;
            for &c in &conv.channels {
                h = (h / conv.stride.max(1) as u64).max(1);
                w = (w / conv.stride.max(1) as u64).max(1);
                units = units.saturating_add(h.saturating_mul(w).saturating_mul(c as u64));
            }
            units
        }
        NetConfig::Plugin(design) => design
            .decoder(item_shape, 1)
            .map_or(0, |l| layer_units(&l, &[1])),
        NetConfig::Conv1d(conv) => {
            let mut length = item_shape.last().map_or(1, |&d| d as u64);
            let mut units = 0u64;
            for &c in &conv.channels {
                length = (length / conv.stride.max(1) as u64).max(1);
                units = units.saturating_add(length.saturating_mul(c as u64));
            }
            units
        }
    }
}

/// Parameters of every modality's encoder and decoder.
fn model_parameters(model: &rensou_model::mmvae::MmvaeConfig) -> u64 {
    let latent = model.net_latent_dim() as u64;
    model
        .modalities
        .iter()
        .map(|s| net_parameters(&s.net, &s.item_shape, latent))
        .fold(0, u64::saturating_add)
}

/// The config field that makes a model's parameters large: `model.latent_dim` when the
/// latent-sized layers hold most of them, else the largest net's own size (`model.net.hidden`
/// of an MLP, `model.net.channels` of a CNN, `model.net` of a plugin net).
fn parameter_field(model: &rensou_model::mmvae::MmvaeConfig) -> String {
    let latent = model.net_latent_dim() as u64;
    let mut largest: Option<(u64, &rensou_model::mmvae::ModalityNetConfig)> = None;
    let (mut total, mut at_one) = (0u64, 0u64);
    for s in &model.modalities {
        let p = net_parameters(&s.net, &s.item_shape, latent);
        total = total.saturating_add(p);
        at_one = at_one.saturating_add(net_parameters(&s.net, &s.item_shape, 1));
        if largest.is_none_or(|(q, _)| p > q) {
            largest = Some((p, s));
        }
    }
    // Parameters that grow with the latent size, against those that do not.
    if total.saturating_sub(at_one) >= at_one {
        return "model.latent_dim".into();
    }
    match largest.map(|(_, s)| &s.net) {
        Some(NetConfig::Mlp(_)) => "model.net.hidden".into(),
        Some(NetConfig::Conv2d(_) | NetConfig::Conv1d(_)) => "model.net.channels".into(),
        _ => "model.net".into(),
    }
}

/// Estimates the memory of a model's parameters (inference: no optimizer state, no
/// activations beyond a chunk of items).
pub fn model_estimate(model: &rensou_model::mmvae::MmvaeConfig) -> Estimate {
    let params = model_parameters(model);
    let mut e = Estimate::default();
    e.add(
        "parameters",
        params.saturating_mul(F32 * 2),
        parameter_field(model),
    );
    e
}

/// Estimates the peak memory of training `config` on `pairs` pairs (train + test, kept as bytes).
///
/// Counts the parameters with their optimizer state, the activations of one step (every
/// modality's `K x batch` samples decoded by every decoder, the largest term), and the data.
/// Deliberately on the high side: the paper's MMVAE at K = 20 (measured peak 1.85 GB with
/// 288,000 pairs) is estimated at about 3 GB.
pub fn training_estimate(config: &RunConfig, pairs: u64) -> Estimate {
    let model = &config.model;
    let t = &config.training;
    let latent = model.net_latent_dim() as u64;
    let m = model.modalities.len() as u64;
    // Sample blocks each decoder decodes per step (the mixture of experts: one per modality).
    let blocks = model
        .fusion_design()
        .map_or(m, |d| d.decoded_blocks(model.modalities.len()) as u64);
    let params = model_parameters(model);
    let mut e = Estimate::default();
    e.add(
        "parameters and optimizer state",
        params.saturating_mul(F32 * PARAM_COPIES),
        parameter_field(model),
    );
    // Every block of K x batch samples goes through its decoders (moe: every encoder's
    // samples through every decoder).
    let rows = blocks
        .saturating_mul(t.k as u64)
        .saturating_mul(t.batch_size.min(pairs.max(1) as usize) as u64);
    let outputs: u64 = model
        .modalities
        .iter()
        .map(|s| s.features() as u64)
        .fold(0, u64::saturating_add);
    let hidden: u64 = model
        .modalities
        .iter()
        .map(|s| hidden_units(&s.net, &s.item_shape))
        .fold(0, u64::saturating_add);
    let per_row = outputs
        .saturating_mul(OUTPUT_BUFFERS)
        .saturating_add(hidden.saturating_mul(HIDDEN_BUFFERS));
    e.add(
        format!(
            "activations of one step ({} samples per modality x batch {})",
            t.k, t.batch_size
        ),
        rows.saturating_mul(per_row).saturating_mul(F32),
        "training.k",
    );
    // The latent samples, their log-densities under every posterior and their gradients.
    e.add(
        "latent samples of one step",
        rows.saturating_mul(latent)
            .saturating_mul(m.saturating_add(3))
            .saturating_mul(F32),
        "model.latent_dim",
    );
    e.add(
        "the dataset in memory",
        pairs.saturating_mul(outputs),
        "data.file",
    );
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_with_units_and_garbage_is_refused() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size(" 8G "), Ok(8 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("500 MB"), Ok(500_000_000));
        for bad in ["abc", "", "0", "12Q", "-5", "1.2.3G", "G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
    use crate::{DataConfig, TrainingConfig};
    use rensou_model::mmvae::{MmvaeConfig, ModalityNetConfig};

    fn paper(k: usize, latent: usize) -> RunConfig {
        let mut model = MmvaeConfig::new(vec![
            ModalityNetConfig::new("oscn", vec![32, 32, 3]),
            ModalityNetConfig::new("cmnist", vec![28, 28, 3]),
        ]);
        model.latent_dim = latent;
        RunConfig {
            data: DataConfig {
                file: "x.h5".into(),
                modalities: vec!["oscn".into(), "cmnist".into()],
            },
            model,
            training: TrainingConfig {
                k,
                ..TrainingConfig::default()
            },
        }
    }

    #[test]
    fn paper_mlp_parameter_count_matches_the_nets() {
        // OSCN encoder: 3072*400+400 + 3*(400*400+400) + 2*(400*20+20);
        // decoder: 20*400+400 + 3*(400*400+400) + 400*3072+3072.
        let enc = 3072 * 400 + 400 + 3 * (400 * 400 + 400) + 2 * (400 * 20 + 20);
        let dec = 20 * 400 + 400 + 3 * (400 * 400 + 400) + 400 * 3072 + 3072;
        let net = NetConfig::default();
        assert_eq!(net_parameters(&net, &[32, 32, 3], 20), enc + dec);
    }

    #[test]
    fn the_paper_run_fits_and_huge_settings_do_not() {
        let fits = training_estimate(&paper(20, 20), 288_000);
        assert!(fits.total() > 1_000_000_000, "{fits:?}");
        assert!(fits.total() < 6_000_000_000, "{fits:?}");
        check_against("training", &fits, 24_000_000_000).unwrap();

        let huge_k = training_estimate(&paper(1_000_000, 20), 288_000);
        let err = check_against("training", &huge_k, 24_000_000_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("training.k"), "{err}");
        assert!(err.contains("TB"), "{err}");

        let huge_latent = training_estimate(&paper(20, 10_000_000), 288_000);
        let err = check_against("training", &huge_latent, 24_000_000_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.latent_dim"), "{err}");

        // A huge hidden width is named as such, not as the latent size.
        let mut wide = paper(20, 20);
        for m in &mut wide.model.modalities {
            m.net = NetConfig::Mlp(rensou_model::nn::MlpNet {
                hidden: vec![20_000_000],
                ..Default::default()
            });
        }
        let err = check_against(
            "training",
            &training_estimate(&wide, 288_000),
            24_000_000_000,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lower `model.net.hidden`"), "{err}");
    }

    #[test]
    fn meminfo_is_parsed() {
        let text = "MemTotal:       24000000 kB\nMemFree: 1 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(parse_meminfo(text), Some(20_000_000 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(Bytes(1_900_000_000).to_string(), "1.9 GB");
        assert_eq!(Bytes(512_000_000).to_string(), "512.0 MB");
        assert_eq!(Bytes(3_000_000_000_000).to_string(), "3.0 TB");
    }
}
