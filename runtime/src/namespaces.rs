//! Namespaces: which to create (clone flags), which to join (setns on fds
//! opened by the parent), uid/gid maps, time offsets.

use std::os::fd::{AsFd, OwnedFd};

use husk_oci::spec::IdMapping;
use husk_oci::{NamespaceKind, Spec};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;

use crate::error::{Ctx, Error, Result};
use crate::inroot;

pub fn clone_flag(kind: NamespaceKind) -> CloneFlags {
    match kind {
        NamespaceKind::User => CloneFlags::CLONE_NEWUSER,
        NamespaceKind::Pid => CloneFlags::CLONE_NEWPID,
        NamespaceKind::Network => CloneFlags::CLONE_NEWNET,
        NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
        NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
        NamespaceKind::Mount => CloneFlags::CLONE_NEWNS,
        NamespaceKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        NamespaceKind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The flags of the namespaces in `kinds` that `spec` creates anew.
pub fn new_flags(spec: &Spec, kinds: &[NamespaceKind]) -> CloneFlags {
    kinds.iter().filter(|k| spec.new_ns(**k)).fold(CloneFlags::empty(), |f, k| f | clone_flag(*k))
}

/// pid and time namespaces apply to the children of whoever joins them.
pub fn for_children(kind: NamespaceKind) -> bool {
    matches!(kind, NamespaceKind::Pid | NamespaceKind::Time)
}

/// Joins `fd` (a namespace of `kind`).
pub fn join(kind: NamespaceKind, fd: &OwnedFd) -> Result<()> {
    nix::sched::setns(fd.as_fd(), clone_flag(kind)).ctx(|| format!("join {} namespace", kind.name()))
}

/// Namespaces to join, opened before the fork, in join order (user first,
/// so that the others are owned by it).
pub struct Joins {
    pub fds: Vec<(NamespaceKind, OwnedFd)>,
}

pub fn open_joins(spec: &Spec) -> Result<Joins> {
    let mut fds = Vec::new();
    for kind in NamespaceKind::ALL {
        if let Some(p) = spec.ns(kind).and_then(|n| n.path.as_deref()).filter(|p| !p.is_empty()) {
            let fd = nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .ctx(|| format!("linux.namespaces {}: open {p}", kind.name()))?;
            fds.push((kind, fd));
        }
    }
    Ok(Joins { fds })
}

impl Joins {
    pub fn has(&self, kind: NamespaceKind) -> bool {
        self.fds.iter().any(|(k, _)| *k == kind)
    }
    /// Joins the pid and time namespaces in the calling (parent) process:
    /// they apply to its children, i.e. the container's init.
    pub fn join_for_children(&self) -> Result<()> {
        self.fds.iter().filter(|(k, _)| for_children(*k)).try_for_each(|(k, fd)| join(*k, fd))
    }
    /// Joins the others in the child.
    pub fn join_in_child(&self) -> Result<()> {
        self.fds.iter().filter(|(k, _)| !for_children(*k)).try_for_each(|(k, fd)| join(*k, fd))
    }
}

/// Our own namespace of `kind` (`/proc/self/ns/...`), to come back to.
pub fn open_own(kind: NamespaceKind) -> Result<OwnedFd> {
    let p = format!("/proc/self/ns/{}", kind.proc_name());
    nix::fcntl::open(p.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ctx(|| format!("open {p}"))
}

fn map_text(m: &[IdMapping]) -> String {
    m.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect()
}

/// Writes uid_map and gid_map of `pid` (from the parent, through a checked
/// procfs fd).
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let l = spec.linux();
    inroot::write_proc(&format!("/proc/{pid}/uid_map"), map_text(&l.uid_mappings).as_bytes())
        .map_err(|e| Error::Other(format!("linux.uidMappings: {e}")))?;
    inroot::write_proc(&format!("/proc/{pid}/gid_map"), map_text(&l.gid_mappings).as_bytes())
        .map_err(|e| Error::Other(format!("linux.gidMappings: {e}")))?;
    Ok(())
}

/// Creates a time namespace for the children of the calling process and
/// sets its offsets (allowed only before any process enters it).
pub fn unshare_time(spec: &Spec) -> Result<()> {
    nix::sched::unshare(clone_flag(NamespaceKind::Time)).ctx(|| "unshare time namespace")?;
    let mut text = String::new();
    for (clock, off) in &spec.linux().time_offsets {
        text.push_str(&format!("{clock} {} {}\n", off.secs, off.nanosecs));
    }
    if !text.is_empty() {
        inroot::write_proc("/proc/self/timens_offsets", text.as_bytes()).map_err(|e| Error::Other(format!("linux.timeOffsets: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_of_new_namespaces() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.0", "root": {"path": "r"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}, {"type": "user"}]}
        }))
        .unwrap();
        let all = new_flags(&spec, &NamespaceKind::ALL);
        assert_eq!(all, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUSER);
        assert_eq!(new_flags(&spec, &[NamespaceKind::Network, NamespaceKind::Mount]), CloneFlags::empty());
        for k in NamespaceKind::ALL {
            assert!(!clone_flag(k).is_empty(), "{k:?}");
        }
        assert_eq!(NamespaceKind::Mount.proc_name(), "mnt");
        assert!(for_children(NamespaceKind::Time) && !for_children(NamespaceKind::User));
    }
}
