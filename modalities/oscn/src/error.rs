//! The crate's error type.

/// What can go wrong while generating OSCN items (configuration problems are
/// [`rensou_api::Error::Config`] instead).
///
/// Converted into [`rensou_api::Error::Modality`] with the name `oscn`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OscnError {
    /// The free layout hit a dead end more often than `free_max_tries` allows.
    #[error(
        "could not place {number} objects in the free layout: every one of {tries} attempts \
         left no room for the next object (raise `free_max_tries`, lower `max_number`, \
         `object_size` or `free_min_gap`, or use a larger `image_size`)"
    )]
    Layout {
        /// Objects that were to be placed.
        number: u32,
        /// Attempts made.
        tries: u32,
    },
    /// A number outside the configured `min_number..=max_number` was requested.
    #[error("number {number} is outside the configured range {min}..={max}")]
    NumberOutOfRange {
        /// The requested number.
        number: i64,
        /// Configured `min_number`.
        min: u32,
        /// Configured `max_number`.
        max: u32,
    },
    /// A colour that is not in the configured `colours` was requested.
    #[error("colour index {index} is not one of the configured colours ({configured})")]
    ColourNotConfigured {
        /// The requested colour label value.
        index: i64,
        /// The configured colours, comma separated.
        configured: String,
    },
    /// An object would not fit inside the image at the given position.
    #[error(
        "an object of size {size} at row {top}, column {left} does not fit in a \
         {image_size}x{image_size} image"
    )]
    OutOfBounds {
        /// Object size in pixels.
        size: usize,
        /// Top row of the object.
        top: usize,
        /// Left column of the object.
        left: usize,
        /// Image side in pixels.
        image_size: usize,
    },
    /// An image buffer has the wrong length.
    #[error("image buffer has {got} bytes, a {image_size}x{image_size} RGB image needs {want}")]
    BufferSize {
        /// Bytes given.
        got: usize,
        /// Bytes needed.
        want: usize,
        /// Image side in pixels.
        image_size: usize,
    },
    /// The requested number of items does not fit in memory.
    #[error("{items} items of {item_len} bytes overflow the address space")]
    TooManyItems {
        /// Items requested.
        items: usize,
        /// Bytes per item.
        item_len: usize,
    },
}

impl From<OscnError> for rensou_api::Error {
    fn from(e: OscnError) -> Self {
        rensou_api::Error::modality(crate::NAME, e)
    }
}
