//! A modality of this crate: N vertical bars (N = 1..=9) of random heights in distinct slots
//! of a 12 x 20 greyscale picture, labelled with the shared `number` concept so that the
//! dataset builder pairs it with OSCN, CMNIST or audio by number.

use rand::Rng;
use rensou_api::modality::{ItemRequest, ItemSet, LabelSpec, Modality, ModalityConfig, Supply};
use rensou_api::typetag; // the typetag macro expands to `typetag::...` paths
use rensou_api::{vocab, Error, ModalityPlugin, Result, SourceEnv, Split};
use serde::{Deserialize, Serialize};

const NAME: &str = "bars";
const HEIGHT: usize = 12;
const WIDTH: usize = 20;

/// Settings of the `bars` modality (`[[modalities]] type = "bars"`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BarsConfig {
    /// Training items per number when no other modality fixes the class sizes.
    pub train_per_class: usize,
    /// Test items per number when no other modality fixes the class sizes.
    pub test_per_class: usize,
}

impl Default for BarsConfig {
    fn default() -> Self {
        BarsConfig {
            train_per_class: 200,
            test_per_class: 50,
        }
    }
}

/// The modality built from a [`BarsConfig`].
pub struct Bars {
    config: BarsConfig,
}

impl Modality for Bars {
    fn name(&self) -> &str {
        NAME
    }

    fn item_shape(&self) -> Vec<usize> {
        vec![HEIGHT, WIDTH]
    }

    fn labels(&self) -> Vec<LabelSpec> {
        vec![vocab::number_label_spec()]
    }

    fn supply(&self) -> Supply {
        Supply::Generative
    }

    fn items(&self, request: &ItemRequest<'_>) -> Result<ItemSet> {
        // (number, count) per class: the sizes other modalities ask for, or our own.
        let classes: Vec<(i64, usize)> = match request.classes {
            Some(counts) => counts
                .keyed_by(NAME, &[vocab::NUMBER])?
                .into_iter()
                .map(|(key, count)| (key[0].unwrap_or(1), count))
                .collect(),
            None => {
                let per_class = match request.split {
                    Split::Train => self.config.train_per_class,
                    Split::Test => self.config.test_per_class,
                };
                (1..=9).map(|n| (n, per_class)).collect()
            }
        };
        let mut set = ItemSet::new(self.item_shape(), &[vocab::NUMBER]);
        let mut rng = rensou_api::rng::rng_for(request.seed, &[NAME]);
        for (number, count) in classes {
            if !vocab::NUMBERS.contains(&number) {
                return Err(Error::Data(format!(
                    "bars: number {number} is not in 1..=9"
                )));
            }
            for _ in 0..count {
                let mut slots: Vec<usize> = (0..9).collect();
                let mut item = vec![0u8; HEIGHT * WIDTH];
                for _ in 0..number {
                    let slot = slots.swap_remove(rng.random_range(0..slots.len()));
                    let height = rng.random_range(4..=HEIGHT);
                    let x = 1 + 2 * slot;
                    for y in HEIGHT - height..HEIGHT {
                        item[y * WIDTH + x] = 255;
                    }
                }
                set.push(&item, &[(vocab::NUMBER, number)])?;
                (request.progress)(1);
            }
        }
        Ok(set)
    }
}

#[typetag::serde(name = "bars")]
impl ModalityConfig for BarsConfig {
    fn validate(&self) -> Result<()> {
        if self.train_per_class == 0 || self.test_per_class == 0 {
            return Err(Error::config(
                "bars.train_per_class",
                "train_per_class and test_per_class must be at least 1",
            ));
        }
        Ok(())
    }

    fn build(&self, _env: &SourceEnv) -> Result<Box<dyn Modality>> {
        Ok(Box::new(Bars {
            config: self.clone(),
        }))
    }

    fn clone_box(&self) -> Box<dyn ModalityConfig> {
        Box::new(self.clone())
    }
}

rensou_api::inventory::submit! {
    ModalityPlugin {
        name: NAME,
        description: "N vertical bars of random heights (12 x 20 greyscale)",
        default_config: || Box::new(BarsConfig::default()),
    }
}
