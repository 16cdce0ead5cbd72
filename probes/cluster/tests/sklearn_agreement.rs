//! Agreement with scikit-learn and scipy on the committed fixtures
//! (`tests/fixtures/make_fixtures.py` wrote `tests/fixtures/sklearn.json`).

use rensou_cluster::magnitude::average_ranks;
use rensou_cluster::{
    adjusted_rand_index, magnitude, normalized_mutual_info, pearson, silhouette_samples,
    silhouette_score, spearman, KMeans, Matrix, Silhouette, Softmax,
};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn fixture() -> Value {
    let text = include_str!("fixtures/sklearn.json");
    serde_json::from_str(text).expect("fixture parses")
}

fn matrix(v: &Value) -> Matrix {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("rows");
    let dim = rows[0].len();
    Matrix::new(rows.len(), dim, rows.concat()).expect("matrix")
}

fn ints(v: &Value) -> Vec<i64> {
    serde_json::from_value(v.clone()).expect("ints")
}

fn floats(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).expect("floats")
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: ours {a}, reference {b}");
}

#[test]
fn silhouette_matches_sklearn() {
    let f = fixture();
    let blobs = &f["blobs"];
    let x = matrix(&blobs["x"]);
    let labelings = blobs["labelings"].as_object().expect("labelings");
    for (name, labels) in labelings {
        let labels = ints(labels);
        let want = blobs["silhouette"][name].as_f64().expect("score");
        for threads in [1, 2, 3] {
            let got = silhouette_score(&x, &labels, threads).expect("silhouette");
            close(
                got,
                want,
                TOL,
                &format!("silhouette {name} ({threads} threads)"),
            );
        }
    }
    let truth = ints(&blobs["labelings"]["truth"]);
    let samples = silhouette_samples(&x, &truth, 0).expect("samples");
    for (i, (a, b)) in samples
        .iter()
        .zip(floats(&blobs["silhouette_samples_truth"]))
        .enumerate()
    {
        close(*a, b, TOL, &format!("silhouette sample {i}"));
    }
    // All labelings together, exact (no sampling below the sample size).
    let all: Vec<Vec<i64>> = labelings.values().map(ints).collect();
    let refs: Vec<&[i64]> = all.iter().map(Vec::as_slice).collect();
    let multi = Silhouette::default().scores(&x, &refs).expect("scores");
    assert!(!multi.sampled);
    for ((name, _), got) in labelings.iter().zip(multi.scores) {
        let want = blobs["silhouette"][name].as_f64().expect("score");
        close(got.expect("score"), want, TOL, name);
    }
}

#[test]
fn ari_and_nmi_match_sklearn() {
    let f = fixture();
    let mut all = f["blobs"]["labelings"]
        .as_object()
        .expect("labelings")
        .clone();
    for (k, v) in f["edge_labelings"].as_object().expect("edge") {
        all.insert(k.clone(), v.clone());
    }
    let pairs = f["pairs"].as_array().expect("pairs");
    assert!(pairs.len() > 40);
    for p in pairs {
        let (a, b) = (p["a"].as_str().expect("a"), p["b"].as_str().expect("b"));
        let (la, lb) = (ints(&all[a]), ints(&all[b]));
        let ari = adjusted_rand_index(&la, &lb).expect("ari");
        let nmi = normalized_mutual_info(&la, &lb).expect("nmi");
        close(
            ari,
            p["ari"].as_f64().expect("ari"),
            TOL,
            &format!("ARI {a} vs {b}"),
        );
        close(
            nmi,
            p["nmi"].as_f64().expect("nmi"),
            TOL,
            &format!("NMI {a} vs {b}"),
        );
    }
}

