//! The `log` facade backend: tini-style lines on stderr
//! (`[INFO  husk-init (PID)] message`), mirrored to /dev/kmsg when enabled.
//!
//! Verbosity follows tini: 1 shows FATAL (log's error level), 2 WARN,
//! 3 INFO, 4 DEBUG, 5 TRACE. Lines are formatted into a stack buffer and
//! written with one write(2) each; no allocation.

use crate::sys;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicI32, Ordering};
use log::{Level, LevelFilter, Metadata, Record};

static VERBOSITY: AtomicI32 = AtomicI32::new(1);
static KMSG_FD: AtomicI32 = AtomicI32::new(-1);

/// A line built in a fixed buffer; output past its end is dropped.
pub struct Line {
    buf: [u8; 512],
    n: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line { buf: [0; 512], n: 0 }
    }
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.n]
    }
    pub fn push(&mut self, b: &[u8]) {
        let k = b.len().min(self.buf.len() - self.n);
        self.buf[self.n..self.n + k].copy_from_slice(&b[..k]);
        self.n += k;
    }
    pub fn clear(&mut self) {
        self.n = 0;
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Bytes shown as text (invalid UTF-8 replaced by '?').
pub struct Show<'a>(pub &'a [u8]);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("?")?;
            }
        }
        Ok(())
    }
}

struct Logger;
static LOGGER: Logger = Logger;

fn rank(l: Level) -> i32 {
    match l {
        Level::Error => 1,
        Level::Warn => 2,
        Level::Info => 3,
        Level::Debug => 4,
        Level::Trace => 5,
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        rank(m.level()) <= VERBOSITY.load(Ordering::Relaxed)
    }
    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let (tag, kl) = match r.level() {
            Level::Error => ("FATAL", 3),
            Level::Warn => ("WARN ", 4),
            Level::Info => ("INFO ", 6),
            Level::Debug => ("DEBUG", 7),
            Level::Trace => ("TRACE", 7),
        };
        emit(tag, kl, r.args());
    }
    fn flush(&self) {}
}

fn emit(tag: &str, kmsg_level: u8, args: &fmt::Arguments<'_>) {
    let mut l = Line::new();
    let _ = writeln!(l, "[{} husk-init ({})] {}", tag, sys::getpid(), args);
    let _ = sys::write_all(2, l.bytes());
    let k = KMSG_FD.load(Ordering::Relaxed);
    if k >= 0 {
        l.clear();
        let _ = writeln!(l, "<{}>husk-init: {}", kmsg_level, args);
        let _ = sys::write_all(k, l.bytes());
    }
}

/// A message shown whatever the verbosity (results handed to the console
/// before a power-off, supervision events in appliance mode).
pub fn notice(args: fmt::Arguments<'_>) {
    if VERBOSITY.load(Ordering::Relaxed) > 0 {
        emit("NOTE ", 5, &args);
    }
}

/// A warning shown at the default verbosity (for -w, which asked for it).
pub fn warn_always(args: fmt::Arguments<'_>) {
    if VERBOSITY.load(Ordering::Relaxed) > 0 {
        emit("WARN ", 4, &args);
    }
}

#[macro_export]
macro_rules! notice {
    ($($t:tt)*) => { $crate::logger::notice(format_args!($($t)*)) };
}

/// Installs the logger with tini's verbosity level.
pub fn init(verbosity: i32) {
    set_verbosity(verbosity);
    let _ = log::set_logger(&LOGGER);
}

pub fn set_verbosity(v: i32) {
    VERBOSITY.store(v, Ordering::Relaxed);
    log::set_max_level(match v {
        i32::MIN..=0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    });
}

pub fn verbosity() -> i32 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Mirrors log lines to /dev/kmsg from now on (if it can be opened).
pub fn use_kmsg() {
    if let Ok(fd) = sys::open(sys::lit(b"/dev/kmsg\0"), libc::O_WRONLY | libc::O_NOCTTY, 0) {
        KMSG_FD.store(fd, Ordering::Relaxed);
    }
}

/// The kmsg fd, so fd-closing code can keep it.
pub fn kmsg_fd() -> i32 {
    KMSG_FD.load(Ordering::Relaxed)
}

/// Writes text to an fd through a 512-byte buffer (usage, --version, ctl).
struct FdOut {
    fd: i32,
    l: Line,
}

impl Write for FdOut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(256) {
            if self.l.n + chunk.len() > self.l.buf.len() {
                let _ = sys::write_all(self.fd, self.l.bytes());
                self.l.clear();
            }
            self.l.push(chunk);
        }
        Ok(())
    }
}

pub fn out(fd: i32, args: fmt::Arguments<'_>) {
    let mut o = FdOut { fd, l: Line::new() };
    let _ = o.write_fmt(args);
    let _ = sys::write_all(fd, o.l.bytes());
}
