//! A sorted, duplicate-checked view of the plugins `inventory` collected.
//!
//! inventory only collects from crates that are linked: a binary that wants a plugin must
//! `use rensou_plugin as _;`.

use std::collections::BTreeMap;

use crate::modality::{ModalityConfig, ModalityPlugin};
use crate::{Error, Result};

/// Name and description of a registered plugin, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// Plugin name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
}

/// Builds a name-sorted map from plugin records, rejecting duplicate names.
pub fn sorted_unique<'a, T>(
    kind: &str,
    items: impl IntoIterator<Item = &'a T>,
    name: impl Fn(&T) -> &'static str,
) -> Result<BTreeMap<&'static str, &'a T>>
where
    T: 'a,
{
    let mut map = BTreeMap::new();
    for item in items {
        let n = name(item);
        if map.insert(n, item).is_some() {
            return Err(Error::Plugin(format!(
                "two {kind} plugins are registered as `{n}`"
            )));
        }
    }
    Ok(map)
}

/// The registered modality plugins, sorted by name.
pub struct ModalityRegistry {
    plugins: BTreeMap<&'static str, &'static ModalityPlugin>,
}

impl ModalityRegistry {
    /// Collects every linked modality plugin; fails on duplicate names.
    pub fn collect() -> Result<Self> {
        Ok(ModalityRegistry {
            plugins: sorted_unique("modality", inventory::iter::<ModalityPlugin>, |p| p.name)?,
        })
    }

    /// Plugins sorted by name.
    pub fn list(&self) -> Vec<PluginInfo> {
        self.plugins
            .values()
            .map(|p| PluginInfo {
                name: p.name,
                description: p.description,
            })
            .collect()
    }

    /// The plugin called `name`, or an error listing the known names.
    pub fn get(&self, name: &str) -> Result<&'static ModalityPlugin> {
        self.plugins.get(name).copied().ok_or_else(|| {
            Error::Plugin(format!(
                "unknown modality `{name}` (registered: {})",
                self.names().join(", ")
            ))
        })
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.plugins.keys().copied().collect()
    }

    /// Checks that every plugin's default config serialises with `type` equal to the plugin name.
    pub fn check_names(&self) -> Result<()> {
        for p in self.plugins.values() {
            let tag = config_type_name(&*(p.default_config)())?;
            if tag != p.name {
                return Err(Error::Plugin(format!(
                    "modality plugin `{}` has a config whose typetag name is `{tag}`",
                    p.name
                )));
            }
        }
        Ok(())
    }
}

/// The typetag name (`type = ...`) of a modality config.
pub fn config_type_name(config: &dyn ModalityConfig) -> Result<String> {
    let value = serde_json::to_value(config)
        .map_err(|e| Error::Plugin(format!("cannot serialise a modality config: {e}")))?;
    value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Plugin("a modality config serialised without a `type`".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rec(&'static str);

    #[test]
    fn rejects_duplicates_and_sorts() {
        let recs = [Rec("b"), Rec("a")];
        let map = sorted_unique("test", recs.iter(), |r| r.0).unwrap();
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), ["a", "b"]);
        let dup = [Rec("a"), Rec("a")];
        let err = sorted_unique("test", dup.iter(), |r| r.0).err().unwrap();
        assert!(err.to_string().contains("`a`"), "{err}");
    }
}
