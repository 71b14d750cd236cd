//! `husk exec`: a new process in a running container. It joins every
//! namespace of the container's init (setns on /proc/PID/ns/*), its cgroup
//! (or a sub-cgroup with `--cgroup`), and is finished like the init
//! ([`crate::child::process::finish`]).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use husk_oci::spec::Process;
use husk_oci::{NamespaceKind, Spec, Status};
use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};

use super::hardening;
use crate::channel::{self, Msg};
use crate::child::{self, caps::CapSets, process};
use crate::error::{Ctx, Error, Result};
use crate::namespaces;
use crate::state::{self, State};

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
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLERS:]PATH`, repeatable.
    pub cgroups: Vec<String>,
    pub args: Vec<String>,
}

/// One uid or gid: digits only, 0–2147483647 (4294967295 is "unchanged"
/// to the kernel: it would keep root). Anything else is an error rather
/// than a guess (crun CVE-2026-30892 came from lenient parsing).
fn parse_id(flag: &str, s: &str, whole: &str) -> Result<u32> {
    let bad = || Error::Usage(format!("{flag} {whole:?}: expected numbers in range 0-{}", husk_oci::names::MAX_ID));
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 10 {
        return Err(bad());
    }
    let v: u32 = s.parse().map_err(|_| bad())?;
    if v > husk_oci::names::MAX_ID {
        return Err(bad());
    }
    Ok(v)
}

/// `UID` or `UID:GID`.
pub fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    match s.split_once(':') {
        None => Ok((parse_id("--user", s, s)?, None)),
        Some((u, g)) => Ok((parse_id("--user", u, s)?, Some(parse_id("--user", g, s)?))),
    }
}

/// The process file: a path (also /dev/fd/N or /proc/self/fd/N, read
/// before inherited fds are closed) or `-` for stdin.
fn read_process_file(f: &str) -> Result<Vec<u8>> {
    if f == "-" {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).map_err(|e| Error::io("stdin", e))?;
        return Ok(v);
    }
    std::fs::read(f).map_err(|e| Error::io(f, e))
}

/// The process to run: `--process FILE`, else the container's process with
/// the command-line overrides.
fn build_process(spec: &Spec, o: &ExecOpts, file: Option<&[u8]>) -> Result<Process> {
    if let (Some(data), Some(f)) = (file, &o.process_file) {
        let p: Process = husk_oci::spec::from_json(data).map_err(|e| e.within(&format!("--process {f}: ")))?;
        husk_oci::spec::validate_process(&p, "process")?;
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
            p.user.additional_gids.push(parse_id("--additional-gids", part, g)?);
        }
    }
    if !o.caps.is_empty() {
        // Added capabilities go to bounding, effective and permitted only:
        // never to inheritable or ambient, where a program run by the
        // process would keep them (runc CVE-2022-29162).
        let mut c = p.capabilities.clone().unwrap_or_default();
        for cap in &o.caps {
            let up = cap.to_ascii_uppercase();
            let name = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
            for set in [&mut c.bounding, &mut c.effective, &mut c.permitted] {
                let v = set.get_or_insert_with(Vec::new);
                if !v.contains(&name) {
                    v.push(name.clone());
                }
            }
        }
        p.capabilities = Some(c);
    }
    if o.no_new_privs {
        p.no_new_privileges = true;
    }
    husk_oci::spec::validate_process(&p, "process")?;
    Ok(p)
}

/// Namespaces of `pid` that differ from ours, opened, in join order.
fn container_namespaces(pid: i32) -> Result<Vec<(NamespaceKind, OwnedFd)>> {
    let mut v = Vec::new();
    for kind in NamespaceKind::ALL {
        let file = kind.proc_name();
        let theirs = format!("/proc/{pid}/ns/{file}");
        let (Ok(a), Ok(b)) = (std::fs::read_link(&theirs), std::fs::read_link(format!("/proc/self/ns/{file}"))) else {
            continue;
        };
        if a == b {
            continue;
        }
        let fd = nix::fcntl::open(theirs.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .ctx(|| format!("open {theirs}"))?;
        v.push((kind, fd));
    }
    Ok(v)
}

/// The cgroup directories to join: the container's own, or with
/// `--cgroup` a sub-cgroup of it (every hierarchy, or the named
/// controllers' ones), as runc.
fn join_dirs(cg: &husk_cgroups::Cgroup, specs: &[String]) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<(Vec<String>, PathBuf)> = cg.hierarchies.iter().map(|h| (h.controllers.clone(), h.dir.clone())).collect();
    for s in specs {
        let (ctrls, sub) = match s.split_once(':') {
            Some((c, p)) if !cg.is_v2() => (c.split(',').map(str::to_string).collect::<Vec<_>>(), p),
            _ => (Vec::new(), s.as_str()),
        };
        let sub = sub.trim_start_matches('/');
        if sub.split('/').any(|c| c == "..") {
            return Err(Error::Usage(format!("--cgroup: {s} is not a sub cgroup path")));
        }
        for c in &ctrls {
            if !cg.hierarchies.iter().any(|h| h.controllers.iter().any(|x| x == c)) {
                return Err(Error::Usage(format!("--cgroup {s}: unknown controller {c:?}")));
            }
        }
        for (hc, dir) in dirs.iter_mut() {
            if ctrls.is_empty() || ctrls.iter().any(|c| hc.contains(c)) {
                let base = cg.hierarchies.iter().find(|h| &h.controllers == hc).map(|h| h.dir.clone()).unwrap_or_default();
                *dir = if sub.is_empty() { base } else { base.join(sub) };
            }
        }
    }
    Ok(dirs.into_iter().map(|(_, d)| d).collect())
}

fn add_to_cgroups(dirs: &[PathBuf], unified: Option<&Path>, pid: i32) -> Result<()> {
    for d in dirs.iter().map(PathBuf::as_path).chain(unified) {
        let f = d.join("cgroup.procs");
        std::fs::write(&f, pid.to_string()).map_err(|e| {
            let desc = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)).desc().to_ascii_lowercase();
            Error::Other(format!("exec: adding pid {pid} to {}: {desc}", f.display()))
        })?;
    }
    Ok(())
}

pub fn exec(root: &Path, id: &str, o: &ExecOpts) -> Result<i32> {
    // CVE-2019-5736: the child enters the container as this binary: run it
    // from a sealed copy. The process file may be an inherited fd
    // (/dev/fd/N): read it before the fds we were given are closed.
    hardening::reexec_sealed()?;
    let file = match &o.process_file {
        Some(f) => Some(read_process_file(f)?),
        None => None,
    };
    // CVE-2024-21626: fds leaked to us must not sit in the child while it
    // is in the container.
    hardening::close_from(3 + o.preserve_fds as i32);
    let st = State::load(root, id)?;
    match st.status() {
        Status::Running | Status::Created => {}
        Status::Paused if o.ignore_paused => {}
        Status::Paused => return Err(Error::state(id, "cannot exec in a paused container (use --ignore-paused to override)")),
        s => return Err(Error::state(id, format!("cannot exec in a container that is {}", s.as_str()))),
    }
    let spec = super::saved_spec(root, id)?;
    let p = build_process(&spec, o, file.as_deref())?;
    if p.terminal && o.console_socket.is_none() && o.detach {
        return Err(Error::Usage("exec: --tty with --detach needs --console-socket".into()));
    }
    if let Some(pf) = &o.pid_file {
        let dir = Path::new(pf).parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Error::Other(format!("--pid-file {pf}: {} is not a directory", dir.display())));
        }
    }
    let cg_dirs = match &st.cgroup {
        Some(cg) => join_dirs(cg, &o.cgroups)?,
        None if !o.cgroups.is_empty() => return Err(Error::state(id, "--cgroup: the container has no cgroup")),
        None => Vec::new(),
    };
    let caps = CapSets::from_config(&p.capabilities);
    let seccomp = crate::seccomp::prepare(&spec)?;
    let console = match &o.console_socket {
        Some(s) => Some(child::pty::connect_socket(s)?),
        None => None,
    };
    let nss = container_namespaces(st.pid)?;
    let in_userns = nss.iter().any(|(k, _)| *k == NamespaceKind::User) || spec.ns(NamespaceKind::User).is_some();
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    let (parent, child_end) = channel::pair()?;

    // pid and time namespaces apply to our children. Ours are kept open to
    // go back to after the fork: while our children's pid namespace differs
    // from our own, the kernel refuses to start threads (the tty proxy).
    let mut ours = Vec::new();
    for (kind, fd) in nss.iter().filter(|(k, _)| namespaces::for_children(*k)) {
        let file = if *kind == NamespaceKind::Pid { "pid_for_children" } else { "time_for_children" };
        let own = format!("/proc/self/ns/{file}");
        let own_fd = nix::fcntl::open(own.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .ctx(|| format!("open {own}"))?;
        namespaces::join(*kind, fd)?;
        ours.push((*kind, own_fd));
    }
    let state = serde_json::to_value(st.spec_state(st.status())).unwrap_or_default();
    // SAFETY: single-threaded; the child ends in execve or _exit.
    let fork = unsafe { nix::unistd::fork() }.ctx(|| "fork")?;
    let pid = match fork {
        nix::unistd::ForkResult::Child => {
            drop(err_r);
            drop(parent);
            let e = child_main(&p, &nss, caps, in_userns, seccomp.as_ref(), console.as_ref(), &child_end, o, state);
            let _ = nix::unistd::write(&err_w, e.to_string().as_bytes());
            // SAFETY: _exit ends the child without running the parent's handlers.
            unsafe { libc::_exit(127) };
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    crate::fault::point("exec: child forked");
    for (kind, fd) in &ours {
        if let Err(e) = namespaces::join(*kind, fd) {
            crate::log::warn(&format!("return to our own {} namespace: {e}", kind.name()));
        }
    }
    drop(err_w);
    drop(child_end);
    // Join the container's cgroup, then let the child go on.
    let unified = st.cgroup.as_ref().and_then(|c| c.unified.as_deref());
    if let Err(e) = add_to_cgroups(&cg_dirs, unified, pid.as_raw()) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    crate::fault::point("exec: child in the cgroup");
    let _ = parent.send(Msg::Go);
    crate::fault::point("exec: child released");
    let mut pty = None;
    if p.terminal && console.is_none() {
        if let Ok(Msg::Fd(fd)) = parent.recv() {
            pty = Some(fd);
        }
    }
    drop(parent);
    let mut msg = String::new();
    let _ = std::fs::File::from(err_r).read_to_string(&mut msg);
    if !msg.is_empty() {
        let _ = waitpid(pid, None);
        return Err(Error::Init(msg));
    }
    if let Some(pf) = &o.pid_file {
        if let Err(e) = state::write_atomic_mode(Path::new(pf), pid.as_raw().to_string().as_bytes(), 0o644) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(e);
        }
    }
    crate::fault::point("exec: program running");
    if o.detach {
        return Ok(0);
    }
    crate::signals::forward_to(pid.as_raw());
    let proxy = pty.map(crate::tty_proxy::Proxy::start);
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
fn child_main(
    p: &Process,
    nss: &[(NamespaceKind, OwnedFd)],
    caps: Option<CapSets>,
    in_userns: bool,
    seccomp: Option<&crate::seccomp::Filter>,
    console: Option<&OwnedFd>,
    ch: &channel::Channel,
    o: &ExecOpts,
    state: serde_json::Value,
) -> Error {
    // Until the execve, container processes must not reach our
    // /proc/PID/exe or /proc/PID/fd (the exec makes us dumpable again).
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Error::sys("prctl(PR_SET_DUMPABLE)", nix::errno::Errno::last());
    }
    let r = (|| -> Result<process::Program> {
        ch.expect(Msg::Go)?;
        for (kind, fd) in nss.iter().filter(|(k, _)| !namespaces::for_children(*k)) {
            namespaces::join(*kind, fd)?;
        }
        let f = process::Finish { process: p, caps, seccomp, state, host_pid: 0, in_userns, console, channel: ch, dev_console: false };
        process::finish(&f, 0)
    })();
    let prog = match r {
        Ok(prog) => prog,
        Err(e) => return e,
    };
    process::cloexec_from(3 + o.preserve_fds as i32);
    process::exec(&prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_forms() {
        assert_eq!(parse_user("0").unwrap(), (0, None));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        assert_eq!(parse_user("2147483647").unwrap(), (2147483647, None));
        for bad in [
            "",
            ":",
            "1000:",
            ":5",
            "root",
            "1e3",
            "-1",
            "1000:100:5",
            " 1",
            "99999999999",
            "0x10",
            "4294967295",
            "0:4294967295",
            "2147483648",
        ] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn added_caps_stay_out_of_inheritable_and_ambient() {
        let spec = Spec { process: Some(Process { args: vec!["sh".into()], cwd: "/".into(), ..Default::default() }), ..Default::default() };
        let o = ExecOpts { caps: vec!["kill".into(), "CAP_KILL".into()], args: vec!["sh".into()], ..Default::default() };
        let p = build_process(&spec, &o, None).unwrap();
        let c = p.capabilities.unwrap();
        assert_eq!(c.effective.as_deref(), Some(&["CAP_KILL".to_string()][..]));
        assert_eq!(c.bounding, c.permitted);
        assert!(c.inheritable.is_none() && c.ambient.is_none());
        let o = ExecOpts { additional_gids: vec!["5,4294967295".into()], args: vec!["sh".into()], ..Default::default() };
        assert!(build_process(&spec, &o, None).is_err());
    }
}
