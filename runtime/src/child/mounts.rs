//! The config's `mounts`: option parsing and mounting each entry through an
//! fd resolved inside the rootfs. No option is dropped silently: flags and
//! propagation are applied, recursive options (`rro`, `rnosuid`, …) with
//! mount_setattr(AT_RECURSIVE), and the rest is filesystem data, which a
//! bind mount cannot take (so there it is an error).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use husk_oci::spec::Mount;
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use crate::error::{Ctx, Error, Result};
use crate::inroot;

/// mount_setattr(2) attributes (linux/mount.h).
pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;
pub const ATTR_ATIME_MASK: u64 = 0x70;
pub const ATTR_RELATIME: u64 = 0x0;
pub const ATTR_NOATIME: u64 = 0x10;
pub const ATTR_STRICTATIME: u64 = 0x20;
pub const ATTR_NODIRATIME: u64 = 0x80;
pub const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Recursive options: (name, set?, attribute). "set" false clears it.
const RECURSIVE: [(&str, bool, u64); 18] = [
    ("rro", true, ATTR_RDONLY),
    ("rrw", false, ATTR_RDONLY),
    ("rnosuid", true, ATTR_NOSUID),
    ("rsuid", false, ATTR_NOSUID),
    ("rnodev", true, ATTR_NODEV),
    ("rdev", false, ATTR_NODEV),
    ("rnoexec", true, ATTR_NOEXEC),
    ("rexec", false, ATTR_NOEXEC),
    ("rnodiratime", true, ATTR_NODIRATIME),
    ("rdiratime", false, ATTR_NODIRATIME),
    ("rrelatime", true, ATTR_RELATIME),
    ("rnorelatime", false, ATTR_RELATIME),
    ("rnoatime", true, ATTR_NOATIME),
    ("ratime", false, ATTR_NOATIME),
    ("rstrictatime", true, ATTR_STRICTATIME),
    ("rnostrictatime", false, ATTR_STRICTATIME),
    ("rnosymfollow", true, ATTR_NOSYMFOLLOW),
    ("rsymfollow", false, ATTR_NOSYMFOLLOW),
];

/// Every mount option husk knows (for `husk features`).
pub fn known_options() -> Vec<&'static str> {
    let mut v: Vec<&str> = FLAGS.iter().map(|(n, _, _)| *n).collect();
    v.extend(husk_oci::names::PROPAGATIONS);
    v.extend(RECURSIVE.iter().map(|(n, _, _)| *n));
    v.extend(["bind", "rbind", "tmpcopyup"]);
    v.sort_unstable();
    v
}

