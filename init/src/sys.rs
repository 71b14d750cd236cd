//! Thin safe wrappers around the syscalls husk-init uses (through musl's
//! static libc). Every `unsafe` block of the crate outside the fork/exec
//! window lives here.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::fmt;

pub type Pid = libc::pid_t;

/// An errno value; displays as its strerror text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub c_int);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: musl's strerror returns a pointer to a static, NUL-terminated
        // string for any value.
        let s = unsafe { CStr::from_ptr(libc::strerror(self.0)) };
        fmt::Display::fmt(&crate::text::Show(s.to_bytes()), f)
    }
}

pub type R<T> = Result<T, Errno>;

pub fn errno() -> Errno {
    // SAFETY: __errno_location returns this thread's errno slot.
    Errno(unsafe { *libc::__errno_location() })
}

fn check(r: c_int) -> R<c_int> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

fn check_l(r: libc::c_long) -> R<libc::c_long> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// A NUL-terminated byte string built in a fixed stack buffer.
pub struct CBuf<const N: usize> {
    b: [u8; N],
    n: usize,
}

impl<const N: usize> Default for CBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> CBuf<N> {
    pub const fn new() -> Self {
        CBuf { b: [0; N], n: 0 }
    }
    /// Builds from parts; None when it would not fit (or holds a NUL).
    pub fn of(parts: &[&[u8]]) -> Option<Self> {
        let mut c = Self::new();
        for p in parts {
            push_into(&mut c.b, &mut c.n, p)?;
        }
        Some(c)
    }
    pub fn push(&mut self, s: &[u8]) -> Option<()> {
        push_into(&mut self.b, &mut self.n, s)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
    pub fn cstr(&self) -> &CStr {
        cstr_of(&self.b, self.n)
    }
}

// (Not generic: one copy for every buffer size.)
#[inline(never)]
fn push_into(b: &mut [u8], n: &mut usize, s: &[u8]) -> Option<()> {
    let end = *n + s.len();
    if end >= b.len() || s.contains(&0) {
        return None;
    }
    b[*n..end].copy_from_slice(s);
    b[end] = 0;
    *n = end;
    Some(())
}

/// `b[..=n]` as a C string: "" unless `b[n]` is its first NUL. (Smaller
/// than core's checked constructors, which search for the NUL with memchr.)
#[inline(never)]
fn cstr_of(b: &[u8], n: usize) -> &CStr {
    match b.iter().position(|&c| c == 0) {
        // SAFETY: b[n] is a NUL and none comes before it, so b[..=n] is
        // exactly one C string.
        Some(k) if k == n => unsafe { CStr::from_bytes_with_nul_unchecked(&b[..=n]) },
        _ => c"",
    }
}

// ---- processes -------------------------------------------------------------

pub fn getpid() -> Pid {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

pub fn getpgrp() -> Pid {
    // SAFETY: no preconditions.
    unsafe { libc::getpgrp() }
}

/// fork(2). The caller must only use async-signal-safe calls in the child
/// (we are single-threaded, so that holds trivially) and end it with exec
/// or `exit_now`.
pub fn fork() -> R<Pid> {
    // SAFETY: husk-init is single-threaded, so the child's copy of the
    // address space is consistent.
    check(unsafe { libc::fork() })
}

pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// execvp(3) of a NULL-terminated argv; returns only on failure.
///
/// # Safety
/// `argv` must point to a NULL-terminated array of valid C strings.
pub unsafe fn execvp(argv: *const *const c_char) -> Errno {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::execvp(*argv, argv) };
    errno()
}

pub fn kill(pid: Pid, sig: c_int) -> R<()> {
    // SAFETY: no memory is passed.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// waitpid(pid, WNOHANG or blocking): Ok(None) when nothing is ready.
pub fn waitpid(pid: Pid, nohang: bool) -> R<Option<(Pid, c_int)>> {
    let mut st: c_int = 0;
    loop {
        // SAFETY: st is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, if nohang { libc::WNOHANG } else { 0 }) };
        if r < 0 {
            let e = errno();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok(if r == 0 { None } else { Some((r, st)) });
    }
}

pub fn setpgid(pid: Pid, pgid: Pid) -> R<()> {
    // SAFETY: no memory is passed.
    check(unsafe { libc::setpgid(pid, pgid) }).map(drop)
}

pub fn setsid() -> R<Pid> {
    // SAFETY: no memory is passed.
    check(unsafe { libc::setsid() })
}

pub fn isatty(fd: c_int) -> bool {
    // SAFETY: no memory is passed.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn tcsetpgrp(fd: c_int, pgrp: Pid) -> R<()> {
    // SAFETY: no memory is passed.
    check(unsafe { libc::tcsetpgrp(fd, pgrp) }).map(drop)
}

pub fn prctl(op: c_int, arg: libc::c_ulong) -> R<c_int> {
    // SAFETY: the options we use take an integer argument (or a pointer to an
    // int for PR_GET_*, see `subreaper`).
    check(unsafe { libc::prctl(op, arg, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) })
}

pub fn is_subreaper() -> bool {
    let mut v: c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER stores an int at the pointer we pass.
    let r = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut v as *mut c_int) };
    r == 0 && v != 0
}

// ---- signals ---------------------------------------------------------------

#[derive(Clone, Copy)]
pub struct SigSet(pub libc::sigset_t);

impl SigSet {
    pub fn empty() -> SigSet {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it.
        unsafe {
            let mut s: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut s);
            SigSet(s)
        }
    }
    pub fn full() -> SigSet {
        // SAFETY: as above, sigfillset initialises it.
        unsafe {
            let mut s: libc::sigset_t = core::mem::zeroed();
            libc::sigfillset(&mut s);
            SigSet(s)
        }
    }
    pub fn del(&mut self, sig: c_int) {
        // SAFETY: self.0 is an initialised set.
        unsafe { libc::sigdelset(&mut self.0, sig) };
    }
}

