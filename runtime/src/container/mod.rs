//! The parent side of the lifecycle: create (create.rs), start, run, kill,
//! pause/resume, delete, and exec (exec.rs).

mod create;
pub mod exec;
mod hardening;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use husk_oci::{Spec, Status};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub use create::{create, CreateOpts};

use crate::cgroup::Manager;
use crate::error::{Ctx, Error, Result};
use crate::hooks;
use crate::state::{self, Found, State};

/// The config saved at create.
pub fn saved_spec(root: &Path, id: &str) -> Result<Spec> {
    let p = state::dir(root, id).join("config.json");
    let data = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
    husk_oci::spec::from_json(&data).map_err(|e| Error::Other(format!("{}: {e}", p.display())))
}

/// Reopens one of the waiting init's pipe ends through /proc.
fn reopen(st: &State, fd: i32, flags: OFlag) -> Result<OwnedFd> {
    nix::fcntl::open(format!("/proc/{}/fd/{fd}", st.pid).as_str(), flags | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| Error::state(&st.id, format!("cannot reach the waiting process: {}", e.desc())))
}

/// Releases a created container: write to its start pipe, then wait for the
/// exec (the exec pipe closes) or an error message. Then poststart hooks.
fn release(st: &mut State, root: &Path, spec: &Spec, pipes: Option<(OwnedFd, OwnedFd)>) -> Result<()> {
    if spec.process.is_none() {
        return Err(Error::state(&st.id, "config.json has no process to start"));
    }
    let (w, r) = match pipes {
        Some(p) => p,
        None => (reopen(st, st.start_fd, OFlag::O_WRONLY)?, reopen(st, st.exec_fd, OFlag::O_RDONLY)?),
    };
    crate::fault::point("start: pipes reached");
    nix::unistd::write(&w, b"s").ctx(|| "signal start")?;
    crate::fault::point("start: released");
    drop(w);
    let mut msg = String::new();
    let _ = std::fs::File::from(r).read_to_string(&mut msg);
    if !msg.is_empty() {
        return Err(Error::Init(msg));
    }
    crate::fault::point("start: program running");
    st.started = true;
    st.save(root)?;
    crate::fault::point("start: state written");
    let hk = spec.hooks();
    hooks::run_all_warn("poststart", &hk.poststart, st.spec_json(Status::Running).as_bytes());
    Ok(())
}

pub fn start(root: &Path, id: &str) -> Result<()> {
    let _lock = state::lock(root, id)?;
    let mut st = State::load(root, id)?;
    match st.status() {
        Status::Created => {}
        s => return Err(Error::state(id, format!("cannot start a container that is {}", s.as_str()))),
    }
    let spec = saved_spec(root, id)?;
    release(&mut st, root, &spec, None)
}

/// `run`: create, start, and (attached) wait and return the exit status;
/// the container is then deleted unless `keep`.
pub fn run(root: &Path, id: &str, o: &CreateOpts, mgr: Manager, detach: bool, keep: bool) -> Result<i32> {
    let mut c = create(root, id, o, mgr, !detach)?;
    let lock = state::lock(root, id)?;
    let pid = c.state.pid;
    let pipes = Some((c.start_w, c.exec_r));
    if let Err(e) = release(&mut c.state, root, &c.spec, pipes) {
        drop(lock);
        let _ = delete(root, id, true);
        return Err(e);
    }
    drop(lock);
    if detach {
        return Ok(0);
    }
    crate::signals::forward_to(pid);
    let proxy = c.pty_master.take().map(crate::tty_proxy::Proxy::start);
    let code = loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for container", e)),
        }
    };
    if let Some(p) = proxy {
        p.finish();
    }
    if keep {
        // The init is gone; what it left in the cgroup is stopped too, and
        // the container stays `stopped` until deleted.
        if let Some(cg) = &c.state.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
        }
    } else {
        delete(root, id, true)?;
    }
    Ok(code)
}

