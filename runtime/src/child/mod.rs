//! The child side: the container's first process between the clone and
//! its exec. It waits for the parent to record it, enters its namespaces,
//! builds the root (mounts, devices, root switch), finishes the process
//! ([`process::finish`], shared with `exec`), reports ready, waits for
//! `start`, runs startContainer hooks and execs. Errors go to the parent
//! over the channel before ready, and to `start` through the exec pipe
//! after.

pub mod caps;
pub mod devices;
pub mod mounts;
pub mod process;
pub mod pty;
pub mod rootfs;

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use husk_cgroups::Cgroup;
use husk_oci::{NamespaceKind, Spec};

use crate::channel::{Channel, Msg};
use crate::error::{Ctx, Error, Result};
use crate::namespaces::{self, Joins};
use crate::{hooks, inroot};
use caps::CapSets;

/// Everything the child needs, prepared by the parent before the clone.
pub struct Plan<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    pub joins: Joins,
    pub caps: Option<CapSets>,
    pub console: Option<OwnedFd>,
    pub start_r: OwnedFd,
    pub start_w: OwnedFd,
    pub exec_w: OwnedFd,
    pub preserve_fds: u32,
    pub listen_fds: u32,
    pub cgroup: Option<&'a Cgroup>,
    /// Parent runs prestart/createRuntime hooks when we say so.
    pub parent_hooks: bool,
    pub seccomp: Option<crate::seccomp::Filter>,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// Bind-mount sources, opened by the parent (index in `mounts`, fd):
    /// inside a new user namespace the host paths may be out of reach.
    pub bind_sources: Vec<(usize, mounts::BindSource)>,
    /// The runtime spec's state (status "creating", no pid yet), for the
    /// seccomp agent and startContainer hooks.
    pub state: serde_json::Value,
}

/// Runs in the child; never returns.
pub fn run(plan: Plan, channel: Channel) -> ! {
    let exec_w = plan.exec_w.as_raw_fd();
    let program = match setup(&plan, &channel) {
        Ok(p) => p,
        Err(e) => {
            let _ = channel.send(Msg::Error(e.to_string()));
            exit(1);
        }
    };
    // Ready: the parent records us and (for `create`) exits.
    if channel.send(Msg::Ready).is_err() {
        exit(1);
    }
    drop(channel);
    let err = wait_and_exec(&plan, program);
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

fn setup(plan: &Plan, ch: &Channel) -> Result<Option<process::Program>> {
    let spec = plan.spec;
    let userns = spec.ns(NamespaceKind::User).is_some();
    // Until the exec, this process is the host's husk binary holding the
    // runtime's fds: a process that `husk exec` adds to a created container
    // must not open /proc/1/exe (CVE-2019-5736) or /proc/1/fd/N
    // (CVE-2024-21626). Non-dumpable makes those need CAP_SYS_PTRACE; execve
    // of the program makes it dumpable again.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(Error::sys("prctl(PR_SET_DUMPABLE)", nix::errno::Errno::last()));
    }
    // Ignore the SIGPIPE of a write to a pipe nobody reads.
    // SAFETY: setting a signal disposition to SIG_IGN.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // The parent records our pid, adds us to the cgroup and writes our id
    // maps before we go on; if it dies first, this read ends the child.
    ch.expect(Msg::Go)?;
    if userns {
        // Become root of the namespace (maps are written by now).
        nix::unistd::setresgid(0.into(), 0.into(), 0.into()).ctx(|| "setgid 0 in user namespace")?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into()).ctx(|| "setuid 0 in user namespace")?;
    }
    plan.joins.join_in_child()?;
    use NamespaceKind::*;
    nix::sched::unshare(namespaces::new_flags(spec, &[Network, Ipc, Uts, Mount, Cgroup])).ctx(|| "unshare namespaces")?;
    if spec.new_ns(Network) {
        loopback_up()?;
    }
    if !plan.no_new_keyring {
        // A fresh anonymous session keyring: keys of the host's session
        // must not be reachable from the container.
        // SAFETY: keyctl with integer/null arguments only.
        let r = unsafe {
            libc::syscall(libc::SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0usize)
        };
        if r < 0 && nix::errno::Errno::last() != nix::errno::Errno::ENOSYS {
            return Err(Error::sys("join a new session keyring", nix::errno::Errno::last()));
        }
    }
    // Our pid as the host sees it: the host's procfs is still mounted.
    let host_pid: i32 = std::fs::read_link("/proc/self").ok().and_then(|p| p.to_str().and_then(|s| s.parse().ok())).unwrap_or(0);
    if spec.ns(Mount).is_none() {
        // Sharing the host's mount namespace: mount nothing (it would land
        // on the host), just chroot into the rootfs, as runc does.
        if !spec.mounts.is_empty() {
            crate::log::warn("no mount namespace: the config's mounts are not mounted");
        }
        container_hooks(plan, ch)?;
        nix::unistd::chroot(&plan.rootfs).ctx(|| format!("chroot {}", plan.rootfs.display()))?;
        nix::unistd::chdir("/").ctx(|| "chdir /")?;
    } else {
        build_root(plan, ch, userns)?;
    }
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
        return Ok(None);
    };
    if let Some(name) = &p.apparmor_profile {
        if !name.is_empty() && !Path::new("/sys/kernel/security/apparmor").exists() {
            return Err(Error::Other(format!("process.apparmorProfile {name:?}: AppArmor is not enabled on this kernel")));
        }
    }
    let mut state = plan.state.clone();
    state["pid"] = host_pid.into();
    let f = process::Finish {
        process: p,
        caps: plan.caps,
        seccomp: plan.seccomp.as_ref(),
        state,
        host_pid,
        in_userns: userns,
        console: plan.console.as_ref(),
        channel: ch,
        dev_console: true,
    };
    process::finish(&f, plan.listen_fds).map(Some)
}