/// sigprocmask(SIG_SETMASK): returns the previous mask.
pub fn set_sigmask(set: &SigSet) -> R<SigSet> {
    let mut old = SigSet::empty();
    // SAFETY: both pointers are valid sigsets.
    check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set.0, &mut old.0) })?;
    Ok(old)
}

/// A saved signal disposition.
#[derive(Clone, Copy)]
pub struct SigAction(libc::sigaction);

/// Sets `sig` to SIG_IGN (or SIG_DFL) and returns the previous action.
pub fn set_sigaction(sig: c_int, ignore: bool) -> R<SigAction> {
    // SAFETY: sigaction is plain data; zeroed is a valid (SIG_DFL) value.
    let mut new: libc::sigaction = unsafe { core::mem::zeroed() };
    new.sa_sigaction = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: valid pointers to sigaction structs.
    check(unsafe { libc::sigaction(sig, &new, &mut old) })?;
    Ok(SigAction(old))
}

pub fn restore_sigaction(sig: c_int, a: &SigAction) -> R<()> {
    // SAFETY: a.0 came from the kernel.
    check(unsafe { libc::sigaction(sig, &a.0, core::ptr::null_mut()) }).map(drop)
}

/// Calls `f` with strsignal(sig), the C library's description of `sig`.
pub fn strsignal<T>(sig: c_int, f: impl FnOnce(&[u8]) -> T) -> T {
    // SAFETY: strsignal returns a NUL-terminated string that stays valid
    // until the next strsignal call in this (the only) thread; it is used
    // before this function returns.
    let s = unsafe { CStr::from_ptr(libc::strsignal(sig)) };
    f(s.to_bytes())
}

/// A (blocking, close-on-exec) signalfd for `set`.
pub fn signalfd(set: &SigSet) -> R<c_int> {
    // SAFETY: valid sigset pointer.
    check(unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC) })
}

/// Reads queued signals from a signalfd into `out` (blocks until at least
/// one is pending); returns how many were read.
pub fn read_signals(fd: c_int, out: &mut [c_int; 16]) -> R<usize> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut buf: [libc::signalfd_siginfo; 16] = unsafe { core::mem::zeroed() };
    let r = read(fd, {
        // SAFETY: the byte view covers exactly the array we own.
        unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(&buf)) }
    });
    match r {
        Ok(n) => {
            let k = n / core::mem::size_of::<libc::signalfd_siginfo>();
            for i in 0..k {
                out[i] = buf[i].ssi_signo as c_int;
            }
            Ok(k)
        }
        Err(e) if e.0 == libc::EAGAIN => Ok(0),
        Err(e) => Err(e),
    }
}

// ---- files -----------------------------------------------------------------

pub fn open(path: &CStr, flags: c_int, mode: libc::mode_t) -> R<c_int> {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })
}

pub fn close(fd: c_int) {
    // SAFETY: closing an fd we own.
    unsafe { libc::close(fd) };
}

pub fn read(fd: c_int, buf: &mut [u8]) -> R<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            let e = errno();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok(r as usize);
    }
}

