//! A sorted, duplicate-checked view of the plugins `inventory` collected.
//!
//! inventory only collects from crates that are linked: a binary that wants a plugin must
//! `use rensou_plugin as _;`.

use std::collections::BTreeMap;

use crate::modality::{ModalityConfig, ModalityPlugin};
use crate::net::{net_type_name, NetPlugin};
use crate::probe::{probe_type_name, ProbePlugin};
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

/// A plugin registration record (modality or probe) as the registry sees it.
pub trait PluginRecord: Sync + 'static {
    /// What kind of plugin this is, for messages (`modality`, `probe`).
    const KIND: &'static str;
    /// Plugin name.
    fn name(&self) -> &'static str;
    /// One-line description.
    fn description(&self) -> &'static str;
    /// The typetag name its default config serialises with.
    fn config_tag(&self) -> Result<String>;
}

impl PluginRecord for ModalityPlugin {
    const KIND: &'static str = "modality";
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn config_tag(&self) -> Result<String> {
        config_type_name(&*(self.default_config)())
    }
}

impl PluginRecord for ProbePlugin {
    const KIND: &'static str = "probe";
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn config_tag(&self) -> Result<String> {
        probe_type_name(&*(self.default_config)())
    }
}

impl PluginRecord for NetPlugin {
    const KIND: &'static str = "net";
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn config_tag(&self) -> Result<String> {
        net_type_name(&*(self.default_config)())
    }
}

/// The registered plugins of one kind, sorted by name, duplicates rejected.
pub struct Registry<T: PluginRecord> {
    plugins: BTreeMap<&'static str, &'static T>,
}

/// The registered modality plugins.
pub type ModalityRegistry = Registry<ModalityPlugin>;
/// The registered probe plugins.
pub type ProbeRegistry = Registry<ProbePlugin>;
/// The registered net plugins.
pub type NetRegistry = Registry<NetPlugin>;

impl<T: PluginRecord + inventory::Collect> Registry<T> {
    /// Collects every linked plugin of this kind; fails on duplicate names.
    pub fn collect() -> Result<Self> {
        LOOKUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Registry {
            plugins: sorted_unique(T::KIND, inventory::iter::<T>, |p| p.name())?,
        })
    }
}

impl<T: PluginRecord> Registry<T> {
    /// Plugins sorted by name.
    pub fn list(&self) -> Vec<PluginInfo> {
        self.plugins
            .values()
            .map(|p| PluginInfo {
                name: p.name(),
                description: p.description(),
            })
            .collect()
    }

    /// The plugin called `name`, or an error listing the known names.
    pub fn get(&self, name: &str) -> Result<&'static T> {
        self.plugins.get(name).copied().ok_or_else(|| {
            Error::Plugin(format!(
                "unknown {} `{name}` (registered: {})",
                T::KIND,
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
            let tag = p.config_tag()?;
            if tag != p.name() {
                return Err(Error::Plugin(format!(
                    "{} plugin `{}` has a config whose typetag name is `{tag}`",
                    T::KIND,
                    p.name()
                )));
            }
        }
        Ok(())
    }
}

/// The typetag name (`type = ...`) of a modality config.
pub fn config_type_name(config: &dyn ModalityConfig) -> Result<String> {
    typetag_name(config, "a modality config")
}

/// The `type` field a typetag trait object serialises with; `what` names it in errors
/// (`a probe config`).
pub fn typetag_name<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    LOOKUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let value = serde_json::to_value(value)
        .map_err(|e| Error::Plugin(format!("cannot serialise {what}: {e}")))?;
    value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Plugin(format!("{what} serialised without a `type`")))
}

/// Registry collections and plugin-name serialisations so far in this process.
static LOOKUPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many times this process has collected a registry or serialised a plugin config to find
/// its name ([`Registry::collect`], [`typetag_name`]). Plugins are resolved once, when the
/// thing using them is built: a test reads this before and after the steps of a model to show
/// that none happens per step.
pub fn lookups() -> usize {
    LOOKUPS.load(std::sync::atomic::Ordering::Relaxed)
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
