//! Where the training step's time goes (ignored; run by hand):
//! `RAYON_NUM_THREADS=2 cargo test --release -p rensou-moe --test profile -- --ignored --nocapture`
//!
//! `RENSOU_PROFILE_FUSED=1` installs the fused host likelihood kernel first (what the CPU build
//! of the binary runs); without it the likelihood is composed of tensor ops (the GPU path, and
//! the CPU path before the kernel existed). Under `perf record` this gives the per-op split of
//! both.

use rensou_moe as _; // the `moe` fusion these tests exercise

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use rensou_model::mmvae::{MmvaeConfig, ModalityNetConfig, ObjectiveConfig, ObjectiveKind};
use rensou_testkit::*;

fn time<T>(what: &str, reps: usize, mut f: impl FnMut() -> T) {
    let _ = f();
    let start = Instant::now();
    for _ in 0..reps {
        let _ = f();
    }
    println!(
        "{what:<40} {:8.1} ms",
        start.elapsed().as_secs_f64() * 1e3 / reps as f64
    );
}

#[test]
#[ignore]
fn profile_training_step() {
    let device = Default::default();
    let a = Tensor::<Inner, 2>::random([5120, 400], Distribution::Default, &device);
    let b = Tensor::<Inner, 2>::random([400, 3072], Distribution::Default, &device);
    time("matmul [5120,400]x[400,3072]", 3, || {
        a.clone().matmul(b.clone()).dims()
    });
    let x = Tensor::<Inner, 2>::random([5120, 3072], Distribution::Default, &device);
    time("sigmoid+clamp [5120,3072]", 3, || {
        burn::tensor::activation::sigmoid(x.clone())
            .clamp(1e-6, 1.0 - 1e-6)
            .dims()
    });
    let y = Tensor::<Inner, 2>::random([128, 3072], Distribution::Default, &device);
    time("sub-square-sum [40,128,3072]", 3, || {
        x.clone()
            .reshape([40, 128, 3072])
            .sub(y.clone().unsqueeze_dim::<3>(0))
            .square()
            .sum_dim(2)
            .dims()
    });

    let x3 = x.clone().reshape([40, 128, 3072]);
    let y3 = y.clone().unsqueeze_dim::<3>(0);
    time("  sub broadcast [40,128,3072]-[1,128,3072]", 3, || {
        x3.clone().sub(y3.clone()).dims()
    });
    let y3full = y3.clone().repeat_dim(0, 40);
    let x2 = x.clone().reshape([40, 128 * 3072]);
    let y2 = y.clone().reshape([1, 128 * 3072]);
    time("  sub broadcast as [40,B*F]-[1,B*F]", 3, || {
        x2.clone().sub(y2.clone()).dims()
    });
    time("  sub same shape", 3, || {
        x3.clone().sub(y3full.clone()).dims()
    });
    time("  square", 3, || x3.clone().square().dims());
    time("  x*x", 3, || x3.clone().mul(x3.clone()).dims());
    time("  sum_dim(2)", 3, || x3.clone().sum_dim(2).dims());
    time("  add_scalar (owned copy)", 3, || {
        x3.clone().add_scalar(1.0).dims()
    });
    time("  into_data (copy out)", 3, || {
        x3.clone().into_data().num_elements()
    });
    time("  zeros alloc [5120,3072]", 3, || {
        Tensor::<Inner, 2>::zeros([5120, 3072], &device).dims()
    });
    let w = Tensor::<Inner, 1>::random([3072], Distribution::Default, &device);
    time("  bias add [5120,3072]+[1,3072]", 3, || {
        x.clone().add(w.clone().unsqueeze_dim::<2>(0)).dims()
    });
    time("  sigmoid", 3, || {
        burn::tensor::activation::sigmoid(x.clone()).dims()
    });
    time("  clamp", 3, || x.clone().clamp(1e-6, 1.0 - 1e-6).dims());
    time("  relu [5120,400]", 3, || {
        burn::tensor::activation::relu(a.clone()).dims()
    });

    let config = MmvaeConfig::new(vec![
        ModalityNetConfig::new("oscn", vec![32, 32, 3]),
        ModalityNetConfig::new("cmnist", vec![28, 28, 3]),
    ]);
    let model = config.init::<TestBackend>(&device).expect("model");
    let xs: Vec<Tensor<TestBackend, 2>> = [3072, 2352]
        .iter()
        .map(|&f| Tensor::random([128, f], Distribution::Default, &device))
        .collect();
    let inner_model = burn::module::AutodiffModule::valid(&model);
    let inner_xs: Vec<Tensor<Inner, 2>> = xs.iter().map(|x| x.clone().inner()).collect();
    for kind in [ObjectiveKind::DregReference, ObjectiveKind::Dreg] {
        let objective = ObjectiveConfig::new(kind, 20);
        time(&format!("{kind}: forward, no autodiff"), 2, || {
            inner_model
                .objective(&inner_xs, &objective)
                .expect("fwd")
                .loss
                .dims()
        });
        time(&format!("{kind}: forward with autodiff"), 2, || {
            model.objective(&xs, &objective).expect("fwd").loss.dims()
        });
        time(&format!("{kind}: forward + backward"), 2, || {
            model
                .loss_and_grads(&xs, &objective)
                .expect("grads")
                .0
                .dims()
        });
    }
}

