//! Atomic service updates: the on-disk protocol, and pruning old versions.
//!
//! A versioned service's directory holds symlinks to version directories:
//!
//! * `current`  — the version that runs (the service reaches its files
//!   through it: `run -> current/run`, `rootfs -> current`, ...);
//! * `previous` — the version before it;
//! * `pending`  — only while an update is not yet confirmed: a second
//!   name (hard link) of the symlink `current` was before the switch, i.e.
//!   the version to go back to;
//! * `next`     — only between the request and the switch: the new version;
//! * `old.INO`  — versions that dropped out (second names of their old
//!   links), removed by `ctl prune`.
//!
//! Every step is one link(2), rename(2) or unlink(2) in that directory,
//! followed by an fsync of it, so a power cut at any point leaves a state
//! that `recover` (at the next start) turns into "old version" (when
//! `pending` is there) or "new version" (when it is not).

use crate::sys::{self, CBuf, Stat, R};
use crate::text::fmt_u64;
use core::ffi::{c_int, CStr};

/// The longest version path (a link target) husk-init reads or writes.
pub const TARGET_MAX: usize = 255;
pub type Target = [u8; TARGET_MAX + 1];

/// A service directory open for the *at calls (closed on drop).
pub struct Dir(pub c_int);

impl Drop for Dir {
    fn drop(&mut self) {
        sys::close(self.0);
    }
}

impl Dir {
    pub fn open(path: &CStr) -> R<Dir> {
        sys::open(path, libc::O_RDONLY | libc::O_DIRECTORY, 0).map(Dir)
    }

    /// Where the link `name` points (None: no such link, or too long).
    pub fn target<'a>(&self, name: &CStr, buf: &'a mut Target) -> Option<&'a CStr> {
        sys::readlink_at(self.0, name, buf).ok()
    }

    /// `name` itself (no symlink followed), or what it leads to.
    fn stat(&self, name: &CStr, follow: bool) -> Option<Stat> {
        sys::stat_at(self.0, name, if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW }).ok()
    }

    /// Gives the link `name` a second name `old.INO`, which `prune` finds.
    fn keep_as_old(&self, name: &CStr) {
        if let Some(st) = self.stat(name, false) {
            let mut nb = [0; 20];
            let old = CBuf::<{ crate::services::PATH_MAX }>::of(&[b"old.", fmt_u64(st.ino, &mut nb)]).unwrap_or_default();
            let _ = sys::link_at(self.0, name, old.cstr());
        }
    }

    /// fsync(2) of the directory: the step just taken is on disk.
    fn done<T>(&self, r: R<T>) -> R<T> {
        sys::fsync(self.0);
        r
    }

    /// Step 1, at the request: `previous` is recorded as old, `pending`
    /// names the current version, `next` the new one. Nothing runs
    /// differently yet: a crash now rolls back to the same version.
    pub fn begin(&self, to: &CStr) -> R<()> {
        // Only a service reached through a `current` link is versioned.
        let mut t = [0; TARGET_MAX + 1];
        sys::readlink_at(self.0, c"current", &mut t)?;
        self.keep_as_old(c"previous");
        sys::link_at(self.0, c"current", c"pending")?;
        let _ = sys::unlink_at(self.0, c"next", 0);
        let r = sys::symlink_at(to, self.0, c"next");
        if r.is_err() {
            let _ = sys::unlink_at(self.0, c"pending", 0);
        }
        self.done(r)
    }

    /// Step 2, once the service has stopped: the switch, one rename.
    pub fn switch(&self) -> R<()> {
        self.done(sys::rename_at(self.0, c"next", c"current"))
    }

    /// Step 3a, once the new version proved healthy: `pending` becomes
    /// `previous` (one rename; from here on the new version is the one).
    pub fn commit(&self) -> R<()> {
        self.done(sys::rename_at(self.0, c"pending", c"previous"))
    }

    /// Step 3b (or at start, when `pending` survived a crash): back to the
    /// version `pending` names; the new one is recorded as old. Every step
    /// is safe to repeat. False when there was no update to undo.
    pub fn rollback(&self) -> bool {
        let Some(p) = self.stat(c"pending", false) else {
            return false;
        };
        if self.stat(c"current", false).is_some_and(|c| c.ino != p.ino) {
            self.keep_as_old(c"current");
        }
        // (When both are the same link, rename does nothing: unlink.)
        let _ = sys::rename_at(self.0, c"pending", c"current");
        let _ = sys::unlink_at(self.0, c"pending", 0);
        let _ = self.done(sys::unlink_at(self.0, c"next", 0));
        true
    }

    /// (In a child: it may take long.) Removes every `old.*` version that
    /// is neither `current` nor `previous`, and the records of the ones that
    /// are gone. Returns how many versions were removed.
    pub fn prune(&self) -> u32 {
        let keep = [self.stat(c"current", true), self.stat(c"previous", true)];
        let mut n = 0;
        let _ = sys::each_dirent(self.0, &mut |rec, _| {
            let mut t = [0; TARGET_MAX + 1];
            if !rec.to_bytes().starts_with(b"old.") {
                return;
            }
            let Some(to) = self.target(rec, &mut t) else {
                return;
            };
            if let Some(st) = self.stat(to, true).filter(|st| !keep.contains(&Some(*st))) {
                if !remove_tree(self.0, to, st.dev) {
                    return;
                }
                n += 1;
            }
            let _ = sys::unlink_at(self.0, rec, 0);
        });
        let _ = self.done(Ok(()));
        n
    }
}

/// Removes `name` (relative to `dfd`) and everything under it, without
/// following symlinks or leaving the file system `dev` (a mount point
/// found inside is left alone, and so is the directory holding it).
fn remove_tree(dfd: c_int, name: &CStr, dev: u64) -> bool {
    if sys::unlink_at(dfd, name, 0).is_ok() {
        return true;
    }
    if let Ok(fd) = sys::open_at(dfd, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW) {
        if sys::stat_at(fd, c"", libc::AT_EMPTY_PATH).is_ok_and(|st| st.dev == dev) {
            let _ = sys::each_dirent(fd, &mut |n, _| {
                if !matches!(n.to_bytes(), b"." | b"..") {
                    remove_tree(fd, n, dev);
                }
            });
        }
        sys::close(fd);
    }
    sys::unlink_at(dfd, name, libc::AT_REMOVEDIR).is_ok()
}
