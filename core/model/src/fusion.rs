//! The joint posterior ("fusion") as an extension point.
//!
//! How the modalities' posteriors are joined, and the objective trained with that joint
//! posterior, is a plugin, like a modality or a probe: a crate provides
//!
//! - a config type implementing [`FusionDesign`] (typetag: `[model.fusion] type = "poe"` in a
//!   run's config) and [`FusionMath`] (the tensor code, generic over the burn backend), and
//! - a [`FusionPlugin`] record submitted with `inventory`, whose `table` is
//!   [`fusion_table::<TheConfigType>`](fusion_table).
//!
//! The model ([`Mmvae`](crate::mmvae::Mmvae)) holds only the design; at each use it looks the
//! plugin up in the registry and runs its math on the model's backend. The model, training
//! loop, checkpoints, resume, grids and every probe work with any fusion unchanged. A config
//! without `fusion` means [`DEFAULT_FUSION`] (`moe`, the MMVAE's mixture of experts).
//!
//! # Why a table of backends
//! The fusion's math is generic over the backend, but inventory records are plain statics and
//! burn modules cannot be type-erased, so the binary cannot ask a plugin for "your fusion on my
//! backend" unless that instantiation exists. [`fusion_table`] creates it: its body (compiled in
//! this crate, with this crate's features) instantiates the plugin's math for every backend
//! rensou can run on — burn-flex (feature `flex`, default), burn-cuda (feature `cuda`) and
//! burn-wgpu (feature `wgpu`), each with and without autodiff. A fusion asked of another backend is an error naming it.

use std::any::{Any, TypeId};
use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::dist::{Dist, DistFamily};
use crate::mmvae::{MmvaeConfig, ObjectiveConfig, ObjectiveKind, ObjectiveName, ObjectiveOutput};
use rensou_api::registry::{PluginRecord, Registry};
use rensou_api::{Error, Result};

/// The fusion a model config without `fusion` uses: the MMVAE's mixture of experts.
pub const DEFAULT_FUSION: &str = "moe";

/// A fusion plugin's configuration (`[model.fusion] type = "<name>"`, then its own fields).
///
/// Implement it with `#[typetag::serde]` on a `Clone + Serialize + Deserialize` struct, and
/// [`FusionMath`] on the same struct.
#[typetag::serde(tag = "type")]
pub trait FusionDesign: Any + Debug + Send + Sync {
    /// Checks the fusion's own fields and that it can join this model's posteriors (a product
    /// of experts needs Gaussian experts, say). Errors name the field (`model.fusion.subsets`).
    fn validate(&self, model: &MmvaeConfig) -> Result<()>;
    /// The objectives (estimator, looser variant) the fusion implements, the one its paper
    /// trains with first. [`check_objective`] refuses the others.
    fn objectives(&self) -> Vec<(ObjectiveKind, bool)>;
    /// Size of each modality's private latent (MMVAE+'s `w`; 0, the default: only the shared
    /// latent). Encoders then output `private + latent_dim` dimensions, the private ones first,
    /// and decoders take as many.
    fn private_dim(&self) -> usize {
        0
    }
    /// How many blocks of `K x batch` samples each decoder decodes in one training step of a
    /// model of `modalities` modalities (for memory estimates; at most, where it varies).
    /// Default: one per modality, as the mixture of experts.
    fn decoded_blocks(&self, modalities: usize) -> usize {
        modalities
    }
    /// The fusion's own parameters (MMVAE+'s auxiliary prior logits), stored in the model and
    /// its checkpoints, trained with the rest; [`FusionModel::fusion_params`] gives them back in
    /// this order.
    fn parameters(&self, model: &MmvaeConfig) -> Vec<FusionParam> {
        let _ = model;
        Vec::new()
    }
    /// A copy of this config (trait objects cannot derive `Clone`).
    fn clone_box(&self) -> Box<dyn FusionDesign>;
}

/// One parameter tensor a fusion asks the model to hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FusionParam {
    /// Shape `[rows, cols]`.
    pub shape: [usize; 2],
    /// Initial value of every entry.
    pub init: f64,
}

