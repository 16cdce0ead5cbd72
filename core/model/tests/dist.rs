//! Normal and Laplace: densities and KL divergences against closed forms worked by hand.

use burn::tensor::Tensor;
use rensou_model::dist::{logsumexp, Dist, DistFamily};
use rensou_testkit::{assert_close, tensor, to_vec};

type B = burn::backend::Autodiff<burn_flex::Flex>;

fn t1(values: &[f64]) -> Tensor<B, 1> {
    tensor::<B, 1>(values, [values.len()], &Default::default())
}

fn close(what: &str, got: f64, expected: f64, tol: f64) {
    assert!(
        (got - expected).abs() <= tol,
        "{what}: got {got}, expected {expected}"
    );
}

#[test]
fn log_prob_matches_closed_forms() {
    // Normal(1, 2) at 2: -(0.5^2)/2 - ln 2 - ln(2 pi)/2 = -0.125 - 0.693147 - 0.918939
    let normal = Dist::normal(t1(&[1.0]), t1(&[2.0]));
    close(
        "normal",
        to_vec(normal.log_prob(t1(&[2.0])))[0],
        -1.737_085_7,
        1e-6,
    );
    // Laplace(1, 2) at 2: -1/2 - ln 4
    let laplace = Dist::laplace(t1(&[1.0]), t1(&[2.0]));
    close(
        "laplace",
        to_vec(laplace.log_prob(t1(&[2.0])))[0],
        -1.886_294_4,
        1e-6,
    );
    // Standard forms at 0: -ln(2 pi)/2 and -ln 2
    let n0 = Dist::normal(t1(&[0.0]), t1(&[1.0]));
    close(
        "normal(0,1)",
        to_vec(n0.log_prob(t1(&[0.0])))[0],
        -0.918_938_5,
        1e-6,
    );
    let l0 = Dist::laplace(t1(&[0.0]), t1(&[1.0]));
    close(
        "laplace(0,1)",
        to_vec(l0.log_prob(t1(&[0.0])))[0],
        -std::f64::consts::LN_2,
        1e-6,
    );
}

#[test]
fn kl_matches_closed_forms() {
    // q = family(0, 1), p = family(1, 2); numbers worked by hand (and equal to torch's).
    let cases = [
        // ln 2 + (1 + 1)/8 - 1/2
        (DistFamily::Normal, DistFamily::Normal, 0.443_147_2),
        // ln 2 + 1/2 + e^-1 / 2 - 1
        (DistFamily::Laplace, DistFamily::Laplace, 0.377_086_9),
        // ln 2 + (sqrt(2/pi) e^-1/2 + erf(1/sqrt 2)) / 2 - (1 + ln(pi/2)) / 2
        (DistFamily::Normal, DistFamily::Laplace, 0.550_671_3),
        // ln 2 + ln(pi/2)/2 + (2 + 1)/8 - 1
        (DistFamily::Laplace, DistFamily::Normal, 0.293_938_6),
    ];
    for (fq, fp, expected) in cases {
        let q = Dist::new(fq, t1(&[0.0]), t1(&[1.0]));
        let p = Dist::new(fp, t1(&[1.0]), t1(&[2.0]));
        close(
            &format!("KL({fq}||{fp})"),
            to_vec(q.kl(&p))[0],
            expected,
            1e-6,
        );
        // KL of a distribution with itself is zero.
        close(
            &format!("KL({fq}||{fq})"),
            to_vec(q.kl(&q.clone()))[0],
            0.0,
            1e-6,
        );
    }
}

#[test]
fn monte_carlo_kl_and_sampling_agree_with_the_closed_forms() {
    let device = Default::default();
    for (fq, fp) in [
        (DistFamily::Normal, DistFamily::Laplace),
        (DistFamily::Laplace, DistFamily::Laplace),
    ] {
        let q = Dist::new(
            fq,
            tensor::<B, 2>(&[0.5, -1.0], [1, 2], &device),
            tensor::<B, 2>(&[1.0, 0.5], [1, 2], &device),
        );
        let p = Dist::new(
            fp,
            tensor::<B, 2>(&[0.0, 0.0], [1, 2], &device),
            tensor::<B, 2>(&[1.0, 1.0], [1, 2], &device),
        );
        let z = q.rsample(200_000); // [k, 1, 2]
        let exact = to_vec(q.kl(&p));
        let mc = to_vec(q.kl_monte_carlo(&p, z.clone()));
        assert_close(&format!("MC KL({fq}||{fp})"), &mc, &exact, 0.0, 0.02);
        // Sample mean and variance.
        let mean = to_vec(z.clone().mean_dim(0).reshape([2]));
        assert_close("mean", &mean, &[0.5, -1.0], 0.0, 0.02);
        let var = to_vec(z.var(0).reshape([2]));
        assert_close(
            "variance",
            &var,
            &to_vec(q.variance().reshape([2])),
            0.03,
            0.0,
        );
    }
}

#[test]
fn rsample_with_noise_is_loc_plus_scale_times_noise() {
    let device = Default::default();
    let q = Dist::normal(
        tensor::<B, 2>(&[1.0, 2.0], [1, 2], &device),
        tensor::<B, 2>(&[0.5, 3.0], [1, 2], &device),
    );
    let eps = tensor::<B, 3>(&[1.0, -1.0, 2.0, 0.0], [2, 1, 2], &device);
    assert_close(
        "rsample",
        &to_vec(q.rsample_with_noise(eps)),
        &[1.5, -1.0, 2.0, 2.0],
        0.0,
        1e-6,
    );
}

#[test]
fn logsumexp_is_stable() {
    let device = Default::default();
    let x = tensor::<B, 2>(&[1000.0, 1000.0, -5.0, 0.0], [2, 2], &device);
    let out = to_vec(logsumexp(x, 1));
    assert_close(
        "lse",
        &out,
        &[1000.0 + std::f64::consts::LN_2, 0.006_715_3],
        1e-6,
        1e-6,
    );
}
