//! Test helpers for rensou's model and its fusion plugins: the CPU test backend, PyTorch
//! fixtures (load one, build its model with the stored weights, compare every objective's
//! values and parameter gradients), and parameter perturbation for finite differences.
//!
//! A fixture is the JSON a reference script writes (`bench/objective_reference.py` for `moe`,
//! `bench/fusion_reference.py` for `poe` and `mopoe`): tiny MLP models (PyTorch layout), inputs,
//! standard noise in the order the fusion draws it, and per objective the value per item and
//! the gradient of `-mean(value)` for every parameter.
#![warn(missing_docs)]

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rensou_model::mmvae::{Mmvae, MmvaeConfig, ObjectiveConfig};
use rensou_model::nn::{AnyDecoder, AnyEncoder};
use serde::Deserialize;

/// Held by every test of a binary that runs backward passes, so they run one at a time.
///
/// burn-autodiff's graph bookkeeping is shared by the threads of a process: while another
/// thread runs a forward or backward pass, a backward pass here now and then comes back without
/// the gradients of a whole encoder (seen: `three/dreg-reference` enc1 all 0 in 2 of 25 runs of
/// objectives.rs; 0 of 25 with one test thread). rensou itself runs one autodiff graph at a
/// time per process, so only tests run concurrently.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The CPU test backend with autodiff.
pub type TestBackend = burn::backend::Autodiff<burn_flex::Flex>;
/// Its inner backend.
pub type Inner = <TestBackend as AutodiffBackend>::InnerBackend;
/// The built-in model on the test backend.
pub type Model = Mmvae<TestBackend, AnyEncoder<TestBackend>, AnyDecoder<TestBackend>>;

