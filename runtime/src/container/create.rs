//! `create`: fork the container's init and drive it to "waiting for start",
//! recording each side effect in the state before making it (see
//! state.rs), so that a crash at any point leaves a container `delete
//! --force` can remove.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use husk_oci::{NamespaceKind, Spec, Status};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::hardening;
use crate::cgroup::{self, Manager};
use crate::channel::{self, Msg};
use crate::child::{self, caps::CapSets, Plan};
use crate::error::{Ctx, Error, Result};
use crate::state::{self, State};
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
    pub start_w: OwnedFd,
    pub exec_r: OwnedFd,
    pub pty_master: Option<OwnedFd>,
}

/// Undo list for a failed create: what the state records, removed in the
/// same order `delete` uses.
struct Rollback<'a> {
    root: &'a Path,
    st: Option<State>,
    /// As runc (and the runtime spec for a failed createRuntime hook): a
    /// failed create is a delete, poststop hooks included (a network hook's
    /// DEL must run).
    poststop: Vec<husk_oci::spec::Hook>,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        let Some(st) = self.st.take() else { return };
        if st.pid > 0 {
            let _ = nix::sys::signal::kill(Pid::from_raw(st.pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(st.pid), None);
        }
        if let Some(cg) = &st.cgroup {
            let _ = cg.destroy();
        }
        hooks::run_all_warn("poststop", &self.poststop, st.spec_json(Status::Stopped).as_bytes());
        let _ = std::fs::remove_dir_all(state::dir(self.root, &st.id));
    }
}

fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Bind-mount sources. With a new user namespace they are taken now as
/// detached mounts (open_tree with OPEN_TREE_CLONE): from inside it the
/// child may not reach a host path (a 0700 parent), as runc opens them
/// early too, and a detached copy can be attached in the child's mount
/// namespace (move_mount). Otherwise the child binds the host path itself,
/// so the mounts stay in the config's order in mountinfo.
fn open_bind_sources(spec: &Spec, bundle: &Path) -> Result<Vec<(usize, child::mounts::BindSource)>> {
    use child::mounts::BindSource;
    let userns = spec.new_ns(NamespaceKind::User);
    let mut v = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        if !child::mounts::is_bind(m) {
            continue;
        }
        let s = m.source.as_deref().unwrap_or("");
        let src = if s.starts_with('/') { PathBuf::from(s) } else { bundle.join(s) };
        if !userns {
            v.push((i, BindSource::Path(src)));
            continue;
        }
        let rec = m.options.iter().any(|o| o == "rbind");
        let fd = child::mounts::clone_tree(&src, rec)
            .map_err(|e| Error::Other(format!("mounts[{i}].source {}: {}", src.display(), e.desc())))?;
        v.push((i, BindSource::Tree(fd)));
    }
    Ok(v)
}

