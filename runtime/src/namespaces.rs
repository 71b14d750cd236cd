//! Namespaces: which to create (clone flags), which to join (setns on fds
//! opened by the parent), uid/gid maps, time offsets.

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;

use crate::config::{IdMapping, Spec};
use crate::error::{Ctx, Error, Result};
use crate::fsutil;

pub fn flag(kind: &str) -> CloneFlags {
    match kind {
        "user" => CloneFlags::CLONE_NEWUSER,
        "pid" => CloneFlags::CLONE_NEWPID,
        "network" => CloneFlags::CLONE_NEWNET,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "mount" => CloneFlags::CLONE_NEWNS,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "time" => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        _ => CloneFlags::empty(),
    }
}

/// Namespaces to join, opened before the fork.
pub struct Joins {
    /// (kind, fd) in join order: user first, so that the others are owned by it.
    pub fds: Vec<(&'static str, OwnedFd)>,
}

pub fn open_joins(spec: &Spec) -> Result<Joins> {
    let mut fds = Vec::new();
    for kind in crate::config::NS_KINDS {
        if let Some(p) = spec.ns(kind).and_then(|n| n.path.as_deref()).filter(|p| !p.is_empty()) {
            let fd = nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .ctx(|| format!("linux.namespaces {kind}: open {p}"))?;
            fds.push((kind, fd));
        }
    }
    Ok(Joins { fds })
}

impl Joins {
    pub fn has(&self, kind: &str) -> bool {
        self.fds.iter().any(|(k, _)| *k == kind)
    }
    /// Joins the pid and time namespaces in the calling (parent) process:
    /// they apply to its children, i.e. the container's init.
    pub fn join_for_children(&self) -> Result<()> {
        for (kind, fd) in &self.fds {
            if *kind == "pid" || *kind == "time" {
                nix::sched::setns(fd.as_fd(), flag(kind)).ctx(|| format!("join {kind} namespace"))?;
            }
        }
        Ok(())
    }
    /// Joins the others in the child.
    pub fn join_in_child(&self) -> Result<()> {
        for (kind, fd) in &self.fds {
            if *kind != "pid" && *kind != "time" {
                nix::sched::setns(fd.as_fd(), flag(kind)).ctx(|| format!("join {kind} namespace"))?;
            }
        }
        Ok(())
    }
}

fn map_text(m: &[IdMapping]) -> String {
    m.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect()
}

/// Writes uid_map and gid_map of `pid` (from the parent, through a checked
/// procfs fd).
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let l = spec.linux();
    fsutil::write_proc(&format!("/proc/{pid}/uid_map"), map_text(&l.uid_mappings).as_bytes())
        .map_err(|e| Error::Other(format!("linux.uidMappings: {e}")))?;
    fsutil::write_proc(&format!("/proc/{pid}/gid_map"), map_text(&l.gid_mappings).as_bytes())
        .map_err(|e| Error::Other(format!("linux.gidMappings: {e}")))?;
    Ok(())
}

/// Creates a time namespace for the children of the calling process and
/// sets its offsets (allowed only before any process enters it).
pub fn unshare_time(spec: &Spec) -> Result<()> {
    nix::sched::unshare(flag("time")).ctx(|| "unshare time namespace")?;
    let mut text = String::new();
    for (clock, off) in &spec.linux().time_offsets {
        text.push_str(&format!("{clock} {} {}\n", off.secs, off.nanosecs));
    }
    if !text.is_empty() {
        fsutil::write_proc("/proc/self/timens_offsets", text.as_bytes())
            .map_err(|e| Error::Other(format!("linux.timeOffsets: {e}")))?;
    }
    Ok(())
}
