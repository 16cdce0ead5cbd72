//! The OSCN configuration: every field, its default (the paper's value) and its validation.

use serde::{Deserialize, Serialize};

use rensou_api::vocab::Colour;
use rensou_api::{typetag, Error, Modality, ModalityConfig, ModalityPlugin, Result, SourceEnv};

use crate::shape::Shape;
use crate::{Oscn, NAME};

/// Largest accepted `image_size` (pixels per side).
pub const MAX_IMAGE_SIZE: usize = 1024;
/// Largest accepted number of grid centres per axis (the `cells` bitmask has one bit per cell).
pub const MAX_GRID_SIDE: usize = 7;

/// How objects are placed in the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `number` distinct cells drawn at random from the grid given by `grid_centres`, one
    /// object centred on each (the paper's final data).
    #[default]
    Grid,
    /// Random positions with rejection, keeping `free_min_gap` black pixels between the
    /// objects' bounding boxes (the paper's wording, the authors' older code).
    Free,
}

impl Layout {
    /// Lower-case name (as in config files).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Grid => "grid",
            Layout::Free => "free",
        }
    }
}

/// Configuration of the OSCN modality ("object, shape, colour, number" images).
///
/// Every field has the paper's value as its default; a TOML table needs to name only what it
/// changes. Unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OscnConfig {
    /// Side of the square RGB image in pixels (32).
    pub image_size: usize,
    /// Side of an object's bounding box in pixels (6).
    pub object_size: usize,
    /// Smallest number of objects (1).
    pub min_number: u32,
    /// Largest number of objects (9).
    pub max_number: u32,
    /// Shapes to draw from (square, triangle, cross); each image has one shape.
    pub shapes: Vec<Shape>,
    /// Colours to draw from (red, green, blue, white); each image has one colour.
    pub colours: Vec<Colour>,
    /// How objects are placed (grid).
    pub layout: Layout,
    /// Grid layout: cell centres in pixels, the same on both axes ([5, 15, 25]: a 3x3 grid).
    pub grid_centres: Vec<usize>,
    /// Free layout: black pixels kept between any two objects' bounding boxes (2).
    pub free_min_gap: usize,
    /// Free layout: how many times one image's layout may be started over after the objects
    /// placed so far left no room for the next one (100); exceeding it is an error.
    pub free_max_tries: u32,
    /// Training items per (number, colour) class when the dataset builder asks for no
    /// particular counts (1000).
    pub train_per_class: usize,
    /// Test items per (number, colour) class when no counts are asked for (100).
    pub test_per_class: usize,
}

impl Default for OscnConfig {
    fn default() -> Self {
        OscnConfig {
            image_size: 32,
            object_size: 6,
            min_number: 1,
            max_number: 9,
            shapes: vec![Shape::Square, Shape::Triangle, Shape::Cross],
            colours: Colour::ALL.to_vec(),
            layout: Layout::Grid,
            grid_centres: vec![5, 15, 25],
            free_min_gap: 2,
            free_max_tries: 100,
            train_per_class: 1000,
            test_per_class: 100,
        }
    }
}

fn field(name: &str) -> String {
    format!("{NAME}.{name}")
}

fn fail(name: &str, message: impl Into<String>) -> Error {
    Error::config(field(name), message)
}

impl OscnConfig {
    /// Checks every field; the error names the field (`oscn.object_size`) and what is allowed.
    ///
    /// Grid fields are checked against the image only for the grid layout, so that a free
    /// layout on a small image does not trip over the unused default grid.
    pub fn check(&self) -> Result<()> {
        let s = self.image_size;
        if s == 0 || s > MAX_IMAGE_SIZE {
            return Err(fail(
                "image_size",
                format!("must be 1..={MAX_IMAGE_SIZE} pixels, got {s}"),
            ));
        }
        let o = self.object_size;
        if o == 0 || o > s {
            return Err(fail(
                "object_size",
                format!("must be 1..=image_size ({s}) pixels, got {o}"),
            ));
        }
        if self.min_number == 0 {
            return Err(fail("min_number", "must be at least 1"));
        }
        if self.max_number < self.min_number {
            return Err(fail(
                "max_number",
                format!(
                    "must be at least min_number ({}), got {}",
                    self.min_number, self.max_number
                ),
            ));
        }
        check_unique("shapes", &self.shapes, Shape::name)?;
        check_unique("colours", &self.colours, Colour::name)?;
        for (i, a) in self.shapes.iter().enumerate() {
            for b in &self.shapes[i + 1..] {
                if a.mask(o) == b.mask(o) {
                    return Err(fail(
                        "object_size",
                        format!(
                            "at {o} pixels a {a} and a {b} cover the same pixels; use a larger \
                             object_size or drop one of them from shapes"
                        ),
                    ));
                }
            }
        }
        if self.free_min_gap == 0 || self.free_min_gap > s {
            return Err(fail(
                "free_min_gap",
                format!(
                    "must be 1..=image_size ({s}) pixels (objects must not touch), got {}",
                    self.free_min_gap
                ),
            ));
        }
        if self.free_max_tries == 0 {
            return Err(fail("free_max_tries", "must be at least 1"));
        }
        if self.train_per_class == 0 {
            return Err(fail("train_per_class", "must be at least 1"));
        }
        if self.test_per_class == 0 {
            return Err(fail("test_per_class", "must be at least 1"));
        }
        self.check_grid_form()?;
        match self.layout {
            Layout::Grid => self.check_grid_fit(),
            Layout::Free => self.check_free_fit(),
        }
    }

