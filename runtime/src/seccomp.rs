//! The runtime's side of seccomp: compile the profile before the fork,
//! install it in the child, hand a NOTIFY listener to the agent.

use std::os::fd::{AsFd, OwnedFd};

use husk_oci::Spec;

use crate::error::Result;

pub struct Filter {
    pub program: husk_seccomp::Program,
    /// Connected to `listenerPath` before the fork (the path is not
    /// reachable from inside the container).
    pub listener: Option<(String, OwnedFd)>,
    pub metadata: String,
}

/// Compiles `linux.seccomp`. Names the profile does not know (newer or
/// other-arch syscalls) are skipped as libseccomp does; that is logged at
/// debug level only, as runc says nothing about it.
pub fn prepare(spec: &Spec) -> Result<Option<Filter>> {
    let s = spec.linux().seccomp.as_ref();
    let Some(program) = husk_seccomp::prepare(s)? else {
        return Ok(None);
    };
    for w in program.warnings() {
        crate::log::debug(&format!("seccomp: {w}"));
    }
    let mut listener = None;
    let mut metadata = String::new();
    if let Some(path) = s.and_then(|s| s.listener_path.as_deref()).filter(|p| !p.is_empty()) {
        listener = Some((path.to_string(), husk_seccomp::connect_listener(path)?));
        metadata = s.and_then(|s| s.listener_metadata.clone()).unwrap_or_default();
    }
    Ok(Some(Filter { program, listener, metadata }))
}

/// Installs the filter in the calling process. With a listener, sends its
/// fd to the agent with the container's state (`state_json`, the runtime
/// spec's state) and our pid as the host sees it.
pub fn install(f: &Filter, host_pid: i32, state_json: &serde_json::Value) -> Result<()> {
    let fd = husk_seccomp::install(&f.program)?;
    if let (Some(fd), Some((path, sock))) = (fd, &f.listener) {
        let payload = husk_seccomp::process_state(husk_oci::OCI_VERSION, host_pid, &f.metadata, state_json);
        husk_seccomp::send_listener(path, sock.as_fd(), fd.as_fd(), &payload)?;
    }
    Ok(())
}
