//! Test doubles: a model whose latent is the code `[number, colour]`, a linear "decoder" that
//! writes the code into the item, and classifiers that read it back.
//!
//! Shared by the probe plugins' tests (arithmetic, coherence), which include this file as
//! `#[path = "../../testing/probe_fakes.rs"] mod common;`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use rensou_api::modality::Split;
use rensou_api::probe::{Classifiers, Latents, ModelView, ProbeData};
use rensou_api::rng::mix64;
use rensou_api::{Error, ItemSet, Result};

/// Uniform in `[0, 1)` from a seed and a counter.
pub fn unit(seed: u64, i: u64) -> f32 {
    (mix64(seed ^ mix64(i)) >> 40) as f32 / (1u64 << 24) as f32
}

/// Item shapes of the fake modalities.
pub fn shape_of(modality: &str) -> Option<Vec<usize>> {
    match modality {
        "oscn" => Some(vec![4, 4, 3]),
        "cmnist" => Some(vec![4, 4, 1]),
        "audio" => Some(vec![16]),
        _ => None,
    }
}

/// The fake model.
pub struct FakeModel {
    /// Modality names.
    pub modalities: Vec<String>,
    /// Maps (modality, number) to the number its decoder writes (the identity when exact).
    pub number_map: fn(&str, i64) -> i64,
    /// Half-width of the uniform jitter `sample_at` adds to the number coordinate.
    pub jitter: f32,
}

fn identity(_m: &str, n: i64) -> i64 {
    n
}

impl FakeModel {
    /// An exact fake with these modalities.
    pub fn exact(modalities: &[&str]) -> Self {
        FakeModel {
            modalities: modalities.iter().map(|s| (*s).to_owned()).collect(),
            number_map: identity,
            jitter: 0.0,
        }
    }

    fn item_len(&self, modality: &str) -> Result<usize> {
        Ok(self.item_shape(modality)?.iter().product())
    }
}

impl ModelView for FakeModel {
    fn modalities(&self) -> Vec<String> {
        self.modalities.clone()
    }
    fn latent_dim(&self) -> usize {
        2
    }
    fn item_shape(&self, modality: &str) -> Result<Vec<usize>> {
        shape_of(modality).ok_or_else(|| Error::Data(format!("no modality `{modality}`")))
    }
    fn encode(&self, modality: &str, items: &[u8]) -> Result<Latents> {
        let len = self.item_len(modality)?;
        let n = items.len() / len;
        let loc = items
            .chunks_exact(len)
            .flat_map(|it| [f32::from(it[0]) / 25.0, f32::from(it[1]) / 25.0])
            .collect();
        Ok(Latents {
            n,
            dim: 2,
            loc,
            scale: vec![1.0; n * 2],
        })
    }
    fn decode(&self, modality: &str, z: &[f32]) -> Result<Vec<f32>> {
        let len = self.item_len(modality)?;
        let mut out = Vec::with_capacity(z.len() / 2 * len);
        for row in z.chunks_exact(2) {
            let number = (self.number_map)(modality, row[0].round() as i64) as f32
                + (row[0] - row[0].round());
            let mut item = vec![0.0f32; len];
            item[0] = (number / 10.0).clamp(0.0, 1.0);
            item[1] = (row[1] / 10.0).clamp(0.0, 1.0);
            out.extend(item);
        }
        Ok(out)
    }
    fn sample_prior(&self, n: usize, seed: u64) -> Result<Vec<f32>> {
        Ok((0..n as u64)
            .flat_map(|i| {
                [
                    1.0 + (unit(seed, 2 * i) * 9.0).floor(),
                    (unit(seed, 2 * i + 1) * 4.0).floor(),
                ]
            })
            .collect())
    }
    fn sample_at(&self, loc: &[f32], n: usize, seed: u64) -> Result<Vec<f32>> {
        Ok((0..n as u64)
            .flat_map(|i| {
                let u = unit(seed, i) * 2.0 - 1.0;
                [loc[0] + self.jitter * u, loc[1]]
            })
            .collect())
    }
    fn describe(&self) -> String {
        "fake model".into()
    }
}

/// Classifiers that read the code back from the item.
pub struct FakeClassifiers;

impl Classifiers for FakeClassifiers {
    fn predict(&self, modality: &str, label: &str, items: &[f32]) -> Result<Vec<i64>> {
        let len: usize = shape_of(modality)
            .ok_or_else(|| Error::Data(format!("no modality `{modality}`")))?
            .iter()
            .product();
        let at = match label {
            "number" => 0,
            "colour" => 1,
            "shape" => 2,
            other => return Err(Error::Data(format!("no classifier for `{other}`"))),
        };
        Ok(items
            .chunks_exact(len)
            .map(|it| (it[at] * 10.0).round() as i64)
            .collect())
    }
    fn accuracy(&self, _modality: &str, _label: &str) -> Result<f64> {
        Ok(0.97)
    }
}

/// Test split: `per_class` items per (number 1..=9, colour 0..=3) of every modality, row i a
/// pair; latents are the code plus a within-class offset that averages out.
pub fn data(modalities: &[&str], per_class: usize) -> (ProbeData, BTreeMap<String, Latents>) {
    let mut sets = BTreeMap::new();
    let mut latents = BTreeMap::new();
    for &m in modalities {
        let shape = shape_of(m).unwrap_or_else(|| vec![4]);
        let len: usize = shape.iter().product();
        let mut set = ItemSet::new(shape, &["number", "colour"]);
        let mut loc = Vec::new();
        for number in 1..=9i64 {
            for colour in 0..4i64 {
                for k in 0..per_class {
                    let mut item = vec![0u8; len];
                    item[0] = (number * 25) as u8;
                    item[1] = (colour * 25) as u8;
                    set.push(&item, &[("number", number), ("colour", colour)])
                        .unwrap_or_else(|e| panic!("{e}"));
                    let offset = if k % 2 == 0 { 0.2 } else { -0.2 };
                    loc.extend([number as f32 + offset, colour as f32]);
                }
            }
        }
        let n = set.len();
        latents.insert(
            m.to_owned(),
            Latents {
                n,
                dim: 2,
                loc,
                scale: vec![1.0; n * 2],
            },
        );
        sets.insert(m.to_owned(), set);
    }
    (
        ProbeData {
            split: Split::Test,
            sets,
            label_specs: BTreeMap::new(),
        },
        latents,
    )
}

/// Whether `path` is a PNG file.
pub fn is_png(path: &std::path::Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

/// A fresh temporary directory.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}
