//! Appliance mode: start the services in order, restart them with capped
//! exponential backoff, answer `husk-init ctl`, and on SIGTERM / SIGINT /
//! SIGPWR stop them in reverse order and power off (or exit when not a
//! machine's PID 1).

use crate::cli::Options;
use crate::logger::Show;
use crate::services::{self, Next, Restart, Service, State, MAX};
use crate::signals::{self, Sig};
use crate::spawn::{self, Group, Restore};
use crate::sys::{self, CBuf, Pid};
use crate::{boot, ctl, logger, power, procs};
use core::ffi::{c_char, c_int};

/// First restart delay; doubled per quick failure up to BACKOFF_CAP_MS.
pub const BACKOFF_BASE_MS: u64 = 250;
pub const BACKOFF_CAP_MS: u64 = 30_000;
/// A run at least this long resets the backoff.
pub const STABLE_MS: u64 = 10_000;
/// SIGTERM-to-SIGKILL grace when --grace is not given.
pub const DEFAULT_GRACE_MS: u64 = 10_000;

pub fn backoff_ms(failures: u32) -> u64 {
    let shift = failures.saturating_sub(1).min(16);
    (BACKOFF_BASE_MS << shift).min(BACKOFF_CAP_MS)
}

struct Sup<'a> {
    o: &'a Options,
    dir: &'static [u8],
    svcs: heapless::Vec<Service, MAX>,
    order: heapless::Vec<u8, MAX>,
    restore: Restore,
    grace_ms: u64,
    /// Set once a shutdown began: the reboot(2) command to finish with.
    shutdown: Option<c_int>,
}

#[inline(never)]
pub fn run(o: &Options, machine: bool) -> c_int {
    let dir = o.services.unwrap_or(crate::cli::DEFAULT_SERVICES);
    sys::close_from(3);
    let _ = sys::chdir(c"/");
    if machine || o.boot {
        boot::early_boot();
        logger::use_kmsg();
    }
    if machine {
        boot::catch_ctrl_alt_del();
    }
    let (svcs, order) = match services::load(dir) {
        Ok(x) => x,
        Err(e) => {
            if machine {
                crate::error!("{}", e);
                power::finish(o.on_exit.unwrap_or(libc::LINUX_REBOOT_CMD_POWER_OFF), true);
            }
            logger::out(2, format_args!("husk-init: {}\n", e));
            return 1;
        }
    };
    let (set, restore) = match signals::setup() {
        Ok(r) => r,
        Err(e) => {
            logger::out(2, format_args!("husk-init: configuring signals: {}\n", e));
            return 1;
        }
    };
    let sfd = match sys::signalfd(&set) {
        Ok(fd) => fd,
        Err(e) => {
            logger::out(2, format_args!("husk-init: signalfd: {}\n", e));
            return 1;
        }
    };
    if sys::getpid() != 1 {
        // Orphans of the services come back to us to be reaped.
        let _ = sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    let lfd = match open_ctl(o.ctl) {
        Ok(fd) => fd,
        Err(e) if !machine => {
            logger::out(2, format_args!("husk-init: {}\n", e));
            return 1;
        }
        Err(e) => {
            crate::warn!("{}", e);
            -1
        }
    };

    let mut sup = Sup {
        o,
        dir,
        svcs,
        order,
        restore,
        grace_ms: o.grace_ms.unwrap_or(DEFAULT_GRACE_MS),
        shutdown: None,
    };
    for s in sup.svcs.iter_mut() {
        if !s.down {
            s.want = true;
            s.state = State::Pending;
        }
    }
    crate::info!("supervising {} services from {}", sup.svcs.len(), Show(dir));
    let mut sigs = [0; 16];
    loop {
        let now = sys::now_ms();
        sup.tick(now);
        if sup.shutdown.is_some() && sup.svcs.iter().all(|s| s.state == State::Down) {
            break;
        }
        let timeout = match sup.next_deadline() {
            Some(d) => d.saturating_sub(sys::now_ms()).min(i32::MAX as u64) as i32,
            None => -1,
        };
        let fds = [sfd, lfd];
        let ready = match sys::poll_in(if lfd >= 0 { &fds } else { &fds[..1] }, timeout) {
            Ok(r) => r,
            Err(e) => {
                crate::error!("poll failed: {}", e);
                [false; 2]
            }
        };
        if ready[0] {
            let n = sys::read_signals(sfd, &mut sigs).unwrap_or(0);
            for &sig in &sigs[..n] {
                sup.on_signal(sig);
            }
            let now = sys::now_ms();
            procs::reap(|pid, st| sup.on_exit(pid, st, now));
        }
        if ready[1] {
            while let Ok(c) = sys::accept(lfd) {
                sup.serve(c);
                sys::close(c);
            }
        }
    }

    if lfd >= 0 {
        sys::close(lfd);
        if let Some(p) = CBuf::<256>::of(&[o.ctl]) {
            sys::unlink(p.cstr());
        }
    }
    let cmd = sup.shutdown.unwrap_or(libc::LINUX_REBOOT_CMD_POWER_OFF);
    crate::info!("all services stopped");
    if sys::getpid() == 1 {
        procs::terminate_rest(sfd, sup.grace_ms.min(DEFAULT_GRACE_MS), |_, _| {});
        if machine || o.on_exit.is_some() {
            crate::notice!("{}", power::action_name(cmd));
            power::finish(cmd, machine);
        }
    }
    0
}

fn open_ctl(path: &'static [u8]) -> Result<c_int, CtlError> {
    let p = CBuf::<256>::of(&[path]).ok_or(CtlError(path, sys::Errno(libc::ENAMETOOLONG)))?;
    if let Ok(fd) = sys::connect_unix(path) {
        sys::close(fd);
        return Err(CtlError(path, sys::Errno(libc::EADDRINUSE)));
    }
    sys::unlink(p.cstr());
    sys::listen_unix(path).map_err(|e| CtlError(path, e))
}

struct CtlError(&'static [u8], sys::Errno);

impl core::fmt::Display for CtlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "control socket {}: {}", Show(self.0), self.1)
    }
}

