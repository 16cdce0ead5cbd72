//! The registry of host kernels: functions that read a CPU backend's tensors through
//! `TensorData` (free there, a device round trip on a GPU), registered per backend by
//! [`install_host_kernels`](super::install_host_kernels) and looked up by their exact function
//! type, which names the backend (`fn(Tensor<B, 2>, ...) -> ...` differs for each `B`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

/// Kernels by their function type; values are `&'static K` behind `dyn Any`.
type Registry = RwLock<HashMap<TypeId, &'static (dyn Any + Send + Sync)>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Registers `kernel` under its type (the first registration of a type wins; idempotent).
pub(super) fn register<K: Copy + Send + Sync + 'static>(kernel: K) {
    if let Ok(mut map) = registry().write() {
        map.entry(TypeId::of::<K>())
            .or_insert_with(|| Box::leak(Box::new(kernel)));
    }
}

/// The kernel registered under type `K`, if any.
pub(super) fn lookup<K: Copy + Send + Sync + 'static>() -> Option<K> {
    registry()
        .read()
        .ok()
        .and_then(|map| map.get(&TypeId::of::<K>()).copied())
        .and_then(|entry| entry.downcast_ref::<K>().copied())
}
