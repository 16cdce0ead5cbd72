//! The fused likelihood of the sigmoid decoders: `lambda * sum_f log p(x_f | clamp(sigmoid(h_f)))`
//! per row, in one pass.
//!
//! Composed of tensor ops, that sum is six passes over the `[M*K*B, features]` decoder output
//! (sigmoid, clamp, subtract, square, sum, scale), each with its own allocation and, under
//! autodiff, its own saved state and backward pass; on the CPU most of them run on one thread.
//! The host kernel here reads the logits and the data once, on every rayon thread, and (when
//! the logits need a gradient) writes `d/dh` beside the sums; the backward pass only scales
//! those rows by the incoming gradient. The gradient follows torch's `clamp`: zero where the
//! sigmoid falls outside `[eps, 1 - eps]`.
//!
//! The kernel reads tensors through [`TensorData`], which is free on a CPU backend (burn-flex
//! hands over its buffer) and a device round trip on a GPU. So it is opt-in per backend:
//! [`install_host_kernels`] registers it for a CPU backend `I` and for `Autodiff<I>`; every
//! other backend (CUDA, whose fusion compiler already merges elementwise chains) takes the
//! composed path, which computes the same function.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
use rayon::prelude::*;

use super::{host, sigmoid_clamped};
use crate::dist::DistFamily;

/// What the fused likelihood computes: `weight * sum_f log family(x_f; loc_f, scale)` with
/// `loc = clamp(sigmoid(h), eps, 1 - eps)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SigmoidLikelihood {
    /// Likelihood family.
    pub family: DistFamily,
    /// Fixed likelihood scale (0.75 in the paper).
    pub scale: f64,
    /// The decoder's output clamp `[eps, 1 - eps]`.
    pub eps: f64,
    /// Likelihood weight `lambda`.
    pub weight: f64,
}

/// Sum over features of `log p(x | loc)` for a fixed-scale likelihood.
///
/// # Shapes
/// - `loc`: `[n, batch, features]`
/// - `x`: `[batch, features]`
/// - output: `[n, batch]`
pub(crate) fn likelihood_sum<B: Backend>(
    family: DistFamily,
    scale: f64,
    loc: Tensor<B, 3>,
    x: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [n, batch, features] = loc.dims();
    // Broadcast over the leading dim only, as [n, batch*features] - [1, batch*features]: the
    // shape CPU backends take a fast shared-row path for (a [n, batch, features] -
    // [1, batch, features] broadcast falls back to a strided loop several times slower).
    let diff = loc
        .reshape([n, batch * features])
        .sub(x.reshape([1, batch * features])) // [n, batch*features]
        .reshape([n, batch, features]);
    let f = features as f64;
    match family {
        DistFamily::Normal => {
            let constant = f * (scale.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln());
            diff.square()
                .sum_dim(2) // [n, batch, 1]
                .reshape([n, batch])
                .mul_scalar(-0.5 / (scale * scale))
                .sub_scalar(constant) // [n, batch]
        }
        DistFamily::Laplace => {
            let constant = f * (2.0 * scale).ln();
            diff.abs()
                .sum_dim(2) // [n, batch, 1]
                .reshape([n, batch])
                .mul_scalar(-1.0 / scale)
                .sub_scalar(constant) // [n, batch]
        }
    }
}

/// The composed-op form of [`sigmoid_likelihood_sum`], for any backend.
///
/// # Shapes
/// - `logits`: `[n * batch, features]`; `x`: `[batch, features]`; output: `[n * batch]`
pub(crate) fn composed<B: Backend>(
    logits: Tensor<B, 2>,
    x: Tensor<B, 2>,
    p: SigmoidLikelihood,
) -> Tensor<B, 1> {
    let [rows, features] = logits.dims();
    let batch = x.dims()[0];
    let n = rows / batch;
    let loc = sigmoid_clamped(logits, p.eps).reshape([n, batch, features]); // [n, batch, F]
    likelihood_sum(p.family, p.scale, loc, x) // [n, batch]
        .mul_scalar(p.weight)
        .reshape([rows])
}

