//! Appliance mode: start the services in order, restart them with capped
//! exponential backoff, answer `husk-init ctl`, and on SIGTERM / SIGINT /
//! SIGPWR stop them in reverse order and power off (or exit when not a
//! machine's PID 1).

use crate::cli::Options;
use crate::ctl::{self, Out};
use crate::logger::Show;
use crate::services::{self, Next, Order, Restart, Services, State, Upd};
use crate::signals::{self, Sig};
use crate::spawn::{self, Group, Restore};
use crate::sys::{self, CBuf, Pid};
use crate::text::{Esc, Num};
use crate::update::{self, Dir};
use crate::{boot, logger, power, procs};
use core::ffi::{c_char, c_int};
use core::fmt::Write;

/// First restart delay; doubled per quick failure up to BACKOFF_CAP_MS.
pub const BACKOFF_BASE_MS: u64 = 250;
pub const BACKOFF_CAP_MS: u64 = 30_000;
/// A run at least this long resets the backoff.
pub const STABLE_MS: u64 = 10_000;
/// SIGTERM-to-SIGKILL grace when --grace is not given.
pub const DEFAULT_GRACE_MS: u64 = 10_000;
/// How long a new version must stay up (and its `check` pass) when the
/// service has no `health` file.
pub const DEFAULT_HEALTH_MS: u64 = 10_000;

pub fn backoff_ms(failures: u32) -> u64 {
    let shift = failures.saturating_sub(1).min(16);
    (BACKOFF_BASE_MS << shift).min(BACKOFF_CAP_MS)
}

