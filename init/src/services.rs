//! The services directory (runit-style, no parser): one directory per
//! service holding an executable `run` or an OCI bundle (`config.json` +
//! `rootfs/`), and optionally `restart`, `after` and `down`.

use crate::logger::Show;
use crate::sys::{self, CBuf, Errno, Pid};
use core::fmt;

pub const MAX: usize = 32;
pub const NAME_MAX: usize = 64;
pub type Name = heapless::Vec<u8, NAME_MAX>;

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
    /// Indexes of the services this one starts after.
    pub after: heapless::Vec<u8, MAX>,
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
pub enum LoadError {
    /// The services directory itself (path, error).
    Dir(&'static [u8], Errno),
    TooMany(&'static [u8]),
    /// A path too long for our buffers: (dir, name).
    TooLong(&'static [u8], Name),
    /// Neither an executable `run` nor config.json + rootfs/.
    Empty(&'static [u8], Name),
    NotExecutable(&'static [u8], Name),
    BadRestart(&'static [u8], Name),
    /// `after` names a service that does not exist: (dir, name, missing).
    UnknownAfter(&'static [u8], Name, Name),
    Cycle(&'static [u8], Name),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Dir(d, e) => write!(f, "{}: {}", Show(d), e),
            LoadError::TooMany(d) => write!(f, "{}: more than {} services", Show(d), MAX),
            LoadError::TooLong(d, n) => write!(f, "{}/{}: name or path too long", Show(d), Show(n)),
            LoadError::Empty(d, n) => {
                write!(
                    f,
                    "{}/{}: neither an executable run nor config.json + rootfs/",
                    Show(d),
                    Show(n)
                )
            }
            LoadError::NotExecutable(d, n) => {
                write!(f, "{}/{}/run: not executable", Show(d), Show(n))
            }
            LoadError::BadRestart(d, n) => {
                write!(
                    f,
                    "{}/{}/restart: expected always, on-failure or never",
                    Show(d),
                    Show(n)
                )
            }
            LoadError::UnknownAfter(d, n, m) => {
                write!(
                    f,
                    "{}/{}/after: no service named {}",
                    Show(d),
                    Show(n),
                    Show(m)
                )
            }
            LoadError::Cycle(d, n) => write!(
                f,
                "{}/{}/after: services start after each other in a cycle",
                Show(d),
                Show(n)
            ),
        }
    }
}

pub type Path = CBuf<512>;

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

/// Reads the services of `dir`; returns them (sorted by name) and the
/// start order (dependencies first). (The error carries names inline:
/// there is no heap to box them on.)
#[allow(clippy::result_large_err)]
#[inline(never)]
pub fn load(
    dir: &'static [u8],
) -> Result<(heapless::Vec<Service, MAX>, heapless::Vec<u8, MAX>), LoadError> {
    let dpath: Path = CBuf::of(&[dir]).ok_or(LoadError::Dir(dir, Errno(libc::ENAMETOOLONG)))?;
    let fd = sys::open(dpath.cstr(), libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| LoadError::Dir(dir, e))?;
    let mut names: heapless::Vec<Name, MAX> = heapless::Vec::new();
    let mut err = None;
    let r = sys::each_dirent(fd, |n, _| {
        if n.is_empty() || n[0] == b'.' || err.is_some() {
            return;
        }
        let Ok(name) = Name::from_slice(n) else {
            err = Some(LoadError::TooLong(
                dir,
                Name::from_slice(&n[..NAME_MAX]).unwrap_or_default(),
            ));
            return;
        };
        let is_dir = path(dir, n, b"")
            .and_then(|p| sys::stat(p.cstr()).ok())
            .is_some_and(|s| s.is_dir());
        if is_dir && names.push(name).is_err() {
            err = Some(LoadError::TooMany(dir));
        }
    });
    sys::close(fd);
    r.map_err(|e| LoadError::Dir(dir, e))?;
    if let Some(e) = err {
        return Err(e);
    }
    // Insertion sort: at most MAX names, and far smaller than core's sort.
    for i in 1..names.len() {
        let mut j = i;
        while j > 0 && names[j - 1] > names[j] {
            names.swap(j - 1, j);
            j -= 1;
        }
    }

    let mut svcs: heapless::Vec<Service, MAX> = heapless::Vec::new();
    for n in names.iter() {
        let p = |file: &[u8]| path(dir, n, file).ok_or_else(|| LoadError::TooLong(dir, n.clone()));
        let run = p(b"run")?;
        let bundle = match sys::stat(run.cstr()) {
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
        let mut buf = [0u8; 256];
        let restart = match sys::read_file(p(b"restart")?.cstr(), &mut buf) {
            Ok(s) => parse_restart(s).ok_or_else(|| LoadError::BadRestart(dir, n.clone()))?,
            Err(_) => Restart::Always,
        };
        let down = sys::exists(p(b"down")?.cstr());
        let _ = svcs.push(Service {
            name: n.clone(),
            bundle,
            restart,
            after: heapless::Vec::new(),
            down,
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
        });
    }
    // `after` files: names separated by white space.
    for i in 0..svcs.len() {
        let mut buf = [0u8; 1024];
        let p = path(dir, &svcs[i].name, b"after")
            .ok_or_else(|| LoadError::TooLong(dir, svcs[i].name.clone()))?;
        let Ok(text) = sys::read_file(p.cstr(), &mut buf) else {
            continue;
        };
        for w in text
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            let Some(j) = svcs.iter().position(|s| s.name.as_slice() == w) else {
                return Err(LoadError::UnknownAfter(
                    dir,
                    svcs[i].name.clone(),
                    Name::from_slice(&w[..w.len().min(NAME_MAX)]).unwrap_or_default(),
                ));
            };
            if !svcs[i].after.contains(&(j as u8)) {
                let _ = svcs[i].after.push(j as u8);
            }
        }
    }
    let order = start_order(&svcs).map_err(|i| LoadError::Cycle(dir, svcs[i].name.clone()))?;
    Ok((svcs, order))
}

/// Depth-first topological order; Err(index) of a service in a cycle.
fn start_order(svcs: &[Service]) -> Result<heapless::Vec<u8, MAX>, usize> {
    // 0 = unvisited, 1 = on the current path, 2 = placed.
    let mut mark = [0u8; MAX];
    let mut order = heapless::Vec::new();
    fn visit(
        i: usize,
        svcs: &[Service],
        mark: &mut [u8; MAX],
        order: &mut heapless::Vec<u8, MAX>,
    ) -> Result<(), usize> {
        match mark[i] {
            2 => return Ok(()),
            1 => return Err(i),
            _ => {}
        }
        mark[i] = 1;
        for &d in svcs[i].after.iter() {
            visit(d as usize, svcs, mark, order)?;
        }
        mark[i] = 2;
        let _ = order.push(i as u8);
        Ok(())
    }
    for i in 0..svcs.len() {
        visit(i, svcs, &mut mark, &mut order)?;
    }
    Ok(order)
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
