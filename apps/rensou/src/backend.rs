//! The burn backend the binary runs on: the only place in rensou that names one.
//!
//! - default (`flex` feature): burn-flex, the portable CPU backend (rayon threads);
//! - `--features cuda`: burn-cuda on GPU 0, preferred when both features are on.
//!
//! Training wraps the backend in [`burn::backend::Autodiff`].

#[cfg(not(any(feature = "flex", feature = "cuda")))]
compile_error!("enable a backend feature: `flex` (CPU, default) or `cuda`");

/// The inner (non-autodiff) backend.
#[cfg(feature = "cuda")]
pub type Inner = burn_cuda::Cuda;
/// The inner (non-autodiff) backend.
#[cfg(all(feature = "flex", not(feature = "cuda")))]
pub type Inner = burn_flex::Flex;

/// The training backend.
pub type Train = burn::backend::Autodiff<Inner>;

/// The device type of both backends.
pub type Device = <Inner as burn::tensor::backend::BackendTypes>::Device;

/// Whether the backend runs on a GPU (loss read-backs are then batched).
pub const IS_GPU: bool = cfg!(feature = "cuda");

/// Steps between loss read-backs (each one is a host synchronisation on a GPU).
pub const CHECK_EVERY: usize = if IS_GPU { 50 } else { 1 };

/// The environment variable naming the GPU to run on (an index; set per child process by
/// `rensou paper --devices`).
pub const DEVICE_ENV: &str = "RENSOU_DEVICE";

/// The device to run on: with the CUDA build, GPU `$RENSOU_DEVICE` when set, else GPU 0. On
/// the CPU backend this also registers rensou-model's fused host kernels for it (idempotent),
/// which read tensors in place.
pub fn device() -> Device {
    #[cfg(feature = "cuda")]
    if let Some(index) = std::env::var(DEVICE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return burn_cuda::CudaDevice { index };
    }
    #[cfg(not(feature = "cuda"))]
    {
        rensou_model::nn::install_host_kernels::<Inner>();
        keep_large_buffers();
    }
    Device::default()
}

/// A training step allocates and frees the same large buffers every time (a `[M*K*B, 3072]`
/// decoder output is 63 MB, a CNN decoder's columns up to 671 MB). By default glibc serves
/// large allocations with a fresh `mmap` (rayon's worker threads always do: their arenas cannot
/// hold them) and gives them back on free, so every step page-faults and zeroes gigabytes
/// again: a third of a CNN step, measured with `perf`. Here no allocation is mmapped and the
/// heap is never trimmed, so freed buffers serve the next step (CNN MMVAE K = 20: 45 -> 65
/// samples/s; the MLP unchanged). The cost: the process keeps its peak heap until it exits.
/// Idempotent.
#[cfg(all(not(feature = "cuda"), target_os = "linux", target_env = "gnu"))]
fn keep_large_buffers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: mallopt only changes allocator tuning parameters; it is called before the
        // first large tensor exists and with values glibc documents as valid (-1: never trim).
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
        }
    });
}

#[cfg(all(
    not(feature = "cuda"),
    not(all(target_os = "linux", target_env = "gnu"))
))]
fn keep_large_buffers() {}

/// CPU threads the CPU backend uses: `RAYON_NUM_THREADS` when set (rensou paper --jobs sets it
/// per task), else one per core.
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(std::num::NonZeroUsize::get)
                .unwrap_or(1)
        })
}

/// One line naming the backend and device, e.g. `flex (CPU, 2 threads) on Cpu` or
/// `cuda (fusion<jit<cuda>>) on Cuda(0)`.
pub fn describe(device: &Device) -> String {
    use burn::tensor::backend::Backend;
    let name = <Inner as Backend>::name(device);
    if IS_GPU {
        format!("cuda ({name}) on {device:?}")
    } else {
        format!("{name} (CPU, {} threads) on {device:?}", cpu_threads())
    }
}
