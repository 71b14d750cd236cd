//! The services directory (runit-style, no parser): one directory per
//! service holding an executable `run` or an OCI bundle (`config.json` +
//! `rootfs/`), and optionally `restart`, `after` and `down`.

use crate::logger::Show;
use crate::sys::{self, CBuf, Errno, Pid};
use crate::text::Esc;
use core::fmt;

/// At most this many services in a directory (indexes fit a u8).
pub const MAX: usize = 256;
/// The longest service name: Linux's own limit for a file name.
pub const NAME_MAX: usize = 255;
pub type Name = heapless::Vec<u8, NAME_MAX>;
pub type Services = heapless::Vec<Service, MAX>;
/// Service indexes in start order.
pub type Order = heapless::Vec<u8, MAX>;

/// A set of service indexes (the `after` of a service).
#[derive(Clone, Copy, Default)]
pub struct Set([u32; MAX / 32]);

impl Set {
    pub fn add(&mut self, i: usize) {
        self.0[i / 32] |= 1 << (i % 32);
    }
    pub fn has(&self, i: usize) -> bool {
        self.0[i / 32] & (1 << (i % 32)) != 0
    }
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX).filter(|&i| self.has(i))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    /// Not running and not wanted (or finished for good).
    Down,
    /// Wanted: starts once the services it comes after have started.
    Pending,
    /// `husk delete --force` of a container service is running.
    Cleanup,
    Running,
    /// SIGTERM sent; SIGKILL at `deadline`.
    Stopping,
    /// Waiting until `deadline` to restart.
    Backoff,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Down => "down",
            State::Pending => "pending",
            State::Cleanup => "cleanup",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Backoff => "backoff",
        }
    }
}

/// What follows the cleanup of a container service.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Next {
    Start,
    Backoff(u64),
    Down,
}

