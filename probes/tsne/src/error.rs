//! The crate's error type.

/// Everything that can go wrong in rensou-tsne.
#[derive(Debug, thiserror::Error)]
pub enum TsneError {
    /// A parameter is out of its allowed range.
    #[error("invalid parameter `{field}`: {message}")]
    Parameter {
        /// The parameter, dotted as in a config file (`tsne.perplexity`).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Input data violates an invariant (lengths, non-finite values).
    #[error("invalid input: {0}")]
    Input(String),
    /// A rensou operation (writing a figure, ...) failed.
    #[error(transparent)]
    Core(#[from] rensou_api::Error),
}

impl TsneError {
    /// Shorthand for a [`TsneError::Parameter`] error.
    pub fn parameter(field: impl Into<String>, message: impl Into<String>) -> Self {
        TsneError::Parameter {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<TsneError> for rensou_api::Error {
    fn from(e: TsneError) -> Self {
        match e {
            TsneError::Parameter { field, message } => rensou_api::Error::config(field, message),
            TsneError::Input(message) => rensou_api::Error::Data(message),
            TsneError::Core(e) => e,
        }
    }
}

/// `Result` with this crate's [`TsneError`].
pub type Result<T, E = TsneError> = std::result::Result<T, E>;
