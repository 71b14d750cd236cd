//! Putting a compiled filter into the kernel, and handing a notify listener
//! fd to the process at `listenerPath`.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::bpf::Insn;
use super::compile::Program;
use super::error::Error;

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const Insn,
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

/// Installs the filter in the calling thread (and, with TSYNC, its siblings).
///
/// Does not allocate, so it can run between fork and exec. The caller must
/// either have set `PR_SET_NO_NEW_PRIVS` or hold CAP_SYS_ADMIN, as seccomp(2)
/// requires. Returns the listener fd when the profile uses SCMP_ACT_NOTIFY.
pub fn install(p: &Program) -> Result<Option<OwnedFd>, Error> {
    let prog = SockFprog { len: p.insns.len() as libc::c_ushort, filter: p.insns.as_ptr() };
    // SAFETY: `prog` points at `p.insns`, alive and unchanged for the whole
    // call; the kernel copies the instructions before returning.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, p.flags as libc::c_ulong, &prog as *const SockFprog) };
    if r < 0 {
        return Err(Error::Install { errno: last_errno() });
    }
    if p.notify {
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns a
        // new fd that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(r as RawFd) }));
    }
    if r > 0 {
        // TSYNC without a listener: r is the id of a thread that could not
        // be synchronised.
        return Err(Error::Install { errno: libc::ESRCH });
    }
    Ok(None)
}

/// The `linux.seccomp.flags` values this kernel accepts. Probed as runc
/// does: seccomp(2) with the flag and no program fails with EFAULT when the
/// flag is known (it got as far as reading the program), EINVAL when not.
pub fn supported_flags() -> Vec<&'static str> {
    let mut v = Vec::new();
    for (name, bit) in super::compile::FLAGS {
        // SAFETY: a null program pointer; the kernel checks the flags first
        // and then fails to copy the program, touching none of our memory.
        let r = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, bit as libc::c_ulong, std::ptr::null::<SockFprog>()) };
        if r < 0 && last_errno() == libc::EFAULT {
            v.push(name);
        }
    }
    v
}

/// Connects to the agent's unix stream socket at `listenerPath`. The
/// runtime does it before the container's init enters its mount namespace,
/// where the path is no longer reachable.
pub fn connect_listener(path: &str) -> Result<OwnedFd, Error> {
    UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::Connect { path: path.to_string(), errno: e.raw_os_error().unwrap_or(libc::EIO) })
}

/// Sends the listener `fd` (SCM_RIGHTS) over the connected `sock` with
/// `state_json` as the payload, as runc does for the seccomp agent. `path`
/// names the socket in errors.
pub fn send_listener(path: &str, sock: BorrowedFd, fd: BorrowedFd, state_json: &[u8]) -> Result<(), Error> {
    let err = |errno: i32| Error::Listener { path: path.to_string(), errno };
    let fds = [fd.as_raw_fd()];
    // The fd rides on the first message; a payload the socket takes only in
    // part is finished with plain sends.
    let data: &[u8] = if state_json.is_empty() { b"{}" } else { state_json };
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let mut sent = loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(err(e as i32)),
        }
    };
    while sent < data.len() {
        let iov = [IoSlice::new(&data[sent..])];
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &[], MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(err(e as i32)),
        }
    }
    Ok(())
}

/// The payload runc sends with the listener fd (`ContainerProcessState` of
/// the runtime spec): `fds` names the one fd sent, `state` is the container
/// state as `husk state` prints it.
pub fn process_state(oci_version: &str, pid: i32, metadata: &str, state: &serde_json::Value) -> Vec<u8> {
    let v = serde_json::json!({
        "ociVersion": oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}
