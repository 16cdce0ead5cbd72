//! The `cluster` probe end to end through `rensou_api::probe::run_probes`, with test doubles
//! for the model and the classifiers and fake latents whose number means lie on a line.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rensou_api::probe::{
    probe_type_name, run_probes, Classifiers, Latents, ModelView, ProbeConfig, ProbeData,
    ProbePlugin,
};
use rensou_api::progress::NoProgress;
use rensou_api::{Error, ItemSet, LabelSpec, Result, Split};
use rensou_cluster::ClusterProbe;
use serde_json::Value;

/// A model that is never asked to do anything: the cluster probe only reads latents.
struct NoModel;

impl ModelView for NoModel {
    fn modalities(&self) -> Vec<String> {
        vec!["oscn".into(), "cmnist".into()]
    }
    fn latent_dim(&self) -> usize {
        6
    }
    fn item_shape(&self, _modality: &str) -> Result<Vec<usize>> {
        Ok(vec![1])
    }
    fn encode(&self, _modality: &str, _items: &[u8]) -> Result<Latents> {
        Err(Error::Data("the test model cannot encode".into()))
    }
    fn decode(&self, _modality: &str, _z: &[f32]) -> Result<Vec<f32>> {
        Err(Error::Data("the test model cannot decode".into()))
    }
    fn sample_prior(&self, _n: usize, _seed: u64) -> Result<Vec<f32>> {
        Err(Error::Data("the test model cannot sample".into()))
    }
    fn sample_at(&self, _loc: &[f32], _n: usize, _seed: u64) -> Result<Vec<f32>> {
        Err(Error::Data("the test model cannot sample".into()))
    }
    fn describe(&self) -> String {
        "test double".into()
    }
}

struct NoClassifiers;

impl Classifiers for NoClassifiers {
    fn predict(&self, _modality: &str, _label: &str, _items: &[f32]) -> Result<Vec<i64>> {
        Err(Error::Data("no classifiers in this test".into()))
    }
    fn accuracy(&self, _modality: &str, _label: &str) -> Result<f64> {
        Ok(0.0)
    }
}

const N: usize = 900;
const DIM: usize = 6;

/// Items with `number` 1..9 (and `colour`, and for oscn `shape` plus a many-valued `id` label
/// that the default selection must skip); latents put number n at n * direction plus noise,
/// and colour along another axis.
fn data_and_latents(seed: u64) -> (ProbeData, BTreeMap<String, Latents>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sets = BTreeMap::new();
    let mut specs = BTreeMap::new();
    let mut latents = BTreeMap::new();
    for (modality, with_shape) in [("oscn", true), ("cmnist", false)] {
        let names: &[&str] = if with_shape {
            &["number", "colour", "shape", "id"]
        } else {
            &["number", "colour"]
        };
        let mut set = ItemSet::new(vec![1], names);
        let mut loc = Vec::with_capacity(N * DIM);
        for i in 0..N {
            let number = (i % 9) as i64 + 1;
            let colour = ((i / 9) % 4) as i64;
            let shape = ((i / 36) % 3) as i64;
            let mut labels = vec![("number", number), ("colour", colour)];
            if with_shape {
                labels.push(("shape", shape));
                labels.push(("id", i as i64));
            }
            set.push(&[0], &labels).expect("push");
            for t in 0..DIM {
                let along = match t {
                    0 => number as f32 * 1.0,
                    1 => number as f32 * 0.5,
                    2 => colour as f32 * 3.0,
                    _ => 0.0,
                };
                loc.push(along + rng.random_range(-0.2f32..0.2));
            }
        }
        sets.insert(modality.to_owned(), set);
        specs.insert(
            modality.to_owned(),
            vec![
                LabelSpec::numeric("number", "how many"),
                LabelSpec::categorical("colour", "colour", &["red", "green", "blue", "white"]),
            ],
        );
        latents.insert(
            modality.to_owned(),
            Latents {
                n: N,
                dim: DIM,
                scale: vec![1.0; N * DIM],
                loc,
            },
        );
    }
    (
        ProbeData {
            split: Split::Test,
            sets,
            label_specs: specs,
        },
        latents,
    )
}

