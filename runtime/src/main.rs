//! husk: an OCI runtime with a runc-compatible command line.
//!
//! The crate map (docs/design.md): `cli/` parses and runs commands;
//! `container/` is the parent side of the lifecycle; `child/` is the
//! container's init and the process setup it shares with `exec`;
//! `channel` is the parent/child channel; `inroot` the in-root path
//! resolution; `state` the state directory. husk-oci, husk-cgroups and
//! husk-seccomp hold the spec types, cgroups and seccomp.

mod cgroup;
mod channel;
mod child;
mod cli;
mod container;
mod error;
mod fault;
mod hooks;
mod inroot;
mod log;
mod namespaces;
mod seccomp;
mod signals;
mod state;
mod tty_proxy;

fn main() {
    // Rust starts with SIGPIPE ignored: `husk state ID | head -1` must end
    // quietly like any Unix tool, not fail a write, and the container's
    // program must not inherit an ignored SIGPIPE through our execve.
    // SAFETY: setting a signal disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::process::exit(cli::main());
}
