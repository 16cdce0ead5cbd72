//! Drawing OSCN images: placing objects (grid or free layout) and painting their shapes.

use rand::Rng;

use rensou_api::vocab::Colour;
use rensou_api::Result;

use crate::config::{Layout, OscnConfig};
use crate::error::OscnError;
use crate::shape::Shape;

/// Value of the `cells` label for the free layout, where there are no cells.
pub const NO_CELLS: i64 = -1;

/// Name of the `cells` label.
pub const CELLS: &str = "cells";

/// Rejection tries per object in the free layout before falling back to listing every free
/// position (both give the same distribution: uniform over the positions still free).
const FREE_QUICK_TRIES: u32 = 32;

/// One drawn image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drawing {
    /// `image_size * image_size * 3` bytes, rows then columns then RGB (HWC).
    pub image: Vec<u8>,
    /// Grid layout: bitmask of occupied cells, bit `row * grid_side + col`; free layout: `-1`.
    pub cells: i64,
    /// Top-left corner `(row, col)` of each object's bounding box, in drawing order.
    pub positions: Vec<(usize, usize)>,
}

/// Draws OSCN images for one validated [`OscnConfig`]; cheap to reuse for many images.
#[derive(Clone, Debug)]
pub struct Renderer {
    config: OscnConfig,
    /// Masks of all shapes at the configured object size, in [`Shape::ALL`] order.
    masks: Vec<Vec<bool>>,
}

impl Renderer {
    /// Validates `config` and prepares the shape masks.
    pub fn new(config: &OscnConfig) -> Result<Self> {
        config.check()?;
        Ok(Renderer {
            config: config.clone(),
            masks: Shape::ALL
                .iter()
                .map(|s| s.mask(config.object_size))
                .collect(),
        })
    }

    /// The configuration this renderer draws.
    pub fn config(&self) -> &OscnConfig {
        &self.config
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.config.image_size * self.config.image_size * 3
    }

    /// Draws `number` objects of `shape` in `colour` at random positions of the configured
    /// layout. `number` must be within `min_number..=max_number`; any shape or colour may be
    /// drawn, configured or not.
    pub fn render<R: Rng + ?Sized>(
        &self,
        number: u32,
        shape: Shape,
        colour: Colour,
        rng: &mut R,
    ) -> Result<Drawing> {
        let mut image = vec![0u8; self.image_len()];
        let (cells, positions) = self.place(number, rng)?;
        for &(top, left) in &positions {
            self.paint(&mut image, shape, top, left, colour.rgb())?;
        }
        Ok(Drawing {
            image,
            cells,
            positions,
        })
    }

    /// Chooses the objects' top-left corners; returns the `cells` label and the corners.
    pub fn place<R: Rng + ?Sized>(
        &self,
        number: u32,
        rng: &mut R,
    ) -> Result<(i64, Vec<(usize, usize)>)> {
        let c = &self.config;
        if number < c.min_number || number > c.max_number {
            return Err(OscnError::NumberOutOfRange {
                number: i64::from(number),
                min: c.min_number,
                max: c.max_number,
            }
            .into());
        }
        match c.layout {
            Layout::Grid => Ok(self.place_grid(number, rng)),
            Layout::Free => Ok((NO_CELLS, self.place_free(number, rng)?)),
        }
    }

    fn place_grid<R: Rng + ?Sized>(&self, number: u32, rng: &mut R) -> (i64, Vec<(usize, usize)>) {
        let c = &self.config;
        let side = c.grid_centres.len();
        let n_cells = (side * side) as u32;
        // Partial Fisher-Yates over the cell indices: the first `number` are a uniform sample.
        let mut cells: Vec<u32> = (0..n_cells).collect();
        for i in 0..number {
            let j = rng.random_range(i..n_cells);
            cells.swap(i as usize, j as usize);
        }
        let half = c.object_size / 2;
        let mut mask = 0i64;
        let positions = cells[..number as usize]
            .iter()
            .map(|&cell| {
                mask |= 1i64 << cell;
                let (row, col) = (cell as usize / side, cell as usize % side);
                (c.grid_centres[row] - half, c.grid_centres[col] - half)
            })
            .collect();
        (mask, positions)
    }

