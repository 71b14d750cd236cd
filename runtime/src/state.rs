//! Container state under `--root/ID/`: the OCI state plus what husk needs to
//! find everything the container owns. Commands on one container are
//! serialised by an flock on `ID/lock`.
//!
//! Crash order: `create` makes `ID/` first and writes `state.json` before
//! each side effect it records (the cgroup before its directories, the
//! init's pid before the init may leave its wait), so whatever exists on
//! the host is findable from the state directory at every instant. A
//! directory whose `create` died is shown as `stopped` and `delete
//! --force` removes what it names; the directory itself goes last.
//! `state.json` is replaced atomically (temp file, fsync, rename), so it is
//! never half-written; stray temp files go with the directory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use husk_cgroups::Cgroup;
use husk_oci::{ContainerState, SpecState, Status};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub id: String,
    /// 0 until the init exists.
    pub pid: i32,
    pub bundle: String,
    pub rootfs: String,
    /// RFC 3339.
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Start time of `pid` (clock ticks since boot, /proc/PID/stat field 22),
    /// to tell our process from a recycled pid.
    pub start_time: u64,
    /// `create` finished: the init waits for `start`.
    pub created_ok: bool,
    /// `start` has released the process.
    pub started: bool,
    /// Fds in the waiting init: `start` writes to `start_fd` and reads
    /// `exec_fd` until the exec closes it.
    pub start_fd: i32,
    pub exec_fd: i32,
    /// The container's cgroup (None when cgroups are disabled). Recorded
    /// before any of its directories is made.
    pub cgroup: Option<Cgroup>,
}

/// IDs: letters, digits, `_`, `.`, `-`; not empty, not starting with `.`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// An exclusive lock on one container's state directory.
pub struct Lock {
    _file: File,
}

fn flock(f: &File, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Locks `root/ID/` (waiting for whoever holds it). The directory is the
/// container: its lock file is made here if a crash left the directory
/// without one.
pub fn lock(root: &Path, id: &str) -> Result<Lock> {
    validate_id(id)?;
    let d = dir(root, id);
    let p = d.join("lock");
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&p)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotExist(id.into())),
        Err(e) => return Err(Error::io(&p, e)),
    };
    flock(&f, libc::LOCK_EX).map_err(|e| Error::io(&p, e))?;
    // The directory may have been removed while we waited.
    if !d.is_dir() || std::fs::symlink_metadata(&p).is_err() {
        return Err(Error::NotExist(id.into()));
    }
    Ok(Lock { _file: f })
}

/// Is a command (a `create` in progress) holding the lock right now?
fn locked_by_other(root: &Path, id: &str) -> bool {
    let Ok(f) = File::open(dir(root, id).join("lock")) else {
        return false;
    };
    // SAFETY: flock on an fd we own; LOCK_NB never blocks.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    r != 0
}

/// Creates `--root` (0711) if needed, then `root/ID/` (0711) and its lock
/// (locked). Fails if the id is taken.
pub fn create_dir(root: &Path, id: &str) -> Result<Lock> {
    std::fs::DirBuilder::new().recursive(true).mode(0o711).create(root).map_err(|e| Error::io(root, e))?;
    let d = dir(root, id);
    match std::fs::DirBuilder::new().mode(0o711).create(&d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::Exists(id.into())),
        Err(e) => return Err(Error::io(&d, e)),
    }
    let p = d.join("lock");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    flock(&f, libc::LOCK_EX).map_err(|e| Error::io(&p, e))?;
    Ok(Lock { _file: f })
}

/// Writes `data` to `path` atomically with mode 0600: temp file, fsync,
/// rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_mode(path, data, 0o600)
}

