//! Path resolution with the container's rootfs as root. Every path inside a
//! rootfs is attacker-controlled: resolve it with openat2(RESOLVE_IN_ROOT)
//! so `..` and symlinks (absolute ones too) stay inside, and never follow
//! /proc magic links; then act on the resulting fd.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::error::{Ctx, Error, Result};

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Opens `path` (absolute or relative, read as inside `root`) with `flags`.
pub fn open_in(root: BorrowedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(root, rel, how(flags))
}

/// O_PATH fd of `path` inside `root`, following symlinks inside the root.
pub fn open_path_in(root: BorrowedFd, path: &str) -> nix::Result<OwnedFd> {
    open_in(root, path, OFlag::O_PATH)
}

/// Like [`open_path_in`] but does not follow a final symlink.
pub fn open_path_nofollow_in(root: BorrowedFd, path: &str) -> nix::Result<OwnedFd> {
    open_in(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW)
}

/// Creates every missing directory of `path` inside `root` (each step
/// resolved in the root) and returns an O_PATH fd of the final directory.
pub fn mkdir_all_in(root: BorrowedFd, path: &str, mode: u32) -> Result<OwnedFd> {
    let mut cur = open_path_in(root, "/").ctx(|| "open rootfs")?;
    let mut sofar = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        sofar.push('/');
        sofar.push_str(comp);
        // Each step is resolved from the rootfs, so a symlink met on the
        // way (absolute, or climbing with "..") is followed inside the
        // rootfs, as it would be after the root switch.
        let next = openat2(root, sofar.trim_start_matches('/'), how(OFlag::O_PATH | OFlag::O_DIRECTORY));
        cur = match next {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let dfd = reopen_dir(cur.as_fd()).ctx(|| format!("open {path}"))?;
                match nix::sys::stat::mkdirat(dfd.as_fd(), comp, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Error::sys(format!("mkdir {path}"), e)),
                }
                openat2(dfd.as_fd(), comp, how(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)).ctx(|| format!("open {path}"))?
            }
            Err(e) => return Err(Error::sys(format!("open {path}"), e)),
        };
    }
    Ok(cur)
}

/// A real (non-O_PATH) directory fd from an O_PATH one.
pub fn reopen_dir(fd: BorrowedFd) -> nix::Result<OwnedFd> {
    openat2(fd, ".", OpenHow::new().flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC))
}

/// Ensures `path` exists inside `root` as a directory (`dir`) or a file and
/// returns an O_PATH fd of it. Parents are created as directories.
pub fn ensure_in(root: BorrowedFd, path: &str, dir: bool) -> Result<OwnedFd> {
    if dir {
        return mkdir_all_in(root, path, 0o755);
    }
    match open_path_in(root, path) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys(format!("open {path}"), e)),
    }
    let p = Path::new(path);
    let parent = p.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
    let name = p.file_name().ok_or_else(|| Error::Other(format!("{path}: no file name")))?;
    let pfd = mkdir_all_in(root, &parent, 0o755)?;
    let dfd = reopen_dir(pfd.as_fd()).ctx(|| format!("open {parent}"))?;
    match nix::fcntl::openat(
        dfd.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys(format!("create {path}"), e)),
    }
    open_path_in(root, path).ctx(|| format!("open {path}"))
}

/// "/proc/self/fd/N": a path the kernel resolves to exactly this fd's file.
pub fn fd_path(fd: BorrowedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// fstatfs f_type of an fd.
pub fn fs_type(fd: BorrowedFd) -> nix::Result<i64> {
    let st = nix::sys::statfs::fstatfs(fd)?;
    Ok(st.filesystem_type().0 as i64)
}

pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Opens a file under a procfs mount for writing, checking that the fd
/// really is on procfs (a bind mount over /proc must not redirect writes).
pub fn open_proc_write(path: &str) -> Result<OwnedFd> {
    let fd =
        nix::fcntl::open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty()).ctx(|| format!("open {path}"))?;
    match fs_type(fd.as_fd()) {
        Ok(PROC_SUPER_MAGIC) => Ok(fd),
        _ => Err(Error::Other(format!("{path}: not on procfs, refusing to write"))),
    }
}

/// Writes `data` to a procfs file through a checked fd.
pub fn write_proc(path: &str, data: &[u8]) -> Result<()> {
    let fd = open_proc_write(path)?;
    nix::unistd::write(&fd, data).ctx(|| format!("write {path}"))?;
    Ok(())
}
