//! OCI runtime-spec types for `linux.seccomp` (config.json).
//!
//! Field names follow the spec (camelCase); unknown fields are ignored so a
//! newer config.json still parses.

use serde::{Deserialize, Serialize};

/// `linux.seccomp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<Vec<SyscallRule>>,
}

/// One entry of `linux.seccomp.syscalls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<ArgRule>>,
}

/// One argument condition of a syscall rule. For `SCMP_CMP_MASKED_EQ`,
/// `value` is the mask and `value_two` the value the masked argument must equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgRule {
    pub index: u32,
    pub value: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_two: Option<u64>,
    pub op: String,
}

impl SyscallRule {
    /// A rule for `names` with `action` and no errno or argument conditions.
    pub fn new(names: &[&str], action: &str) -> SyscallRule {
        SyscallRule { names: names.iter().map(|s| s.to_string()).collect(), action: action.to_string(), errno_ret: None, args: None }
    }
}

impl ArgRule {
    pub fn new(index: u32, op: &str, value: u64, value_two: Option<u64>) -> ArgRule {
        ArgRule { index, value, value_two, op: op.to_string() }
    }
}
