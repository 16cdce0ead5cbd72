//! The crate's error type.

/// Everything that can go wrong in the arithmetic probe.
#[derive(Debug, thiserror::Error)]
pub enum ArithmeticError {
    /// A configuration value is out of its allowed range.
    #[error("invalid config `arithmetic.{field}`: {message}")]
    Config {
        /// The offending field (`samples`).
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The configured modality is not part of the analysed model or data.
    #[error("arithmetic: modality `{modality}` is not in the analysed data (present: {present})")]
    MissingModality {
        /// The configured modality.
        modality: String,
        /// The modalities that are present, comma separated.
        present: String,
    },
    /// The configured modality carries no such label.
    #[error("arithmetic: modality `{modality}` has no label `{label}` (it has: {present})")]
    MissingLabel {
        /// The configured modality.
        modality: String,
        /// The configured label.
        label: String,
        /// The labels it has, comma separated.
        present: String,
    },
    /// Arrays handed over by the model, the classifiers or the data do not fit together.
    #[error("arithmetic: {0}")]
    Inconsistent(String),
    /// An error from rensou's API (the model view, the classifiers, writing files).
    #[error(transparent)]
    Core(#[from] rensou_api::Error),
}

impl From<ArithmeticError> for rensou_api::Error {
    fn from(e: ArithmeticError) -> Self {
        match e {
            ArithmeticError::Config { field, message } => {
                rensou_api::Error::config(format!("arithmetic.{field}"), message)
            }
            ArithmeticError::Core(inner) => inner,
            other => rensou_api::Error::Data(other.to_string()),
        }
    }
}

/// `Result` with [`ArithmeticError`].
pub type Result<T, E = ArithmeticError> = std::result::Result<T, E>;
