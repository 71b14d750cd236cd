//! The config's `mounts`: option parsing and mounting each entry through an
//! fd resolved inside the rootfs.

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use crate::config::Mount;
use crate::error::{Ctx, Error, Result};
use crate::fsutil;

/// Mount flags, propagation and fs data parsed from an options list.
#[derive(Debug, Clone)]
pub struct Opts {
    pub flags: MsFlags,
    /// Flags explicitly cleared (e.g. "rw", "suid"): used when remounting.
    pub clear: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    pub rec: bool,
}

pub fn propagation_flag(s: &str) -> Option<MsFlags> {
    Some(match s {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

pub fn parse_opts(options: &[String]) -> Opts {
    let mut o = Opts { flags: MsFlags::empty(), clear: MsFlags::empty(), propagation: Vec::new(), data: Vec::new(), bind: false, rec: false };
    for opt in options {
        let (set, clr) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.rec = true;
                continue;
            }
            // Accepted and ignored, as runc and crun do.
            "tmpcopyup" | "idmap" | "ridmap" | "rro" | "rrw" | "nosymfollow" | "symfollow" => continue,
            other => {
                if let Some(p) = propagation_flag(other) {
                    o.propagation.push(p);
                } else {
                    o.data.push(other.to_string());
                }
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clr);
        o.clear.insert(clr);
    }
    o
}

/// Mount flags that a remount of a bind mount must keep when the source
/// has them locked (inside a user namespace): taken from statvfs.
fn locked_flags(target: &str) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(target) else { return MsFlags::empty() };
    let f = st.flags();
    let mut m = MsFlags::empty();
    for (s, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    ] {
        if f.contains(s) {
            m |= ms;
        }
    }
    m
}

/// Remounts the bind mount at `target` with `flags` (bind+remount), keeping
/// locked flags if the kernel insists.
pub fn remount_bind(target: &str, flags: MsFlags) -> Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(None::<&str>, target, None::<&str>, base | flags, None::<&str>) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => {
            let keep = locked_flags(target) & !MsFlags::MS_RDONLY;
            mount(None::<&str>, target, None::<&str>, base | flags | keep, None::<&str>)
                .ctx(|| format!("remount {target}"))
        }
        Err(e) => Err(Error::sys(format!("remount {target}"), e)),
    }
}

/// Context the mounts need from the container setup.
pub struct MountCtx<'a> {
    pub rootfs: BorrowedFd<'a>,
    pub bundle: &'a std::path::Path,
    pub userns: bool,
    pub new_netns: bool,
    /// For v1 `cgroup` mounts: (controller mount point on the host, the
    /// container's cgroup dir under it, subdir name).
    pub cgroup_binds: &'a [(String, String)],
    pub cgroup_v2: bool,
}

