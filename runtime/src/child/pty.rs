//! Terminals: a pty from the container's own devpts, its master sent over
//! `--console-socket` (SCM_RIGHTS), its slave as the process's stdio and
//! /dev/console.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr};

use crate::error::{Ctx, Error, Result};
use crate::inroot;
use husk_oci::spec::ConsoleSize;

/// Connects to the console socket (the parent does it, before any
/// namespace is entered).
pub fn connect_socket(path: &str) -> Result<OwnedFd> {
    let fd = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).ctx(|| "console socket")?;
    let addr = UnixAddr::new(path).ctx(|| format!("--console-socket {path}"))?;
    connect(fd.as_raw_fd(), &addr).ctx(|| format!("--console-socket {path}: connect"))?;
    Ok(fd)
}

/// Sends `fd` over a unix socket with `name` as the payload (runc's format).
pub fn send_fd(sock: BorrowedFd, name: &str, fd: BorrowedFd) -> Result<()> {
    let raw = [fd.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&raw)], MsgFlags::empty(), None)
        .ctx(|| "send terminal over the console socket")?;
    Ok(())
}

const TIOCGPTPEER: libc::c_ulong = 0x5441;

/// Opens a pty pair in the container's devpts (after the root switch).
/// Returns (master, slave).
pub fn open(size: Option<&ConsoleSize>) -> Result<(OwnedFd, OwnedFd)> {
    let root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ctx(|| "open /")?;
    let master = inroot::open_in(root.as_fd(), "/dev/pts/ptmx", OFlag::O_RDWR | OFlag::O_NOCTTY)
        .or_else(|_| inroot::open_in(root.as_fd(), "/dev/ptmx", OFlag::O_RDWR | OFlag::O_NOCTTY))
        .ctx(|| "open /dev/ptmx in the container")?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int we own.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(Error::sys("unlock pty", Errno::last()));
    }
    // The slave is opened through the master, never by its /dev/pts/N path
    // (which the rootfs could have replaced: CVE-2025-52565).
    // SAFETY: TIOCGPTPEER returns a new fd or -1.
    let s = unsafe { libc::ioctl(master.as_raw_fd(), TIOCGPTPEER as _, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if s < 0 {
        return Err(Error::sys("open pty slave", Errno::last()));
    }
    // SAFETY: `s` is a fresh fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(s as RawFd) };
    if let Some(sz) = size {
        let ws = libc::winsize { ws_row: sz.height, ws_col: sz.width, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads a struct we own.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    Ok((master, slave))
}

/// Binds the pty slave over /dev/console (a symlink planted there is
/// replaced by a plain file first).
pub fn bind_console(slave: BorrowedFd) -> Result<()> {
    let root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ctx(|| "open /")?;
    console_placeholder(root.as_fd())?;
    let target = inroot::open_path_nofollow_in(root.as_fd(), "/dev/console").ctx(|| "open /dev/console")?;
    mount(Some(inroot::fd_path(slave).as_str()), inroot::fd_path(target.as_fd()).as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .ctx(|| "bind /dev/console")
}

/// A plain file at /dev/console inside `root` to bind the terminal on
/// (a symlink or node planted there is replaced). Made while the
/// container's /dev is still writable; on a read-only /dev an existing
/// file is used as it is.
pub fn console_placeholder(root: BorrowedFd) -> Result<()> {
    let dev = inroot::mkdir_all_in(root, "/dev", 0o755)?;
    let dir = inroot::reopen_dir(dev.as_fd()).ctx(|| "open /dev")?;
    if let Ok(st) = nix::sys::stat::fstatat(dir.as_fd(), "console", nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            let _ = nix::unistd::unlinkat(dir.as_fd(), "console", nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
    }
    match nix::fcntl::openat(
        dir.as_fd(),
        "console",
        OFlag::O_CREAT | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    ) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::sys("create /dev/console", e)),
    }
}

/// Makes the slave the controlling terminal (of our new session) and the
/// stdio of this process.
pub fn make_stdio(slave: BorrowedFd) -> Result<()> {
    // SAFETY: TIOCSCTTY with an integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::sys("set controlling terminal", Errno::last()));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the stdio fds.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Error::sys("dup2 terminal", Errno::last()));
        }
    }
    Ok(())
}