/// Plain options: (name, flags set, flags cleared).
const FLAGS: [(&str, MsFlags, MsFlags); 29] = [
    ("defaults", MsFlags::empty(), MsFlags::empty()),
    ("ro", MsFlags::MS_RDONLY, MsFlags::empty()),
    ("rw", MsFlags::empty(), MsFlags::MS_RDONLY),
    ("nosuid", MsFlags::MS_NOSUID, MsFlags::empty()),
    ("suid", MsFlags::empty(), MsFlags::MS_NOSUID),
    ("nodev", MsFlags::MS_NODEV, MsFlags::empty()),
    ("dev", MsFlags::empty(), MsFlags::MS_NODEV),
    ("noexec", MsFlags::MS_NOEXEC, MsFlags::empty()),
    ("exec", MsFlags::empty(), MsFlags::MS_NOEXEC),
    ("sync", MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
    ("async", MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
    ("dirsync", MsFlags::MS_DIRSYNC, MsFlags::empty()),
    ("remount", MsFlags::MS_REMOUNT, MsFlags::empty()),
    ("mand", MsFlags::MS_MANDLOCK, MsFlags::empty()),
    ("nomand", MsFlags::empty(), MsFlags::MS_MANDLOCK),
    ("noatime", MsFlags::MS_NOATIME, MsFlags::empty()),
    ("atime", MsFlags::empty(), MsFlags::MS_NOATIME),
    ("nodiratime", MsFlags::MS_NODIRATIME, MsFlags::empty()),
    ("diratime", MsFlags::empty(), MsFlags::MS_NODIRATIME),
    ("relatime", MsFlags::MS_RELATIME, MsFlags::empty()),
    ("norelatime", MsFlags::empty(), MsFlags::MS_RELATIME),
    ("strictatime", MsFlags::MS_STRICTATIME, MsFlags::empty()),
    ("nostrictatime", MsFlags::empty(), MsFlags::MS_STRICTATIME),
    ("lazytime", MsFlags::MS_LAZYTIME, MsFlags::empty()),
    ("nolazytime", MsFlags::empty(), MsFlags::MS_LAZYTIME),
    ("silent", MsFlags::MS_SILENT, MsFlags::empty()),
    ("loud", MsFlags::empty(), MsFlags::MS_SILENT),
    ("nosymfollow", MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW), MsFlags::empty()),
    ("symfollow", MsFlags::empty(), MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
];

/// Mount flags, propagation, recursive attributes and fs data parsed from
/// an options list.
#[derive(Debug, Clone)]
pub struct Opts {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    pub rec: bool,
    /// mount_setattr(AT_RECURSIVE): attributes to set and to clear.
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Copy the directory's contents into the new tmpfs.
    pub tmpcopyup: bool,
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

/// Parses `options` of `mounts[idx]`; anything else is filesystem data.
pub fn parse_opts(options: &[String], idx: usize) -> Result<Opts> {
    let mut o = Opts {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
        bind: false,
        rec: false,
        attr_set: 0,
        attr_clr: 0,
        tmpcopyup: false,
    };
    for (j, opt) in options.iter().enumerate() {
        if let Some((_, set, clr)) = FLAGS.iter().find(|(n, _, _)| n == opt) {
            o.flags.insert(*set);
            o.flags.remove(*clr);
        } else if let Some((_, set, attr)) = RECURSIVE.iter().find(|(n, _, _)| n == opt) {
            if *set {
                o.attr_set |= attr;
                o.attr_clr &= !attr;
                if attr & ATTR_ATIME_MASK == *attr {
                    // The access-time mode is one field: clear it to set it.
                    o.attr_clr |= ATTR_ATIME_MASK;
                }
            } else {
                o.attr_clr |= attr;
                o.attr_set &= !attr;
            }
        } else if let Some(p) = propagation_flag(opt) {
            o.propagation.push(p);
        } else {
            match opt.as_str() {
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.rec = true;
                }
                "tmpcopyup" => o.tmpcopyup = true,
                "idmap" | "ridmap" => {
                    return Err(Error::config(
                        format!("mounts[{idx}].options[{j}]"),
                        format!("{opt:?}: id-mapped mounts are not supported"),
                    ))
                }
                _ => o.data.push(opt.clone()),
            }
        }
    }
    Ok(o)
}

/// The flags a mount has now (statvfs): what a remount must keep when the
/// kernel has them locked (inside a user namespace).
pub fn locked_flags(target: &str) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(target) else {
        return MsFlags::empty();
    };
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
            mount(None::<&str>, target, None::<&str>, base | flags | keep, None::<&str>).ctx(|| format!("remount {target}"))
        }
        Err(e) => Err(Error::sys(format!("remount {target}"), e)),
    }
}

/// mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE): the recursive
/// options, on the mount at `fd` and every mount below it.
fn set_recursive(fd: BorrowedFd, set: u64, clr: u64, what: &str) -> Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const SYS_MOUNT_SETATTR: libc::c_long = 442;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr { attr_set: set, attr_clr: clr, propagation: 0, userns_fd: 0 };
    // SAFETY: mount_setattr reads `attr` (ours, of the size we pass) and
    // an empty C string; it changes only mount attributes.
    let r = unsafe {
        libc::syscall(
            SYS_MOUNT_SETATTR,
            fd.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH as libc::c_uint) | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        let e = Errno::last();
        if e == Errno::ENOSYS {
            return Err(Error::Other(format!("{what}: recursive mount options need mount_setattr (Linux 5.12)")));
        }
        return Err(Error::sys(format!("{what}: mount_setattr"), e));
    }
    Ok(())
}

