//! The `tsne` probe through rensou-api's probe runner, on test doubles of the model.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rensou_api::modality::{ItemSet, LabelSpec};
use rensou_api::probe::{run_probes, Classifiers, Latents, ModelView, ProbeConfig, ProbeData};
use rensou_api::progress::NoProgress;
use rensou_api::Split;
use rensou_tsne::TsneProbe;

/// A model the probe must not need: it works from the precomputed latents.
struct FakeModel;

impl ModelView for FakeModel {
    fn modalities(&self) -> Vec<String> {
        vec!["image".into(), "digit".into()]
    }
    fn latent_dim(&self) -> usize {
        8
    }
    fn item_shape(&self, _: &str) -> rensou_api::Result<Vec<usize>> {
        Ok(vec![1])
    }
    fn encode(&self, _: &str, items: &[u8]) -> rensou_api::Result<Latents> {
        Ok(Latents {
            n: items.len(),
            dim: 8,
            loc: vec![0.0; items.len() * 8],
            scale: vec![1.0; items.len() * 8],
        })
    }
    fn decode(&self, _: &str, z: &[f32]) -> rensou_api::Result<Vec<f32>> {
        Ok(vec![0.5; z.len() / 8])
    }
    fn sample_prior(&self, n: usize, _: u64) -> rensou_api::Result<Vec<f32>> {
        Ok(vec![0.0; n * 8])
    }
    fn sample_at(&self, loc: &[f32], n: usize, _: u64) -> rensou_api::Result<Vec<f32>> {
        Ok(loc.repeat(n))
    }
    fn describe(&self) -> String {
        "fake model".into()
    }
}

impl Classifiers for FakeModel {
    fn predict(&self, _: &str, _: &str, items: &[f32]) -> rensou_api::Result<Vec<i64>> {
        Ok(vec![1; items.len()])
    }
    fn accuracy(&self, _: &str, _: &str) -> rensou_api::Result<f64> {
        Ok(1.0)
    }
}

/// `n` paired items in two modalities: latents clustered by `number` (1..=9) in "image", by
/// `number` and weakly by `colour` in "digit"; plus an `id` label with too many values to plot.
fn data(n: usize) -> (ProbeData, BTreeMap<String, Latents>) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let centres: Vec<[f32; 8]> = (0..9)
        .map(|_| std::array::from_fn(|_| rng.random::<f32>() * 20.0))
        .collect();
    let mut sets = BTreeMap::new();
    let mut latents = BTreeMap::new();
    for (m, modality) in ["image", "digit"].iter().enumerate() {
        let mut set = ItemSet::new(vec![1], &["number", "colour", "id"]);
        let mut loc = Vec::with_capacity(n * 8);
        for i in 0..n {
            let number = (i % 9) as i64 + 1;
            let colour = (i / 9 % 4) as i64;
            set.push(
                &[0],
                &[("number", number), ("colour", colour), ("id", i as i64)],
            )
            .unwrap();
            for (d, &centre) in centres[number as usize - 1].iter().enumerate() {
                let shift = if m == 1 && d == 0 { colour as f32 } else { 0.0 };
                loc.push(centre + shift + rng.random::<f32>() - 0.5);
            }
        }
        sets.insert((*modality).to_owned(), set);
        latents.insert(
            (*modality).to_owned(),
            Latents {
                n,
                dim: 8,
                scale: vec![1.0; n * 8],
                loc,
            },
        );
    }
    let specs = vec![
        LabelSpec::numeric("number", "how many"),
        LabelSpec::categorical("colour", "colour", &["red", "green", "blue", "white"]),
        LabelSpec::numeric("id", "item id"),
    ];
    let label_specs = BTreeMap::from([
        ("image".to_owned(), specs.clone()),
        ("digit".to_owned(), specs),
    ]);
    (
        ProbeData {
            split: Split::Test,
            sets,
            label_specs,
        },
        latents,
    )
}

