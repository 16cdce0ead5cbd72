//! The burn backend the binary runs on: the only place in rensou that names one.
//!
//! - default (`flex` feature): burn-flex, the portable CPU backend (rayon threads);
//! - `--features cuda`: burn-cuda on GPU 0 (preferred when several are on);
//! - `--features wgpu`: burn-wgpu on the first adapter wgpu offers (Vulkan, Metal, DX12; Mesa's
//!   lavapipe on a machine without a GPU), preferred over `flex`.
//!
//! Training wraps the backend in [`burn::backend::Autodiff`].

#[cfg(not(any(feature = "flex", feature = "cuda-bare", feature = "wgpu-bare")))]
compile_error!("enable a backend feature: `flex` (CPU, default), `cuda` or `wgpu`");
#[cfg(all(
    feature = "gpu",
    not(any(feature = "cuda-bare", feature = "wgpu-bare"))
))]
compile_error!("`gpu` is internal: enable `cuda` or `wgpu` (or `cuda-bare` / `wgpu-bare`)");

/// The inner (non-autodiff) backend.
#[cfg(feature = "cuda-bare")]
pub type Inner = burn_cuda::Cuda;
/// The inner (non-autodiff) backend.
#[cfg(all(feature = "wgpu-bare", not(feature = "cuda-bare")))]
pub type Inner = burn_wgpu::Wgpu;
/// The inner (non-autodiff) backend.
#[cfg(all(feature = "flex", not(feature = "gpu")))]
pub type Inner = burn_flex::Flex;

/// The backend's short name: `flex`, `cuda` or `wgpu`.
pub const NAME: &str = if cfg!(feature = "cuda-bare") {
    "cuda"
} else if cfg!(feature = "wgpu-bare") {
    "wgpu"
} else {
    "flex"
};

/// The training backend.
pub type Train = burn::backend::Autodiff<Inner>;

/// The device type of both backends.
pub type Device = <Inner as burn::tensor::backend::BackendTypes>::Device;

/// Whether the backend runs on a GPU (loss read-backs are then batched).
pub const IS_GPU: bool = cfg!(feature = "gpu");

/// Steps between loss read-backs (each one is a host synchronisation on a GPU).
pub const CHECK_EVERY: usize = if IS_GPU { 50 } else { 1 };

/// The environment variable naming the GPU to run on (an index; set per child process by
/// `rensou paper --devices`).
pub const DEVICE_ENV: &str = "RENSOU_DEVICE";

/// The device to run on: with the CUDA build, GPU `$RENSOU_DEVICE` when set, else GPU 0; with
/// wgpu, discrete GPU `$RENSOU_DEVICE` when set, else wgpu's first adapter (discrete, then
/// integrated, virtual and CPU ones such as lavapipe). On the CPU backend this also registers
/// rensou-model's fused host kernels for it (idempotent), which read tensors in place.
///
/// On wgpu, a machine without a usable adapter panics here; commands call [`try_device`].
pub fn device() -> Device {
    match try_device() {
        Ok(device) => device,
        Err(e) => panic!("{e:#}"),
    }
}

