//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in rensou-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of its allowed range.
    #[error("invalid config `{field}`: {message}")]
    Config {
        /// The offending field, dotted (`oscn.object_size`).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A configuration file could not be parsed.
    #[error("cannot parse config {path}: {message}")]
    ConfigParse {
        /// File that failed to parse (or `<inline>`).
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", "cannot create", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An HDF5 call failed.
    #[error("HDF5 error in {path}: {message}")]
    Hdf5 {
        /// The file involved.
        path: PathBuf,
        /// What failed, with HDF5's message.
        message: String,
    },
    /// A file is not a rensou dataset of a supported version, or is damaged.
    #[error("{path} is not a usable rensou dataset: {message}")]
    Format {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Data violates an invariant (shapes, lengths, labels).
    #[error("invalid data: {0}")]
    Data(String),
    /// A plugin name is unknown or registered twice.
    #[error("plugin error: {0}")]
    Plugin(String),
    /// A modality plugin failed; the source carries the plugin's own error.
    #[error("modality `{name}`: {source}")]
    Modality {
        /// The modality's name.
        name: String,
        /// The plugin's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file refused to be overwritten.
    #[error("{0} already exists (use --force to overwrite)")]
    Exists(PathBuf),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a [`Error::Config`] error.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for an [`Error::Io`] error.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Wraps a plugin's error as [`Error::Modality`].
    pub fn modality(
        name: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Modality {
            name: name.into(),
            source: Box::new(source),
        }
    }
}
