//! husk's error type: every variant carries what is at fault (a path, a
//! config field, a container id) and prints as one line at the CLI. The
//! libraries' errors are kept typed inside it.

use std::fmt;
use std::path::Path;

#[derive(Debug)]
pub enum Error {
    /// Bad command line.
    Usage(String),
    /// config.json (or an exec process.json) is malformed or invalid.
    Oci(husk_oci::Error),
    Cgroup(husk_cgroups::Error),
    Seccomp(husk_seccomp::Error),
    /// A file operation failed on `path`.
    Io {
        path: String,
        err: std::io::Error,
    },
    /// A syscall failed; `what` says which and on what.
    Sys {
        what: String,
        errno: nix::errno::Errno,
    },
    /// Container id problems: unknown, duplicate, invalid.
    NotExist(String),
    Exists(String),
    BadId(String),
    /// Command not allowed in the container's current state.
    State {
        id: String,
        msg: String,
    },
    /// A hook failed.
    Hook {
        kind: String,
        index: usize,
        path: String,
        msg: String,
    },
    /// An error reported by the container's init or exec child.
    Init(String),
    Other(String),
}

impl Error {
    pub fn io(path: impl AsRef<Path>, err: std::io::Error) -> Error {
        Error::Io { path: path.as_ref().display().to_string(), err }
    }
    pub fn sys(what: impl Into<String>, errno: nix::errno::Errno) -> Error {
        Error::Sys { what: what.into(), errno }
    }
    /// A config field at fault (`process.user.uid`, …).
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Oci(husk_oci::Error::invalid(field, msg))
    }
    pub fn state(id: &str, msg: impl Into<String>) -> Error {
        Error::State { id: id.to_string(), msg: msg.into() }
    }
}

impl From<husk_oci::Error> for Error {
    fn from(e: husk_oci::Error) -> Error {
        Error::Oci(e)
    }
}

impl From<husk_cgroups::Error> for Error {
    fn from(e: husk_cgroups::Error) -> Error {
        Error::Cgroup(e)
    }
}

impl From<husk_seccomp::Error> for Error {
    fn from(e: husk_seccomp::Error) -> Error {
        Error::Seccomp(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}"),
            Error::Oci(e) => write!(f, "{e}"),
            Error::Cgroup(e) => write!(f, "{e}"),
            Error::Seccomp(e) => write!(f, "seccomp: {e}"),
            Error::Io { path, err } => write!(f, "{path}: {err}"),
            Error::Sys { what, errno } => write!(f, "{what}: {}", errno.desc()),
            Error::NotExist(id) => write!(f, "container \"{id}\" does not exist"),
            Error::Exists(id) => write!(f, "container \"{id}\" already exists"),
            Error::BadId(id) => write!(f, "invalid container id {id:?}: use letters, digits, '_', '.', '-' (not starting with '.')"),
            Error::State { id, msg } => write!(f, "container \"{id}\": {msg}"),
            Error::Hook { kind, index, path, msg } => write!(f, "error running hook #{index} ({kind} {path}): {msg}"),
            Error::Init(m) => write!(f, "{m}"),
            Error::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds context to nix results: `.ctx(|| format!("mount {dst}"))`.
pub trait Ctx<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Ctx<T> for nix::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}
