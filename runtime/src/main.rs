//! husk: an OCI runtime with a runc-compatible command line.

mod cgroups;
mod seccomp;

fn main() {}