/// `kill`: `sig` None is signal 0 (is the container alive?).
pub fn kill(root: &Path, id: &str, sig: Option<Signal>, all: bool) -> Result<()> {
    let _lock = state::lock(root, id)?;
    let st = State::load(root, id)?;
    // With --all, what is left in the cgroup of a stopped container is
    // signalled too (possibly nothing), as runc.
    if all {
        if let Some(cg) = &st.cgroup {
            return match sig {
                Some(sig) => Ok(cg.kill_all(sig as i32)?),
                None => Ok(()),
            };
        }
    }
    if st.status() == Status::Stopped {
        return Err(Error::state(id, "container not running"));
    }
    let Some(sig) = sig else { return Ok(()) };
    signal_pid(&st, sig)
}

/// Signals the init through a pidfd, so a recycled pid is never hit.
fn signal_pid(st: &State, sig: Signal) -> Result<()> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, st.pid, 0) };
    if fd < 0 {
        return Err(Error::sys(format!("signal container {}", st.id), nix::errno::Errno::last()));
    }
    // SAFETY: fresh fd from the kernel.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    if !st.alive() {
        return Err(Error::state(&st.id, "container not running"));
    }
    // SAFETY: pidfd_send_signal with a pidfd we own and no siginfo.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig as i32, std::ptr::null::<u8>(), 0) };
    if r != 0 {
        return Err(Error::sys(format!("signal container {}", st.id), nix::errno::Errno::last()));
    }
    Ok(())
}

/// `pause` (`on`) or `resume`.
pub fn freeze(root: &Path, id: &str, on: bool) -> Result<()> {
    let _lock = state::lock(root, id)?;
    let st = State::load(root, id)?;
    let status = st.status();
    let ok = if on { matches!(status, Status::Running | Status::Created) } else { status == Status::Paused };
    if !ok {
        let verb = if on { "pause" } else { "resume" };
        return Err(Error::state(id, format!("cannot {verb} a container that is {}", status.as_str())));
    }
    let cg = st.cgroup.as_ref().ok_or_else(|| Error::state(id, "has no cgroup (cgroups disabled)"))?;
    Ok(if on { cg.freeze() } else { cg.thaw() }?)
}

/// `delete`: whatever stage the container reached (a directory a crashed
/// `create` left, a half-made cgroup, an init that never got to wait),
/// kill what lives, remove the cgroup, run poststop hooks, and remove the
/// state directory last.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let lock = state::lock(root, id)?;
    let st = match State::find(root, id)? {
        Found::State(s) => *s,
        Found::Bare => {
            // No state.json: a create that died before its first write;
            // the directory is all there is.
            state::remove_dir(root, id)?;
            return Ok(());
        }
    };
    match st.status() {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        s => return Err(Error::state(id, format!("cannot delete a container that is {} (use --force)", s.as_str()))),
    }
    // The init first (a crashed create may have left it outside any
    // cgroup), then everything in the cgroup: destroy() freezes, kills and
    // waits for every member and removes the directories.
    crate::fault::point("delete: state read");
    if st.alive() {
        let _ = signal_pid(&st, Signal::SIGKILL);
    }
    crate::fault::point("delete: init killed");
    if let Some(cg) = &st.cgroup {
        cg.destroy()?;
    }
    crate::fault::point("delete: cgroup removed");
    if st.alive() {
        wait_gone(&st);
    }
    let spec = saved_spec(root, id).ok();
    if let Some(spec) = spec {
        hooks::run_all_warn("poststop", &spec.hooks().poststop, st.spec_json(Status::Stopped).as_bytes());
    }
    crate::fault::point("delete: poststop hooks run");
    state::remove_dir(root, id)?;
    drop(lock);
    Ok(())
}

/// Waits until the init is gone (reaped by us, or by whoever is its parent).
fn wait_gone(st: &State) {
    for _ in 0..2000 {
        let _ = waitpid(Pid::from_raw(st.pid), Some(WaitPidFlag::WNOHANG));
        if !st.alive() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