impl Clone for Box<dyn FusionDesign> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

impl PartialEq for Box<dyn FusionDesign> {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

/// Checks that `design` implements `objective`; the error names the fusion and lists what it
/// does implement.
pub fn check_objective(design: &dyn FusionDesign, objective: &ObjectiveConfig) -> Result<()> {
    let supported = design.objectives();
    if supported.contains(&(objective.kind, objective.looser)) {
        return Ok(());
    }
    let names: Vec<String> = supported
        .iter()
        .map(|&(kind, looser)| ObjectiveConfig::new(kind, 1).with_looser(looser).name())
        .collect();
    Err(Error::config(
        "training.objective",
        format!(
            "fusion `{}` does not implement `{}` (it implements: {})",
            fusion_type_name(design).unwrap_or_else(|_| "?".into()),
            objective.name(),
            names.join(", ")
        ),
    ))
}

/// The objective a run trains with: `asked` when given (the fusion must implement it), else
/// the fusion's own, the one its paper trains with (the first of
/// [`FusionDesign::objectives`]). The one place a run's default objective is decided.
pub fn resolve_objective(
    design: &dyn FusionDesign,
    asked: Option<ObjectiveName>,
    k: usize,
) -> Result<ObjectiveConfig> {
    let name = match asked.or_else(|| own_objective(design)) {
        Some(name) => name,
        None => {
            return Err(Error::Plugin(format!(
                "fusion `{}` implements no objective",
                fusion_type_name(design).unwrap_or_else(|_| "?".into())
            )))
        }
    };
    let objective = name.with_k(k);
    check_objective(design, &objective)?;
    Ok(objective)
}

/// `wanted` when `design` implements it, else the objective its paper trains with (the first
/// of [`FusionDesign::objectives`]), with `wanted`'s `K`. For studies that train several
/// fusions with one setting.
pub fn objective_for(design: &dyn FusionDesign, wanted: ObjectiveConfig) -> ObjectiveConfig {
    if design.objectives().contains(&(wanted.kind, wanted.looser)) {
        return wanted;
    }
    own_objective(design).map_or(wanted, |own| own.with_k(wanted.k))
}

/// The objective `design`'s paper trains with: the first of [`FusionDesign::objectives`].
fn own_objective(design: &dyn FusionDesign) -> Option<ObjectiveName> {
    let &(kind, looser) = design.objectives().first()?;
    Some(ObjectiveName::new(kind, looser))
}

/// The parts of a model a fusion computes with. [`Mmvae`](crate::mmvae::Mmvae) implements it;
/// a fusion never sees the nets themselves.
pub trait FusionModel<B: Backend> {
    /// Number of modalities `M`.
    fn num_modalities(&self) -> usize;
    /// Shared latent dimension `L`.
    fn latent_dim(&self) -> usize;
    /// Private latent dimension `P` of every modality ([`FusionDesign::private_dim`]).
    fn private_dim(&self) -> usize;
    /// The prior `p(z)` of the shared latent, parameters `[1, L]`.
    fn prior(&self) -> Dist<B, 2>;
    /// The unimodal posterior ("expert") `q_m(u | x_m)` as modality `m`'s encoder gives it,
    /// over `u = [private, shared]` (`P + L` dimensions; just the shared ones when `P = 0`).
    ///
    /// # Shapes
    /// - `x`: `[batch, features_m]`; output parameters `[batch, P + L]`
    fn expert(&self, m: usize, x: Tensor<B, 2>) -> Result<Dist<B, 2>>;
    /// `lambda_d log p(x_d | u)` of modality `d`, its decoder run once on all rows (the fused
    /// likelihood kernel where the backend has it).
    ///
    /// # Shapes
    /// - `u`: `[n, batch, P + L]`; `x`: `[batch, features_d]`; output `[n, batch]`
    fn log_likelihood(&self, d: usize, u: Tensor<B, 3>, x: Tensor<B, 2>) -> Tensor<B, 2>;
    /// The fusion's own parameters ([`FusionDesign::parameters`]), in order.
    fn fusion_params(&self) -> Vec<Tensor<B, 2>>;
}

/// Standard noise for reparameterised samples: fresh, or handed in by a caller (tests against a
/// reference implementation) and consumed in the order the fusion asks for it.
#[derive(Debug)]
pub struct Noise<B: Backend> {
    given: Option<VecDeque<Tensor<B, 3>>>,
    taken: usize,
}

impl<B: Backend> Noise<B> {
    /// Fresh noise from the backend's generator.
    pub fn fresh() -> Self {
        Noise {
            given: None,
            taken: 0,
        }
    }

