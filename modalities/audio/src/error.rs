//! The crate's error type.

/// What can go wrong while generating or presenting audio items (configuration problems are
/// [`rensou_api::Error::Config`] instead).
///
/// Converted into [`rensou_api::Error::Modality`] with the name `audio`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
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
    /// A waveform handed to the analyser has the wrong length.
    #[error("waveform has {got} samples, the configured sound length is {want}")]
    WaveformLength {
        /// Samples given.
        got: usize,
        /// Samples needed (`sample_rate * duration_ms / 1000`).
        want: usize,
    },
    /// A spectrogram to invert has the wrong shape.
    #[error(
        "spectrogram shape {got:?} is not the configured item shape {want:?} ([mels, frames])"
    )]
    SpectrogramShape {
        /// The shape given.
        got: Vec<usize>,
        /// The configured item shape.
        want: Vec<usize>,
    },
    /// A spectrogram's values do not match its shape.
    #[error("spectrogram has {got} values, shape {shape:?} needs {want}")]
    SpectrogramLength {
        /// Values given.
        got: usize,
        /// Values needed.
        want: usize,
        /// The shape.
        shape: Vec<usize>,
    },
    /// A spectrogram value is NaN or infinite.
    #[error("spectrogram value {index} is not finite")]
    NonFinite {
        /// Position of the first bad value.
        index: usize,
    },
    /// Writing the WAV file failed.
    #[error("cannot write WAV: {0}")]
    Wav(String),
    /// The requested number of items does not fit in memory.
    #[error("{items} items of {item_len} bytes overflow the address space")]
    TooManyItems {
        /// Items requested.
        items: usize,
        /// Bytes per item.
        item_len: usize,
    },
}

impl From<AudioError> for rensou_api::Error {
    fn from(e: AudioError) -> Self {
        rensou_api::Error::modality(crate::NAME, e)
    }
}
