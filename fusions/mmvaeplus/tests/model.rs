//! The model with MMVAE+'s private latents: encoders and decoders are sized for
//! `[private, shared]`, probes' `encode` gives the shared part and `encode_private` the
//! private one, generation completes a shared latent, and the auxiliary priors are parameters.

use burn::tensor::{Distribution, Tensor};
use rensou_mmvaeplus::MmvaePlus;
use rensou_model::mmvae::ObjectiveConfig;
use rensou_testkit::{serial, tiny_config, TestBackend};

#[test]
fn private_and_shared_latents_have_their_own_sizes() {
    let _serial = serial();
    let device = Default::default();
    let fusion = MmvaePlus {
        private_dim: 2,
        ..MmvaePlus::default()
    };
    let config = tiny_config(&[&[6], &[2, 2]]).with_fusion(Box::new(fusion));
    assert_eq!((config.private_dim(), config.net_latent_dim()), (2, 5));
    let model = config.init::<TestBackend>(&device).unwrap();
    assert_eq!(model.fusion_params.as_ref().map(Vec::len), Some(2));
    let x = Tensor::<TestBackend, 2>::random([4, 6], Distribution::Default, &device);
    assert_eq!(model.expert(0, x.clone()).unwrap().loc.dims(), [4, 5]);
    assert_eq!(model.encode(0, x.clone()).unwrap().loc.dims(), [4, 3]);
    let private = model.encode_private(0, x.clone()).unwrap().unwrap();
    assert_eq!(private.loc.dims(), [4, 2]);
    // Generation from shared latents of either modality, and reconstruction of both.
    let z = model.sample_prior(4); // [4, 3]
    assert_eq!(model.decode(1, z).unwrap().dims(), [4, 4]);
    let out = model.reconstruct(0, x).unwrap();
    assert_eq!((out[0].dims(), out[1].dims()), ([4, 6], [4, 4]));
    // The default fusion has no private latent.
    let moe = tiny_config(&[&[6]]);
    assert_eq!(moe.private_dim(), 0);
}

#[test]
fn training_moves_the_auxiliary_priors() {
    let _serial = serial();
    use burn::module::AutodiffModule;
    use rensou_model::mmvae::{paper_adam, train_step, ObjectiveKind};
    let device = Default::default();
    let config = tiny_config(&[&[6], &[4]]).with_fusion(Box::new(MmvaePlus {
        private_dim: 2,
        ..MmvaePlus::default()
    }));
    let mut model = config.init::<TestBackend>(&device).unwrap();
    let before: Vec<f32> = model.fusion_params.as_ref().unwrap()[1]
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    let xs = vec![
        Tensor::<TestBackend, 2>::random([8, 6], Distribution::Default, &device),
        Tensor::<TestBackend, 2>::random([8, 4], Distribution::Default, &device),
    ];
    let objective = ObjectiveConfig::new(ObjectiveKind::Dreg, 3).with_looser(true);
    let mut optim = paper_adam().init();
    for _ in 0..3 {
        let (next, loss) = train_step(model, &mut optim, &xs, &objective, 1e-2).unwrap();
        assert!(loss.into_scalar().is_finite());
        model = next;
    }
    let after: Vec<f32> = model.fusion_params.as_ref().unwrap()[1]
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    assert_ne!(
        before, after,
        "the auxiliary prior of modality 1 was trained"
    );
    // The inference copy keeps the trained values.
    let valid = model.valid();
    let kept: Vec<f32> = valid.fusion_params.as_ref().unwrap()[1]
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(kept, after);
}
