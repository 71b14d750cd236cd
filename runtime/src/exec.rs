//! `husk exec`: a new process in a running container. It joins every
//! namespace of the container's init (setns on /proc/PID/ns/*), its cgroup,
//! and gets the process settings of the container unless overridden.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};

use crate::caps::CapSets;
use crate::config::{self, Capabilities, Process, Spec};
use crate::error::{Ctx, Error, Result};
use crate::state::{self, State, Status};
use crate::{cgroups_glue, console, namespaces, process};

#[derive(Default, Debug)]
pub struct ExecOpts {
    pub process_file: Option<String>,
    pub tty: bool,
    pub console_socket: Option<String>,
    pub detach: bool,
    pub pid_file: Option<String>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<String>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: u32,
    pub args: Vec<String>,
}

/// `UID` or `UID:GID`, digits only: anything else is an error rather than
/// a guess (crun CVE-2026-30892 came from lenient parsing).
pub fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let bad = || Error::Usage(format!("--user {s:?}: expected UID or UID:GID (numbers)"));
    let num = |t: &str| -> Result<u32> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 10 {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    match s.split_once(':') {
        None => Ok((num(s)?, None)),
        Some((u, g)) => Ok((num(u)?, Some(num(g)?))),
    }
}

/// The process to run: `--process FILE` (or `-` for stdin), else the
/// container's process with the command-line overrides.
fn build_process(spec: &Spec, o: &ExecOpts) -> Result<Process> {
    if let Some(f) = &o.process_file {
        let data = if f == "-" {
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v).map_err(|e| Error::io("stdin", e))?;
            v
        } else {
            std::fs::read(f).map_err(|e| Error::io(f, e))?
        };
        let de = &mut serde_json::Deserializer::from_slice(&data);
        let p: Process = serde_path_to_error::deserialize(de)
            .map_err(|e| Error::Config { field: format!("--process {f}: {}", e.path()), msg: e.into_inner().to_string() })?;
        config::validate_process(&p, "process")?;
        return Ok(p);
    }
    let mut p = spec.process.clone().unwrap_or_default();
    if o.args.is_empty() {
        return Err(Error::Usage("exec: no command given (ARGS or --process)".into()));
    }
    p.args = o.args.clone();
    p.terminal = o.tty;
    for e in &o.env {
        let key = e.split('=').next().unwrap_or("");
        p.env.retain(|x| x.split('=').next() != Some(key));
        p.env.push(e.clone());
    }
    if let Some(c) = &o.cwd {
        p.cwd = c.clone();
    }
    if let Some(u) = &o.user {
        let (uid, gid) = parse_user(u)?;
        p.user.uid = uid;
        p.user.gid = gid.unwrap_or(0);
        p.user.additional_gids.clear();
    }
    for g in &o.additional_gids {
        for part in g.split(',').filter(|s| !s.is_empty()) {
            let (gid, _) = parse_user(part).map_err(|_| Error::Usage(format!("--additional-gids {g:?}: expected numbers")))?;
            p.user.additional_gids.push(gid);
        }
    }
    if !o.caps.is_empty() {
        let mut c = p.capabilities.clone().unwrap_or_else(Capabilities::default);
        for cap in &o.caps {
            let name = if cap.to_ascii_uppercase().starts_with("CAP_") { cap.to_ascii_uppercase() } else { format!("CAP_{}", cap.to_ascii_uppercase()) };
            for set in [&mut c.bounding, &mut c.effective, &mut c.permitted, &mut c.inheritable, &mut c.ambient] {
                set.get_or_insert_with(Vec::new).push(name.clone());
            }
        }
        p.capabilities = Some(c);
    }
    if o.no_new_privs {
        p.no_new_privileges = true;
    }
    config::validate_process(&p, "process")?;
    Ok(p)
}

const NS_FILES: [(&str, &str); 8] =
    [("user", "user"), ("mnt", "mount"), ("pid", "pid"), ("net", "network"), ("ipc", "ipc"), ("uts", "uts"), ("cgroup", "cgroup"), ("time", "time")];

