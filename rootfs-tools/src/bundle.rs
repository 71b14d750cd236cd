//! `husk-rootfs bundle`: an OCI bundle (config.json) around a rootfs, with
//! the same defaults as `husk spec` (runc's default spec with Docker's default
//! capabilities), except that the terminal is off: a bundle made here runs a
//! given command, not an interactive shell.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};

pub struct Opts {
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub args: Vec<String>,
}

/// husk's default config.json.
pub fn default_spec(root_path: &str, args: &[String]) -> Value {
    // Docker's default set, as `husk spec` uses.
    let caps = json!([
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
        "CAP_AUDIT_WRITE"
    ]);
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": root_path, "readonly": true },
        "hostname": "husk",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// root.path: relative when the rootfs sits inside the bundle, else absolute.
fn root_path(bundle: &Path, rootfs: &Path) -> Result<String> {
    let cb = fs::canonicalize(bundle).map_err(|e| Error::io("resolve", bundle, e))?;
    let cr = fs::canonicalize(rootfs).map_err(|e| Error::io("resolve", rootfs, e))?;
    Ok(match cr.strip_prefix(&cb) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => cr.display().to_string(),
    })
}

pub fn run(o: &Opts) -> Result<()> {
    let m = fs::metadata(&o.rootfs).map_err(|e| Error::io("open", &o.rootfs, e))?;
    if !m.is_dir() {
        return Err(Error::format(o.rootfs.display().to_string(), "rootfs is not a directory"));
    }
    let created = !o.bundle.exists();
    if created {
        fs::create_dir(&o.bundle).map_err(|e| Error::io("mkdir", &o.bundle, e))?;
    }
    let res = (|| {
        let cfg = o.bundle.join("config.json");
        if fs::symlink_metadata(&cfg).is_ok() {
            return Err(Error::Exists(cfg));
        }
        let args = if o.args.is_empty() { vec!["sh".to_string()] } else { o.args.clone() };
        let spec = default_spec(&root_path(&o.bundle, &o.rootfs)?, &args);
        let tmp = o.bundle.join(format!(".config.json.husk-tmp-{}", std::process::id()));
        let mut text = serde_json::to_vec_pretty(&spec).expect("JSON");
        text.push(b'\n');
        fs::write(&tmp, text).map_err(|e| Error::io("write", &tmp, e))?;
        fs::rename(&tmp, &cfg).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("rename into place", &cfg, e)
        })?;
        println!("wrote {}", cfg.display());
        Ok(())
    })();
    if res.is_err() && created {
        let _ = fs::remove_dir(&o.bundle);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_has_runc_defaults() {
        let s = default_spec("rootfs", &["sh".into()]);
        let ns: Vec<&str> = s["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
        assert_eq!(s["process"]["terminal"], json!(false));
        assert_eq!(s["process"]["args"], json!(["sh"]));
        assert_eq!(s["root"]["path"], json!("rootfs"));
        let dests: Vec<&str> = s["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
        assert_eq!(dests, ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]);
    }
}
