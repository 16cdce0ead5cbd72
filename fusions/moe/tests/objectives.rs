//! The MMVAE objectives against the PyTorch reference (`bench/objective_reference.py`), the
//! M = 1 reduction to the VAE objectives, and the model's plumbing.

use rensou_moe as _; // the `moe` fusion these tests exercise

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/objectives.json"
);

use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use rensou_api::Error;
use rensou_model::dist::{logsumexp, Dist, DistFamily};
use rensou_model::mmvae::{
    paper_adam, train_step, MmvaeConfig, ModalityNetConfig, ObjectiveConfig, ObjectiveKind,
};
use rensou_model::nn::{Conv2dNet, Encoder, NetConfig};
use rensou_testkit::*;

/// The composed-op likelihood (what non-CPU backends run; the fused host kernel is checked
/// against the same fixture in `objectives_fused.rs`, its own process).
#[test]
fn values_and_gradients_match_pytorch() {
    let _serial = serial();
    check_values_and_gradients_match_pytorch(FIXTURE, 4);
}

/// The fixture itself shows the two DReG estimators differ on encoders only.
#[test]
fn dreg_and_dreg_reference_differ_on_encoders_only() {
    let _serial = serial();
    let fixture = load_fixture(FIXTURE);
    for case in &fixture.cases {
        for suffix in ["", "-looser"] {
            let dreg = &case.objectives[&format!("dreg{suffix}")];
            let reference = &case.objectives[&format!("dreg-reference{suffix}")];
            let mut encoder_differs = false;
            for (param, g) in &dreg.grads {
                let r = &reference.grads[param];
                let same = g
                    .iter()
                    .zip(r)
                    .all(|(a, b)| (a - b).abs() <= 1e-12 + 1e-9 * b.abs());
                if param.starts_with("enc") {
                    encoder_differs |= !same;
                } else {
                    assert!(
                        same,
                        "{}: {param} should not depend on the estimator",
                        case.name
                    );
                }
            }
            assert!(encoder_differs, "{}: encoders should differ", case.name);
        }
    }
}

