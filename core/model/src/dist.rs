//! Probability distributions: Normal and Laplace, each given by a location and a scale tensor.
//!
//! [`Dist`] carries its [`DistFamily`] as a runtime value, so a model can pick its prior,
//! posterior and likelihood families from a config file. Everything is elementwise: `log_prob`
//! and `kl` return one value per element, and callers sum over the event dimensions they mean.
//!
//! Sampling is reparameterised: `z = loc + scale * eps` with `eps` drawn from the family's
//! standard form (`N(0, 1)` or `Laplace(0, 1)`), so gradients flow to `loc` and `scale`.
//! [`Dist::rsample_with_noise`] takes `eps` from the caller, which tests use to replay the
//! noise of a reference implementation.
//!
//! KL divergences are analytic for every pair of the two families ([`Dist::kl`]), with the
//! formulas `torch.distributions.kl` registers: the reference code's `kl_divergence` helper uses
//! the analytic form whenever torch has one, and only otherwise falls back to Monte Carlo.
//! [`Dist::kl_monte_carlo`] is that fallback, `mean_k [log q(z_k) - log p(z_k)]`, for families
//! added later without a closed form.

use std::f64::consts::{LN_2, PI};

use burn::tensor::{backend::Backend, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use rensou_api::modality::Likelihood;
use rensou_api::{Error, Result};

/// The family of a location-scale distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistFamily {
    /// Normal (Gaussian); the scale is the standard deviation.
    #[default]
    Normal,
    /// Laplace (double exponential); the scale `b` gives variance `2 b^2`.
    Laplace,
}

impl DistFamily {
    /// The family's name as written in config files (`normal`, `laplace`).
    pub fn as_str(self) -> &'static str {
        match self {
            DistFamily::Normal => "normal",
            DistFamily::Laplace => "laplace",
        }
    }

    /// Standard noise `eps` of this family (location 0, scale 1), so that
    /// `loc + scale * eps` is a draw from the family with that location and scale.
    ///
    /// Laplace noise is made from `u ~ U(-1 + eps_f32, 1)` as `-sign(u) ln(1 - |u|)`, the
    /// transformation `torch.distributions.Laplace.rsample` uses.
    ///
    /// # Shapes
    /// - output: `shape`
    pub fn standard_noise<B: Backend, const D: usize>(
        self,
        shape: [usize; D],
        device: &B::Device,
    ) -> Tensor<B, D> {
        match self {
            DistFamily::Normal => Tensor::random(shape, Distribution::Normal(0.0, 1.0), device),
            DistFamily::Laplace => {
                let low = -1.0 + f64::from(f32::EPSILON);
                let u: Tensor<B, D> =
                    Tensor::random(shape, Distribution::Uniform(low, 1.0), device);
                // -sign(u) * ln(1 - |u|)
                let magnitude = u.clone().abs().neg().add_scalar(1.0).log(); // shape
                u.sign().neg().mul(magnitude) // shape
            }
        }
    }

    /// Elementwise log density of the family at `x`, given location and scale (broadcast
    /// like any binary tensor op: equal rank, dims equal or 1).
    ///
    /// # Shapes
    /// - `x`, `loc`, `scale`: broadcastable to one shape `S`
    /// - output: `S`
    pub fn log_prob<B: Backend, const D: usize>(
        self,
        x: Tensor<B, D>,
        loc: Tensor<B, D>,
        scale: Tensor<B, D>,
    ) -> Tensor<B, D> {
        match self {
            DistFamily::Normal => {
                // -(x - mu)^2 / (2 s^2) - ln s - ln(2 pi) / 2
                let z = x.sub(loc).div(scale.clone()); // S
                z.square()
                    .mul_scalar(-0.5)
                    .sub(scale.log())
                    .sub_scalar(0.5 * (2.0 * PI).ln()) // S
            }
            DistFamily::Laplace => {
                // -|x - mu| / b - ln(2 b)
                x.sub(loc)
                    .abs()
                    .div(scale.clone())
                    .neg()
                    .sub(scale.log())
                    .sub_scalar(LN_2) // S
            }
        }
    }
}