/// A detached copy of the mount tree at `src` (the whole tree below it
/// with `rec`), as an fd that `attach` can put anywhere.
pub fn clone_tree(src: &std::path::Path, rec: bool) -> nix::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    const SYS_OPEN_TREE: libc::c_long = 428;
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let path = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(src.as_os_str())).map_err(|_| Errno::EINVAL)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | if rec { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree reads a C string we own and returns a new fd or -1.
    let fd = unsafe { libc::syscall(SYS_OPEN_TREE, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh fd from the kernel, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the detached mount `tree` on `target` (move_mount).
fn attach(tree: BorrowedFd, target: BorrowedFd) -> nix::Result<()> {
    const SYS_MOVE_MOUNT: libc::c_long = 429;
    const F_EMPTY_PATH: libc::c_uint = 0x4;
    const T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: move_mount with two fds we hold and empty C strings.
    let r = unsafe {
        libc::syscall(SYS_MOVE_MOUNT, tree.as_raw_fd(), c"".as_ptr(), target.as_raw_fd(), c"".as_ptr(), F_EMPTY_PATH | T_EMPTY_PATH)
    };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Where a bind mount comes from.
pub enum BindSource {
    /// The absolute host path, bound in the child (the mounts keep the
    /// config's order in mountinfo).
    Path(std::path::PathBuf),
    /// A detached copy taken by the parent (open_tree) before a new user
    /// namespace could make the host path unreachable.
    Tree(OwnedFd),
}

/// Context the mounts need from the container setup.
pub struct MountCtx<'a> {
    pub rootfs: BorrowedFd<'a>,
    pub userns: bool,
    pub new_netns: bool,
    /// Bind sources resolved by the parent, one per bind entry of the
    /// config (index into `mounts`).
    pub sources: &'a [(usize, BindSource)],
    /// For v1 `cgroup` mounts: (controller mount point on the host, the
    /// container's cgroup dir under it, subdir name).
    pub cgroup_binds: &'a [(String, String)],
    pub cgroup_v2: bool,
}

/// What must be done once every mount is in place: read-only tmpfs and
/// /dev mounts are made rw, so that later mounts and device nodes can go
/// below them, and remounted read-only at the end (as runc does).
#[derive(Default)]
pub struct Deferred {
    pub readonly: Vec<String>,
}

/// Is `m` a bind mount (by type or option)?
pub fn is_bind(m: &Mount) -> bool {
    m.typ.as_deref() == Some("bind") || m.options.iter().any(|o| o == "bind" || o == "rbind")
}

/// Mounts one config entry inside the rootfs.
pub fn mount_entry(m: &Mount, ctx: &MountCtx, idx: usize, later: &mut Deferred) -> Result<()> {
    let at = |what: &str| format!("mounts[{idx}] {} ({what})", m.destination);
    let opts = parse_opts(&m.options, idx)?;
    let typ = m.typ.as_deref().unwrap_or("");
    let dst = m.destination.as_str();

    // /proc and /sys must be real directories inside the rootfs: a symlink
    // there could point a procfs write at the host (CVE-2025-52881 family).
    if matches!(typ, "proc" | "sysfs") {
        if let Ok(fd) = inroot::open_path_nofollow_in(ctx.rootfs, dst) {
            let st = nix::sys::stat::fstat(fd.as_fd()).ctx(|| at("stat"))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(Error::Other(format!(
                    "{}: {dst} must be mounted on ordinary directory (the rootfs has a symlink or file there)",
                    at(typ)
                )));
            }
        }
    }

    if opts.bind || typ == "bind" {
        // A bind takes no filesystem data: key=value data (mode=, size=…)
        // is what runc and crun pass on and the kernel ignores, so it is
        // ignored with a warning; any other word is an unknown option.
        for d in &opts.data {
            if d.contains('=') {
                crate::log::warn(&format!("mounts[{idx}] {dst}: {d:?} is filesystem data, which a bind mount ignores"));
            } else {
                return Err(Error::config(format!("mounts[{idx}].options"), format!("unknown bind mount option {d:?}")));
            }
        }
        let Some((_, src)) = ctx.sources.iter().find(|(i, _)| *i == idx) else {
            return Err(Error::Other(format!("{}: source not opened", at("bind"))));
        };
        match src {
            BindSource::Tree(tree) => {
                let st = nix::sys::stat::fstat(tree.as_fd()).ctx(|| at("stat source"))?;
                let target = inroot::ensure_in(ctx.rootfs, dst, st.st_mode & libc::S_IFMT == libc::S_IFDIR)?;
                attach(tree.as_fd(), target.as_fd()).ctx(|| at("bind"))?;
            }
            BindSource::Path(p) => {
                let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
                let target = inroot::ensure_in(ctx.rootfs, dst, meta.is_dir())?;
                let f = if opts.rec { MsFlags::MS_BIND | MsFlags::MS_REC } else { MsFlags::MS_BIND };
                mount(Some(p.as_path()), inroot::fd_path(target.as_fd()).as_str(), None::<&str>, f, None::<&str>).ctx(|| at("bind"))?;
            }
        }
        // Re-open: the fd points below the new mount; the remount and the
        // propagation change act on the mount itself. The copy may be a
        // peer of a shared host mount: nothing mounted inside it may
        // propagate back (the config's propagation comes after).
        let target = inroot::open_path_in(ctx.rootfs, dst).ctx(|| at("reopen"))?;
        let tpath = inroot::fd_path(target.as_fd());
        mount(None::<&str>, tpath.as_str(), None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>).ctx(|| at("make slave"))?;
        let extra = opts.flags & !(MsFlags::MS_REC | MsFlags::MS_BIND | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&tpath, extra)?;
        }
        return finish_entry(&opts, target.as_fd(), &at);
    }

    if typ == "cgroup" {
        return mount_cgroup(m, &opts, ctx, idx);
    }

    let target = inroot::ensure_in(ctx.rootfs, dst, true)?;
    let tpath = inroot::fd_path(target.as_fd());
    let src = m.source.clone().unwrap_or_else(|| typ.to_string());
    let data = opts.data.join(",");
    let mut flags = opts.flags & !MsFlags::MS_REMOUNT;
    if flags.contains(MsFlags::MS_RDONLY) && (typ == "tmpfs" || husk_oci::spec::clean_path(dst) == "/dev") {
        flags.remove(MsFlags::MS_RDONLY);
        later.readonly.push(dst.to_string());
    }
    let copy_from =
        if opts.tmpcopyup && typ == "tmpfs" { Some(inroot::reopen_dir(target.as_fd()).ctx(|| at("open for tmpcopyup"))?) } else { None };
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
            let target = inroot::open_path_in(ctx.rootfs, dst).ctx(|| at("reopen"))?;
            let extra = flags & !MsFlags::MS_REC;
            if !extra.is_empty() {
                remount_bind(&inroot::fd_path(target.as_fd()), extra)?;
            }
        }
        Err(e) => return Err(Error::sys(at("mount"), e)),
    }
    let target = inroot::open_path_in(ctx.rootfs, dst).ctx(|| at("reopen"))?;
    if let Some(from) = copy_from {
        let to = inroot::reopen_dir(target.as_fd()).ctx(|| at("open tmpfs"))?;
        copy_tree(from.as_fd(), to.as_fd()).map_err(|e| Error::Other(format!("{}: {e}", at("tmpcopyup"))))?;
    }
    finish_entry(&opts, target.as_fd(), &at)
}

