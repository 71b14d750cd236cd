//! husk-cgroups: cgroup v1/v2 management (see docs/cgroups.md).
//!
//! Modes: `Unified` (pure v2), `Legacy` (v1 controllers only), `Hybrid` (v1
//! controllers plus a cgroup2 mount: the v1 controllers are used) and
//! `Disabled` (no cgroup at all; `linux.resources` is ignored).

mod bpf;
mod devices;
mod error;
mod fsio;
mod mounts;
#[cfg(test)]
mod tests;
mod v1;
mod v2;

pub use error::Error;
pub use husk_oci::resources::*;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Unified,
    Legacy,
    Hybrid,
    Disabled,
}

/// Detects the host's cgroup layout from /proc/self/mountinfo.
pub fn detect() -> Mode {
    mode_of(&mounts::mounts())
}

fn mode_of(ms: &[mounts::CgMount]) -> Mode {
    let v1 = ms.iter().any(|m| !m.v2);
    let v2 = ms.iter().any(|m| m.v2);
    match (v1, v2) {
        (true, true) => Mode::Hybrid,
        (true, false) => Mode::Legacy,
        (false, true) => Mode::Unified,
        (false, false) => Mode::Disabled,
    }
}

/// One hierarchy the container lives in: v1 has one per mounted controller
/// hierarchy; v2 has exactly one (controllers empty).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hierarchy {
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted.
    pub mount: PathBuf,
    /// The container's cgroup directory.
    pub dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cgroup {
    pub mode: Mode,
    /// The cgroup path as resolved (absolute, or relative to the runtime's own
    /// cgroup), empty when disabled.
    pub path: String,
    pub hierarchies: Vec<Hierarchy>,
    /// Hybrid hosts: the container's directory in the cgroup2 mount, which
    /// holds no controller husk uses but places the processes in the
    /// unified hierarchy too (`0::/…` in /proc/PID/cgroup), as runc.
    #[serde(default)]
    pub unified: Option<PathBuf>,
}

const KILL_TIMEOUT: Duration = Duration::from_secs(10);
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Splits and checks a cgroups path: returns (absolute?, components).
fn check_path(p: &str) -> Result<(bool, Vec<String>), Error> {
    let field = "linux.cgroupsPath";
    if !p.starts_with('/') && p.contains(':') {
        return Err(Error::invalid(
            field,
            format!("{p:?} is a systemd slice:prefix:name path; needs --systemd-cgroup, which husk does not support yet"),
        ));
    }
    let parts: Vec<String> = p.split('/').filter(|c| !c.is_empty()).map(|s| s.to_string()).collect();
    if parts.is_empty() {
        return Err(Error::invalid(field, format!("{p:?} names no cgroup")));
    }
    if let Some(bad) = parts.iter().find(|c| *c == "." || *c == ".." || c.contains('\0')) {
        return Err(Error::invalid(field, format!("{p:?}: component {bad:?} not allowed")));
    }
    Ok((p.starts_with('/'), parts))
}

