//! husk-seccomp: OCI seccomp profile → BPF compiler, in pure Rust.
//!
//! husk links no C library, so instead of libseccomp this crate compiles
//! `linux.seccomp` itself: `check` validates the profile, `compile` turns it
//! into a classic-BPF program for the native arch (plus the arches the
//! profile lists that the kernel can present here), `install` loads it with
//! seccomp(2) right before execve. See docs/seccomp.md for the design.

mod action;
mod arch;
mod bpf;
mod compile;
mod default;
mod error;
mod install;
mod syscalls;
#[rustfmt::skip]
mod tables;

// The interpreter and the oracle serve the tests and the fuzzer (feature
// `testing`); the runtime never builds them.
#[cfg(any(test, feature = "testing"))]
pub mod interp;
#[cfg(any(test, feature = "testing"))]
pub mod reference;
#[cfg(test)]
mod tests;

pub use arch::Arch;
pub use bpf::Insn;
pub use compile::{compile_for, Program};
pub use default::{default_profile, default_profile_for};
pub use error::Error;
pub use husk_oci::seccomp::{ArgRule, Seccomp, SyscallRule};
pub use install::{connect_listener, install, process_state, send_listener};

/// Compiles `profile` for the arch this binary runs on.
pub fn compile(profile: &Seccomp) -> Result<Program, Error> {
    compile_for(profile, Arch::native())
}

/// Parses a `linux.seccomp` object from JSON text.
pub fn from_json(text: &[u8]) -> Result<Seccomp, Error> {
    serde_json::from_slice(text).map_err(|e| Error::Json { msg: e.to_string() })
}

/// Parses a `linux.seccomp` object from an already-parsed JSON value.
pub fn from_value(v: serde_json::Value) -> Result<Seccomp, Error> {
    serde_json::from_value(v).map_err(|e| Error::Json { msg: e.to_string() })
}

/// What the runtime does with `linux.seccomp` from config.json: compile it
/// (before forking the container's init). `None` when the config has no
/// seccomp object. Warnings (skipped names and arches) are in the program
/// for the caller to log.
pub fn prepare(s: Option<&Seccomp>) -> Result<Option<Program>, Error> {
    s.map(compile).transpose()
}

/// Docker's default profile as the JSON `husk spec` writes.
pub fn default_profile_json() -> serde_json::Value {
    serde_json::to_value(default_profile()).unwrap_or(serde_json::Value::Null)
}

/// The `linux.seccomp` object of `husk features` (runtime-spec
/// features.md): what the compiler supports, and the filter flags this
/// kernel accepts.
pub fn features_json() -> serde_json::Value {
    let f = features();
    serde_json::json!({
        "enabled": true,
        "actions": f.actions,
        "operators": f.operators,
        "archs": f.archs,
        "knownFlags": f.flags,
        "supportedFlags": install::supported_flags(),
    })
}

/// Every syscall name the tables know, sorted.
pub fn syscall_names() -> impl Iterator<Item = &'static str> {
    syscalls::all_names()
}

/// The syscall number of `name` on `arch` (x32 numbers carry the x32 bit).
pub fn syscall_number(arch: Arch, name: &str) -> Option<u32> {
    syscalls::number(arch, name)
}

/// What `compile` supports, for `husk features`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    pub actions: Vec<&'static str>,
    pub operators: Vec<&'static str>,
    pub archs: Vec<&'static str>,
    /// `linux.seccomp.flags` values understood.
    pub flags: Vec<&'static str>,
}

pub fn features() -> Features {
    Features {
        actions: action::ACTIONS.to_vec(),
        operators: action::OPERATORS.to_vec(),
        archs: arch::ALL.iter().map(|a| a.oci_name()).collect(),
        flags: compile::FLAGS.iter().map(|(n, _)| *n).collect(),
    }
}