/// Propagation, then the recursive attributes, of a mounted entry.
fn finish_entry(opts: &Opts, target: BorrowedFd, at: &dyn Fn(&str) -> String) -> Result<()> {
    let tpath = inroot::fd_path(target);
    for p in &opts.propagation {
        mount(None::<&str>, tpath.as_str(), None::<&str>, *p, None::<&str>).ctx(|| at("propagation"))?;
    }
    if opts.attr_set != 0 || opts.attr_clr != 0 {
        set_recursive(target, opts.attr_set, opts.attr_clr, &at("recursive options"))?;
    }
    Ok(())
}

/// `tmpcopyup`: the directory's files, links and subdirectories (modes and
/// owners kept) into the tmpfs mounted over it.
fn copy_tree(from: BorrowedFd, to: BorrowedFd) -> std::result::Result<(), String> {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{fstatat, Mode};
    let mut dir = nix::dir::Dir::openat(from, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| e.desc().to_string())?;
    for ent in dir.iter() {
        let ent = ent.map_err(|e| e.desc().to_string())?;
        let name = ent.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let shown = name.to_string_lossy();
        let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| format!("{shown}: {}", e.desc()))?;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                nix::sys::stat::mkdirat(to, name, mode).map_err(|e| format!("{shown}: {}", e.desc()))?;
                let sub_from = nix::fcntl::openat(
                    from,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("{shown}: {}", e.desc()))?;
                let sub_to = nix::fcntl::openat(
                    to,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("{shown}: {}", e.desc()))?;
                copy_tree(sub_from.as_fd(), sub_to.as_fd())?;
            }
            libc::S_IFREG => {
                let src = nix::fcntl::openat(from, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                    .map_err(|e| format!("{shown}: {}", e.desc()))?;
                let dst = nix::fcntl::openat(
                    to,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    mode,
                )
                .map_err(|e| format!("{shown}: {}", e.desc()))?;
                let (mut a, mut b) = (std::fs::File::from(src), std::fs::File::from(dst));
                std::io::copy(&mut a, &mut b).map_err(|e| format!("{shown}: {e}"))?;
            }
            libc::S_IFLNK => {
                let t = nix::fcntl::readlinkat(from, name).map_err(|e| format!("{shown}: {}", e.desc()))?;
                nix::unistd::symlinkat(t.as_os_str(), to, name).map_err(|e| format!("{shown}: {}", e.desc()))?;
            }
            // Device nodes, fifos and sockets are not copied.
            _ => continue,
        }
        let _ = nix::unistd::fchownat(to, name, Some(st.st_uid.into()), Some(st.st_gid.into()), AtFlags::AT_SYMLINK_NOFOLLOW);
    }
    Ok(())
}

