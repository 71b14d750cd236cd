//! The fork/exec window: starting a child with the caller's signal state.

use crate::logger::Show;
use crate::sys::{self, Pid, SigAction, SigSet};
use core::ffi::{c_char, CStr};

/// What the child gets back before exec.
pub struct Restore {
    /// The signal mask husk-init was started with.
    pub mask: SigSet,
    /// SIGTTIN / SIGTTOU dispositions before we ignored them.
    pub ttin: SigAction,
    pub ttou: SigAction,
}

pub enum Group<'a> {
    /// Own process group, made the terminal's foreground group (tini).
    Foreground,
    /// Own session (a supervised service), running in `cwd`; `quiet`
    /// sends its stdout and stderr to /dev/null.
    Session { cwd: &'a [u8], quiet: bool },
}

/// Exit code of a child whose exec failed, as tini and shells do.
pub fn exec_failure_code(e: sys::Errno) -> i32 {
    match e.0 {
        libc::ENOENT => 127,
        libc::EACCES => 126,
        _ => 1,
    }
}

/// Forks and execs `argv` (NULL-terminated). In the child any failure is
/// logged and ends it with tini's exit codes.
///
/// # Safety
/// `argv` must point to a NULL-terminated array of valid C strings that
/// stays alive across the fork.
pub unsafe fn spawn(argv: *const *const c_char, restore: &Restore, group: Group<'_>) -> sys::R<Pid> {
    let pid = sys::fork()?;
    if pid != 0 {
        return Ok(pid);
    }
    // Child: single-threaded copy of husk-init; only raw syscalls and
    // stack buffers from here to exec.
    match group {
        Group::Foreground => {
            if let Err(e) = sys::setpgid(0, 0) {
                crate::error!("setpgid failed: {}", e);
                sys::exit_now(1);
            }
            // SIGTTOU is ignored (and blocked) here, so a background group
            // may take the terminal.
            if let Err(e) = sys::tcsetpgrp(0, sys::getpgrp()) {
                if e.0 == libc::ENOTTY || e.0 == libc::ENXIO || e.0 == libc::EBADF {
                    // tini's child prints this into stdio's buffer, which
                    // exec discards unless stdout is a terminal (line
                    // buffered): show it exactly when tini's is seen.
                    if sys::isatty(1) {
                        if e.0 == libc::ENXIO {
                            crate::debug!("tcsetpgrp failed: no such device (ok to proceed)");
                        } else {
                            crate::debug!("tcsetpgrp failed: no tty (ok to proceed)");
                        }
                    }
                } else {
                    crate::error!("tcsetpgrp failed: {}", e);
                    sys::exit_now(1);
                }
            }
        }
        Group::Session { cwd, quiet } => {
            let _ = sys::setsid();
            if quiet {
                if let Ok(fd) = sys::open(c"/dev/null", libc::O_RDWR, 0) {
                    let _ = sys::dup2(fd, 1);
                    let _ = sys::dup2(fd, 2);
                }
            }
            if let Some(c) = sys::CBuf::<{ crate::services::PATH_MAX }>::of(&[cwd]) {
                if let Err(e) = sys::chdir(c.cstr()) {
                    crate::error!("chdir {} failed: {}", Show(cwd), e);
                    sys::exit_now(1);
                }
            }
        }
    }
    let ok = sys::restore_sigaction(libc::SIGTTIN, &restore.ttin)
        .and_then(|_| sys::restore_sigaction(libc::SIGTTOU, &restore.ttou))
        .and_then(|_| sys::set_sigmask(&restore.mask).map(drop));
    if let Err(e) = ok {
        crate::error!("restoring signals failed: {}", e);
        sys::exit_now(1);
    }
    // SAFETY: argv is valid per this function's contract.
    let e = unsafe { sys::execvp(argv) };
    // SAFETY: argv[0] is a valid C string per the contract.
    let name = unsafe { CStr::from_ptr(*argv) }.to_bytes();
    crate::error!("exec {} failed: {}", Show(name), e);
    sys::exit_now(exec_failure_code(e))
}

/// Exit code of a wait status the way shells report it: n, or 128+signal.
pub fn status_code(st: i32) -> i32 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        255
    }
}