    /// Caller-supplied noise tensors, used in order.
    pub fn given(tensors: Vec<Tensor<B, 3>>) -> Self {
        Noise {
            given: Some(tensors.into()),
            taken: 0,
        }
    }

    /// The next standard-noise tensor of `family` and `shape` (`[K, batch, L]`).
    pub fn next(
        &mut self,
        family: DistFamily,
        shape: [usize; 3],
        device: &B::Device,
    ) -> Result<Tensor<B, 3>> {
        self.taken += 1;
        match &mut self.given {
            None => Ok(family.standard_noise::<B, 3>(shape, device)),
            Some(queue) => {
                let eps = queue.pop_front().ok_or_else(|| {
                    Error::Data(format!(
                        "the objective needs noise tensor #{} but only {} were given",
                        self.taken,
                        self.taken - 1
                    ))
                })?;
                if eps.dims() != shape {
                    return Err(Error::Data(format!(
                        "noise tensor #{} is {:?}, expected {shape:?}",
                        self.taken,
                        eps.dims()
                    )));
                }
                Ok(eps)
            }
        }
    }

    /// Errors if caller-supplied noise was left over (the caller and the fusion disagree on
    /// how many samples the objective draws).
    pub fn finish(&self) -> Result<()> {
        match &self.given {
            Some(queue) if !queue.is_empty() => Err(Error::Data(format!(
                "{} noise tensors were given but the objective used {}",
                self.taken + queue.len(),
                self.taken
            ))),
            _ => Ok(()),
        }
    }
}

/// A fusion's tensor code, generic over the backend. Implemented by the plugin's config type.
pub trait FusionMath: FusionDesign + Clone {
    /// The objective per batch item and the training loss `-mean(value)`.
    ///
    /// `two_pass` is set when the caller can run a second, encoder-only backward pass (training
    /// through [`loss_and_grads`](crate::mmvae::Mmvae::loss_and_grads)): a fusion whose
    /// encoder gradient is not the loss's own (true DReG) then returns an
    /// [`EncoderPass`](crate::mmvae::EncoderPass) in its output.
    ///
    /// # Shapes
    /// - `xs`: one `[batch, features_m]` per modality (checked by the caller)
    /// - output: `value` `[batch]`, `loss` `[1]`
    fn objective<B: Backend>(
        &self,
        model: &dyn FusionModel<B>,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: &mut Noise<B>,
        two_pass: bool,
    ) -> Result<ObjectiveOutput<B>>;

    /// The posterior given modality `m` alone, which probes, grids and cross-generation use
    /// (its location is "the latent of an item"). Default: the expert itself.
    ///
    /// # Shapes
    /// - `expert`: parameters `[batch, L]`; output the same
    fn unimodal_posterior<B: Backend>(
        &self,
        model: &dyn FusionModel<B>,
        m: usize,
        expert: Dist<B, 2>,
    ) -> Dist<B, 2> {
        let _ = (model, m);
        expert
    }

