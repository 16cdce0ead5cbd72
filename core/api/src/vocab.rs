//! Shared label vocabularies, so that modalities agree on what a label value means.
//!
//! Pairing matches items by the labels their modalities share; for that to be meaningful, `colour`
//! index 2 must be blue in every modality. Plugins that carry a colour or a number label take the
//! spec from here.

use serde::{Deserialize, Serialize};

use crate::modality::LabelSpec;
use crate::{Error, Result};

/// The colours of the study, with fixed label indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// (255, 0, 0); index 0.
    Red,
    /// (0, 255, 0); index 1.
    Green,
    /// (0, 0, 255); index 2.
    Blue,
    /// (255, 255, 255); index 3.
    White,
}

impl Colour {
    /// Every colour, in index order.
    pub const ALL: [Colour; 4] = [Colour::Red, Colour::Green, Colour::Blue, Colour::White];

    /// The label value of this colour.
    pub fn index(self) -> i64 {
        self as i64
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::White => "white",
        }
    }

    /// 8-bit RGB value; also the channel mask used to colour grey digits.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [255, 0, 0],
            Colour::Green => [0, 255, 0],
            Colour::Blue => [0, 0, 255],
            Colour::White => [255, 255, 255],
        }
    }

    /// The colour with label value `index`.
    pub fn from_index(index: i64) -> Result<Colour> {
        Colour::ALL
            .into_iter()
            .find(|c| c.index() == index)
            .ok_or_else(|| Error::Data(format!("no colour has index {index} (0..=3)")))
    }

    /// The `colour` label spec (`0 = red, 1 = green, 2 = blue, 3 = white`).
    pub fn label_spec() -> LabelSpec {
        let names: Vec<&str> = Colour::ALL.iter().map(|c| c.name()).collect();
        LabelSpec::categorical("colour", "colour of the item", &names)
    }
}

/// Name of the label carrying the number concept shared by all modalities of the study.
pub const NUMBER: &str = "number";
/// The numbers of the study: a `number` label outside this range is refused when a dataset is
/// read (it would become an extra class in every metric).
pub const NUMBERS: std::ops::RangeInclusive<i64> = 1..=9;
/// Name of the colour label.
pub const COLOUR: &str = "colour";

/// The `number` label spec: the value is the number itself (1..=9 in the study).
pub fn number_label_spec() -> LabelSpec {
    LabelSpec::numeric(
        NUMBER,
        "the number the item shows (object count, digit, ...)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_round_trip() {
        for c in Colour::ALL {
            assert_eq!(Colour::from_index(c.index()).unwrap(), c);
        }
        assert!(Colour::from_index(4).is_err());
        assert_eq!(Colour::label_spec().values[&2], "blue");
    }
}
