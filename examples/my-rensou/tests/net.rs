//! The example net plugin through the registry and the model's net config.

use rensou_api::registry::NetRegistry;
use rensou_example as _;

#[test]
fn net_plugins_register_like_the_others() {
    let registry = NetRegistry::collect().unwrap();
    assert_eq!(registry.names(), ["gelu-mlp"]);
    registry.check_names().unwrap();
    let err = registry.get("transformer").err().unwrap().to_string();
    assert!(
        err.contains("unknown net `transformer`") && err.contains("gelu-mlp"),
        "{err}"
    );
}
