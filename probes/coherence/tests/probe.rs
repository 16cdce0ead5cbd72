//! The coherence probe end to end through `run_probes`, with test doubles.

#[path = "../../testing/probe_fakes.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{data, is_png, tmp, FakeClassifiers, FakeModel};
use rensou_api::probe::{
    run_probes, Latents, ModelView, ProbeConfig, ProbeData, ProbeOutcome, ProbePlugin,
};
use rensou_api::progress::NoProgress;
use rensou_coherence::CoherenceConfig;
use serde_json::Value;

fn run_on(
    model: &FakeModel,
    config: CoherenceConfig,
    data: &ProbeData,
    latents: &BTreeMap<String, Latents>,
    dir: &Path,
) -> ProbeOutcome {
    let probes: Vec<Box<dyn ProbeConfig>> = vec![Box::new(config)];
    let mut out = run_probes(
        &probes,
        dir,
        model,
        &FakeClassifiers,
        data,
        latents,
        11,
        &NoProgress,
    );
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn run(model: &FakeModel, config: CoherenceConfig, dir: &Path) -> ProbeOutcome {
    let names: Vec<&str> = model.modalities.iter().map(String::as_str).collect();
    let (data, latents) = data(&names, 3);
    run_on(model, config, &data, &latents, dir)
}

fn metrics(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("coherence/metrics.json"))
        .unwrap_or_else(|e| panic!("metrics.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("metrics.json: {e}"))
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-12)
}

#[test]
fn perfect_model_is_fully_coherent() {
    let dir = tmp();
    let outcome = run(
        &FakeModel::exact(&["oscn", "cmnist"]),
        CoherenceConfig::default(),
        dir.path(),
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(m["items"], 9 * 4 * 3);
    assert_eq!(m["labels"], serde_json::json!(["number", "colour"]));
    assert!(close(&m["chance"]["number"], 1.0 / 9.0));
    assert!(close(&m["chance"]["colour"], 0.25));
    assert_eq!(m["classifier_test_accuracy"]["cmnist"]["colour"], 0.97);
    for modality in ["oscn", "cmnist"] {
        for label in ["number", "colour"] {
            assert_eq!(m["reconstruction"][modality][label], 1.0);
        }
    }
    for label in ["number", "colour"] {
        assert_eq!(m["cross"]["oscn"]["cmnist"][label], 1.0);
        assert_eq!(m["cross"]["cmnist"]["oscn"][label], 1.0);
        assert_eq!(m["cross_mean"][label], 1.0);
        assert_eq!(m["joint"]["by_label"][label], 1.0);
    }
    assert_eq!(m["joint"]["samples"], 1000);
    assert_eq!(m["joint"]["all_labels"], 1.0);
    // The same numbers, typed, where reports read them.
    let scalars = rensou_api::probe::Scalars::read(&dir.path().join("coherence"))
        .unwrap()
        .expect("scalars.json");
    use rensou_api::probe::Of;
    for label in ["number", "colour"] {
        let metric = |kind: &str| format!("{kind}.{label}");
        assert_eq!(
            scalars.get(&metric("reconstruction"), Of::Modality("oscn")),
            Some(1.0)
        );
        assert_eq!(
            scalars.get(&metric("cross"), Of::Pair("oscn", "cmnist")),
            Some(1.0)
        );
        assert_eq!(
            scalars.get(&metric("cross"), Of::Pair("cmnist", "oscn")),
            Some(1.0)
        );
        assert_eq!(scalars.get(&metric("joint"), Of::Model), Some(1.0));
    }
    assert!(m["source"]
        .as_str()
        .unwrap_or("")
        .contains("posterior location"));
    assert_eq!(m["figure"], "coherence.png");
    assert!(is_png(&dir.path().join("coherence/coherence.png")));
}

#[test]
fn corrupting_a_known_subset_gives_the_right_fractions() {
    // cmnist's decoder draws a 4 whenever it should draw a 3; oscn's is exact.
    let model = FakeModel {
        number_map: |m, n| if m == "cmnist" && n == 3 { 4 } else { n },
        ..FakeModel::exact(&["oscn", "cmnist"])
    };
    let dir = tmp();
    let outcome = run(&model, CoherenceConfig::default(), dir.path());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    let wrong = 1.0 - 1.0 / 9.0; // one number in nine is corrupted
    assert!(close(&m["cross"]["oscn"]["cmnist"]["number"], wrong));
    assert!(close(&m["reconstruction"]["cmnist"]["number"], wrong));
    assert_eq!(m["cross"]["cmnist"]["oscn"]["number"], 1.0);
    assert_eq!(m["reconstruction"]["oscn"]["number"], 1.0);
    assert_eq!(m["cross"]["oscn"]["cmnist"]["colour"], 1.0);
    assert!(close(&m["cross_mean"]["number"], (1.0 + wrong) / 2.0));

    // Joint: exactly the prior samples whose number is 3 disagree.
    let seed = m["joint"]["seed"].as_u64().unwrap_or_default();
    let z = model.sample_prior(1000, seed).unwrap_or_default();
    let threes = z.chunks_exact(2).filter(|r| r[0] == 3.0).count();
    assert!(threes > 50, "{threes}");
    let expected = 1.0 - threes as f64 / 1000.0;
    assert!(
        close(&m["joint"]["by_label"]["number"], expected),
        "{}",
        m["joint"]
    );
    assert_eq!(m["joint"]["by_label"]["colour"], 1.0);
    assert!(close(&m["joint"]["all_labels"], expected));
    let three_share = &m["joint"]["predicted_distribution"]["cmnist"]["number"]["3"];
    assert!(three_share.is_null(), "{three_share}");
}

#[test]
fn single_modality_model_reports_reconstruction_only() {
    let dir = tmp();
    let outcome = run(
        &FakeModel::exact(&["oscn"]),
        CoherenceConfig::default(),
        dir.path(),
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(m["reconstruction"]["oscn"]["number"], 1.0);
    assert_eq!(m["cross"], serde_json::json!({}));
    assert_eq!(m["cross_mean"], serde_json::json!({}));
    assert_eq!(m["joint"], Value::Null);
    assert!(m["notes"].to_string().contains("single-modality"));
    assert!(is_png(&dir.path().join("coherence/coherence.png")));
}

#[test]
fn labels_not_shared_by_pairs_are_checked_only_where_meaningful() {
    let model = FakeModel::exact(&["oscn", "cmnist"]);
    let (mut data, latents) = data(&["oscn", "cmnist"], 2);
    let n = data.sets["oscn"].len();
    if let Some(set) = data.sets.get_mut("oscn") {
        set.labels.insert("shape".into(), vec![0; n]);
    }
    // cmnist's colour disagrees with oscn's on one pair: colour is then no pair label.
    if let Some(colour) = data
        .sets
        .get_mut("cmnist")
        .and_then(|s| s.labels.get_mut("colour"))
    {
        colour[0] = (colour[0] + 1) % 4;
    }
    let config = CoherenceConfig {
        labels: vec![
            "number".into(),
            "colour".into(),
            "shape".into(),
            "size".into(),
        ],
        ..CoherenceConfig::default()
    };
    let dir = tmp();
    let outcome = run_on(&model, config, &data, &latents, dir.path());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(
        m["labels"],
        serde_json::json!(["number", "colour", "shape"])
    );
    assert_eq!(m["reconstruction"]["oscn"]["shape"], 1.0);
    assert!(m["reconstruction"]["cmnist"]["shape"].is_null());
    assert!(m["cross"]["cmnist"]["oscn"]["shape"].is_null());
    assert!(m["cross"]["oscn"]["cmnist"]["colour"].is_null());
    assert_eq!(m["cross"]["oscn"]["cmnist"]["number"], 1.0);
    assert!(m["joint"]["by_label"]["shape"].is_null());
    let notes = m["notes"].to_string();
    assert!(notes.contains("`size` skipped"), "{notes}");
    assert!(notes.contains("pairs do not share it"), "{notes}");
    assert!(notes.contains("fewer than two modalities"), "{notes}");
}

#[test]
fn subsets_seeds_and_switches() {
    let model = FakeModel::exact(&["oscn", "cmnist"]);
    let config = CoherenceConfig {
        max_items: 20,
        joint_samples: 0,
        figure_per_class: 0,
        seed: Some(5),
        ..CoherenceConfig::default()
    };
    let dir = tmp();
    let outcome = run(&model, config, dir.path());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(m["items"], 20);
    assert_eq!(m["items_in_split"], 108);
    assert_eq!(m["seed"], 5);
    assert_eq!(m["joint"], Value::Null);
    assert_eq!(m["figure"], Value::Null);
    assert!(!dir.path().join("coherence/coherence.png").exists());

    // A non-image modality: metrics, no figure.
    let dir = tmp();
    let outcome = run(
        &FakeModel::exact(&["oscn", "audio"]),
        CoherenceConfig::default(),
        dir.path(),
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(m["cross"]["audio"]["oscn"]["number"], 1.0);
    assert_eq!(m["figure"], Value::Null);
    assert!(m["notes"].to_string().contains("not an image"));
}

#[test]
fn missing_data_and_labels_are_clear_errors() {
    let model = FakeModel::exact(&["oscn", "cmnist"]);
    let (data_one, latents_one) = data(&["oscn"], 1);
    let dir = tmp();
    let outcome = run_on(
        &model,
        CoherenceConfig::default(),
        &data_one,
        &latents_one,
        dir.path(),
    );
    let err = outcome
        .result
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("`cmnist`") && err.contains("no items"),
        "{err}"
    );
    assert!(dir.path().join("coherence/error.txt").exists());

    let (data_two, mut latents_two) = data(&["oscn", "cmnist"], 1);
    latents_two.remove("cmnist");
    let outcome = run_on(
        &model,
        CoherenceConfig::default(),
        &data_two,
        &latents_two,
        dir.path(),
    );
    let err = outcome
        .result
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("no latents"), "{err}");

    let config = CoherenceConfig {
        labels: vec!["size".into()],
        ..CoherenceConfig::default()
    };
    let outcome = run(&model, config, dir.path());
    let err = outcome
        .result
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("size") && err.contains("colour, number"),
        "{err}"
    );

    // Unequal pair counts.
    let (mut data_bad, latents_bad) = data(&["oscn", "cmnist"], 1);
    if let Some(set) = data_bad.sets.get_mut("cmnist") {
        *set = set.select(&[0, 1, 2]);
    }
    let outcome = run_on(
        &model,
        CoherenceConfig::default(),
        &data_bad,
        &latents_bad,
        dir.path(),
    );
    assert!(outcome.result.is_err());
}

#[test]
fn config_from_toml_defaults_and_validation() {
    #[derive(serde::Deserialize)]
    struct File {
        probes: Vec<Box<dyn ProbeConfig>>,
    }
    let file: File = toml::from_str(
        "[[probes]]\ntype = \"coherence\"\njoint_samples = 10\nlabels = [\"number\"]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let value = serde_json::to_value(&file.probes[0]).unwrap_or_default();
    // The resolved config round-trips through TOML (an omitted seed stays omitted).
    let text = toml::to_string(&CoherenceConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!text.contains("seed"), "{text}");
    let back: CoherenceConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, CoherenceConfig::default());
    assert_eq!(value["type"], "coherence");
    assert_eq!(value["joint_samples"], 10);
    assert_eq!(value["labels"], serde_json::json!(["number"]));
    assert_eq!(value["figure_per_class"], 1);
    assert!(file.probes[0].validate().is_ok());
    assert!(toml::from_str::<File>("[[probes]]\ntype = \"coherence\"\nlabel = \"x\"\n").is_err());

    let bad = CoherenceConfig {
        labels: vec!["number".into(), "number".into()],
        ..CoherenceConfig::default()
    };
    let err = bad
        .validate()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("coherence.labels") && err.contains("twice"),
        "{err}"
    );
    let bad = CoherenceConfig {
        labels: vec![],
        ..CoherenceConfig::default()
    };
    assert!(bad.validate().is_err());
    let bad = CoherenceConfig {
        figure_per_class: 100,
        ..CoherenceConfig::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn registered_under_its_typetag_name() {
    let plugin = rensou_api::inventory::iter::<ProbePlugin>
        .into_iter()
        .find(|p| p.name == rensou_coherence::NAME);
    let plugin = plugin.unwrap_or_else(|| panic!("coherence is not registered"));
    let config = (plugin.default_config)();
    assert_eq!(
        rensou_api::probe::probe_type_name(&*config).ok().as_deref(),
        Some("coherence")
    );
}