struct Sup<'a> {
    o: &'a Options,
    dir: &'static [u8],
    svcs: Services,
    order: Order,
    restore: Restore,
    grace_ms: u64,
    /// Set once a shutdown began: the reboot(2) command to finish with.
    shutdown: Option<c_int>,
    /// The child removing old versions (`ctl prune`), while it runs.
    prune: Pid,
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
    let (set, restore) = match signals::setup() {
        Ok(r) => r,
        Err(e) => {
            logger::out(2, format_args!("husk-init: configuring signals: {}\n", e));
            return 1;
        }
    };
    // The table is filled in place (it is large) and never moves.
    let mut sup = Sup {
        o,
        dir,
        svcs: Services::new(),
        order: Order::new(),
        restore,
        grace_ms: o.grace_ms.unwrap_or(DEFAULT_GRACE_MS),
        shutdown: None,
        prune: 0,
    };
    if let Err(e) = services::load(dir, &mut sup.svcs, &mut sup.order) {
        if machine {
            crate::error!("{}", e);
            power::finish(o.on_exit.unwrap_or(libc::LINUX_REBOOT_CMD_POWER_OFF), true);
        }
        logger::out(2, format_args!("husk-init: {}\n", e));
        return 1;
    }
    let sfd = match sys::signalfd(&set) {
        Ok(fd) => fd,
        Err(e) => {
            logger::out(2, format_args!("husk-init: signalfd: {}\n", e));
            return 1;
        }
    };
    if sys::getpid() != 1 {
        // Orphans of the services (a daemon that left its session, say)
        // come back to us: reaped, and stopped at shutdown.
        let _ = sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    let group = match o.ctl_group.map(|g| (g, ctl::group_id(g))) {
        None => None,
        Some((_, Some(gid))) => Some(gid),
        Some((g, None)) => {
            if !machine {
                logger::out(2, format_args!("husk-init: --ctl-group {}: no such group in /etc/group\n", Show(g)));
                return 1;
            }
            crate::warn!("--ctl-group {}: no such group in /etc/group: root only", Show(g));
            None
        }
    };
    let mut conns = match ctl::Conns::new(group) {
        Ok(c) => c,
        Err(e) => {
            if machine {
                crate::error!("control connections: {}", e);
                power::finish(o.on_exit.unwrap_or(libc::LINUX_REBOOT_CMD_POWER_OFF), true);
            }
            logger::out(2, format_args!("husk-init: control connections: {}\n", e));
            return 1;
        }
    };
    let lfd = match open_ctl(o.ctl, group) {
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

    for s in sup.svcs.iter_mut() {
        if !s.down {
            s.want = true;
            s.state = State::Pending;
        }
    }
    crate::info!("supervising {} services from {}", Num(sup.svcs.len() as i64), Show(dir));
    let mut sigs = [0; 16];
    loop {
        let now = sys::now_ms();
        sup.tick(now);
        conns.expire(now);
        if sup.shutdown.is_some() && sup.svcs.iter().all(|s| s.state == State::Down) {
            break;
        }
        let deadline = match (sup.next_deadline(), conns.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = match deadline {
            Some(d) => d.saturating_sub(sys::now_ms()).min(i32::MAX as u64) as i32,
            None => -1,
        };
        // The signalfd, the listener and every open control connection
        // are waited on together: nothing a client does (or does not do)
        // can hold up reaping and restarting.
        let mut fds = [sys::PollFd::new(-1, false); 2 + ctl::MAX_CONNS];
        fds[0] = sys::PollFd::new(sfd, false);
        fds[1] = sys::PollFd::new(lfd, false);
        let n = 2 + conns.poll_fds(&mut fds[2..]);
        if let Err(e) = sys::poll(&mut fds[..n], timeout) {
            crate::error!("poll failed: {}", e);
        }
        if fds[0].ready() {
            let n = sys::read_signals(sfd, &mut sigs).unwrap_or(0);
            for &sig in &sigs[..n] {
                sup.on_signal(sig);
            }
            let now = sys::now_ms();
            procs::reap(|pid, st| sup.on_exit(pid, st, now));
        }
        conns.serve(&fds[2..n], &mut sup);
        if fds[1].ready() {
            conns.accept(lfd, sys::now_ms());
        }
    }

    conns.close_all();
    if lfd >= 0 {
        sys::close(lfd);
        if let Some(p) = CBuf::<{ crate::services::PATH_MAX }>::of(&[o.ctl]) {
            sys::unlink(p.cstr());
        }
    }
    let cmd = sup.shutdown.unwrap_or(libc::LINUX_REBOOT_CMD_POWER_OFF);
    crate::info!("all services stopped");
    if sys::getpid() == 1 {
        procs::terminate_rest(sfd, sup.grace_ms.min(DEFAULT_GRACE_MS), |_, _| {});
        if machine || o.on_exit.is_some() {
            crate::notice!("{}", Show(power::action_name(cmd).as_bytes()));
            power::finish(cmd, machine);
        }
    } else {
        // What the services left behind (daemons in sessions of their
        // own) would otherwise go on under the host's init.
        let n = procs::terminate_rest(sfd, sup.grace_ms, |_, _| {});
        if n > 0 {
            crate::info!("stopped {} processes the services left behind", Num(n as i64));
        }
    }
    0
}

fn open_ctl(path: &'static [u8], group: Option<u32>) -> Result<c_int, CtlError> {
    let p = CBuf::<{ crate::services::PATH_MAX }>::of(&[path]).ok_or(CtlError(path, sys::Errno(libc::ENAMETOOLONG)))?;
    if let Ok(fd) = sys::connect_unix(path) {
        sys::close(fd);
        return Err(CtlError(path, sys::Errno(libc::EADDRINUSE)));
    }
    sys::unlink(p.cstr());
    let fd = sys::listen_unix(path).map_err(|e| CtlError(path, e))?;
    if let Some(gid) = group {
        // Members of the group may connect (the peer check lets them in).
        if let Err(e) = sys::chown(p.cstr(), gid).and_then(|_| sys::chmod(p.cstr(), 0o660)) {
            sys::close(fd);
            sys::unlink(p.cstr());
            return Err(CtlError(path, e));
        }
    }
    Ok(fd)
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
            write!(f, "status {}", Num(spawn::status_code(self.0) as i64))
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
        self.svcs.iter().position(|s| s.name == name)
    }

    /// Acts on everything due at `now`.
    fn tick(&mut self, now: u64) {
        for k in 0..self.order.len() {
            let i = self.order[k] as usize;
            let s = &self.svcs[i];
            match s.state {
                State::Pending if self.shutdown.is_none() && self.deps_started(i) => self.start(i, now),
                State::Backoff if now >= s.deadline => {
                    if self.shutdown.is_none() && s.want {
                        self.start(i, now);
                    } else {
                        self.svcs[i].state = State::Down;
                    }
                }
                State::Running if s.upd == Upd::Watching && now >= s.deadline && self.shutdown.is_none() => self.health_over(i, now),
                State::Stopping if now >= s.deadline && !s.killed => {
                    crate::warn!("{}: still running after the grace period: SIGKILL", Esc(s.name));
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
        self.svcs[i].after.iter().all(|d| {
            let d = &self.svcs[d];
            d.started_once || !d.want
        })
    }

    fn next_deadline(&self) -> Option<u64> {
        self.svcs
            .iter()
            .filter(|s| match s.state {
                State::Backoff => true,
                State::Stopping => !s.killed,
                State::Running => s.upd == Upd::Watching,
                _ => false,
            })
            .map(|s| s.deadline)
            .min()
    }

    /// The service directory of `i`, open for the update steps.
    #[inline(never)]
    fn dir_of(&self, i: usize) -> sys::R<Dir> {
        let p = services::path(self.dir, self.svcs[i].name, b"").unwrap_or_default();
        Dir::open(p.cstr())
    }

    /// The health period of an update is over with the new version still
    /// up: confirmed, unless its check has not passed (yet).
    fn health_over(&mut self, i: usize, now: u64) {
        if self.svcs[i].check != 0 {
            self.fail(i, "check still running", now);
        } else if self.dir_of(i).and_then(|d| d.commit()).is_ok() {
            let s = &mut self.svcs[i];
            crate::info!("{}: update confirmed", Esc(s.name));
            s.upd = Upd::Confirmed;
        } else {
            self.fail(i, "link error", now);
        }
    }

    /// The new version failed its trial: stop it (if it still runs) and go
    /// back to the previous one (in `relink`, once it is down).
    #[inline(never)]
    fn fail(&mut self, i: usize, why: &str, now: u64) {
        let s = &mut self.svcs[i];
        failed(s.name, why);
        s.upd = Upd::RollingBack;
        s.restart_now = true;
        if s.check != 0 {
            let _ = sys::kill(-s.check, libc::SIGKILL);
            s.check = 0;
        }
        if s.state == State::Running {
            self.stop(i, now);
        }
    }

    /// The link steps of an update that happen while the service is down:
    /// the switch to the new version, or the way back.
    fn relink(&mut self, i: usize) {
        let upd = self.svcs[i].upd;
        if !matches!(upd, Upd::Stopping | Upd::RollingBack) {
            return;
        }
        let switched = self.dir_of(i).is_ok_and(|d| {
            upd == Upd::Stopping && d.switch().is_ok() || {
                d.rollback();
                false
            }
        });
        let s = &mut self.svcs[i];
        if upd == Upd::Stopping && !switched {
            failed(s.name, "link error");
        }
        s.upd = if switched { Upd::Watching } else { Upd::RolledBack };
    }

    /// Forks the service (or, for a container never cleaned up, first the
    /// `husk delete --force` of any leftover container of that name).
    fn start(&mut self, i: usize, now: u64) {
        let o = self.o;
        let s = &self.svcs[i];
        let cleanup = s.bundle && !s.cleaned;
        let Some(sdir) = services::path(self.dir, s.name, b"") else {
            return;
        };
        let name = CBuf::<{ services::PATH_MAX }>::of(&[s.name]).unwrap_or_default();
        let husk = CBuf::<{ crate::services::PATH_MAX }>::of(&[o.husk]).unwrap_or_default();
        let root = CBuf::<{ crate::services::PATH_MAX }>::of(&[o.husk_root]).unwrap_or_default();
        let c = |s: &core::ffi::CStr| s.as_ptr();
        let null: *const c_char = core::ptr::null();
        let argv: [*const c_char; 8] = if !s.bundle {
            [c(c"./run"), null, null, null, null, null, null, null]
        } else if cleanup {
            [c(husk.cstr()), c(c"--root"), c(root.cstr()), c(c"delete"), c(c"--force"), c(name.cstr()), null, null]
        } else {
            [c(husk.cstr()), c(c"--root"), c(root.cstr()), c(c"run"), c(c"--bundle"), c(sdir.cstr()), c(name.cstr()), null]
        };
        let group = Group::Session { cwd: sdir.bytes(), quiet: cleanup };
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
                    crate::info!("{}: started (pid {})", Esc(s.name), Num(pid as i64));
                    if s.upd == Upd::Watching {
                        self.watch(i, &sdir, now);
                    }
                }
            }
            Err(e) => {
                s.failures += 1;
                let d = backoff_ms(s.failures);
                crate::error!("{}: fork failed: {}; retrying in {} ms", Esc(s.name), e, Num(d as i64));
                s.state = State::Backoff;
                s.deadline = now + d;
            }
        }
    }

    /// A new version has started: its trial lasts the `health` seconds of
    /// the service, and its `check` (if it has one) runs meanwhile.
    fn watch(&mut self, i: usize, sdir: &services::Path, now: u64) {
        let mut buf = [0u8; 16];
        let name = self.svcs[i].name;
        let p = services::path(self.dir, name, b"health").unwrap_or_default();
        let secs = sys::read_file(p.cstr(), &mut buf).ok().and_then(|t| crate::text::parse_u32(t.trim_ascii()));
        self.svcs[i].deadline = now + secs.map_or(DEFAULT_HEALTH_MS, |n| n as u64 * 1000);
        let p = services::path(self.dir, name, b"check").unwrap_or_default();
        if sys::access_x(p.cstr()) {
            let argv: [*const c_char; 2] = [c"./check".as_ptr(), core::ptr::null()];
            // SAFETY: argv is NULL-terminated and its strings are static.
            match unsafe { spawn::spawn(argv.as_ptr(), &self.restore, Group::Session { cwd: sdir.bytes(), quiet: false }) } {
                Ok(pid) => self.svcs[i].check = pid,
                Err(_) => self.fail(i, "check failed", now),
            }
        }
    }

    fn stop(&mut self, i: usize, now: u64) {
        let s = &mut self.svcs[i];
        crate::info!("{}: stopping (SIGTERM)", Esc(s.name));
        // SIGCONT too, as init systems do: a stopped process could not
        // act on the SIGTERM and would wait out the whole grace.
        for sig in [libc::SIGTERM, libc::SIGCONT] {
            if sys::kill(-s.pid, sig).is_err() {
                let _ = sys::kill(s.pid, sig);
            }
        }
        s.state = State::Stopping;
        s.deadline = now + self.grace_ms;
        s.killed = false;
    }

    fn on_exit(&mut self, pid: Pid, st: i32, now: u64) {
        let failed = !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0);
        if pid == self.prune {
            crate::info!("pruned {} old versions", Num(spawn::status_code(st) as i64));
            self.prune = 0;
            return;
        }
        if let Some(i) = self.svcs.iter().position(|s| s.check == pid) {
            self.svcs[i].check = 0;
            if failed {
                self.fail(i, "check failed", now);
            }
            return;
        }
        let Some(i) = self.svcs.iter().position(|s| s.pid == pid && s.pid != 0) else {
            crate::debug!("reaped orphan {}", Num(pid as i64));
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
        crate::info!("{}: exited with {}", Esc(s.name), Status(st));
        if s.upd == Upd::Watching && !shutting {
            s.state = State::Stopping;
            self.fail(i, "it exited", now);
        }
        let s = &mut self.svcs[i];
        let ran = now.saturating_sub(s.since);
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
            crate::info!("{}: restarting in {} ms", Esc(s.name), Num(d as i64));
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
        if next == Next::Start && self.svcs[i].want && self.shutdown.is_none() {
            self.relink(i);
        }
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

    fn status_line(&self, i: usize, out: &mut Out<'_>) {
        let s = &self.svcs[i];
        let kind = if s.bundle { "container" } else { "run" };
        let _ = write!(
            out,
            "{} {} pid={} starts={} kind={}",
            Esc(s.name),
            Show(s.state.name().as_bytes()),
            Num(s.pid as i64),
            Num(s.starts as i64),
            Show(kind.as_bytes())
        );
        if s.bundle && s.state == State::Running {
            addr(s.name, out);
        }
        if let Some(st) = s.last {
            let _ = write!(out, " last=\"{}\"", Status(st));
        }
        // Versions, read from the links themselves.
        if let Ok(d) = self.dir_of(i) {
            let (mut a, mut b) = ([0; update::TARGET_MAX + 1], [0; update::TARGET_MAX + 1]);
            if let Some(c) = d.target(c"current", &mut a) {
                let _ = write!(out, " current={}", Esc(c.to_bytes()));
                if let Some(p) = d.target(c"previous", &mut b) {
                    let _ = write!(out, " previous={}", Esc(p.to_bytes()));
                }
            }
        }
        if s.upd != Upd::None {
            let _ = write!(out, " update={}", Show(s.upd.name().as_bytes()));
        }
        let _ = writeln!(out);
    }

    /// `ctl update NAME DIR`, step 1 (see `update`): the links are set up
    /// for the switch; the caller then stops the service.
    fn update(&mut self, i: usize, to: &[u8], out: &mut Out<'_>) -> bool {
        let name = self.svcs[i].name;
        let t = CBuf::<{ crate::services::PATH_MAX }>::of(&[to])
            .filter(|t| to.first() == Some(&b'/') && sys::stat(t.cstr()).is_ok_and(|st| st.is_dir()));
        let Some(t) = t else {
            let _ = writeln!(out, "error: {}: DIR must be an absolute path to a directory", Esc(name));
            return false;
        };
        if let Err(e) = self.dir_of(i).and_then(|d| d.begin(t.cstr())) {
            // (ENOENT or EINVAL: `current` is missing or not a link.)
            let _ = writeln!(out, "error: {}: no current link, or cannot link next to it: {}", Esc(name), e);
            return false;
        }
        crate::info!("{}: updating to {}", Esc(name), Show(to));
        self.svcs[i].upd = Upd::Stopping;
        true
    }

    /// `ctl prune [NAME]`: a child removes the old versions (it may take a
    /// while; the loop goes on, and logs the count when it is done).
    fn prune(&mut self, only: Option<usize>, out: &mut Out<'_>) -> bool {
        let busy = self.prune != 0 || self.svcs.iter().any(|s| s.upd.busy());
        match if busy { Err(sys::Errno(libc::EBUSY)) } else { sys::fork() } {
            Ok(0) => {
                let mut n = 0;
                for i in 0..self.svcs.len() {
                    if only.is_none_or(|k| k == i) {
                        n += self.dir_of(i).map_or(0, |d| d.prune());
                    }
                }
                sys::exit_now(n.min(255) as c_int)
            }
            Ok(pid) => self.prune = pid,
            Err(e) => {
                // (EBUSY: an update or another prune is in progress.)
                let _ = writeln!(out, "error: {}", e);
                return false;
            }
        }
        true
    }
}

/// Reports a failed update (on the console and /dev/kmsg).
fn failed(name: &[u8], why: &str) {
    crate::warn!("{}: update failed ({}): rolling back", Esc(name), Show(why.as_bytes()));
}

/// ` addr=10.88.0.2/16,…` for a running container service that husk-cni
/// attached: the line it keeps in `$HUSK_CNI_DIR/addr/NAME` (default
/// /var/lib/husk-cni). Only for names that are container IDs (which need
/// no escaping, so the line still fits the connection's buffer).
fn addr(name: &[u8], out: &mut Out<'_>) {
    if !name.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')) {
        return;
    }
    let dir = sys::getenv(c"HUSK_CNI_DIR").filter(|d| !d.is_empty()).unwrap_or(b"/var/lib/husk-cni");
    let Some(p) = CBuf::<{ crate::services::PATH_MAX }>::of(&[dir, b"/addr/", name]) else { return };
    let mut buf = [0u8; 128];
    let Ok(a) = sys::read_file(p.cstr(), &mut buf) else { return };
    let a = a.strip_suffix(b"\n").unwrap_or(a);
    if !a.is_empty() && a.iter().all(|c| c.is_ascii_graphic()) {
        let _ = write!(out, " addr={}", Show(a));
    }
}

impl ctl::Handler for Sup<'_> {
    fn request(&mut self, cmd: &[u8], name: &[u8], arg: &[u8], out: &mut Out<'_>) -> bool {
        let now = sys::now_ms();
        let known = matches!(cmd, b"status" | b"start" | b"stop" | b"restart" | b"update" | b"prune");
        if !known {
            let _ = writeln!(out, "error: unknown command {}", Esc(cmd));
            return false;
        }
        let i = self.find(name);
        if cmd == b"status" && name.is_empty() {
            return true;
        }
        if !(cmd == b"prune" && name.is_empty()) && i.is_none() {
            let _ = writeln!(out, "error: no service named {}", Esc(name));
            return false;
        }
        if let (b"status", Some(i)) = (cmd, i) {
            self.status_line(i, out);
            return false;
        }
        if self.shutdown.is_some() {
            let _ = writeln!(out, "error: shutting down");
            return false;
        }
        if cmd == b"prune" {
            if !self.prune(i, out) {
                return false;
            }
        } else {
            let i = i.unwrap_or(0);
            // (An update waits for a prune: the version it names might be
            // one the prune is removing.)
            if self.svcs[i].upd.busy() || (cmd == b"update" && self.prune != 0) {
                let _ = writeln!(out, "error: {}: an update or prune is in progress", Esc(name));
                return false;
            }
            if cmd == b"update" && !self.update(i, arg, out) {
                return false;
            }
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
                _ => {
                    // restart, and update (the same, with the switch
                    // happening in `apply` once the service is down).
                    s.want = true;
                    s.failures = 0;
                    match s.state {
                        State::Running => {
                            s.restart_now = true;
                            self.stop(i, now);
                        }
                        State::Stopping => s.restart_now = true,
                        State::Cleanup => s.next = Next::Start,
                        _ => self.apply(i, Next::Start, now),
                    }
                }
            }
        }
        let _ = write!(out, "ok: {}", Show(cmd));
        if !name.is_empty() {
            let _ = write!(out, " {}", Esc(name));
        }
        let _ = writeln!(out);
        false
    }

    fn line(&self, k: usize, out: &mut Out<'_>) -> bool {
        match self.order.get(k) {
            Some(&i) => {
                self.status_line(i as usize, out);
                true
            }
            None => false,
        }
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
