//! The parent ⇄ child channel (container init, or exec child): one
//! SOCK_SEQPACKET datagram per message, a tag byte then a payload. The
//! child blocks on it right after the clone until the parent has recorded
//! it, so a parent that dies early takes the child with it (EOF).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};

use crate::error::{Ctx, Error, Result};

#[derive(Debug)]
pub enum Msg {
    /// parent → child: recorded in the state, in the cgroup, id maps
    /// written: go on.
    Go,
    /// child → parent: mounts are ready; run prestart/createRuntime hooks.
    Hooks,
    /// parent → child: hooks done; payload is the state JSON for
    /// createContainer hooks.
    HooksDone(Vec<u8>),
    /// child → parent: waiting for start.
    Ready,
    /// child → parent: setup failed.
    Error(String),
    /// child → parent: the pty master (attached run without a console socket).
    Fd(OwnedFd),
}

pub struct Channel {
    pub fd: OwnedFd,
}

/// (parent end, child end).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).ctx(|| "socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, m: Msg) -> Result<()> {
        let (tag, payload): (u8, &[u8]) = match &m {
            Msg::Go => (b'g', b""),
            Msg::Hooks => (b'h', b""),
            Msg::HooksDone(s) => (b'H', s),
            Msg::Ready => (b'r', b""),
            Msg::Error(s) => (b'e', s.as_bytes()),
            Msg::Fd(fd) => return self.send_fd(unsafe_borrow(fd)),
        };
        let mut buf = Vec::with_capacity(1 + payload.len());
        buf.push(tag);
        buf.extend_from_slice(payload);
        let iov = [IoSlice::new(&buf)];
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, &[], MsgFlags::MSG_NOSIGNAL, None).ctx(|| "channel send")?;
        Ok(())
    }

    pub fn send_fd(&self, fd: BorrowedFd) -> Result<()> {
        let raw = [fd.as_raw_fd()];
        let iov = [IoSlice::new(b"f")];
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&raw)], MsgFlags::MSG_NOSIGNAL, None)
            .ctx(|| "channel send fd")?;
        Ok(())
    }

    /// Receives one message; EOF (the peer died) is an error.
    pub fn recv(&self) -> Result<Msg> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(r) => {
                    let mut fd = None;
                    for c in r.cmsgs().ctx(|| "channel recv")? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            // SAFETY: the kernel just gave us this fd.
                            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("channel recv", e)),
            }
        };
        if n == 0 {
            return Err(Error::Init("container init exited during setup".into()));
        }
        let payload = buf[1..n].to_vec();
        Ok(match buf[0] {
            b'g' => Msg::Go,
            b'h' => Msg::Hooks,
            b'H' => Msg::HooksDone(payload),
            b'r' => Msg::Ready,
            b'e' => Msg::Error(String::from_utf8_lossy(&payload).into_owned()),
            b'f' => match fd {
                Some(fd) => Msg::Fd(fd),
                None => return Err(Error::Init("channel: fd message without fd".into())),
            },
            t => return Err(Error::Init(format!("channel: unknown message {t}"))),
        })
    }

    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            m if std::mem::discriminant(&m) == std::mem::discriminant(&want) => Ok(()),
            Msg::Error(e) => Err(Error::Init(e)),
            m => Err(Error::Init(format!("channel: expected {want:?}, got {m:?}"))),
        }
    }

    pub fn expect_hooks_done(&self) -> Result<Vec<u8>> {
        match self.recv()? {
            Msg::HooksDone(s) => Ok(s),
            Msg::Error(e) => Err(Error::Init(e)),
            m => Err(Error::Init(format!("channel: expected hooks done, got {m:?}"))),
        }
    }
}

fn unsafe_borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}
