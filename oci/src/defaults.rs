//! The default config.json. [`config`] is exactly what `runc spec` writes
//! (runc 1.1: three capabilities, also ambient; no cgroup namespace; no
//! seccomp), so that what runc users and runc's tests expect of `husk
//! spec` holds. [`hardened`] is husk's own default for appliances (`husk
//! spec --hardened`, `husk-rootfs bundle`): Docker's 14 capabilities, a
//! cgroup namespace, powercap masked; its caller adds Docker's seccomp
//! profile (husk-seccomp has it).

use serde_json::{json, Value};

use crate::names::DEFAULT_CAPABILITIES;

/// The caller's uid and gid, for a rootless config's maps (from
/// /proc/self/status, so that this crate needs no libc).
fn rootless_ids() -> (u32, u32) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| -> u32 {
        s.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (field("Uid:"), field("Gid:"))
}

/// runc's capabilities in `runc spec`.
pub const RUNC_CAPABILITIES: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// husk's hardened default: Docker's capabilities (none ambient), a cgroup
/// namespace, powercap masked too.
pub fn hardened(rootless: bool) -> Value {
    let mut c = config(rootless);
    let caps = json!(DEFAULT_CAPABILITIES);
    c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    c["hostname"] = "husk".into();
    let l = &mut c["linux"];
    if let Some(ns) = l["namespaces"].as_array_mut() {
        let at = ns.iter().position(|n| n["type"] == "user").unwrap_or(ns.len());
        ns.insert(at, json!({"type": "cgroup"}));
    }
    if let Some(m) = l["maskedPaths"].as_array_mut() {
        let at = m.iter().position(|p| p == "/proc/scsi").unwrap_or(m.len());
        m.insert(at, "/sys/devices/virtual/powercap".into());
    }
    c
}

/// What `runc spec` writes; `rootless` as its `--rootless`.
pub fn config(rootless: bool) -> Value {
    let caps = json!(RUNC_CAPABILITIES);
    let mut c = json!({
        "ociVersion": crate::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let (uid, gid) = rootless_ids();
        let l = &mut c["linux"];
        l["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        l["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        l["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        l.as_object_mut().map(|o| o.remove("resources"));
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.retain(|m| m["type"] != "cgroup" && m["destination"] != "/dev/mqueue" && m["destination"] != "/sys");
        for m in mounts.iter_mut() {
            if m["type"] == "devpts" {
                m["options"] = json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
            }
        }
        mounts.push(
            json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
        );
    }
    c
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_and_validates() {
        for rootless in [false, true] {
            for c in [super::config(rootless), super::hardened(rootless)] {
                crate::spec::parse(c.to_string().as_bytes()).unwrap();
            }
        }
        let h = super::hardened(false);
        assert_eq!(h["process"]["capabilities"]["bounding"].as_array().unwrap().len(), 14);
        assert!(h["process"]["capabilities"]["ambient"].is_null());
        assert_eq!(h["linux"]["namespaces"].as_array().unwrap().len(), 6);
        let r = super::config(false);
        assert_eq!(r["process"]["capabilities"]["ambient"], serde_json::json!(super::RUNC_CAPABILITIES));
        assert_eq!(r["hostname"], "runc");
    }
}
