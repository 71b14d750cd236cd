//! husk-oci: the OCI runtime spec as Rust types.
//!
//! - [`spec`]: config.json (`Spec` and its parts), loading, validation that
//!   names the field at fault;
//! - [`resources`] and [`seccomp`]: `linux.resources` and `linux.seccomp`,
//!   typed, for husk-cgroups and husk-seccomp;
//! - [`state`]: the state objects (hooks' and runc's);
//! - [`names`]: capability, rlimit and propagation name tables;
//! - [`defaults`]: the default config.json.
//!
//! Plain data and checks only: no syscalls, no I/O beyond reading a bundle.

pub mod defaults;
pub mod error;
pub mod names;
pub mod resources;
pub mod seccomp;
pub mod spec;
pub mod state;

pub use error::{Error, Result};
pub use resources::Resources;
pub use seccomp::Seccomp;
pub use spec::{NamespaceKind, Spec};
pub use state::{ContainerState, SpecState, Status, OCI_VERSION};
