//! The t-SNE library: separation of clusters, determinism, metrics against scikit-learn.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rensou_tsne::affinity::{conditional_probabilities, symmetrise};
use rensou_tsne::{exact_knn, knn_accuracy, trustworthiness, Init, Points, Tsne, TsneError};

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u: f32 = 1.0 - rng.random::<f32>();
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// `clusters` Gaussian clusters of `per` points in `dim` dimensions, centres 10 apart per axis.
fn clusters(clusters: usize, per: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| normal(&mut rng) * 10.0).collect())
        .collect();
    let (mut data, mut labels) = (Vec::new(), Vec::new());
    for i in 0..clusters * per {
        let c = i % clusters;
        data.extend(centres[c].iter().map(|&m| m + normal(&mut rng)));
        labels.push(c as i64);
    }
    (data, labels)
}

#[test]
fn separates_gaussian_clusters_deterministically() {
    let (data, labels) = clusters(6, 150, 10, 1);
    let points = Points::new(&data, 10).unwrap();
    let tsne = Tsne {
        perplexity: 20.0,
        seed: 3,
        ..Tsne::default()
    };
    let fit = tsne.fit(points).unwrap();
    assert_eq!(fit.points.len(), 900);
    assert_eq!(fit.neighbours, 60);
    assert!((fit.learning_rate - 200.0).abs() < 1e-12);
    assert!((fit.final_learning_rate - 900.0).abs() < 1e-12);
    assert!(fit.kl_divergence.is_finite() && fit.kl_divergence > 0.0);
    let low = Points::from_pairs(&fit.points).unwrap();
    let acc = knn_accuracy(low, &labels, 10).unwrap();
    let trust = trustworthiness(points, low, 10).unwrap();
    assert!(acc > 0.99, "10-NN accuracy {acc}");
    assert!(trust > 0.9, "trustworthiness {trust}");
    // Same input and parameters: the same embedding, whatever the number of threads.
    let again = Tsne {
        threads: 1,
        ..tsne.clone()
    }
    .fit(points)
    .unwrap();
    assert_eq!(again.points, fit.points);
    let more = Tsne { threads: 3, ..tsne }.fit(points).unwrap();
    assert_eq!(more.points, fit.points);
}

#[test]
fn threads_do_not_change_the_result() {
    // Above 2000 points the optimisation itself runs on several threads.
    let (data, _) = clusters(7, 300, 5, 4);
    let points = Points::new(&data, 5).unwrap();
    let fit = |threads| {
        Tsne {
            early_exaggeration_iterations: 60,
            iterations: 60,
            threads,
            ..Tsne::default()
        }
        .fit(points)
        .unwrap()
    };
    let one = fit(1);
    assert_eq!(one.points, fit(2).points);
    assert_eq!(one.points, fit(4).points);
    assert_eq!(one.kl_divergence, fit(3).kl_divergence);
}

#[test]
fn random_initialisation_uses_the_seed() {
    let (data, labels) = clusters(3, 40, 4, 2);
    let points = Points::new(&data, 4).unwrap();
    let fit = |seed| {
        Tsne {
            perplexity: 10.0,
            init: Init::Random,
            seed,
            iterations: 300,
            ..Tsne::default()
        }
        .fit(points)
        .unwrap()
        .points
    };
    let (a, b, c) = (fit(1), fit(1), fit(2));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let acc = knn_accuracy(Points::from_pairs(&a).unwrap(), &labels, 5).unwrap();
    assert!(acc > 0.95, "{acc}");
}