    fn place_free<R: Rng + ?Sized>(
        &self,
        number: u32,
        rng: &mut R,
    ) -> Result<Vec<(usize, usize)>, OscnError> {
        let c = &self.config;
        let span = (c.image_size - c.object_size + 1) as u32;
        let apart = c.object_size + c.free_min_gap;
        let fits = |placed: &[(usize, usize)], p: (usize, usize)| {
            placed
                .iter()
                .all(|q| p.0.abs_diff(q.0) >= apart || p.1.abs_diff(q.1) >= apart)
        };
        let mut candidates = Vec::new();
        'attempt: for _ in 0..c.free_max_tries {
            let mut placed: Vec<(usize, usize)> = Vec::with_capacity(number as usize);
            'object: while placed.len() < number as usize {
                for _ in 0..FREE_QUICK_TRIES {
                    let p = (
                        rng.random_range(0..span) as usize,
                        rng.random_range(0..span) as usize,
                    );
                    if fits(&placed, p) {
                        placed.push(p);
                        continue 'object;
                    }
                }
                candidates.clear();
                for row in 0..span as usize {
                    for col in 0..span as usize {
                        if fits(&placed, (row, col)) {
                            candidates.push((row, col));
                        }
                    }
                }
                if candidates.is_empty() {
                    continue 'attempt;
                }
                let k = rng.random_range(0..candidates.len() as u32) as usize;
                placed.push(candidates[k]);
            }
            return Ok(placed);
        }
        Err(OscnError::Layout {
            number,
            tries: c.free_max_tries,
        })
    }

    fn paint(
        &self,
        image: &mut [u8],
        shape: Shape,
        top: usize,
        left: usize,
        rgb: [u8; 3],
    ) -> Result<(), OscnError> {
        let mask = &self.masks[shape.index() as usize];
        paint_mask(
            image,
            self.config.image_size,
            mask,
            self.config.object_size,
            top,
            left,
            rgb,
        )
    }
}

/// Paints one object of `shape` with its `size x size` box's top-left corner at (`top`,
/// `left`) into an HWC RGB `image` of side `image_size`.
pub fn draw_object(
    image: &mut [u8],
    image_size: usize,
    shape: Shape,
    size: usize,
    top: usize,
    left: usize,
    colour: Colour,
) -> Result<()> {
    Ok(paint_mask(
        image,
        image_size,
        &shape.mask(size),
        size,
        top,
        left,
        colour.rgb(),
    )?)
}

fn paint_mask(
    image: &mut [u8],
    image_size: usize,
    mask: &[bool],
    size: usize,
    top: usize,
    left: usize,
    rgb: [u8; 3],
) -> Result<(), OscnError> {
    let want = image_size * image_size * 3;
    if image.len() != want {
        return Err(OscnError::BufferSize {
            got: image.len(),
            want,
            image_size,
        });
    }
    if top + size > image_size || left + size > image_size {
        return Err(OscnError::OutOfBounds {
            size,
            top,
            left,
            image_size,
        });
    }
    for r in 0..size {
        for c in 0..size {
            if mask[r * size + c] {
                let p = ((top + r) * image_size + left + c) * 3;
                image[p..p + 3].copy_from_slice(&rgb);
            }
        }
    }
    Ok(())
}

/// Draws one image for `config` (validated here): `number` objects of `shape` in `colour`.
/// Returns the HWC RGB bytes and the `cells` label. For many images build a [`Renderer`] once.
pub fn render<R: Rng + ?Sized>(
    config: &OscnConfig,
    number: u32,
    shape: Shape,
    colour: Colour,
    rng: &mut R,
) -> Result<(Vec<u8>, i64)> {
    let d = Renderer::new(config)?.render(number, shape, colour, rng)?;
    Ok((d.image, d.cells))
}
