//! The crate's error type.

/// Everything that can go wrong in rensou-cluster.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    /// An array does not have the length its shape promises.
    #[error("shape mismatch: {what} has {actual} values, expected {expected}")]
    Shape {
        /// Which array.
        what: String,
        /// The length implied by the shape.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// An input value is NaN or infinite.
    #[error("{what} contains a non-finite value at index {index}")]
    NonFinite {
        /// Which array.
        what: String,
        /// Flat index of the first offending value.
        index: usize,
    },
    /// A parameter is outside its allowed range.
    #[error("invalid parameter `{name}`: {message}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The data cannot support the computation (too few items, classes or numbers).
    #[error("{0}")]
    Degenerate(String),
}

/// `Result` with this crate's [`ClusterError`].
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

impl ClusterError {
    /// Shorthand for a [`ClusterError::Parameter`] error.
    pub fn parameter(name: &'static str, message: impl Into<String>) -> Self {
        ClusterError::Parameter {
            name,
            message: message.into(),
        }
    }
}

impl From<ClusterError> for rensou_api::Error {
    fn from(e: ClusterError) -> Self {
        rensou_api::Error::Plugin(format!("cluster: {e}"))
    }
}
