//! The lifecycle from the runtime's side: create (fork the init and drive
//! it to "waiting for start"), start, run, kill, delete.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::caps::CapSets;
use crate::cgroups_glue::{self, Manager};
use crate::config::{self, Spec};
use crate::error::{Ctx, Error, Result};
use crate::init::{self, Plan};
use crate::state::{self, State, Status};
use crate::sync::{self, Msg};
use crate::{hooks, namespaces};

/// Options of `create` and `run`.
#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<String>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// A created container whose init is still our child (for `run`).
pub struct Created {
    pub state: State,
    pub spec: Spec,
    pub start_w: Option<OwnedFd>,
    pub exec_r: Option<OwnedFd>,
    pub pty_master: Option<OwnedFd>,
}

/// Undo list for a failed create.
struct Rollback<'a> {
    root: &'a Path,
    id: &'a str,
    pid: Option<i32>,
    cgroup: serde_json::Value,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        let _ = cgroups_glue::destroy(&self.cgroup);
        let _ = std::fs::remove_dir_all(state::dir(self.root, self.id));
    }
}

fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn create(root: &Path, id: &str, o: &CreateOpts, mgr: Manager, attached: bool) -> Result<Created> {
    // Only stdio and the fds handed on on purpose reach the init.
    crate::process::close_from(3 + o.preserve_fds.max(listen_fds()) as i32);
    crate::process::reexec_sealed()?;
    state::validate_id(id)?;
    let bundle = std::fs::canonicalize(&o.bundle).map_err(|e| Error::io(&o.bundle, e))?;
    let spec = config::load(&bundle)?;
    let rootfs = config::rootfs_path(&spec, &bundle);
    let meta = std::fs::metadata(&rootfs).map_err(|e| Error::Other(format!("root.path {}: {e}", rootfs.display())))?;
    if !meta.is_dir() {
        return Err(Error::Other(format!("root.path {}: not a directory", rootfs.display())));
    }
    let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| Error::io(&rootfs, e))?;
    // Everything that can fail without side effects, before the state dir.
    let caps = spec.process.as_ref().and_then(|p| CapSets::from_config(&p.capabilities));
    let mut seccomp = crate::seccomp_glue::prepare(&spec)?;
    let joins = namespaces::open_joins(&spec)?;
    let console = match &o.console_socket {
        Some(p) => Some(crate::console::connect_socket(p)?),
        None => None,
    };
    let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
    if terminal && console.is_none() && !attached {
        return Err(Error::Usage("process.terminal is true: --console-socket is required".into()));
    }

    let lock = state::create_dir(root, id)?;
    let mut rb = Rollback { root, id, pid: None, cgroup: serde_json::Value::Null, armed: true };
    rb.cgroup = cgroups_glue::create(mgr, &spec, id)?;

    let mut st = State {
        oci_version: state::OCI_VERSION.into(),
        id: id.into(),
        pid: 0,
        bundle: bundle.to_string_lossy().into_owned(),
        rootfs: rootfs.to_string_lossy().into_owned(),
        created: state::now_rfc3339(),
        owner: "root".into(),
        annotations: spec.annotations.clone(),
        husk: Default::default(),
    };
    st.husk.cgroup = rb.cgroup.clone();
    if let Some(f) = seccomp.as_mut() {
        f.state = st.oci_json(Status::Creating);
    }

    let (start_r, start_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    let (exec_r, exec_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    let (psync, csync) = sync::pair()?;
    let hk = spec.hooks();
    let parent_hooks = !(hk.prestart.is_empty() && hk.create_runtime.is_empty() && hk.create_container.is_empty());
    let new_user = spec.new_ns("user");
    let cg_active = !rb.cgroup.is_null();
    let plan = Plan {
        spec: &spec,
        bundle: &bundle,
        rootfs: rootfs.clone(),
        no_pivot: o.no_pivot,
        joins,
        caps,
        console,
        console_to_parent: terminal && o.console_socket.is_none(),
        start_r,
        start_w,
        exec_w,
        preserve_fds: o.preserve_fds,
        listen_fds: listen_fds(),
        cgroup: rb.cgroup.clone(),
        wait_go: new_user || (cg_active && spec.new_ns("cgroup")),
        parent_hooks,
        seccomp,
        no_new_keyring: o.no_new_keyring,
    };

    // Joined pid and time namespaces, and a new time namespace, apply to
    // the children of the caller: switch ours for the clone, then back so
    // the hooks we run stay outside.
    let own_pid_ns = if plan.joins.has("pid") { Some(open_own_ns("pid")?) } else { None };
    let own_time_ns = if spec.ns("time").is_some() { Some(open_own_ns("time")?) } else { None };
    plan.joins.join_for_children()?;
    if spec.new_ns("time") {
        namespaces::unshare_time(&spec)?;
    }
    // New user and pid namespaces come with the clone itself, so that the
    // pid namespace is owned by the user namespace (procfs needs that).
    let flags = namespaces::flag("user").bits() * i32::from(spec.new_ns("user"))
        | namespaces::flag("pid").bits() * i32::from(spec.new_ns("pid"));
    // SAFETY: a fork-like clone (no new stack, no shared VM): husk is
    // single-threaded here and the child only runs init::run, which ends in
    // execve or _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if ret < 0 {
        return Err(Error::sys("clone container init", nix::errno::Errno::last()));
    }
    if ret == 0 {
        // Our copy of the lock fd shares the parent's flock: close it.
        drop(lock);
        drop(own_pid_ns);
        drop(own_time_ns);
        drop(psync);
        drop(exec_r);
        init::run(plan, csync);
    }
    let child = ret as i32;
    rb.pid = Some(child);
    drop(csync);
    let Plan { start_w: child_start_w, start_r: child_start_r, exec_w: child_exec_w, console: child_console, .. } = plan;
    drop(child_console);
    if let Some(p) = &own_pid_ns {
        nix::sched::setns(p.as_fd(), namespaces::flag("pid")).ctx(|| "restore pid namespace")?;
    }
    if let Some(t) = &own_time_ns {
        nix::sched::setns(t.as_fd(), namespaces::flag("time")).ctx(|| "restore time namespace")?;
    }

    st.pid = child;
    cgroups_glue::add_pid(&rb.cgroup, child)?;
    if let Some(adj) = spec.process.as_ref().and_then(|p| p.oom_score_adj) {
        crate::fsutil::write_proc(&format!("/proc/{child}/oom_score_adj"), adj.to_string().as_bytes())
            .map_err(|e| Error::Other(format!("process.oomScoreAdj: {e}")))?;
    }
    if new_user {
        psync.expect(Msg::UserNs)?;
        namespaces::write_id_maps(child, &spec)?;
    }
    if new_user || (cg_active && spec.new_ns("cgroup")) {
        psync.send(Msg::Go)?;
    }
    st.husk.start_time = state::proc_start_time(child).map(|t| t.0).unwrap_or(0);
    st.husk.start_fd = child_start_r.as_raw_fd();
    st.husk.exec_fd = child_exec_w.as_raw_fd();
    // The config as created: later edits of the bundle's config.json must
    // not affect the container (start and delete read this copy).
    let spec_json = serde_json::to_vec(&spec).map_err(|e| Error::Other(format!("config copy: {e}")))?;
    state::write_atomic(&state::dir(root, id).join("config.json"), &spec_json)?;
    st.save(root)?;

    let mut pty_master = None;
    loop {
        match psync.recv()? {
            Msg::Hooks => {
                // "created" as crun (and the validation suite) expect.
                let json = st.oci_json(Status::Created).to_string();
                hooks::run_all("prestart", &hk.prestart, json.as_bytes())?;
                hooks::run_all("createRuntime", &hk.create_runtime, json.as_bytes())?;
                psync.send(Msg::HooksDone(json.into_bytes()))?;
            }
            Msg::Fd(fd) => pty_master = Some(fd),
            Msg::Ready => break,
            Msg::Error(e) => return Err(Error::Init(e)),
            m => return Err(Error::Init(format!("unexpected message from init: {m:?}"))),
        }
    }
    if let Some(pf) = &o.pid_file {
        state::write_atomic(pf, child.to_string().as_bytes())?;
    }
    crate::log::debug(&format!("created container {id} (pid {child})"));
    rb.armed = false;
    drop(lock);
    drop(child_start_r);
    drop(child_exec_w);
    Ok(Created {
        state: st,
        spec,
        start_w: Some(child_start_w),
        exec_r: Some(exec_r),
        pty_master,
    })
}

