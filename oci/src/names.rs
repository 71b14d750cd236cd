//! Name tables of the runtime spec: capabilities, rlimits, mount
//! propagation. Parsing a name here is the only check of it; the runtime
//! maps the index or name to the kernel's value.

/// Capability names, indexed by number (CAP_CHOWN = 0 …).
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability (`CAP_KILL`, `kill` or `cap_kill`).
pub fn capability(name: &str) -> Option<u32> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    CAPABILITIES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// Docker's 14 default capabilities (`husk spec`, `husk-rootfs bundle`).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `process.rlimits[].type` names, in the kernel's RLIMIT_* order
/// (RLIMIT_CPU = 0 … RLIMIT_RTTIME = 15, the same on x86_64 and aarch64).
pub const RLIMITS: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// The kernel's resource number of an rlimit name.
pub fn rlimit(name: &str) -> Option<u32> {
    RLIMITS.iter().position(|n| *n == name).map(|i| i as u32)
}

/// Mount propagation names (`linux.rootfsPropagation`, mount options).
pub const PROPAGATIONS: [&str; 8] = ["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"];

/// uids and gids above this are refused: the kernel reads (uid_t)-1 as
/// "leave unchanged", so 4294967295 would keep the runtime's root.
pub const MAX_ID: u32 = 2_147_483_647;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_forms() {
        assert_eq!(capability("CAP_KILL"), Some(5));
        assert_eq!(capability("kill"), Some(5));
        assert_eq!(capability("cap_sys_admin"), Some(21));
        assert_eq!(capability("CAP_NOPE"), None);
        assert_eq!(CAPABILITIES[40], "CAP_CHECKPOINT_RESTORE");
        for c in DEFAULT_CAPABILITIES {
            assert!(capability(c).is_some(), "{c}");
        }
    }

    #[test]
    fn rlimit_numbers() {
        assert_eq!(rlimit("RLIMIT_NOFILE"), Some(7));
        assert_eq!(rlimit("RLIMIT_RTTIME"), Some(15));
        assert_eq!(rlimit("NOFILE"), None);
    }
}
