//! The container process: rlimits, identity, capabilities, cwd, fds, exec.

use std::ffi::CString;
use std::os::fd::AsFd;

use nix::errno::Errno;

use crate::caps::{self, CapSets};
use crate::config::Process;
use crate::error::{Ctx, Error, Result};
use crate::fsutil;

pub fn rlimit_resource(name: &str) -> Option<libc::c_int> {
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

pub fn set_rlimits(p: &Process) -> Result<()> {
    for r in &p.rlimits {
        let res = rlimit_resource(&r.typ).unwrap_or(-1);
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
pub fn set_identity(p: &Process, caps: Option<&CapSets>, in_userns: bool) -> Result<()> {
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
pub fn enter_cwd(cwd: &str) -> Result<()> {
    let root = nix::fcntl::open("/", nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .ctx(|| "open /")?;
    let fd = fsutil::open_in(root.as_fd(), cwd, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY)
        .map_err(|e| Error::Other(format!("process.cwd {cwd:?}: {}", e.desc())))?;
    nix::unistd::fchdir(&fd).ctx(|| format!("process.cwd {cwd:?}"))?;
    Ok(())
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
            return Err(Errno::EISDIR);
        }
        nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)
    };
    if prog.contains('/') {
        return match check(prog) {
            Ok(()) => Ok(CString::new(prog.as_str()).map_err(|_| Error::Other("process.args[0]: NUL byte".into()))?),
            Err(e) => Err(Error::Other(format!("exec {prog:?}: {}", e.desc()))),
        };
    }
    for dir in path_var(&p.env).split(':') {
        let cand = if dir.is_empty() { prog.clone() } else { format!("{}/{prog}", dir.trim_end_matches('/')) };
        if check(&cand).is_ok() {
            return CString::new(cand).map_err(|_| Error::Other("process.args[0]: NUL byte".into()));
        }
    }
    Err(Error::Other(format!("exec {prog:?}: executable file not found in $PATH")))
}

pub fn cstrings(v: &[String], field: &str) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| Error::Other(format!("{field}: NUL byte in {s:?}"))))
        .collect()
}

/// Marks every fd from `first` up close-on-exec.
pub fn cloexec_from(first: i32) {
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

/// Closes every fd from `first` up. `husk create` calls it first thing:
/// fds its caller leaked to it (not close-on-exec) must not be inherited by
/// the container's init, where a process joined by `husk exec` could reach
/// them through /proc/1/fd before start (CVE-2024-21626).
pub fn close_from(first: i32) {
    // SAFETY: close_range only closes fds; nothing of ours is open above
    // `first` when this is called.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, 0 as libc::c_uint) };
    if r != 0 {
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
            for fd in fds.into_iter().filter(|&f| f >= first) {
                // SAFETY: closing an integer fd; the directory's own fd is
                // already closed by then or fails harmlessly.
                unsafe { libc::close(fd) };
            }
        }
    }
}

const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// CVE-2019-5736: a process that enters a container (the init of `create`,
/// the child of `exec`) is this binary until its final execve, and a
/// trojaned program in the container (a link to /proc/self/exe, or a script
/// with `#!/proc/self/exe`) makes that execve run this binary again, inside
/// the container, where /proc/PID/exe reaches it for writing once no husk
/// runs. So those commands first re-exec themselves from a sealed memfd
/// copy: /proc/self/exe is then an anonymous file nobody can write, and the
/// file on the host is never reachable from inside. Returns when already
/// running from a sealed copy; otherwise only on error.
pub fn reexec_sealed() -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut exe = std::fs::File::open("/proc/self/exe").map_err(|e| Error::io("/proc/self/exe", e))?;
    // SAFETY: fcntl F_GET_SEALS on an fd we own; fails on non-memfd files.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Ok(());
    }
    let name = c"husk";
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps the copy executable where vm.memfd_noexec
    // would otherwise deny it; older kernels reject the flag.
    // SAFETY: memfd_create with a valid C string; returns a new fd or -1.
    let mut fd = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), base | 0x10) };
    if fd < 0 && Errno::last() == Errno::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), base) };
    }
    if fd < 0 {
        return Err(Error::sys("memfd_create (sealed copy of husk)", Errno::last()));
    }
    // SAFETY: a fresh fd we own.
    let mem = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut f = std::fs::File::from(mem);
    std::io::copy(&mut exe, &mut f).map_err(|e| Error::io("/proc/self/exe (copy to memfd)", e))?;
    // SAFETY: fcntl F_ADD_SEALS on our memfd.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(Error::sys("seal the memfd copy of husk", Errno::last()));
    }
    drop(exe);
    let args = std::env::args_os().map(|a| CString::new(std::os::unix::ffi::OsStringExt::into_vec(a))).collect::<std::result::Result<Vec<_>, _>>();
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = std::os::unix::ffi::OsStringExt::into_vec(k);
            kv.push(b'=');
            kv.extend(std::os::unix::ffi::OsStringExt::into_vec(v));
            CString::new(kv)
        })
        .collect::<std::result::Result<Vec<_>, _>>();
    let (Ok(args), Ok(env)) = (args, env) else {
        return Err(Error::Other("re-exec: NUL byte in an argument or the environment".into()));
    };
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: execveat with NUL-terminated arrays of C strings that outlive
    // the call; AT_EMPTY_PATH runs the memfd itself (an ELF, so its
    // close-on-exec flag does not matter). Returns only on failure.
    unsafe { libc::syscall(libc::SYS_execveat, f.as_raw_fd(), c"".as_ptr(), argv.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH) };
    Err(Error::sys("re-exec from the sealed memfd copy", Errno::last()))
}

/// Environment with LISTEN_FDS/LISTEN_PID adjusted for the container.
pub fn container_env(p: &Process, listen_fds: u32) -> Vec<String> {
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

/// The final execve, with SIGPIPE back at its default (the init ignores it
/// while it may write to the exec pipe).
pub fn exec(path: &CString, args: &[CString], env: &[CString]) -> Error {
    // SAFETY: setting a signal disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    match nix::unistd::execve(path, args, env) {
        Err(e) => Error::Other(format!("exec {:?}: {}", path, e.desc())),
        Ok(never) => match never {},
    }
}