#[test]
fn small_and_degenerate_inputs() {
    let tsne = Tsne::default();
    assert!(tsne
        .fit(Points::new(&[], 3).unwrap())
        .unwrap()
        .points
        .is_empty());
    assert_eq!(
        tsne.fit(Points::new(&[1.0, 2.0], 2).unwrap())
            .unwrap()
            .points,
        vec![[0.0, 0.0]]
    );
    // Perplexity is lowered to (n - 1) / 3 for tiny inputs.
    let data: Vec<f32> = (0..7 * 2).map(|i| (i * i % 11) as f32).collect();
    let fit = tsne.fit(Points::new(&data, 2).unwrap()).unwrap();
    assert!((fit.perplexity - 2.0).abs() < 1e-12);
    assert!(fit.points.iter().flatten().all(|v| v.is_finite()));
    // Identical points: no variance for PCA, still finite.
    let same = vec![0.5f32; 50 * 3];
    let fit = tsne.fit(Points::new(&same, 3).unwrap()).unwrap();
    assert!(fit.points.iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn invalid_parameters_and_inputs_are_named() {
    let bad = Tsne {
        perplexity: 0.5,
        ..Tsne::default()
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("tsne.perplexity"), "{err}");
    assert!(Tsne {
        theta: -0.1,
        ..Tsne::default()
    }
    .validate()
    .is_err());
    assert!(Tsne {
        learning_rate: Some(0.0),
        ..Tsne::default()
    }
    .validate()
    .is_err());
    assert!(Tsne {
        final_learning_rate: Some(f64::NAN),
        ..Tsne::default()
    }
    .validate()
    .is_err());
    assert!(Tsne {
        final_momentum: 1.0,
        ..Tsne::default()
    }
    .validate()
    .is_err());
    assert!(matches!(
        Points::new(&[1.0, f32::NAN], 1),
        Err(TsneError::Input(_))
    ));
    assert!(Points::new(&[1.0, 2.0, 3.0], 2).is_err());
    assert!(Points::new(&[1.0], 0).is_err());
    // Parameter errors become config errors of rensou-api that name the field.
    let core: rensou_api::Error = bad.validate().unwrap_err().into();
    assert!(
        matches!(core, rensou_api::Error::Config { ref field, .. } if field == "tsne.perplexity")
    );
    let parsed: Tsne = serde_json::from_str(r#"{"perplexity": 20.0, "init": "random"}"#).unwrap();
    assert_eq!(parsed.init, Init::Random);
    assert!(serde_json::from_str::<Tsne>(r#"{"perplex": 20.0}"#).is_err());
}

#[test]
fn trustworthiness_of_identity_is_one_and_of_noise_is_low() {
    let (data, _) = clusters(4, 100, 6, 5);
    let high = Points::new(&data, 6).unwrap();
    assert!((trustworthiness(high, high, 10).unwrap() - 1.0).abs() < 1e-12);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let noise: Vec<f32> = (0..400 * 2).map(|_| normal(&mut rng)).collect();
    let t = trustworthiness(high, Points::new(&noise, 2).unwrap(), 10).unwrap();
    assert!(t < 0.6, "random embedding has trustworthiness {t}");
    assert!(trustworthiness(high, Points::new(&noise[..20], 2).unwrap(), 10).is_err());
}

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn trustworthiness_agrees_with_scikit_learn() {
    let fx = fixture("trustworthiness.json");
    let dim = fx["dim"].as_u64().unwrap() as usize;
    let (x, emb) = (floats(&fx["points"]), floats(&fx["embedding"]));
    let (high, low) = (Points::new(&x, dim).unwrap(), Points::new(&emb, 2).unwrap());
    for (k, want) in fx["trustworthiness"].as_object().unwrap() {
        let k: usize = k.parse().unwrap();
        let got = trustworthiness(high, low, k).unwrap();
        let want = want.as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-6,
            "k = {k}: {got} vs scikit-learn {want}"
        );
    }
}

#[test]
fn affinities_agree_with_scikit_learn() {
    let fx = fixture("affinities.json");
    let dim = fx["dim"].as_u64().unwrap() as usize;
    let k = fx["k"].as_u64().unwrap() as usize;
    let perplexity = fx["perplexity"].as_f64().unwrap();
    let x = floats(&fx["points"]);
    let n = x.len() / dim;
    let nn = exact_knn(Points::new(&x, dim).unwrap(), k, 1);
    let p = symmetrise(&nn, &conditional_probabilities(&nn, perplexity));
    let mut want = vec![0f64; n * n];
    let (rows, cols, vals) = (
        fx["rows"].as_array().unwrap(),
        fx["cols"].as_array().unwrap(),
        fx["values"].as_array().unwrap(),
    );
    for ((r, c), v) in rows.iter().zip(cols).zip(vals) {
        want[r.as_u64().unwrap() as usize * n + c.as_u64().unwrap() as usize] = v.as_f64().unwrap();
    }
    let mut got = vec![0f64; n * n];
    for i in 0..n {
        let (cs, vs) = p.row(i);
        for (&j, &v) in cs.iter().zip(vs) {
            got[i * n + j as usize] = v;
        }
    }
    // Both calibrate to an entropy tolerance of 1e-5 from different starting points.
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs() + 1e-9,
            "{g} vs scikit-learn {w}"
        );
    }
}
