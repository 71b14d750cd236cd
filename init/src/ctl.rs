//! `husk-init ctl`: a line protocol over a unix stream socket.
//!
//! The client sends one line, `CMD` or `CMD NAME`, and shuts down its
//! writing side; the supervisor answers with text lines (`ok: ...`,
//! `error: ...` or status lines) and closes. A name travels escaped as in
//! /proc/mounts (`\040` for a space, `\012` for a newline, `\134` for a
//! backslash; see `text::Esc`), in requests and replies alike, so every
//! name a directory can have fits in one line and one field.
//!
//! Server side, every connection is non-blocking and lives in the
//! supervisor's poll set with a fixed buffer; one that is too slow is
//! dropped at its deadline, and the oldest is dropped when a new one finds
//! no free slot. Only root, our own uid and members of `--ctl-group` are
//! served (SO_PEERCRED).

use crate::logger::{self, Show};
use crate::services::NAME_MAX;
use crate::sys::{self, PollFd};
use crate::text::{self, Esc};
use crate::update::TARGET_MAX;
use core::ffi::c_int;
use core::fmt;

/// Control connections served at the same time.
pub const MAX_CONNS: usize = 16;
/// A connection must be done (request read, reply sent) within this.
pub const TIMEOUT_MS: u64 = 5_000;
/// Room for the longest request (`update `, a name of NAME_MAX bytes and a
/// version path of TARGET_MAX bytes, all escaped) and for the longest status
/// line (a name and two version paths).
const BUF: usize = 4 * NAME_MAX + 8 * TARGET_MAX + 128;

/// Formats into a byte buffer; output that does not fit is refused whole
/// (`full` is set and formatting stops).
pub struct Out<'a> {
    buf: &'a mut [u8],
    n: usize,
    full: bool,
}

impl<'a> Out<'a> {
    pub fn new(buf: &'a mut [u8], n: usize) -> Out<'a> {
        Out { buf, n, full: false }
    }
}

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let b = s.as_bytes();
        if self.full || self.n + b.len() > self.buf.len() {
            self.full = true;
            return Err(fmt::Error);
        }
        self.buf[self.n..self.n + b.len()].copy_from_slice(b);
        self.n += b.len();
        Ok(())
    }
}