/// A wait status as text: `status 3` or `signal SIGKILL`.
struct Status(i32);

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if libc::WIFSIGNALED(self.0) {
            write!(f, "signal {}", Sig(libc::WTERMSIG(self.0)))
        } else {
            write!(f, "status {}", spawn::status_code(self.0))
        }
    }
}

impl Sup<'_> {
    fn on_signal(&mut self, sig: c_int) {
        let cmd = match sig {
            libc::SIGCHLD => return,
            libc::SIGTERM => self.o.on_exit.unwrap_or(libc::LINUX_REBOOT_CMD_POWER_OFF),
            libc::SIGINT => libc::LINUX_REBOOT_CMD_RESTART,
            libc::SIGPWR | libc::SIGUSR2 => libc::LINUX_REBOOT_CMD_POWER_OFF,
            libc::SIGUSR1 => libc::LINUX_REBOOT_CMD_HALT,
            _ => {
                crate::debug!("ignoring {}", Sig(sig));
                return;
            }
        };
        if self.shutdown.is_none() {
            crate::info!("{}: stopping all services", Sig(sig));
            self.shutdown = Some(cmd);
        }
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        self.svcs.iter().position(|s| s.name.as_slice() == name)
    }

    /// Acts on everything due at `now`.
    fn tick(&mut self, now: u64) {
        for k in 0..self.order.len() {
            let i = self.order[k] as usize;
            let s = &self.svcs[i];
            match s.state {
                State::Pending if self.shutdown.is_none() && self.deps_started(i) => {
                    self.start(i, now)
                }
                State::Backoff if now >= s.deadline => {
                    if self.shutdown.is_none() && s.want {
                        self.start(i, now);
                    } else {
                        self.svcs[i].state = State::Down;
                    }
                }
                State::Stopping if now >= s.deadline && !s.killed => {
                    crate::warn!(
                        "{}: still running after the grace period: SIGKILL",
                        Show(&s.name)
                    );
                    let pid = s.pid;
                    if sys::kill(-pid, libc::SIGKILL).is_err() {
                        let _ = sys::kill(pid, libc::SIGKILL);
                    }
                    self.svcs[i].killed = true;
                }
                _ => {}
            }
        }
        if self.shutdown.is_some() {
            for k in (0..self.order.len()).rev() {
                let i = self.order[k] as usize;
                self.svcs[i].want = false;
                match self.svcs[i].state {
                    State::Down => continue,
                    State::Pending | State::Backoff => self.svcs[i].state = State::Down,
                    State::Running => {
                        self.stop(i, now);
                        break;
                    }
                    State::Stopping | State::Cleanup => break,
                }
            }
        }
    }

    fn deps_started(&self, i: usize) -> bool {
        self.svcs[i].after.iter().all(|&d| {
            let d = &self.svcs[d as usize];
            d.started_once || !d.want
        })
    }

    fn next_deadline(&self) -> Option<u64> {
        self.svcs
            .iter()
            .filter(|s| s.state == State::Backoff || (s.state == State::Stopping && !s.killed))
            .map(|s| s.deadline)
            .min()
    }

    /// Forks the service (or, for a container never cleaned up, first the
    /// `husk delete --force` of any leftover container of that name).
    fn start(&mut self, i: usize, now: u64) {
        let o = self.o;
        let s = &self.svcs[i];
        let cleanup = s.bundle && !s.cleaned;
        let Some(sdir) = services::path(self.dir, &s.name, b"") else {
            return;
        };
        let name = CBuf::<{ services::NAME_MAX + 1 }>::of(&[&s.name]).unwrap_or(CBuf::new());
        let husk = CBuf::<256>::of(&[o.husk]).unwrap_or(CBuf::new());
        let root = CBuf::<256>::of(&[o.husk_root]).unwrap_or(CBuf::new());
        let c = |s: &core::ffi::CStr| s.as_ptr();
        let null: *const c_char = core::ptr::null();
        let argv: [*const c_char; 8] = if !s.bundle {
            [c(c"./run"), null, null, null, null, null, null, null]
        } else if cleanup {
            [
                c(husk.cstr()),
                c(c"--root"),
                c(root.cstr()),
                c(c"delete"),
                c(c"--force"),
                c(name.cstr()),
                null,
                null,
            ]
        } else {
            [
                c(husk.cstr()),
                c(c"--root"),
                c(root.cstr()),
                c(c"run"),
                c(c"--bundle"),
                c(sdir.cstr()),
                c(name.cstr()),
                null,
            ]
        };
        let group = Group::Session {
            cwd: sdir.bytes(),
            quiet: cleanup,
        };
        // SAFETY: argv is NULL-terminated and its strings live on this stack
        // frame until spawn returns in the parent.
        let r = unsafe { spawn::spawn(argv.as_ptr(), &self.restore, group) };
        let s = &mut self.svcs[i];
        match r {
            Ok(pid) => {
                s.pid = pid;
                if cleanup {
                    s.state = State::Cleanup;
                    s.next = Next::Start;
                    s.cleaned = true;
                } else {
                    s.state = State::Running;
                    s.since = now;
                    s.starts += 1;
                    s.started_once = true;
                    s.cleaned = false;
                    s.killed = false;
                    crate::info!("{}: started (pid {})", Show(&s.name), pid);
                }
            }
            Err(e) => {
                s.failures += 1;
                let d = backoff_ms(s.failures);
                crate::error!(
                    "{}: fork failed: {}; retrying in {} ms",
                    Show(&s.name),
                    e,
                    d
                );
                s.state = State::Backoff;
                s.deadline = now + d;
            }
        }
    }

    fn stop(&mut self, i: usize, now: u64) {
        let s = &mut self.svcs[i];
        crate::info!("{}: stopping (SIGTERM)", Show(&s.name));
        if sys::kill(-s.pid, libc::SIGTERM).is_err() {
            let _ = sys::kill(s.pid, libc::SIGTERM);
        }
        s.state = State::Stopping;
        s.deadline = now + self.grace_ms;
        s.killed = false;
    }

    fn on_exit(&mut self, pid: Pid, st: i32, now: u64) {
        let Some(i) = self.svcs.iter().position(|s| s.pid == pid && s.pid != 0) else {
            crate::debug!("reaped orphan {}", pid);
            return;
        };
        let shutting = self.shutdown.is_some();
        let s = &mut self.svcs[i];
        s.pid = 0;
        if s.state == State::Cleanup {
            self.apply(i, self.svcs[i].next, now);
            return;
        }
        s.last = Some(st);
        crate::info!("{}: exited with {}", Show(&s.name), Status(st));
        let ran = now.saturating_sub(s.since);
        let failed = !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0);
        let next = if s.restart_now && s.want && !shutting {
            s.restart_now = false;
            s.failures = 0;
            Next::Start
        } else if !shutting
            && s.want
            && s.state == State::Running
            && (s.restart == Restart::Always || (s.restart == Restart::OnFailure && failed))
        {
            if ran >= STABLE_MS {
                s.failures = 0;
            }
            s.failures += 1;
            let d = backoff_ms(s.failures);
            crate::info!("{}: restarting in {} ms", Show(&s.name), d);
            Next::Backoff(now + d)
        } else {
            // Finished for good (policy, stop or shutdown): it stays down
            // until someone asks for it again.
            s.restart_now = false;
            s.want = false;
            Next::Down
        };
        if s.bundle {
            // Remove the stopped container before anything else.
            s.cleaned = false;
            self.start(i, now);
            if self.svcs[i].state == State::Cleanup {
                self.svcs[i].next = next;
                return;
            }
        }
        self.apply(i, next, now);
    }

    fn apply(&mut self, i: usize, next: Next, _now: u64) {
        let s = &mut self.svcs[i];
        match next {
            _ if !s.want || self.shutdown.is_some() => s.state = State::Down,
            Next::Backoff(d) => {
                s.state = State::Backoff;
                s.deadline = d;
            }
            // Start, or Down while `ctl start` asked for it meanwhile.
            _ => s.state = State::Pending,
        }
    }

    /// Answers one control connection.
    fn serve(&mut self, fd: c_int) {
        let mut buf = [0u8; 256];
        let Some(n) = ctl::read_request(fd, &mut buf) else {
            return;
        };
        let mut words = buf[..n].split(|&b| b == b' ').filter(|w| !w.is_empty());
        let cmd = words.next().unwrap_or(b"");
        let name = words.next().unwrap_or(b"");
        let now = sys::now_ms();
        if cmd == b"status" {
            let mut any = false;
            for k in 0..self.order.len() {
                let s = &self.svcs[self.order[k] as usize];
                if !name.is_empty() && s.name.as_slice() != name {
                    continue;
                }
                any = true;
                logger::out(
                    fd,
                    format_args!(
                        "{} {} pid={} starts={} kind={}",
                        Show(&s.name),
                        s.state.name(),
                        s.pid,
                        s.starts,
                        if s.bundle { "container" } else { "run" }
                    ),
                );
                match s.last {
                    Some(st) => logger::out(fd, format_args!(" last=\"{}\"\n", Status(st))),
                    None => logger::out(fd, format_args!("\n")),
                }
            }
            if !any && !name.is_empty() {
                logger::out(fd, format_args!("error: no service named {}\n", Show(name)));
            }
            return;
        }
        if self.shutdown.is_some() {
            logger::out(fd, format_args!("error: shutting down\n"));
            return;
        }
        let Some(i) = self.find(name) else {
            logger::out(fd, format_args!("error: no service named {}\n", Show(name)));
            return;
        };
        let s = &mut self.svcs[i];
        match cmd {
            b"start" => {
                s.want = true;
                s.failures = 0;
                match s.state {
                    State::Down => s.state = State::Pending,
                    State::Backoff => s.deadline = now,
                    _ => {}
                }
            }
            b"stop" => {
                s.want = false;
                s.restart_now = false;
                match s.state {
                    State::Running => self.stop(i, now),
                    State::Pending | State::Backoff => s.state = State::Down,
                    _ => {}
                }
            }
            b"restart" => {
                s.want = true;
                s.failures = 0;
                match s.state {
                    State::Running => {
                        s.restart_now = true;
                        self.stop(i, now);
                    }
                    State::Stopping => s.restart_now = true,
                    State::Down => s.state = State::Pending,
                    State::Backoff => s.deadline = now,
                    _ => {}
                }
            }
            _ => {
                logger::out(fd, format_args!("error: unknown command {}\n", Show(cmd)));
                return;
            }
        }
        logger::out(fd, format_args!("ok: {} {}\n", Show(cmd), Show(name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1), 250);
        assert_eq!(backoff_ms(2), 500);
        assert_eq!(backoff_ms(3), 1000);
        assert_eq!(backoff_ms(50), BACKOFF_CAP_MS);
    }
}
