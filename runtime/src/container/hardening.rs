//! What `create` and `exec` do first, before they touch a container:
//! close fds the caller leaked to them, and run from a sealed copy of
//! this binary (docs/security.md: CVE-2024-21626, CVE-2019-5736).

use std::ffi::CString;

use nix::errno::Errno;

use crate::error::{Error, Result};

/// Closes every fd from `first` up but our own `--log` file. `husk
/// create` calls it first thing: fds its caller leaked to it (not
/// close-on-exec) must not be inherited by the container's init, where a
/// process joined by `husk exec` could reach them through /proc/1/fd before
/// start (CVE-2024-21626). The log file is close-on-exec.
pub fn close_from(first: i32) {
    match crate::log::fd().filter(|&l| l >= first) {
        Some(l) => {
            close_range(first, l - 1);
            close_range(l + 1, i32::MAX);
        }
        None => close_range(first, i32::MAX),
    }
}

fn close_range(first: i32, last: i32) {
    if first > last {
        return;
    }
    // SAFETY: close_range only closes fds; nothing of ours but the log file
    // (outside the range) is open above `first` when this is called.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0 as libc::c_uint) };
    if r != 0 {
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
            for fd in fds.into_iter().filter(|&f| f >= first && f <= last) {
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
    let args =
        std::env::args_os().map(|a| CString::new(std::os::unix::ffi::OsStringExt::into_vec(a))).collect::<std::result::Result<Vec<_>, _>>();
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