/// One stored tensor.
#[derive(Deserialize, Clone, Debug)]
pub struct Stored {
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

/// One objective's reference results.
#[derive(Deserialize, Clone, Debug)]
pub struct ObjectiveRef {
    /// Mean over the batch of the objective.
    pub value: f64,
    /// The objective per batch item.
    pub per_item: Vec<f64>,
    /// Gradient of `-mean(value)` per parameter name, in PyTorch layout.
    pub grads: BTreeMap<String, Vec<f64>>,
}

/// One fixture case.
#[derive(Deserialize, Clone, Debug)]
pub struct Case {
    /// Case name.
    pub name: String,
    /// The model config (with its fusion).
    pub config: MmvaeConfig,
    /// Samples `K`.
    pub k: usize,
    /// Batch size.
    pub batch: usize,
    /// Every parameter by name (`enc0.hidden1.weight`, `prior_theta`).
    pub params: BTreeMap<String, Stored>,
    /// Inputs, one flattened `[batch, features]` per modality.
    pub x: Vec<Vec<f64>>,
    /// Standard noise, one flattened `[K, batch, latent]` per draw, in the fusion's order.
    pub noise: Vec<Vec<f64>>,
    /// Reference results per objective name (`dreg-looser`).
    pub objectives: BTreeMap<String, ObjectiveRef>,
}

/// The fixture file.
#[derive(Deserialize, Clone, Debug)]
pub struct Fixture {
    /// The cases.
    pub cases: Vec<Case>,
}

/// Reads a fixture file (panics with the path if it is missing or malformed: tests only).
pub fn load_fixture(path: &str) -> Fixture {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("fixture {path}: {e} (run the script in bench/)"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A tensor of `shape` from `f64` values (stored as `f32`, the default float type).
pub fn tensor<B: Backend, const D: usize>(
    data: &[f64],
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    let values: Vec<f32> = data.iter().map(|&v| v as f32).collect();
    Tensor::<B, D>::from_data(TensorData::new(values, shape), device)
}

/// A tensor's values as `f64`, row-major.
pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn set_linear<B: Backend>(
    lin: &mut Linear<B>,
    params: &BTreeMap<String, Stored>,
    prefix: &str,
    device: &B::Device,
) {
    let w = &params[&format!("{prefix}.weight")];
    let b = &params[&format!("{prefix}.bias")];
    let (out, inp) = (w.shape[0], w.shape[1]);
    // PyTorch stores [out, in]; burn [in, out].
    let weight = tensor::<B, 2>(&w.data, [out, inp], device).transpose();
    lin.weight = Param::from_tensor(weight);
    lin.bias = Some(Param::from_tensor(tensor::<B, 1>(&b.data, [out], device)));
}

/// The built-in model on backend `B`.
pub type ModelOn<B> = Mmvae<B, AnyEncoder<B>, AnyDecoder<B>>;

/// Builds the case's model and loads its weights.
pub fn build_model(case: &Case) -> Model {
    build_model_on::<TestBackend>(case, &Default::default())
}

/// [`build_model`] on backend `B`'s `device`.
pub fn build_model_on<B: AutodiffBackend>(case: &Case, device: &B::Device) -> ModelOn<B> {
    let mut model = case.config.init::<B>(device).expect("valid config");
    for (m, enc) in model.encoders.iter_mut().enumerate() {
        let AnyEncoder::Mlp(enc) = enc else {
            panic!("mlp expected")
        };
        for (i, lin) in enc.hidden.iter_mut().enumerate() {
            set_linear(lin, &case.params, &format!("enc{m}.hidden{i}"), device);
        }
        set_linear(&mut enc.loc, &case.params, &format!("enc{m}.loc"), device);
        set_linear(
            &mut enc.scale,
            &case.params,
            &format!("enc{m}.scale"),
            device,
        );
    }
    for (m, dec) in model.decoders.iter_mut().enumerate() {
        let AnyDecoder::Mlp(dec) = dec else {
            panic!("mlp expected")
        };
        for (i, lin) in dec.hidden.iter_mut().enumerate() {
            set_linear(lin, &case.params, &format!("dec{m}.hidden{i}"), device);
        }
        set_linear(&mut dec.out, &case.params, &format!("dec{m}.out"), device);
    }
    let theta = &case.params["prior_theta"];
    model.prior_theta =
        Param::from_tensor(tensor::<B, 2>(&theta.data, [1, theta.shape[1]], device));
    // A fusion's own parameters are stored as `fusion{i}`.
    if let Some(params) = model.fusion_params.as_mut() {
        for (i, p) in params.iter_mut().enumerate() {
            let stored = &case.params[&format!("fusion{i}")];
            *p = Param::from_tensor(tensor::<B, 2>(
                &stored.data,
                [stored.shape[0], stored.shape[1]],
                device,
            ));
        }
    }
    model
}

/// The case's inputs, one `[batch, features_m]` per modality.
pub fn inputs(case: &Case) -> Vec<Tensor<TestBackend, 2>> {
    inputs_on::<TestBackend>(case, &Default::default())
}

/// [`inputs`] on backend `B`'s `device`.
pub fn inputs_on<B: Backend>(case: &Case, device: &B::Device) -> Vec<Tensor<B, 2>> {
    case.x
        .iter()
        .map(|x| tensor::<B, 2>(x, [case.batch, x.len() / case.batch], device))
        .collect()
}

/// The case's standard-noise tensors in stored order, each `[K, batch, n]` (`n` from its
/// length: the latent size, or a fusion's private size).
pub fn noise(case: &Case) -> Vec<Tensor<TestBackend, 3>> {
    noise_on::<TestBackend>(case, &Default::default())
}

/// [`noise`] on backend `B`'s `device`.
pub fn noise_on<B: Backend>(case: &Case, device: &B::Device) -> Vec<Tensor<B, 3>> {
    let (k, batch) = (case.k, case.batch);
    case.noise
        .iter()
        .map(|e| tensor::<B, 3>(e, [k, batch, e.len() / (k * batch)], device))
        .collect()
}

fn linear_grads<B: AutodiffBackend>(
    lin: &Linear<B>,
    grads: &GradientsParams,
    prefix: &str,
    out: &mut BTreeMap<String, Vec<f64>>,
) {
    let w = grads
        .get::<B::InnerBackend, 2>(lin.weight.id)
        .map(|g| to_vec(g.transpose()))
        .unwrap_or_else(|| vec![0.0; lin.weight.val().shape().num_elements()]);
    out.insert(format!("{prefix}.weight"), w);
    if let Some(bias) = &lin.bias {
        let b = grads
            .get::<B::InnerBackend, 1>(bias.id)
            .map(to_vec)
            .unwrap_or_else(|| vec![0.0; bias.val().shape().num_elements()]);
        out.insert(format!("{prefix}.bias"), b);
    }
}

/// Every parameter's gradient under the fixture's names, in PyTorch layout (zeros if absent).
pub fn named_grads<B: AutodiffBackend>(
    model: &ModelOn<B>,
    grads: &GradientsParams,
) -> BTreeMap<String, Vec<f64>> {
    let mut out = BTreeMap::new();
    for (m, enc) in model.encoders.iter().enumerate() {
        let AnyEncoder::Mlp(enc) = enc else {
            panic!("mlp expected")
        };
        for (i, lin) in enc.hidden.iter().enumerate() {
            linear_grads(lin, grads, &format!("enc{m}.hidden{i}"), &mut out);
        }
        linear_grads(&enc.loc, grads, &format!("enc{m}.loc"), &mut out);
        linear_grads(&enc.scale, grads, &format!("enc{m}.scale"), &mut out);
    }
    for (m, dec) in model.decoders.iter().enumerate() {
        let AnyDecoder::Mlp(dec) = dec else {
            panic!("mlp expected")
        };
        for (i, lin) in dec.hidden.iter().enumerate() {
            linear_grads(lin, grads, &format!("dec{m}.hidden{i}"), &mut out);
        }
        linear_grads(&dec.out, grads, &format!("dec{m}.out"), &mut out);
    }
    let theta = grads
        .get::<B::InnerBackend, 2>(model.prior_theta.id)
        .map(to_vec)
        .unwrap_or_else(|| vec![0.0; model.latent_dim()]);
    out.insert("prior_theta".into(), theta);
    for (i, p) in model.fusion_params.iter().flatten().enumerate() {
        let g = grads
            .get::<B::InnerBackend, 2>(p.id)
            .map(to_vec)
            .unwrap_or_else(|| vec![0.0; p.val().shape().num_elements()]);
        out.insert(format!("fusion{i}"), g);
    }
    out
}

/// Collects every float parameter of a module, flattened, in visiting order.
pub struct Flatten(pub Vec<f64>);

impl<B: Backend> ModuleVisitor<B> for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.extend(param.val().into_data().iter::<f64>());
    }
}

/// Adds `delta` to the `index`-th scalar of the flattened parameters.
pub struct Perturb {
    /// Index into the flattened parameters.
    pub index: usize,
    /// What is added.
    pub delta: f64,
    seen: usize,
}

impl Perturb {
    /// Perturbs scalar `index` by `delta`.
    pub fn new(index: usize, delta: f64) -> Self {
        Perturb {
            index,
            delta,
            seen: 0,
        }
    }
}

impl<B: Backend> ModuleMapper<B> for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let n = tensor.shape().num_elements();
        let tensor = if (self.seen..self.seen + n).contains(&self.index) {
            let local = self.index - self.seen;
            let shape = tensor.shape();
            let device = tensor.device();
            let dtype = tensor.dtype();
            let mut values: Vec<f64> = tensor.into_data().iter::<f64>().collect();
            values[local] += self.delta;
            Tensor::<B, D>::from_data(TensorData::new(values, shape).convert_dtype(dtype), &device)
        } else {
            tensor
        };
        self.seen += n;
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Flattened parameter values of a module.
pub fn flatten<B: Backend, M: Module<B>>(module: &M) -> Vec<f64> {
    let mut v = Flatten(Vec::new());
    module.visit(&mut v);
    v.0
}

/// `|a - b| <= rtol * |b| + atol`, elementwise, with a readable failure.
pub fn assert_close(what: &str, actual: &[f64], expected: &[f64], rtol: f64, atol: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= rtol * e.abs() + atol && a.is_finite(),
            "{what}[{i}]: got {a}, expected {e} (|diff| {:.3e})",
            (a - e).abs()
        );
    }
}

