//! The runtime's side of seccomp: compile the profile before the fork,
//! install it in the container's init.

use crate::config::Spec;
use crate::error::Result;

pub struct Filter;

pub fn prepare(_spec: &Spec) -> Result<Option<Filter>> {
    Ok(None)
}

pub fn install(_f: &Filter) -> Result<()> {
    Ok(())
}

/// Docker's default profile as config JSON, for `husk spec`.
pub fn default_profile() -> Option<serde_json::Value> {
    None
}

/// The `linux.seccomp` object of `husk features`.
pub fn features() -> serde_json::Value {
    serde_json::json!({"enabled": false})
}
