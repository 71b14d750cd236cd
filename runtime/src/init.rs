//! The container's first process, between fork and exec: namespaces,
//! rootfs, identity, then a wait for `start`, then exec. It reports errors
//! to the parent over the sync socket (before it is ready) or to `start`
//! through the exec pipe (after).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use crate::caps::CapSets;
use crate::config::Spec;
use crate::error::{Ctx, Error, Result};
use crate::namespaces::{self, Joins};
use crate::sync::{Msg, Sync};
use crate::{console, devices, fsutil, hooks, mounts, process, rootfs};

/// Everything the child needs, prepared by the parent before the fork.
pub struct Plan<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    pub joins: Joins,
    pub caps: Option<CapSets>,
    pub console: Option<OwnedFd>,
    /// Attached `run` with a terminal and no console socket: send the
    /// master to the parent over the sync socket instead.
    pub console_to_parent: bool,
    pub start_r: OwnedFd,
    pub start_w: OwnedFd,
    pub exec_w: OwnedFd,
    pub preserve_fds: u32,
    pub listen_fds: u32,
    pub cgroup: serde_json::Value,
    /// The parent adds us to the cgroup and writes uid/gid maps before
    /// sending Go; the child waits for it only when it matters.
    pub wait_go: bool,
    /// Parent runs prestart/createRuntime hooks when we say so.
    pub parent_hooks: bool,
    pub seccomp: Option<crate::seccomp_glue::Filter>,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
}

static HOST_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

fn host_pid() -> i32 {
    HOST_PID.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs in the child; never returns.
pub fn run(plan: Plan, sync: Sync) -> ! {
    let exec_w = plan.exec_w.as_raw_fd();
    match setup(&plan, &sync) {
        Ok(()) => {}
        Err(e) => {
            let _ = sync.send(Msg::Error(e.to_string()));
            exit(1);
        }
    }
    // Ready: the parent records us and (for `create`) exits.
    if sync.send(Msg::Ready).is_err() {
        exit(1);
    }
    drop(sync);
    let err = wait_and_exec(plan);
    // After Ready, errors go to whoever runs `start`.
    let msg = err.to_string();
    // SAFETY: write to our own pipe fd; a missing reader only gives EPIPE.
    unsafe { libc::write(exec_w, msg.as_ptr().cast(), msg.len()) };
    let _ = nix::unistd::write(std::io::stderr(), format!("husk: {msg}\n").as_bytes());
    exit(127);
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and runs no atexit handlers of the parent's.
    unsafe { libc::_exit(code) }
}

fn setup(plan: &Plan, sync: &Sync) -> Result<()> {
    let spec = plan.spec;
    let userns = spec.ns("user").is_some();
    // Until the exec, this process is the host's husk binary holding the
    // runtime's fds: a process that `husk exec` adds to a created container
    // must not open /proc/1/exe (CVE-2019-5736) or /proc/1/fd/N
    // (CVE-2024-21626). Non-dumpable makes those need CAP_SYS_PTRACE; execve
    // of the program makes it dumpable again.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(Error::sys("prctl(PR_SET_DUMPABLE)", nix::errno::Errno::last()));
    }
    // Ignore the SIGPIPE of a write to an exec pipe nobody reads.
    // SAFETY: setting a signal disposition to SIG_IGN.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };

    if spec.new_ns("user") {
        // Created by the clone; the parent writes our maps now.
        sync.send(Msg::UserNs)?;
    }
    if plan.wait_go {
        sync.expect(Msg::Go)?;
    }
    if userns {
        // Become root of the namespace (maps are written by now).
        nix::unistd::setresgid(0.into(), 0.into(), 0.into()).ctx(|| "setgid 0 in user namespace")?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into()).ctx(|| "setuid 0 in user namespace")?;
    }
    plan.joins.join_in_child()?;
    let mut flags = CloneFlags::empty();
    for kind in ["network", "ipc", "uts", "mount", "cgroup"] {
        if spec.new_ns(kind) {
            flags |= namespaces::flag(kind);
        }
    }
    nix::sched::unshare(flags).ctx(|| "unshare namespaces")?;

    if !plan.no_new_keyring {
        // A fresh anonymous session keyring: keys of the host's session
        // must not be reachable from the container.
        // SAFETY: keyctl with integer/null arguments only.
        let r = unsafe { libc::syscall(libc::SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0usize) };
        if r < 0 && nix::errno::Errno::last() != nix::errno::Errno::ENOSYS {
            return Err(Error::sys("join a new session keyring", nix::errno::Errno::last()));
        }
    }
    // Our pid as the host sees it: the host's procfs is still mounted.
    let me: i32 = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    HOST_PID.store(me, std::sync::atomic::Ordering::Relaxed);
    if spec.ns("mount").is_none() {
        // Sharing the host's mount namespace: mount nothing (it would land
        // on the host), just chroot into the rootfs, as runc does.
        return setup_without_mountns(plan, sync);
    }
    // The mode of device nodes must not depend on our umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let rootfs_fd = rootfs::prepare(spec, &plan.rootfs)?;
    let (cgroup_binds, cgroup_v2) = crate::cgroups_glue::mount_binds(&plan.cgroup);
    let ctx = mounts::MountCtx {
        rootfs: rootfs_fd.as_fd(),
        bundle: plan.bundle,
        userns,
        new_netns: spec.new_ns("network"),
        cgroup_binds: &cgroup_binds,
        cgroup_v2,
    };
    let mut has_pts = false;
    let mut bind_dev = false;
    for (i, m) in spec.mounts.iter().enumerate() {
        mounts::mount_entry(m, &ctx, i)?;
        let dst = m.destination.trim_end_matches('/');
        has_pts |= dst == "/dev/pts";
        bind_dev |= dst == "/dev" && (m.typ.as_deref() == Some("bind") || m.options.iter().any(|o| o == "bind" || o == "rbind"));
    }
    if !bind_dev {
        for d in devices::defaults().iter().chain(spec.linux().devices.iter()) {
            devices::create(rootfs_fd.as_fd(), d, userns)?;
        }
        devices::links(rootfs_fd.as_fd(), has_pts)?;
    }
    // Sysctls are per namespace: written through the host's procfs (which
    // we verified is procfs) from inside our new namespaces.
    for (k, v) in &spec.linux().sysctl {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        fsutil::write_proc(&path, v.as_bytes()).map_err(|e| Error::Other(format!("linux.sysctl.{k}: {e}")))?;
    }

    if plan.parent_hooks {
        sync.send(Msg::Hooks)?;
        let state_json = sync.expect_hooks_done()?;
        let hk = spec.hooks();
        hooks::run_all("createContainer", &hk.create_container, &state_json)?;
    }

    rootfs::switch_root(&rootfs_fd, plan.no_pivot)?;
    drop(rootfs_fd);
    rootfs::finish(spec)?;
    setup_process(plan, sync)
}