/// Namespaces of `pid` that differ from ours, opened, in join order.
fn container_namespaces(pid: i32) -> Result<Vec<(&'static str, OwnedFd)>> {
    let mut v = Vec::new();
    for (file, kind) in NS_FILES {
        let theirs = format!("/proc/{pid}/ns/{file}");
        let (Ok(a), Ok(b)) = (std::fs::read_link(&theirs), std::fs::read_link(format!("/proc/self/ns/{file}"))) else { continue };
        if a == b {
            continue;
        }
        let fd = nix::fcntl::open(theirs.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .ctx(|| format!("open {theirs}"))?;
        v.push((kind, fd));
    }
    Ok(v)
}

pub fn exec(root: &Path, id: &str, o: &ExecOpts) -> Result<i32> {
    // CVE-2024-21626: fds leaked to us must not sit in the child while it
    // is in the container. CVE-2019-5736: the child enters the container
    // as this binary: run it from a sealed copy.
    process::close_from(3 + o.preserve_fds as i32);
    process::reexec_sealed()?;
    let st = State::load(root, id)?;
    match st.status() {
        Status::Running | Status::Created => {}
        s => return Err(Error::State { id: id.into(), msg: format!("cannot exec in a container that is {}", s.as_str()) }),
    }
    let spec_path = state::dir(root, id).join("config.json");
    let spec: Spec = std::fs::read(&spec_path)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .ok_or_else(|| Error::Other(format!("{}: missing or corrupt", spec_path.display())))?;
    let p = build_process(&spec, o)?;
    if p.terminal && o.console_socket.is_none() && o.detach {
        return Err(Error::Usage("exec: --tty with --detach needs --console-socket".into()));
    }
    let caps = CapSets::from_config(&p.capabilities);
    let seccomp = crate::seccomp_glue::prepare(&spec)?;
    let console = match &o.console_socket {
        Some(s) => Some(console::connect_socket(s)?),
        None => None,
    };
    let nss = container_namespaces(st.pid)?;
    let in_userns = nss.iter().any(|(k, _)| *k == "user") || spec.ns("user").is_some();
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    let (sync_parent, sync_child) = crate::sync::pair()?;

    // pid and time namespaces apply to our children. Ours are kept open to
    // go back to after the fork: while our children's pid namespace differs
    // from our own, the kernel refuses to start threads (the tty proxy).
    let mut ours = Vec::new();
    for (kind, fd) in &nss {
        if *kind == "pid" || *kind == "time" {
            let file = if *kind == "pid" { "pid_for_children" } else { "time_for_children" };
            let own = format!("/proc/self/ns/{file}");
            let own_fd = nix::fcntl::open(own.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ctx(|| format!("open {own}"))?;
            nix::sched::setns(fd.as_fd(), namespaces::flag(kind)).ctx(|| format!("join {kind} namespace"))?;
            ours.push((*kind, own_fd));
        }
    }
    // SAFETY: single-threaded; the child ends in execve or _exit.
    let fork = unsafe { nix::unistd::fork() }.ctx(|| "fork")?;
    if let nix::unistd::ForkResult::Parent { .. } = fork {
        for (kind, fd) in &ours {
            if let Err(e) = nix::sched::setns(fd.as_fd(), namespaces::flag(kind)) {
                crate::log::warn(&format!("return to our own {kind} namespace: {e}"));
            }
        }
    }
    if let nix::unistd::ForkResult::Child = fork {
        drop(err_r);
        drop(sync_parent);
        let e = child(&p, &nss, caps.as_ref(), in_userns, seccomp.as_ref(), console.as_ref(), &sync_child, o);
        let msg = e.to_string();
        let _ = nix::unistd::write(&err_w, msg.as_bytes());
        // SAFETY: _exit ends the child without running the parent's handlers.
        unsafe { libc::_exit(127) };
    }
    let nix::unistd::ForkResult::Parent { child: pid } = fork else { unreachable!() };
    drop(err_w);
    drop(sync_child);
    // Join the container's cgroup, then let the child go on.
    let joined = cgroups_glue::add_pid(&st.husk.cgroup, pid.as_raw());
    let _ = sync_parent.send(crate::sync::Msg::Go);
    let mut pty = None;
    if p.terminal && console.is_none() {
        if let Ok(crate::sync::Msg::Fd(fd)) = sync_parent.recv() {
            pty = Some(fd);
        }
    }
    drop(sync_parent);
    let mut msg = String::new();
    let _ = std::fs::File::from(err_r).read_to_string(&mut msg);
    if !msg.is_empty() {
        let _ = waitpid(pid, None);
        return Err(Error::Init(msg));
    }
    joined?;
    if let Some(pf) = &o.pid_file {
        state::write_atomic(Path::new(pf), pid.as_raw().to_string().as_bytes())?;
    }
    if o.detach {
        return Ok(0);
    }
    crate::signals::forward_to(pid.as_raw());
    let proxy = pty.map(crate::tty::Proxy::start);
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for exec process", e)),
        }
    };
    if let Some(p) = proxy {
        p.finish();
    }
    Ok(code)
}

