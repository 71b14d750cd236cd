//! `--log FILE` / `--log-format text|json` / `--debug`: one line per message.
//! JSON lines carry `level`, `msg` and `time`, so containerd's shim can read
//! the last error line.

use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Default)]
pub struct Config {
    pub file: Option<String>,
    pub json: bool,
    pub debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub fn init(c: Config) {
    let _ = CONFIG.set(c);
}

fn emit(level: &str, msg: &str) {
    let c = CONFIG.get();
    let line = if c.is_some_and(|c| c.json) {
        serde_json::json!({"level": level, "msg": msg, "time": crate::state::now_rfc3339()}).to_string()
    } else {
        format!("time=\"{}\" level={level} msg={:?}", crate::state::now_rfc3339(), msg)
    };
    match c.and_then(|c| c.file.as_deref()) {
        Some(f) => {
            if let Ok(mut fh) = std::fs::OpenOptions::new().create(true).append(true).open(f) {
                let _ = writeln!(fh, "{line}");
            }
        }
        None if level != "error" => {
            let _ = writeln!(std::io::stderr(), "husk: {level}: {msg}");
        }
        None => {}
    }
}

/// A failure: always one line on stderr, and in the log file if any.
pub fn error(msg: &str) {
    let _ = writeln!(std::io::stderr(), "husk: {msg}");
    if CONFIG.get().is_some_and(|c| c.file.is_some()) {
        emit("error", msg);
    }
}

pub fn warn(msg: &str) {
    emit("warning", msg);
}

pub fn debug(msg: &str) {
    if CONFIG.get().is_some_and(|c| c.debug) {
        emit("debug", msg);
    }
}
