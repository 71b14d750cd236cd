//! Signal names, the signal set husk-init blocks, and the one setup both
//! modes do before their first fork.

use crate::spawn::Restore;
use crate::sys::{self, SigSet};
use core::ffi::c_int;

const NAMES: &[(&str, c_int)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses `SIGTERM`, `TERM` or `15` (1..=64).
#[inline(never)]
pub fn parse(s: &[u8]) -> Option<c_int> {
    if !s.is_empty() && s.iter().all(u8::is_ascii_digit) {
        let n = crate::text::parse_u32(s)?;
        return if (1..=64).contains(&n) { Some(n as c_int) } else { None };
    }
    let bare = s.strip_prefix(b"SIG").unwrap_or(s);
    NAMES.iter().find(|(n, _)| n.as_bytes() == bare).map(|(_, v)| *v)
}

/// `TERM` for 15; `""` for numbers without a name (real-time signals).
pub fn name(sig: c_int) -> &'static str {
    NAMES.iter().find(|(_, v)| *v == sig).map(|(n, _)| *n).unwrap_or("")
}

/// A signal for log lines: `SIGTERM` or `signal 40`.
pub struct Sig(pub c_int);

impl core::fmt::Display for Sig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match name(self.0) {
            "" => write!(f, "signal {}", crate::text::Num(self.0 as i64)),
            n => write!(f, "SIG{}", crate::text::Show(n.as_bytes())),
        }
    }
}

/// A signal described as the C library's strsignal() does (`Terminated`),
/// which is what tini prints.
pub struct Desc(pub c_int);

impl core::fmt::Display for Desc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        sys::strsignal(self.0, |s| core::fmt::Display::fmt(&crate::text::Show(s), f))
    }
}

/// Every signal except the synchronous ones (faults must still kill us) and
/// the terminal stop signals, which tini also leaves alone.
pub fn blocked_set() -> SigSet {
    let mut s = SigSet::full();
    for sig in
        [libc::SIGFPE, libc::SIGILL, libc::SIGSEGV, libc::SIGBUS, libc::SIGABRT, libc::SIGTRAP, libc::SIGSYS, libc::SIGTTIN, libc::SIGTTOU]
    {
        s.del(sig);
    }
    s
}

/// Blocks `blocked_set` (nothing can be lost: signals wait in the kernel
/// until read from a signalfd) and ignores SIGTTIN / SIGTTOU. Returns the
/// set, for the signalfd, and what a child gets back before exec.
pub fn setup() -> sys::R<(SigSet, Restore)> {
    let set = blocked_set();
    let mask = sys::set_sigmask(&set)?;
    let ttin = sys::set_sigaction(libc::SIGTTIN, true)?;
    let ttou = sys::set_sigaction(libc::SIGTTOU, true)?;
    Ok((set, Restore { mask, ttin, ttou }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse(b"SIGKILL"), Some(9));
        assert_eq!(parse(b"TERM"), Some(15));
        assert_eq!(parse(b"10"), Some(10));
        assert_eq!(parse(b"0"), None);
        assert_eq!(parse(b"65"), None);
        assert_eq!(parse(b"SIGNOPE"), None);
        assert_eq!(name(libc::SIGPWR), "PWR");
    }
}
