//! The container state as data: the runtime spec's state (what hooks read
//! on stdin) and runc's `state`/`list --format json` object (what engines
//! read back). Field order is the serialisation order, and it is runc's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The runtime-spec version husk implements.
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        }
    }
}

/// The runtime spec's state (runtime.md "State"), as hooks and seccomp
/// listeners receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pid: i32,
    pub bundle: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What `state ID` prints and `list --format json` lists: runc's
/// containerState, key for key and in its order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: String,
    pub rootfs: String,
    /// RFC 3339.
    pub created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_key_order() {
        let s = ContainerState {
            oci_version: OCI_VERSION.into(),
            id: "a".into(),
            pid: 7,
            status: Status::Running,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            annotations: BTreeMap::new(),
            owner: "".into(),
        };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(
            j,
            r#"{"ociVersion":"1.2.0","id":"a","pid":7,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z","owner":""}"#
        );
        let h = SpecState {
            oci_version: OCI_VERSION.into(),
            id: "a".into(),
            status: Status::Stopped,
            pid: 0,
            bundle: "/b".into(),
            annotations: BTreeMap::new(),
        };
        assert_eq!(serde_json::to_string(&h).unwrap(), r#"{"ociVersion":"1.2.0","id":"a","status":"stopped","bundle":"/b"}"#);
    }
}