    /// The decoder input of modality `d` for shared latents `z`: what generation from a shared
    /// latent (cross-generation, prior samples, arithmetic) decodes. `private` is modality
    /// `d`'s own private latent when it is known (reconstruction), `None` otherwise. Default
    /// (no private latent): `z` itself.
    ///
    /// # Shapes
    /// - `z`: `[n, L]`; `private`: `[n, P]`; output `[n, P + L]`
    fn decoder_input<B: Backend>(
        &self,
        model: &dyn FusionModel<B>,
        d: usize,
        z: Tensor<B, 2>,
        private: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        let _ = (model, d, private);
        z
    }
}

/// A fusion on one backend: the object-safe face of [`FusionMath`] the model calls.
pub trait Fusion<B: Backend>: Debug + Send + Sync {
    /// See [`FusionMath::objective`].
    fn objective(
        &self,
        model: &dyn FusionModel<B>,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: &mut Noise<B>,
        two_pass: bool,
    ) -> Result<ObjectiveOutput<B>>;
    /// See [`FusionMath::unimodal_posterior`].
    fn unimodal_posterior(
        &self,
        model: &dyn FusionModel<B>,
        m: usize,
        expert: Dist<B, 2>,
    ) -> Dist<B, 2>;
    /// See [`FusionMath::decoder_input`].
    fn decoder_input(
        &self,
        model: &dyn FusionModel<B>,
        d: usize,
        z: Tensor<B, 2>,
        private: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2>;
}

/// A [`FusionMath`] type as a [`Fusion`] on backend `B`.
#[derive(Debug)]
struct OnBackend<F>(F);

impl<B: Backend, F: FusionMath> Fusion<B> for OnBackend<F> {
    fn objective(
        &self,
        model: &dyn FusionModel<B>,
        xs: &[Tensor<B, 2>],
        objective: &ObjectiveConfig,
        noise: &mut Noise<B>,
        two_pass: bool,
    ) -> Result<ObjectiveOutput<B>> {
        self.0.objective(model, xs, objective, noise, two_pass)
    }

    fn unimodal_posterior(
        &self,
        model: &dyn FusionModel<B>,
        m: usize,
        expert: Dist<B, 2>,
    ) -> Dist<B, 2> {
        self.0.unimodal_posterior(model, m, expert)
    }

    fn decoder_input(
        &self,
        model: &dyn FusionModel<B>,
        d: usize,
        z: Tensor<B, 2>,
        private: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        self.0.decoder_input(model, d, z, private)
    }
}

/// Builds backend `B`'s fusion from a design, `None` if the design is not this plugin's type.
type Builder<B> = fn(&dyn FusionDesign) -> Option<Arc<dyn Fusion<B>>>;

fn build<B: Backend, F: FusionMath>(design: &dyn FusionDesign) -> Option<Arc<dyn Fusion<B>>> {
    let any: &dyn Any = design;
    any.downcast_ref::<F>()
        .map(|f| Arc::new(OnBackend(f.clone())) as Arc<dyn Fusion<B>>)
}

/// One plugin's fusion constructors, one per backend (see the module docs).
#[derive(Default)]
pub struct FusionTable {
    builders: Vec<(TypeId, &'static str, Box<dyn Any + Send + Sync>)>,
}

impl FusionTable {
    /// Adds backend `B`'s constructor for `F`.
    pub fn with<B: Backend, F: FusionMath>(mut self) -> Self {
        let builder: Builder<B> = build::<B, F>;
        self.builders.push((
            TypeId::of::<B>(),
            std::any::type_name::<B>(),
            Box::new(builder),
        ));
        self
    }

    fn builder<B: Backend>(&self) -> Option<Builder<B>> {
        self.builders
            .iter()
            .find(|(id, _, _)| *id == TypeId::of::<B>())
            .and_then(|(_, _, b)| b.downcast_ref::<Builder<B>>().copied())
    }

