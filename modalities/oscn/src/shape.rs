//! The object shapes and their pixel masks.

use serde::{Deserialize, Serialize};

use rensou_api::{Error, LabelSpec, Result};

/// Name of the shape label.
pub const SHAPE: &str = "shape";

/// The shape of the objects in an image; the label value is the index (stable, whatever the
/// config enables).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// A filled `s x s` square; index 0.
    Square,
    /// A filled triangle, apex at the top, base `s` wide at the bottom, height `s`; index 1.
    Triangle,
    /// A plus sign spanning `s` both ways, arms about `s / 3` thick; index 2.
    Cross,
    /// A filled disc of diameter `s`; index 3 (in the authors' code, unused in the paper).
    Circle,
}

impl Shape {
    /// Every shape, in index order.
    pub const ALL: [Shape; 4] = [Shape::Square, Shape::Triangle, Shape::Cross, Shape::Circle];

    /// The label value of this shape.
    pub fn index(self) -> i64 {
        self as i64
    }

    /// Lower-case name (as in config files).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Cross => "cross",
            Shape::Circle => "circle",
        }
    }

    /// The shape with label value `index`.
    pub fn from_index(index: i64) -> Result<Shape> {
        Shape::ALL
            .into_iter()
            .find(|s| s.index() == index)
            .ok_or_else(|| Error::Data(format!("no shape has index {index} (0..=3)")))
    }

    /// The `shape` label spec (`0 = square, 1 = triangle, 2 = cross, 3 = circle`), always with
    /// all four shapes so that indices are the same for every config.
    pub fn label_spec() -> LabelSpec {
        let names: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
        LabelSpec::categorical(SHAPE, "shape of the objects", &names)
    }

    /// The pixels this shape covers in its `size x size` bounding box, row-major
    /// (`mask[row * size + col]`). Every shape reaches all four sides of its box and is
    /// 8-connected.
    pub fn mask(self, size: usize) -> Vec<bool> {
        let mut mask = vec![false; size * size];
        for row in 0..size {
            for col in 0..size {
                mask[row * size + col] = self.covers(size, row, col);
            }
        }
        mask
    }

    /// Number of pixels the shape covers at `size`.
    pub fn pixel_count(self, size: usize) -> usize {
        self.mask(size).into_iter().filter(|&b| b).count()
    }

    /// Whether pixel (`row`, `col`) of a `size x size` box belongs to the shape.
    fn covers(self, size: usize, row: usize, col: usize) -> bool {
        // Work in doubled coordinates so that pixel centres are integers: pixel `i` spans
        // [2i, 2i + 2], its centre is 2i + 1, the box spans [0, 2s].
        let s = size as i64;
        let (r, c) = (row as i64, col as i64);
        match self {
            Shape::Square => true,
            Shape::Triangle => {
                // Apex at (s/2, 0), base from (0, s) to (s, s): the half width at depth y is
                // y / 2. A pixel is in when its centre is within the half width measured at
                // the pixel's lower edge (y = r + 1), so the apex row is never empty.
                (2 * c + 1 - s).abs() <= r + 1
            }
            Shape::Cross => {
                let t = cross_thickness(size) as i64;
                let lo = (s - t) / 2;
                let in_band = |i: i64| i >= lo && i < lo + t;
                in_band(r) || in_band(c)
            }
            Shape::Circle => {
                // Centre (s, s) in doubled coordinates, radius s.
                let dy = 2 * r + 1 - s;
                let dx = 2 * c + 1 - s;
                dx * dx + dy * dy <= s * s
            }
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Arm thickness of the cross at `size`: the value closest to `size / 3` (at least 1) with the
/// same parity as `size`, so that the arms sit exactly in the middle (2 px for 6 px objects).
pub fn cross_thickness(size: usize) -> usize {
    let mut best = if size.is_multiple_of(2) { 2 } else { 1 };
    let mut t = best;
    while t <= size {
        let err = (3 * t).abs_diff(size);
        if err < (3 * best).abs_diff(size) || (err == (3 * best).abs_diff(size) && t > best) {
            best = t;
        }
        t += 2;
    }
    best.min(size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(mask: &[bool], size: usize) -> bool {
        let Some(start) = mask.iter().position(|&b| b) else {
            return false;
        };
        let mut seen = vec![false; mask.len()];
        let mut stack = vec![start];
        seen[start] = true;
        let mut count = 0;
        while let Some(p) = stack.pop() {
            count += 1;
            let (r, c) = ((p / size) as i64, (p % size) as i64);
            for dr in -1..=1 {
                for dc in -1..=1 {
                    let (nr, nc) = (r + dr, c + dc);
                    if nr < 0 || nc < 0 || nr >= size as i64 || nc >= size as i64 {
                        continue;
                    }
                    let q = nr as usize * size + nc as usize;
                    if mask[q] && !seen[q] {
                        seen[q] = true;
                        stack.push(q);
                    }
                }
            }
        }
        count == mask.iter().filter(|&&b| b).count()
    }

    #[test]
    fn masks_fill_their_box_and_are_connected() {
        for size in 1..=20 {
            for shape in Shape::ALL {
                let m = shape.mask(size);
                assert!(connected(&m, size), "{shape} at {size} is not connected");
                let row_hit = |r: usize| (0..size).any(|c| m[r * size + c]);
                let col_hit = |c: usize| (0..size).any(|r| m[r * size + c]);
                assert!(row_hit(0) && row_hit(size - 1), "{shape} at {size}");
                assert!(col_hit(0) && col_hit(size - 1), "{shape} at {size}");
            }
        }
    }

    #[test]
    fn six_pixel_shapes_are_as_documented() {
        let pic = |shape: Shape| -> Vec<String> {
            let m = shape.mask(6);
            m.chunks(6)
                .map(|r| r.iter().map(|&b| if b { '#' } else { '.' }).collect())
                .collect()
        };
        assert_eq!(pic(Shape::Square), ["######"; 6]);
        assert_eq!(
            pic(Shape::Triangle),
            ["..##..", "..##..", ".####.", ".####.", "######", "######"]
        );
        assert_eq!(
            pic(Shape::Cross),
            ["..##..", "..##..", "######", "######", "..##..", "..##.."]
        );
        assert_eq!(
            pic(Shape::Circle),
            [".####.", "######", "######", "######", "######", ".####."]
        );
        let counts: Vec<usize> = Shape::ALL.iter().map(|s| s.pixel_count(6)).collect();
        assert_eq!(counts, [36, 24, 20, 32]);
    }

    #[test]
    fn cross_thickness_is_about_a_third() {
        assert_eq!(cross_thickness(1), 1);
        assert_eq!(cross_thickness(2), 2);
        assert_eq!(cross_thickness(3), 1);
        assert_eq!(cross_thickness(5), 1);
        assert_eq!(cross_thickness(6), 2);
        assert_eq!(cross_thickness(7), 3);
        assert_eq!(cross_thickness(9), 3);
        assert_eq!(cross_thickness(12), 4);
    }

    #[test]
    fn indices_round_trip() {
        for s in Shape::ALL {
            assert_eq!(Shape::from_index(s.index()).unwrap(), s);
        }
        assert!(Shape::from_index(4).is_err());
    }
}
