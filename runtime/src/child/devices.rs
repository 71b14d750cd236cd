//! /dev inside the container: the default devices, `linux.devices`, and the
//! standard links. Nodes are made with mknodat in a /dev fd resolved inside
//! the rootfs, or bind-mounted from the host inside a user namespace.

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstatat, mknodat, Mode, SFlag};

use crate::error::{Ctx, Error, Result};
use crate::inroot;
use husk_oci::spec::{clean_path, Device};

/// The devices every container gets (runtime-spec "Default Devices").
pub fn defaults() -> Vec<Device> {
    [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)]
        .iter()
        .map(|(p, ma, mi)| Device {
            typ: "c".into(),
            path: (*p).into(),
            major: Some(*ma),
            minor: Some(*mi),
            file_mode: Some(0o666),
            uid: Some(0),
            gid: Some(0),
        })
        .collect()
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (if i == 0 { "/" } else { &path[..i] }, &path[i + 1..]),
        None => ("/", path),
    }
}

/// Creates one device node at `d.path` (normalised lexically first, then
/// resolved inside the rootfs; any path, as the spec allows).
pub fn create(rootfs: BorrowedFd, d: &Device, userns: bool) -> Result<()> {
    let path = clean_path(&d.path);
    let (parent, name) = split(&path);
    if name.is_empty() {
        return Err(Error::config("linux.devices", format!("{:?} names no file", d.path)));
    }
    let pfd = inroot::mkdir_all_in(rootfs, parent, 0o755)?;
    let dir = inroot::reopen_dir(pfd.as_fd()).ctx(|| format!("open {parent}"))?;
    // Whatever is there (a file, or a symlink planted to redirect us) is
    // replaced; directories are left alone and make this fail.
    match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let fmt = st.st_mode & libc::S_IFMT;
            if fmt == libc::S_IFDIR {
                return Err(Error::Other(format!("device {path}: a directory is in the way")));
            }
            nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir).ctx(|| format!("replace {path}"))?;
        }
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys(format!("stat {path}"), e)),
    }
    let perm = d.file_mode.unwrap_or(0o666) & 0o7777;
    if userns {
        // mknod is not allowed: bind the host's node over an empty file.
        let fd = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o000),
        )
        .ctx(|| format!("create {path}"))?;
        drop(fd);
        let t = inroot::open_path_nofollow_in(rootfs, &path).ctx(|| format!("open {path}"))?;
        mount(Some(path.as_str()), inroot::fd_path(t.as_fd()).as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .ctx(|| format!("bind {path}"))?;
        return Ok(());
    }
    let kind = match d.typ.as_str() {
        "c" | "u" => SFlag::S_IFCHR,
        "b" => SFlag::S_IFBLK,
        "p" => SFlag::S_IFIFO,
        t => return Err(Error::Other(format!("device {path}: unknown type {t:?}"))),
    };
    let dev = nix::sys::stat::makedev(d.major.unwrap_or(0) as u64, d.minor.unwrap_or(0) as u64);
    mknodat(dir.as_fd(), name, kind, Mode::from_bits_truncate(perm), dev).ctx(|| format!("mknod {path}"))?;
    // mknod applies the umask: set the exact mode, then the owner.
    nix::sys::stat::fchmodat(dir.as_fd(), name, Mode::from_bits_truncate(perm), nix::sys::stat::FchmodatFlags::FollowSymlink)
        .ctx(|| format!("chmod {path}"))?;
    nix::unistd::fchownat(
        dir.as_fd(),
        name,
        Some(nix::unistd::Uid::from_raw(d.uid.unwrap_or(0))),
        Some(nix::unistd::Gid::from_raw(d.gid.unwrap_or(0))),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {path}"))?;
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx (when /dev/pts is mounted) and
/// /dev/core.
pub fn links(rootfs: BorrowedFd, with_pts: bool) -> Result<()> {
    let dfd = inroot::mkdir_all_in(rootfs, "/dev", 0o755)?;
    let dir = inroot::reopen_dir(dfd.as_fd()).ctx(|| "open /dev")?;
    let mut l = vec![("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr")];
    if std::path::Path::new("/proc/kcore").exists() {
        l.push(("/proc/kcore", "core"));
    }
    if with_pts {
        // A node left by the rootfs must not shadow the devpts instance.
        let _ = nix::unistd::unlinkat(dir.as_fd(), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
        l.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in l {
        match nix::unistd::symlinkat(target, dir.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_paths() {
        assert_eq!(super::split("/dev/null"), ("/dev", "null"));
        assert_eq!(super::split("/dev/net/tun"), ("/dev/net", "tun"));
    }
}
