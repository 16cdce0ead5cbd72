//! A borrowed row-major matrix of points.

use crate::error::{Result, TsneError};

/// `n` points of dimension `dim`, row-major (`data.len() == n * dim`), all finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Points<'a> {
    data: &'a [f32],
    dim: usize,
}

impl<'a> Points<'a> {
    /// Checks and wraps `data` as points of dimension `dim`: `dim > 0`, the length a multiple of
    /// `dim`, every value finite.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(TsneError::Input(
                "points need a dimension of at least 1".into(),
            ));
        }
        if !data.len().is_multiple_of(dim) {
            return Err(TsneError::Input(format!(
                "{} values are not a whole number of {dim}-dimensional points",
                data.len()
            )));
        }
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            return Err(TsneError::Input(format!(
                "point {} has a non-finite coordinate ({})",
                k / dim,
                data[k]
            )));
        }
        Ok(Points { data, dim })
    }

    /// 2-D points (an embedding).
    pub fn from_pairs(points: &'a [[f32; 2]]) -> Result<Self> {
        Points::new(points.as_flattened(), 2)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All values, row-major.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}
