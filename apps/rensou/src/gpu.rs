//! cubecl's settings for the GPU builds (CUDA, wgpu), decided here once, before the first kernel.
//!
//! - **Caches in the user's cache directory.** cubecl's default puts the autotune cache in the
//!   nearest `target/` above a `Cargo.toml` above the working directory, so a study run from
//!   inside some Rust project writes there and a run from elsewhere tunes again. rensou puts the
//!   autotune results and (CUDA) the compiled kernels in [`cache_dir`]`/cubecl/<GPU model>`,
//!   shared by every run of the same user on the same kind of GPU. (wgpu compiles WGSL
//!   kernels again in every process: cubecl keeps no WGSL kernel cache.)
//! - **No stale lock waits.** A process killed while writing a cache leaves a `.lock` file that
//!   cubecl honours for 30 s. Every rensou process holds a shared lock on the cache directory
//!   for its life; one that finds no other holder removes leftover `.lock` files before cubecl
//!   can wait on them.
//! - **cubecl.toml files are not searched for.** cubecl looks for `cubecl.toml`/`burn.toml` in
//!   every directory above the working one (and panics on one it cannot parse); rensou's runs
//!   must not depend on where they are started. cubecl's own environment variables still apply
//!   (`CUBECL_DEBUG_LOG`, `CUBECL_AUTOTUNE_LEVEL`, ...), and `RENSOU_CUBECL_TOML=FILE` loads a
//!   file explicitly.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cubecl::config::cache::CacheConfig;
use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// The environment variable naming rensou's cache directory (default: `$XDG_CACHE_HOME/rensou`,
/// else `~/.cache/rensou`).
pub const CACHE_ENV: &str = "RENSOU_CACHE_DIR";

/// The environment variable naming a cubecl.toml to load instead of cubecl's upward search.
pub const CUBECL_TOML_ENV: &str = "RENSOU_CUBECL_TOML";

/// What [`configure`] did, for `rensou doctor`.
#[derive(Debug, Clone)]
pub struct Setup {
    /// rensou's cubecl cache directory (autotune results, and compiled kernels on CUDA, under a
    /// directory per GPU model); `None` when none could be made (see `note`: cubecl then uses
    /// its own default place).
    pub cache: Option<PathBuf>,
    /// Stale `.lock` files removed at start.
    pub stale_locks_removed: usize,
    /// A problem met while configuring the caches (the run goes on without them).
    pub note: Option<String>,
    /// A setting that cannot be used (`RENSOU_CUBECL_TOML` unreadable): the device refuses
    /// to start with it.
    pub error: Option<String>,
}

static SETUP: OnceLock<Setup> = OnceLock::new();
/// The shared lock held on the cache directory for the life of the process.
static CACHE_GUARD: OnceLock<File> = OnceLock::new();

/// rensou's cache directory: `$RENSOU_CACHE_DIR`, else `$XDG_CACHE_HOME/rensou`, else
/// `$HOME/.cache/rensou`.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env(CACHE_ENV)
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("rensou")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("rensou")))
}

/// Sets cubecl's configuration once per process (idempotent) and returns what was done.
pub fn configure() -> &'static Setup {
    configure_with(None)
}

/// [`configure`], also sending cubecl's compilation and autotune log to `log` (appended; one
/// line per compiled kernel, `rensou doctor` counts them). Only the first call in a process
/// takes effect.
pub fn configure_with(log: Option<PathBuf>) -> &'static Setup {
    SETUP.get_or_init(|| {
        let mut note = None;
        let mut error = None;
        let base = match std::env::var_os(CUBECL_TOML_ENV) {
            Some(path) => match load_toml(Path::new(&path)) {
                Ok(config) => config,
                Err(e) => {
                    error = Some(e);
                    CubeClRuntimeConfig::default()
                }
            },
            None => CubeClRuntimeConfig::default(),
        };
        let mut config = base.override_from_env();
        if let Some(log) = log {
            use cubecl::config::autotune::AutotuneLogLevel;
            use cubecl::config::compilation::CompilationLogLevel;
            config.compilation.logger.level = CompilationLogLevel::Basic;
            config.compilation.logger.file = Some(log.clone());
            config.autotune.logger.level = AutotuneLogLevel::Full;
            config.autotune.logger.file = Some(log);
        }
        let (cache, removed) = match prepare_cache() {
            Ok((dir, removed)) => (Some(dir.join(device_fingerprint())), removed),
            Err(e) => {
                note.get_or_insert(e);
                (None, 0)
            }
        };
        // Without a cache directory of rensou's, cubecl keeps its own default place (a
        // `target/` above the working directory, else ~/.cache/cubecl) rather than none.
        if let Some(dir) = &cache {
            // (cubecl's cache keys name the runtime and device index, not the GPU model, and its
            // CUDA kernel cache holds PTX built for one architecture: a home directory shared by
            // nodes with different GPUs keeps one cache per model, and a node whose GPUs are of
            // several models, or unknown, keeps no kernel cache.)
            config.autotune.cache = CacheConfig::File(dir.join("autotune"));
            if one_gpu_model() {
                config.compilation.cache = Some(CacheConfig::File(dir.join("compilation")));
            }
        }
        // cubecl's configuration can be set once, before anything reads it; rensou reads it
        // nowhere before the first device, and configure() runs before that.
        let mut slot = CubeClRuntimeConfig::storage().lock();
        if slot.is_none() {
            *slot = Some(std::sync::Arc::new(config));
        } else {
            note.get_or_insert_with(|| "cubecl was configured before rensou could".into());
        }
        drop(slot);
        Setup {
            cache,
            stale_locks_removed: removed,
            note,
            error,
        }
    })
}

