//! The one error type of husk-cni. Every variant names the file, field,
//! plugin or argument at fault and renders as a single line.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// Bad command line.
    Usage(String),
    /// A file or system operation failed on `path`.
    Io { op: &'static str, path: PathBuf, err: io::Error },
    /// A network config list that is not valid: `field` is a JSON pointer
    /// into it (`/plugins/1/type`) or empty for the file as a whole.
    Config { path: PathBuf, field: String, msg: String },
    /// Input that is not what it should be: the OCI state on stdin, a
    /// record of ours, a `--port`.
    Input { what: String, msg: String },
    /// A plugin failed (`msg` from its CNI error JSON, or its stderr);
    /// `rollback` says what happened to the plugins already added.
    Plugin { network: String, plugin: String, command: &'static str, msg: String, rollback: Option<String> },
    /// This container is already attached to this network and still runs.
    Attached { network: String, id: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(op: &'static str, path: impl AsRef<Path>, err: impl Into<io::Error>) -> Error {
        Error::Io { op, path: path.as_ref().to_path_buf(), err: err.into() }
    }
    pub fn config(path: impl AsRef<Path>, field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Config { path: path.as_ref().to_path_buf(), field: field.into(), msg: msg.into() }
    }
    pub fn input(what: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Input { what: what.into(), msg: msg.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "usage: {m}"),
            Error::Io { op, path, err } => write!(f, "{op} {}: {err}", path.display()),
            Error::Config { path, field, msg } if field.is_empty() => write!(f, "{}: {msg}", path.display()),
            Error::Config { path, field, msg } => write!(f, "{}: {field}: {msg}", path.display()),
            Error::Input { what, msg } => write!(f, "{what}: {msg}"),
            Error::Plugin { network, plugin, command, msg, rollback } => {
                write!(f, "network {network}: plugin {plugin} ({command}): {msg}")?;
                match rollback {
                    Some(r) => write!(f, "; {r}"),
                    None => Ok(()),
                }
            }
            Error::Attached { network, id } => write!(f, "network {network}: container {id} is already attached and running"),
        }
    }
}

impl std::error::Error for Error {}