#[allow(clippy::too_many_arguments)]
fn child(
    p: &Process,
    nss: &[(&'static str, OwnedFd)],
    caps: Option<&CapSets>,
    in_userns: bool,
    seccomp: Option<&crate::seccomp_glue::Filter>,
    console_sock: Option<&OwnedFd>,
    sync: &crate::sync::Sync,
    o: &ExecOpts,
) -> Error {
    // Until the execve, container processes must not reach our
    // /proc/PID/exe or /proc/PID/fd (the exec makes us dumpable again).
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Error::sys("prctl(PR_SET_DUMPABLE)", nix::errno::Errno::last());
    }
    let r = (|| -> Result<()> {
        sync.expect(crate::sync::Msg::Go)?;
        for (kind, fd) in nss {
            if *kind != "pid" && *kind != "time" {
                nix::sched::setns(fd.as_fd(), namespaces::flag(kind)).ctx(|| format!("join {kind} namespace"))?;
            }
        }
        if p.terminal {
            let (master, slave) = console::open_pty(p.console_size.as_ref())?;
            match console_sock {
                Some(s) => console::send_fd(s.as_fd(), "/dev/ptmx", master.as_fd())?,
                None => sync.send_fd(master.as_fd())?,
            }
            drop(master);
            console::make_stdio(slave.as_fd())?;
        }
        process::set_rlimits(p)?;
        if !p.no_new_privileges {
            if let Some(f) = seccomp {
                crate::seccomp_glue::install(f, 0)?;
            }
        }
        process::set_identity(p, caps, in_userns)?;
        if p.no_new_privileges {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(Error::sys("noNewPrivileges", nix::errno::Errno::last()));
            }
        }
        process::enter_cwd(&p.cwd)?;
        Ok(())
    })();
    if let Err(e) = r {
        return e;
    }
    let path = match process::find_executable(p) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let env = process::container_env(p, 0);
    let (args, env) = match (process::cstrings(&p.args, "process.args"), process::cstrings(&env, "process.env")) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if p.no_new_privileges {
        if let Some(f) = seccomp {
            if let Err(e) = crate::seccomp_glue::install(f, 0) {
                return e;
            }
        }
    }
    process::cloexec_from(3 + o.preserve_fds as i32);
    let _ = sync.fd.as_raw_fd();
    process::exec(&path, &args, &env)
}

#[cfg(test)]
mod tests {
    use super::parse_user;

    #[test]
    fn user_forms() {
        assert_eq!(parse_user("0").unwrap(), (0, None));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        for bad in ["", ":", "1000:", ":5", "root", "1e3", "-1", "1000:100:5", " 1", "99999999999", "0x10"] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }
}