/// CPU seconds (user + system) used by this process so far, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[11], fields[12]: utime, stime in clock ticks (100 Hz on Linux)
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Wall and CPU time per training step of the paper's MLP MMVAE; CPU time is the steadier
/// figure on a shared machine (compare with `bench/torch_cpu_time.py`).
#[test]
#[ignore]
fn step_cpu_time() {
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let k: usize = env("RENSOU_BENCH_K", "20").parse().expect("k");
    let steps: usize = env("RENSOU_BENCH_STEPS", "5").parse().expect("steps");
    let kind: ObjectiveKind = env("RENSOU_BENCH_OBJECTIVE", "dreg")
        .parse()
        .expect("objective");
    let device = Default::default();
    let config = MmvaeConfig::new(vec![
        ModalityNetConfig::new("oscn", vec![32, 32, 3]),
        ModalityNetConfig::new("cmnist", vec![28, 28, 3]),
    ]);
    let mut model = config.init::<TestBackend>(&device).expect("model");
    let xs: Vec<Tensor<TestBackend, 2>> = [3072, 2352]
        .iter()
        .map(|&f| Tensor::random([128, f], Distribution::Default, &device))
        .collect();
    if env("RENSOU_PROFILE_FUSED", "0") == "1" {
        rensou_model::nn::install_host_kernels::<Inner>();
    }
    let objective = ObjectiveConfig::new(kind, k);
    let mut optim = rensou_model::mmvae::paper_adam().init();
    for _ in 0..2 {
        model = rensou_model::mmvae::train_step(model, &mut optim, &xs, &objective, 1e-3)
            .expect("step")
            .0;
    }
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    for _ in 0..steps {
        model = rensou_model::mmvae::train_step(model, &mut optim, &xs, &objective, 1e-3)
            .expect("step")
            .0;
    }
    println!(
        "{{\"objective\": \"{kind}\", \"k\": {k}, \"wall_s_per_step\": {:.3}, \"cpu_s_per_step\": {:.3}}}",
        wall.elapsed().as_secs_f64() / steps as f64,
        (cpu_seconds() - cpu) / steps as f64
    );
}

/// Forward + backward of a few formulations of `sum_f (mu - x)^2` on the decoder output size.
#[test]
#[ignore]
fn likelihood_formulations() {
    let device = Default::default();
    let h = Tensor::<Inner, 2>::random([5120, 3072], Distribution::Default, &device);
    let x = Tensor::<TestBackend, 2>::random([1, 128 * 3072], Distribution::Default, &device);
    let ones = Tensor::<TestBackend, 2>::ones([3072, 1], &device);
    let run = |name: &str, f: &dyn Fn(Tensor<TestBackend, 2>) -> Tensor<TestBackend, 2>| {
        time(name, 3, || {
            let mu = Tensor::<TestBackend, 2>::from_inner(h.clone()).require_grad();
            let out = f(mu.clone()).sum();
            let grads = out.backward();
            mu.grad(&grads).map(|g| g.dims())
        });
    };
    run("sigmoid", &|mu| burn::tensor::activation::sigmoid(mu));
    run("clamp", &|mu| mu.clamp(1e-6, 1.0 - 1e-6));
    run("sub", &|mu| mu.reshape([40, 128 * 3072]).sub(x.clone()));
    run("square", &|mu| mu.square());
    run("x*x", &|mu| mu.clone().mul(mu));
    run("sum_dim", &|mu| mu.sum_dim(1));
    run("matmul ones", &|mu| mu.matmul(ones.clone()));
    run("square+sum_dim", &|mu| mu.square().sum_dim(1));
    run("square+matmul ones", &|mu| mu.square().matmul(ones.clone()));
    run("full: sig,clamp,sub,square,sum", &|mu| {
        burn::tensor::activation::sigmoid(mu)
            .clamp(1e-6, 1.0 - 1e-6)
            .reshape([40, 128 * 3072])
            .sub(x.clone())
            .square()
            .reshape([5120, 3072])
            .sum_dim(1)
    });
}