/// Writes all of `buf` (best effort, retries on short writes and EINTR).
pub fn write_all(fd: c_int, mut buf: &[u8]) -> R<()> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if r < 0 {
            let e = errno();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[r as usize..];
    }
    Ok(())
}

/// Reads a whole small file into `buf`; returns the bytes read.
pub fn read_file<'a>(path: &CStr, buf: &'a mut [u8]) -> R<&'a [u8]> {
    let fd = open(path, libc::O_RDONLY, 0)?;
    let mut n = 0;
    while n < buf.len() {
        match read(fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => {
                close(fd);
                return Err(e);
            }
        }
    }
    close(fd);
    Ok(&buf[..n])
}

pub fn dup2(from: c_int, to: c_int) -> R<()> {
    // SAFETY: no memory is passed.
    check(unsafe { libc::dup2(from, to) }).map(drop)
}

pub fn fd_is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD takes no argument.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Closes every fd >= `from` (close_range, else a loop).
pub fn close_from(from: c_int) {
    // SAFETY: closing fds; none is in use by Rust objects at this point.
    let r = unsafe { libc::syscall(libc::SYS_close_range, from as libc::c_uint, !0u32, 0u32) };
    if r != 0 {
        for fd in from..1024 {
            close(fd);
        }
    }
}

pub fn chdir(path: &CStr) -> R<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

pub fn stat(path: &CStr) -> R<Stat> {
    stat_at(libc::AT_FDCWD, path, 0)
}

/// fstatat(2): `flags` 0 follows a final symlink, AT_SYMLINK_NOFOLLOW
/// describes the link itself.
#[inline(never)]
pub fn stat_at(dfd: c_int, path: &CStr, flags: c_int) -> R<Stat> {
    // SAFETY: stat is plain data, filled by the kernel.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: valid C string and out pointer.
    check(unsafe { libc::fstatat(dfd, path.as_ptr(), &mut st, flags) })?;
    Ok(Stat { dev: st.st_dev as u64, ino: st.st_ino as u64, mode: st.st_mode as u32 })
}

pub fn exists(path: &CStr) -> bool {
    stat(path).is_ok()
}

pub fn access_x(path: &CStr) -> bool {
    // SAFETY: valid C string.
    unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 }
}

pub fn mkdir(path: &CStr, mode: libc::mode_t) -> R<()> {
    // SAFETY: valid C string.
    match check(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
        Err(e) if e.0 == libc::EEXIST => Ok(()),
        r => r.map(drop),
    }
}

pub fn unlink(path: &CStr) {
    // SAFETY: valid C string.
    unsafe { libc::unlink(path.as_ptr()) };
}

/// openat(2) (close-on-exec).
pub fn open_at(dfd: c_int, path: &CStr, flags: c_int) -> R<c_int> {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::openat(dfd, path.as_ptr(), flags | libc::O_CLOEXEC, 0 as libc::c_uint) })
}

/// unlinkat(2): `flags` AT_REMOVEDIR removes an empty directory.
pub fn unlink_at(dfd: c_int, path: &CStr, flags: c_int) -> R<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::unlinkat(dfd, path.as_ptr(), flags) }).map(drop)
}

/// renameat(2) within one directory (atomic: `to` is replaced in one step).
pub fn rename_at(dfd: c_int, from: &CStr, to: &CStr) -> R<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::renameat(dfd, from.as_ptr(), dfd, to.as_ptr()) }).map(drop)
}

/// linkat(2) without following: a link to a symlink is a second name of
/// the symlink itself.
pub fn link_at(dfd: c_int, from: &CStr, to: &CStr) -> R<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::linkat(dfd, from.as_ptr(), dfd, to.as_ptr(), 0) }).map(drop)
}

pub fn symlink_at(target: &CStr, dfd: c_int, path: &CStr) -> R<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dfd, path.as_ptr()) }).map(drop)
}

/// readlinkat(2) into `buf`, NUL-terminated; ENAMETOOLONG when the target
/// does not fit.
pub fn readlink_at<'a>(dfd: c_int, path: &CStr, buf: &'a mut [u8]) -> R<&'a CStr> {
    // SAFETY: buf is valid for buf.len() bytes.
    let n = check_l(unsafe { libc::readlinkat(dfd, path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) as libc::c_long })? as usize;
    if n >= buf.len() {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    buf[n] = 0;
    // (A link's target holds no NUL.)
    Ok(cstr_of(buf, n))
}

pub fn fsync(fd: c_int) {
    // SAFETY: no memory is passed.
    unsafe { libc::fsync(fd) };
}

