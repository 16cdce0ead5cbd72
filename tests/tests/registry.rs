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

#[test]
fn the_four_fusions_are_registered_and_the_default_is_moe() {
    use rensou_mmvaeplus as _;
    use rensou_model::fusion::{resolve_design, FusionRegistry, DEFAULT_FUSION};
    use rensou_moe as _;
    use rensou_mopoe as _;
    use rensou_poe as _;
    let registry = FusionRegistry::collect().unwrap();
    assert_eq!(registry.names(), ["mmvaeplus", "moe", "mopoe", "poe"]);
    registry.check_names().unwrap();
    assert_eq!(DEFAULT_FUSION, "moe");
    let default = resolve_design(None).unwrap();
    assert_eq!(
        rensou_model::fusion::fusion_type_name(&*default).unwrap(),
        "moe"
    );
    let err = registry.get("mvae").err().unwrap().to_string();
    assert!(err.contains("mmvaeplus, moe, mopoe, poe"), "{err}");
}
