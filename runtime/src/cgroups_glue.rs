//! The runtime's side of cgroups: what create/kill/delete/state need, over
//! the cgroups module. The cgroup is stored in state.json as JSON.

use crate::config::Spec;
use crate::error::Result;
use crate::state::State;

/// How husk manages cgroups (`--cgroup-manager`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    Cgroupfs,
    Disabled,
}

/// Creates the container's cgroup and applies its resources; returns its
/// serialised form for state.json (null when cgroups are disabled).
pub fn create(_mgr: Manager, _spec: &Spec, _id: &str) -> Result<serde_json::Value> {
    Ok(serde_json::Value::Null)
}

pub fn add_pid(_cg: &serde_json::Value, _pid: i32) -> Result<()> {
    Ok(())
}

/// (host dir of the container's cgroup, name) per v1 hierarchy, for a
/// `cgroup` mount; and whether the host is pure v2.
pub fn mount_binds(_cg: &serde_json::Value) -> (Vec<(String, String)>, bool) {
    (Vec::new(), false)
}

pub fn destroy(_cg: &serde_json::Value) -> Result<()> {
    Ok(())
}

pub fn is_frozen(_st: &State) -> bool {
    false
}

pub fn pids(_cg: &serde_json::Value) -> Result<Vec<i32>> {
    Ok(Vec::new())
}