    /// The backends the table covers, for messages.
    pub fn backends(&self) -> Vec<&'static str> {
        self.builders.iter().map(|(_, name, _)| *name).collect()
    }
}

/// The constructors of fusion `F` for every backend rensou runs on (burn-flex with feature
/// `flex`, burn-cuda with feature `cuda`, burn-wgpu with feature `wgpu`; each with and without autodiff). Put it in the
/// plugin's record: `table: fusion_table::<MyFusion>`.
pub fn fusion_table<F: FusionMath>() -> FusionTable {
    let table = FusionTable::default();
    #[cfg(feature = "flex")]
    let table = table
        .with::<burn_flex::Flex, F>()
        .with::<burn::backend::Autodiff<burn_flex::Flex>, F>();
    #[cfg(feature = "cuda")]
    let table = table
        .with::<burn_cuda::Cuda, F>()
        .with::<burn::backend::Autodiff<burn_cuda::Cuda>, F>();
    #[cfg(feature = "wgpu")]
    let table = table
        .with::<burn_wgpu::Wgpu, F>()
        .with::<burn::backend::Autodiff<burn_wgpu::Wgpu>, F>();
    table
}

/// The registration record of a fusion plugin.
pub struct FusionPlugin {
    /// Plugin name; equals the typetag name of its config.
    pub name: &'static str,
    /// One line for `rensou list`.
    pub description: &'static str,
    /// The default configuration.
    pub default_config: fn() -> Box<dyn FusionDesign>,
    /// The per-backend constructors: [`fusion_table::<TheConfigType>`](fusion_table).
    pub table: fn() -> FusionTable,
}

inventory::collect!(FusionPlugin);

impl PluginRecord for FusionPlugin {
    const KIND: &'static str = "fusion";
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn config_tag(&self) -> Result<String> {
        fusion_type_name(&*(self.default_config)())
    }
}

/// The registered fusion plugins.
pub type FusionRegistry = Registry<FusionPlugin>;

/// The typetag name (`type = ...`) of a fusion design.
pub fn fusion_type_name(design: &dyn FusionDesign) -> Result<String> {
    rensou_api::registry::typetag_name(design, "a fusion config")
}

/// The design a model config asks for: its `fusion`, or the default plugin's default config.
pub fn resolve_design(config: Option<&dyn FusionDesign>) -> Result<Box<dyn FusionDesign>> {
    match config {
        Some(design) => Ok(design.clone_box()),
        None => {
            let registry = FusionRegistry::collect()?;
            let plugin = registry.get(DEFAULT_FUSION).map_err(|_| {
                Error::Plugin(format!(
                    "the default fusion `{DEFAULT_FUSION}` is not linked into this program \
                     (add `use rensou_moe as _;`, or name a fusion in `[model.fusion]`)"
                ))
            })?;
            Ok((plugin.default_config)())
        }
    }
}

/// A fusion resolved once, when the model using it is built: its design, its plugin's
/// per-backend constructors and the objectives it implements. Building the backend's fusion
/// from it ([`Self::on`]) needs no registry lookup and no serialisation.
#[derive(Clone)]
pub struct ResolvedFusion {
    design: Box<dyn FusionDesign>,
    name: String,
    table: Arc<FusionTable>,
    objectives: Arc<[(ObjectiveKind, bool)]>,
}

impl Debug for ResolvedFusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedFusion")
            .field("name", &self.name)
            .field("design", &self.design)
            .finish_non_exhaustive()
    }
}

impl ResolvedFusion {
    /// The fusion a model config asks for (its `fusion`, or the default plugin's default
    /// config), looked up in the registry.
    pub fn of_config(config: &MmvaeConfig) -> Result<Self> {
        Self::of_design(&*config.fusion_design()?)
    }

    /// The plugin of `design`, looked up in the registry.
    pub fn of_design(design: &dyn FusionDesign) -> Result<Self> {
        let name = fusion_type_name(design)?;
        let registry = FusionRegistry::collect()?;
        let plugin = registry.get(&name)?;
        Ok(ResolvedFusion {
            design: design.clone_box(),
            table: Arc::new((plugin.table)()),
            objectives: design.objectives().into(),
            name,
        })
    }

    /// Its name (`moe`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its design.
    pub fn design(&self) -> &dyn FusionDesign {
        &*self.design
    }

    /// Checks that it implements `objective` (a lookup in the list taken at resolution).
    pub fn check_objective(&self, objective: &ObjectiveConfig) -> Result<()> {
        if self
            .objectives
            .contains(&(objective.kind, objective.looser))
        {
            Ok(())
        } else {
            check_objective(&*self.design, objective)
        }
    }