impl From<Likelihood> for DistFamily {
    fn from(value: Likelihood) -> Self {
        match value {
            Likelihood::Normal => DistFamily::Normal,
            Likelihood::Laplace => DistFamily::Laplace,
        }
    }
}

impl std::fmt::Display for DistFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DistFamily {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "normal" => Ok(DistFamily::Normal),
            "laplace" => Ok(DistFamily::Laplace),
            other => Err(Error::config(
                "family",
                format!("unknown distribution family `{other}` (expected `normal` or `laplace`)"),
            )),
        }
    }
}

/// A Normal or Laplace distribution with elementwise location and scale.
///
/// Parameters of rank `D` describe a batch of independent scalar distributions; sum
/// [`log_prob`](Dist::log_prob) over the event dimensions to get joint densities.
#[derive(Clone, Debug)]
pub struct Dist<B: Backend, const D: usize> {
    /// The family.
    pub family: DistFamily,
    /// Location (mean).
    pub loc: Tensor<B, D>,
    /// Scale (standard deviation for Normal, `b` for Laplace); positive.
    pub scale: Tensor<B, D>,
}

impl<B: Backend, const D: usize> Dist<B, D> {
    /// A distribution of `family` with the given parameters (same shape, or broadcastable).
    pub fn new(family: DistFamily, loc: Tensor<B, D>, scale: Tensor<B, D>) -> Self {
        Dist { family, loc, scale }
    }

    /// A Normal distribution.
    pub fn normal(loc: Tensor<B, D>, scale: Tensor<B, D>) -> Self {
        Self::new(DistFamily::Normal, loc, scale)
    }

    /// A Laplace distribution.
    pub fn laplace(loc: Tensor<B, D>, scale: Tensor<B, D>) -> Self {
        Self::new(DistFamily::Laplace, loc, scale)
    }

    /// The same distribution with parameters cut from the autodiff graph (stop-gradient).
    pub fn detach(self) -> Self {
        Dist {
            family: self.family,
            loc: self.loc.detach(),
            scale: self.scale.detach(),
        }
    }

    /// The mean (the location, for both families).
    pub fn mean(&self) -> Tensor<B, D> {
        self.loc.clone()
    }

    /// The variance: `scale^2` (Normal) or `2 scale^2` (Laplace).
    pub fn variance(&self) -> Tensor<B, D> {
        match self.family {
            DistFamily::Normal => self.scale.clone().square(),
            DistFamily::Laplace => self.scale.clone().square().mul_scalar(2.0),
        }
    }

    /// Elementwise log density at `x`.
    ///
    /// # Shapes
    /// - `x`: broadcastable with the parameters to a shape `S`
    /// - output: `S`
    pub fn log_prob(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.family
            .log_prob(x, self.loc.clone(), self.scale.clone())
    }

