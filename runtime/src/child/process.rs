//! Finishing the container process, for the container's init and for
//! `exec` alike ([`finish`]): session and terminal, rlimits, cwd, seccomp,
//! identity and capabilities, no-new-privileges, the program; then the
//! final exec.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use husk_oci::spec::Process;
use nix::errno::Errno;

use super::caps::{self, CapSets};
use super::pty;
use crate::channel::Channel;
use crate::error::{Ctx, Error, Result};
use crate::inroot;
use crate::seccomp::Filter;

/// Everything `finish` needs, prepared by the parent before the fork.
pub struct Finish<'a> {
    pub process: &'a Process,
    pub caps: Option<CapSets>,
    pub seccomp: Option<&'a Filter>,
    /// The runtime spec's state, for the seccomp agent.
    pub state: serde_json::Value,
    /// This process's pid as the host sees it (for the seccomp agent).
    pub host_pid: i32,
    pub in_userns: bool,
    /// `--console-socket`, connected; without one a terminal's master goes
    /// to the parent over `channel`.
    pub console: Option<&'a OwnedFd>,
    pub channel: &'a Channel,
    /// Bind the pty slave over /dev/console (the init's terminal).
    pub dev_console: bool,
}

/// What is left to do once the process is finished: exec it.
pub struct Program {
    pub path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
}

/// The setup both the init and `exec` do, in runc's order: the seccomp
/// filter goes in while CAP_SYS_ADMIN is still held when there is no
/// noNewPrivileges, else as late as possible, after the program is found.
pub fn finish(f: &Finish, listen_fds: u32) -> Result<Program> {
    let p = f.process;
    // A session of its own, as runc gives every container process: the
    // terminal (if any) becomes its controlling tty below.
    match nix::unistd::setsid() {
        Ok(_) | Err(Errno::EPERM) => {}
        Err(e) => return Err(Error::sys("setsid", e)),
    }
    if p.terminal {
        let (master, slave) = pty::open(p.console_size.as_ref())?;
        // The terminal belongs to the process's user (its group stays the
        // devpts gid, normally tty), as with runc.
        nix::unistd::fchown(slave.as_fd(), Some(nix::unistd::Uid::from_raw(p.user.uid)), None)
            .ctx(|| "chown the terminal to process.user.uid")?;
        if f.dev_console {
            pty::bind_console(slave.as_fd())?;
        }
        match f.console {
            Some(sock) => pty::send_fd(sock.as_fd(), "/dev/ptmx", master.as_fd())?,
            None => f.channel.send_fd(master.as_fd())?,
        }
        drop(master);
        pty::make_stdio(slave.as_fd())?;
    }
    set_rlimits(p)?;
    // cwd is resolved (openat2, inside the root) before a filter that may
    // not allow openat2; a directory only the container's user may enter is
    // entered after the identity change instead (as runc retries).
    let cwd_later = match enter_cwd(&p.cwd) {
        Ok(()) => false,
        Err(Errno::EACCES) | Err(Errno::EPERM) => true,
        Err(e) => return Err(cwd_error(&p.cwd, e)),
    };
    if !p.no_new_privileges {
        if let Some(s) = f.seccomp {
            crate::seccomp::install(s, f.host_pid, &f.state)?;
        }
    }
    set_identity(p, f.caps.as_ref(), f.in_userns)?;
    if cwd_later {
        enter_cwd(&p.cwd).map_err(|e| cwd_error(&p.cwd, e))?;
    }
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::sys("noNewPrivileges", Errno::last()));
        }
    }
    let path = find_executable(p)?;
    let env = container_env(p, listen_fds);
    let prog = Program { path, args: cstrings(&p.args, "process.args")?, env: cstrings(&env, "process.env")? };
    if p.no_new_privileges {
        if let Some(s) = f.seccomp {
            crate::seccomp::install(s, f.host_pid, &f.state)?;
        }
    }
    Ok(prog)
}

fn cwd_error(cwd: &str, e: Errno) -> Error {
    Error::Other(format!("process.cwd {cwd:?}: {}", e.desc()))
}

/// The kernel's number of an rlimit name (validated at parse time).
fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as libc::c_int)
}

fn set_rlimits(p: &Process) -> Result<()> {
    for r in &p.rlimits {
        let Some(res) = rlimit_resource(&r.typ) else {
            return Err(Error::config("process.rlimits", format!("unknown rlimit {:?}", r.typ)));
        };
        let lim = libc::rlimit { rlim_cur: r.soft as libc::rlim_t, rlim_max: r.hard as libc::rlim_t };
        // SAFETY: setrlimit reads a struct we own.
        if unsafe { libc::setrlimit(res as _, &lim) } != 0 {
            return Err(Error::sys(format!("process.rlimits {}", r.typ), Errno::last()));
        }
    }
    Ok(())
}