impl Cgroup {
    /// Resolves `linux.cgroupsPath` for container `id`; creates nothing.
    /// - absent: `/husk/<id>`;
    /// - absolute: relative to the root of each hierarchy;
    /// - relative: relative to the cgroup husk itself runs in (per hierarchy),
    ///   as runc does.
    pub fn new(mode: Mode, cgroups_path: Option<&str>, id: &str) -> Result<Cgroup, Error> {
        if mode == Mode::Disabled {
            return Ok(Cgroup { mode, path: String::new(), hierarchies: vec![], unified: None });
        }
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(Error::invalid("container id", format!("{id:?} cannot name a cgroup")));
        }
        let default = format!("/husk/{id}");
        let path = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(&default);
        let (absolute, parts) = check_path(path)?;
        let ms = mounts::mounts();
        let selfcg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let resolve = |m: &mounts::CgMount| -> PathBuf {
            let mut d = m.mountpoint.clone();
            if !absolute {
                let own = mounts::own_path(&selfcg, &m.controllers).unwrap_or_else(|| "/".into());
                let own = own.strip_prefix(m.root.as_str()).unwrap_or(&own);
                d.extend(own.split('/').filter(|c| !c.is_empty()));
            }
            d.extend(parts.iter());
            d
        };
        let hierarchies: Vec<Hierarchy> = match mode {
            Mode::Unified => {
                let m = mounts::v2_mount(&ms)
                    .ok_or_else(|| Error::unsupported("cgroup2", "no cgroup2 filesystem is mounted (check /proc/self/mountinfo)"))?;
                vec![Hierarchy { controllers: vec![], mount: m.mountpoint.clone(), dir: resolve(m) }]
            }
            _ => ms
                .iter()
                .filter(|m| !m.v2)
                .map(|m| Hierarchy { controllers: m.controllers.clone(), mount: m.mountpoint.clone(), dir: resolve(m) })
                .collect(),
        };
        if hierarchies.is_empty() {
            return Err(Error::unsupported(
                "v1",
                "no cgroup v1 controller is mounted (use --cgroup-manager disabled to run without cgroups)",
            ));
        }
        let unified = match mode {
            Mode::Hybrid => mounts::v2_mount(&ms).map(resolve),
            _ => None,
        };
        Ok(Cgroup { mode, path: path.to_string(), hierarchies, unified })
    }

    pub fn is_v2(&self) -> bool {
        self.mode == Mode::Unified
    }

    /// The directory of a v1 controller's hierarchy.
    pub fn v1_dir(&self, ctrl: &str) -> Option<&Path> {
        if self.is_v2() {
            return None;
        }
        self.hierarchies.iter().find(|h| h.controllers.iter().any(|c| c == ctrl)).map(|h| h.dir.as_path())
    }

    /// The v2 directory.
    pub fn v2_dir(&self) -> Option<&Path> {
        if self.is_v2() {
            self.hierarchies.first().map(|h| h.dir.as_path())
        } else {
            None
        }
    }

    /// Every directory of this cgroup (one per hierarchy).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.hierarchies.iter().map(|h| h.dir.as_path())
    }

    fn first_controller(h: &Hierarchy) -> &str {
        h.controllers.first().map(|s| s.as_str()).unwrap_or("cgroup2")
    }

    /// Fails, naming the controller, if `res` asks for something this host
    /// lacks. Touches nothing.
    fn check_available(&self, res: &Resources) -> Result<(), Error> {
        match self.mode {
            Mode::Disabled => Ok(()),
            Mode::Unified => {
                let root = &self.hierarchies[0].mount;
                let have = fsio::read("cgroup2", &root.join("cgroup.controllers")).unwrap_or_default();
                for (ctrl, field) in v2::needed(res)? {
                    if !have.split_whitespace().any(|c| c == ctrl) {
                        return Err(Error::missing(&ctrl, &field));
                    }
                }
                Ok(())
            }
            _ => {
                for (ctrl, field) in v1::needed(res) {
                    if self.v1_dir(ctrl).is_none() {
                        return Err(Error::missing(ctrl, &field));
                    }
                }
                Ok(())
            }
        }
    }

    /// Creates the directories (every v1 hierarchy, or the v2 directory with
    /// controllers enabled in its ancestors) and applies `res`. On error
    /// removes the directories it created.
    pub fn create(&self, res: Option<&Resources>) -> Result<(), Error> {
        if self.mode == Mode::Disabled {
            return Ok(());
        }
        let res = res.map(Resources::normalized);
        let res = res.as_ref();
        if let Some(r) = res {
            self.check_available(r)?;
        }
        let mut created: Vec<PathBuf> = Vec::new();
        let r = self.make_dirs(res, &mut created).and_then(|()| match res {
            Some(r) => self.apply(r),
            None => Ok(()),
        });
        if r.is_err() {
            for d in created.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
        r
    }

    fn make_dirs(&self, res: Option<&Resources>, created: &mut Vec<PathBuf>) -> Result<(), Error> {
        let needed_v2: Vec<String> = match (self.is_v2(), res) {
            (true, Some(r)) => v2::needed(r)?.into_iter().map(|x| x.0).collect(),
            _ => vec![],
        };
        for h in &self.hierarchies {
            let ctrl = Self::first_controller(h);
            let rel = h.dir.strip_prefix(&h.mount).unwrap_or(Path::new(""));
            let mut cur = h.mount.clone();
            let is_cpuset = h.controllers.iter().any(|c| c == "cpuset");
            // v1 realtime bandwidth: a new cgroup starts with
            // cpu.rt_runtime_us 0, and a child may never have more than its
            // parent. The parents husk makes (/husk) get the runtime the
            // container asks for; parents that existed are left alone.
            let rt = res
                .and_then(|r| r.cpu.as_ref())
                .and_then(|c| c.realtime_runtime)
                .filter(|r| *r > 0 && !self.is_v2() && h.controllers.iter().any(|c| c == "cpu"));
            let leaf = h.dir.clone();
            for comp in rel.components() {
                if self.is_v2() {
                    enable_subtree(&cur, &needed_v2)?;
                }
                cur.push(comp);
                match std::fs::create_dir(&cur) {
                    Ok(()) => created.push(cur.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io(ctrl, &cur, "mkdir", &e)),
                }
                if is_cpuset {
                    v1::cpuset_inherit(&cur)?;
                }
            }
            if let Some(r) = rt {
                // Ours: what this create made, and husk's default parent.
                let husk_parent = h.mount.join("husk");
                let ours: Vec<PathBuf> = h
                    .dir
                    .ancestors()
                    .filter(|a| a.starts_with(&h.mount) && *a != h.mount && *a != leaf)
                    .filter(|a| created.iter().any(|c| c == a) || *a == husk_parent)
                    .map(Path::to_path_buf)
                    .collect();
                v1::rt_raise_parents(&leaf, &ours, r)?;
            }
        }
        if let Some(u) = &self.unified {
            // Best effort: the unified side holds no limits.
            let mut missing = Vec::new();
            let mut cur = u.as_path();
            while !cur.exists() {
                missing.push(cur.to_path_buf());
                match cur.parent() {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            for d in missing.iter().rev() {
                if std::fs::create_dir(d).is_ok() {
                    created.push(d.clone());
                }
            }
        }
        Ok(())
    }

    fn apply(&self, res: &Resources) -> Result<(), Error> {
        match self.mode {
            Mode::Disabled => Ok(()),
            Mode::Unified => v2::apply(self.v2_dir().expect("v2 dir"), res),
            _ => v1::apply(self, res),
        }
    }

    /// Moves `pid` into the cgroup (every hierarchy; the unified side of a
    /// hybrid host where its directory could be made).
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        for h in &self.hierarchies {
            fsio::write(Self::first_controller(h), &h.dir.join("cgroup.procs"), &pid.to_string())?;
        }
        if let Some(u) = self.unified.as_ref().filter(|u| u.is_dir()) {
            let _ = fsio::write("cgroup2", &u.join("cgroup.procs"), &pid.to_string());
        }
        Ok(())
    }

    /// Applies changed resources to a live cgroup (`husk update`). What is
    /// not set (runc's zeros included) is left as it is. All or nothing:
    /// when a write fails, the files already written get their old values
    /// back.
    pub fn update(&self, res: &Resources) -> Result<(), Error> {
        if self.mode == Mode::Disabled {
            return Err(Error::Disabled("update"));
        }
        let res = res.normalized();
        self.check_available(&res)?;
        let journal = fsio::Journal::start();
        let r = self.apply(&res);
        if r.is_err() {
            journal.roll_back();
        }
        r
    }

    /// Every process in the cgroup and its descendants (all hierarchies).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        if self.mode == Mode::Disabled {
            return Err(Error::Disabled("listing processes"));
        }
        let mut out = Vec::new();
        for h in &self.hierarchies {
            fsio::procs_recursive(Self::first_controller(h), &h.dir, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn freezer_file(&self) -> Result<(&'static str, PathBuf), Error> {
        match self.mode {
            Mode::Disabled => Err(Error::Disabled("pause/resume")),
            Mode::Unified => {
                let f = self.v2_dir().expect("v2 dir").join("cgroup.freeze");
                Ok(("freezer", f))
            }
            _ => self
                .v1_dir("freezer")
                .map(|d| ("freezer", d.join("freezer.state")))
                .ok_or_else(|| Error::missing("freezer", "pause/resume")),
        }
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        let (ctrl, f) = self.freezer_file()?;
        if self.is_v2() && !f.exists() {
            return Err(Error::unsupported("freezer", "cgroup.freeze is missing: this kernel cannot freeze v2 cgroups (needs 5.2)"));
        }
        let (val, want) = match (self.is_v2(), frozen) {
            (true, true) => ("1", "frozen 1"),
            (true, false) => ("0", "frozen 0"),
            (false, true) => ("FROZEN", "FROZEN"),
            (false, false) => ("THAWED", "THAWED"),
        };
        let check = if self.is_v2() { f.with_file_name("cgroup.events") } else { f.clone() };
        let end = Instant::now() + FREEZE_TIMEOUT;
        let mut n = 0u32;
        loop {
            // v1 may stay FREEZING while a task is busy in the kernel:
            // writing FROZEN again retries the freeze.
            if n.is_multiple_of(20) {
                fsio::write(ctrl, &f, val)?;
            }
            let s = fsio::read(ctrl, &check)?;
            if s.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            if Instant::now() > end {
                if frozen {
                    let _ = self.set_frozen(false);
                }
                return Err(Error::Timeout {
                    controller: ctrl.into(),
                    path: f,
                    what: format!("did not reach {want:?} within {}s", FREEZE_TIMEOUT.as_secs()),
                });
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(if n < 20 { 1 } else { 10 }));
        }
    }

    pub fn freeze(&self) -> Result<(), Error> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<(), Error> {
        self.set_frozen(false)
    }

    /// True when the cgroup is (being) frozen: `paused` in `state`.
    pub fn is_frozen(&self) -> bool {
        let Ok((ctrl, f)) = self.freezer_file() else {
            return false;
        };
        match fsio::read_line(ctrl, &f) {
            Ok(s) => s == "1" || s == "FROZEN",
            Err(_) => false,
        }
    }

    fn has_freezer(&self) -> bool {
        match self.freezer_file() {
            Ok((_, f)) => f.exists(),
            Err(_) => false,
        }
    }

    /// Sends `sig` to every process of the cgroup. The cgroup is frozen
    /// meanwhile (when it has a freezer) so that no process forks past it.
    pub fn kill_all(&self, sig: i32) -> Result<(), Error> {
        if self.mode == Mode::Disabled {
            return Err(Error::Disabled("kill --all"));
        }
        let was_frozen = self.is_frozen();
        let froze = !was_frozen && self.has_freezer() && self.freeze().is_ok();
        let r = self.signal_each(sig);
        if froze || (was_frozen && sig == libc::SIGKILL) {
            // v1 frozen tasks cannot act on SIGKILL until thawed.
            let _ = self.thaw();
        }
        r
    }

    fn signal_each(&self, sig: i32) -> Result<(), Error> {
        for pid in self.pids()? {
            // SAFETY: kill(2) has no memory-safety preconditions.
            if unsafe { libc::kill(pid, sig) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(Error::io("cgroup", &self.hierarchies[0].dir, format!("kill {pid} signal {sig}"), &e));
                }
            }
        }
        Ok(())
    }

    /// SIGKILLs everything left (frozen first so no fork escapes), waits until
    /// the cgroup is empty, and removes its directories in every hierarchy.
    /// Idempotent: a cgroup already gone is fine.
    pub fn destroy(&self) -> Result<(), Error> {
        if self.mode == Mode::Disabled || !self.dirs().chain(self.unified.as_deref()).any(|d| d.exists()) {
            return Ok(());
        }
        let end = Instant::now() + KILL_TIMEOUT;
        loop {
            let pids = self.pids()?;
            if pids.is_empty() {
                break;
            }
            if Instant::now() > end {
                return Err(Error::Timeout {
                    controller: "cgroup".into(),
                    path: self.hierarchies[0].dir.clone(),
                    what: format!("processes still alive after {}s: {pids:?}", KILL_TIMEOUT.as_secs()),
                });
            }
            let killed_v2 = self.is_v2() && {
                let f = self.v2_dir().expect("v2").join("cgroup.kill");
                f.exists() && fsio::write("cgroup", &f, "1").is_ok()
            };
            if !killed_v2 {
                if self.has_freezer() {
                    let _ = self.freeze();
                }
                let _ = self.signal_each(libc::SIGKILL);
                if self.has_freezer() {
                    let _ = self.thaw();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for h in &self.hierarchies {
            fsio::rmdir_tree(Self::first_controller(h), &h.dir)?;
        }
        if let Some(u) = self.unified.as_ref().filter(|u| u.exists()) {
            fsio::rmdir_tree("cgroup2", u)?;
        }
        Ok(())
    }

    /// runc's `events --stats` data object.
    pub fn stats(&self) -> Result<serde_json::Value, Error> {
        match self.mode {
            Mode::Disabled => Err(Error::Disabled("events")),
            Mode::Unified => v2::stats(self.v2_dir().expect("v2")),
            _ => v1::stats(self),
        }
    }

    /// How many times the kernel OOM-killed a process of this cgroup.
    pub fn oom_count(&self) -> u64 {
        match self.mode {
            Mode::Disabled => 0,
            Mode::Unified => v2::oom_count(self.v2_dir().expect("v2")),
            _ => v1::oom_count(self),
        }
    }
}

/// Enables controllers in `dir`'s cgroup.subtree_control: every available
/// one (for statistics) where the kernel agrees; a failure is an error only
/// for controllers the config needs.
fn enable_subtree(dir: &Path, needed: &[String]) -> Result<(), Error> {
    let avail = fsio::read("cgroup2", &dir.join("cgroup.controllers")).unwrap_or_default();
    let on = fsio::read("cgroup2", &dir.join("cgroup.subtree_control")).unwrap_or_default();
    let f = dir.join("cgroup.subtree_control");
    for c in avail.split_whitespace() {
        if on.split_whitespace().any(|x| x == c) {
            continue;
        }
        if let Err(e) = fsio::write(c, &f, &format!("+{c}")) {
            if needed.iter().any(|n| n == c) {
                return Err(e);
            }
        }
    }
    for n in needed {
        if !avail.split_whitespace().any(|c| c == n) {
            return Err(Error::missing(n, &format!("{} (not delegated to {})", "linux.resources", dir.display())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn paths_resolve() {
        assert!(check_path("a:b:c").is_err());
        assert!(check_path("/a/../b").is_err());
        assert!(check_path("/").is_err());
        assert_eq!(check_path("/a//b/").unwrap(), (true, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(check_path("x/y").unwrap(), (false, vec!["x".to_string(), "y".to_string()]));
    }

    #[test]
    fn modes_from_mounts() {
        let v1 = mounts::parse_mountinfo("1 2 0:1 / /c/memory rw - cgroup cgroup rw,memory\n");
        let v2 = mounts::parse_mountinfo("1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let both: Vec<_> = v1.iter().chain(v2.iter()).cloned().collect();
        assert_eq!(mode_of(&v1), Mode::Legacy);
        assert_eq!(mode_of(&v2), Mode::Unified);
        assert_eq!(mode_of(&both), Mode::Hybrid);
        assert_eq!(mode_of(&[]), Mode::Disabled);
    }

    #[test]
    fn new_resolves_default_and_disabled() {
        let d = Cgroup::new(Mode::Disabled, None, "x").unwrap();
        assert!(d.hierarchies.is_empty());
        assert!(d.create(Some(&Resources::default())).is_ok());
        if detect() == Mode::Disabled {
            eprintln!("SKIP: no cgroup mounts on this host");
            return;
        }
        let c = Cgroup::new(detect(), None, "abc").unwrap();
        assert_eq!(c.path, "/husk/abc");
        for h in &c.hierarchies {
            assert_eq!(h.dir, h.mount.join("husk/abc"));
        }
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Cgroup>(&j).unwrap(), c);
        assert!(Cgroup::new(detect(), Some("../x"), "abc").is_err());
        assert!(Cgroup::new(detect(), None, "a/b").is_err());
    }
}
