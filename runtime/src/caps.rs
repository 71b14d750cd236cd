//! Linux capabilities without libcap: names, the five sets, capset(2).

use crate::config::Capabilities;
use crate::error::{Error, Result};

/// Capability names, indexed by number (CAP_CHOWN = 0 …).
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub fn from_name(name: &str) -> Option<u32> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// Highest capability the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

/// A capability set as a 64-bit mask.
pub fn mask(names: &Option<Vec<String>>) -> u64 {
    let last = last_cap();
    names
        .iter()
        .flatten()
        .filter_map(|n| from_name(n))
        .filter(|&c| c <= last)
        .fold(0u64, |m, c| m | (1u64 << c))
}

/// The five sets resolved to masks, computed before the fork so that the
/// child does no parsing.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

impl CapSets {
    pub fn from_config(c: &Option<Capabilities>) -> Option<CapSets> {
        let c = c.as_ref()?;
        Some(CapSets {
            bounding: mask(&c.bounding),
            effective: mask(&c.effective),
            inheritable: mask(&c.inheritable),
            permitted: mask(&c.permitted),
            ambient: mask(&c.ambient),
        })
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drops every capability outside `bounding` from the bounding set
/// (needs CAP_SETPCAP, so call it before changing uid).
pub fn drop_bounding(bounding: u64) -> Result<()> {
    for c in 0..=last_cap() {
        if bounding & (1u64 << c) == 0 {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let e = nix::errno::Errno::last();
                if e != nix::errno::Errno::EINVAL {
                    return Err(Error::sys(format!("drop {} from the bounding set", NAMES.get(c as usize).unwrap_or(&"?")), e));
                }
            }
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable, then raises ambient.
pub fn apply(s: &CapSets) -> Result<()> {
    let hdr = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [
        CapData { effective: s.effective as u32, permitted: s.permitted as u32, inheritable: s.inheritable as u32 },
        CapData {
            effective: (s.effective >> 32) as u32,
            permitted: (s.permitted >> 32) as u32,
            inheritable: (s.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: capset reads a v3 header and two data structs we own.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(Error::sys("capset", nix::errno::Errno::last()));
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    for c in 0..=last_cap() {
        if s.ambient & (1u64 << c) != 0 {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe {
                libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, c as libc::c_ulong, 0, 0)
            };
            if r != 0 {
                return Err(Error::sys(format!("raise ambient {}", NAMES[c as usize]), nix::errno::Errno::last()));
            }
        }
    }
    Ok(())
}