#[test]
fn magnitude_matches_scipy() {
    let f = fixture();
    let m = &f["magnitude"];
    let x = matrix(&m["x"]);
    let numbers = ints(&m["numbers"]);
    let got = magnitude(&x, &numbers).expect("magnitude");
    assert_eq!(got.numbers, (1..=9).collect::<Vec<i64>>());
    assert_eq!(got.pairs, 36);
    let means = matrix(&m["means"]);
    for (a, b) in got.means.as_slice().iter().zip(means.as_slice()) {
        close(*a, *b, TOL, "mean");
    }
    let dist = matrix(&m["distances"]);
    for (a, b) in got.distances.iter().zip(dist.as_slice()) {
        close(*a, *b, TOL, "distance");
    }
    close(
        got.pearson_r.expect("r"),
        m["pearson_r"].as_f64().expect("r"),
        TOL,
        "pearson",
    );
    close(
        got.spearman_rho.expect("rho"),
        m["spearman_rho"].as_f64().expect("rho"),
        TOL,
        "spearman",
    );
    let t = &f["spearman_ties"];
    let (a, b) = (floats(&t["a"]), floats(&t["b"]));
    close(
        spearman(&a, &b).expect("rho"),
        t["rho"].as_f64().expect("rho"),
        TOL,
        "ties rho",
    );
    close(
        pearson(&a, &b).expect("r"),
        t["pearson"].as_f64().expect("r"),
        TOL,
        "ties r",
    );
    assert_eq!(
        average_ranks(&[3.0, 1.0, 3.0, 2.0]),
        vec![3.5, 1.0, 3.5, 2.0]
    );
}

#[test]
fn kmeans_inertia_within_one_percent_of_sklearn() {
    let f = fixture();
    for (key, k) in [("blobs", 4), ("separated", 5)] {
        let x = matrix(&f[key]["x"]);
        let want = f[key]["kmeans_inertia_best_of_10"]
            .as_f64()
            .expect("inertia");
        for seed in 0..5 {
            let fit = KMeans {
                seed,
                ..KMeans::new(k)
            }
            .fit(&x)
            .expect("fit");
            assert!(
                fit.inertia <= want * 1.01,
                "{key} seed {seed}: inertia {} vs sklearn {want}",
                fit.inertia
            );
            assert!(fit.converged);
        }
    }
}

#[test]
fn kmeans_recovers_separated_blobs() {
    let f = fixture();
    let x = matrix(&f["separated"]["x"]);
    let truth = ints(&f["separated"]["labels"]);
    for seed in 0..5 {
        let fit = KMeans {
            seed,
            ..KMeans::new(5)
        }
        .fit(&x)
        .expect("fit");
        let pred: Vec<i64> = fit.labels.iter().map(|&l| l as i64).collect();
        close(
            adjusted_rand_index(&truth, &pred).expect("ari"),
            1.0,
            1e-12,
            "ARI",
        );
        close(
            normalized_mutual_info(&truth, &pred).expect("nmi"),
            1.0,
            1e-12,
            "NMI",
        );
        assert_eq!(fit.predict(&x).expect("predict"), fit.labels);
    }
}

#[test]
fn logistic_regression_matches_sklearn() {
    let f = fixture();
    let x = matrix(&f["blobs"]["x"]);
    let y = ints(&f["blobs"]["labelings"]["truth"]);
    let train = f["logistic"]["train"].as_u64().expect("train") as usize;
    let idx_train: Vec<usize> = (0..train).collect();
    let idx_test: Vec<usize> = (train..x.n()).collect();
    let model = Softmax {
        gtol: 1e-10,
        max_iter: 10_000,
        ..Softmax::default()
    }
    .fit(&x.select_rows(&idx_train), &y[..train])
    .expect("fit");
    let proba = model
        .predict_proba(&x.select_rows(&idx_test))
        .expect("proba");
    let want = matrix(&f["logistic"]["proba_test"]);
    for (a, b) in proba.iter().zip(want.as_slice()) {
        close(*a, *b, 1e-5, "probability");
    }
    let pred = model.predict(&x.select_rows(&idx_test)).expect("predict");
    let acc =
        pred.iter().zip(&y[train..]).filter(|(p, t)| p == t).count() as f64 / idx_test.len() as f64;
    close(
        acc,
        f["logistic"]["accuracy_test"].as_f64().expect("acc"),
        1e-12,
        "accuracy",
    );
}