pub struct Service {
    pub name: Name,
    /// An OCI bundle run by `husk run` (else an executable `run`).
    pub bundle: bool,
    pub restart: Restart,
    /// The services this one starts after.
    pub after: Set,
    /// `down` file: not started at boot.
    pub down: bool,
    // Supervision state.
    pub want: bool,
    pub state: State,
    pub pid: Pid,
    pub deadline: u64,
    pub killed: bool,
    pub failures: u32,
    pub starts: u32,
    pub since: u64,
    pub last: Option<i32>,
    pub started_once: bool,
    pub restart_now: bool,
    pub cleaned: bool,
    pub next: Next,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum LoadError {
    /// The services directory itself (path, error).
    Dir(&'static [u8], Errno),
    TooMany(&'static [u8]),
    /// A name longer than NAME_MAX: (dir, its first NAME_MAX bytes).
    NameTooLong(&'static [u8], Name),
    /// A path too long for our buffers: (dir, name).
    PathTooLong(&'static [u8], Name),
    /// Neither an executable `run` nor config.json + rootfs/.
    Empty(&'static [u8], Name),
    NotExecutable(&'static [u8], Name),
    BadRestart(&'static [u8], Name),
    /// `after` names a service that does not exist: (dir, name, missing).
    UnknownAfter(&'static [u8], Name, Name),
    /// `after` could not be read: (dir, name, error).
    After(&'static [u8], Name, Errno),
    Cycle(&'static [u8], Name),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Dir(d, e) => write!(f, "{}: {}", Show(d), e),
            LoadError::TooMany(d) => {
                write!(f, "{}: more than {} services (the limit)", Show(d), MAX)
            }
            LoadError::NameTooLong(d, n) => write!(
                f,
                "{}/{}...: service name longer than {} bytes (the limit)",
                Show(d),
                Esc(n),
                NAME_MAX
            ),
            LoadError::PathTooLong(d, n) => write!(
                f,
                "{}/{}: path longer than {} bytes (the limit)",
                Show(d),
                Esc(n),
                PATH_MAX - 1
            ),
            LoadError::Empty(d, n) => write!(
                f,
                "{}/{}: neither an executable run nor config.json + rootfs/",
                Show(d),
                Esc(n)
            ),
            LoadError::NotExecutable(d, n) => {
                write!(f, "{}/{}/run: not executable", Show(d), Esc(n))
            }
            LoadError::BadRestart(d, n) => write!(
                f,
                "{}/{}/restart: expected always, on-failure or never",
                Show(d),
                Esc(n)
            ),
            LoadError::UnknownAfter(d, n, m) => write!(
                f,
                "{}/{}/after: no service named {}",
                Show(d),
                Esc(n),
                Esc(m)
            ),
            LoadError::After(d, n, e) => write!(f, "{}/{}/after: {}", Show(d), Esc(n), e),
            LoadError::Cycle(d, n) => write!(
                f,
                "{}/{}/after: services start after each other in a cycle",
                Show(d),
                Esc(n)
            ),
        }
    }
}

/// Room for `DIR/NAME/FILE` and its NUL.
pub const PATH_MAX: usize = 1024;
pub type Path = CBuf<PATH_MAX>;

/// `DIR/NAME/FILE` (FILE may be empty for the service directory).
pub fn path(dir: &[u8], name: &[u8], file: &[u8]) -> Option<Path> {
    let mut p = CBuf::of(&[dir, b"/", name])?;
    if !file.is_empty() {
        p.push(b"/")?;
        p.push(file)?;
    }
    Some(p)
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let b = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(a, |i| i + 1);
    &s[a..b]
}

pub fn parse_restart(s: &[u8]) -> Option<Restart> {
    match trim(s) {
        b"always" => Some(Restart::Always),
        b"on-failure" => Some(Restart::OnFailure),
        b"never" => Some(Restart::Never),
        _ => None,
    }
}

fn cut(n: &[u8]) -> Name {
    Name::from_slice(&n[..n.len().min(NAME_MAX)]).unwrap_or_default()
}

fn new_service(name: Name) -> Service {
    Service {
        name,
        bundle: false,
        restart: Restart::Always,
        after: Set::default(),
        down: false,
        want: false,
        state: State::Down,
        pid: 0,
        deadline: 0,
        killed: false,
        failures: 0,
        starts: 0,
        since: 0,
        last: None,
        started_once: false,
        restart_now: false,
        cleaned: false,
        next: Next::Down,
    }
}

/// Reads the services of `dir` into `svcs` (sorted by name) and their
/// start order (dependencies first) into `order`. Both are filled in
/// place: the table is large (MAX services) and is never moved.
/// (The error carries names inline: there is no heap to box them on.)
#[allow(clippy::result_large_err)]
#[inline(never)]
pub fn load(dir: &'static [u8], svcs: &mut Services, order: &mut Order) -> Result<(), LoadError> {
    svcs.clear();
    order.clear();
    let dpath: Path = CBuf::of(&[dir]).ok_or(LoadError::Dir(dir, Errno(libc::ENAMETOOLONG)))?;
    let fd = sys::open(dpath.cstr(), libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| LoadError::Dir(dir, e))?;
    let mut err = None;
    let r = sys::each_dirent(fd, |n, _| {
        if n.is_empty() || n[0] == b'.' || err.is_some() {
            return;
        }
        let Some(p) = path(dir, n, b"") else {
            err = Some(if n.len() > NAME_MAX {
                LoadError::NameTooLong(dir, cut(n))
            } else {
                LoadError::PathTooLong(dir, cut(n))
            });
            return;
        };
        if !sys::stat(p.cstr()).is_ok_and(|s| s.is_dir()) {
            return;
        }
        let Ok(name) = Name::from_slice(n) else {
            err = Some(LoadError::NameTooLong(dir, cut(n)));
            return;
        };
        if svcs.push(new_service(name)).is_err() {
            err = Some(LoadError::TooMany(dir));
        }
    });
    sys::close(fd);
    r.map_err(|e| LoadError::Dir(dir, e))?;
    if let Some(e) = err {
        return Err(e);
    }
    // Insertion sort: at most MAX entries, and far smaller than core's sort.
    for i in 1..svcs.len() {
        let mut j = i;
        while j > 0 && svcs[j - 1].name > svcs[j].name {
            svcs.swap(j - 1, j);
            j -= 1;
        }
    }

    for s in svcs.iter_mut() {
        let n = &s.name;
        let p =
            |file: &[u8]| path(dir, n, file).ok_or_else(|| LoadError::PathTooLong(dir, n.clone()));
        let run = p(b"run")?;
        s.bundle = match sys::stat(run.cstr()) {
            Ok(st) if st.is_file() => {
                if !sys::access_x(run.cstr()) {
                    return Err(LoadError::NotExecutable(dir, n.clone()));
                }
                false
            }
            _ => {
                let cfg = sys::stat(p(b"config.json")?.cstr()).is_ok_and(|s| s.is_file());
                let rootfs = sys::stat(p(b"rootfs")?.cstr()).is_ok_and(|s| s.is_dir());
                if !(cfg && rootfs) {
                    return Err(LoadError::Empty(dir, n.clone()));
                }
                true
            }
        };
        let mut buf = [0u8; 64];
        s.restart = match sys::read_file(p(b"restart")?.cstr(), &mut buf) {
            Ok(t) => parse_restart(t).ok_or_else(|| LoadError::BadRestart(dir, n.clone()))?,
            Err(_) => Restart::Always,
        };
        s.down = sys::exists(p(b"down")?.cstr());
    }
    // `after` files: names separated by white space, any number of them.
    for i in 0..svcs.len() {
        let me = &svcs[i].name;
        let p = path(dir, me, b"after").ok_or_else(|| LoadError::PathTooLong(dir, me.clone()))?;
        let Ok(fd) = sys::open(p.cstr(), libc::O_RDONLY, 0) else {
            continue;
        };
        let mut after = Set::default();
        let mut unknown = None;
        let r = sys::each_token::<{ NAME_MAX + 1 }>(
            fd,
            |b| b.is_ascii_whitespace(),
            |w| match svcs.iter().position(|s| s.name.as_slice() == w) {
                Some(j) => after.add(j),
                None => {
                    if unknown.is_none() {
                        unknown = Some(cut(w));
                    }
                }
            },
        );
        sys::close(fd);
        r.map_err(|e| LoadError::After(dir, me.clone(), e))?;
        if let Some(m) = unknown {
            return Err(LoadError::UnknownAfter(dir, me.clone(), m));
        }
        svcs[i].after = after;
    }
    start_order(svcs, order).map_err(|i| LoadError::Cycle(dir, svcs[i].name.clone()))
}

/// Depth-first topological order; Err(index) of a service in a cycle.
fn start_order(svcs: &[Service], order: &mut Order) -> Result<(), usize> {
    // 0 = unvisited, 1 = on the current path, 2 = placed.
    let mut mark = [0u8; MAX];
    fn visit(
        i: usize,
        svcs: &[Service],
        mark: &mut [u8; MAX],
        order: &mut Order,
    ) -> Result<(), usize> {
        match mark[i] {
            2 => return Ok(()),
            1 => return Err(i),
            _ => {}
        }
        mark[i] = 1;
        for d in svcs[i].after.iter() {
            visit(d, svcs, mark, order)?;
        }
        mark[i] = 2;
        let _ = order.push(i as u8);
        Ok(())
    }
    for i in 0..svcs.len() {
        visit(i, svcs, &mut mark, order)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_values() {
        assert_eq!(parse_restart(b"always\n"), Some(Restart::Always));
        assert_eq!(parse_restart(b" on-failure "), Some(Restart::OnFailure));
        assert_eq!(parse_restart(b"never"), Some(Restart::Never));
        assert_eq!(parse_restart(b"sometimes"), None);
    }
}
