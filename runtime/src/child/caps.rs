//! Linux capabilities without libcap: names, the five sets, capset(2).

use crate::error::{Error, Result};
use husk_oci::spec::Capabilities;

use husk_oci::names::{capability, CAPABILITIES};

/// Highest capability the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAPABILITIES.len() as u32 - 1)
}

/// A capability set as a 64-bit mask.
pub fn mask(names: &Option<Vec<String>>) -> u64 {
    let last = last_cap();
    names.iter().flatten().filter_map(|n| capability(n)).filter(|&c| c <= last).fold(0u64, |m, c| m | (1u64 << c))
}

/// The five sets resolved to masks, computed before the fork so that the
/// child does no parsing. Ambient is trimmed to what is also inheritable
/// and permitted, the only capabilities the kernel lets a process raise
/// there (runc drops the rest the same way: `runc spec` lists ambient
/// capabilities and no inheritable set).
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
            ambient: mask(&c.ambient) & mask(&c.inheritable) & mask(&c.permitted),
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
                    return Err(Error::sys(format!("drop {} from the bounding set", CAPABILITIES.get(c as usize).unwrap_or(&"?")), e));
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
        CapData { effective: (s.effective >> 32) as u32, permitted: (s.permitted >> 32) as u32, inheritable: (s.inheritable >> 32) as u32 },
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
            let r = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, c as libc::c_ulong, 0, 0) };
            if r != 0 {
                return Err(Error::sys(format!("raise ambient {}", CAPABILITIES[c as usize]), nix::errno::Errno::last()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn ambient_needs_inheritable_and_permitted() {
        let c = Capabilities {
            bounding: set(&["CAP_KILL", "CAP_CHOWN"]),
            effective: set(&["CAP_KILL"]),
            permitted: set(&["CAP_KILL", "CAP_CHOWN"]),
            inheritable: set(&["CAP_CHOWN"]),
            ambient: set(&["CAP_KILL", "CAP_CHOWN"]),
        };
        let s = CapSets::from_config(&Some(c)).unwrap();
        assert_eq!(s.ambient, 1 << 0, "only CAP_CHOWN is inheritable and permitted");
        assert_eq!(s.permitted, (1 << 0) | (1 << 5));
        assert_eq!(s.inheritable, 1 << 0);
        assert!(CapSets::from_config(&None).is_none());
        // runc spec's default: ambient listed, inheritable absent.
        let c =
            Capabilities { bounding: set(&["CAP_KILL"]), permitted: set(&["CAP_KILL"]), ambient: set(&["CAP_KILL"]), ..Default::default() };
        assert_eq!(CapSets::from_config(&Some(c)).unwrap().ambient, 0);
    }
}
