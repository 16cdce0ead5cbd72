//! A net as a user names it: a built-in kind (`net = "conv"`, `--net conv`) or a full table
//! (`net = { type = "mlp", hidden = [64, 64] }`), and how a kind applies to a model's
//! modalities (where the items allow it).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::{Conv2dNet, MlpNet, NetConfig};
use crate::mmvae::{MmvaeConfig, ModalityNetConfig};
use rensou_api::modality::NetKind;
use rensou_api::{Error, Result};

/// A built-in architecture by name (`mlp`, `conv`), with default hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetChoice {
    /// The paper's MLP.
    Mlp,
    /// Noda's CNN (for `[H, W, C]` images whose size survives the conv/deconv round trip,
    /// e.g. 32x32).
    Conv,
    /// 1-D convolutions over time (for `[C, L]` signals and spectrograms, e.g. audio).
    Conv1d,
}

impl NetChoice {
    /// The net for items of `item_shape`: `current` when it is already of this kind, else the
    /// kind's defaults; `None` when the kind does not fit the items (conv on 28x28 or on
    /// non-images).
    pub fn net_for(
        self,
        item_shape: &[usize],
        latent_dim: usize,
        current: Option<&NetConfig>,
    ) -> Option<NetConfig> {
        match (self, current) {
            (NetChoice::Mlp, Some(net @ NetConfig::Mlp(_))) => Some(net.clone()),
            (NetChoice::Mlp, _) => Some(NetConfig::Mlp(MlpNet::default())),
            (NetChoice::Conv, current) => {
                let net = match current {
                    Some(net @ NetConfig::Conv2d(_)) => net.clone(),
                    _ => NetConfig::Conv2d(Conv2dNet::default()),
                };
                net.validate("net", item_shape, latent_dim)
                    .ok()
                    .map(|_| net)
            }
            (NetChoice::Conv1d, current) => {
                let net = match current {
                    Some(net @ NetConfig::Conv1d(_)) => net.clone(),
                    _ => NetConfig::from_kind(NetKind::Conv1d),
                };
                net.validate("net", item_shape, latent_dim)
                    .ok()
                    .map(|_| net)
            }
        }
    }

    /// Makes every modality's net of this kind where the items allow it (keeping the current
    /// net when it already is); the others keep an MLP, with a note each. A kind that fits none
    /// of the modalities is an error (`--net`).
    pub fn apply_to(self, model: &mut MmvaeConfig) -> Result<Vec<String>> {
        let latent = model.latent_dim;
        self.check_fits_some(&model.modalities, latent, "--net")?;
        let mut notes = Vec::new();
        for m in &mut model.modalities {
            let current = m.net.clone();
            m.net = match self.net_for(&m.item_shape, latent, Some(&current)) {
                Some(net) => net,
                None => {
                    notes.push(self.fallback_note(&m.name, &m.item_shape));
                    match current {
                        NetConfig::Mlp(_) => current,
                        _ => NetConfig::Mlp(MlpNet::default()),
                    }
                }
            };
        }
        Ok(notes)
    }

    /// Refuses this kind when it fits none of `modalities`' items: then it is not a preference
    /// some modalities cannot follow, but a choice that cannot work (`field` names it).
    pub fn check_fits_some(
        self,
        modalities: &[ModalityNetConfig],
        latent_dim: usize,
        field: &str,
    ) -> Result<()> {
        if modalities
            .iter()
            .any(|m| self.net_for(&m.item_shape, latent_dim, None).is_some())
        {
            return Ok(());
        }
        let shapes: Vec<String> = modalities
            .iter()
            .map(|m| format!("`{}` {:?}", m.name, m.item_shape))
            .collect();
        Err(Error::config(
            field,
            format!(
                "the {self} net fits none of the items ({}); choose a net that fits them",
                shapes.join(", ")
            ),
        ))
    }

    /// The note for modality `name`, whose items of `shape` this kind does not fit.
    pub fn fallback_note(self, name: &str, shape: &[usize]) -> String {
        format!("`{name}` items {shape:?} do not fit the {self} net; it keeps an MLP")
    }
}

impl fmt::Display for NetChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetChoice::Mlp => "mlp",
            NetChoice::Conv => "conv",
            NetChoice::Conv1d => "conv1d",
        })
    }
}

impl std::str::FromStr for NetChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mlp" => Ok(NetChoice::Mlp),
            "conv" | "conv2d" | "cnn" => Ok(NetChoice::Conv),
            "conv1d" => Ok(NetChoice::Conv1d),
            other => Err(Error::config(
                "net",
                format!("unknown net `{other}` (expected `mlp`, `conv` or `conv1d`)"),
            )),
        }
    }
}

/// A net in a user's file: a name (`net = "conv"`) or a full table
/// (`net = { type = "mlp", hidden = [64, 64] }`).
#[derive(Clone, Debug, PartialEq)]
pub enum NetSpec {
    /// A built-in by name, default hyper-parameters.
    Choice(NetChoice),
    /// A complete net config.
    Full(NetConfig),
}

impl<'de> Deserialize<'de> for NetSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct NetVisitor;
        impl<'de> Visitor<'de> for NetVisitor {
            type Value = NetSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"mlp\", \"conv\" or a net table such as { type = \"mlp\", hidden = [400] }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<NetSpec, E> {
                v.parse().map(NetSpec::Choice).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<NetSpec, A::Error> {
                NetConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(NetSpec::Full)
            }
        }
        deserializer.deserialize_any(NetVisitor)
    }
}