fn run(
    probe: ClusterProbe,
    data: &ProbeData,
    latents: &BTreeMap<String, Latents>,
) -> (tempfile::TempDir, Result<Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let probes: Vec<Box<dyn ProbeConfig>> = vec![Box::new(probe)];
    let mut outcomes = run_probes(
        &probes,
        dir.path(),
        &NoModel,
        &NoClassifiers,
        data,
        latents,
        7,
        &NoProgress,
    );
    assert_eq!(outcomes.len(), 1);
    let outcome = outcomes.remove(0);
    assert_eq!(outcome.name, "cluster");
    (dir, outcome.result)
}

#[test]
fn the_probe_reports_every_metric_for_every_modality() {
    let (data, latents) = data_and_latents(1);
    let probe = ClusterProbe {
        threads: 2,
        ..ClusterProbe::default()
    };
    let (dir, result) = run(probe, &data, &latents);
    let metrics = result.expect("the probe succeeds");
    let written: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("cluster/metrics.json")).expect("metrics.json"),
    )
    .expect("json");
    assert_eq!(written, metrics);
    let scalars = rensou_api::probe::Scalars::read(&dir.path().join("cluster"))
        .expect("readable")
        .expect("scalars.json");

    for modality in ["oscn", "cmnist"] {
        let m = &metrics[modality];
        // The typed scalars carry the same numbers as metrics.json.
        let of = rensou_api::probe::Of::Modality(modality);
        assert_eq!(
            scalars.get("silhouette.number", of),
            m["silhouette"]["number"].as_f64()
        );
        assert_eq!(
            scalars.get("kmeans_ari.colour", of),
            m["kmeans"]["colour"]["ari"].as_f64()
        );
        assert_eq!(
            scalars.get("magnitude.abs_pearson_r", of),
            m["magnitude"]["abs_pearson_r"].as_f64()
        );
        assert!(scalars.get("silhouette.number", of).is_some());
        assert_eq!(m["items"], N);
        assert_eq!(m["dim"], DIM);
        let labels: Vec<&str> = if modality == "oscn" {
            vec!["colour", "number", "shape"]
        } else {
            vec!["colour", "number"]
        };
        let sil = m["silhouette"].as_object().expect("silhouette");
        assert_eq!(
            sil.keys().map(String::as_str).collect::<Vec<_>>(),
            labels,
            "{modality}"
        );
        for label in &labels {
            let s = m["silhouette"][label].as_f64().expect("silhouette value");
            assert!((-1.0..=1.0).contains(&s));
            assert!(m["kmeans"][label]["ari"].is_f64(), "{modality} {label}");
            assert!(m["kmeans"][label]["nmi"].is_f64());
            let acc = m["linear_probe"][label]["accuracy"]
                .as_f64()
                .expect("accuracy");
            assert!((0.0..=1.0).contains(&acc));
            assert_eq!(
                m["linear_probe"][label]["fold_accuracies"]
                    .as_array()
                    .expect("folds")
                    .len(),
                5
            );
        }
        // Numbers and colours are linearly separable in these latents.
        // (The L2 penalty keeps the number probe a little below perfect; chance is 1/9.)
        assert!(m["linear_probe"]["number"]["accuracy"].as_f64().unwrap() > 0.9);
        assert!(m["linear_probe"]["colour"]["accuracy"].as_f64().unwrap() > 0.95);
        assert_eq!(m["kmeans"]["number"]["k"], 9);
        let mag = &m["magnitude"];
        assert!(mag["abs_pearson_r"].as_f64().unwrap() > 0.99, "{mag}");
        // |i - j| has ties that the (noisy) distances break, so rho stays a little below 1.
        assert!(mag["spearman_rho"].as_f64().unwrap() > 0.95, "{mag}");
        assert_eq!(
            mag["numbers"],
            serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8, 9])
        );
        assert_eq!(mag["pairs"], 36);
        assert_eq!(mag["distances"].as_array().unwrap().len(), 9);
        for file in mag["figures"].as_array().expect("figures") {
            let path = dir.path().join("cluster").join(file.as_str().unwrap());
            let bytes = std::fs::read(&path).expect("figure written");
            assert_eq!(&bytes[1..4], b"PNG", "{}", path.display());
        }
        assert_eq!(m["skipped"], serde_json::json!([]));
    }

    // Same seed, same numbers.
    let (_dir2, again) = run(
        ClusterProbe {
            threads: 1,
            ..ClusterProbe::default()
        },
        &data,
        &latents,
    );
    assert_eq!(again.expect("second run"), metrics);
}

