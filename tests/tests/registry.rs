//! The plugin registry as the binary sees it: every linked plugin, names consistent.

use rensou_api::registry::ModalityRegistry;
use rensou_cmnist as _;
use rensou_oscn as _;

#[test]
fn plugins_are_registered_with_matching_typetag_names() {
    let registry = ModalityRegistry::collect().unwrap();
    assert_eq!(registry.names(), ["cmnist", "oscn"]);
    registry.check_names().unwrap();
    for p in registry.list() {
        assert!(!p.description.is_empty(), "{} has no description", p.name);
    }
}

#[test]
fn unknown_names_list_the_known_ones() {
    let registry = ModalityRegistry::collect().unwrap();
    let err = registry.get("audio").err().unwrap().to_string();
    assert!(err.contains("cmnist, oscn"), "{err}");
}
