//! Errors of the seccomp module. Each names the config field at fault.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// config.json text is not a valid seccomp object.
    Json {
        msg: String,
    },
    UnknownAction {
        field: String,
        action: String,
    },
    UnknownOperator {
        field: String,
        op: String,
    },
    UnknownArch {
        field: String,
        arch: String,
    },
    UnknownFlag {
        field: String,
        flag: String,
    },
    /// Argument index is not 0..=5.
    ArgIndex {
        field: String,
        index: u32,
    },
    /// errnoRet does not fit the kernel's errno range (1..=4095; 0 is allowed).
    Errno {
        field: String,
        value: u32,
    },
    /// A rule field's value is not allowed (e.g. NOTIFY for write).
    Invalid {
        field: String,
        why: &'static str,
    },
    /// The filter for an arch is longer than the kernel's 4096 instructions.
    TooLong {
        arch: &'static str,
        len: usize,
    },
    /// seccomp(2) refused the filter.
    Install {
        errno: i32,
    },
    /// Handing the notify listener fd to listenerPath failed.
    Listener {
        path: String,
        errno: i32,
    },
    /// The agent at listenerPath could not be reached.
    Connect {
        path: String,
        errno: i32,
    },
}

fn os(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Json { msg } => write!(f, "linux.seccomp: {msg}"),
            Error::UnknownAction { field, action } => {
                write!(f, "{field}: unknown action {action}")
            }
            Error::UnknownOperator { field, op } => write!(f, "{field}: unknown operator {op}"),
            Error::UnknownArch { field, arch } => write!(f, "{field}: unknown architecture {arch}"),
            Error::UnknownFlag { field, flag } => write!(f, "{field}: unknown flag {flag}"),
            Error::ArgIndex { field, index } => {
                write!(f, "{field}: argument index {index} out of range 0..=5")
            }
            Error::Errno { field, value } => {
                write!(f, "{field}: errno {value} out of range 0..=4095")
            }
            Error::Invalid { field, why } => write!(f, "{field}: {why}"),
            Error::TooLong { arch, len } => write!(f, "linux.seccomp: filter for {arch} has {len} instructions, the kernel allows 4096"),
            Error::Install { errno } => {
                write!(f, "linux.seccomp: installing the filter: {}", os(*errno))
            }
            Error::Listener { path, errno } => write!(f, "linux.seccomp.listenerPath: sending the listener fd to {path}: {}", os(*errno)),
            Error::Connect { path, errno } => {
                write!(f, "linux.seccomp.listenerPath: failed to connect with seccomp agent at {path}: {}", os(*errno))
            }
        }
    }
}

impl std::error::Error for Error {}