pub fn symlink(target: &CStr, path: &CStr) -> R<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlink(target.as_ptr(), path.as_ptr()) }).map(drop)
}

/// Calls `f(token)` for each token of the file open at `fd`, tokens being
/// separated by the bytes for which `sep` is true. Reads in chunks into an
/// N-byte buffer, so files of any length work; a token longer than N is
/// passed cut to its first N bytes (once).
pub fn each_token<const N: usize>(fd: c_int, sep: impl Fn(u8) -> bool, mut f: impl FnMut(&[u8])) -> R<()> {
    let mut buf = [0u8; N];
    let mut n = 0;
    // Dropping the rest of a token that was passed cut.
    let mut skip = false;
    loop {
        let k = read(fd, &mut buf[n..])?;
        let eof = k == 0;
        n += k;
        let mut start = 0;
        for i in 0..n {
            if sep(buf[i]) {
                if i > start && !skip {
                    f(&buf[start..i]);
                }
                skip = false;
                start = i + 1;
            }
        }
        if eof {
            if n > start && !skip {
                f(&buf[start..n]);
            }
            return Ok(());
        }
        if start == 0 && n == N {
            // One token fills the buffer.
            if !skip {
                f(&buf[..n]);
            }
            skip = true;
            n = 0;
        } else {
            buf.copy_within(start..n, 0);
            n -= start;
        }
    }
}

/// Calls `f(name)` for each entry of the directory open at `fd`
/// (getdents64 into a stack buffer; no allocation).
/// (`f` is dynamic: one copy of this loop serves every caller.)
#[inline(never)]
pub fn each_dirent(fd: c_int, f: &mut dyn FnMut(&CStr, u8)) -> R<()> {
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: buf is valid for its length.
        let n = check_l(unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) })? as usize;
        if n == 0 {
            return Ok(());
        }
        let mut off = 0;
        while off + 19 < n {
            // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name...
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let typ = buf[off + 18];
            // (The kernel ends every name with a NUL.)
            let name = &buf[off + 19..off + reclen];
            f(cstr_of(name, name.iter().position(|&b| b == 0).unwrap_or(0)), typ);
            off += reclen;
        }
    }
}

// ---- time and polling ------------------------------------------------------

