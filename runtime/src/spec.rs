//! `husk spec` (a default config.json, like `runc spec`) and `husk features`.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Docker's 14 default capabilities.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

pub fn default_config(rootless: bool) -> Value {
    let caps = json!(DEFAULT_CAPS);
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
    if let Some(s) = crate::seccomp_glue::default_profile() {
        c["linux"]["seccomp"] = s;
    }
    if rootless {
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let l = &mut c["linux"];
        l["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}]);
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
        mounts.push(json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
    }
    c
}

pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let p = bundle.join("config.json");
    if p.exists() {
        return Err(Error::Other(format!("{}: already exists; remove it first", p.display())));
    }
    let data = serde_json::to_vec_pretty(&default_config(rootless)).map_err(|e| Error::Other(e.to_string()))?;
    crate::state::write_atomic(&p, &data)
}

/// runtime-spec features.md: what this build supports.
pub fn features() -> Value {
    let mount_options: Vec<&str> = vec![
        "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime", "loud", "mand", "noatime",
        "nodev", "nodiratime", "noexec", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind",
        "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave",
        "strictatime", "suid", "sync", "unbindable",
    ];
    let mut f = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": crate::caps::NAMES.to_vec(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"io.github.husk.version": env!("CARGO_PKG_VERSION")}
    });
    f["linux"]["seccomp"] = crate::seccomp_glue::features();
    f
}
