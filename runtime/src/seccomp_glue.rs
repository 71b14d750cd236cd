//! The runtime's side of seccomp: compile the profile before the fork,
//! install it in the container's init, hand a NOTIFY listener to the
//! configured socket.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::config::Spec;
use crate::error::{Error, Result};
use crate::seccomp;

pub struct Filter {
    pub program: seccomp::Program,
    /// Connected to `listenerPath` before the fork (the path is not
    /// reachable after pivot_root).
    pub listener: Option<OwnedFd>,
    /// State JSON sent with the listener fd; the pid is filled in by init.
    pub state: serde_json::Value,
    pub metadata: String,
}

fn err(e: seccomp::Error) -> Error {
    Error::Seccomp(e.to_string())
}

/// Parses and compiles `linux.seccomp` (warnings are logged).
pub fn prepare(spec: &Spec) -> Result<Option<Filter>> {
    let v = spec.linux().seccomp.as_ref();
    let Some(program) = seccomp::prepare(v).map_err(err)? else { return Ok(None) };
    for w in program.warnings() {
        crate::log::warn(&format!("seccomp: {w}"));
    }
    let mut listener = None;
    let mut metadata = String::new();
    if let Some(path) = v.and_then(|v| v.get("listenerPath")).and_then(|p| p.as_str()).filter(|p| !p.is_empty()) {
        listener = Some(
            crate::console::connect_socket(path).map_err(|e| Error::Seccomp(format!("linux.seccomp.listenerPath: {e}")))?,
        );
        metadata = v.and_then(|v| v.get("listenerMetadata")).and_then(|m| m.as_str()).unwrap_or("").to_string();
    }
    Ok(Some(Filter { program, listener, state: serde_json::Value::Null, metadata }))
}

/// Installs the filter (in the container's init). `host_pid` is our pid as
/// the host sees it, for the listener's state.
pub fn install(f: &Filter, host_pid: i32) -> Result<()> {
    let fd = seccomp::install(&f.program).map_err(err)?;
    if let (Some(fd), Some(sock)) = (fd, &f.listener) {
        let mut state = f.state.clone();
        state["pid"] = host_pid.into();
        let payload = seccomp::process_state(crate::state::OCI_VERSION, host_pid, &f.metadata, &state);
        let raw = [fd.as_raw_fd()];
        let iov = [IoSlice::new(&payload)];
        sendmsg::<()>(sock.as_fd().as_raw_fd(), &iov, &[ControlMessage::ScmRights(&raw)], MsgFlags::empty(), None)
            .map_err(|e| Error::sys("linux.seccomp.listenerPath: send listener", e))?;
    }
    Ok(())
}

/// Docker's default profile as config JSON, for `husk spec`.
pub fn default_profile() -> Option<serde_json::Value> {
    Some(seccomp::default_profile_json())
}

/// The `linux.seccomp` object of `husk features`.
pub fn features() -> serde_json::Value {
    seccomp::features_json()
}
