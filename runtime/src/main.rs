//! husk: an OCI runtime with a runc-compatible command line.

mod caps;
mod cgroups;
mod cgroups_glue;
mod cli;
mod config;
mod console;
mod container;
mod devices;
mod error;
mod exec;
mod fsutil;
mod hooks;
mod init;
mod log;
mod mounts;
mod namespaces;
mod process;
mod rootfs;
mod seccomp;
mod seccomp_glue;
mod signals;
mod spec;
mod state;
mod sync;
mod tty;

fn main() {
    // Rust starts with SIGPIPE ignored: `husk state ID | head -1` must end
    // quietly like any Unix tool, not fail a write, and the container's
    // program must not inherit an ignored SIGPIPE through our execve.
    // SAFETY: setting a signal disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::process::exit(cli::main());
}