/// Mounts, devices and the root switch, in a mount namespace of our own.
fn build_root(plan: &Plan, ch: &Channel, userns: bool) -> Result<()> {
    let spec = plan.spec;
    // The mode of device nodes must not depend on our umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let rootfs_fd = rootfs::prepare(spec, &plan.rootfs)?;
    let (cgroup_binds, cgroup_v2) = cgroup_binds(plan.cgroup);
    let ctx = mounts::MountCtx {
        rootfs: rootfs_fd.as_fd(),
        userns,
        new_netns: spec.new_ns(NamespaceKind::Network),
        sources: &plan.bind_sources,
        cgroup_binds: &cgroup_binds,
        cgroup_v2,
    };
    let mut later = mounts::Deferred::default();
    let mut has_pts = false;
    let mut bind_dev = false;
    for (i, m) in spec.mounts.iter().enumerate() {
        mounts::mount_entry(m, &ctx, i, &mut later)?;
        let dst = husk_oci::spec::clean_path(&m.destination);
        has_pts |= dst == "/dev/pts";
        bind_dev |= dst == "/dev" && mounts::is_bind(m);
    }
    if !bind_dev {
        for d in devices::defaults().iter().chain(spec.linux().devices.iter()) {
            devices::create(rootfs_fd.as_fd(), d, userns)?;
        }
        devices::links(rootfs_fd.as_fd(), has_pts)?;
    }
    if spec.process.as_ref().is_some_and(|p| p.terminal) {
        // Before /dev may become read-only (rootfs::finish).
        pty::console_placeholder(rootfs_fd.as_fd())?;
    }
    if let Some(p) = &spec.process {
        // As runc: a cwd that does not exist yet is made (inside the root).
        if inroot::open_path_in(rootfs_fd.as_fd(), &p.cwd).is_err() {
            inroot::mkdir_all_in(rootfs_fd.as_fd(), &p.cwd, 0o755).map_err(|e| Error::Other(format!("process.cwd {:?}: {e}", p.cwd)))?;
        }
    }
    // Sysctls are per namespace: written through the host's procfs (which
    // we verified is procfs) from inside our new namespaces.
    for (k, v) in &spec.linux().sysctl {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        inroot::write_proc(&path, v.as_bytes()).map_err(|e| Error::Other(format!("linux.sysctl.{k}: {e}")))?;
    }
    container_hooks(plan, ch)?;
    rootfs::switch_root(&rootfs_fd, &plan.rootfs, plan.no_pivot)?;
    drop(rootfs_fd);
    rootfs::finish(spec, &later)
}

/// Asks the parent to run prestart/createRuntime hooks, then runs the
/// createContainer hooks here (in the container's namespaces).
fn container_hooks(plan: &Plan, ch: &Channel) -> Result<()> {
    if plan.parent_hooks {
        ch.send(Msg::Hooks)?;
        let state_json = ch.expect_hooks_done()?;
        hooks::run_all("createContainer", &plan.spec.hooks().create_container, &state_json)?;
    }
    Ok(())
}

/// For a `cgroup` mount: (host dir of the container's cgroup, subdir name)
/// per hierarchy; and whether the host is pure v2.
fn cgroup_binds(cg: Option<&Cgroup>) -> (Vec<(String, String)>, bool) {
    let Some(cg) = cg else {
        return (Vec::new(), false);
    };
    let binds = cg
        .hierarchies
        .iter()
        .map(|h| {
            let name = h.controllers.iter().map(|c| c.strip_prefix("name=").unwrap_or(c)).collect::<Vec<_>>().join(",");
            (h.dir.to_string_lossy().into_owned(), name)
        })
        .collect();
    (binds, cg.is_v2())
}

/// A new network namespace starts with `lo` down; bring it up, as runc.
fn loopback_up() -> Result<()> {
    // SAFETY: socket() returns a new fd or -1.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(Error::sys("socket for lo", nix::errno::Errno::last()));
    }
    // SAFETY: `s` is a fresh fd we own.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(s) };
    // SAFETY: an all-zero ifreq is valid; the name is copied within bounds.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) != 0 {
            return Err(Error::sys("lo: get flags", nix::errno::Errno::last()));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) != 0 {
            return Err(Error::sys("lo: set up", nix::errno::Errno::last()));
        }
    }
    Ok(())
}

/// Waits for `start`, runs startContainer hooks (under the seccomp filter,
/// as runc), execs.
fn wait_and_exec(plan: &Plan, program: Option<process::Program>) -> Error {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(&plan.start_r, &mut b) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Error::sys("wait for start", e),
        }
    }
    let Some(program) = program else {
        return Error::Other("config has no process to start".into());
    };
    let hk = plan.spec.hooks();
    if !hk.start_container.is_empty() {
        let mut state = plan.state.clone();
        state["status"] = "created".into();
        state["pid"] = nix::unistd::getpid().as_raw().into();
        if let Err(e) = hooks::run_all("startContainer", &hk.start_container, state.to_string().as_bytes()) {
            return e;
        }
    }
    // Nothing of ours but stdio and the preserved fds survives the exec.
    let keep: RawFd = 3 + plan.preserve_fds.max(plan.listen_fds) as RawFd;
    process::cloexec_from(keep);
    process::exec(&program)
}