/// The GPUs the NVIDIA driver lists, as (PCI bus id, model), sorted by bus (empty without the
/// driver).
#[cfg(feature = "cuda-bare")]
pub fn cuda_gpus() -> Vec<(String, String)> {
    let mut gpus: Vec<(String, String)> = std::fs::read_dir("/proc/driver/nvidia/gpus")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|gpu| {
            let info = std::fs::read_to_string(gpu.path().join("information")).ok()?;
            let model = info.lines().find_map(|l| l.strip_prefix("Model:"))?;
            Some((
                gpu.file_name().to_string_lossy().into_owned(),
                model.trim().to_owned(),
            ))
        })
        .collect();
    gpus.sort();
    gpus
}

/// The GPU models the NVIDIA driver lists, sorted and deduplicated.
#[cfg(feature = "cuda-bare")]
fn cuda_models() -> Vec<String> {
    let mut models: Vec<String> = cuda_gpus().into_iter().map(|(_, model)| model).collect();
    models.sort();
    models.dedup();
    models
}

/// Whether a kernel cache is safe here: CUDA's holds PTX for one architecture, so only when
/// the driver lists exactly one GPU model; wgpu keeps none (no WGSL kernel cache in cubecl).
fn one_gpu_model() -> bool {
    #[cfg(feature = "cuda-bare")]
    return cuda_models().len() == 1;
    #[cfg(not(feature = "cuda-bare"))]
    false
}

/// A directory name for this machine's GPUs: for CUDA, the models the NVIDIA driver lists
/// (`cuda-NVIDIA-H200`); for wgpu, `wgpu` (its adapter is only known once cubecl has started,
/// after its caches are chosen).
fn device_fingerprint() -> String {
    #[cfg(feature = "cuda-bare")]
    {
        let name: String = cuda_models()
            .join("+")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '+' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if name.is_empty() {
            "cuda".into()
        } else {
            format!("cuda-{name}")
        }
    }
    #[cfg(not(feature = "cuda-bare"))]
    {
        "wgpu".into()
    }
}

fn load_toml(path: &Path) -> Result<CubeClRuntimeConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{CUBECL_TOML_ENV}={}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{CUBECL_TOML_ENV}={}: {e}", path.display()))
}

/// Creates `<cache_dir>/cubecl`, takes the process's shared lock on it and, when no other
/// process holds one, removes `.lock` files left by killed processes.
fn prepare_cache() -> Result<(PathBuf, usize), String> {
    let base = cache_dir().ok_or("no cache directory (set RENSOU_CACHE_DIR or HOME)")?;
    let (dir, removed, guard) = open_cache(&base.join("cubecl"))?;
    CACHE_GUARD.set(guard).ok();
    Ok((dir, removed))
}

/// Creates `dir`, removes stale `.lock` files when no other process has it open (see the
/// module docs) and returns it with the count removed and the shared lock to hold.
fn open_cache(dir: &Path) -> Result<(PathBuf, usize, File), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cache {}: {e}", dir.display()))?;
    let guard_path = dir.join("in-use");
    let guard = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&guard_path)
        .map_err(|e| format!("cache {}: {e}", guard_path.display()))?;
    let mut removed = 0;
    if guard.try_lock().is_ok() {
        // Alone: every .lock under the cache belongs to a process that is gone.
        removed = remove_locks(dir);
        guard.unlock().ok();
    }
    guard
        .lock_shared()
        .map_err(|e| format!("cache {}: {e}", guard_path.display()))?;
    Ok((dir.to_path_buf(), removed, guard))
}

/// Removes `*.lock` files under `dir` (recursively, not following links); returns how many.
fn remove_locks(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            removed += remove_locks(&path);
        } else if kind.is_file()
            && path.extension().is_some_and(|e| e == "lock")
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plant_lock(dir: &Path) -> PathBuf {
        let sub = dir.join("wgpu/autotune/0.10.0/device-4-0-wgpu_wgsl_");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let lock = sub.join("burn_cubecl-kernel-matmul-tune.json.log.lock");
        // What cubecl writes: the lock's creation time, here just now (a fresh lock cubecl
        // itself would wait on for 30 s).
        std::fs::write(&lock, "{\"secs_since_epoch\":1,\"nanos_since_epoch\":0}").expect("lock");
        std::fs::write(sub.join("burn_cubecl-kernel-matmul-tune.json.log"), "").expect("cache");
        lock
    }

    #[test]
    fn a_lock_left_by_a_killed_process_is_removed_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = plant_lock(dir.path());
        let (_, removed, _guard) = open_cache(dir.path()).expect("cache");
        assert_eq!(removed, 1);
        assert!(!lock.exists());
        assert!(
            lock.with_extension("").exists(),
            "the cache file itself stays"
        );
    }

    #[test]
    fn locks_stay_while_another_process_uses_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Another rensou process: its shared lock on the cache (a second open file description
        // conflicts with ours exactly as another process's would).
        let (_, _, other) = open_cache(dir.path()).expect("first");
        let lock = plant_lock(dir.path());
        let (_, removed, _guard) = open_cache(dir.path()).expect("second");
        assert_eq!(removed, 0);
        assert!(lock.exists(), "a live process may hold it");
        drop(other);
        drop(_guard);
        let (_, removed, _guard) = open_cache(dir.path()).expect("third");
        assert_eq!(removed, 1, "alone again: the lock is stale");
    }

    #[test]
    fn a_link_in_the_cache_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let victim = outside.path().join("keep.lock");
        std::fs::write(&victim, "x").expect("write");
        std::fs::create_dir_all(dir.path()).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        let (_, removed, _guard) = open_cache(dir.path()).expect("cache");
        assert_eq!(removed, 0);
        assert!(victim.exists());
    }
}
