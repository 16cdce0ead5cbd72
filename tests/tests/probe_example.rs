//! The README's "Write your own probe" example, compiled and run here so it cannot rot: the
//! code between the markers must appear verbatim in README.md.

use std::collections::BTreeMap;

use rensou_core::modality::ItemSet;
use rensou_core::probe::{run_probes, Classifiers, Latents, ModelView, ProbeConfig, ProbeData};
use rensou_core::progress::NoProgress;
use rensou_core::Split;

// README-EXAMPLE-START
use rensou_core::probe::{ProbeContext, ProbePlugin};
use rensou_core::typetag; // the typetag macro expands to `typetag::...` paths
use serde::{Deserialize, Serialize};

/// Mean distance of each item's latent from the mean latent of its number class.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpreadProbe {
    /// Which label defines the classes.
    pub label: String,
}

#[typetag::serde(name = "spread")]
impl ProbeConfig for SpreadProbe {
    fn validate(&self) -> rensou_core::Result<()> {
        if self.label.is_empty() {
            return Err(rensou_core::Error::config(
                "spread.label",
                "must name a label",
            ));
        }
        Ok(())
    }

    fn run(&self, ctx: &ProbeContext<'_>) -> rensou_core::Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        for (modality, latents) in ctx.latents {
            let labels = ctx.data.sets[modality].label(&self.label)?;
            let mut sums: BTreeMap<i64, (Vec<f64>, usize)> = BTreeMap::new();
            for (i, &l) in labels.iter().enumerate() {
                let e = sums.entry(l).or_insert((vec![0.0; latents.dim], 0));
                e.0.iter_mut()
                    .zip(latents.row(i))
                    .for_each(|(s, &z)| *s += f64::from(z));
                e.1 += 1;
            }
            let spread: f64 = labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let (sum, n) = &sums[l];
                    let d2: f64 = latents
                        .row(i)
                        .iter()
                        .zip(sum)
                        .map(|(&z, s)| (f64::from(z) - s / *n as f64).powi(2))
                        .sum();
                    d2.sqrt()
                })
                .sum::<f64>()
                / labels.len().max(1) as f64;
            out.insert(
                modality.clone(),
                serde_json::json!({ "mean_spread": spread }),
            );
        }
        Ok(serde_json::Value::Object(out))
    }

    fn clone_box(&self) -> Box<dyn ProbeConfig> {
        Box::new(self.clone())
    }
}

rensou_core::inventory::submit! {
    ProbePlugin {
        name: "spread",
        description: "mean distance of latents from their class mean",
        default_config: || Box::new(SpreadProbe { label: "number".into() }),
    }
}
// README-EXAMPLE-END

/// A model view that is never called by this probe.
struct NoModel;

impl ModelView for NoModel {
    fn modalities(&self) -> Vec<String> {
        vec!["toy".into()]
    }
    fn latent_dim(&self) -> usize {
        2
    }
    fn item_shape(&self, _: &str) -> rensou_core::Result<Vec<usize>> {
        Ok(vec![1])
    }
    fn encode(&self, _: &str, _: &[u8]) -> rensou_core::Result<Latents> {
        unreachable!("the example probe uses precomputed latents")
    }
    fn decode(&self, _: &str, _: &[f32]) -> rensou_core::Result<Vec<f32>> {
        unreachable!()
    }
    fn sample_prior(&self, _: usize, _: u64) -> rensou_core::Result<Vec<f32>> {
        unreachable!()
    }
    fn sample_at(&self, _: &[f32], _: usize, _: u64) -> rensou_core::Result<Vec<f32>> {
        unreachable!()
    }
    fn describe(&self) -> String {
        "no model".into()
    }
}

impl Classifiers for NoModel {
    fn predict(&self, _: &str, _: &str, _: &[f32]) -> rensou_core::Result<Vec<i64>> {
        unreachable!()
    }
    fn accuracy(&self, _: &str, _: &str) -> rensou_core::Result<f64> {
        unreachable!()
    }
}

#[test]
fn readme_example_is_verbatim() {
    let readme = include_str!("../../README.md");
    let me = include_str!("probe_example.rs");
    let start = me.find("// README-EXAMPLE-START\n").unwrap() + "// README-EXAMPLE-START\n".len();
    let end = me.find("// README-EXAMPLE-END").unwrap();
    let example = &me[start..end];
    assert!(
        readme.contains(example),
        "README.md's probe example differs from tests/tests/probe_example.rs"
    );
}

#[test]
fn example_probe_registers_and_runs() {
    let registry = rensou_core::registry::ProbeRegistry::collect().unwrap();
    assert!(registry.names().contains(&"spread"));
    registry.check_names().unwrap();

    // Two classes: latents at distance 1 from their class means.
    let mut set = ItemSet::new(vec![1], &["number"]);
    let mut loc = Vec::new();
    for (n, z) in [
        (1, [0.0, 1.0]),
        (1, [0.0, -1.0]),
        (2, [5.0, 1.0]),
        (2, [5.0, -1.0]),
    ] {
        set.push(&[0], &[("number", n)]).unwrap();
        loc.extend_from_slice(&z);
    }
    let data = ProbeData {
        split: Split::Test,
        sets: BTreeMap::from([("toy".to_owned(), set)]),
        label_specs: BTreeMap::new(),
    };
    let latents = BTreeMap::from([(
        "toy".to_owned(),
        Latents {
            n: 4,
            dim: 2,
            scale: vec![1.0; 8],
            loc,
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let probes: Vec<Box<dyn ProbeConfig>> = vec![
        Box::new(SpreadProbe {
            label: "number".into(),
        }),
        Box::new(SpreadProbe {
            label: String::new(),
        }),
    ];
    let outcomes = run_probes(
        &probes,
        dir.path(),
        &NoModel,
        &NoModel,
        &data,
        &latents,
        0,
        &NoProgress,
    );
    let m = outcomes[0].result.as_ref().unwrap();
    assert!((m["toy"]["mean_spread"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("spread/metrics.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(&written, m);
    // The invalid second config fails alone, with its error kept beside the metrics.
    assert!(outcomes[1].result.is_err());
    assert!(dir.path().join("spread/error.txt").exists());
}
