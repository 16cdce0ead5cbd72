//! The OSCN [`Modality`]: labels, and items per class from deterministic random streams.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};

use rensou_api::rng::{derive_seed, DataRng};
use rensou_api::vocab::{self, Colour};
use rensou_api::{ItemRequest, ItemSet, LabelSpec, Modality, Result, Supply};

use crate::config::OscnConfig;
use crate::error::OscnError;
use crate::render::{Renderer, CELLS};
use crate::shape::{Shape, SHAPE};
use crate::NAME;

/// How often (in items) [`ItemRequest::progress`] is called.
pub const PROGRESS_EVERY: u64 = 1024;

/// The OSCN modality, built from a validated [`OscnConfig`].
#[derive(Clone, Debug)]
pub struct Oscn {
    renderer: Renderer,
}

/// One class of a generation plan: fixed values for the labels the request keys on, the rest
/// drawn at random per item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Class {
    number: Option<u32>,
    colour: Option<Colour>,
    count: usize,
}

impl Oscn {
    /// Validates `config` and builds the modality.
    pub fn new(config: &OscnConfig) -> Result<Self> {
        Ok(Oscn {
            renderer: Renderer::new(config)?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OscnConfig {
        self.renderer.config()
    }

    /// The renderer, for drawing single images.
    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    /// The classes to generate, in output order.
    fn plan(&self, request: &ItemRequest<'_>) -> Result<Vec<Class>> {
        let c = self.config();
        let Some(counts) = request.classes else {
            let per_class = c.per_class(request.split);
            let mut colours = c.colours.clone();
            colours.sort();
            return Ok((c.min_number..=c.max_number)
                .flat_map(|number| {
                    colours.iter().map(move |&colour| Class {
                        number: Some(number),
                        colour: Some(colour),
                        count: per_class,
                    })
                })
                .collect());
        };
        counts
            .keyed_by(NAME, &[vocab::NUMBER, vocab::COLOUR])?
            .into_iter()
            .map(|(values, count)| {
                Ok(Class {
                    number: values[0].map(|n| self.number(n)).transpose()?,
                    colour: values[1].map(|c| self.colour(c)).transpose()?,
                    count,
                })
            })
            .collect()
    }

    fn number(&self, value: i64) -> Result<u32, OscnError> {
        let c = self.config();
        u32::try_from(value)
            .ok()
            .filter(|n| (c.min_number..=c.max_number).contains(n))
            .ok_or(OscnError::NumberOutOfRange {
                number: value,
                min: c.min_number,
                max: c.max_number,
            })
    }

    fn colour(&self, value: i64) -> Result<Colour, OscnError> {
        let c = self.config();
        c.colours
            .iter()
            .copied()
            .find(|col| col.index() == value)
            .ok_or_else(|| OscnError::ColourNotConfigured {
                index: value,
                configured: c
                    .colours
                    .iter()
                    .map(|col| format!("{} = {}", col.index(), col.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The random stream of one class: derived from the request's seed and the class's fixed
    /// labels, so a class's items do not depend on which other classes are requested.
    fn class_rng(seed: u64, class: &Class) -> DataRng {
        let mut path = Vec::with_capacity(2);
        if let Some(colour) = class.colour {
            path.push(format!("{}={}", vocab::COLOUR, colour.name()));
        }
        if let Some(number) = class.number {
            path.push(format!("{}={number}", vocab::NUMBER));
        }
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        DataRng::seed_from_u64(derive_seed(seed, &path))
    }
}

fn pick<T: Copy, R: Rng + ?Sized>(items: &[T], rng: &mut R) -> T {
    items[rng.random_range(0..items.len() as u32) as usize]
}

impl Modality for Oscn {
    fn name(&self) -> &str {
        NAME
    }

    fn item_shape(&self) -> Vec<usize> {
        let s = self.config().image_size;
        vec![s, s, 3]
    }

    fn labels(&self) -> Vec<LabelSpec> {
        vec![
            vocab::number_label_spec(),
            Colour::label_spec(),
            Shape::label_spec(),
            LabelSpec::numeric(
                CELLS,
                "grid layout: bitmask of occupied cells, bit row * side + col; free layout: -1",
            ),
        ]
    }

    fn supply(&self) -> Supply {
        Supply::Generative
    }

    /// Items class after class (in the order of the request's keys, or number then colour
    /// index when no counts are given); labels not fixed by the class are drawn uniformly
    /// from the config.
    fn items(&self, request: &ItemRequest<'_>) -> Result<ItemSet> {
        let plan = self.plan(request)?;
        let c = self.config();
        let item_len = self.renderer.image_len();
        let total: usize = plan.iter().map(|k| k.count).sum();
        let bytes = total
            .checked_mul(item_len)
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or(OscnError::TooManyItems {
                items: total,
                item_len,
            })?;
        let mut data = Vec::with_capacity(bytes);
        let mut numbers = Vec::with_capacity(total);
        let mut colours = Vec::with_capacity(total);
        let mut shapes = Vec::with_capacity(total);
        let mut cells = Vec::with_capacity(total);
        let mut pending = 0u64;
        for class in &plan {
            let mut rng = Self::class_rng(request.seed, class);
            for _ in 0..class.count {
                let number = match class.number {
                    Some(n) => n,
                    None => rng.random_range(c.min_number..=c.max_number),
                };
                let colour = match class.colour {
                    Some(col) => col,
                    None => pick(&c.colours, &mut rng),
                };
                let shape = pick(&c.shapes, &mut rng);
                let drawing = self.renderer.render(number, shape, colour, &mut rng)?;
                data.extend_from_slice(&drawing.image);
                numbers.push(i64::from(number));
                colours.push(colour.index());
                shapes.push(shape.index());
                cells.push(drawing.cells);
                pending += 1;
                if pending == PROGRESS_EVERY {
                    (request.progress)(pending);
                    pending = 0;
                }
            }
        }
        if pending > 0 {
            (request.progress)(pending);
        }
        let labels = BTreeMap::from([
            (vocab::NUMBER.to_owned(), numbers),
            (vocab::COLOUR.to_owned(), colours),
            (SHAPE.to_owned(), shapes),
            (CELLS.to_owned(), cells),
        ]);
        let set = ItemSet {
            shape: self.item_shape(),
            data,
            labels,
        };
        set.validate()?;
        Ok(set)
    }

    fn provenance(&self) -> String {
        let c = self.config();
        format!(
            "{NAME}: generated ({} layout, {}x{} images, {} px objects)",
            c.layout.name(),
            c.image_size,
            c.image_size,
            c.object_size
        )
    }
}
