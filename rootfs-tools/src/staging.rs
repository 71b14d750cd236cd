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
        let name = dest
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{}: needs a directory name", dest.display())))?;
        check_dest(dest)?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(Error::io(
                "create",
                dest,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "parent directory does not exist",
                ),
            ));
        }
        let tmp = parent.join(format!(
            ".{}.husk-tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
        }
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp)
            .map_err(|e| Error::io("mkdir", &tmp, e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("chmod", &tmp, e))?;
        Ok(Staging {
            tmp,
            dest: dest.to_path_buf(),
            done: false,
        })
    }

    /// Renames the finished tree into place (replacing an empty directory).
    pub fn commit(mut self) -> Result<PathBuf> {
        check_dest(&self.dest)?;
        fs::rename(&self.tmp, &self.dest)
            .map_err(|e| Error::io("rename into place", &self.dest, e))?;
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
