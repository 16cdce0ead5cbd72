//! MVAE's sub-sampled training: `random_subsets` adds ELBO terms of random subsets of 2 to
//! M - 1 modalities, drawn with the backend's seeded generator; refused below M = 3.

use burn::tensor::{Distribution, Tensor};
use rensou_model::mmvae::{ObjectiveConfig, ObjectiveKind};
use rensou_poe::Poe;
use rensou_testkit::{serial, tiny_config, TestBackend};

#[test]
fn random_subsets_add_terms_and_need_three_modalities() {
    let _serial = serial();
    let device = Default::default();
    let two = tiny_config(&[&[6], &[4]]).with_fusion(Box::new(Poe {
        random_subsets: 2,
        ..Poe::default()
    }));
    let e = two.validate().unwrap_err().to_string();
    assert!(
        e.contains("model.fusion.random_subsets") && e.contains("M >= 3"),
        "{e}"
    );

    let three = |random_subsets| {
        tiny_config(&[&[6], &[4], &[5]]).with_fusion(Box::new(Poe {
            random_subsets,
            ..Poe::default()
        }))
    };
    let xs: Vec<Tensor<TestBackend, 2>> = [6, 4, 5]
        .iter()
        .map(|&f| Tensor::random([3, f], Distribution::Default, &device))
        .collect();
    let objective = ObjectiveConfig::new(ObjectiveKind::Elbo, 2);
    let plain = three(0).init::<TestBackend>(&device).unwrap();
    // The joint and the three unimodal ELBOs: four noise tensors, no more.
    let noise = |n: usize| -> Vec<Tensor<TestBackend, 3>> {
        (0..n)
            .map(|_| Tensor::random([2, 3, 3], Distribution::Normal(0.0, 1.0), &device))
            .collect()
    };
    assert!(plain
        .objective_with_noise(&xs, &objective, Some(noise(4)))
        .is_ok());
    assert!(plain
        .objective_with_noise(&xs, &objective, Some(noise(5)))
        .is_err());
    // With two random subsets: six terms. Each ELBO is negative here (a Normal density of
    // scale 0.75 is below 1 everywhere and the KL is >= 0), so the sum is lower.
    let mut subsampled = three(2).init::<TestBackend>(&device).unwrap();
    subsampled.encoders = plain.encoders.clone();
    subsampled.decoders = plain.decoders.clone();
    let eps = noise(6);
    let with = subsampled
        .objective_with_noise(&xs, &objective, Some(eps.clone()))
        .unwrap()
        .value;
    let without = plain
        .objective_with_noise(&xs, &objective, Some(eps[..4].to_vec()))
        .unwrap()
        .value;
    let (with, without): (Vec<f32>, Vec<f32>) = (
        with.into_data().to_vec().unwrap(),
        without.into_data().to_vec().unwrap(),
    );
    for (a, b) in with.iter().zip(&without) {
        assert!(a.is_finite() && a < b, "{a} vs {b}");
    }
}
