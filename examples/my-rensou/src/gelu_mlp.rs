//! A net plugin of this crate: an MLP with GELU activations, described as layers. This file
//! is the example of docs/write-a-net.md, verbatim.

use rensou_api::net::{Layer, NetDesign, NetPlugin};
use rensou_api::typetag; // the typetag macro expands to `typetag::...` paths
use serde::{Deserialize, Serialize};

/// Hidden layers of GELU units; the decoder mirrors them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeluMlp {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
}

impl Default for GeluMlp {
    fn default() -> Self {
        GeluMlp {
            hidden: vec![256, 256],
        }
    }
}

#[typetag::serde(name = "gelu-mlp")]
impl NetDesign for GeluMlp {
    fn validate(&self) -> rensou_api::Result<()> {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(rensou_api::Error::config(
                "gelu-mlp.hidden",
                "needs at least one layer, each >= 1 wide",
            ));
        }
        Ok(())
    }

    fn encoder(&self, _item: &[usize], _latent: usize) -> rensou_api::Result<Vec<Layer>> {
        let mut layers = vec![Layer::Flatten];
        for &width in &self.hidden {
            layers.extend([Layer::Linear { out: width }, Layer::Gelu]);
        }
        Ok(layers) // rensou adds the location and scale heads
    }

    fn decoder(&self, item: &[usize], _latent: usize) -> rensou_api::Result<Vec<Layer>> {
        let mut layers = Vec::new();
        for &width in self.hidden.iter().rev() {
            layers.extend([Layer::Linear { out: width }, Layer::Gelu]);
        }
        let values = item.iter().product();
        layers.push(Layer::Linear { out: values }); // rensou adds the clamped sigmoid
        Ok(layers)
    }

    fn clone_box(&self) -> Box<dyn NetDesign> {
        Box::new(self.clone())
    }
}

rensou_api::inventory::submit! {
    NetPlugin {
        name: "gelu-mlp",
        description: "an MLP with GELU activations (the example net plugin)",
        default_config: || Box::new(GeluMlp::default()),
    }
}
