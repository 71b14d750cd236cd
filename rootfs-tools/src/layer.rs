//! Applying one layer (a tar stream) onto a [`Tree`]: regular files, dirs,
//! symlinks, hard links, device nodes, fifos, modes, ownership, mtimes,
//! xattrs, and the OCI whiteout (`.wh.NAME`) and opaque (`.wh..wh..opq`)
//! markers.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    chmodat, chownat, fchmod, fchown, fsetxattr, futimens, linkat, makedev, mkdirat, mknodat, openat, statat, symlinkat, utimensat,
    AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::tree::{clean_rel, Tree};

const WH: &str = ".wh.";
const OPQ: &str = ".wh..wh..opq";
/// Granularity of hole detection in sparse members (a filesystem block).
const HOLE_BLOCK: usize = 4096;
static ZEROS: [u8; HOLE_BLOCK] = [0; HOLE_BLOCK];

fn is_zero(b: &[u8]) -> bool {
    // Slice equality is a memcmp.
    b == &ZEROS[..b.len()]
}

/// State carried across all layers of one import.
pub struct Apply {
    pub tree: Tree,
    /// Unpacked bytes so far (file data plus 512 per entry).
    pub total: u64,
    pub max_size: u64,
    /// Directory mtimes, set once every layer is in (children change them).
    dir_times: HashMap<PathBuf, Timespec>,
    /// Entries and their ancestors written by the current layer.
    this_layer: HashSet<PathBuf>,
    pub entries: u64,
    buf: Vec<u8>,
    /// Not running as root: no chown, device nodes skipped with a warning.
    rootless: bool,
    warned_devices: bool,
}

fn eio(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// Metadata of one entry, pax overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (sec, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let tv_sec: i64 = sec.parse().ok()?;
    let mut digits: String = frac.chars().take(9).filter(|c| c.is_ascii_digit()).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let tv_nsec: i64 = digits.parse().ok()?;
    Some(Timespec { tv_sec, tv_nsec: if tv_sec < 0 { 0 } else { tv_nsec } as _ })
}