    /// The fusion on backend `B`.
    pub fn on<B: Backend>(&self) -> Result<Arc<dyn Fusion<B>>> {
        let name = &self.name;
        let builder = self.table.builder::<B>().ok_or_else(|| {
            Error::Plugin(format!(
                "fusion `{name}` is not built for the backend {} (built for: {}); enable the \
                 matching feature of rensou-model",
                std::any::type_name::<B>(),
                self.table.backends().join(", ")
            ))
        })?;
        builder(&*self.design).ok_or_else(|| {
            Error::Plugin(format!(
                "fusion plugin `{name}` registered a table for another config type than its own"
            ))
        })
    }
}

/// Samples of one posterior and the modalities decoded from them, for
/// [`mean_log_likelihoods`].
struct Decoded<B: Backend> {
    /// The samples, `[K, batch, L]`.
    z: Tensor<B, 3>,
    /// The modalities whose likelihood is evaluated at them.
    targets: Vec<usize>,
}

/// For each entry, `mean_k sum_{d in targets} lambda_d log p(x_d | z_k)`, `[batch]` (zeros for
/// an entry without targets). Each decoder runs once, on the samples of every entry that
/// targets it stacked together, rather than once per entry.
///
/// # Shapes
/// - `entries[i].z`: `[K_i, batch, L]`; `xs`: one `[batch, features_m]` per modality
/// - output: one `[batch]` per entry
fn mean_log_likelihoods<B: Backend>(
    model: &dyn FusionModel<B>,
    entries: &[Decoded<B>],
    xs: &[Tensor<B, 2>],
) -> Vec<Tensor<B, 1>> {
    let [batch, _] = xs[0].dims();
    let device = xs[0].device();
    let mut out: Vec<Tensor<B, 1>> = entries
        .iter()
        .map(|_| Tensor::zeros([batch], &device))
        .collect();
    for (d, x) in xs.iter().enumerate() {
        let users: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].targets.contains(&d))
            .collect();
        if users.is_empty() {
            continue;
        }
        let z = Tensor::cat(users.iter().map(|&i| entries[i].z.clone()).collect(), 0); // [sum K_i, batch, L]
        let ll = model.log_likelihood(d, z, x.clone()); // [sum K_i, batch]
        let mut start = 0;
        for &i in &users {
            let k = entries[i].z.dims()[0];
            let mean = ll
                .clone()
                .narrow(0, start, k) // [K_i, batch]
                .mean_dim(0) // [1, batch]
                .reshape([batch]);
            out[i] = out[i].clone().add(mean);
            start += k;
        }
    }
    out
}

/// `KL(q || p)` summed over the latent dimensions (analytic, see
/// [`Dist::kl`](crate::dist::Dist::kl)).
///
/// # Shapes
/// - `q`: parameters `[batch, L]`; `prior`: `[1, L]`; output `[batch]`
pub fn kl_sum<B: Backend>(q: &Dist<B, 2>, prior: &Dist<B, 2>) -> Tensor<B, 1> {
    let [batch, _] = q.loc.dims();
    q.kl(prior).sum_dim(1).reshape([batch])
}

/// Every modality's expert `q_m(u | x_m)`, in model order.
///
/// # Shapes
/// - `xs`: one `[batch, features_m]` per modality; output parameters `[batch, P + L]` each
pub fn experts<B: Backend>(
    model: &dyn FusionModel<B>,
    xs: &[Tensor<B, 2>],
) -> Result<Vec<Dist<B, 2>>> {
    xs.iter()
        .enumerate()
        .map(|(m, x)| model.expert(m, x.clone()))
        .collect()
}

/// One ELBO term: a posterior over the shared latent and the modalities it reconstructs.
#[derive(Clone, Debug)]
pub struct ElboTerm<B: Backend> {
    /// The posterior, parameters `[batch, L]`.
    pub q: Dist<B, 2>,
    /// The modalities whose likelihood is evaluated at its samples.
    pub targets: Vec<usize>,
}

