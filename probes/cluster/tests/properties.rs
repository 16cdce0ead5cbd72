//! Invariants of the metrics, checked on random inputs.

use proptest::prelude::*;
use rensou_cluster::linear::stratified_folds;
use rensou_cluster::magnitude::average_ranks;
use rensou_cluster::{
    adjusted_rand_index, magnitude, normalized_mutual_info, pearson, silhouette_samples,
    silhouette_score, spearman, KMeans, Matrix,
};

/// A labeling of `n` items with values in `0..k`.
fn labeling(n: usize, k: i64) -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(0..k, n)
}

/// Points with at least 2 and at most 60 rows, 1 to 6 columns.
fn points() -> impl Strategy<Value = Matrix> {
    (2usize..60, 1usize..6).prop_flat_map(|(n, d)| {
        prop::collection::vec(-10.0f64..10.0, n * d)
            .prop_map(move |v| Matrix::new(n, d, v).expect("valid matrix"))
    })
}

/// Renames labels through a bijection: `l -> perm[l] * 7 - 3`.
fn renamed(labels: &[i64], perm: &[i64]) -> Vec<i64> {
    labels.iter().map(|&l| perm[l as usize] * 7 - 3).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ari_nmi_of_a_labeling_with_itself_is_one(labels in (1usize..80).prop_flat_map(|n| labeling(n, 6))) {
        prop_assert!((adjusted_rand_index(&labels, &labels).unwrap() - 1.0).abs() < 1e-12);
        prop_assert!((normalized_mutual_info(&labels, &labels).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ari_nmi_are_symmetric_bounded_and_permutation_invariant(
        (a, b) in (2usize..80).prop_flat_map(|n| (labeling(n, 5), labeling(n, 4))),
        perm in Just((0..5).collect::<Vec<i64>>()).prop_shuffle(),
    ) {
        let ari = adjusted_rand_index(&a, &b).unwrap();
        let nmi = normalized_mutual_info(&a, &b).unwrap();
        prop_assert!((-1.0..=1.0 + 1e-12).contains(&ari));
        prop_assert!((0.0..=1.0 + 1e-12).contains(&nmi));
        prop_assert!((adjusted_rand_index(&b, &a).unwrap() - ari).abs() < 1e-12);
        prop_assert!((normalized_mutual_info(&b, &a).unwrap() - nmi).abs() < 1e-12);
        let ra = renamed(&a, &perm);
        prop_assert!((adjusted_rand_index(&ra, &b).unwrap() - ari).abs() < 1e-12);
        prop_assert!((normalized_mutual_info(&ra, &b).unwrap() - nmi).abs() < 1e-12);
    }

    #[test]
    fn silhouette_is_bounded_and_invariant_to_renaming(
        (x, labels) in points().prop_flat_map(|x| { let n = x.n(); (Just(x), labeling(n, 4)) }),
        perm in Just((0..4).collect::<Vec<i64>>()).prop_shuffle(),
    ) {
        let mut distinct = labels.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let result = silhouette_samples(&x, &labels, 2);
        if distinct.len() < 2 || distinct.len() >= x.n() {
            prop_assert!(result.is_err());
        } else {
            let s = result.unwrap();
            prop_assert!(s.iter().all(|v| (-1.0..=1.0).contains(v)));
            let mean = silhouette_score(&x, &labels, 1).unwrap();
            let renamed_mean = silhouette_score(&x, &renamed(&labels, &perm), 3).unwrap();
            prop_assert!((mean - renamed_mean).abs() < 1e-12);
        }
    }

    #[test]
    fn kmeans_is_deterministic_and_consistent(x in points(), k in 1usize..5, seed in 0u64..1000) {
        prop_assume!(k <= x.n());
        let base = KMeans { seed, n_init: 3, threads: 1, ..KMeans::new(k) };
        let a = base.fit(&x).unwrap();
        let b = KMeans { threads: 3, ..base }.fit(&x).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert!(a.labels.iter().all(|&l| l < k));
        let best = a.restart_inertias.iter().copied().fold(f64::INFINITY, f64::min);
        prop_assert_eq!(a.inertia, best);
        // The inertia is the sum of squared distances to the assigned centres.
        let mut inertia = 0.0;
        for (i, &l) in a.labels.iter().enumerate() {
            inertia += x.row(i).iter().zip(a.centres.row(l)).map(|(p, c)| (p - c) * (p - c)).sum::<f64>();
        }
        prop_assert!((inertia - a.inertia).abs() <= 1e-9 * inertia.max(1.0));
    }

    #[test]
    fn stratified_folds_are_balanced(labels in (5usize..200).prop_flat_map(|n| labeling(n, 6)), folds in 2usize..6, seed in 0u64..100) {
        let f = stratified_folds(&labels, folds, seed).unwrap();
        let mut sizes = vec![0usize; folds];
        for &v in &f { sizes[v] += 1; }
        prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        for class in 0..6 {
            let mut per = vec![0usize; folds];
            for (&l, &v) in labels.iter().zip(&f) { if l == class { per[v] += 1; } }
            prop_assert!(per.iter().max().unwrap() - per.iter().min().unwrap() <= 1);
        }
        prop_assert_eq!(stratified_folds(&labels, folds, seed).unwrap(), f);
    }

    #[test]
    fn correlations_are_bounded_and_spearman_is_rank_based(
        v in prop::collection::vec((-5.0f64..5.0, -5.0f64..5.0), 3..40)
    ) {
        let (a, b): (Vec<f64>, Vec<f64>) = v.into_iter().unzip();
        if let Some(r) = pearson(&a, &b) { prop_assert!((-1.0..=1.0).contains(&r)); }
        if let Some(rho) = spearman(&a, &b) {
            prop_assert!((-1.0..=1.0).contains(&rho));
            let cubed: Vec<f64> = a.iter().map(|x| x * x * x + 2.0).collect();
            prop_assert!((spearman(&cubed, &b).unwrap() - rho).abs() < 1e-9);
        }
        let ranks = average_ranks(&a);
        let n = a.len() as f64;
        prop_assert!((ranks.iter().sum::<f64>() - n * (n + 1.0) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn numbers_on_a_line_give_perfect_magnitude(
        // Integer directions keep the means exact, so equal gaps give bit-equal distances.
        dir in prop::collection::vec((-3i32..=3).prop_map(f64::from), 4),
        numbers in prop::collection::btree_set(1i64..20, 3..10),
    ) {
        let norm: f64 = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
        prop_assume!(norm > 0.1);
        // Two items per number, symmetric around the point number * dir.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for &n in &numbers {
            for sign in [-1.0, 1.0] {
                rows.extend(dir.iter().enumerate().map(|(t, v)| n as f64 * v + sign * 0.5 * (t as f64 - 1.5)));
                labels.push(n);
            }
        }
        let x = Matrix::new(labels.len(), 4, rows).unwrap();
        let m = magnitude(&x, &labels).unwrap();
        prop_assert!((m.abs_pearson_r().unwrap() - 1.0).abs() < 1e-9);
        prop_assert!((m.spearman_rho.unwrap() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn invalid_inputs_are_errors_not_panics() {
    assert!(Matrix::new(2, 2, vec![0.0; 3]).is_err());
    assert!(Matrix::new(1, 2, vec![0.0, f64::NAN]).is_err());
    assert!(Matrix::new(1, 0, vec![]).is_err());
    let x = Matrix::new(3, 1, vec![0.0, 1.0, 2.0]).unwrap();
    assert!(KMeans::new(4).fit(&x).is_err());
    assert!(KMeans::new(0).fit(&x).is_err());
    assert!(KMeans {
        n_init: 0,
        ..KMeans::new(2)
    }
    .fit(&x)
    .is_err());
    assert!(KMeans {
        tol: f64::NAN,
        ..KMeans::new(2)
    }
    .fit(&x)
    .is_err());
    assert!(adjusted_rand_index(&[0, 1], &[0]).is_err());
    assert!(silhouette_score(&x, &[0, 1], 1).is_err());
    assert!(silhouette_score(&x, &[0, 0, 0], 1).is_err());
    assert!(magnitude(&x, &[1, 1, 1]).is_err());
    assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
}

#[test]
fn kmeans_handles_duplicate_points() {
    // Fewer distinct points than clusters: empty clusters must be relocated without panicking.
    let x = Matrix::new(
        6,
        2,
        vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
    )
    .unwrap();
    let fit = KMeans::new(4).fit(&x).unwrap();
    assert_eq!(fit.inertia, 0.0);
    assert!(fit.labels.iter().all(|&l| l < 4));
}

#[test]
fn sampled_silhouette_uses_the_sample_size() {
    let n = 500;
    let rows: Vec<f64> = (0..n)
        .map(|i| (i % 5) as f64 * 10.0 + (i as f64 * 0.37).sin())
        .collect();
    let labels: Vec<i64> = (0..n).map(|i| (i % 5) as i64).collect();
    let x = Matrix::new(n, 1, rows).unwrap();
    let sil = rensou_cluster::Silhouette {
        sample_size: 100,
        seed: 3,
        threads: 2,
    };
    let a = sil.scores(&x, &[&labels]).unwrap();
    assert!(a.sampled);
    assert_eq!(a.items, 100);
    let b = sil.scores(&x, &[&labels]).unwrap();
    assert_eq!(a, b);
    let exact = silhouette_score(&x, &labels, 2).unwrap();
    let sampled = *a.scores[0].as_ref().unwrap();
    assert!(
        (exact - sampled).abs() < 0.05,
        "exact {exact}, sampled {sampled}"
    );
}