fn meta_of<R: Read>(e: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta> {
    let h = e.header();
    let bad = |f: &str, err: std::io::Error| Error::format(format!("archive entry {name:?}"), format!("bad {f}: {err}"));
    let mut m = Meta {
        mode: h.mode().map_err(|x| bad("mode", x))? & 0o7777,
        uid: h.uid().map_err(|x| bad("uid", x))? as u32,
        gid: h.gid().map_err(|x| bad("gid", x))? as u32,
        mtime: Timespec { tv_sec: h.mtime().map_err(|x| bad("mtime", x))? as i64, tv_nsec: 0 },
        xattrs: Vec::new(),
    };
    if let Some(exts) = e.pax_extensions().map_err(|x| bad("pax header", x))? {
        for ext in exts {
            let ext = ext.map_err(|x| bad("pax header", x))?;
            let Ok(key) = ext.key() else { continue };
            let val = ext.value_bytes();
            let sval = std::str::from_utf8(val).unwrap_or("");
            match key {
                "uid" => m.uid = sval.parse().map_err(|_| Error::format(name, "bad pax uid"))?,
                "gid" => m.gid = sval.parse().map_err(|_| Error::format(name, "bad pax gid"))?,
                "mtime" => m.mtime = parse_pax_time(sval).ok_or_else(|| Error::format(name, "bad pax mtime"))?,
                k if k.starts_with("SCHILY.xattr.") => m.xattrs.push((OsString::from(&k["SCHILY.xattr.".len()..]), val.to_vec())),
                _ => {}
            }
        }
    }
    Ok(m)
}

impl Apply {
    pub fn new(tree: Tree, max_size: u64) -> Apply {
        Apply {
            tree,
            total: 0,
            max_size,
            dir_times: HashMap::new(),
            this_layer: HashSet::new(),
            entries: 0,
            buf: vec![0u8; 256 * 1024],
            rootless: !rustix::process::geteuid().is_root(),
            warned_devices: false,
        }
    }

    fn mark(&mut self, p: &Path) {
        let mut cur = Some(p);
        while let Some(c) = cur {
            if c.as_os_str().is_empty() || !self.this_layer.insert(c.to_path_buf()) {
                break;
            }
            cur = c.parent();
        }
    }

    /// Applies one layer's tar stream. The reader is consumed up to the tar's
    /// end-of-archive marker.
    pub fn layer<R: Read>(&mut self, r: R) -> Result<()> {
        self.this_layer.clear();
        self.tree.invalidate();
        let mut ar = tar::Archive::new(r);
        let entries = ar.entries().map_err(|e| Error::format("layer", e.to_string()))?;
        for e in entries {
            let mut e = e.map_err(|e| Error::format("layer", format!("bad tar stream: {e}")))?;
            self.entry(&mut e)?;
        }
        Ok(())
    }

    fn charge(&mut self, n: u64, name: &str) -> Result<()> {
        self.total = self.total.saturating_add(n);
        if self.total > self.max_size {
            return Err(Error::TooBig { limit: self.max_size, entry: name.to_string() });
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let raw = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let rel = clean_rel(&raw)?;
        self.entries += 1;
        // The apparent size (a GNU sparse member's real size, a pax `size`)
        // is charged before anything is written: a 10 KB sparse member can
        // stand for terabytes.
        let apparent = e.size().max(e.header().entry_size().unwrap_or(0));
        self.charge(512u64.saturating_add(apparent), &name)?;
        if rel.as_os_str().is_empty() {
            // The root itself: only a directory makes sense; keep DIR 0755.
            if !kind.is_dir() {
                return Err(Error::hostile(name, "archive root is not a directory"));
            }
            return Ok(());
        }
        let (dir, base) = Tree::split(&rel);
        let base_s = base.to_string_lossy().into_owned();
        if base_s == OPQ {
            return self.opaque(&dir);
        }
        if let Some(victim) = base_s.strip_prefix(WH) {
            if victim.is_empty() || victim == "." || victim == ".." {
                return Err(Error::hostile(name, "bad whiteout name"));
            }
            let target = dir.join(victim);
            if self.this_layer.contains(&target) {
                return Ok(());
            }
            let Some(fd) = self.tree.dir(&dir, false)? else {
                return Ok(());
            };
            Tree::remove_all_at(fd, OsStr::new(victim))
                .map_err(|err| Error::io("remove (whiteout)", self.tree.root_path.join(&target), err))?;
            self.tree.invalidate();
            return Ok(());
        }
        let meta = meta_of(e, &name)?;
        // Hard link targets are resolved before the parent walk (both walks
        // share the directory cache).
        let link_src = if kind.is_hard_link() {
            let l = e.link_name_bytes().ok_or_else(|| Error::format(name.clone(), "hard link without target"))?.into_owned();
            let lrel = clean_rel(&l)
                .map_err(|_| Error::hostile(name.clone(), format!("hard link to outside ({})", String::from_utf8_lossy(&l))))?;
            if lrel.as_os_str().is_empty() {
                return Err(Error::hostile(name, "hard link to the root"));
            }
            Some(lrel)
        } else {
            None
        };
        self.mark(&rel);
        let root_path = self.tree.root_path.clone();
        let full = root_path.join(&rel);
        let ioe = |op: &'static str, err: Errno| Error::io(op, &full, eio(err));

        // Clear the way: anything but a dir-over-dir is replaced.
        {
            let fd = self.tree.dir(&dir, true)?.expect("created");
            match statat(fd, &base, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                    if !(is_dir && kind.is_dir()) {
                        Tree::remove_all_at(fd, &base).map_err(|err| Error::io("replace", &full, err))?;
                        if is_dir {
                            self.tree.invalidate();
                        }
                    }
                }
                Err(Errno::NOENT) => {}
                Err(err) => return Err(ioe("stat", err)),
            }
        }

        if let Some(lrel) = link_src {
            let (ldir, lbase) = Tree::split(&lrel);
            let ldir_fd = match self.tree.dir(&ldir, false)? {
                Some(fd) => rustix::io::dup(fd).map_err(|x| ioe("dup", x))?,
                None => return Err(Error::format(name, format!("hard link target {} missing", lrel.display()))),
            };
            match statat(&ldir_fd, &lbase, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    return Err(Error::hostile(name, "hard link to a directory"))
                }
                Ok(_) => {}
                Err(_) => return Err(Error::format(name, format!("hard link target {} missing", lrel.display()))),
            }
            let fd = self.tree.dir(&dir, true)?.expect("created");
            // Flags 0: a symlink target is linked itself, never followed.
            linkat(&ldir_fd, &lbase, fd, &base, AtFlags::empty()).map_err(|x| ioe("link", x))?;
            return Ok(());
        }

        let times = Timestamps { last_access: meta.mtime, last_modification: meta.mtime };
        // Without root, ownership cannot be given away: files stay ours.
        let owner = if self.rootless { (None, None) } else { (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid))) };
        let mode = Mode::from_raw_mode(meta.mode);
        if kind.is_file() || kind == tar::EntryType::Continuous || kind.is_gnu_sparse() {
            let fd = self.tree.dir(&dir, true)?.expect("created");
            let f = openat(
                fd,
                &base,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|x| ioe("create", x))?;
            let mut file = std::fs::File::from(f);
            let sparse = kind.is_gnu_sparse();
            // Bytes of zeros skipped (not yet written) in a sparse member.
            let mut hole = 0u64;
            loop {
                let n = match e.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(Error::format(name, format!("reading file data: {err}"))),
                };
                if !sparse {
                    file.write_all(&self.buf[..n]).map_err(|err| Error::io("write", &full, err))?;
                    continue;
                }
                // The tar reader fills a sparse member's holes with zeros:
                // all-zero blocks are seeked over, so holes stay holes.
                for chunk in self.buf[..n].chunks(HOLE_BLOCK) {
                    if is_zero(chunk) {
                        hole += chunk.len() as u64;
                        continue;
                    }
                    if hole > 0 {
                        file.seek(SeekFrom::Current(hole as i64)).map_err(|err| Error::io("seek", &full, err))?;
                        hole = 0;
                    }
                    file.write_all(chunk).map_err(|err| Error::io("write", &full, err))?;
                }
            }
            if sparse {
                // A trailing hole: the size without blocks.
                file.set_len(e.size()).map_err(|err| Error::io("truncate", &full, err))?;
            }
            fchown(&file, owner.0, owner.1).map_err(|x| ioe("chown", x))?;
            set_xattrs(file.as_fd(), &meta.xattrs, &full)?;
            fchmod(&file, mode).map_err(|x| ioe("chmod", x))?;
            futimens(&file, &times).map_err(|x| ioe("set times", x))?;
        } else if kind.is_dir() {
            let fd = self.tree.dir(&dir, true)?.expect("created");
            match mkdirat(fd, &base, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(x) => return Err(ioe("mkdir", x)),
            }
            let sub = Tree::open_subdir(fd, &base).map_err(|err| Error::io("open", &full, err))?;
            fchown(&sub, owner.0, owner.1).map_err(|x| ioe("chown", x))?;
            set_xattrs(sub.as_fd(), &meta.xattrs, &full)?;
            fchmod(&sub, mode).map_err(|x| ioe("chmod", x))?;
            self.dir_times.insert(rel.clone(), meta.mtime);
        } else if kind.is_symlink() {
            let target = e.link_name_bytes().ok_or_else(|| Error::format(name.clone(), "symlink without target"))?.into_owned();
            let fd = self.tree.dir(&dir, true)?.expect("created");
            symlinkat(OsStr::from_bytes(&target), fd, &base).map_err(|x| ioe("symlink", x))?;
            chownat(fd, &base, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW).map_err(|x| ioe("chown", x))?;
            utimensat(fd, &base, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|x| ioe("set times", x))?;
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let h = e.header();
            let maj = h.device_major().ok().flatten().unwrap_or(0);
            let min = h.device_minor().ok().flatten().unwrap_or(0);
            let ft = if kind.is_fifo() {
                FileType::Fifo
            } else if kind.is_block_special() {
                FileType::BlockDevice
            } else {
                FileType::CharacterDevice
            };
            if self.rootless && ft != FileType::Fifo {
                if !self.warned_devices {
                    eprintln!("husk-rootfs: warning: not root: device nodes skipped (first: {name})");
                    self.warned_devices = true;
                }
                return Ok(());
            }
            let fd = self.tree.dir(&dir, true)?.expect("created");
            mknodat(fd, &base, ft, Mode::from_raw_mode(0o600), makedev(maj, min)).map_err(|x| ioe("mknod", x))?;
            chownat(fd, &base, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW).map_err(|x| ioe("chown", x))?;
            chmodat(fd, &base, mode, AtFlags::empty()).map_err(|x| ioe("chmod", x))?;
            utimensat(fd, &base, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|x| ioe("set times", x))?;
        } else {
            return Err(Error::format(name, format!("unsupported tar entry type {:?}", kind)));
        }
        Ok(())
    }

    /// `.wh..wh..opq` in `dir`: hide everything lower layers put there.
    fn opaque(&mut self, dir: &Path) -> Result<()> {
        self.mark(dir);
        let Some(fd) = self.tree.dir(dir, false)? else {
            return Ok(());
        };
        let fd = rustix::io::dup(fd).map_err(|e| Error::io("dup", dir, eio(e)))?;
        self.prune(fd.as_fd(), dir)?;
        self.tree.invalidate();
        Ok(())
    }

    fn prune(&self, fd: BorrowedFd<'_>, dir: &Path) -> Result<()> {
        let full = self.tree.root_path.join(dir);
        for n in Tree::list(fd).map_err(|e| Error::io("read", &full, e))? {
            let p = dir.join(&n);
            if !self.this_layer.contains(&p) {
                Tree::remove_all_at(fd, &n).map_err(|e| Error::io("remove (opaque)", full.join(&n), e))?;
            } else if let Ok(sub) = Tree::open_subdir(fd, &n) {
                self.prune(sub.as_fd(), &p)?;
            }
        }
        Ok(())
    }

    /// Sets the deferred directory mtimes. Call once after the last layer.
    pub fn finish(&mut self) -> Result<()> {
        let times = std::mem::take(&mut self.dir_times);
        for (p, t) in times {
            let (dir, base) = Tree::split(&p);
            let Ok(Some(fd)) = self.tree.dir(&dir, false) else {
                continue;
            };
            let ts = Timestamps { last_access: t, last_modification: t };
            match statat(fd, &base, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    utimensat(fd, &base, &ts, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| Error::io("set times", self.tree.root_path.join(&p), eio(e)))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Sets xattrs where the filesystem allows; refusals (ENOTSUP, EPERM) are
/// reported as warnings, not failures.
fn set_xattrs(fd: BorrowedFd<'_>, xs: &[(OsString, Vec<u8>)], path: &Path) -> Result<()> {
    for (k, v) in xs {
        match fsetxattr(fd, k.as_os_str(), v, XattrFlags::empty()) {
            Ok(()) => {}
            Err(Errno::NOTSUP) | Err(Errno::PERM) | Err(Errno::ACCESS) => {
                eprintln!("husk-rootfs: warning: {}: xattr {} not set", path.display(), k.to_string_lossy());
            }
            Err(e) => return Err(Error::io("set xattr", path, eio(e))),
        }
    }
    Ok(())
}
