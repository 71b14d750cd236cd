//! `--log FILE` / `--log-format text|json` / `--debug`: one line per
//! message, in logrus's shapes (runc's): text
//! `time="…" level=debug msg="…"`, or JSON with `level`, `msg`, `time`, so
//! containerd's shim can read the last error line. Without `--log`,
//! messages go to stderr.

use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;

use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Default)]
pub struct Config {
    pub file: Option<String>,
    pub json: bool,
    pub debug: bool,
}

struct Logger {
    c: Config,
    file: Option<File>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets the log up; a `--log` file that cannot be opened is an error.
pub fn init(c: Config) -> Result<()> {
    let file = match &c.file {
        Some(f) => Some(std::fs::OpenOptions::new().create(true).append(true).open(f).map_err(|e| Error::io(format!("--log {f}"), e))?),
        None => None,
    };
    let _ = LOGGER.set(Logger { c, file });
    Ok(())
}

#[derive(Serialize)]
struct Line<'a> {
    level: &'a str,
    msg: &'a str,
    time: String,
}

fn line(json: bool, level: &str, msg: &str) -> String {
    let time = crate::state::now_rfc3339();
    if json {
        serde_json::to_string(&Line { level, msg, time }).unwrap_or_default()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    }
}

fn emit(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else {
        let _ = writeln!(std::io::stderr(), "husk: {level}: {msg}");
        return;
    };
    match &l.file {
        Some(f) => {
            let mut f: &File = f;
            let _ = writeln!(f, "{}", line(l.c.json, level, msg));
        }
        None if l.c.debug => {
            let _ = writeln!(std::io::stderr(), "{}", line(l.c.json, level, msg));
        }
        None => {
            let _ = writeln!(std::io::stderr(), "husk: {level}: {msg}");
        }
    }
}

/// The `--log` file's fd (kept open when create and exec close the fds
/// their caller leaked).
pub fn fd() -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    LOGGER.get().and_then(|l| l.file.as_ref()).map(|f| f.as_raw_fd())
}

/// A failure: always one line on stderr, and in the log file if any.
pub fn error(msg: &str) {
    let _ = writeln!(std::io::stderr(), "husk: {msg}");
    if LOGGER.get().is_some_and(|l| l.file.is_some()) {
        emit("error", msg);
    }
}

pub fn warn(msg: &str) {
    emit("warning", msg);
}

pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.c.debug) {
        emit("debug", msg);
    }
}
