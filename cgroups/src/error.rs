//! The cgroups module's error type: one line, naming the controller, file or
//! config field at fault.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// The config asks for a resource whose controller this kernel/mount lacks.
    Missing { controller: String, field: String },
    /// A controller exists but this cgroup version has no such knob.
    Unsupported { controller: String, what: String },
    /// A file operation on a cgroup file failed.
    Io { controller: String, path: PathBuf, op: String, errno: i32 },
    /// A config value or path that cannot be used.
    Invalid { field: String, msg: String },
    /// Something did not settle in time (freezing, processes dying).
    Timeout { controller: String, path: PathBuf, what: String },
    /// A bpf(2) call failed (v2 device filter).
    Bpf { op: &'static str, errno: i32, log: String },
    /// The operation needs a cgroup but this container runs without one.
    Disabled(&'static str),
}

pub(crate) fn errno_desc(errno: i32) -> &'static str {
    nix::errno::Errno::from_raw(errno).desc()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing { controller, field } => {
                write!(f, "cgroup {controller}: controller not available on this host (needed for {field})")
            }
            Error::Unsupported { controller, what } => write!(f, "cgroup {controller}: {what}"),
            Error::Io { controller, path, op, errno } => write!(f, "cgroup {controller}: {}: {op}: {}", path.display(), errno_desc(*errno)),
            Error::Invalid { field, msg } => write!(f, "invalid configuration: {field}: {msg}"),
            Error::Timeout { controller, path, what } => {
                write!(f, "cgroup {controller}: {}: {what}", path.display())
            }
            Error::Bpf { op, errno, log } => {
                write!(f, "cgroup devices: bpf {op}: {}", errno_desc(*errno))?;
                // The verifier log is multi-line: keep its last meaningful line.
                if let Some(l) = log.lines().rev().find(|l| !l.trim().is_empty()) {
                    write!(f, " (verifier: {})", l.trim())?;
                }
                Ok(())
            }
            Error::Disabled(what) => {
                write!(f, "cgroup: {what}: this container runs without cgroups (cgroup manager disabled)")
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    pub(crate) fn io(controller: &str, path: &Path, op: impl Into<String>, e: &std::io::Error) -> Error {
        Error::Io {
            controller: controller.to_string(),
            path: path.to_path_buf(),
            op: op.into(),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
    pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Invalid { field: field.into(), msg: msg.into() }
    }
    pub(crate) fn missing(controller: &str, field: &str) -> Error {
        Error::Missing { controller: controller.to_string(), field: field.to_string() }
    }
    pub(crate) fn unsupported(controller: &str, what: impl Into<String>) -> Error {
        Error::Unsupported { controller: controller.to_string(), what: what.into() }
    }
    /// The errno of an I/O error, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { errno, .. } | Error::Bpf { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}
