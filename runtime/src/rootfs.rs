//! The container's root: propagation, bind of the rootfs onto itself,
//! pivot_root (or MS_MOVE + chroot), masked/readonly paths, read-only root.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::config::Spec;
use crate::error::{Ctx, Error, Result};
use crate::{fsutil, mounts};

/// Makes the host's mounts unreachable for propagation back, and the rootfs
/// a mount point. Returns an O_PATH fd of the rootfs (the root for every
/// later path resolution).
pub fn prepare(spec: &Spec, rootfs: &Path) -> Result<OwnedFd> {
    let prop = spec
        .linux()
        .rootfs_propagation
        .as_deref()
        .and_then(mounts::propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Start from slave (or the requested kind, recursively) so nothing we
    // mount leaks to the host.
    // Shared or unbindable are set at the end (an unbindable / could not
    // be bound); until then private or slave.
    let first = if prop.contains(MsFlags::MS_PRIVATE) { MsFlags::MS_PRIVATE } else { MsFlags::MS_SLAVE } | MsFlags::MS_REC;
    mount(None::<&str>, "/", None::<&str>, first, None::<&str>).ctx(|| "make / non-shared")?;
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .ctx(|| format!("bind rootfs {}", rootfs.display()))?;
    nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .ctx(|| format!("open rootfs {}", rootfs.display()))
}

/// Switches root to the rootfs. With `no_pivot` (initramfs hosts, where
/// pivot_root is refused) the rootfs is moved over / and chrooted into.
pub fn switch_root(rootfs: &OwnedFd, no_pivot: bool) -> Result<()> {
    nix::unistd::fchdir(rootfs).ctx(|| "chdir rootfs")?;
    if no_pivot {
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).ctx(|| "move rootfs to /")?;
        nix::unistd::chroot(".").ctx(|| "chroot")?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one;
        // detaching it (slave first, so the unmount does not propagate)
        // leaves the new root alone.
        nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root")?;
        mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>).ctx(|| "make old root slave")?;
        umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root")?;
    }
    nix::unistd::chdir("/").ctx(|| "chdir /")?;
    Ok(())
}

fn root_fd() -> Result<OwnedFd> {
    nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ctx(|| "open /")
}

/// After the switch: masked paths, readonly paths, read-only root and the
/// requested propagation of /.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux();
    let root = root_fd()?;
    for p in &linux.readonly_paths {
        readonly_path(root.as_fd(), p)?;
    }
    if !linux.masked_paths.is_empty() {
        // /dev/null as a checked fd: a symlink planted at /dev/null must not
        // turn a mask into a bind of something else (CVE-2025-31133).
        let null = fsutil::open_path_nofollow_in(root.as_fd(), "/dev/null").ctx(|| "open /dev/null for masking")?;
        let st = nix::sys::stat::fstat(null.as_fd()).ctx(|| "stat /dev/null")?;
        let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == nix::sys::stat::makedev(1, 3);
        if !is_null {
            return Err(Error::Other("/dev/null in the container is not the null device, refusing to mask with it".into()));
        }
        for p in &linux.masked_paths {
            mask_path(root.as_fd(), p, &null)?;
        }
    }
    if spec.root.as_ref().is_some_and(|r| r.readonly) {
        mounts::remount_bind("/", MsFlags::MS_RDONLY)?;
    }
    if let Some(p) = linux.rootfs_propagation.as_deref().and_then(mounts::propagation_flag) {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).ctx(|| "set rootfs propagation")?;
    }
    Ok(())
}

fn readonly_path(root: std::os::fd::BorrowedFd, p: &str) -> Result<()> {
    let fd = match fsutil::open_path_in(root, p) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("readonlyPaths {p}"), e)),
    };
    let fp = fsutil::fd_path(fd.as_fd());
    mount(Some(fp.as_str()), fp.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .ctx(|| format!("readonlyPaths {p}: bind"))?;
    let fd = fsutil::open_path_in(root, p).ctx(|| format!("readonlyPaths {p}"))?;
    mounts::remount_bind(&fsutil::fd_path(fd.as_fd()), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)
}

fn mask_path(root: std::os::fd::BorrowedFd, p: &str, null: &OwnedFd) -> Result<()> {
    let fd = match fsutil::open_path_in(root, p) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("maskedPaths {p}"), e)),
    };
    let st = nix::sys::stat::fstat(fd.as_fd()).ctx(|| format!("maskedPaths {p}"))?;
    let fp = fsutil::fd_path(fd.as_fd());
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        mount(Some("tmpfs"), fp.as_str(), Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0k,nr_inodes=1,mode=0555"))
            .or_else(|_| mount(Some("tmpfs"), fp.as_str(), Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>))
            .ctx(|| format!("maskedPaths {p}"))
    } else {
        let np = fsutil::fd_path(null.as_fd());
        mount(Some(np.as_str()), fp.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>).ctx(|| format!("maskedPaths {p}"))
    }
}