    /// Elementwise analytic `KL(self || other)`, for every pair of families (the formulas of
    /// `torch.distributions.kl`, which the reference code uses):
    ///
    /// - Normal‖Normal: `ln(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2`
    /// - Laplace‖Laplace: `ln(b2/b1) + |m1 - m2| / b2 + (b1/b2) exp(-|m1 - m2| / b1) - 1`
    /// - Normal(m1, s)‖Laplace(m2, b): `ln(b/s) + E|X - m2| / b - (1 + ln(pi/2)) / 2` with
    ///   `E|X - m2| = s sqrt(2/pi) exp(-d^2 / (2 s^2)) + d erf(d / (s sqrt 2))`, `d = m1 - m2`
    /// - Laplace(m1, b)‖Normal(m2, s): `ln(s/b) + ln(pi/2)/2 + (2 b^2 + (m1 - m2)^2) / (2 s^2) - 1`
    ///
    /// # Shapes
    /// - parameters of both: broadcastable to `S`
    /// - output: `S`
    pub fn kl(&self, other: &Dist<B, D>) -> Tensor<B, D> {
        let (m1, s1) = (self.loc.clone(), self.scale.clone());
        let (m2, s2) = (other.loc.clone(), other.scale.clone());
        match (self.family, other.family) {
            (DistFamily::Normal, DistFamily::Normal) => {
                let ratio = s1.clone().div(s2.clone()); // S
                let diff = m1.sub(m2).div(s2); // S
                                               // (ratio^2 + diff^2 - 1) / 2 - ln ratio
                ratio
                    .clone()
                    .square()
                    .add(diff.square())
                    .sub_scalar(1.0)
                    .mul_scalar(0.5)
                    .sub(ratio.log()) // S
            }
            (DistFamily::Laplace, DistFamily::Laplace) => {
                let ratio = s1.clone().div(s2.clone()); // S
                let abs_diff = m1.sub(m2).abs(); // S
                let t2 = abs_diff.clone().div(s2); // S
                let t3 = ratio.clone().mul(abs_diff.div(s1).neg().exp()); // S
                ratio.log().neg().add(t2).add(t3).sub_scalar(1.0) // S
            }
            (DistFamily::Normal, DistFamily::Laplace) => {
                let diff = m1.sub(m2); // S
                let standard = diff.clone().div(s1.clone()); // S
                let t1 = s1.clone().div(s2.clone()).log(); // S
                let t2 = s1
                    .mul_scalar((2.0 / PI).sqrt())
                    .mul(standard.clone().square().mul_scalar(-0.5).exp()); // S
                let t3 = diff.mul(standard.mul_scalar(0.5f64.sqrt()).erf()); // S
                t2.add(t3)
                    .div(s2)
                    .sub(t1)
                    .sub_scalar(0.5 * (1.0 + (0.5 * PI).ln())) // S
            }
            (DistFamily::Laplace, DistFamily::Normal) => {
                let var = s2.square(); // S
                let ratio = s1.square().div(var.clone()); // b^2 / s^2, S
                let t1 = ratio.clone().mul_scalar(2.0 / PI).log().mul_scalar(0.5); // S
                let diff2 = m1.sub(m2).square().mul_scalar(0.5).div(var); // S
                ratio.add(diff2).sub(t1).sub_scalar(1.0) // S
            }
        }
    }
}

impl<B: Backend> Dist<B, 2> {
    /// `k` reparameterised samples, noise from the backend's random generator on the
    /// parameters' device.
    ///
    /// # Shapes
    /// - parameters: `[batch, dim]`
    /// - output: `[k, batch, dim]`
    pub fn rsample(&self, k: usize) -> Tensor<B, 3> {
        let [batch, dim] = self.loc.dims();
        let eps = self
            .family
            .standard_noise::<B, 3>([k, batch, dim], &self.loc.device()); // [k, batch, dim]
        self.rsample_with_noise(eps)
    }

    /// Reparameterised samples `loc + scale * eps` with caller-supplied standard noise `eps`
    /// (of this distribution's family: see [`DistFamily::standard_noise`]).
    ///
    /// # Shapes
    /// - parameters: `[batch, dim]`
    /// - `eps`: `[k, batch, dim]`
    /// - output: `[k, batch, dim]`
    pub fn rsample_with_noise(&self, eps: Tensor<B, 3>) -> Tensor<B, 3> {
        let loc = self.loc.clone().unsqueeze_dim::<3>(0); // [1, batch, dim]
        let scale = self.scale.clone().unsqueeze_dim::<3>(0); // [1, batch, dim]
        loc.add(scale.mul(eps)) // [k, batch, dim]
    }

    /// Elementwise log density of samples drawn for this batch of distributions.
    ///
    /// # Shapes
    /// - parameters: `[batch, dim]`
    /// - `z`: `[k, batch, dim]`
    /// - output: `[k, batch, dim]`
    pub fn log_prob_samples(&self, z: Tensor<B, 3>) -> Tensor<B, 3> {
        self.family.log_prob(
            z,
            self.loc.clone().unsqueeze_dim::<3>(0), // [1, batch, dim]
            self.scale.clone().unsqueeze_dim::<3>(0), // [1, batch, dim]
        )
    }

