//! Finding and ending the processes left behind: every process of our PID
//! namespace when we are its PID 1, else our descendants (walked in /proc).

use crate::sys::{self, Pid};
use core::ffi::c_int;

/// Parent pid of `pid` from /proc/PID/stat.
fn ppid_of(pid: Pid) -> Option<Pid> {
    let mut nb = [0u8; 20];
    let path = sys::CBuf::<{ crate::services::PATH_MAX }>::of(&[b"/proc/", crate::text::fmt_u64(pid as u64, &mut nb), b"/stat"])?;
    let mut buf = [0u8; 512];
    let s = sys::read_file(path.cstr(), &mut buf).ok()?;
    // "pid (comm) S ppid ..." — comm may hold spaces and parentheses.
    let close = s.iter().rposition(|&b| b == b')')?;
    let mut f = s[close + 1..].split(|&b| b == b' ').filter(|x| !x.is_empty());
    f.next()?;
    let p = crate::text::parse_u32(f.next()?)?;
    Some(p as Pid)
}

/// Is `pid` a descendant of `me`? (Walks up at most 64 generations.)
fn descends_from(pid: Pid, me: Pid) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        match ppid_of(p) {
            Some(pp) if pp == me => return true,
            Some(pp) if pp > 1 => p = pp,
            _ => return false,
        }
    }
    false
}

/// Sends `sig` to every remaining process we are responsible for; returns
/// how many were signalled (for PID 1: 1 if any, 0 if none).
pub fn signal_rest(sig: c_int) -> usize {
    let me = sys::getpid();
    if me == 1 {
        // kill(-1) reaches every process of the namespace but us.
        return match sys::kill(-1, sig) {
            Ok(()) => 1,
            Err(_) => 0,
        };
    }
    let mut count = 0;
    let Ok(fd) = sys::open(c"/proc", libc::O_RDONLY | libc::O_DIRECTORY, 0) else {
        return 0;
    };
    let _ = sys::each_dirent(fd, &mut |name, _| {
        if let Some(pid) = crate::text::parse_u32(name.to_bytes()) {
            let pid = pid as Pid;
            if pid != me && descends_from(pid, me) && sys::kill(pid, sig).is_ok() {
                count += 1;
            }
        }
    });
    sys::close(fd);
    count
}

/// Reaps every child that has exited; returns false once we have no child
/// left at all (ECHILD). `on_exit(pid, status)` sees each one.
pub fn reap(mut on_exit: impl FnMut(Pid, i32)) -> bool {
    loop {
        match sys::waitpid(-1, true) {
            Ok(Some((pid, st))) => on_exit(pid, st),
            Ok(None) => return true,
            Err(e) if e.0 == libc::ECHILD => return false,
            Err(e) => {
                crate::error!("Error while waiting for pids: '{}'", e);
                return true;
            }
        }
    }
}

/// SIGTERM and SIGCONT to the rest (a stopped process must run to act on
/// the SIGTERM), SIGKILL after `grace_ms`, and wait until no child is left.
/// `sfd` is our signalfd: SIGCHLD wakes us, other signals are dropped (we
/// are already going down). Returns how many processes got the SIGTERM
/// (for PID 1: 1 if any, 0 if none).
pub fn terminate_rest(sfd: c_int, grace_ms: u64, mut on_exit: impl FnMut(Pid, i32)) -> usize {
    if !reap(&mut on_exit) {
        // No child at all: nothing can be left (an orphan would be ours).
        return 0;
    }
    let count = signal_rest(libc::SIGTERM);
    signal_rest(libc::SIGCONT);
    let deadline = sys::now_ms() + grace_ms;
    let mut sigs = [0; 16];
    let mut wait = |ms: u64| {
        let mut fds = [sys::PollFd::new(sfd, false)];
        if let Ok(1) = sys::poll(&mut fds, ms.min(i32::MAX as u64) as i32) {
            let _ = sys::read_signals(sfd, &mut sigs);
        }
    };
    loop {
        if !reap(&mut on_exit) {
            return count;
        }
        let now = sys::now_ms();
        if now >= deadline {
            break;
        }
        wait(deadline - now);
    }
    crate::warn!("grace period over: killing the remaining processes");
    loop {
        signal_rest(libc::SIGKILL);
        if !reap(&mut on_exit) {
            return count;
        }
        wait(100);
    }
}