/// `weight * sum_f log p(x_f | clamp(sigmoid(h_f), eps, 1 - eps))` for each row of `logits`;
/// row `r` is scored against data row `r % batch` (the decoders see `n` sample blocks of the
/// batch stacked). Uses the fused host kernel where [`install_host_kernels`] registered it for
/// `B`, else composed tensor ops; both give the same values and gradients.
///
/// # Shapes
/// - `logits`: `[n * batch, features]`
/// - `x`: `[batch, features]`
/// - output: `[n * batch]`
pub fn sigmoid_likelihood_sum<B: Backend>(
    logits: Tensor<B, 2>,
    x: Tensor<B, 2>,
    p: SigmoidLikelihood,
) -> Tensor<B, 1> {
    let fused = host::lookup::<Kernel<B>>();
    let f32_inputs = logits.dtype() == DType::F32 && x.dtype() == DType::F32;
    match fused {
        Some(kernel) if f32_inputs => kernel(logits, x, p),
        _ => composed(logits, x, p),
    }
}

/// A fused kernel for backend `B`.
type Kernel<B> = fn(Tensor<B, 2>, Tensor<B, 2>, SigmoidLikelihood) -> Tensor<B, 1>;

/// Registers the fused host kernels for the CPU backend `I` and for `Autodiff<I>` (idempotent,
/// cheap). Call it once for a backend whose tensors live in host memory (burn-flex): reading
/// them back is then free. On a GPU backend it would copy every decoder output to the host
/// and back, so do not call it there.
pub fn install_host_kernels<I: Backend>() {
    host::register::<Kernel<I>>(host_inner::<I>);
    host::register::<Kernel<Autodiff<I>>>(host_autodiff::<I>);
    super::im2col::install::<I>();
}

/// The fused kernel on the inner (non-autodiff) backend: sums only.
fn host_inner<I: Backend>(
    logits: Tensor<I, 2>,
    x: Tensor<I, 2>,
    p: SigmoidLikelihood,
) -> Tensor<I, 1> {
    let device = logits.device();
    let (sums, _) = host_forward(logits.into_data(), x.into_data(), p, false);
    Tensor::from_data(sums, &device)
}

/// Backward of the fused likelihood: `d/dh = upstream[row] * g[row, f]`, with `g` written by the
/// forward pass.
#[derive(Debug)]
struct FusedLikelihoodBackward;

impl<I: Backend> Backward<I, 1> for FusedLikelihoodBackward {
    type State = FloatTensor<I>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let g = ops.state;
        unary::<I, _>(ops.parents, ops.node, grads, |upstream| {
            scale_rows::<I>(g, upstream)
        });
    }
}

/// `g[r, :] *= upstream[r]`, in place when `g`'s buffer is not shared (the usual case).
///
/// # Shapes
/// - `g`: `[rows, features]`; `upstream`: `[rows]`; output: `[rows, features]`
fn scale_rows<I: Backend>(g: FloatTensor<I>, upstream: FloatTensor<I>) -> FloatTensor<I> {
    let g = Tensor::<I, 2>::from_primitive(TensorPrimitive::Float(g));
    let device = g.device();
    let up = Tensor::<I, 1>::from_primitive(TensorPrimitive::Float(upstream)).into_data();
    let mut data = g.into_data();
    let up = f32_values(&up);
    let features = data.shape.as_slice().get(1).copied().unwrap_or(1).max(1);
    if let Ok(values) = data.as_mut_slice::<f32>() {
        values
            .par_chunks_mut(features)
            .zip(up.par_iter())
            .for_each(|(row, &u)| row.iter_mut().for_each(|v| *v *= u));
    }
    Tensor::<I, 2>::from_data(data, &device)
        .into_primitive()
        .tensor()
}