/// Mounts one config entry inside the rootfs.
pub fn mount_entry(m: &Mount, ctx: &MountCtx, idx: usize) -> Result<()> {
    let at = |what: &str| format!("mounts[{idx}] {} ({what})", m.destination);
    let opts = parse_opts(&m.options);
    let typ = m.typ.as_deref().unwrap_or("");
    let is_bind = opts.bind || typ == "bind";
    let dst = m.destination.as_str();

    // /proc and /sys must be real directories inside the rootfs: a symlink
    // there could point a procfs write at the host (CVE-2025-52881 family).
    if matches!(typ, "proc" | "sysfs") {
        if let Ok(fd) = fsutil::open_path_nofollow_in(ctx.rootfs, dst) {
            let st = nix::sys::stat::fstat(fd.as_fd()).ctx(|| at("stat"))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(Error::Other(format!("{}: rootfs {dst} is not a directory (symlink?), refusing", at(typ))));
            }
        }
    }

    if is_bind {
        let src = bind_source(m, ctx.bundle);
        let meta = std::fs::metadata(&src).map_err(|e| Error::io(&src, e))?;
        let target = fsutil::ensure_in(ctx.rootfs, dst, meta.is_dir())?;
        let tpath = fsutil::fd_path(target.as_fd());
        let mut f = MsFlags::MS_BIND;
        if opts.rec {
            f |= MsFlags::MS_REC;
        }
        mount(Some(src.as_str()), tpath.as_str(), None::<&str>, f, None::<&str>).ctx(|| at("bind"))?;
        // Re-open: the fd points below the new mount; the remount and the
        // propagation change act on the mount itself.
        let target = fsutil::open_path_in(ctx.rootfs, dst).ctx(|| at("reopen"))?;
        let tpath = fsutil::fd_path(target.as_fd());
        let extra = opts.flags & !(MsFlags::MS_REC | MsFlags::MS_BIND | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&tpath, extra)?;
        }
        for p in &opts.propagation {
            mount(None::<&str>, tpath.as_str(), None::<&str>, *p, None::<&str>).ctx(|| at("propagation"))?;
        }
        return Ok(());
    }

    if typ == "cgroup" {
        return mount_cgroup(m, &opts, ctx, idx);
    }

    let target = fsutil::ensure_in(ctx.rootfs, dst, true)?;
    let tpath = fsutil::fd_path(target.as_fd());
    let src = m.source.clone().unwrap_or_else(|| typ.to_string());
    let data = opts.data.join(",");
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    let r = mount(Some(src.as_str()), tpath.as_str(), Some(typ), flags, Some(data.as_str()));
    match r {
        Ok(()) => {}
        // devpts inside a user namespace: gid=5 may not be mapped.
        Err(Errno::EINVAL) if typ == "devpts" && data.contains("gid=") => {
            let d: Vec<&str> = opts.data.iter().map(String::as_str).filter(|o| !o.starts_with("gid=")).collect();
            mount(Some(src.as_str()), tpath.as_str(), Some(typ), flags, Some(d.join(",").as_str())).ctx(|| at("mount"))?;
        }
        // sysfs without its own netns, or mqueue without its own ipc ns,
        // cannot be mounted from a user namespace: bind the host's instead.
        Err(Errno::EPERM) if (typ == "sysfs" && (ctx.userns || !ctx.new_netns)) || (typ == "mqueue" && ctx.userns) => {
            let host = if typ == "sysfs" { "/sys" } else { "/dev/mqueue" };
            mount(Some(host), tpath.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .ctx(|| at("bind fallback"))?;
            let target = fsutil::open_path_in(ctx.rootfs, dst).ctx(|| at("reopen"))?;
            let extra = flags & !MsFlags::MS_REC;
            if !extra.is_empty() {
                remount_bind(&fsutil::fd_path(target.as_fd()), extra)?;
            }
        }
        Err(e) => return Err(Error::sys(at("mount"), e)),
    }
    if !opts.propagation.is_empty() {
        let target = fsutil::open_path_in(ctx.rootfs, dst).ctx(|| at("reopen"))?;
        for p in &opts.propagation {
            mount(None::<&str>, fsutil::fd_path(target.as_fd()).as_str(), None::<&str>, *p, None::<&str>)
                .ctx(|| at("propagation"))?;
        }
    }
    Ok(())
}

fn bind_source(m: &Mount, bundle: &std::path::Path) -> String {
    let s = m.source.clone().unwrap_or_default();
    if s.starts_with('/') {
        s
    } else {
        bundle.join(s).to_string_lossy().into_owned()
    }
}

/// A `cgroup` mount: cgroup2 directly (with a cgroup namespace) or a bind
/// of the container's own cgroup; on v1 a tmpfs with one bind per
/// controller hierarchy.
fn mount_cgroup(m: &Mount, opts: &Opts, ctx: &MountCtx, idx: usize) -> Result<()> {
    let at = |what: &str| format!("mounts[{idx}] {} ({what})", m.destination);
    let dst = m.destination.as_str();
    let target = fsutil::ensure_in(ctx.rootfs, dst, true)?;
    let tpath = fsutil::fd_path(target.as_fd());
    let flags = opts.flags & !(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC);
    if ctx.cgroup_v2 {
        let r = mount(Some("cgroup2"), tpath.as_str(), Some("cgroup2"), flags, None::<&str>);
        if r.is_ok() {
            return Ok(());
        }
        if let Some((host, _)) = ctx.cgroup_binds.first() {
            mount(Some(host.as_str()), tpath.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .ctx(|| at("bind"))?;
            if !flags.is_empty() {
                remount_bind(&tpath, flags)?;
            }
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        tpath.as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .ctx(|| at("tmpfs"))?;
    for (host_dir, name) in ctx.cgroup_binds {
        let sub = format!("{}/{}", dst.trim_end_matches('/'), name);
        let t = fsutil::ensure_in(ctx.rootfs, &sub, true)?;
        let tp = fsutil::fd_path(t.as_fd());
        mount(Some(host_dir.as_str()), tp.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .ctx(|| format!("bind cgroup {host_dir}"))?;
        let t = fsutil::open_path_in(ctx.rootfs, &sub).ctx(|| at("reopen"))?;
        remount_bind(&fsutil::fd_path(t.as_fd()), flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let t = fsutil::open_path_in(ctx.rootfs, dst).ctx(|| at("reopen"))?;
        mount(
            None::<&str>,
            fsutil::fd_path(t.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=755"),
        )
        .ctx(|| at("remount ro"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = parse_opts(&["nosuid".into(), "ro".into(), "rbind".into(), "mode=755".into(), "rslave".into()]);
        assert!(o.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY));
        assert!(o.bind && o.rec);
        assert_eq!(o.data, vec!["mode=755"]);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        let o = parse_opts(&["ro".into(), "rw".into()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }
}
