//! Container state under `--root/ID/`: the OCI state plus what husk needs to
//! find the container again. Written atomically; commands on one container
//! are serialised by an flock on `ID/lock`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub bundle: String,
    pub rootfs: String,
    /// RFC 3339.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// husk's own fields (not part of the OCI state output).
    #[serde(default)]
    pub husk: Private,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Private {
    /// `start` has released the process.
    pub started: bool,
    /// Start time of `pid` (clock ticks since boot, /proc/PID/stat field 22),
    /// to tell our process from a recycled pid.
    pub start_time: u64,
    /// Fds in the waiting init: `start` writes to `start_fd` and reads
    /// `exec_fd` until the exec closes it.
    pub start_fd: i32,
    pub exec_fd: i32,
    /// The cgroup, as the cgroups module serialises it (null when none).
    #[serde(default)]
    pub cgroup: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        }
    }
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

pub fn lock(root: &Path, id: &str) -> Result<Lock> {
    let d = dir(root, id);
    let p = d.join("lock");
    let f = match File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotExist(id.into())),
        Err(e) => return Err(Error::io(&p, e)),
    };
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::io(&p, std::io::Error::last_os_error()));
    }
    // The directory may have been removed while we waited.
    if !d.join("state.json").exists() && !d.join("lock").exists() {
        return Err(Error::NotExist(id.into()));
    }
    Ok(Lock { _file: f })
}

/// Creates `root/ID/` and its lock (locked). Fails if the id is taken.
pub fn create_dir(root: &Path, id: &str) -> Result<Lock> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let d = dir(root, id);
    match std::fs::create_dir(&d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::Exists(id.into())),
        Err(e) => return Err(Error::io(&d, e)),
    }
    let p = d.join("lock");
    let f = File::create(&p).map_err(|e| Error::io(&p, e))?;
    // SAFETY: flock on an fd we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    Ok(Lock { _file: f })
}

/// Writes `data` to `path` atomically: temp file, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let r = (|| {
        let mut f = File::create(&tmp)?;
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

impl State {
    pub fn save(&self, root: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).map_err(|e| Error::Other(format!("state: {e}")))?;
        write_atomic(&dir(root, &self.id).join("state.json"), &data)
    }

    pub fn load(root: &Path, id: &str) -> Result<State> {
        validate_id(id)?;
        let p = dir(root, id).join("state.json");
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotExist(id.into())),
            Err(e) => return Err(Error::io(&p, e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Other(format!("{}: corrupt state: {e}", p.display())))
    }

    /// Is our process still alive (and not a zombie, and not a recycled pid)?
    pub fn alive(&self) -> bool {
        self.pid > 0 && proc_start_time(self.pid).is_some_and(|(t, zombie)| t == self.husk.start_time && !zombie)
    }

    pub fn status(&self) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if crate::cgroups_glue::is_frozen(self) {
            return Status::Paused;
        }
        if self.husk.started {
            Status::Running
        } else {
            Status::Created
        }
    }

    /// The OCI state JSON (what `state` prints and hooks read).
    pub fn oci_json(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if status != Status::Stopped {
            v["pid"] = self.pid.into();
        } else {
            v["pid"] = 0.into();
        }
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
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
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Ids of every container under `root`, sorted.
pub fn list_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("state.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
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
}
