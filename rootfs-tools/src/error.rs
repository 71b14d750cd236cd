//! The one error type of husk-rootfs. Every variant carries the path, entry or
//! field at fault and renders as a single line.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// Bad command line.
    Usage(String),
    /// A system call or file operation failed on `path`.
    Io { op: &'static str, path: PathBuf, err: io::Error },
    /// The destination exists and is not an empty directory.
    Exists(PathBuf),
    /// A binary is for the wrong machine.
    Arch { path: PathBuf, want: &'static str, got: String },
    /// An external helper (apt-get, dpkg-deb, busybox) failed.
    Tool { cmd: String, msg: String },
    /// An archive entry was refused as hostile.
    Hostile { entry: String, why: String },
    /// A blob did not match the digest its manifest names.
    Digest { what: String, want: String, got: String },
    /// Input that is not of the expected format.
    Format { what: String, msg: String },
    /// The unpacked size passed --max-size.
    TooBig { limit: u64, entry: String },
    /// A registry refused, failed or could not be reached (`pull`).
    Registry { what: String, msg: String },
    /// `check` found the rootfs unusable (one line listing the problems).
    Unusable { dir: PathBuf, problems: Vec<String> },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(op: &'static str, path: impl AsRef<Path>, err: impl Into<io::Error>) -> Error {
        Error::Io { op, path: path.as_ref().to_path_buf(), err: err.into() }
    }
    pub fn format(what: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Format { what: what.into(), msg: msg.into() }
    }
    pub fn hostile(entry: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Hostile { entry: entry.into(), why: why.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "usage: {m}"),
            Error::Io { op, path, err } => write!(f, "{op} {}: {err}", path.display()),
            Error::Exists(p) => {
                write!(f, "{}: already exists and is not an empty directory", p.display())
            }
            Error::Arch { path, want, got } => {
                write!(f, "{}: built for {got}, not {want}", path.display())
            }
            Error::Tool { cmd, msg } => write!(f, "{cmd}: {msg}"),
            Error::Hostile { entry, why } => write!(f, "refused archive entry {entry:?}: {why}"),
            Error::Digest { what, want, got } => {
                write!(f, "{what}: digest mismatch (manifest says {want}, content is {got})")
            }
            Error::Format { what, msg } => write!(f, "{what}: {msg}"),
            Error::TooBig { limit, entry } => {
                write!(f, "unpacked size passes --max-size {limit} bytes at entry {entry:?}")
            }
            Error::Registry { what, msg } => write!(f, "{what}: {msg}"),
            Error::Unusable { dir, problems } => {
                write!(f, "{}: not usable: {}", dir.display(), problems.join("; "))
            }
        }
    }
}

impl std::error::Error for Error {}
