//! A probe of this crate: the mean distance of each item's latent from the mean latent of its
//! class. This file is the example of docs/write-a-probe.md, verbatim.

use std::collections::BTreeMap;

use rensou_api::probe::{Better, MetricSpec, Of, ProbeConfig, ProbeContext, ProbePlugin, Scope};
use rensou_api::typetag; // the typetag macro expands to `typetag::...` paths
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
    fn validate(&self) -> rensou_api::Result<()> {
        if self.label.is_empty() {
            return Err(rensou_api::Error::config(
                "spread.label",
                "must name a label",
            ));
        }
        Ok(())
    }

    fn run(&self, ctx: &ProbeContext<'_>) -> rensou_api::Result<serde_json::Value> {
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
            // A typed metric: reports find it by name in scalars.json.
            ctx.record("mean_spread", Of::Modality(modality), spread)?;
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

    fn metrics(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::new(
            "mean_spread",
            "mean distance from the class mean",
            Better::Lower,
            Scope::Modality,
        )]
    }
}

rensou_api::inventory::submit! {
    ProbePlugin {
        name: "spread",
        description: "mean distance of latents from their class mean",
        default_config: || Box::new(SpreadProbe { label: "number".into() }),
    }
}
