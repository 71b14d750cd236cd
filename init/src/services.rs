//! The services directory (runit-style, no parser): one directory per
//! service holding an executable `run` or an OCI bundle (`config.json` +
//! `rootfs/`), and optionally `restart`, `after` and `down`.

use crate::logger::Show;
use crate::sys::{self, CBuf, Errno, Pid};
use crate::text::Esc;
use crate::update;
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

/// Where a service is in an update (`ctl update`), or how its last one
/// ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Upd {
    None,
    /// The old version is being stopped for the switch.
    Stopping,
    /// The new version runs on trial until `deadline` (the health period).
    Watching,
    /// The new version failed and is being stopped to go back.
    RollingBack,
    Confirmed,
    RolledBack,
}

impl Upd {
    pub fn busy(self) -> bool {
        matches!(self, Upd::Stopping | Upd::Watching | Upd::RollingBack)
    }
    pub fn name(self) -> &'static str {
        match self {
            Upd::None => "",
            Upd::Stopping => "stopping",
            Upd::Watching => "watching",
            Upd::RollingBack => "rolling-back",
            Upd::Confirmed => "confirmed",
            Upd::RolledBack => "rolled-back",
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
    /// (In the names arena: written once at load, never moved.)
    pub name: &'static [u8],
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
    pub upd: Upd,
    /// The `check` program of an update, while it runs.
    pub check: Pid,
}

/// Why a services directory is refused: one line naming the file at fault.
#[derive(Debug)]
pub struct LoadError {
    dir: &'static [u8],
    /// The service at fault (empty: the directory itself).
    name: Name,
    what: What,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum What {
    /// Reading the directory failed.
    Dir(Errno),
    TooMany,
    /// (The name is cut to NAME_MAX bytes.)
    NameTooLong,
    PathTooLong,
    /// Neither an executable `run` nor config.json + rootfs/.
    Empty,
    NotExecutable,
    BadRestart,
    /// `after` names a service that does not exist.
    UnknownAfter(Name),
    /// `after` could not be read.
    After(Errno),
    Cycle,
}

// The messages below spell the limits out.
const _: () = assert!(MAX == 256 && NAME_MAX == 255 && PATH_MAX == 1024);

#[inline(never)]
fn fail(dir: &'static [u8], name: &[u8], what: What) -> LoadError {
    LoadError { dir, name: cut(name), what }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Show(self.dir))?;
        if !self.name.is_empty() {
            write!(f, "/{}", Esc(&self.name))?;
        }
        f.write_str(match &self.what {
            What::Dir(_) => ": ",
            What::TooMany => ": more than 256 services (the limit)",
            What::NameTooLong => "...: service name longer than 255 bytes (the limit)",
            What::PathTooLong => ": path longer than 1023 bytes (the limit)",
            What::Empty => ": neither an executable run nor config.json + rootfs/",
            What::NotExecutable => "/run: not executable",
            What::BadRestart => "/restart: expected always, on-failure or never",
            What::UnknownAfter(_) => "/after: no service named ",
            What::After(_) => "/after: ",
            What::Cycle => "/after: services start after each other in a cycle",
        })?;
        match &self.what {
            What::Dir(e) | What::After(e) => write!(f, "{}", e),
            What::UnknownAfter(m) => write!(f, "{}", Esc(m)),
            _ => Ok(()),
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
    let a = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let b = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(a, |i| i + 1);
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

fn new_service(name: &'static [u8]) -> Service {
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
        upd: Upd::None,
        check: 0,
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
    let dpath: Path = CBuf::of(&[dir]).ok_or_else(|| fail(dir, b"", What::Dir(Errno(libc::ENAMETOOLONG))))?;
    let fd = sys::open(dpath.cstr(), libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(|e| fail(dir, b"", What::Dir(e)))?;
    // Names go to memory of their own, which takes RAM only as it is
    // written (the table holds MAX of them, mostly unused).
    let mut arena = match sys::alloc_zeroed(MAX * NAME_MAX) {
        Ok(a) => a,
        Err(e) => {
            sys::close(fd);
            return Err(fail(dir, b"", What::Dir(e)));
        }
    };
    let mut err = None;
    let r = sys::each_dirent(fd, &mut |n, _| {
        let n = n.to_bytes();
        if n.is_empty() || n[0] == b'.' || err.is_some() {
            return;
        }
        // Room for the longest file name used below ("config.json").
        if path(dir, n, b"config.json").is_none() {
            err = Some(if n.len() > NAME_MAX { fail(dir, n, What::NameTooLong) } else { fail(dir, n, What::PathTooLong) });
            return;
        }
        let p = path(dir, n, b"").unwrap_or_default();
        if !sys::stat(p.cstr()).is_ok_and(|s| s.is_dir()) {
            return;
        }
        if n.len() > NAME_MAX {
            err = Some(fail(dir, n, What::NameTooLong));
            return;
        }
        if svcs.is_full() {
            err = Some(fail(dir, b"", What::TooMany));
            return;
        }
        // (The arena holds MAX names of NAME_MAX bytes: always room.)
        let (name, rest) = core::mem::take(&mut arena).split_at_mut(n.len());
        name.copy_from_slice(n);
        arena = rest;
        let _ = svcs.push(new_service(name));
    });
    sys::close(fd);
    r.map_err(|e| fail(dir, b"", What::Dir(e)))?;
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
        let n = s.name;
        // (Each fits: checked when the name was read.)
        let p = |file: &[u8]| path(dir, n, file).unwrap_or_default();
        // An update that was not confirmed before the last stop (a crash,
        // a power cut) is undone before anything looks at the files.
        if let Ok(d) = update::Dir::open(p(b"").cstr()) {
            if d.rollback() {
                crate::warn!("{}: update not confirmed before the restart: rolled back", Esc(n));
                s.upd = Upd::RolledBack;
            }
        }
        let run = p(b"run");
        s.bundle = match sys::stat(run.cstr()) {
            Ok(st) if st.is_file() => {
                if !sys::access_x(run.cstr()) {
                    return Err(fail(dir, n, What::NotExecutable));
                }
                false
            }
            _ => {
                let cfg = sys::stat(p(b"config.json").cstr()).is_ok_and(|s| s.is_file());
                let rootfs = sys::stat(p(b"rootfs").cstr()).is_ok_and(|s| s.is_dir());
                if !(cfg && rootfs) {
                    return Err(fail(dir, n, What::Empty));
                }
                true
            }
        };
        let mut buf = [0u8; 64];
        s.restart = match sys::read_file(p(b"restart").cstr(), &mut buf) {
            Ok(t) => parse_restart(t).ok_or_else(|| fail(dir, n, What::BadRestart))?,
            Err(_) => Restart::Always,
        };
        s.down = sys::exists(p(b"down").cstr());
    }
    // `after` files: names separated by white space, any number of them.
    for i in 0..svcs.len() {
        let me = svcs[i].name;
        let p = path(dir, me, b"after").unwrap_or_default();
        let Ok(fd) = sys::open(p.cstr(), libc::O_RDONLY, 0) else {
            continue;
        };
        let mut after = Set::default();
        let mut unknown = None;
        let r = sys::each_token::<{ NAME_MAX + 1 }>(
            fd,
            |b| b.is_ascii_whitespace(),
            |w| match svcs.iter().position(|s| s.name == w) {
                Some(j) => after.add(j),
                None => {
                    if unknown.is_none() {
                        unknown = Some(cut(w));
                    }
                }
            },
        );
        sys::close(fd);
        r.map_err(|e| fail(dir, me, What::After(e)))?;
        if let Some(m) = unknown {
            return Err(fail(dir, me, What::UnknownAfter(m)));
        }
        svcs[i].after = after;
    }
    start_order(svcs, order).map_err(|i| fail(dir, svcs[i].name, What::Cycle))
}

/// Depth-first topological order; Err(index) of a service in a cycle.
fn start_order(svcs: &[Service], order: &mut Order) -> Result<(), usize> {
    // 0 = unvisited, 1 = on the current path, 2 = placed.
    let mut mark = [0u8; MAX];
    fn visit(i: usize, svcs: &[Service], mark: &mut [u8; MAX], order: &mut Order) -> Result<(), usize> {
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