/// The fused kernel on `Autodiff<I>`: a custom autodiff op whose forward pass also writes the
/// gradient of each row's sum with respect to the logits, when they need one.
fn host_autodiff<I: Backend>(
    logits: Tensor<Autodiff<I>, 2>,
    x: Tensor<Autodiff<I>, 2>,
    p: SigmoidLikelihood,
) -> Tensor<Autodiff<I>, 1> {
    let logits = logits.into_primitive().tensor();
    let node = logits.node.clone();
    // Moved out, not cloned: the decoder output is usually not shared, so reading it back is
    // free on a CPU backend.
    let logits = Tensor::<I, 2>::from_primitive(TensorPrimitive::Float(logits.primitive));
    let device = logits.device();
    let x = Tensor::<I, 2>::from_primitive(TensorPrimitive::Float(
        x.into_primitive().tensor().primitive,
    ));
    let out = match FusedLikelihoodBackward
        .prepare::<NoCheckpointing>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (sums, g) = host_forward(logits.into_data(), x.into_data(), p, true);
            let sums = Tensor::<I, 1>::from_data(sums, &device)
                .into_primitive()
                .tensor();
            let g = Tensor::<I, 2>::from_data(g, &device)
                .into_primitive()
                .tensor();
            prep.finish(g, sums)
        }
        OpsKind::UnTracked(prep) => {
            let (sums, _) = host_forward(logits.into_data(), x.into_data(), p, false);
            prep.finish(
                Tensor::<I, 1>::from_data(sums, &device)
                    .into_primitive()
                    .tensor(),
            )
        }
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// The values of f32 tensor data (empty for another dtype, which the dispatch rules out).
fn f32_values(data: &TensorData) -> &[f32] {
    data.as_slice::<f32>().unwrap_or(&[])
}

/// Per-row constants of the kernel.
#[derive(Clone, Copy, Debug)]
struct Coefficients {
    /// Clamp bounds, as f32 (as torch applies them to f32 values).
    lo: f32,
    hi: f32,
    /// `d log p / d loc = slope * (loc - x)` (Normal) or `slope * sign(loc - x)` (Laplace),
    /// times the weight.
    slope: f32,
}

/// The forward pass on host data: per-row weighted log-likelihood sums `[rows]` and, with
/// `with_grad`, their gradient with respect to the logits `[rows, features]` (else empty).
/// Shape mismatches (ruled out by the callers) give NaN sums.
fn host_forward(
    logits: TensorData,
    x: TensorData,
    p: SigmoidLikelihood,
    with_grad: bool,
) -> (TensorData, TensorData) {
    let shape = logits.shape.as_slice().to_vec();
    let (rows, features) = match shape.as_slice() {
        [r, f] => (*r, *f),
        _ => (0, 0),
    };
    let l = f32_values(&logits);
    let xv = f32_values(&x);
    let batch = xv.len().checked_div(features).unwrap_or(0);
    let sane = features > 0
        && batch > 0
        && rows % batch == 0
        && l.len() == rows * features
        && xv.len() == batch * features;
    let laplace = p.family == DistFamily::Laplace;
    let (coef, constant) = if laplace {
        (-1.0 / p.scale, (2.0 * p.scale).ln())
    } else {
        (
            -0.5 / (p.scale * p.scale),
            p.scale.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln(),
        )
    };
    let c = Coefficients {
        lo: p.eps as f32,
        hi: (1.0 - p.eps) as f32,
        slope: (p.weight * if laplace { coef } else { 2.0 * coef }) as f32,
    };
    let mut sums = vec![f32::NAN; rows];
    let mut grad = if with_grad {
        vec![0f32; rows * features]
    } else {
        Vec::new()
    };
    if sane {
        let finish =
            |raw: f32| (p.weight * (coef * f64::from(raw) - features as f64 * constant)) as f32;
        let simd = Simd::detect();
        if with_grad {
            sums.par_iter_mut()
                .zip(l.par_chunks(features))
                .zip(grad.par_chunks_mut(features))
                .enumerate()
                .for_each(|(r, ((sum, lr), gr))| {
                    let xr = &xv[(r % batch) * features..(r % batch + 1) * features];
                    *sum = finish(simd.row(laplace, lr, xr, Some(gr), &c));
                });
        } else {
            sums.par_iter_mut()
                .zip(l.par_chunks(features))
                .enumerate()
                .for_each(|(r, (sum, lr))| {
                    let xr = &xv[(r % batch) * features..(r % batch + 1) * features];
                    *sum = finish(simd.row(laplace, lr, xr, None, &c));
                });
        }
    }
    let grad_shape = if with_grad {
        vec![rows, features]
    } else {
        vec![0, 0]
    };
    (
        TensorData::new(sums, [rows]),
        TensorData::new(grad, grad_shape),
    )
}