pub fn create(root: &Path, id: &str, o: &CreateOpts, mgr: Manager, attached: bool) -> Result<Created> {
    // Only stdio and the fds handed on on purpose reach the init.
    hardening::close_from(3 + o.preserve_fds.max(listen_fds()) as i32);
    hardening::reexec_sealed()?;
    state::validate_id(id)?;
    // A taken id is the first thing to report (create_dir below is the
    // race-free check).
    if state::dir(root, id).exists() {
        return Err(Error::Exists(id.into()));
    }
    let bundle = std::fs::canonicalize(&o.bundle).map_err(|e| Error::io(&o.bundle, e))?;
    let spec = husk_oci::spec::load(&bundle)?;
    let rootfs = husk_oci::spec::rootfs_path(&spec, &bundle);
    let meta = std::fs::metadata(&rootfs).map_err(|e| Error::Other(format!("root.path {}: {e}", rootfs.display())))?;
    if !meta.is_dir() {
        return Err(Error::Other(format!("root.path {}: not a directory", rootfs.display())));
    }
    let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| Error::io(&rootfs, e))?;
    if let Some(pf) = &o.pid_file {
        // Checked now, so that a bad path fails before anything exists.
        let dir = pf.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Error::Other(format!("--pid-file {}: {} is not a directory", pf.display(), dir.display())));
        }
    }
    // Everything that can fail without side effects, before the state dir.
    let caps = spec.process.as_ref().and_then(|p| CapSets::from_config(&p.capabilities));
    let seccomp = crate::seccomp::prepare(&spec)?;
    let joins = namespaces::open_joins(&spec)?;
    let bind_sources = open_bind_sources(&spec, &bundle)?;
    let console = match &o.console_socket {
        Some(p) => Some(child::pty::connect_socket(p)?),
        None => None,
    };
    let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
    if terminal && console.is_none() && !attached {
        return Err(Error::Usage("process.terminal is true: --console-socket is required".into()));
    }
    let cg = cgroup::plan(mgr, &spec, id)?;
    if let Some(cg) = &cg {
        cgroup::check(cg)?;
    }

    // The first side effect: the state directory, then at once a state
    // that names the cgroup before its directories exist.
    let lock = state::create_dir(root, id)?;
    crate::fault::point("create: state dir made");
    let mut st = State {
        id: id.into(),
        bundle: bundle.to_string_lossy().into_owned(),
        rootfs: rootfs.to_string_lossy().into_owned(),
        created: state::now_rfc3339(),
        annotations: spec.annotations.clone(),
        cgroup: cg,
        ..Default::default()
    };
    let mut rb = Rollback { root, st: Some(st.clone()), poststop: spec.hooks().poststop };
    // The config as created: later edits of the bundle's config.json must
    // not affect the container (start and delete read this copy).
    let spec_json = serde_json::to_vec(&spec).map_err(|e| Error::Other(format!("config copy: {e}")))?;
    state::write_atomic(&state::dir(root, id).join("config.json"), &spec_json)?;
    crate::fault::point("create: config copy written");
    st.save(root)?;
    crate::fault::point("create: first state written");
    if let Some(cg) = &st.cgroup {
        cgroup::create(cg, &spec)?;
    }
    crate::fault::point("create: cgroup made");

    let (start_r, start_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    let (exec_r, exec_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    let (parent, child_end) = channel::pair()?;
    let hk = spec.hooks();
    let parent_hooks = !(hk.prestart.is_empty() && hk.create_runtime.is_empty() && hk.create_container.is_empty());
    let new_user = spec.new_ns(NamespaceKind::User);
    let plan = Plan {
        spec: &spec,
        rootfs: rootfs.clone(),
        no_pivot: o.no_pivot,
        joins,
        caps,
        console,
        start_r,
        start_w,
        exec_w,
        preserve_fds: o.preserve_fds,
        listen_fds: listen_fds(),
        cgroup: st.cgroup.as_ref(),
        parent_hooks,
        seccomp,
        no_new_keyring: o.no_new_keyring,
        bind_sources,
        state: serde_json::to_value(st.spec_state(Status::Creating)).unwrap_or_default(),
    };

    // Joined pid and time namespaces, and a new time namespace, apply to
    // the children of the caller: switch ours for the clone, then back so
    // the hooks we run stay outside.
    let own_pid_ns = if plan.joins.has(NamespaceKind::Pid) { Some(namespaces::open_own(NamespaceKind::Pid)?) } else { None };
    let own_time_ns = if spec.ns(NamespaceKind::Time).is_some() { Some(namespaces::open_own(NamespaceKind::Time)?) } else { None };
    plan.joins.join_for_children()?;
    if spec.new_ns(NamespaceKind::Time) {
        namespaces::unshare_time(&spec)?;
    }
    // New user and pid namespaces come with the clone itself, so that the
    // pid namespace is owned by the user namespace (procfs needs that).
    let flags = namespaces::new_flags(&spec, &[NamespaceKind::User, NamespaceKind::Pid]).bits();
    // SAFETY: a fork-like clone (no new stack, no shared VM): husk is
    // single-threaded here and the child only runs child::run, which ends
    // in execve or _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if ret < 0 {
        return Err(Error::sys("clone container init", nix::errno::Errno::last()));
    }
    if ret == 0 {
        // Our copy of the lock fd shares the parent's flock: close it.
        drop(lock);
        drop(own_pid_ns);
        drop(own_time_ns);
        drop(parent);
        drop(exec_r);
        child::run(plan, child_end);
    }
    let pid = ret as i32;
    crate::fault::point("create: init cloned");
    drop(child_end);
    let Plan { start_w: child_start_w, start_r: child_start_r, exec_w: child_exec_w, console: child_console, .. } = plan;
    drop(child_console);
    if let Some(p) = &own_pid_ns {
        nix::sched::setns(p.as_fd(), namespaces::clone_flag(NamespaceKind::Pid)).ctx(|| "restore pid namespace")?;
    }
    if let Some(t) = &own_time_ns {
        nix::sched::setns(t.as_fd(), namespaces::clone_flag(NamespaceKind::Time)).ctx(|| "restore time namespace")?;
    }

    // The init waits for Go: record it before anything else happens to it.
    st.pid = pid;
    st.start_time = state::proc_start_time(pid).map(|t| t.0).unwrap_or(0);
    rb.st = Some(st.clone());
    st.save(root)?;
    crate::fault::point("create: pid recorded");
    if let Some(cg) = &st.cgroup {
        cg.add_pid(pid)?;
    }
    crate::fault::point("create: init in its cgroup");
    if let Some(adj) = spec.process.as_ref().and_then(|p| p.oom_score_adj) {
        crate::inroot::write_proc(&format!("/proc/{pid}/oom_score_adj"), adj.to_string().as_bytes())
            .map_err(|e| Error::Other(format!("process.oomScoreAdj: {e}")))?;
    }
    if new_user {
        namespaces::write_id_maps(pid, &spec)?;
    }
    crate::fault::point("create: id maps written");
    parent.send(Msg::Go)?;
    crate::fault::point("create: init released (Go)");
    crate::log::debug(&format!("container {id}: init {pid} released into its setup"));

    let mut pty_master = None;
    loop {
        match parent.recv()? {
            Msg::Hooks => {
                // "created" as crun (and the validation suite) expect.
                let json = st.spec_json(Status::Created);
                hooks::run_all("prestart", &hk.prestart, json.as_bytes())?;
                hooks::run_all("createRuntime", &hk.create_runtime, json.as_bytes())?;
                parent.send(Msg::HooksDone(json.into_bytes()))?;
                crate::fault::point("create: hooks run");
            }
            Msg::Fd(fd) => pty_master = Some(fd),
            Msg::Ready => break,
            Msg::Error(e) => return Err(Error::Init(e)),
            m => return Err(Error::Init(format!("unexpected message from init: {m:?}"))),
        }
    }
    crate::fault::point("create: init ready");
    st.start_fd = child_start_r.as_raw_fd();
    st.exec_fd = child_exec_w.as_raw_fd();
    st.created_ok = true;
    st.save(root)?;
    crate::fault::point("create: final state written");
    if let Some(pf) = &o.pid_file {
        state::write_atomic_mode(pf, pid.to_string().as_bytes(), 0o644)?;
    }
    crate::fault::point("create: pid file written");
    crate::log::debug(&format!("container {id}: created, init {pid} waits for start"));
    rb.st = None;
    drop(lock);
    drop(child_start_r);
    drop(child_exec_w);
    Ok(Created { state: st, spec, start_w: child_start_w, exec_r, pty_master })
}