#[test]
fn chosen_labels_sampling_and_degenerate_labels() {
    let (mut data, latents) = data_and_latents(2);
    // A label with one value cannot be scored; it is reported as skipped, not an error.
    data.sets
        .get_mut("cmnist")
        .unwrap()
        .labels
        .insert("constant".into(), vec![3; N]);
    let probe = ClusterProbe {
        labels: vec!["number".into(), "constant".into()],
        silhouette_sample: 300,
        kmeans_restarts: 2,
        folds: 3,
        figures: false,
        seed: Some(11),
        ..ClusterProbe::default()
    };
    let (_dir, result) = run(probe, &data, &latents);
    let metrics = result.expect("the probe succeeds");
    assert_eq!(metrics["oscn"]["silhouette_items"], 300);
    assert!(metrics["oscn"]["silhouette"].get("colour").is_none());
    let c = &metrics["cmnist"];
    assert!(c["silhouette"]["constant"].is_null());
    assert!(c["kmeans"]["constant"].is_null());
    assert!(c["silhouette"]["number"].is_f64());
    assert!(c["magnitude"].get("figures").is_none());
    assert!(!c["skipped"].as_array().unwrap().is_empty());
}

#[test]
fn mismatched_latents_fail_with_an_error_file() {
    let (data, mut latents) = data_and_latents(3);
    let l = latents.get_mut("oscn").unwrap();
    l.n -= 1;
    l.loc.truncate(l.n * DIM);
    let (dir, result) = run(ClusterProbe::default(), &data, &latents);
    let err = result.expect_err("mismatched lengths are an error");
    assert!(err.to_string().contains("latents"), "{err}");
    assert!(dir.path().join("cluster/error.txt").exists());
}

#[test]
fn registered_configurable_and_validated() {
    let plugin = rensou_api::inventory::iter::<ProbePlugin>()
        .find(|p| p.name == "cluster")
        .expect("the cluster probe is registered");
    let config = (plugin.default_config)();
    assert_eq!(probe_type_name(&*config).unwrap(), "cluster");
    config.validate().expect("the default config is valid");

    #[derive(serde::Deserialize)]
    struct Experiment {
        probes: Vec<Box<dyn ProbeConfig>>,
    }
    let exp: Experiment = toml::from_str(
        "[[probes]]\ntype = \"cluster\"\nfolds = 3\nlabels = [\"number\"]\nseed = 5\n",
    )
    .expect("parses");
    let json = serde_json::to_value(&exp.probes[0]).expect("serialises");
    assert_eq!(json["folds"], 3);
    assert_eq!(json["labels"], serde_json::json!(["number"]));
    assert_eq!(json["kmeans_restarts"], 10);
    assert!(toml::from_str::<Experiment>("[[probes]]\ntype = \"cluster\"\nfold = 3\n").is_err());

    for bad in [
        ClusterProbe {
            folds: 1,
            ..ClusterProbe::default()
        },
        ClusterProbe {
            kmeans_restarts: 0,
            ..ClusterProbe::default()
        },
        ClusterProbe {
            kmeans_tol: -1.0,
            ..ClusterProbe::default()
        },
        ClusterProbe {
            probe_c: 0.0,
            ..ClusterProbe::default()
        },
        ClusterProbe {
            max_label_values: 1,
            ..ClusterProbe::default()
        },
    ] {
        let err = bad.validate().expect_err("invalid");
        assert!(err.to_string().contains("cluster."), "{err}");
    }
}
