//! The probe of `docs/write-a-probe.md` (`examples/my-rensou/src/spread.rs`), run here so it
//! cannot rot; the guides must quote the example's files verbatim (`docs/write-a-probe.md` the
//! probe and the binary's `main.rs`, `docs/write-a-net.md` the net).

use std::collections::BTreeMap;

use rensou_api::modality::ItemSet;
use rensou_api::probe::{run_probes, Classifiers, Latents, ModelView, ProbeConfig, ProbeData};
use rensou_api::progress::NoProgress;
use rensou_api::Split;

use rensou_example::spread::SpreadProbe;

/// A model view that is never called by this probe.
struct NoModel;

impl ModelView for NoModel {
    fn modalities(&self) -> Vec<String> {
        vec!["toy".into()]
    }
    fn latent_dim(&self) -> usize {
        2
    }
    fn item_shape(&self, _: &str) -> rensou_api::Result<Vec<usize>> {
        Ok(vec![1])
    }
    fn encode(&self, _: &str, _: &[u8]) -> rensou_api::Result<Latents> {
        unreachable!("the example probe uses precomputed latents")
    }
    fn decode(&self, _: &str, _: &[f32]) -> rensou_api::Result<Vec<f32>> {
        unreachable!()
    }
    fn sample_prior(&self, _: usize, _: u64) -> rensou_api::Result<Vec<f32>> {
        unreachable!()
    }
    fn sample_at(&self, _: &[f32], _: usize, _: u64) -> rensou_api::Result<Vec<f32>> {
        unreachable!()
    }
    fn describe(&self) -> String {
        "no model".into()
    }
}

impl Classifiers for NoModel {
    fn predict(&self, _: &str, _: &str, _: &[f32]) -> rensou_api::Result<Vec<i64>> {
        unreachable!()
    }
    fn accuracy(&self, _: &str, _: &str) -> rensou_api::Result<f64> {
        unreachable!()
    }
}

#[test]
fn guides_quote_the_example_verbatim() {
    let probe_guide = include_str!("../../docs/write-a-probe.md");
    let net_guide = include_str!("../../docs/write-a-net.md");
    let source = include_str!("../../examples/my-rensou/src/spread.rs");
    // The file from its first `use` line on (the module doc is not quoted).
    let start = source.find("use std::").expect("a use line");
    let example = &source[start..];
    assert!(
        probe_guide.contains(example),
        "docs/write-a-probe.md's probe example differs from examples/my-rensou/src/spread.rs"
    );
    let net = include_str!("../../examples/my-rensou/src/gelu_mlp.rs");
    let body = &net[net.find("use rensou_api::net").expect("the use line")..];
    assert!(
        net_guide.contains(body),
        "docs/write-a-net.md's net example differs from examples/my-rensou/src/gelu_mlp.rs"
    );
    let main = include_str!("../../examples/my-rensou/src/main.rs");
    let body = &main[main.find("use rensou_example").expect("the use line")..];
    assert!(
        probe_guide.contains(body),
        "docs/write-a-probe.md's main.rs differs from the example's"
    );
}

#[test]
fn example_probe_registers_and_runs() {
    let registry = rensou_api::registry::ProbeRegistry::collect().unwrap();
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
    // The valid config alone: its typed metric is found by name.
    let first = run_probes(
        &probes[..1],
        dir.path(),
        &NoModel,
        &NoModel,
        &data,
        &latents,
        0,
        &NoProgress,
    );
    assert!(first[0].result.is_ok());
    let scalars = rensou_api::probe::Scalars::read(&dir.path().join("spread"))
        .unwrap()
        .expect("scalars.json");
    let spread = scalars.get("mean_spread", rensou_api::probe::Of::Modality("toy"));
    assert!((spread.unwrap() - 1.0).abs() < 1e-9, "{spread:?}");
    assert_eq!(
        scalars.spec("mean_spread").map(|s| s.better),
        Some(rensou_api::probe::Better::Lower)
    );
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
    // The invalid second config fails alone, with its error kept beside the metrics (and the
    // first run's scalars removed, so no report takes them for the failed run's).
    assert!(outcomes[1].result.is_err());
    assert!(!dir.path().join("spread/scalars.json").exists());
    assert!(dir.path().join("spread/error.txt").exists());
}
