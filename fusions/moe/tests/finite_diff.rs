//! Gradients of the exact-gradient objectives (elbo, iwae, iwae-looser) against central finite
//! differences, in f64. The default float type is a per-device setting fixed at the first tensor
//! creation, so this file (its own test binary) holds a single test that sets it first.

use rensou_moe as _; // the `moe` fusion these tests exercise

use burn::backend::Autodiff;
use burn::module::Module;
use burn::tensor::{DType, Tensor};
use burn_flex::Flex;
use rensou_model::dist::DistFamily;
use rensou_model::mmvae::{ObjectiveConfig, ObjectiveKind};
use rensou_testkit::*;

#[test]
fn exact_gradients_match_finite_differences() {
    let device = Default::default();
    let f64_ok =
        burn::tensor::set_default_dtypes::<Autodiff<Flex>>(&device, DType::F64, DType::I64).is_ok();
    // f64: tight; f32 fallback: loose.
    let (h, rtol, atol) = if f64_ok {
        (1e-6, 1e-5, 1e-7)
    } else {
        (1e-2, 5e-2, 5e-3)
    };

    assert!(f64_ok, "flex supports f64");
    for (posterior, prior, shapes) in [
        (
            DistFamily::Normal,
            DistFamily::Laplace,
            vec![vec![4], vec![3]],
        ),
        (
            DistFamily::Laplace,
            DistFamily::Normal,
            vec![vec![4], vec![3]],
        ),
        (DistFamily::Normal, DistFamily::Laplace, vec![vec![4]]),
    ] {
        let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        let mut config = tiny_config(&shapes);
        config.posterior = posterior;
        config.prior.family = prior;
        config.prior.learnable = true;
        config.prior.theta = 0.0;
        let mut model = config.init::<TestBackend>(&device).expect("model");
        // A non-uniform theta so its gradient is not trivially zero.
        model.prior_theta = burn::module::Param::from_tensor(tensor::<TestBackend, 2>(
            &[0.2, -0.1, 0.3],
            [1, 3],
            &device,
        ));
        let (batch, k) = (2, 3);
        let mut xs = vec![
            tensor::<TestBackend, 2>(
                &[0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.4, 0.6],
                [batch, 4],
                &device,
            ),
            tensor::<TestBackend, 2>(&[0.8, 0.25, 0.45, 0.15, 0.65, 0.35], [batch, 3], &device),
        ];
        xs.truncate(shapes.len());
        let noise: Vec<Tensor<TestBackend, 3>> = (0..shapes.len())
            .map(|_| posterior.standard_noise::<TestBackend, 3>([k, batch, 3], &device))
            .collect();
        let params = flatten(&model);
        if f64_ok {
            assert_eq!(model.prior_theta.val().dtype(), DType::F64);
        }

        for (kind, looser) in [
            (ObjectiveKind::Elbo, false),
            (ObjectiveKind::Iwae, false),
            (ObjectiveKind::Iwae, true),
        ] {
            let objective = ObjectiveConfig::new(kind, k).with_looser(looser);
            let (_, grads) = model
                .loss_and_grads_with_noise(&xs, &objective, Some(noise.clone()))
                .expect("grads");
            // Analytic gradients, flattened in the same visiting order as `params`.
            let mut analytic = Vec::with_capacity(params.len());
            let mut collect = CollectGrads {
                grads: &grads,
                out: &mut analytic,
            };
            model.visit(&mut collect);
            assert_eq!(analytic.len(), params.len());

            let loss_at = |index: usize, delta: f64| -> f64 {
                let m = model.clone().map(&mut Perturb::new(index, delta));
                let out = m
                    .objective_with_noise(&xs, &objective, Some(noise.clone()))
                    .expect("objective");
                to_vec(out.loss)[0]
            };
            let numeric: Vec<f64> = (0..params.len())
                .map(|i| (loss_at(i, h) - loss_at(i, -h)) / (2.0 * h))
                .collect();
            // m_elbo stops the gradient through the samples inside its importance weights
            // (w_rd uses sg(z_d)), so with M > 1 its encoder gradient is not the derivative of
            // its value; decoders and prior are exact, and M = 1 is exact everywhere.
            let skip = if kind == ObjectiveKind::Elbo && config.modalities.len() > 1 {
                flatten(&model.encoders).len()
            } else {
                0
            };
            assert_close(
                &format!(
                    "{posterior}/{prior} M={} {}",
                    config.modalities.len(),
                    objective.name()
                ),
                &analytic[skip..],
                &numeric[skip..],
                rtol,
                atol,
            );
        }
    }
}

struct CollectGrads<'a> {
    grads: &'a burn::optim::GradientsParams,
    out: &'a mut Vec<f64>,
}

impl burn::module::ModuleVisitor<TestBackend> for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<TestBackend, D>>) {
        match self.grads.get::<Inner, D>(param.id) {
            Some(g) => self.out.extend(to_vec(g)),
            None => self
                .out
                .extend(std::iter::repeat_n(0.0, param.val().shape().num_elements())),
        }
    }
}
