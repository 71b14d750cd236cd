//! A directory tree written only through file descriptors: every path is
//! walked one component at a time with O_NOFOLLOW|O_DIRECTORY from the root's
//! fd, so no operation can follow a symlink out of the tree. A path that meets
//! a symlink (or a non-directory) on the way is refused as hostile.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// A relative path checked to hold only normal components.
pub type RelPath = PathBuf;

/// Splits an archive member name into a clean relative path. Leading `./` is
/// dropped; absolute paths and `..` are refused. Returns an empty path for the
/// root itself (`.`, `./`).
pub fn clean_rel(raw: &[u8]) -> Result<RelPath> {
    let name = String::from_utf8_lossy(raw).into_owned();
    if raw.first() == Some(&b'/') {
        return Err(Error::hostile(name, "absolute path"));
    }
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(Error::hostile(name, "path contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(Error::hostile(name, "absolute path")),
        }
    }
    Ok(out)
}

pub struct Tree {
    pub root_path: PathBuf,
    root: OwnedFd,
    /// Directories walked to so far (each checked symlink-free when opened),
    /// so an entry's parent is usually one lookup away.
    cache: HashMap<RelPath, OwnedFd>,
}

/// At most this many cached directory fds (well under the usual 1024 limit).
const CACHE_MAX: usize = 256;

fn errno_io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

fn open_dir_at(parent: BorrowedFd<'_>, name: &OsStr) -> std::result::Result<OwnedFd, Errno> {
    openat(parent, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
}

impl Tree {
    pub fn open(root: &Path) -> Result<Tree> {
        let fd = openat(rustix::fs::CWD, root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::io("open", root, errno_io(e)))?;
        Ok(Tree { root_path: root.to_path_buf(), root: fd, cache: HashMap::new() })
    }

    /// Forgets the cached directories. Must be called whenever a directory
    /// is removed or replaced, so no cached fd outlives its path.
    pub fn invalidate(&mut self) {
        self.cache.clear();
    }

    /// Opens directory `dir` (relative) without following any symlink,
    /// creating missing components (mode 0755, root-owned) when `create`.
    /// Ok(None) when a component is missing and `create` is false.
    pub fn dir(&mut self, dir: &Path, create: bool) -> Result<Option<BorrowedFd<'_>>> {
        if dir.as_os_str().is_empty() {
            return Ok(Some(self.root.as_fd()));
        }
        if !self.cache.contains_key(dir) {
            // Walk from the deepest cached ancestor (or the root).
            let base = dir
                .ancestors()
                .skip(1)
                .find(|a| !a.as_os_str().is_empty() && self.cache.contains_key(*a))
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let rest: Vec<OsString> = dir.strip_prefix(&base).unwrap().iter().map(|c| c.to_os_string()).collect();
            if self.cache.len() + rest.len() > CACHE_MAX {
                // Keep the starting point, drop the rest.
                let keep = self.cache.remove(&base);
                self.cache.clear();
                if let Some(fd) = keep {
                    self.cache.insert(base.clone(), fd);
                }
            }
            let mut walked = base;
            for comp in &rest {
                let next = {
                    let parent = if walked.as_os_str().is_empty() { self.root.as_fd() } else { self.cache[&walked].as_fd() };
                    match open_dir_at(parent, comp) {
                        Ok(fd) => fd,
                        Err(Errno::NOENT) if create => {
                            match rustix::fs::mkdirat(parent, comp.as_os_str(), Mode::from_raw_mode(0o755)) {
                                Ok(()) | Err(Errno::EXIST) => {}
                                Err(e) => return Err(Error::io("mkdir", self.root_path.join(dir), errno_io(e))),
                            }
                            open_dir_at(parent, comp).map_err(|e| Error::io("open", self.root_path.join(dir), errno_io(e)))?
                        }
                        Err(Errno::NOENT) => return Ok(None),
                        Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                            return Err(Error::hostile(dir.display().to_string(), "path passes through a symlink or non-directory"))
                        }
                        Err(e) => return Err(Error::io("open", self.root_path.join(dir), errno_io(e))),
                    }
                };
                walked.push(comp);
                self.cache.insert(walked.clone(), next);
            }
        }
        Ok(self.cache.get(dir).map(|fd| fd.as_fd()))
    }

    /// Parent directory fd and final name of a non-empty relative path.
    pub fn split(path: &Path) -> (PathBuf, OsString) {
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = path.file_name().map(OsStr::to_os_string).unwrap_or_default();
        (parent, name)
    }

    /// Removes `name` inside `dir` (recursively for directories) without
    /// following symlinks. Missing is not an error.
    pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<()> {
        let st = match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(errno_io(e)),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let fd = open_dir_at(dir, name).map_err(errno_io)?;
            Tree::empty_dir(fd.as_fd())?;
            unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(errno_io)
        } else {
            unlinkat(dir, name, AtFlags::empty()).map_err(errno_io)
        }
    }

    /// Removes everything inside the directory `fd`.
    pub fn empty_dir(fd: BorrowedFd<'_>) -> std::io::Result<()> {
        for n in Tree::list(fd)? {
            Tree::remove_all_at(fd, &n)?;
        }
        Ok(())
    }

    /// Names in a directory, without `.` and `..`.
    pub fn list(fd: BorrowedFd<'_>) -> std::io::Result<Vec<OsString>> {
        let mut d = Dir::read_from(fd).map_err(errno_io)?;
        let mut names = Vec::new();
        while let Some(e) = d.read() {
            let e = e.map_err(errno_io)?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        Ok(names)
    }

    /// Opens an existing directory `name` in `dir` without following symlinks.
    pub fn open_subdir(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<OwnedFd> {
        open_dir_at(dir, name).map_err(errno_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_rel_accepts_and_refuses() {
        assert_eq!(clean_rel(b"./a/b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(clean_rel(b"a//b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(clean_rel(b"./").unwrap(), PathBuf::new());
        assert!(clean_rel(b"/etc/passwd").is_err());
        assert!(clean_rel(b"a/../../x").is_err());
        assert!(clean_rel(b"..").is_err());
    }
}
