//! The arithmetic probe end to end through `run_probes`, with test doubles.

#[path = "../../testing/probe_fakes.rs"]
mod common;

use std::path::Path;

use common::{data, is_png, tmp, FakeClassifiers, FakeModel};
use rensou_api::probe::{run_probes, ProbeConfig, ProbeOutcome, ProbePlugin};
use rensou_api::progress::NoProgress;
use rensou_arithmetic::{ArithmeticConfig, PAPER_EQUATIONS};
use serde_json::Value;

fn run(model: &FakeModel, config: ArithmeticConfig, dir: &Path) -> ProbeOutcome {
    let names: Vec<&str> = model.modalities.iter().map(String::as_str).collect();
    let (data, latents) = data(&names, 2);
    let probes: Vec<Box<dyn ProbeConfig>> = vec![Box::new(config)];
    let mut out = run_probes(
        &probes,
        dir,
        model,
        &FakeClassifiers,
        &data,
        &latents,
        7,
        &NoProgress,
    );
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn metrics(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("arithmetic/metrics.json"))
        .unwrap_or_else(|e| panic!("metrics.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("metrics.json: {e}"))
}

/// Valid triples over 1..=9 counted independently of the crate.
fn valid_triples() -> Vec<(i64, i64, i64)> {
    let mut v = Vec::new();
    for a in 1..=9 {
        for b in 1..=9 {
            for c in 1..=9 {
                if a != c && (1..=9).contains(&(a + b - c)) {
                    v.push((a, b, c));
                }
            }
        }
    }
    v
}

#[test]
fn exact_model_gets_every_equation_right() {
    let dir = tmp();
    let outcome = run(
        &FakeModel::exact(&["oscn", "cmnist"]),
        ArithmeticConfig::default(),
        dir.path(),
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(m["modality"], "oscn");
    assert_eq!(m["samples_per_equation"], 64);
    assert_eq!(m["classes"], serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert_eq!(m["class_sizes"]["5"], 8);
    assert!((m["chance"].as_f64().unwrap_or(0.0) - 1.0 / 9.0).abs() < 1e-12);
    assert_eq!(m["classifier_test_accuracy"], 0.97);
    assert_eq!(m["class_means"]["accuracy"], 1.0);
    assert_eq!(m["class_means"]["predictions"]["7"], 7);

    let equations = m["equations"].as_array().cloned().unwrap_or_default();
    assert_eq!(equations.len(), 10);
    for (eq, t) in equations.iter().zip(PAPER_EQUATIONS) {
        assert_eq!(eq["equation"], format!("{}+{}-{}", t[0], t[1], t[2]));
        assert_eq!(eq["target"], t[0] + t[1] - t[2]);
        assert_eq!(eq["accuracy"], 1.0, "{eq}");
        assert_eq!(eq["modal_prediction"], t[0] + t[1] - t[2]);
        assert_eq!(eq["modal_fraction"], 1.0);
        assert_eq!(eq["location_prediction"], t[0] + t[1] - t[2]);
        assert_eq!(eq["predictions"][(t[0] + t[1] - t[2]).to_string()], 64);
    }
    assert_eq!(m["skipped_equations"], serde_json::json!([]));

    let all = &m["all_triples"];
    assert_eq!(all["count"], valid_triples().len());
    assert_eq!(all["accuracy"], 1.0);
    assert_eq!(all["modal_accuracy"], 1.0);
    assert_eq!(all["location_accuracy"], 1.0);
    assert_eq!(all["by_target"]["9"]["accuracy"], 1.0);

    assert_eq!(m["figure"], "arithmetic.png");
    assert!(is_png(&dir.path().join("arithmetic/arithmetic.png")));
}

#[test]
fn broken_decoder_fails_exactly_the_equations_it_breaks() {
    // The decoder draws 4 objects whenever it should draw 5.
    let model = FakeModel {
        number_map: |_, n| if n == 5 { 4 } else { n },
        ..FakeModel::exact(&["oscn"])
    };
    let dir = tmp();
    let outcome = run(&model, ArithmeticConfig::default(), dir.path());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    let valid = valid_triples();
    let fives = valid.iter().filter(|(a, b, c)| a + b - c == 5).count();
    let expected = 1.0 - fives as f64 / valid.len() as f64;
    let all = &m["all_triples"];
    assert!((all["accuracy"].as_f64().unwrap_or(-1.0) - expected).abs() < 1e-12);
    assert_eq!(all["by_target"]["5"]["accuracy"], 0.0);
    assert_eq!(all["by_target"]["4"]["accuracy"], 1.0);
    assert!((m["class_means"]["accuracy"].as_f64().unwrap_or(-1.0) - 8.0 / 9.0).abs() < 1e-12);
    // 2+7-4 is not named; 3+5-2 = 6 and 1+8-4 = 5 are.
    let eqs = m["equations"].as_array().cloned().unwrap_or_default();
    let by_name = |name: &str| eqs.iter().find(|e| e["equation"] == name).cloned();
    let e = by_name("1+8-4").unwrap_or_default();
    assert_eq!(e["accuracy"], 0.0);
    assert_eq!(e["modal_prediction"], 4);
    assert_eq!(by_name("3+5-2").unwrap_or_default()["accuracy"], 1.0);
}

#[test]
fn noisy_samples_lower_accuracy_but_not_the_location() {
    // Uniform jitter in [-1, 1] on the number: a sample rounds correctly half of the time.
    let model = FakeModel {
        jitter: 1.0,
        ..FakeModel::exact(&["oscn"])
    };
    let dir = tmp();
    let config = ArithmeticConfig {
        samples: 200,
        ..ArithmeticConfig::default()
    };
    let outcome = run(&model, config, dir.path());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    let acc = m["all_triples"]["accuracy"].as_f64().unwrap_or(-1.0);
    assert!((0.4..0.6).contains(&acc), "accuracy {acc}");
    assert_eq!(m["all_triples"]["location_accuracy"], 1.0);
    for eq in m["equations"].as_array().cloned().unwrap_or_default() {
        let a = eq["accuracy"].as_f64().unwrap_or(-1.0);
        assert!(a < 0.9 && a > 0.1, "{eq}");
    }
}

#[test]
fn same_seed_same_metrics() {
    let model = FakeModel {
        jitter: 1.0,
        ..FakeModel::exact(&["oscn"])
    };
    let (d1, d2) = (tmp(), tmp());
    run(&model, ArithmeticConfig::default(), d1.path());
    run(&model, ArithmeticConfig::default(), d2.path());
    assert_eq!(metrics(d1.path()), metrics(d2.path()));
    let d3 = tmp();
    let reseeded = ArithmeticConfig {
        seed: Some(99),
        ..ArithmeticConfig::default()
    };
    run(&model, reseeded, d3.path());
    let m3 = metrics(d3.path());
    assert_eq!(m3["seed"], 99);
    assert_ne!(metrics(d1.path())["equations"], m3["equations"]);
}

#[test]
fn works_for_any_modality_with_a_number_label() {
    let dir = tmp();
    let config = ArithmeticConfig {
        modality: "cmnist".into(),
        all_triples: false,
        ..ArithmeticConfig::default()
    };
    let outcome = run(&FakeModel::exact(&["oscn", "cmnist"]), config, dir.path());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(m["modality"], "cmnist");
    assert_eq!(m["all_triples"], Value::Null);
    assert_eq!(m["equations"][1]["accuracy"], 1.0);
    assert!(is_png(&dir.path().join("arithmetic/arithmetic.png")));

    // A non-image modality gets its metrics and a note instead of a figure.
    let dir = tmp();
    let config = ArithmeticConfig {
        modality: "audio".into(),
        ..ArithmeticConfig::default()
    };
    let outcome = run(&FakeModel::exact(&["audio"]), config, dir.path());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(m["all_triples"]["accuracy"], 1.0);
    assert_eq!(m["figure"], Value::Null);
    assert!(m["notes"][0]
        .as_str()
        .unwrap_or("")
        .contains("not an image"));
    assert!(!dir.path().join("arithmetic/arithmetic.png").exists());
}

#[test]
fn equations_outside_the_classes_are_skipped() {
    let dir = tmp();
    let config = ArithmeticConfig {
        equations: vec![[1, 9, 8], [12, 1, 1], [9, 9, 1]],
        all_triples: false,
        figure_equations: vec![[12, 1, 1], [2, 2, 1]],
        ..ArithmeticConfig::default()
    };
    let outcome = run(&FakeModel::exact(&["oscn"]), config, dir.path());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let m = metrics(dir.path());
    assert_eq!(m["equations"].as_array().map(Vec::len), Some(2));
    assert_eq!(m["skipped_equations"][0]["equation"], "12+1-1");
    // 9+9-1 = 17 is no class: evaluated, flagged, and wrong.
    assert_eq!(m["equations"][1]["target_is_class"], false);
    assert_eq!(m["equations"][1]["accuracy"], 0.0);
    assert!(m["notes"].to_string().contains("12+1-1"));
    assert!(is_png(&dir.path().join("arithmetic/arithmetic.png")));
}

#[test]
fn missing_modality_or_label_is_a_clear_error() {
    let dir = tmp();
    let config = ArithmeticConfig {
        modality: "audio".into(),
        ..ArithmeticConfig::default()
    };
    let outcome = run(&FakeModel::exact(&["oscn", "cmnist"]), config, dir.path());
    let err = outcome
        .result
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("`audio`") && err.contains("oscn, cmnist"),
        "{err}"
    );
    let written =
        std::fs::read_to_string(dir.path().join("arithmetic/error.txt")).unwrap_or_default();
    assert_eq!(written, err);

    let dir = tmp();
    let config = ArithmeticConfig {
        label: "digit".into(),
        ..ArithmeticConfig::default()
    };
    let outcome = run(&FakeModel::exact(&["oscn"]), config, dir.path());
    let err = outcome
        .result
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("no label `digit`") && err.contains("colour, number"),
        "{err}"
    );
}

#[test]
fn config_from_toml_defaults_and_validation() {
    #[derive(serde::Deserialize)]
    struct File {
        probes: Vec<Box<dyn ProbeConfig>>,
    }
    let file: File = toml::from_str(
        "[[probes]]\ntype = \"arithmetic\"\nsamples = 16\nequations = [[1, 9, 8]]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let value = serde_json::to_value(&file.probes[0]).unwrap_or_default();
    // The resolved config round-trips through TOML (an omitted seed stays omitted).
    let text = toml::to_string(&ArithmeticConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!text.contains("seed"), "{text}");
    let back: ArithmeticConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, ArithmeticConfig::default());
    assert_eq!(value["type"], "arithmetic");
    assert_eq!(value["samples"], 16);
    assert_eq!(value["modality"], "oscn");
    assert_eq!(value["equations"], serde_json::json!([[1, 9, 8]]));
    assert!(file.probes[0].validate().is_ok());

    let unknown: Result<File, _> =
        toml::from_str("[[probes]]\ntype = \"arithmetic\"\nsample = 3\n");
    assert!(unknown.is_err());

    let bad = ArithmeticConfig {
        samples: 0,
        ..ArithmeticConfig::default()
    };
    let err = bad
        .validate()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("arithmetic.samples"), "{err}");
    let bad = ArithmeticConfig {
        figure_samples: 100,
        ..ArithmeticConfig::default()
    };
    assert!(bad.validate().is_err());
    let bad = ArithmeticConfig {
        equations: vec![],
        all_triples: false,
        ..ArithmeticConfig::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn registered_under_its_typetag_name() {
    let plugin = rensou_api::inventory::iter::<ProbePlugin>
        .into_iter()
        .find(|p| p.name == rensou_arithmetic::NAME);
    let plugin = plugin.unwrap_or_else(|| panic!("arithmetic is not registered"));
    let config = (plugin.default_config)();
    assert_eq!(
        rensou_api::probe::probe_type_name(&*config).ok().as_deref(),
        Some("arithmetic")
    );
}
