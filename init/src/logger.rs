//! The logger: tini-style lines (`[INFO  husk-init (PID)] message`),
//! mirrored to /dev/kmsg when enabled.
//!
//! Levels and streams are tini's: FATAL is always shown, WARN from
//! verbosity 1 (the default), INFO from 2, DEBUG from 3, TRACE from 4.
//! FATAL and WARN go to stderr, INFO, DEBUG and TRACE to stdout (appliance
//! mode sends those to stderr too: `info_to_stderr`). Lines are formatted
//! into a stack buffer and written with one write(2) each; no allocation.

use crate::sys;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

pub const FATAL: u32 = 0;
pub const WARN: u32 = 1;
pub const INFO: u32 = 2;
pub const DEBUG: u32 = 3;
pub const TRACE: u32 = 4;
/// tini's default verbosity (WARN and FATAL shown).
pub const DEFAULT_VERBOSITY: u32 = 1;

static VERBOSITY: AtomicU32 = AtomicU32::new(DEFAULT_VERBOSITY);
static KMSG_FD: AtomicI32 = AtomicI32::new(-1);
/// Where INFO, DEBUG and TRACE lines go.
static INFO_FD: AtomicI32 = AtomicI32::new(1);

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
    /// Ends the line with a newline, even when it was cut at the end of the
    /// buffer.
    pub fn end_line(&mut self) {
        if self.n == self.buf.len() {
            self.n -= 1;
        }
        self.push(b"\n");
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

pub use crate::text::{Num, Show};

/// Logs at `level` (FATAL..TRACE) when the verbosity reaches it.
#[inline(never)]
pub fn log(level: u32, args: fmt::Arguments<'_>) {
    if level > VERBOSITY.load(Ordering::Relaxed) {
        return;
    }
    let (tag, kl) = match level {
        FATAL => ("FATAL", 3),
        WARN => ("WARN ", 4),
        INFO => ("INFO ", 6),
        DEBUG => ("DEBUG", 7),
        _ => ("TRACE", 7),
    };
    let fd = if level <= WARN { 2 } else { INFO_FD.load(Ordering::Relaxed) };
    emit(fd, tag, kl, &args);
}

#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::logger::log($crate::logger::FATAL, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::logger::log($crate::logger::WARN, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::logger::log($crate::logger::INFO, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::logger::log($crate::logger::DEBUG, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! trace {
    ($($t:tt)*) => { $crate::logger::log($crate::logger::TRACE, format_args!($($t)*)) };
}

fn emit(fd: i32, tag: &str, kmsg_level: u8, args: &fmt::Arguments<'_>) {
    let mut l = Line::new();
    let _ = write!(l, "[{} husk-init ({})] {}", Show(tag.as_bytes()), Num(sys::getpid() as i64), args);
    l.end_line();
    let _ = sys::write_all(fd, l.bytes());
    let k = KMSG_FD.load(Ordering::Relaxed);
    if k >= 0 {
        l.clear();
        let _ = write!(l, "<{}>husk-init: {}", Num(kmsg_level as i64), args);
        l.end_line();
        let _ = sys::write_all(k, l.bytes());
    }
}

/// A message shown at the default verbosity and above, on stderr (the
/// result handed to the console before a power-off).
pub fn notice(args: fmt::Arguments<'_>) {
    if VERBOSITY.load(Ordering::Relaxed) >= WARN {
        emit(2, "NOTE ", 5, &args);
    }
}

#[macro_export]
macro_rules! notice {
    ($($t:tt)*) => { $crate::logger::notice(format_args!($($t)*)) };
}

pub fn set_verbosity(v: u32) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

/// Appliance mode: INFO, DEBUG and TRACE go to stderr with the rest (the
/// services own stdout).
pub fn info_to_stderr() {
    INFO_FD.store(2, Ordering::Relaxed);
}

/// Mirrors log lines to /dev/kmsg from now on (if it can be opened).
pub fn use_kmsg() {
    if let Ok(fd) = sys::open(c"/dev/kmsg", libc::O_WRONLY | libc::O_NOCTTY, 0) {
        KMSG_FD.store(fd, Ordering::Relaxed);
    }
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