    /// `grid_centres` on its own: 1..=7 strictly increasing values.
    fn check_grid_form(&self) -> Result<()> {
        let g = &self.grid_centres;
        if g.is_empty() || g.len() > MAX_GRID_SIDE {
            return Err(fail(
                "grid_centres",
                format!(
                    "must hold 1..={MAX_GRID_SIDE} centres per axis, got {}",
                    g.len()
                ),
            ));
        }
        if g.windows(2).any(|w| w[0] >= w[1]) {
            return Err(fail(
                "grid_centres",
                format!("must be strictly increasing, got {g:?}"),
            ));
        }
        Ok(())
    }

    /// The grid layout: every cell's object inside the image, neighbours not touching, and
    /// enough cells for `max_number`.
    fn check_grid_fit(&self) -> Result<()> {
        let (s, o, g) = (self.image_size, self.object_size, &self.grid_centres);
        let half = o / 2;
        for &c in g {
            if c < half || c - half + o > s {
                return Err(fail(
                    "grid_centres",
                    format!(
                        "an object of {o} pixels centred at {c} covers pixels {}..{} and \
                         leaves the {s}-pixel image; centres must be {half}..={}",
                        c as i64 - half as i64,
                        c as i64 - half as i64 + o as i64,
                        s - o + half
                    ),
                ));
            }
        }
        if let Some(w) = g.windows(2).find(|w| w[1] - w[0] <= o) {
            return Err(fail(
                "grid_centres",
                format!(
                    "centres {} and {} are {} pixels apart: objects of {o} pixels would touch \
                     or overlap (need more than object_size apart)",
                    w[0],
                    w[1],
                    w[1] - w[0]
                ),
            ));
        }
        let cells = g.len() * g.len();
        if self.max_number as usize > cells {
            return Err(fail(
                "max_number",
                format!(
                    "the grid layout has {cells} cells, so at most {cells} objects; got {}",
                    self.max_number
                ),
            ));
        }
        Ok(())
    }

    /// The free layout: `max_number` boxes, `free_min_gap` apart, can fit at all.
    fn check_free_fit(&self) -> Result<()> {
        let (s, o, gap) = (self.image_size, self.object_size, self.free_min_gap);
        // Axis-aligned boxes of side o + gap in a square of side s + gap: at most k^2.
        let k = (s + gap) / (o + gap);
        let most = k * k;
        if self.max_number as usize > most {
            return Err(fail(
                "max_number",
                format!(
                    "at most {most} objects of {o} pixels with {gap} pixels between them fit in \
                     a {s}-pixel image; got {}",
                    self.max_number
                ),
            ));
        }
        Ok(())
    }

    /// Number of grid cells (`grid_centres.len()` squared).
    pub fn grid_cells(&self) -> usize {
        self.grid_centres.len() * self.grid_centres.len()
    }

    /// Items per class for a split when no counts are requested.
    pub fn per_class(&self, split: rensou_api::Split) -> usize {
        match split {
            rensou_api::Split::Train => self.train_per_class,
            rensou_api::Split::Test => self.test_per_class,
        }
    }
}

fn check_unique<T: PartialEq + Copy>(
    name: &str,
    items: &[T],
    label: fn(T) -> &'static str,
) -> Result<()> {
    if items.is_empty() {
        return Err(fail(name, "must name at least one value"));
    }
    for (i, a) in items.iter().enumerate() {
        if items[i + 1..].contains(a) {
            return Err(fail(name, format!("lists `{}` twice", label(*a))));
        }
    }
    Ok(())
}

#[typetag::serde(name = "oscn")]
impl ModalityConfig for OscnConfig {
    fn validate(&self) -> Result<()> {
        self.check()
    }

    fn build(&self, _env: &SourceEnv) -> Result<Box<dyn Modality>> {
        Ok(Box::new(Oscn::new(self)?))
    }

    fn clone_box(&self) -> Box<dyn ModalityConfig> {
        Box::new(self.clone())
    }
}

fn default_config() -> Box<dyn ModalityConfig> {
    Box::new(OscnConfig::default())
}

rensou_api::inventory::submit! {
    ModalityPlugin {
        name: NAME,
        description: "N objects of one shape and one colour on black (32x32 RGB; grid or free layout)",
        default_config,
    }
}