/// `mean_k sum_{d in targets} lambda_d log p(x_d | z_k) - KL(q || p)` for each term, with
/// `z_k ~ q` reparameterised (one `[K, batch, L]` noise tensor of `q`'s family per term, in
/// order) and each decoder run once on all the samples it decodes.
///
/// # Shapes
/// - output: one `[batch]` per term
pub fn elbo_terms<B: Backend>(
    model: &dyn FusionModel<B>,
    terms: Vec<ElboTerm<B>>,
    k: usize,
    noise: &mut Noise<B>,
    xs: &[Tensor<B, 2>],
) -> Result<Vec<Tensor<B, 1>>> {
    let prior = model.prior();
    let mut entries = Vec::with_capacity(terms.len());
    for term in &terms {
        let [batch, latent] = term.q.loc.dims();
        let eps = noise.next(term.q.family, [k, batch, latent], &term.q.loc.device())?;
        entries.push(Decoded {
            z: term.q.rsample_with_noise(eps), // [K, batch, L]
            targets: term.targets.clone(),
        });
    }
    Ok(mean_log_likelihoods(model, &entries, xs)
        .into_iter()
        .zip(&terms)
        .map(|(rec, term)| rec.sub(kl_sum(&term.q, &prior))) // [batch]
        .collect())
}

/// Errors unless the model's experts are Gaussian (`posterior = "normal"`), which a product
/// of experts needs; `fusion` names the fusion in the message.
pub fn require_normal_experts(model: &MmvaeConfig, fusion: &str) -> Result<()> {
    if model.posterior == DistFamily::Normal {
        Ok(())
    } else {
        Err(Error::config(
            "model.posterior",
            format!("`{fusion}` multiplies Gaussian experts: set posterior = \"normal\""),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    type B = burn_flex::Flex;

    /// A design no plugin registers, implementing `elbo` only.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Unregistered;

    #[typetag::serde(name = "unregistered-test-fusion")]
    impl FusionDesign for Unregistered {
        fn validate(&self, _model: &MmvaeConfig) -> Result<()> {
            Ok(())
        }
        fn objectives(&self) -> Vec<(ObjectiveKind, bool)> {
            vec![(ObjectiveKind::Elbo, false)]
        }
        fn clone_box(&self) -> Box<dyn FusionDesign> {
            Box::new(self.clone())
        }
    }

    #[test]
    fn given_noise_is_checked_in_order_and_count() {
        let device = Default::default();
        let t = |n: usize| Tensor::<B, 3>::zeros([2, 3, n], &device);
        let mut noise = Noise::given(vec![t(4), t(5)]);
        assert!(noise.next(DistFamily::Normal, [2, 3, 4], &device).is_ok());
        let e = noise
            .next(DistFamily::Normal, [2, 3, 4], &device)
            .unwrap_err();
        assert!(e.to_string().contains("#2"), "{e}");
        let e = noise
            .next(DistFamily::Normal, [2, 3, 4], &device)
            .unwrap_err();
        assert!(e.to_string().contains("only 2 were given"), "{e}");

        let noise = Noise::<B>::given(vec![t(4)]);
        let e = noise.finish().unwrap_err();
        assert!(e.to_string().contains("used 0"), "{e}");
        let mut fresh = Noise::<B>::fresh();
        assert_eq!(
            fresh
                .next(DistFamily::Laplace, [2, 3, 4], &device)
                .unwrap()
                .dims(),
            [2, 3, 4]
        );
        assert!(fresh.finish().is_ok());
    }

    #[test]
    fn objectives_are_checked_and_fall_back_to_the_fusions_own() {
        let design = Unregistered;
        let dreg = ObjectiveConfig::new(ObjectiveKind::Dreg, 7);
        let e = check_objective(&design, &dreg).unwrap_err().to_string();
        assert!(
            e.contains("unregistered-test-fusion") && e.contains("`dreg`") && e.contains("elbo"),
            "{e}"
        );
        let elbo = ObjectiveConfig::new(ObjectiveKind::Elbo, 7);
        assert!(check_objective(&design, &elbo).is_ok());
        assert_eq!(objective_for(&design, dreg), elbo);
        assert_eq!(objective_for(&design, elbo), elbo);
    }

    #[test]
    fn a_design_without_a_plugin_is_an_error_naming_it() {
        let e = ResolvedFusion::of_design(&Unregistered)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown fusion `unregistered-test-fusion`"),
            "{e}"
        );
    }
}