/// Width and height of a PNG from its IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn probe_writes_metrics_and_figures() {
    let (data, latents) = data(450);
    let probe = TsneProbe {
        max_points: 300,
        iterations: 400,
        figure_size: 400,
        ..TsneProbe::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let probes: Vec<Box<dyn ProbeConfig>> = vec![Box::new(probe)];
    let outcomes = run_probes(
        &probes,
        dir.path(),
        &FakeModel,
        &FakeModel,
        &data,
        &latents,
        42,
        &NoProgress,
    );
    assert_eq!(outcomes[0].name, "tsne");
    let metrics = outcomes[0].result.as_ref().expect("the probe succeeds");
    let out = dir.path().join("tsne");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(&written, metrics);
    assert_eq!(metrics["split"], "test");
    for modality in ["image", "digit"] {
        let m = &metrics["modalities"][modality];
        assert_eq!(m["n"], 300, "{m}");
        assert_eq!(m["n_total"], 450);
        assert_eq!(m["dim"], 8);
        assert_eq!(m["k"], 10);
        let trust = m["trustworthiness"].as_f64().unwrap();
        assert!(
            trust > 0.85 && trust <= 1.0,
            "{modality}: trustworthiness {trust}"
        );
        let number = m["knn_accuracy"]["number"].as_f64().unwrap();
        assert!(
            number > 0.95,
            "{modality}: 10-NN accuracy of number {number}"
        );
        assert!(m["latent_knn_accuracy"]["number"].as_f64().unwrap() > 0.95);
        assert!(m["knn_accuracy"]["colour"].is_number());
        assert!(
            m["knn_accuracy"].get("id").is_none(),
            "`id` has > 20 values"
        );
        assert!(m["seconds"].as_f64().unwrap() > 0.0);
        for label in ["number", "colour"] {
            let file = format!("tsne_{modality}_{label}.png");
            let png = std::fs::read(out.join(&file)).unwrap();
            assert_eq!(png_size(&png), (400, 350), "{file}");
            assert!(m["figures"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == &serde_json::json!(file)));
        }
        assert!(!out.join(format!("tsne_{modality}_id.png")).exists());
        let csv = std::fs::read_to_string(out.join(format!("tsne_{modality}.csv"))).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("item,x,y,colour,number"));
        assert_eq!(lines.count(), 300);
    }
    // To look at the figures: RENSOU_TSNE_FIGURES=DIR cargo test ...
    if let Some(keep) = std::env::var_os("RENSOU_TSNE_FIGURES") {
        for entry in std::fs::read_dir(&out).unwrap() {
            let path = entry.unwrap().path();
            let _ = std::fs::copy(
                &path,
                std::path::Path::new(&keep).join(path.file_name().unwrap()),
            );
        }
    }
    // The two modalities used the same items.
    let items = |m: &str| -> Vec<String> {
        std::fs::read_to_string(out.join(format!("tsne_{m}.csv")))
            .unwrap()
            .lines()
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(items("image"), items("digit"));
}

#[test]
fn probe_options_and_errors() {
    let (data, latents) = data(120);
    let dir = tempfile::tempdir().unwrap();
    let run = |probe: TsneProbe| {
        let probes: Vec<Box<dyn ProbeConfig>> = vec![Box::new(probe)];
        run_probes(
            &probes,
            dir.path(),
            &FakeModel,
            &FakeModel,
            &data,
            &latents,
            1,
            &NoProgress,
        )
        .remove(0)
        .result
    };
    let quick = TsneProbe {
        iterations: 100,
        early_exaggeration_iterations: 50,
        figure_size: 200,
        ..TsneProbe::default()
    };
    let m = run(TsneProbe {
        labels: Some(vec!["id".into()]),
        modalities: Some(vec!["digit".into()]),
        ..quick.clone()
    })
    .unwrap();
    assert!(m["modalities"].get("image").is_none());
    assert!(m["modalities"]["digit"]["knn_accuracy"]["id"].is_number());
    assert!(dir.path().join("tsne/tsne_digit_id.png").exists());
    // Same seed, same embedding.
    let csv = || std::fs::read_to_string(dir.path().join("tsne/tsne_digit.csv")).unwrap();
    let first = csv();
    run(TsneProbe {
        labels: Some(vec!["id".into()]),
        modalities: Some(vec!["digit".into()]),
        ..quick.clone()
    })
    .unwrap();
    assert_eq!(csv(), first);

    let err = run(TsneProbe {
        labels: Some(vec!["shape".into()]),
        ..quick.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("tsne.labels"), "{err}");
    let err = run(TsneProbe {
        modalities: Some(vec!["audio".into()]),
        ..quick.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("tsne.modalities"), "{err}");
    let err = run(TsneProbe {
        perplexity: 0.0,
        ..quick
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("tsne.perplexity"), "{err}");
    assert!(dir.path().join("tsne/error.txt").exists());
}

#[test]
fn config_from_toml_and_registry() {
    #[derive(serde::Deserialize)]
    struct Experiment {
        probes: Vec<Box<dyn ProbeConfig>>,
    }
    let e: Experiment = toml::from_str(
        r#"
        [[probes]]
        type = "tsne"
        perplexity = 30.0
        labels = ["number"]
        "#,
    )
    .unwrap();
    e.probes[0].validate().unwrap();
    assert_eq!(
        rensou_api::probe::probe_type_name(&*e.probes[0]).unwrap(),
        "tsne"
    );
    let cfg = serde_json::to_value(&*e.probes[0]).unwrap();
    assert_eq!(cfg["perplexity"], 30.0);
    assert_eq!(cfg["max_points"], 5000);
    assert!(
        toml::from_str::<Experiment>("[[probes]]\ntype = \"tsne\"\nperplexty = 3.0\n").is_err()
    );

    let registry = rensou_api::registry::ProbeRegistry::collect().unwrap();
    assert!(registry.names().contains(&"tsne"));
    registry.check_names().unwrap();
    let plugin = registry.get("tsne").unwrap();
    let default = (plugin.default_config)();
    default.validate().unwrap();
    assert_eq!(serde_json::to_value(&*default).unwrap()["perplexity"], 20.0);
}