/// A tiny model config: `shapes` modalities with MLP hidden `[5, 5]` and latent 3.
pub fn tiny_config(shapes: &[&[usize]]) -> MmvaeConfig {
    let mut config = MmvaeConfig::new(
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| rensou_model::mmvae::ModalityNetConfig::new(format!("m{i}"), s.to_vec()))
            .collect(),
    );
    config.latent_dim = 3;
    for m in &mut config.modalities {
        m.net = rensou_model::nn::NetConfig::Mlp(rensou_model::nn::MlpNet {
            hidden: vec![5, 5],
            ..Default::default()
        });
    }
    config
}

/// An objective config from a fixture name such as `iwae-looser`.
pub fn objective_from_name(name: &str, k: usize) -> ObjectiveConfig {
    name.parse::<rensou_model::mmvae::ObjectiveName>()
        .expect("known objective")
        .with_k(k)
}

/// Every case and objective of the fixture at `path` (which must hold `cases` cases): per-item
/// values, loss and parameter gradients against the PyTorch reference.
pub fn check_values_and_gradients_match_pytorch(path: &str, cases: usize) {
    check_fixture_on::<TestBackend>(path, cases, &Default::default(), Tolerance::CPU);
}

/// How close a backend's values and gradients must come to a fixture's:
/// `|got - want| <= rtol * |want| + atol` (for gradients, `atol` times the parameter's largest
/// reference gradient, at least 1e-3).
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