pub fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let r = (|| {
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).custom_flags(libc::O_CLOEXEC).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// What `load` finds in a state directory.
pub enum Found {
    /// A state.json.
    State(Box<State>),
    /// The directory without a state.json: a `create` that is starting,
    /// or that died before its first write.
    Bare,
}

impl State {
    pub fn save(&self, root: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).map_err(|e| Error::Other(format!("state: {e}")))?;
        write_atomic(&dir(root, &self.id).join("state.json"), &data)
    }

    /// What `root/ID/` holds. "does not exist" only when there is no
    /// directory; a corrupt state.json is an error naming the file.
    pub fn find(root: &Path, id: &str) -> Result<Found> {
        validate_id(id)?;
        let d = dir(root, id);
        let p = d.join("state.json");
        match std::fs::read(&p) {
            Ok(data) => {
                let s: State = serde_json::from_slice(&data).map_err(|e| Error::Other(format!("{}: corrupt state: {e}", p.display())))?;
                s.check(&d)?;
                Ok(Found::State(Box::new(s)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if d.is_dir() {
                    Ok(Found::Bare)
                } else {
                    Err(Error::NotExist(id.into()))
                }
            }
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// A state file is not trusted blindly before husk signals or removes
    /// what it names: its id must be its directory's, and each cgroup
    /// directory must lie strictly below its hierarchy's mount and end
    /// with the path the saved config (or husk's default `/husk/ID`)
    /// gives. A hierarchy root there would make `kill --all` signal every
    /// process on the machine.
    fn check(&self, dir: &Path) -> Result<()> {
        let bad = |msg: String| Error::Other(format!("{}: {msg}; refusing to act on it", dir.join("state.json").display()));
        if dir.file_name().and_then(|n| n.to_str()) != Some(self.id.as_str()) {
            return Err(bad(format!("id {:?} is not its directory's", self.id)));
        }
        let Some(cg) = &self.cgroup else { return Ok(()) };
        let cfg = dir.join("config.json");
        let spec: husk_oci::Spec = std::fs::read(&cfg)
            .ok()
            .and_then(|d| husk_oci::spec::from_json(&d).ok())
            .ok_or_else(|| bad(format!("names a cgroup but {} is missing or corrupt", cfg.display())))?;
        let default = format!("/husk/{}", self.id);
        let want = spec.linux().cgroups_path.as_deref().filter(|p| !p.is_empty()).unwrap_or(&default);
        let tail: PathBuf = want.split('/').filter(|c| !c.is_empty()).collect();
        if tail.as_os_str().is_empty() || tail.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(bad(format!("cgroup path {want:?} is not a container's")));
        }
        for h in &cg.hierarchies {
            if h.dir == h.mount || !h.dir.starts_with(&h.mount) || !h.dir.ends_with(&tail) {
                return Err(bad(format!(
                    "cgroup {} is not the container's (expected {} below {})",
                    h.dir.display(),
                    tail.display(),
                    h.mount.display()
                )));
            }
        }
        if let Some(u) = &cg.unified {
            if !u.ends_with(&tail) || u.components().count() <= tail.components().count() + 1 {
                return Err(bad(format!("cgroup {} is not the container's", u.display())));
            }
        }
        Ok(())
    }

    /// The state of a container, a directory without state.json shown as
    /// what is known of it.
    pub fn load(root: &Path, id: &str) -> Result<State> {
        match State::find(root, id)? {
            Found::State(s) => Ok(*s),
            Found::Bare => Ok(State { id: id.to_string(), ..Default::default() }),
        }
    }

    /// Is our process still alive (and not a zombie, and not a recycled pid)?
    pub fn alive(&self) -> bool {
        self.pid > 0 && proc_start_time(self.pid).is_some_and(|(t, zombie)| t == self.start_time && !zombie)
    }

    /// The status; `create_running` says whether a `create` holds the lock.
    pub fn status_with(&self, create_running: bool) -> Status {
        if !self.created_ok {
            return if create_running { Status::Creating } else { Status::Stopped };
        }
        if !self.alive() {
            return Status::Stopped;
        }
        if self.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            return Status::Paused;
        }
        if self.started {
            Status::Running
        } else {
            Status::Created
        }
    }

    /// The status, for a caller that holds the lock (or does not care
    /// about a concurrent create).
    pub fn status(&self) -> Status {
        self.status_with(false)
    }

    /// The state as runc prints it (`state`, `list --format json`).
    pub fn container_state(&self, status: Status) -> ContainerState {
        ContainerState {
            oci_version: husk_oci::OCI_VERSION.into(),
            id: self.id.clone(),
            pid: if status == Status::Stopped { 0 } else { self.pid },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.annotations.clone(),
            owner: "root".into(),
        }
    }

    /// The runtime spec's state, as hooks and the seccomp agent read it.
    pub fn spec_state(&self, status: Status) -> SpecState {
        SpecState {
            oci_version: husk_oci::OCI_VERSION.into(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped { 0 } else { self.pid },
            bundle: self.bundle.clone(),
            annotations: self.annotations.clone(),
        }
    }

    /// `spec_state` as JSON text.
    pub fn spec_json(&self, status: Status) -> String {
        serde_json::to_string(&self.spec_state(status)).unwrap_or_default()
    }
}

/// (start time, is zombie) from /proc/PID/stat.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parens: split after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); starttime is field 22 → index 19.
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, zombie))
}

/// Now in RFC 3339 (UTC, nanoseconds), without a date crate.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_nanos())
}

