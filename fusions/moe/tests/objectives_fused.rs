//! The objectives against the PyTorch fixture with the fused host likelihood kernel installed
//! (what the CPU build of the binary runs). Its own test binary, so that the other tests keep
//! the composed-op path that GPU backends take.

use rensou_moe as _; // the `moe` fusion these tests exercise

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/objectives.json"
);

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor};
use rensou_model::mmvae::{Mmvae, MmvaeConfig, ModalityNetConfig, ObjectiveConfig, ObjectiveKind};
use rensou_model::nn::{install_host_kernels, AnyDecoder, Conv2dNet, Decoder, NetConfig};
use rensou_testkit::*;

#[test]
fn values_and_gradients_match_pytorch_with_fused_kernels() {
    let _serial = serial();
    install_host_kernels::<Inner>();
    check_values_and_gradients_match_pytorch(FIXTURE, 4);
}

/// Every parameter gradient found in `grads`, in visiting order.
struct Collect<'a> {
    grads: &'a GradientsParams,
    out: Vec<Vec<f64>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.out.push(to_vec(g));
        }
    }
}

/// A decoder that hides its logits, so the model scores `forward(z)` (HWC locations) with
/// composed tensor ops.
#[derive(Module, Debug)]
struct NoLogits<B: Backend> {
    inner: AnyDecoder<B>,
}

impl<B: Backend> Decoder<B> for NoLogits<B> {
    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        self.inner.forward(z)
    }
    fn output_dim(&self) -> usize {
        self.inner.output_dim()
    }
    fn latent_dim(&self) -> usize {
        Decoder::latent_dim(&self.inner)
    }
}

/// The CNN decoder's logits (in CHW order, the data permuted to match) through the fused
/// kernel give the loss and gradients of scoring its HWC output with composed ops.
#[test]
fn conv_decoder_fused_matches_composed() {
    let _serial = serial();
    install_host_kernels::<Inner>();
    let device = Default::default();
    // Fixed weights and inputs: unseeded, one draw in a dozen or so put the f32 loss of the
    // two summation orders just past the 1e-5 tolerance (seen once in a CI-style run).
    <TestBackend as burn::tensor::backend::Backend>::seed(&device, 11);
    let mut oscn = ModalityNetConfig::new("oscn", vec![8, 8, 3]);
    oscn.net = NetConfig::Conv2d(Conv2dNet {
        channels: vec![4, 8],
        ..Conv2dNet::default()
    });
    let mut config = MmvaeConfig::new(vec![oscn, ModalityNetConfig::new("b", vec![5])]);
    config.latent_dim = 3;
    let fused = config.init::<TestBackend>(&device).expect("model");
    let plain = Mmvae::from_parts(
        config.clone(),
        fused.encoders.clone(),
        fused
            .decoders
            .iter()
            .map(|d| NoLogits { inner: d.clone() })
            .collect(),
        &device,
    )
    .expect("same nets");
    let xs: Vec<Tensor<TestBackend, 2>> = vec![
        Tensor::random([4, 192], Distribution::Default, &device),
        Tensor::random([4, 5], Distribution::Default, &device),
    ];
    let noise: Vec<Tensor<TestBackend, 3>> = (0..2)
        .map(|_| Tensor::random([3, 4, 3], Distribution::Normal(0.0, 1.0), &device))
        .collect();
    let objective = ObjectiveConfig::new(ObjectiveKind::Iwae, 3);
    let (loss_a, grads_a) = fused
        .loss_and_grads_with_noise(&xs, &objective, Some(noise.clone()))
        .expect("fused");
    let (loss_b, grads_b) = plain
        .loss_and_grads_with_noise(&xs, &objective, Some(noise))
        .expect("composed");
    assert_close("loss", &to_vec(loss_a), &to_vec(loss_b), 1e-5, 1e-5);
    let mut a = Collect {
        grads: &grads_a,
        out: Vec::new(),
    };
    fused.visit(&mut a);
    let mut b = Collect {
        grads: &grads_b,
        out: Vec::new(),
    };
    plain.visit(&mut b);
    assert!(a.out.len() > 10, "{} gradients", a.out.len());
    assert_eq!(a.out.len(), b.out.len());
    for (i, (ga, gb)) in a.out.iter().zip(&b.out).enumerate() {
        let scale = gb.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        // f32 sums in different orders: a wrong layout would be off by O(1), not 1e-3.
        assert_close(&format!("param {i}"), ga, gb, 1e-3, 1e-4 * scale.max(1e-3));
    }
}
