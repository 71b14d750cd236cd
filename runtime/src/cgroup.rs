//! The runtime's side of cgroups: which cgroup a container gets, and the
//! checks `create` makes on it before the init joins it.

use husk_cgroups::{Cgroup, Mode};
use husk_oci::Spec;

use crate::error::{Error, Result};

/// How husk manages cgroups (`--cgroup-manager`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    Cgroupfs,
    Disabled,
}

/// The container's cgroup, resolved but not created (None when cgroups
/// are disabled).
pub fn plan(mgr: Manager, spec: &Spec, id: &str) -> Result<Option<Cgroup>> {
    let mode = match mgr {
        Manager::Disabled => return Ok(None),
        Manager::Cgroupfs => husk_cgroups::detect(),
    };
    if mode == Mode::Disabled {
        return Ok(None);
    }
    Ok(Some(Cgroup::new(mode, spec.linux().cgroups_path.as_deref(), id)?))
}

/// Checks made before anything exists: a cgroup that is already frozen is
/// refused (the init would freeze in it and `create` hang), as runc.
pub fn check(cg: &Cgroup) -> Result<()> {
    if cg.is_frozen() {
        let dir = cg.hierarchies.first().map(|h| h.dir.display().to_string()).unwrap_or_default();
        return Err(Error::Other(format!("container's cgroup unexpectedly frozen ({dir})")));
    }
    Ok(())
}

/// Makes the directories and applies `linux.resources`. A cgroup that
/// already holds processes is used with a warning, as runc does.
pub fn create(cg: &Cgroup, spec: &Spec) -> Result<()> {
    cg.create(spec.linux().resources.as_ref())?;
    match cg.pids() {
        Ok(p) if !p.is_empty() => crate::log::warn(&format!("container's cgroup is not empty: {} process(es) found", p.len())),
        _ => {}
    }
    Ok(())
}