/// Supplementary groups, gid, uid and capabilities, in the order that keeps
/// the privileges needed by each step.
fn set_identity(p: &Process, caps: Option<&CapSets>, in_userns: bool) -> Result<()> {
    let u = &p.user;
    if let Some(c) = caps {
        caps::drop_bounding(c.bounding)?;
    }
    // setgroups is denied in a user namespace whose setgroups file says deny.
    let groups: Vec<nix::unistd::Gid> = u.additional_gids.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
    match nix::unistd::setgroups(&groups) {
        Ok(()) => {}
        Err(Errno::EPERM) if in_userns && groups.is_empty() => {}
        Err(e) => return Err(Error::sys("process.user.additionalGids: setgroups", e)),
    }
    let gid = nix::unistd::Gid::from_raw(u.gid);
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("process.user.gid: setgid {}", u.gid))?;
    // Keep the permitted set across the uid change; capset trims it after.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let uid = nix::unistd::Uid::from_raw(u.uid);
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("process.user.uid: setuid {}", u.uid))?;
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(c) = caps {
        caps::apply(c)?;
    }
    if let Some(m) = u.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m & 0o777));
    }
    Ok(())
}

/// chdir to `cwd` resolved inside the (already switched) root: a cwd that
/// escapes through a /proc/self/fd magic link is refused (CVE-2024-21626).
fn enter_cwd(cwd: &str) -> std::result::Result<(), Errno> {
    let root = nix::fcntl::open("/", nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    let fd = inroot::open_in(root.as_fd(), cwd, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY)?;
    nix::unistd::fchdir(&fd)
}

/// `PATH` from the process env, or the usual default.
fn path_var(env: &[String]) -> String {
    env.iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .map(str::to_string)
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
}

/// Finds the program like execvp would, in the current root.
pub fn find_executable(p: &Process) -> Result<CString> {
    let prog = &p.args[0];
    let check = |path: &str| -> std::result::Result<(), Errno> {
        let st = nix::sys::stat::stat(path)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            // What execve says (and runc): the docker CLI maps it to 126.
            return Err(Errno::EACCES);
        }
        nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)
    };
    let c = |s: String| CString::new(s).map_err(|_| Error::config("process.args[0]", "NUL byte"));
    if prog.contains('/') {
        return match check(prog) {
            Ok(()) => c(prog.clone()),
            Err(e) => Err(Error::Other(format!("exec {prog:?}: {}", go_errstr(e)))),
        };
    }
    for dir in path_var(&p.env).split(':') {
        let cand = if dir.is_empty() { prog.clone() } else { format!("{}/{prog}", dir.trim_end_matches('/')) };
        if check(&cand).is_ok() {
            return c(cand);
        }
    }
    Err(Error::Other(format!("exec {prog:?}: executable file not found in $PATH")))
}

/// An errno as Go spells it ("no such file or directory", "permission
/// denied"): the docker CLI picks `run`'s exit status (127, 126) by matching
/// those lowercase strings in the runtime's error, case-sensitively.
fn go_errstr(e: Errno) -> String {
    let d = e.desc();
    let mut c = d.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

fn cstrings(v: &[String], field: &str) -> Result<Vec<CString>> {
    v.iter().map(|s| CString::new(s.as_str()).map_err(|_| Error::config(field, format!("NUL byte in {s:?}")))).collect()
}

/// Marks every fd from `first` up close-on-exec.
pub fn cloexec_from(first: RawFd) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if r != 0 {
        // Older kernels: walk /proc/self/fd.
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
            for fd in fds.into_iter().filter(|&f| f >= first) {
                // SAFETY: fcntl on an integer fd; invalid fds just fail.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

/// Environment with LISTEN_FDS/LISTEN_PID adjusted for the container.
fn container_env(p: &Process, listen_fds: u32) -> Vec<String> {
    let mut env: Vec<String> = p.env.clone();
    if listen_fds > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={listen_fds}"));
        env.push("LISTEN_PID=1".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(p.user.uid).unwrap_or_else(|| "/".into())));
    }
    env
}

/// HOME from the container's /etc/passwd (called after the root switch).
fn home_of(uid: u32) -> Option<String> {
    let pw = std::fs::read_to_string("/etc/passwd").ok()?;
    pw.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok()? == uid).then(|| f[5].to_string())
    })
}

/// The final execve, with SIGPIPE back at its default (the child ignores
/// it while it may write to a pipe nobody reads).
pub fn exec(p: &Program) -> Error {
    // SAFETY: setting a signal disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    match nix::unistd::execve(&p.path, &p.args, &p.env) {
        Err(e) => Error::Other(format!("exec {:?}: {}", p.path, go_errstr(e))),
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_errors_spell_errno_like_go() {
        assert_eq!(go_errstr(Errno::ENOENT), "no such file or directory");
        assert_eq!(go_errstr(Errno::EACCES), "permission denied");
        assert_eq!(go_errstr(Errno::ENOEXEC), "exec format error");
    }

    #[test]
    fn every_spec_rlimit_has_a_resource() {
        for n in husk_oci::names::RLIMITS {
            assert_eq!(rlimit_resource(n).map(|r| r as u32), husk_oci::names::rlimit(n), "{n}");
        }
    }

    #[test]
    fn env_gets_home_and_listen_fds() {
        let p = Process { env: vec!["PATH=/bin".into(), "LISTEN_FDS=9".into()], ..Default::default() };
        let e = container_env(&p, 2);
        assert!(e.contains(&"LISTEN_FDS=2".to_string()) && e.contains(&"LISTEN_PID=1".to_string()));
        assert!(!e.contains(&"LISTEN_FDS=9".to_string()));
        assert!(e.iter().any(|x| x.starts_with("HOME=")));
        let p = Process { env: vec!["HOME=/h".into()], ..Default::default() };
        assert_eq!(container_env(&p, 0), vec!["HOME=/h".to_string()]);
        assert_eq!(path_var(&[]), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
}
