//! The logger: tini-style lines on stderr
//! (`[INFO  husk-init (PID)] message`), mirrored to /dev/kmsg when enabled.
//!
//! Verbosity follows tini: 1 shows FATAL (log's error level), 2 WARN,
//! 3 INFO, 4 DEBUG, 5 TRACE. Lines are formatted into a stack buffer and
//! written with one write(2) each; no allocation.

use crate::sys;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicI32, Ordering};

static VERBOSITY: AtomicI32 = AtomicI32::new(1);
static KMSG_FD: AtomicI32 = AtomicI32::new(-1);

/// A line built in a fixed buffer; output past its end is dropped.
pub struct Line {
    buf: [u8; 512],
    n: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line {
            buf: [0; 512],
            n: 0,
        }
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

/// tini's levels: 1 FATAL, 2 WARN, 3 INFO, 4 DEBUG, 5 TRACE.
#[inline(never)]
pub fn log(level: i32, args: fmt::Arguments<'_>) {
    if level > VERBOSITY.load(Ordering::Relaxed) {
        return;
    }
    let (tag, kl) = match level {
        1 => ("FATAL", 3),
        2 => ("WARN ", 4),
        3 => ("INFO ", 6),
        4 => ("DEBUG", 7),
        _ => ("TRACE", 7),
    };
    emit(tag, kl, &args);
}

#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::logger::log(1, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::logger::log(2, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::logger::log(3, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::logger::log(4, format_args!($($t)*)) };
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

pub fn set_verbosity(v: i32) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

pub fn verbosity() -> i32 {
    VERBOSITY.load(Ordering::Relaxed)
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