/// What the supervisor does with requests.
pub trait Handler {
    /// Acts on `CMD NAME ARG` (NAME and ARG unescaped, maybe empty) and
    /// writes the reply; true when the reply goes on with every status line.
    fn request(&mut self, cmd: &[u8], name: &[u8], arg: &[u8], out: &mut Out<'_>) -> bool;
    /// Writes status line `k` (in start order); false past the last one.
    fn line(&self, k: usize, out: &mut Out<'_>) -> bool;
}

struct Conn {
    fd: c_int,
    deadline: u64,
    /// Reading: the request so far in buf[..len]. Writing: buf[off..len]
    /// is still to be sent.
    writing: bool,
    /// The next status line to send, when listing them all.
    cursor: Option<usize>,
    len: usize,
    off: usize,
    /// BUF bytes of their own memory (taken from RAM only when used).
    buf: &'static mut [u8],
}

pub struct Conns {
    c: [Conn; MAX_CONNS],
    /// Besides root and our own uid, members of this group may connect.
    group: Option<u32>,
}

impl Conns {
    pub fn new(group: Option<u32>) -> sys::R<Conns> {
        let mut mem = sys::alloc_zeroed(MAX_CONNS * BUF)?;
        let c = core::array::from_fn(|_| {
            let (buf, rest) = core::mem::take(&mut mem).split_at_mut(BUF);
            mem = rest;
            Conn { fd: -1, deadline: 0, writing: false, cursor: None, len: 0, off: 0, buf }
        });
        Ok(Conns { c, group })
    }

    fn close(&mut self, i: usize) {
        if self.c[i].fd >= 0 {
            sys::close(self.c[i].fd);
        }
        self.c[i].fd = -1;
    }

    pub fn close_all(&mut self) {
        for i in 0..MAX_CONNS {
            self.close(i);
        }
    }

    /// Fills `fds` with one entry per open connection (in slot order, as
    /// `serve` expects them); returns how many.
    pub fn poll_fds(&self, fds: &mut [PollFd]) -> usize {
        let mut n = 0;
        for c in self.c.iter().filter(|c| c.fd >= 0) {
            fds[n] = PollFd::new(c.fd, c.writing);
            n += 1;
        }
        n
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.c.iter().filter(|c| c.fd >= 0).map(|c| c.deadline).min()
    }

    /// Drops the connections past their deadline.
    pub fn expire(&mut self, now: u64) {
        for i in 0..MAX_CONNS {
            if self.c[i].fd >= 0 && now >= self.c[i].deadline {
                crate::debug!("ctl: a connection timed out");
                self.close(i);
            }
        }
    }

    fn allowed(&self, fd: c_int) -> Result<(), (i32, u32)> {
        let (pid, uid, gid) = sys::peer_cred(fd).map_err(|_| (0, u32::MAX))?;
        let ok = uid == 0 || uid == sys::geteuid() || self.group.is_some_and(|g| gid == g || sys::peer_has_group(fd, g));
        if ok {
            Ok(())
        } else {
            Err((pid, uid))
        }
    }

    /// Takes the waiting connections (a bounded number per call, so that a
    /// flood of them cannot starve the rest of the loop).
    pub fn accept(&mut self, lfd: c_int, now: u64) {
        for _ in 0..MAX_CONNS {
            let Ok(fd) = sys::accept(lfd) else { return };
            if let Err((pid, uid)) = self.allowed(fd) {
                crate::debug!("ctl: refused uid {} (pid {})", crate::text::Num(uid as i64), crate::text::Num(pid as i64));
                let _ = sys::send_nb(fd, b"error: permission denied\n");
                sys::close(fd);
                continue;
            }
            let i = match self.c.iter().position(|c| c.fd < 0) {
                Some(i) => i,
                None => {
                    // Full: the oldest one has had the most time.
                    let i = (0..MAX_CONNS).min_by_key(|&i| self.c[i].deadline).unwrap_or(0);
                    crate::debug!("ctl: too many connections: dropping the oldest");
                    self.close(i);
                    i
                }
            };
            let c = &mut self.c[i];
            c.fd = fd;
            c.deadline = now + TIMEOUT_MS;
            c.writing = false;
            c.cursor = None;
            c.len = 0;
            c.off = 0;
        }
    }

    /// Moves every connection that poll found ready as far as it goes
    /// without blocking. `fds` is what `poll_fds` filled, after poll.
    pub fn serve(&mut self, fds: &[PollFd], h: &mut impl Handler) {
        let mut k = 0;
        for i in 0..MAX_CONNS {
            if self.c[i].fd < 0 {
                continue;
            }
            let ready = fds.get(k).is_some_and(PollFd::ready);
            k += 1;
            if !ready {
                continue;
            }
            if !self.c[i].writing && !self.read(i, h) {
                self.close(i);
                continue;
            }
            if self.c[i].writing && !self.write(i, h) {
                self.close(i);
            }
        }
    }

    /// Reads what the client sent; once the request is whole, acts on it
    /// and turns to writing. False when the connection is to be closed.
    fn read(&mut self, i: usize, h: &mut impl Handler) -> bool {
        let c = &mut self.c[i];
        let eof = loop {
            if c.len == BUF {
                break false;
            }
            match sys::read(c.fd, &mut c.buf[c.len..]) {
                Ok(0) => break true,
                Ok(n) => {
                    c.len += n;
                    if c.buf[c.len - n..c.len].contains(&b'\n') {
                        break false;
                    }
                }
                Err(e) if e.0 == libc::EAGAIN => return true,
                Err(_) => return false,
            }
        };
        let end = c.buf[..c.len].iter().position(|&b| b == b'\n');
        if end.is_none() && !eof {
            let _ = sys::send_nb(c.fd, b"error: request too long\n");
            return false;
        }
        // The request is copied out: the reply is written into buf.
        let mut req = [0u8; BUF];
        let n = end.unwrap_or(c.len);
        req[..n].copy_from_slice(&c.buf[..n]);
        // CMD, NAME and ARG are separated by single spaces (escaped names
        // hold none).
        let (cmd, rest) = word(&mut req[..n]);
        let (name, arg) = word(rest);
        let (m, k) = (text::unescape(name), text::unescape(arg));
        let (name, arg) = (&name[..m], &arg[..k]);
        let mut out = Out::new(c.buf, 0);
        let all = h.request(cmd, name, arg, &mut out);
        c.len = out.n;
        c.off = 0;
        c.cursor = if all { Some(0) } else { None };
        c.writing = true;
        true
    }

    /// Sends what is pending, then the next status lines; false when done
    /// (or the client went away).
    fn write(&mut self, i: usize, h: &mut impl Handler) -> bool {
        let c = &mut self.c[i];
        loop {
            if c.off == c.len {
                c.off = 0;
                c.len = 0;
                // Pack as many whole status lines as fit.
                while let Some(k) = c.cursor {
                    let mut out = Out::new(c.buf, c.len);
                    let more = h.line(k, &mut out);
                    if !more {
                        c.cursor = None;
                    } else if out.full {
                        if c.len == 0 {
                            // Cannot happen (BUF holds the longest line);
                            // skip the line rather than loop.
                            c.cursor = Some(k + 1);
                            continue;
                        }
                        break;
                    } else {
                        c.len = out.n;
                        c.cursor = Some(k + 1);
                    }
                }
                if c.len == 0 {
                    return false;
                }
            }
            match sys::send_nb(c.fd, &c.buf[c.off..c.len]) {
                Ok(n) => c.off += n,
                Err(e) if e.0 == libc::EAGAIN => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Splits at the first space: (before it, after it).
fn word(s: &mut [u8]) -> (&mut [u8], &mut [u8]) {
    let sp = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
    let (a, b) = s.split_at_mut(sp);
    (a, b.get_mut(1..).unwrap_or_default())
}

/// The gid of `--ctl-group`: a number, or a name looked up in /etc/group.
pub fn group_id(g: &[u8]) -> Option<u32> {
    if let Some(n) = text::parse_u32(g) {
        return Some(n);
    }
    let fd = sys::open(c"/etc/group", libc::O_RDONLY, 0).ok()?;
    let mut found = None;
    // name:password:gid:members
    let _ = sys::each_token::<1024>(
        fd,
        |b| b == b'\n',
        |line| {
            let mut f = line.split(|&b| b == b':');
            if found.is_none() && f.next() == Some(g) {
                found = f.nth(1).and_then(text::parse_u32);
            }
        },
    );
    sys::close(fd);
    found
}

/// The client side; returns the exit code.
pub fn client(socket: &'static [u8], cmd: &[u8], name: &[u8], arg: &[u8]) -> c_int {
    let fd = match sys::connect_unix(socket) {
        Ok(fd) => fd,
        Err(e) => {
            logger::out(2, format_args!("husk-init: ctl: {}: {}\n", Show(socket), e));
            return 1;
        }
    };
    let mut req = [0u8; BUF];
    let mut out = Out::new(&mut req, 0);
    let _ = fmt::Write::write_fmt(&mut out, format_args!("{}", Show(cmd)));
    for w in [name, arg] {
        if !w.is_empty() {
            let _ = fmt::Write::write_fmt(&mut out, format_args!(" {}", Esc(w)));
        }
    }
    let _ = fmt::Write::write_fmt(&mut out, format_args!("\n"));
    let n = out.n;
    // A refusal may close the connection before the request is sent (no
    // SIGPIPE then): the reply that explains it is read all the same.
    let mut sent = Ok(());
    let mut off = 0;
    while off < n && sent.is_ok() {
        sent = sys::send(fd, &req[off..n], 0).map(|k| off += k);
    }
    sys::shutdown_write(fd);
    let mut buf = [0u8; 512];
    let mut first = true;
    let mut out_fd = 1;
    let mut code = 0;
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if first && buf[..n].starts_with(b"error:") {
                    out_fd = 2;
                    code = 1;
                }
                first = false;
                let _ = sys::write_all(out_fd, &buf[..n]);
            }
            // A refusal closes before reading our request: the kernel
            // then resets the connection after the reply.
            Err(e) if e.0 == libc::ECONNRESET && !first => break,
            Err(e) => {
                logger::out(2, format_args!("husk-init: ctl: {}: {}\n", Show(socket), e));
                code = 1;
                break;
            }
        }
    }
    if first {
        match sent {
            Err(e) => logger::out(2, format_args!("husk-init: ctl: {}: {}\n", Show(socket), e)),
            Ok(()) => logger::out(2, format_args!("husk-init: ctl: {}: no reply\n", Show(socket))),
        }
        code = 1;
    }
    sys::close(fd);
    code
}