/// [`device`], with a machine that has no usable GPU adapter reported as an error.
pub fn try_device() -> anyhow::Result<Device> {
    #[cfg(feature = "gpu")]
    if let Some(error) = &crate::gpu::configure().error {
        anyhow::bail!("{error}");
    }
    let index = std::env::var(DEVICE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    #[cfg(feature = "cuda-bare")]
    return Ok(match index {
        Some(index) => burn_cuda::CudaDevice { index },
        None => Device::default(),
    });
    #[cfg(all(feature = "wgpu-bare", not(feature = "cuda-bare")))]
    return wgpu_setup::init(match index {
        Some(index) => burn_wgpu::WgpuDevice::DiscreteGpu(index),
        None => Device::default(),
    });
    #[cfg(not(feature = "gpu"))]
    {
        let _ = index;
        rensou_model::nn::install_host_kernels::<Inner>();
        keep_large_buffers();
        Ok(Device::default())
    }
}

/// The wgpu device's setup, made once per process so that its adapter can be named.
#[cfg(all(feature = "wgpu-bare", not(feature = "cuda-bare")))]
mod wgpu_setup {
    use std::sync::{Mutex, OnceLock};

    use burn_wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    use burn_wgpu::{RuntimeOptions, WgpuDevice};

    /// The adapters found and the one chosen, per device set up.
    pub(super) static ADAPTERS: OnceLock<Vec<String>> = OnceLock::new();
    static CHOSEN: Mutex<Vec<(WgpuDevice, String)>> = Mutex::new(Vec::new());
    /// The first failure to set a device up: reported again, not retried.
    static FAILED: OnceLock<String> = OnceLock::new();

    /// `"name" (type, API; driver ...)` of a wgpu adapter's info.
    macro_rules! describe {
        ($info:expr) => {{
            let i = $info;
            format!(
                "\"{}\" ({:?}, {:?}; driver {} {})",
                i.name, i.device_type, i.backend, i.driver, i.driver_info
            )
        }};
    }

    /// Sets `device` up (once) and returns it; a missing adapter is an error naming the fix.
    pub(super) fn init(device: WgpuDevice) -> anyhow::Result<WgpuDevice> {
        let mut chosen = CHOSEN.lock().unwrap_or_else(|e| e.into_inner());
        if chosen.iter().any(|(d, _)| *d == device) {
            return Ok(device);
        }
        if let Some(error) = FAILED.get() {
            anyhow::bail!("{error}");
        }
        let d = device.clone();
        // cubecl panics when wgpu finds no adapter; its message becomes our error line, so the
        // default hook's report is silenced for this call only.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let setup = std::panic::catch_unwind(move || {
            burn_wgpu::init_setup::<AutoGraphicsApi>(&d, RuntimeOptions::default())
        });
        std::panic::set_hook(hook);
        let setup = setup.map_err(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            let error = format!(
                "no usable wgpu adapter for {device:?} ({}); install a Vulkan driver (on a \
                 machine without a GPU, Mesa's lavapipe: Debian's mesa-vulkan-drivers)",
                msg.lines().next().unwrap_or("wgpu found none")
            );
            anyhow::anyhow!("{}", FAILED.get_or_init(|| error))
        })?;
        let line = describe!(setup.adapter.get_info());
        ADAPTERS.get_or_init(|| {
            let backends = <AutoGraphicsApi as GraphicsApi>::backend().into();
            cubecl::future::block_on(setup.instance.enumerate_adapters(backends))
                .iter()
                .map(|a| describe!(a.get_info()))
                .collect()
        });
        chosen.push((device.clone(), line));
        Ok(device)
    }

    /// The adapter line of a set-up device.
    pub(super) fn adapter(device: &WgpuDevice) -> Option<String> {
        let chosen = CHOSEN.lock().unwrap_or_else(|e| e.into_inner());
        chosen
            .iter()
            .find(|(d, _)| d == device)
            .map(|(_, l)| l.clone())
    }
}

/// One line per GPU device the build's GPU backend sees (`rensou doctor`); empty on the CPU
/// build. For wgpu, every adapter wgpu lists; for CUDA, the GPUs the NVIDIA driver lists.
pub fn gpu_devices() -> Vec<String> {
    #[cfg(all(feature = "wgpu-bare", not(feature = "cuda-bare")))]
    {
        let mut lines = Vec::new();
        if let Err(e) = try_device() {
            lines.push(format!("wgpu: {e:#}"));
        }
        for a in wgpu_setup::ADAPTERS.get().into_iter().flatten() {
            lines.push(format!("wgpu adapter: {a}"));
        }
        lines
    }
    #[cfg(feature = "cuda-bare")]
    {
        let mut lines: Vec<String> = crate::gpu::cuda_gpus()
            .into_iter()
            .map(|(bus, model)| format!("cuda: {model} (bus {bus})"))
            .collect();
        if let Ok(version) = std::fs::read_to_string("/proc/driver/nvidia/version") {
            if let Some(first) = version.lines().next() {
                lines.push(format!("cuda driver: {}", first.trim()));
            }
        }
        if lines.is_empty() {
            lines.push("cuda: no NVIDIA driver found (/proc/driver/nvidia missing)".into());
        }
        lines
    }
    #[cfg(not(feature = "gpu"))]
    Vec::new()
}

/// A training step allocates and frees the same large buffers every time (a `[M*K*B, 3072]`
/// decoder output is 63 MB, a CNN decoder's columns up to 671 MB). By default glibc serves
/// large allocations with a fresh `mmap` (rayon's worker threads always do: their arenas cannot
/// hold them) and gives them back on free, so every step page-faults and zeroes gigabytes
/// again: a third of a CNN step, measured with `perf`. Here no allocation is mmapped and the
/// heap is never trimmed, so freed buffers serve the next step (CNN MMVAE K = 20: 45 -> 65
/// samples/s; the MLP unchanged). The cost: the process keeps its peak heap until it exits.
/// Idempotent.
#[cfg(all(not(feature = "gpu"), target_os = "linux", target_env = "gnu"))]
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
    not(feature = "gpu"),
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
    #[cfg(all(feature = "wgpu-bare", not(feature = "cuda-bare")))]
    if let Some(adapter) = wgpu_setup::adapter(device) {
        return format!("{NAME} ({name}) on {adapter}");
    }
    if IS_GPU {
        format!("{NAME} ({name}) on {device:?}")
    } else {
        format!("{name} (CPU, {} threads) on {device:?}", cpu_threads())
    }
}