/// A `cgroup` mount: cgroup2 directly (with a cgroup namespace) or a bind
/// of the container's own cgroup; on v1 a tmpfs with one bind per
/// controller hierarchy.
fn mount_cgroup(m: &Mount, opts: &Opts, ctx: &MountCtx, idx: usize) -> Result<()> {
    let at = |what: &str| format!("mounts[{idx}] {} ({what})", m.destination);
    let dst = m.destination.as_str();
    let target = inroot::ensure_in(ctx.rootfs, dst, true)?;
    let tpath = inroot::fd_path(target.as_fd());
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
    mount(Some("tmpfs"), tpath.as_str(), Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, Some("mode=755"))
        .ctx(|| at("tmpfs"))?;
    for (host_dir, name) in ctx.cgroup_binds {
        let sub = format!("{}/{}", dst.trim_end_matches('/'), name);
        let t = inroot::ensure_in(ctx.rootfs, &sub, true)?;
        let tp = inroot::fd_path(t.as_fd());
        mount(Some(host_dir.as_str()), tp.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .ctx(|| format!("bind cgroup {host_dir}"))?;
        let t = inroot::open_path_in(ctx.rootfs, &sub).ctx(|| at("reopen"))?;
        remount_bind(&inroot::fd_path(t.as_fd()), flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let t = inroot::open_path_in(ctx.rootfs, dst).ctx(|| at("reopen"))?;
        mount(
            None::<&str>,
            inroot::fd_path(t.as_fd()).as_str(),
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

    fn o(v: &[&str]) -> Result<Opts> {
        parse_opts(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 0)
    }

    #[test]
    fn options() {
        let p = o(&["nosuid", "ro", "rbind", "mode=755", "rslave"]).unwrap();
        assert!(p.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY));
        assert!(p.bind && p.rec);
        assert_eq!(p.data, vec!["mode=755"]);
        assert_eq!(p.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(!o(&["ro", "rw"]).unwrap().flags.contains(MsFlags::MS_RDONLY));
        assert!(o(&["nosymfollow"]).unwrap().flags.bits() & libc::MS_NOSYMFOLLOW != 0);
    }

    #[test]
    fn recursive_options() {
        let p = o(&["rro", "rnosuid", "rnoatime"]).unwrap();
        assert_eq!(p.attr_set, ATTR_RDONLY | ATTR_NOSUID | ATTR_NOATIME);
        assert_eq!(p.attr_clr, ATTR_ATIME_MASK, "an atime mode clears the atime field");
        let p = o(&["rro", "rrw"]).unwrap();
        assert_eq!((p.attr_set, p.attr_clr), (0, ATTR_RDONLY));
        let p = o(&["rnoexec", "rexec", "rnoexec"]).unwrap();
        assert_eq!((p.attr_set, p.attr_clr), (ATTR_NOEXEC, 0));
        for n in known_options() {
            if n != "idmap" {
                assert!(o(&[n]).is_ok(), "{n}");
            }
        }
        let e = parse_opts(&["x".into(), "idmap".into()], 3).unwrap_err().to_string();
        assert!(e.contains("mounts[3].options[1]"), "{e}");
    }
}
