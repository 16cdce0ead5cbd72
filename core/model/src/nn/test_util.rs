//! Helpers of the nets' unit tests.

use burn::backend::Autodiff;
use burn::tensor::Tensor;

/// The CPU backend the tests run on.
pub(crate) type Inner = burn_flex::Flex;
/// Its autodiff backend.
pub(crate) type Ad = Autodiff<Inner>;

/// A tensor's values as f32.
pub(crate) fn values<const D: usize>(t: Tensor<Inner, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap_or_default()
}

/// Asserts `a` and `b` agree within `tol`, relative to the larger magnitude (at least 1).
pub(crate) fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(1.0);
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
    }
}

/// Asserts that the gradients of `param` in two backward passes agree (within 1e-4).
pub(crate) fn assert_same_grad<const D: usize>(
    param: &burn::module::Param<Tensor<Ad, D>>,
    a: &<Ad as burn::tensor::backend::AutodiffBackend>::Gradients,
    b: &<Ad as burn::tensor::backend::AutodiffBackend>::Gradients,
    what: &str,
) {
    let (ga, gb) = (param.grad(a), param.grad(b));
    let (ga, gb) = (ga.expect("first gradient"), gb.expect("second gradient"));
    assert_close(&values(ga), &values(gb), 1e-4, what);
}