/// Removes `root/ID/` in crash order, once what it names is gone:
/// state.json first (the directory alone then reads as a stopped
/// container), then the other files, then the lock and the directory, so
/// that until the very end a crash leaves something `delete` still finds.
pub fn remove_dir(root: &Path, id: &str) -> Result<()> {
    let d = dir(root, id);
    match std::fs::remove_file(d.join("state.json")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(d.join("state.json"), e)),
    }
    crate::fault::point("delete: state.json removed");
    let rd = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
    for e in rd.flatten() {
        if e.file_name() != "state.json" && e.file_name() != "lock" {
            let p = e.path();
            let r = if e.file_type().is_ok_and(|t| t.is_dir()) { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            r.map_err(|e| Error::io(&p, e))?;
        }
    }
    crate::fault::point("delete: state dir emptied");
    let _ = std::fs::remove_file(d.join("lock"));
    std::fs::remove_dir(&d).map_err(|e| Error::io(&d, e))
}

/// Ids of every container under `root` (every valid-id directory, with or
/// without a state.json), sorted.
pub fn list_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|id| validate_id(id).is_ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The status of `id` for `state` and `list`, seeing a create in progress.
pub fn status_of(root: &Path, st: &State) -> Status {
    st.status_with(!st.created_ok && locked_by_other(root, &st.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3", "A9"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", ".hidden", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_shape() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.ends_with('Z') && &s[4..5] == "-" && &s[10..11] == "T", "{s}");
        assert!(s.starts_with("20"), "{s}");
    }

    #[test]
    fn own_start_time() {
        let (t, z) = proc_start_time(std::process::id() as i32).unwrap();
        assert!(t > 0 && !z);
    }

    #[test]
    fn bare_and_corrupt_directories() {
        let root = std::env::temp_dir().join(format!("husk-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bare")).unwrap();
        assert!(matches!(State::find(&root, "bare").unwrap(), Found::Bare));
        assert_eq!(status_of(&root, &State::load(&root, "bare").unwrap()), Status::Stopped);
        assert_eq!(State::load(&root, "bare").unwrap().status(), Status::Stopped);
        assert!(matches!(State::find(&root, "none"), Err(Error::NotExist(_))));
        {
            let _l = create_dir(&root, "busy").unwrap();
            assert!(matches!(create_dir(&root, "busy"), Err(Error::Exists(_))));
            assert!(matches!(State::find(&root, "busy").unwrap(), Found::Bare));
            assert_eq!(status_of(&root, &State::load(&root, "busy").unwrap()), Status::Creating);
        }
        std::fs::write(root.join("bare/state.json"), b"{not json").unwrap();
        let e = State::find(&root, "bare").err().unwrap().to_string();
        assert!(e.contains("corrupt state") && e.contains("bare/state.json"), "{e}");
        assert_eq!(list_ids(&root), ["bare", "busy"]);
        let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
        assert_eq!(mode(&root.join("busy")), 0o711);
        write_atomic(&root.join("busy/state.json"), b"{}").unwrap();
        assert_eq!(mode(&root.join("busy/state.json")), 0o600);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn tampered_cgroup_is_refused() {
        let root = std::env::temp_dir().join(format!("husk-state-cg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("c1")).unwrap();
        std::fs::write(root.join("c1/config.json"), br#"{"ociVersion":"1.0.0","root":{"path":"r"}}"#).unwrap();
        let h =
            |dir: &str| husk_cgroups::Hierarchy { controllers: vec!["pids".into()], mount: "/sys/fs/cgroup/pids".into(), dir: dir.into() };
        let cg = |dir: &str| husk_cgroups::Cgroup {
            mode: husk_cgroups::Mode::Legacy,
            path: "/husk/c1".into(),
            hierarchies: vec![h(dir)],
            unified: None,
        };
        let mut st = State { id: "c1".into(), cgroup: Some(cg("/sys/fs/cgroup/pids/husk/c1")), ..Default::default() };
        st.save(&root).unwrap();
        assert!(State::find(&root, "c1").is_ok());
        for dir in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/pids/other", "/elsewhere/husk/c1"] {
            st.cgroup = Some(cg(dir));
            st.save(&root).unwrap();
            let e = State::find(&root, "c1").err().unwrap().to_string();
            assert!(e.contains("refusing"), "{dir}: {e}");
        }
        st.cgroup = None;
        st.id = "c2".into();
        std::fs::write(root.join("c1/state.json"), serde_json::to_vec(&st).unwrap()).unwrap();
        assert!(State::find(&root, "c1").err().unwrap().to_string().contains("is not its directory"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
