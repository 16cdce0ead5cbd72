//! The model resolves its fusion once, when it is built: training steps, encoding and decoding
//! collect no registry and serialise no plugin config (issue 21: "a step's profile shows no
//! registry or serialisation work"). Its own process, so no other test's lookups count.

use rensou_moe as _; // the default fusion, which a config that names none resolves to

use burn::tensor::{Distribution, Tensor};
use rensou_api::registry::lookups;
use rensou_model::mmvae::{paper_adam, train_step, ObjectiveConfig, ObjectiveKind};
use rensou_testkit::*;

#[test]
fn steps_encode_and_decode_look_nothing_up() {
    let device = Default::default();
    // No `fusion` in the config: the mixture of experts, looked up once here.
    let config = tiny_config(&[&[4, 3], &[6]]);
    let mut model: Model = config.init(&device).expect("model");
    let mut optim = paper_adam().init();
    let xs: Vec<Tensor<TestBackend, 2>> = [12, 6]
        .iter()
        .map(|&f| Tensor::random([5, f], Distribution::Default, &device))
        .collect();
    let objective = ObjectiveConfig::new(ObjectiveKind::Dreg, 3);
    let before = lookups();
    for _ in 0..3 {
        let (next, loss) =
            train_step(model, &mut optim, &xs, &objective, 1e-3).expect("a training step");
        assert!(loss.into_scalar().is_finite());
        model = next;
    }
    let posterior = model.encode(0, xs[0].clone()).expect("encode");
    let decoded = model.decode(1, posterior.loc).expect("decode");
    assert_eq!(decoded.dims(), [5, 6]);
    assert_eq!(
        lookups(),
        before,
        "a training step, encode or decode looked a plugin up again"
    );
    // The counter does count: building another model looks its fusion up.
    let _other: Model = tiny_config(&[&[4, 3]]).init(&device).expect("model");
    assert!(lookups() > before);
}