/// With one modality the MMVAE objectives are the VAE's: ELBO with analytic KL, and IWAE.
#[test]
fn single_modality_is_a_vae() {
    let _serial = serial();
    let device = Default::default();
    for (posterior, prior) in [
        (DistFamily::Normal, DistFamily::Normal),
        (DistFamily::Normal, DistFamily::Laplace),
        (DistFamily::Laplace, DistFamily::Laplace),
    ] {
        let mut config = tiny_config(&[&[7]]);
        config.posterior = posterior;
        config.prior.family = prior;
        let model = config.init::<TestBackend>(&device).expect("model");
        let (batch, k, latent) = (4, 5, 3);
        let x = Tensor::<TestBackend, 2>::random([batch, 7], Distribution::Default, &device);
        let eps = posterior.standard_noise::<TestBackend, 3>([k, batch, latent], &device);

        // By hand, from the parts.
        let q = model.encode(0, x.clone()).expect("encode");
        let z = q.rsample_with_noise(eps.clone()); // [k, batch, latent]
        let loc = model
            .decode(0, z.clone().reshape([k * batch, latent]))
            .expect("decode")
            .reshape([k, batch, 7]);
        let lik = Dist::normal(loc.clone(), loc.ones_like().mul_scalar(0.75));
        let lpx = lik
            .log_prob(x.clone().unsqueeze_dim::<3>(0))
            .sum_dim(2)
            .reshape([k, batch]);
        let p = model.prior();
        let kl = q.kl(&p).sum_dim(1).reshape([1, batch]);
        let elbo = lpx.clone().sub(kl).mean_dim(0).reshape([batch]);
        let lw = lpx
            .add(p.log_prob_samples(z.clone()).sum_dim(2).reshape([k, batch]))
            .sub(q.log_prob_samples(z).sum_dim(2).reshape([k, batch]));
        let iwae = logsumexp(lw.clone(), 0)
            .sub_scalar((k as f64).ln())
            .reshape([batch]);
        let w = burn::tensor::activation::softmax(lw.clone(), 0);
        let dreg = w.mul(lw).sum_dim(0).reshape([batch]);

        for (name, expected) in [
            ("elbo", elbo),
            ("iwae", iwae.clone()),
            ("iwae-looser", iwae),
            ("dreg", dreg.clone()),
            ("dreg-reference-looser", dreg),
        ] {
            let out = model
                .objective_with_noise(
                    std::slice::from_ref(&x),
                    &objective_from_name(name, k),
                    Some(vec![eps.clone()]),
                )
                .expect("objective");
            assert_close(
                &format!("{posterior}/{prior} {name}"),
                &to_vec(out.value),
                &to_vec(expected),
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn gradients_are_finite_for_every_objective_and_net() {
    let _serial = serial();
    let device = Default::default();
    let mut config = tiny_config(&[&[8, 8, 3], &[5]]);
    config.modalities[0].net = NetConfig::Conv2d(Conv2dNet {
        channels: vec![4, 6],
        ..Default::default()
    });
    config.prior.learnable = true;
    let model = config.init::<TestBackend>(&device).expect("model");
    let xs = vec![
        Tensor::<TestBackend, 2>::random([3, 192], Distribution::Default, &device),
        Tensor::<TestBackend, 2>::random([3, 5], Distribution::Default, &device),
    ];
    for kind in ObjectiveKind::ALL {
        for looser in [false, true] {
            if looser && !kind.has_looser() {
                continue;
            }
            let objective = ObjectiveConfig::new(kind, 4).with_looser(looser);
            let (loss, grads) = model.loss_and_grads(&xs, &objective).expect("grads");
            assert!(to_vec(loss)[0].is_finite());
            let n_params = flatten(&model).len();
            let mut count = 0;
            let mut check = GradCheck {
                grads: &grads,
                count: &mut count,
                n: 0,
            };
            model.visit(&mut check);
            assert_eq!(
                check.n,
                n_params,
                "{}: every parameter has a gradient",
                objective.name()
            );
        }
    }
}

struct GradCheck<'a> {
    grads: &'a burn::optim::GradientsParams,
    count: &'a mut usize,
    n: usize,
}

impl burn::module::ModuleVisitor<TestBackend> for GradCheck<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<TestBackend, D>>) {
        let g = self.grads.get::<Inner, D>(param.id).unwrap_or_else(|| {
            panic!(
                "missing gradient for a parameter of shape {:?}",
                param.val().dims()
            )
        });
        let values = to_vec(g);
        assert!(values.iter().all(|v| v.is_finite()), "non-finite gradient");
        self.n += values.len();
        *self.count += 1;
    }
}

#[test]
fn fixed_prior_gets_no_gradient() {
    let _serial = serial();
    let device = Default::default();
    let model = tiny_config(&[&[6], &[4]])
        .init::<TestBackend>(&device)
        .expect("model");
    let xs = vec![
        Tensor::<TestBackend, 2>::random([2, 6], Distribution::Default, &device),
        Tensor::<TestBackend, 2>::random([2, 4], Distribution::Default, &device),
    ];
    let (_, grads) = model
        .loss_and_grads(&xs, &ObjectiveConfig::new(ObjectiveKind::Dreg, 20))
        .expect("grads");
    assert!(grads.get::<Inner, 2>(model.prior_theta.id).is_none());
}

#[test]
fn paper_shapes_mixed_nets_and_helpers() {
    let _serial = serial();
    let device = Default::default();
    let mut oscn = ModalityNetConfig::new("oscn", vec![32, 32, 3]);
    oscn.net = NetConfig::Conv2d(Conv2dNet::default());
    let cmnist = ModalityNetConfig::new("cmnist", vec![28, 28, 3]);
    let config = MmvaeConfig::new(vec![oscn, cmnist]);
    assert_eq!(config.likelihood_weights(), vec![1.0, 3072.0 / 2352.0]);
    let model = config.init::<TestBackend>(&device).expect("model");
    assert_eq!(model.encoders[0].input_dim(), 3072);
    assert_eq!(model.modality_index("cmnist"), Some(1));

    let x0 = Tensor::<TestBackend, 2>::random([2, 3072], Distribution::Default, &device);
    let x1 = Tensor::<TestBackend, 2>::random([2, 2352], Distribution::Default, &device);
    let q = model.encode(0, x0.clone()).expect("encode");
    assert_eq!(q.loc.dims(), [2, 20]);
    assert_eq!(q.scale.dims(), [2, 20]);
    // softmax * latent_dim: scales sum to the latent dim
    let sums = to_vec(q.scale.clone().sum_dim(1));
    assert!(sums.iter().all(|s| (s - 20.0).abs() < 1e-3), "{sums:?}");
    let rec = model.reconstruct(0, x0.clone()).expect("reconstruct");
    assert_eq!(rec[0].dims(), [2, 3072]);
    assert_eq!(rec[1].dims(), [2, 2352]);
    let values = to_vec(rec[0].clone());
    assert!(values
        .iter()
        .all(|&v| (1e-6 - 1e-9..=1.0 - 1e-6 + 1e-9).contains(&v)));
    let z = model.sample_prior(5);
    assert_eq!(z.dims(), [5, 20]);
    assert_eq!(model.decode(1, z).expect("decode").dims(), [5, 2352]);

    let out = model
        .objective(
            &[x0.clone(), x1.clone()],
            &ObjectiveConfig::new(ObjectiveKind::Dreg, 3),
        )
        .expect("objective");
    assert_eq!(out.value.dims(), [2]);

    // Errors on bad inputs, not panics.
    assert!(matches!(model.encode(2, x0.clone()), Err(Error::Data(_))));
    assert!(matches!(model.encode(1, x0.clone()), Err(Error::Data(_))));
    assert!(model
        .objective(
            std::slice::from_ref(&x0),
            &ObjectiveConfig::new(ObjectiveKind::Dreg, 20)
        )
        .is_err());
    assert!(model
        .objective(&[x1, x0], &ObjectiveConfig::new(ObjectiveKind::Dreg, 20))
        .is_err());
}

#[test]
fn config_validation_names_the_field() {
    let _serial = serial();
    let field_of = |r: rensou_api::Result<()>| match r {
        Err(Error::Config { field, .. }) => field,
        other => panic!("expected a config error, got {other:?}"),
    };
    let good = tiny_config(&[&[6], &[4]]);
    assert!(good.validate().is_ok());

    let mut c = good.clone();
    c.latent_dim = 0;
    assert_eq!(field_of(c.validate()), "model.latent_dim");

    let mut c = good.clone();
    c.modalities[1].name = "m0".into();
    assert_eq!(field_of(c.validate()), "model.modalities[1].name");

    let mut c = good.clone();
    c.modalities[0].likelihood_scale = 0.0;
    assert_eq!(
        field_of(c.validate()),
        "model.modalities[0].likelihood_scale"
    );

    let mut c = good.clone();
    c.modalities[0].weight = Some(f64::NAN);
    assert_eq!(field_of(c.validate()), "model.modalities[0].weight");

    let mut c = good.clone();
    c.modalities.clear();
    assert_eq!(field_of(c.validate()), "model.modalities");

    // 28x28 does not survive the CNN's conv/deconv round trip.
    let mut c = good.clone();
    c.modalities[0].item_shape = vec![28, 28, 3];
    c.modalities[0].net = NetConfig::Conv2d(Conv2dNet::default());
    assert_eq!(field_of(c.validate()), "model.modalities[0].net");

    assert_eq!(
        field_of(
            ObjectiveConfig::new(ObjectiveKind::Elbo, 1)
                .with_looser(true)
                .validate()
        ),
        "objective.looser"
    );
    assert_eq!(
        field_of(ObjectiveConfig::new(ObjectiveKind::Iwae, 0).validate()),
        "objective.k"
    );
    assert!("dreg-reference".parse::<ObjectiveKind>().is_ok());
    assert!("dreg_reference".parse::<ObjectiveKind>().is_err());
}

#[test]
fn config_reads_from_toml() {
    let _serial = serial();
    let text = r#"
        latent_dim = 20
        posterior = "normal"
        [prior]
        family = "laplace"
        [[modalities]]
        name = "oscn"
        item_shape = [32, 32, 3]
        net = { type = "conv2d" }
        [[modalities]]
        name = "cmnist"
        item_shape = [28, 28, 3]
        net = { type = "mlp", hidden = [400, 400, 400, 400] }
    "#;
    let config: MmvaeConfig = toml::from_str(text).expect("parses");
    config.validate().expect("valid");
    assert_eq!(config.modalities[1].likelihood_scale, 0.75);
    assert!(!config.prior.learnable);
    let objective: ObjectiveConfig =
        toml::from_str("kind = \"dreg-reference\"\nlooser = true").expect("parses");
    assert_eq!(objective.k, 20);
    assert_eq!(objective.name(), "dreg-reference-looser");
}

#[test]
fn training_reduces_the_loss() {
    let _serial = serial();
    let device = Default::default();
    // A sharp likelihood so that reconstruction dominates the loss.
    let mut config = tiny_config(&[&[6], &[4]]);
    for m in &mut config.modalities {
        m.likelihood_scale = 0.1;
    }
    let model = config.init::<TestBackend>(&device).expect("model");
    let xs = vec![
        Tensor::<TestBackend, 2>::random([16, 6], Distribution::Default, &device),
        Tensor::<TestBackend, 2>::random([16, 4], Distribution::Default, &device),
    ];
    let eval = ObjectiveConfig::new(ObjectiveKind::Iwae, 64);
    let before = to_vec(model.objective(&xs, &eval).expect("eval").loss)[0];
    let mut optim = paper_adam().init();
    let mut model = model;
    for _ in 0..150 {
        let (next, loss) = train_step(
            model,
            &mut optim,
            &xs,
            &ObjectiveConfig::new(ObjectiveKind::Dreg, 8),
            1e-2,
        )
        .expect("step");
        assert!(to_vec(loss)[0].is_finite());
        model = next;
    }
    let after = to_vec(model.objective(&xs, &eval).expect("eval").loss)[0];
    assert!(after < 0.8 * before, "loss {before} -> {after}");
}

/// Throughput of the paper's MLP MMVAE (batch 128, K = 20, dreg). Run with
/// `RAYON_NUM_THREADS=2 cargo test --release -p rensou-model --test objectives bench -- --ignored --nocapture`;
/// `RENSOU_BENCH_K`, `RENSOU_BENCH_STEPS`, `RENSOU_BENCH_OBJECTIVE`, `RENSOU_BENCH_M` override.
#[test]
#[ignore]
fn bench_paper_mmvae() {
    let _serial = serial();
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let k: usize = env("RENSOU_BENCH_K", "20").parse().expect("k");
    let steps: usize = env("RENSOU_BENCH_STEPS", "10").parse().expect("steps");
    let m: usize = env("RENSOU_BENCH_M", "2").parse().expect("m");
    let objective = objective_from_name(&env("RENSOU_BENCH_OBJECTIVE", "dreg"), k);
    let modalities = vec![
        ModalityNetConfig::new("oscn", vec![32, 32, 3]),
        ModalityNetConfig::new("cmnist", vec![28, 28, 3]),
    ];
    let config = MmvaeConfig::new(modalities.into_iter().take(m).collect());
    let device = Default::default();
    let result = rensou_model::mmvae::bench_train_steps::<TestBackend>(
        &config, 128, &objective, steps, 2, &device, None,
    )
    .expect("bench");
    println!("{}", serde_json::to_string(&result).expect("json"));
}

/// Checkpoints rebuild from config + record; the inner-backend model (`valid()`) infers the same.
#[test]
fn record_round_trip_and_inference_model() {
    let _serial = serial();
    use burn::module::AutodiffModule;
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    let device = Default::default();
    let mut config = tiny_config(&[&[8, 8, 3], &[5]]);
    config.modalities[0].net = NetConfig::Conv2d(Conv2dNet {
        channels: vec![4, 6],
        ..Default::default()
    });
    config.prior.learnable = true;
    // Cloned before any use: parameters are materialised at construction, so the clone (and
    // its record) holds the same weights (burn's lazy init would otherwise draw them anew).
    let model = config.init::<TestBackend>(&device).expect("model");
    let record = model.clone().into_record();
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder.record(record, ()).expect("record");
    let fresh = config.init::<TestBackend>(&device).expect("model");
    let loaded = fresh.load_record(recorder.load(bytes, &device).expect("load"));
    let (a, b) = (flatten(&model), flatten(&loaded));
    let diffs: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert!(
        diffs.is_empty(),
        "{} of {} values differ, first at {:?}",
        diffs.len(),
        a.len(),
        diffs.first()
    );

    let x = Tensor::<TestBackend, 2>::random([3, 192], Distribution::Default, &device);
    let a = to_vec(model.encode(0, x.clone()).expect("encode").loc);
    let inner = model.valid();
    let b = to_vec(inner.encode(0, x.inner()).expect("encode").loc);
    assert_close("valid() encode", &b, &a, 0.0, 1e-6);
    assert_eq!(inner.config(), model.config());
}

/// A user's own nets plug into the same model (and training step) through the traits.
mod custom_nets {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::backend::Backend;
    use rensou_model::mmvae::Mmvae;
    use rensou_model::nn::{Decoder, EncoderOutput};

    #[derive(burn::module::Module, Debug)]
    pub struct TinyEncoder<B: Backend> {
        loc: Linear<B>,
        scale: Linear<B>,
    }

    impl<B: Backend> Encoder<B> for TinyEncoder<B> {
        fn forward(&self, x: Tensor<B, 2>) -> EncoderOutput<B> {
            EncoderOutput {
                loc: self.loc.forward(x.clone()),
                scale: self.scale.forward(x).exp(),
            }
        }
        fn input_dim(&self) -> usize {
            self.loc.weight.dims()[0]
        }
        fn latent_dim(&self) -> usize {
            self.loc.weight.dims()[1]
        }
    }

    #[derive(burn::module::Module, Debug)]
    pub struct TinyDecoder<B: Backend> {
        out: Linear<B>,
    }

    impl<B: Backend> Decoder<B> for TinyDecoder<B> {
        fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
            burn::tensor::activation::sigmoid(self.out.forward(z))
        }
        fn output_dim(&self) -> usize {
            self.out.weight.dims()[1]
        }
        fn latent_dim(&self) -> usize {
            self.out.weight.dims()[0]
        }
    }

    #[test]
    fn user_nets_train() {
        let _serial = serial();
        let device = Default::default();
        let config = tiny_config(&[&[6], &[4]]);
        let enc = |d: usize| TinyEncoder {
            loc: LinearConfig::new(d, 3).init(&device),
            scale: LinearConfig::new(d, 3).init(&device),
        };
        let dec = |d: usize| TinyDecoder {
            out: LinearConfig::new(3, d).init(&device),
        };
        let model: Mmvae<TestBackend, _, _> = Mmvae::from_parts(
            config.clone(),
            vec![enc(6), enc(4)],
            vec![dec(6), dec(4)],
            &device,
        )
        .expect("model");
        // Sizes are checked against the config.
        assert!(Mmvae::<TestBackend, _, _>::from_parts(
            config,
            vec![enc(5), enc(4)],
            vec![dec(6), dec(4)],
            &device
        )
        .is_err());
        let xs = vec![
            Tensor::<TestBackend, 2>::random([4, 6], Distribution::Default, &device),
            Tensor::<TestBackend, 2>::random([4, 4], Distribution::Default, &device),
        ];
        let mut optim = paper_adam().init();
        let (model, loss) = train_step(
            model,
            &mut optim,
            &xs,
            &ObjectiveConfig::new(ObjectiveKind::Dreg, 2),
            1e-3,
        )
        .expect("step");
        assert!(to_vec(loss)[0].is_finite());
        assert_eq!(
            model.reconstruct(1, xs[1].clone()).expect("rec")[0].dims(),
            [4, 6]
        );
    }
}