    /// Monte Carlo `KL(self || other)` per element from samples `z` of `self`:
    /// `mean_k [log self(z_k) - log other(z_k)]`. Unbiased; with reparameterised `z` its
    /// gradient is the pathwise one. For pairs without a closed form.
    ///
    /// # Shapes
    /// - parameters of both: `[batch, dim]` (`other` may be `[1, dim]`)
    /// - `z`: `[k, batch, dim]`
    /// - output: `[batch, dim]`
    pub fn kl_monte_carlo(&self, other: &Dist<B, 2>, z: Tensor<B, 3>) -> Tensor<B, 2> {
        let lq = self.log_prob_samples(z.clone()); // [k, batch, dim]
        let lp = other.log_prob_samples(z); // [k, batch, dim]
        lq.sub(lp).mean_dim(0).squeeze_dim::<2>(0) // [batch, dim]
    }
}

/// `log sum_i exp(x_i)` along `dim`, numerically stable (the maximum is subtracted first,
/// without gradient). The reduced dimension is kept with size 1.
///
/// # Shapes
/// - `x`: any `S`
/// - output: `S` with `S[dim] = 1`
pub fn logsumexp<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    let max = x.clone().detach().max_dim(dim); // S with S[dim] = 1
    x.sub(max.clone()).exp().sum_dim(dim).log().add(max) // S with S[dim] = 1
}

/// The product of Gaussian experts (normalised): precision `T = sum_m 1/s_m^2` (`+ 1` with the
/// standard-normal prior expert `N(0, 1)`), scale `1/sqrt(T)`, location
/// `(sum_m mu_m / s_m^2) / T`. The product of experts of MVAE (Wu & Goodman 2018) and of
/// every subset in MoPoE (Sutter et al. 2021).
///
/// Errors when an expert is not Normal (the product of Laplace densities is not Laplace) or
/// when there is nothing to multiply.
///
/// # Shapes
/// - `experts`: parameters `[batch, L]` each; output the same
pub fn product_of_normals<B: Backend>(
    experts: &[&Dist<B, 2>],
    prior_expert: bool,
) -> rensou_api::Result<Dist<B, 2>> {
    if let Some(d) = experts.iter().find(|d| d.family != DistFamily::Normal) {
        return Err(rensou_api::Error::Data(format!(
            "a product of experts needs Normal experts, got {}",
            d.family.as_str()
        )));
    }
    let first = experts.first().ok_or_else(|| {
        rensou_api::Error::Data("a product of experts needs at least one expert".into())
    })?;
    let mut precision = if prior_expert {
        first.scale.ones_like() // [batch, L]
    } else {
        first.scale.zeros_like()
    };
    let mut weighted = first.loc.zeros_like(); // [batch, L]
    for d in experts {
        let t = d.scale.clone().square().recip(); // [batch, L]
        weighted = weighted.add(d.loc.clone().mul(t.clone()));
        precision = precision.add(t);
    }
    let var = precision.recip(); // [batch, L]
    Ok(Dist::normal(weighted.mul(var.clone()), var.sqrt()))
}

/// `expert` times the standard-normal prior expert `N(0, I)` when `prior_expert`, else
/// `expert` itself: a product-of-experts fusion's posterior given one modality.
///
/// # Shapes
/// - `expert`: parameters `[batch, L]` (Normal when `prior_expert`); output the same
pub fn with_prior_expert<B: Backend>(expert: Dist<B, 2>, prior_expert: bool) -> Dist<B, 2> {
    if !prior_expert {
        return expert;
    }
    // Fails only for a non-Normal expert, which product-of-experts fusions refuse up front.
    product_of_normals(&[&expert], true).unwrap_or(expert)
}
