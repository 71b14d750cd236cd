//! The container's root: propagation, bind of the rootfs onto itself,
//! pivot_root (or MS_MOVE + chroot), masked/readonly paths, read-only root.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::mounts::{self, Deferred};
use crate::error::{Ctx, Error, Result};
use crate::inroot;
use husk_oci::Spec;

/// Makes the host's mounts unreachable for propagation back, and the rootfs
/// a mount point. Returns an O_PATH fd of the rootfs (the root for every
/// later path resolution).
pub fn prepare(spec: &Spec, rootfs: &Path) -> Result<OwnedFd> {
    let prop = spec.linux().rootfs_propagation.as_deref().and_then(mounts::propagation_flag).unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
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
pub fn switch_root(rootfs: &OwnedFd, rootfs_path: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        hide_host_procfs(rootfs_path)?;
    }
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

/// Before a chroot (`--no-pivot`) the host's procfs and sysfs stay in our
/// mount namespace, and while a full (unmasked) instance is reachable the
/// kernel lets a process with CAP_SYS_ADMIN in a new user namespace mount a
/// fresh, unmasked one. Detach every full proc/sysfs mount outside the
/// rootfs (or cover it with a tmpfs where detaching is refused), as runc.
fn hide_host_procfs(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    let mut targets = Vec::new();
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        let (Some(root), Some(point), Some(fstype)) = (f.get(3), f.get(4), f.get(sep + 1)) else {
            continue;
        };
        let point = unescape(point);
        if *root != "/" || !matches!(*fstype, "proc" | "sysfs") || Path::new(&point).starts_with(rootfs) {
            continue;
        }
        targets.push(point);
    }
    for p in targets {
        match mount(None::<&str>, p.as_str(), None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>) {
            Ok(()) => {}
            // Gone with a parent already detached.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("--no-pivot: make {p} slave"), e)),
        }
        match umount2(p.as_str(), MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL) | Err(Errno::EPERM) => {
                mount(Some("tmpfs"), p.as_str(), Some("tmpfs"), MsFlags::empty(), None::<&str>).ctx(|| format!("--no-pivot: cover {p}"))?;
            }
            Err(e) => return Err(Error::sys(format!("--no-pivot: detach {p}"), e)),
        }
    }
    Ok(())
}

/// mountinfo's octal escapes (`\040` for a space…).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn root_fd() -> Result<OwnedFd> {
    nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ctx(|| "open /")
}

/// After the switch: the deferred read-only remounts, readonly paths,
/// masked paths, read-only root and the requested propagation of /.
pub fn finish(spec: &Spec, later: &Deferred) -> Result<()> {
    let linux = spec.linux();
    let root = root_fd()?;
    for dst in &later.readonly {
        let fd = inroot::open_path_in(root.as_fd(), dst).ctx(|| format!("reopen {dst}"))?;
        let p = inroot::fd_path(fd.as_fd());
        // A remount of the mount itself (not a bind): keeps its options.
        let cur = mounts::locked_flags(&p) & !MsFlags::MS_RDONLY;
        mount(None::<&str>, p.as_str(), None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | cur, None::<&str>)
            .ctx(|| format!("remount {dst} read-only"))?;
    }
    for p in &linux.readonly_paths {
        readonly_path(root.as_fd(), p)?;
    }
    if !linux.masked_paths.is_empty() {
        // /dev/null as a checked fd: a symlink planted at /dev/null must not
        // turn a mask into a bind of something else (CVE-2025-31133).
        let null = inroot::open_path_nofollow_in(root.as_fd(), "/dev/null").ctx(|| "open /dev/null for masking")?;
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
    let fd = match inroot::open_path_in(root, p) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("readonlyPaths {p}"), e)),
    };
    let fp = inroot::fd_path(fd.as_fd());
    mount(Some(fp.as_str()), fp.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .ctx(|| format!("readonlyPaths {p}: bind"))?;
    let fd = inroot::open_path_in(root, p).ctx(|| format!("readonlyPaths {p}"))?;
    mounts::remount_bind(&inroot::fd_path(fd.as_fd()), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)
}

fn mask_path(root: std::os::fd::BorrowedFd, p: &str, null: &OwnedFd) -> Result<()> {
    let fd = match inroot::open_path_in(root, p) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("maskedPaths {p}"), e)),
    };
    let st = nix::sys::stat::fstat(fd.as_fd()).ctx(|| format!("maskedPaths {p}"))?;
    let fp = inroot::fd_path(fd.as_fd());
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        mount(Some("tmpfs"), fp.as_str(), Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0k,nr_inodes=1,mode=0555"))
            .or_else(|_| mount(Some("tmpfs"), fp.as_str(), Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>))
            .ctx(|| format!("maskedPaths {p}"))
    } else {
        let np = inroot::fd_path(null.as_fd());
        mount(Some(np.as_str()), fp.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>).ctx(|| format!("maskedPaths {p}"))
    }
}
