//! The crate's error type.

/// Everything that can go wrong in the coherence probe.
#[derive(Debug, thiserror::Error)]
pub enum CoherenceError {
    /// A configuration value is out of its allowed range.
    #[error("invalid config `coherence.{field}`: {message}")]
    Config {
        /// The offending field (`joint_samples`).
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A modality of the model has no items or no latents in the analysed data.
    #[error("coherence: modality `{modality}` of the model is not in the analysed data ({what})")]
    MissingModality {
        /// The modality.
        modality: String,
        /// What is missing (items, latents).
        what: String,
    },
    /// None of the configured labels is carried by any modality.
    #[error(
        "coherence: no modality carries any of the labels {wanted} (labels present: {present})"
    )]
    NoLabels {
        /// The configured labels, comma separated.
        wanted: String,
        /// The labels the modalities carry, comma separated.
        present: String,
    },
    /// Arrays handed over by the model, the classifiers or the data do not fit together.
    #[error("coherence: {0}")]
    Inconsistent(String),
    /// An error from rensou's API (the model view, the classifiers, writing files).
    #[error(transparent)]
    Core(#[from] rensou_api::Error),
}

impl From<CoherenceError> for rensou_api::Error {
    fn from(e: CoherenceError) -> Self {
        match e {
            CoherenceError::Config { field, message } => {
                rensou_api::Error::config(format!("coherence.{field}"), message)
            }
            CoherenceError::Core(inner) => inner,
            other => rensou_api::Error::Data(other.to_string()),
        }
    }
}

/// `Result` with [`CoherenceError`].
pub type Result<T, E = CoherenceError> = std::result::Result<T, E>;
