//! The one error of husk-oci: what is wrong, and where (a config field or a
//! file path).

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// A config field is malformed or invalid; `field` is its JSON path
    /// (`process.user.uid`, `linux.resources.memory.limit`…).
    Invalid { field: String, msg: String },
    /// A file could not be read or written.
    Io { path: String, err: std::io::Error },
}

impl Error {
    pub fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Invalid { field: field.into(), msg: msg.into() }
    }
    /// The same error with `prefix` in front of its field (`config.json: …`).
    pub fn within(self, prefix: &str) -> Error {
        match self {
            Error::Invalid { field, msg } => Error::Invalid { field: format!("{prefix}{field}"), msg },
            e => e,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { field, msg } => write!(f, "invalid configuration: {field}: {msg}"),
            Error::Io { path, err } => write!(f, "{path}: {err}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
