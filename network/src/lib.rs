//! husk-cni: a CNI driver that runs as OCI hooks, so that `husk run`,
//! husk-init's bundle services and runc get container networking from
//! the standard CNI plugins.
//!
//! * `add` (a createRuntime hook) reads the OCI state on stdin and runs
//!   the plugins of a network config list with ADD on the container's
//!   network namespace, pinned for the attachment's lifetime;
//! * `del` (a poststop hook) runs them with DEL in reverse order;
//! * `gc` (at boot, or any time) DELs what containers that are gone left;
//! * `list` shows attachments and their addresses.
//!
//! The library is the whole program (`run`), so that it can also become a
//! subcommand of another binary.

pub mod cli;
pub mod conf;
pub mod error;
pub mod ops;
pub mod plugin;
pub mod store;

pub use cli::run;
