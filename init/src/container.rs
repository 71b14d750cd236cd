//! Container mode: tini's job. Spawn PROGRAM, forward signals to it, reap
//! every zombie, exit with its status.

use crate::cli::{Args, Options};
use crate::logger::{Num, Show};
use crate::signals::{self, Desc, Sig};
use crate::spawn::{self, Group};
use crate::sys;
use crate::{notice, power, procs};

/// Default time the remaining processes get before SIGKILL when a machine's
/// PID 1 shuts down without --grace.
pub const MACHINE_GRACE_MS: u64 = 5000;

/// Runs container mode; returns the exit code (unless it powers off).
#[inline(never)]
pub fn run(o: &Options, args: Args) -> i32 {
    let machine = power::is_machine_pid1();
    let pid1 = sys::getpid() == 1;
    let (set, restore) = match signals::setup() {
        Ok(r) => r,
        Err(e) => {
            crate::error!("Failed to configure signals: {}", e);
            return 1;
        }
    };
    if o.pdeathsig != 0 && sys::prctl(libc::PR_SET_PDEATHSIG, o.pdeathsig as libc::c_ulong).is_err() {
        crate::error!("Failed to set up parent death signal");
        return 1;
    }
    if o.subreaper {
        if let Err(e) = sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) {
            crate::error!("Failed to register as child subreaper: {}", e);
            return 1;
        }
        crate::trace!("Registered as child subreaper");
    }
    if !pid1 && !sys::is_subreaper() {
        crate::warn!(
            "husk-init is not running as PID 1 and isn't registered as a child subreaper.\n\
Zombie processes will not be re-parented to husk-init, so zombie reaping won't work.\n\
To fix the problem, use the -s option or set the environment variable TINI_SUBREAPER to register husk-init as a child subreaper, or run husk-init as PID 1."
        );
    }

    let argv = &args.argv[o.program..];
    // SAFETY: argv[program..argc] are the process's own argument strings and
    // the C runtime guarantees argv[argc] is NULL.
    let child = match unsafe { spawn::spawn(argv.as_ptr(), &restore, Group::Foreground) } {
        Ok(p) => p,
        Err(e) => {
            crate::error!("fork failed: {}", e);
            return 1;
        }
    };
    crate::info!("Spawned child process '{}' with pid '{}'", Show(args.get(o.program)), Num(child as i64));

    // The init itself keeps no inherited fd and no working directory.
    sys::close_from(3);
    let _ = sys::chdir(c"/");
    if machine {
        crate::logger::use_kmsg();
    }
    let sfd = match sys::signalfd(&set) {
        Ok(fd) => fd,
        Err(e) => {
            crate::error!("signalfd failed: {}", e);
            return 1;
        }
    };

    let target = if o.group { -child } else { child };
    let mut code: Option<i32> = None;
    let mut sigs = [0; 16];
    while code.is_none() {
        // One blocking read per wakeup: no timeout, and signals queue in
        // the kernel (blocked) until we take them.
        let n = match sys::read_signals(sfd, &mut sigs) {
            Ok(n) => n,
            Err(e) => {
                crate::error!("reading signals failed: {}", e);
                return 1;
            }
        };
        for &sig in &sigs[..n] {
            if sig == libc::SIGCHLD {
                crate::debug!("Received SIGCHLD");
                continue;
            }
            let to = match o.rewrite.get(sig as usize) {
                Some(&r) if r >= 0 => r as i32,
                _ => sig,
            };
            if to == 0 {
                crate::debug!("Dropping signal: '{}'", Sig(sig));
                continue;
            }
            crate::debug!("Passing signal: '{}'", Desc(to));
            if let Err(e) = sys::kill(target, to) {
                if e.0 == libc::ESRCH {
                    crate::warn!("Child was dead when forwarding signal");
                } else {
                    crate::error!("Unexpected error when forwarding signal: '{}'", e);
                    return 1;
                }
            }
        }
        let more = procs::reap(|pid, st| {
            crate::debug!("Reaped child with pid: '{}'", Num(pid as i64));
            if pid == child {
                let c = spawn::status_code(st);
                if libc::WIFSIGNALED(st) {
                    crate::info!("Main child exited with signal (with signal '{}')", Desc(libc::WTERMSIG(st)));
                } else {
                    crate::info!("Main child exited normally (with status '{}')", Num(c as i64));
                }
                let c = c % 256;
                let remapped = o.expect[(c / 32) as usize] & (1 << (c % 32)) != 0;
                code = Some(if remapped { 0 } else { c });
            } else if o.warn_reap {
                crate::warn!("Reaped zombie process with pid={}", Num(pid as i64));
            }
        });
        if more {
            crate::trace!("No child to reap");
        } else {
            crate::trace!("No child to wait");
        }
    }
    crate::trace!("Exiting: child has exited");
    let code = code.unwrap_or(1);

    let warn = o.warn_reap;
    let reaped = |pid: sys::Pid, _st: i32| {
        if warn {
            crate::warn!("Reaped zombie process with pid={}", Num(pid as i64));
        }
    };
    if let Some(g) = o.grace_ms {
        procs::terminate_rest(sfd, g, reaped);
    }
    if pid1 && (machine || o.on_exit.is_some()) {
        let cmd = o.on_exit.unwrap_or(libc::LINUX_REBOOT_CMD_POWER_OFF);
        notice!("{} exited with status {}; {}", Show(args.get(o.program)), Num(code as i64), Show(power::action_name(cmd).as_bytes()));
        if o.grace_ms.is_none() {
            procs::terminate_rest(sfd, MACHINE_GRACE_MS, reaped);
        }
        power::finish(cmd, machine);
    }
    code
}