/// The config saved at create.
fn saved_spec(root: &Path, id: &str) -> Result<Spec> {
    let p = state::dir(root, id).join("config.json");
    let data = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_slice(&data).map_err(|e| Error::Other(format!("{}: {e}", p.display())))
}

fn open_own_ns(kind: &str) -> Result<OwnedFd> {
    let p = format!("/proc/self/ns/{kind}");
    nix::fcntl::open(p.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ctx(|| format!("open {p}"))
}

/// Releases a created container: write to its start pipe, then wait for the
/// exec (the exec pipe closes) or an error message. Then poststart hooks.
fn release(st: &mut State, root: &Path, spec: &Spec, start_w: Option<OwnedFd>, exec_r: Option<OwnedFd>) -> Result<()> {
    if spec.process.is_none() {
        return Err(Error::State { id: st.id.clone(), msg: "config.json has no process to start".into() });
    }
    let pid = st.pid;
    let (w, r) = match (start_w, exec_r) {
        (Some(w), Some(r)) => (w, r),
        _ => {
            // Reopen the init's pipe ends through /proc.
            let r = nix::fcntl::open(
                format!("/proc/{pid}/fd/{}", st.husk.exec_fd).as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::State { id: st.id.clone(), msg: format!("cannot reach the waiting process: {}", e.desc()) })?;
            let w = nix::fcntl::open(
                format!("/proc/{pid}/fd/{}", st.husk.start_fd).as_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::State { id: st.id.clone(), msg: format!("cannot reach the waiting process: {}", e.desc()) })?;
            (w, r)
        }
    };
    nix::unistd::write(&w, b"s").ctx(|| "signal start")?;
    drop(w);
    let mut msg = String::new();
    let mut f = std::fs::File::from(r);
    let _ = f.read_to_string(&mut msg);
    if !msg.is_empty() {
        return Err(Error::Init(msg));
    }
    st.husk.started = true;
    st.save(root)?;
    let hk = spec.hooks();
    if !hk.poststart.is_empty() {
        let json = st.oci_json(Status::Running).to_string();
        for h in &hk.poststart {
            if let Err(e) = hooks::run("poststart", h, json.as_bytes()) {
                crate::log::warn(&e.to_string());
            }
        }
    }
    Ok(())
}

pub fn start(root: &Path, id: &str) -> Result<()> {
    let _lock = state::lock(root, id)?;
    let mut st = State::load(root, id)?;
    match st.status() {
        Status::Created => {}
        s => return Err(Error::State { id: id.into(), msg: format!("cannot start a container that is {}", s.as_str()) }),
    }
    let spec = saved_spec(root, id)?;
    release(&mut st, root, &spec, None, None)
}

/// `run`: create, start, and (attached) wait and return the exit status.
pub fn run(root: &Path, id: &str, o: &CreateOpts, mgr: Manager, detach: bool) -> Result<i32> {
    let mut c = create(root, id, o, mgr, !detach)?;
    let lock = state::lock(root, id)?;
    let pid = c.state.pid;
    if let Err(e) = release(&mut c.state, root, &c.spec, c.start_w.take(), c.exec_r.take()) {
        drop(lock);
        let _ = delete(root, id, true);
        return Err(e);
    }
    drop(lock);
    if detach {
        return Ok(0);
    }
    crate::signals::forward_to(pid);
    let proxy = c.pty_master.take().map(crate::tty::Proxy::start);
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
    delete(root, id, true)?;
    Ok(code)
}

pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Usage(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| Error::Usage(format!("unknown signal {s:?}")))
}

