//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in rensou: one error type shared by the API, the store, the
/// model and training crates and the plugins (a plugin's own error travels in
/// [`Error::Modality`] or as a probe failure).
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
    /// A training run directory already holds something and `resume` was not asked for.
    #[error("{} is not empty: pass --resume to continue the run in it, or choose another --out directory", dir.display())]
    RunDirNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// `resume` was asked for but the directory holds no run.
    #[error("nothing to resume in {}: it has no {file} (start a new run without --resume)", dir.display())]
    NothingToResume {
        /// The directory.
        dir: PathBuf,
        /// The run file it lacks (the run's config).
        file: &'static str,
    },
    /// The config given for a resumed run is incompatible with the run's.
    #[error("cannot resume {} with a different config: {field} differs", dir.display())]
    ResumeMismatch {
        /// The run directory.
        dir: PathBuf,
        /// The first differing field, with both values.
        field: String,
    },
    /// The run has no complete checkpoint.
    #[error("{} has no complete checkpoint (no epoch finished yet)", dir.display())]
    NoCheckpoint {
        /// The run directory.
        dir: PathBuf,
    },
    /// A checkpoint could not be written or read.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The file involved.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A checkpoint record does not match the size or hash written with it.
    #[error("checkpoint of epoch {epoch} is damaged: {problem} in {}; {remedy}", dir.display())]
    DamagedCheckpoint {
        /// Its epoch.
        epoch: usize,
        /// Its directory.
        dir: PathBuf,
        /// What does not match.
        problem: String,
        /// What the user can do.
        remedy: String,
    },
    /// The work a config asks for needs more memory than the machine has available.
    #[error("{message}: lower `{field}`")]
    Memory {
        /// The config field that controls the largest part of the estimate.
        field: String,
        /// The estimate and the memory available.
        message: String,
    },
    /// A file rensou was about to write or append to is a symbolic link: rensou never writes
    /// through a link it did not create (someone sharing the directory could have planted it).
    #[error("{} is a symbolic link; rensou never writes through a link it did not create (remove the link, or use another directory)", path.display())]
    PlantedLink {
        /// The link.
        path: PathBuf,
    },
    /// A training or test loss became NaN or infinite.
    #[error("{what} became {value} in epoch {epoch} at step {step}{}", non_finite_tail(*.first_step, *.step, *.last_good))]
    NonFinite {
        /// `training loss` or `test loss`.
        what: &'static str,
        /// The value (`NaN`, `inf`).
        value: f64,
        /// The epoch (from 1).
        epoch: usize,
        /// The step (from 1) at which it was seen.
        step: usize,
        /// The first step of the checked window (equals `step` when every step is checked).
        first_step: usize,
        /// The last epoch with a checkpoint (0: none).
        last_good: usize,
    },
}

/// The tail of [`Error::NonFinite`]'s message: the checked window and what was kept.
fn non_finite_tail(first_step: usize, step: usize, last_good: usize) -> String {
    let window = if first_step < step {
        format!(
            " (the loss is read every few steps: the first bad step is in {first_step}..={step})"
        )
    } else {
        String::new()
    };
    let kept = if last_good == 0 {
        "no epoch had finished, so there is no checkpoint".to_owned()
    } else {
        format!("the checkpoint of epoch {last_good} is kept")
    };
    format!("{window}; training stopped, {kept} (try a lower learning rate)")
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

    /// An [`Error::ConfigParse`] for TOML `text` read from `path`, with the line and column of
    /// the problem on one line (`line 3, column 5: invalid type: ...`).
    pub fn toml_parse(path: &std::path::Path, text: &str, e: &toml::de::Error) -> Self {
        let message = match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: {}", e.message().trim())
            }
            None => e.message().trim().to_owned(),
        };
        Error::ConfigParse {
            path: path.to_path_buf(),
            message,
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
