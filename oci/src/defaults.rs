//! The default config.json (`husk spec`, `husk-rootfs bundle`): runc's
//! default spec with Docker's 14 capabilities. The seccomp profile is added
//! by the caller (husk-seccomp has Docker's).

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

/// The default config; `rootless` as runc's `spec --rootless`.
pub fn config(rootless: bool) -> Value {
    let caps = json!(DEFAULT_CAPABILITIES);
    let mut c = json!({
        "ociVersion": crate::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "husk",
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
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let (uid, gid) = rootless_ids();
        let l = &mut c["linux"];
        l["namespaces"] =
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}]);
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
            let c = super::config(rootless);
            crate::spec::parse(c.to_string().as_bytes()).unwrap();
        }
    }
}