pub fn kill(root: &Path, id: &str, sig: Signal, all: bool) -> Result<()> {
    let _lock = state::lock(root, id)?;
    let st = State::load(root, id)?;
    let status = st.status();
    if status == Status::Stopped {
        return Err(Error::State { id: id.into(), msg: "container not running".into() });
    }
    if all && !st.husk.cgroup.is_null() {
        return cgroups_glue::kill_all(&st.husk.cgroup, sig as i32);
    }
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
        return Err(Error::State { id: st.id.clone(), msg: "container not running".into() });
    }
    // SAFETY: pidfd_send_signal with a pidfd we own and no siginfo.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig as i32, std::ptr::null::<u8>(), 0) };
    if r != 0 {
        return Err(Error::sys(format!("signal container {}", st.id), nix::errno::Errno::last()));
    }
    Ok(())
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let lock = state::lock(root, id)?;
    let st = State::load(root, id)?;
    match st.status() {
        Status::Stopped | Status::Created => {}
        s if force => {
            let _ = s;
        }
        s => {
            return Err(Error::State {
                id: id.into(),
                msg: format!("cannot delete a container that is {} (use --force)", s.as_str()),
            })
        }
    }
    // With a cgroup, destroy() freezes, kills and waits for every member (a
    // frozen task cannot die until thawed) and removes the directories;
    // without one, only the init can be signalled.
    if st.alive() && st.husk.cgroup.is_null() {
        signal_pid(&st, Signal::SIGKILL)?;
    }
    cgroups_glue::destroy(&st.husk.cgroup)?;
    if st.alive() {
        wait_gone(&st);
    }
    let spec = saved_spec(root, id).ok();
    std::fs::remove_dir_all(state::dir(root, id)).map_err(|e| Error::io(state::dir(root, id), e))?;
    drop(lock);
    if let Some(spec) = spec {
        let hk = spec.hooks();
        if !hk.poststop.is_empty() {
            let json = st.oci_json(Status::Stopped).to_string();
            for h in &hk.poststop {
                if let Err(e) = hooks::run("poststop", h, json.as_bytes()) {
                    crate::log::warn(&e.to_string());
                }
            }
        }
    }
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