fn setup_without_mountns(plan: &Plan, sync: &Sync) -> Result<()> {
    if !plan.spec.mounts.is_empty() {
        crate::log::warn("no mount namespace: the config's mounts are not mounted");
    }
    if plan.parent_hooks {
        sync.send(Msg::Hooks)?;
        let state_json = sync.expect_hooks_done()?;
        hooks::run_all("createContainer", &plan.spec.hooks().create_container, &state_json)?;
    }
    nix::unistd::chroot(&plan.rootfs).ctx(|| format!("chroot {}", plan.rootfs.display()))?;
    nix::unistd::chdir("/").ctx(|| "chdir /")?;
    setup_process(plan, sync)
}

/// hostname, terminal, rlimits, identity, cwd: after the root switch.
fn setup_process(plan: &Plan, sync: &Sync) -> Result<()> {
    let spec = plan.spec;
    let userns = spec.ns("user").is_some();
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| "hostname")?;
    }
    if let Some(d) = spec.domainname.as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: setdomainname reads `len` bytes of a buffer we own.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::sys("domainname", nix::errno::Errno::last()));
        }
    }

    let Some(p) = &spec.process else {
        // No process: `create` succeeds, `start` will refuse.
        return Ok(());
    };
    if p.terminal {
        let (master, slave) = console::open_pty(p.console_size.as_ref())?;
        console::bind_console(slave.as_fd())?;
        if let Some(sock) = &plan.console {
            console::send_fd(sock.as_fd(), "/dev/ptmx", master.as_fd())?;
        } else if plan.console_to_parent {
            sync.send_fd(master.as_fd())?;
        } else {
            return Err(Error::Other("process.terminal is true: --console-socket is required".into()));
        }
        drop(master);
        console::make_stdio(slave.as_fd())?;
    }
    process::set_rlimits(p)?;
    if let Some(name) = &p.apparmor_profile {
        if !name.is_empty() && !Path::new("/sys/kernel/security/apparmor").exists() {
            return Err(Error::Other(format!("process.apparmorProfile {name:?}: AppArmor is not enabled on this kernel")));
        }
    }
    // cwd is resolved (openat2, inside the root) before a filter that may
    // not allow openat2 is loaded.
    process::enter_cwd(&p.cwd)?;
    // Without noNewPrivileges the filter needs CAP_SYS_ADMIN: load it while
    // we still have it (as runc does). Otherwise it is the last step.
    let seccomp_early = !p.no_new_privileges;
    if seccomp_early {
        if let Some(f) = &plan.seccomp {
            crate::seccomp_glue::install(f, host_pid())?;
        }
    }
    process::set_identity(p, plan.caps.as_ref(), userns)?;
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::sys("noNewPrivileges", nix::errno::Errno::last()));
        }
    }
    process::find_executable(p)?;
    Ok(())
}

/// Waits for `start`, runs startContainer hooks, loads seccomp, execs.
fn wait_and_exec(plan: Plan) -> Error {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(&plan.start_r, &mut b) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Error::sys("wait for start", e),
        }
    }
    let spec = plan.spec;
    let Some(p) = &spec.process else {
        return Error::Other("config has no process to start".into());
    };
    let hk = spec.hooks();
    if !hk.start_container.is_empty() {
        let state = serde_json::json!({"ociVersion": crate::state::OCI_VERSION, "status": "running", "pid": 1});
        if let Err(e) = hooks::run_all("startContainer", &hk.start_container, state.to_string().as_bytes()) {
            return e;
        }
    }
    let path = match process::find_executable(p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let env = process::container_env(p, plan.listen_fds);
    let (args, env) = match (process::cstrings(&p.args, "process.args"), process::cstrings(&env, "process.env")) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if p.no_new_privileges {
        if let Some(f) = &plan.seccomp {
            if let Err(e) = crate::seccomp_glue::install(f, host_pid()) {
                return e;
            }
        }
    }
    // Nothing of ours but stdio and the preserved fds survives the exec.
    let keep: RawFd = 3 + plan.preserve_fds.max(plan.listen_fds) as RawFd;
    process::cloexec_from(keep);
    process::exec(&path, &args, &env)
}