/// CLOCK_MONOTONIC in milliseconds.
pub fn now_ms() -> u64 {
    // SAFETY: timespec is plain data.
    let mut ts: libc::timespec = unsafe { core::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// One entry of a poll(2) set.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct PollFd(libc::pollfd);

impl PollFd {
    /// Waits for input, or for room to write; a negative fd is skipped.
    pub fn new(fd: c_int, write: bool) -> PollFd {
        let events = if write { libc::POLLOUT } else { libc::POLLIN };
        PollFd(libc::pollfd { fd, events, revents: 0 })
    }
    /// Ready for what it waits for, or hung up / in error.
    pub fn ready(&self) -> bool {
        self.0.fd >= 0 && self.0.revents != 0
    }
}

/// poll(2); timeout -1 waits forever; EINTR counts as a timeout.
pub fn poll(fds: &mut [PollFd], timeout_ms: c_int) -> R<usize> {
    // SAFETY: PollFd is repr(transparent) over pollfd, so the slice is a
    // valid array of fds.len() pollfd structs.
    let r = unsafe { libc::poll(fds.as_mut_ptr().cast::<libc::pollfd>(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = errno();
        if e.0 == libc::EINTR {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

/// `len` bytes of fresh anonymous memory, zero-filled, that take RAM only
/// as their pages are written; never unmapped (husk-init keeps it for life).
pub fn alloc_zeroed(len: usize) -> R<&'static mut [u8]> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: no memory is passed; the kernel picks the address.
    let p = unsafe { libc::mmap(core::ptr::null_mut(), len, prot, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    // SAFETY: a new private mapping of len readable, writable, zeroed bytes
    // that nothing else refers to and that is never unmapped: one unique
    // 'static slice over it is sound (u8 has no invalid values).
    Ok(unsafe { core::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

pub fn sleep_ms(ms: u64) {
    let ts = libc::timespec { tv_sec: (ms / 1000) as _, tv_nsec: ((ms % 1000) * 1_000_000) as _ };
    // SAFETY: valid timespec; the remainder pointer may be null.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}

// ---- system ----------------------------------------------------------------

pub fn mount(src: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: libc::c_ulong, data: Option<&CStr>) -> R<()> {
    let p = |c: Option<&CStr>| c.map_or(core::ptr::null(), CStr::as_ptr);
    // SAFETY: valid C strings or null, as mount(2) allows.
    check(unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast::<c_void>()) }).map(drop)
}

pub fn umount(target: &CStr, flags: c_int) -> R<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

pub fn sethostname(name: &[u8]) -> R<()> {
    // SAFETY: name is valid for its length.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub fn sync() {
    // SAFETY: no preconditions.
    unsafe { libc::sync() };
}

pub fn reboot(cmd: c_int) -> R<()> {
    // SAFETY: no memory is passed.
    check(unsafe { libc::reboot(cmd) }).map(drop)
}

pub fn getenv(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv returns a pointer into the
    // environment block, which lives as long as the process (we never
    // change the environment).
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        // SAFETY: non-null pointers from getenv are NUL-terminated strings.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

// ---- unix sockets ----------------------------------------------------------

fn sockaddr(path: &[u8]) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data.
    let mut a: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    if path.len() >= a.sun_path.len() {
        return None;
    }
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (i, b) in path.iter().enumerate() {
        a.sun_path[i] = *b as c_char;
    }
    let len = core::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    Some((a, len as libc::socklen_t))
}

fn stream_socket() -> R<c_int> {
    // SAFETY: no memory is passed.
    check(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })
}

/// A listening unix stream socket at `path` (mode 0600), non-blocking.
pub fn listen_unix(path: &[u8]) -> R<c_int> {
    let (a, len) = sockaddr(path).ok_or(Errno(libc::ENAMETOOLONG))?;
    let fd = stream_socket()?;
    // SAFETY: a is a valid sockaddr_un of length len; fchmod/fcntl take ints.
    let r = unsafe {
        libc::fchmod(fd, 0o600);
        libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
        let mut r = libc::bind(fd, (&a as *const libc::sockaddr_un).cast(), len);
        if r == 0 {
            r = libc::listen(fd, 8);
        }
        r
    };
    if r < 0 {
        let e = errno();
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// accept(2) on a non-blocking listener; the connection is non-blocking
/// too (served from the poll loop).
pub fn accept(fd: c_int) -> R<c_int> {
    let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: null address pointers are allowed.
    check(unsafe { libc::accept4(fd, core::ptr::null_mut(), core::ptr::null_mut(), flags) })
}

/// send(2) without blocking and without SIGPIPE; returns the bytes sent.
pub fn send_nb(fd: c_int, buf: &[u8]) -> R<usize> {
    send(fd, buf, libc::MSG_DONTWAIT)
}

/// send(2) with `flags`, never raising SIGPIPE; returns the bytes sent.
pub fn send(fd: c_int, buf: &[u8], flags: c_int) -> R<usize> {
    loop {
        let flags = flags | libc::MSG_NOSIGNAL;
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = errno();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// The peer of a unix socket: (pid, uid, gid) from SO_PEERCRED.
pub fn peer_cred(fd: c_int) -> R<(Pid, u32, u32)> {
    let mut c = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = core::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: c and len are valid out pointers of the sizes given.
    check(unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut c as *mut libc::ucred).cast(), &mut len) })?;
    Ok((c.pid, c.uid, c.gid))
}

/// Is `gid` among the supplementary groups of the peer (SO_PEERGROUPS)?
pub fn peer_has_group(fd: c_int, gid: u32) -> bool {
    let mut groups = [0 as libc::gid_t; 256];
    let mut len = core::mem::size_of_val(&groups) as libc::socklen_t;
    // SAFETY: groups and len are valid out pointers of the sizes given.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERGROUPS, groups.as_mut_ptr().cast(), &mut len) };
    let n = (len as usize / core::mem::size_of::<libc::gid_t>()).min(groups.len());
    r == 0 && groups[..n].contains(&gid)
}

pub fn geteuid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// chown(path, -1, gid).
pub fn chown(path: &CStr, gid: u32) -> R<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::chown(path.as_ptr(), !0, gid) }).map(drop)
}

pub fn chmod(path: &CStr, mode: libc::mode_t) -> R<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

pub fn connect_unix(path: &[u8]) -> R<c_int> {
    let (a, len) = sockaddr(path).ok_or(Errno(libc::ENAMETOOLONG))?;
    let fd = stream_socket()?;
    // SAFETY: a is a valid sockaddr_un of length len.
    if unsafe { libc::connect(fd, (&a as *const libc::sockaddr_un).cast(), len) } < 0 {
        let e = errno();
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

pub fn shutdown_write(fd: c_int) {
    // SAFETY: no memory is passed.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}
