//! One training step, the paper's optimiser, and a throughput benchmark.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, ElementConversion, Tensor};
use serde::{Deserialize, Serialize};

use super::{Mmvae, MmvaeConfig, ObjectiveConfig};
use crate::nn::{Decoder, Encoder};
use rensou_api::{Error, Result};

/// The paper's optimiser: Adam with AMSGrad, `epsilon = 1e-8` (PyTorch's default; burn's is
/// `1e-5`). Use with learning rate `1e-3`. burn 0.21's AMSGrad keeps the running maximum of the
/// second moment and divides by its square root, as `torch.optim.Adam(amsgrad=True)` does.
pub fn paper_adam() -> AdamConfig {
    AdamConfig::new().with_amsgrad(true).with_epsilon(1e-8)
}

/// What [`train_step`] returns: the updated model and the step's loss (shape `[1]`, detached).
pub type StepResult<B, E, D> = (
    Mmvae<B, E, D>,
    Tensor<<B as AutodiffBackend>::InnerBackend, 1>,
);

/// One optimisation step: forward, backward (two passes for `dreg`), optimiser update.
/// Returns the updated model and the step's loss (`-mean objective`, detached, shape `[1]`;
/// reading it is the only host synchronisation, and it is left to the caller).
///
/// # Shapes
/// - `xs`: one `[batch, features_m]` per modality
pub fn train_step<B, E, D, O>(
    model: Mmvae<B, E, D>,
    optim: &mut O,
    xs: &[Tensor<B, 2>],
    objective: &ObjectiveConfig,
    lr: f64,
) -> Result<StepResult<B, E, D>>
where
    B: AutodiffBackend,
    E: Encoder<B>,
    D: Decoder<B>,
    Mmvae<B, E, D>: AutodiffModule<B>,
    O: Optimizer<Mmvae<B, E, D>, B>,
{
    let (loss, grads) = model.loss_and_grads(xs, objective)?;
    let model = optim.step(lr, model, grads);
    Ok((model, loss))
}

/// Training throughput measured by [`bench_train_steps`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Batch size.
    pub batch: usize,
    /// Samples per modality `K`.
    pub k: usize,
    /// Objective name (`dreg`, `iwae-looser`, ...).
    pub objective: String,
    /// Timed steps.
    pub steps: usize,
    /// Mean wall time per step, seconds.
    pub seconds_per_step: f64,
    /// Steps per second.
    pub steps_per_s: f64,
    /// Training pairs per second (`batch * steps_per_s`).
    pub samples_per_s: f64,
    /// Loss after the last step.
    pub last_loss: f64,
}

/// Runs `warmup` then `steps` Adam steps (the paper's optimiser, lr `1e-3`) of the model built
/// from `config` on fixed random inputs in `[0, 1)` and reports the throughput of the timed
/// steps. Meant for `rensou bench train`, beside the PyTorch reference
/// (`shared/bench/torch_reference.py`).
///
/// With `trace`, each stage (model built, inputs on the device, every step) is reported to it
/// as it finishes, each step waited for: a diagnosis mode for a first run on a new device
/// (where kernel compilation can dominate), whose waits slow the timed steps a little.
pub fn bench_train_steps<B: AutodiffBackend>(
    config: &MmvaeConfig,
    batch: usize,
    objective: &ObjectiveConfig,
    steps: usize,
    warmup: usize,
    device: &B::Device,
    trace: Option<&dyn Fn(&str)>,
) -> Result<BenchResult> {
    if batch == 0 || steps == 0 {
        return Err(Error::config("bench", "batch and steps must be >= 1"));
    }
    objective.validate()?;
    let stage = Instant::now();
    // Reports a finished stage; `wait` (a loss) is read back first so its work has ended.
    let report = |what: &str, wait: Option<&Tensor<B::InnerBackend, 1>>| {
        if let Some(trace) = trace {
            let value = wait.map(|l| l.clone().into_scalar().elem::<f64>());
            let value = value.map(|v| format!(", loss {v:.2}")).unwrap_or_default();
            trace(&format!(
                "{what} at {:.2} s{value}",
                stage.elapsed().as_secs_f64()
            ));
        }
    };
    let mut model = config.init::<B>(device)?;
    let mut optim = paper_adam().init::<B, _>();
    report("model built", None);
    let xs: Vec<Tensor<B, 2>> = config
        .modalities
        .iter()
        .map(|m| Tensor::random([batch, m.features()], Distribution::Default, device))
        .collect();
    if trace.is_some() {
        let _ = xs.first().map(|x| x.clone().sum().into_scalar()); // the device is up
        report("inputs on the device", None);
    }
    let mut last = None;
    for i in 0..warmup {
        let (next, loss) = train_step(model, &mut optim, &xs, objective, 1e-3)?;
        model = next;
        report(&format!("warm-up step {}/{warmup}", i + 1), Some(&loss));
        last = Some(loss);
    }
    if let Some(loss) = last.take() {
        let _ = loss.into_scalar(); // wait for the warm-up to finish
    }
    let start = Instant::now();
    for i in 0..steps {
        let (next, loss) = train_step(model, &mut optim, &xs, objective, 1e-3)?;
        model = next;
        report(&format!("step {}/{steps}", i + 1), Some(&loss));
        last = Some(loss);
    }
    let last_loss = match last {
        Some(loss) => loss.into_scalar().elem::<f64>(),
        None => f64::NAN,
    };
    let elapsed = start.elapsed().as_secs_f64();
    let seconds_per_step = elapsed / steps as f64;
    Ok(BenchResult {
        batch,
        k: objective.k,
        objective: objective.name(),
        steps,
        seconds_per_step,
        steps_per_s: 1.0 / seconds_per_step,
        samples_per_s: batch as f64 / seconds_per_step,
        last_loss,
    })
}