impl Tolerance {
    /// The CPU backend's (f32 throughout, PyTorch's reference in f64).
    pub const CPU: Tolerance = Tolerance {
        rtol: 1e-4,
        atol: 1e-5,
    };
}

/// [`check_values_and_gradients_match_pytorch`] on backend `B`'s `device`, within `tol`.
/// Returns the largest relative error seen (`|got - want| / (|want| + atol)`), for reports.
pub fn check_fixture_on<B: AutodiffBackend>(
    path: &str,
    cases: usize,
    device: &B::Device,
    tol: Tolerance,
) -> f64 {
    let fixture = load_fixture(path);
    assert_eq!(fixture.cases.len(), cases, "{path}: number of cases");
    let mut worst = 0.0f64;
    let mut check = |what: &str, got: &[f64], want: &[f64], atol: f64| {
        assert_close(what, got, want, tol.rtol, atol);
        for (g, w) in got.iter().zip(want) {
            worst = worst.max((g - w).abs() / (w.abs() + atol));
        }
    };
    for case in &fixture.cases {
        let model = build_model_on::<B>(case, device);
        let xs = inputs_on::<B>(case, device);
        for (name, reference) in &case.objectives {
            let objective = objective_from_name(name, case.k);
            let what = format!("{}/{name}", case.name);

            let out = model
                .objective_with_noise(&xs, &objective, Some(noise_on::<B>(case, device)))
                .expect("objective runs");
            check(
                &format!("{what} per item"),
                &to_vec(out.value),
                &reference.per_item,
                tol.atol,
            );

            let (loss, grads) = model
                .loss_and_grads_with_noise(&xs, &objective, Some(noise_on::<B>(case, device)))
                .expect("gradients");
            check(
                &format!("{what} loss"),
                &to_vec(loss),
                &[-reference.value],
                tol.atol,
            );
            let got = named_grads(&model, &grads);
            for (param, expected) in &reference.grads {
                let scale = expected.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                check(
                    &format!("{what} d/d {param}"),
                    &got[param],
                    expected,
                    tol.atol * scale.max(1e-3),
                );
            }
        }
    }
    worst
}
