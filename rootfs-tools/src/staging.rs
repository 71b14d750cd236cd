//! Build-beside-and-rename: every command that produces a tree builds it in a
//! hidden sibling of the destination and renames it into place only when
//! complete, so a failure leaves nothing behind.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct Staging {
    pub tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

/// `.NAME.husk-tmp-PID` in `parent`, the hidden sibling in which this
/// process builds NAME, after removing the ones that killed runs left:
/// siblings for the same NAME whose PID is no longer a process. A live PID
/// (even a reused one) is left alone. A concurrent run in another PID
/// namespace can look dead from here; removing its sibling makes that run
/// fail, it never puts a half-built tree in place.
pub fn tmp_sibling(parent: &Path, name: &str) -> PathBuf {
    let prefix = format!(".{name}.husk-tmp-");
    let me = std::process::id();
    if let Ok(rd) = fs::read_dir(parent) {
        for e in rd.flatten() {
            let f = e.file_name();
            let Some(pid) = f.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            // Our own PID's leftover is stale too: this run has not made it yet.
            if pid != me && alive(pid) {
                continue;
            }
            let p = e.path();
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&p),
                _ => fs::remove_file(&p),
            };
        }
    }
    parent.join(format!("{prefix}{me}"))
}

/// Whether `pid` names a process (signal 0: ESRCH means none).
fn alive(pid: u32) -> bool {
    match i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        Some(p) => !matches!(rustix::process::test_kill_process(p), Err(rustix::io::Errno::SRCH)),
        None => true,
    }
}

/// Fails unless `dest` is absent or an empty directory.
pub fn check_dest(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("stat", dest, e)),
        Ok(m) if m.is_dir() => {
            let mut rd = fs::read_dir(dest).map_err(|e| Error::io("read", dest, e))?;
            if rd.next().is_some() {
                Err(Error::Exists(dest.to_path_buf()))
            } else {
                Ok(())
            }
        }
        Ok(_) => Err(Error::Exists(dest.to_path_buf())),
    }
}

impl Staging {
    /// Creates the staging directory (mode 0755) beside `dest`.
    pub fn new(dest: &Path) -> Result<Staging> {
        let name = dest.file_name().ok_or_else(|| Error::Usage(format!("{}: needs a directory name", dest.display())))?;
        check_dest(dest)?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(Error::io("create", dest, std::io::Error::new(std::io::ErrorKind::NotFound, "parent directory does not exist")));
        }
        let tmp = tmp_sibling(&parent, &name.to_string_lossy());
        fs::DirBuilder::new().mode(0o755).create(&tmp).map_err(|e| Error::io("mkdir", &tmp, e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io("chmod", &tmp, e))?;
        Ok(Staging { tmp, dest: dest.to_path_buf(), done: false })
    }

    /// Like [`Staging::new`], but `dest` may be an existing directory of any
    /// content: [`Staging::commit_replace`] swaps the new tree in.
    pub fn new_replacing(dest: &Path) -> Result<Staging> {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => {
                let name = dest.file_name().ok_or_else(|| Error::Usage(format!("{}: needs a directory name", dest.display())))?;
                let parent = match dest.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let tmp = tmp_sibling(&parent, &name.to_string_lossy());
                fs::DirBuilder::new().mode(0o755).create(&tmp).map_err(|e| Error::io("mkdir", &tmp, e))?;
                fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io("chmod", &tmp, e))?;
                Ok(Staging { tmp, dest: dest.to_path_buf(), done: false })
            }
            Ok(_) => Err(Error::Exists(dest.to_path_buf())),
            Err(_) => Staging::new(dest),
        }
    }

    /// Puts the finished tree at `dest`: renamed there when `dest` is
    /// absent, else exchanged with the old tree in one step
    /// (renameat2 RENAME_EXCHANGE) and the old tree removed after.
    pub fn commit_replace(mut self) -> Result<PathBuf> {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        let old = match fs::symlink_metadata(&self.dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io("rename into place", &self.dest, e))?;
                self.done = true;
                return Ok(self.dest.clone());
            }
            Err(e) => return Err(Error::io("stat", &self.dest, e)),
            Ok(m) if !m.is_dir() => return Err(Error::Exists(self.dest.clone())),
            Ok(_) => self.tmp.clone(),
        };
        match renameat_with(CWD, &self.tmp, CWD, &self.dest, RenameFlags::EXCHANGE) {
            Ok(()) => {}
            // A filesystem without RENAME_EXCHANGE: move the old tree aside
            // first (a short window without DIR).
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
                let aside = self.tmp.with_extension("old");
                fs::rename(&self.dest, &aside).map_err(|e| Error::io("move aside", &self.dest, e))?;
                if let Err(e) = fs::rename(&self.tmp, &self.dest) {
                    let _ = fs::rename(&aside, &self.dest);
                    return Err(Error::io("rename into place", &self.dest, e));
                }
                self.done = true;
                let _ = fs::remove_dir_all(&aside);
                return Ok(self.dest.clone());
            }
            Err(e) => return Err(Error::io("exchange into place", &self.dest, std::io::Error::from_raw_os_error(e.raw_os_error()))),
        }
        self.done = true;
        // `old` (the staging path) now holds the previous tree.
        fs::remove_dir_all(&old).map_err(|e| Error::io("remove the previous tree", &old, e))?;
        Ok(self.dest.clone())
    }

    /// Renames the finished tree into place (replacing an empty directory).
    pub fn commit(mut self) -> Result<PathBuf> {
        check_dest(&self.dest)?;
        fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io("rename into place", &self.dest, e))?;
        self.done = true;
        Ok(self.dest.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            // remove_dir_all does not follow symlinks: safe on hostile trees.
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}