/// The instruction set the row kernel is compiled for, picked once per call.
#[derive(Clone, Copy, Debug)]
enum Simd {
    /// Whatever the build target allows (SSE2 on x86-64).
    Portable,
    /// AVX2 + FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Simd::Avx2;
            }
        }
        Simd::Portable
    }

    /// One row: the raw sum (`sum (loc - x)^2` or `sum |loc - x|`) and, into `g`, the gradient.
    fn row(
        self,
        laplace: bool,
        l: &[f32],
        x: &[f32],
        g: Option<&mut [f32]>,
        c: &Coefficients,
    ) -> f32 {
        match self {
            Simd::Portable => row_kernel(laplace, l, x, g, c),
            // SAFETY: the CPU supports the features these functions are compiled for (detected
            // above).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { row_avx2(laplace, l, x, g, c) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { row_avx512(laplace, l, x, g, c) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_avx2(
    laplace: bool,
    l: &[f32],
    x: &[f32],
    g: Option<&mut [f32]>,
    c: &Coefficients,
) -> f32 {
    row_kernel(laplace, l, x, g, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row_avx512(
    laplace: bool,
    l: &[f32],
    x: &[f32],
    g: Option<&mut [f32]>,
    c: &Coefficients,
) -> f32 {
    row_kernel(laplace, l, x, g, c)
}

/// Lanes the row kernel works in (independent accumulators, so the compiler vectorises).
const LANES: usize = 16;

#[inline(always)]
fn row_kernel(laplace: bool, l: &[f32], x: &[f32], g: Option<&mut [f32]>, c: &Coefficients) -> f32 {
    match (laplace, g) {
        (false, Some(g)) => row_generic::<false, true>(l, x, g, c),
        (false, None) => row_generic::<false, false>(l, x, &mut [], c),
        (true, Some(g)) => row_generic::<true, true>(l, x, g, c),
        (true, None) => row_generic::<true, false>(l, x, &mut [], c),
    }
}

#[inline(always)]
fn row_generic<const LAPLACE: bool, const GRAD: bool>(
    l: &[f32],
    x: &[f32],
    g: &mut [f32],
    c: &Coefficients,
) -> f32 {
    let n = l.len().min(x.len());
    let full = n / LANES * LANES;
    let mut acc = [0f32; LANES];
    if GRAD {
        for ((lc, xc), gc) in l[..full]
            .chunks_exact(LANES)
            .zip(x[..full].chunks_exact(LANES))
            .zip(g[..full].chunks_exact_mut(LANES))
        {
            for i in 0..LANES {
                let (term, grad) = element::<LAPLACE>(lc[i], xc[i], c);
                acc[i] += term;
                gc[i] = grad;
            }
        }
    } else {
        for (lc, xc) in l[..full]
            .chunks_exact(LANES)
            .zip(x[..full].chunks_exact(LANES))
        {
            for i in 0..LANES {
                acc[i] += element::<LAPLACE>(lc[i], xc[i], c).0;
            }
        }
    }
    let mut total = 0f32;
    for i in full..n {
        let (term, grad) = element::<LAPLACE>(l[i], x[i], c);
        total += term;
        if GRAD {
            g[i] = grad;
        }
    }
    total + acc.iter().sum::<f32>()
}

/// One feature: `((loc - x)^2 or |loc - x|, d(weight * log p)/dh)` with
/// `loc = clamp(sigmoid(h), lo, hi)`.
#[inline(always)]
fn element<const LAPLACE: bool>(h: f32, x: f32, c: &Coefficients) -> (f32, f32) {
    let s = 1.0 / (1.0 + exp_f32(-h));
    let inside = s >= c.lo && s <= c.hi;
    let loc = if s < c.lo {
        c.lo
    } else if s > c.hi {
        c.hi
    } else {
        s
    };
    let d = loc - x;
    let dsig = if inside { s * (1.0 - s) } else { 0.0 };
    if LAPLACE {
        let sign = if d > 0.0 {
            1.0
        } else if d < 0.0 {
            -1.0
        } else {
            0.0
        };
        (d.abs(), c.slope * sign * dsig)
    } else {
        (d * d, c.slope * d * dsig)
    }
}

/// `exp(x)` in f32 (Cephes' `expf`: range reduction by `ln 2`, degree-5 polynomial; about 1
/// ulp), branch-free so that it vectorises. Inputs are clamped to `[-87.3, 88.3]`.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut poly = 1.987_569_1e-4f32;
    poly = poly * r + 1.398_199_9e-3;
    poly = poly * r + 8.333_452e-3;
    poly = poly * r + 4.166_579_6e-2;
    poly = poly * r + 1.666_666_5e-1;
    poly = poly * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let e = poly * r * r + r + 1.0;
    let bits = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32); // n as an integer
    e * f32::from_bits(((bits + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    use crate::nn::test_util::{assert_close, values, Ad, Inner};

    /// Fused and composed agree on values and logit gradients, with logits wide enough that
    /// some sigmoids are clamped (zero gradient there) and a feature count that leaves a tail
    /// after the 16-lane chunks.
    fn fused_matches_composed(family: DistFamily) {
        install_host_kernels::<Inner>();
        let device = Default::default();
        let (n, batch, features) = (4, 3, 37);
        let logits = Tensor::<Inner, 2>::random(
            [n * batch, features],
            Distribution::Normal(0.0, 8.0),
            &device,
        );
        let x = Tensor::<Inner, 2>::random([batch, features], Distribution::Default, &device);
        let upstream =
            Tensor::<Inner, 1>::random([n * batch], Distribution::Normal(0.0, 1.0), &device);
        let p = SigmoidLikelihood {
            family,
            scale: 0.75,
            eps: 1e-6,
            weight: 1.3,
        };
        let clamped = values(logits.clone())
            .iter()
            .filter(|h| h.abs() > 14.0)
            .count();
        assert!(clamped > 0, "the test needs some clamped logits");

        let run = |fused: bool| {
            let l = Tensor::<Ad, 2>::from_inner(logits.clone()).require_grad();
            let xa = Tensor::<Ad, 2>::from_inner(x.clone());
            let out = if fused {
                sigmoid_likelihood_sum(l.clone(), xa, p)
            } else {
                composed(l.clone(), xa, p)
            };
            let grads = out
                .clone()
                .mul(Tensor::from_inner(upstream.clone()))
                .sum()
                .backward();
            let g = l.grad(&grads).map(values).unwrap_or_default();
            (values(out.inner()), g)
        };
        let (v_fused, g_fused) = run(true);
        let (v_composed, g_composed) = run(false);
        assert_close(&v_fused, &v_composed, 2e-5, "values");
        assert_close(&g_fused, &g_composed, 2e-5, "gradients");
        assert!(g_fused.contains(&0.0) && g_fused.iter().any(|g| *g != 0.0));

        // The inner backend (no autodiff) gives the same sums.
        let inner = sigmoid_likelihood_sum(logits.clone(), x.clone(), p);
        assert_close(&values(inner), &v_composed, 2e-5, "inner values");
    }

    #[test]
    fn fused_normal_matches_composed() {
        fused_matches_composed(DistFamily::Normal);
    }

    #[test]
    fn fused_laplace_matches_composed() {
        fused_matches_composed(DistFamily::Laplace);
    }

    #[test]
    fn kernels_are_registered_per_backend() {
        install_host_kernels::<Inner>();
        assert!(host::lookup::<Kernel<Inner>>().is_some());
        assert!(host::lookup::<Kernel<Ad>>().is_some());
        assert!(super::super::im2col::host_available::<Inner>());
        assert!(super::super::im2col::host_available::<Ad>());
    }

    #[test]
    fn exp_is_accurate_to_a_few_ulp() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = x.exp();
            let got = exp_f32(x);
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 4.0 * f32::EPSILON, "worst relative error {worst}");
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
