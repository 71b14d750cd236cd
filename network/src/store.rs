//! What husk-cni keeps between ADD and DEL, under `--dir` (default
//! /var/lib/husk-cni, persistent like host-local's leases, so that a DEL
//! after a reboot can still release them):
//!
//! ```text
//! DIR/networks/NET/.lock      flock: one operation per network at a time
//! DIR/networks/NET/ID.json    the record of attachment (NET, ID)
//! DIR/netns/NET@ID            the container's netns, pinned by a bind mount
//! DIR/addr/ID                 "10.88.0.2/16,..." for `husk-init ctl status`
//! ```
//!
//! The record is written before the first plugin runs and replaced
//! atomically after each step, so a crash at any point leaves a record
//! that `gc` (or the next ADD of that ID) turns into a DEL. The pin keeps
//! the namespace, and so the veth and what the plugins find through it,
//! alive until DEL has run: a plugin's DEL in a namespace that is gone
//! cannot find its addresses (bridge's ipMasq rules would stay).
//! `DIR/netns` is a shared mount (as `ip netns` does with /run/netns), so
//! removing a pin also removes its copies in mount namespaces made since.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::mount::{MountPropagationFlags, UnmountFlags};
use serde_json::{json, Value};

use crate::error::{Error, Result};

pub const DEFAULT_DIR: &str = "/var/lib/husk-cni";

/// statfs f_type of nsfs, the filesystem of /proc/PID/ns/* files.
const NSFS_MAGIC: rustix::fs::FsWord = 0x6e73_6673;

/// One attachment: what DEL needs to undo ADD.
#[derive(Debug, Clone)]
pub struct Record {
    pub network: String,
    pub id: String,
    pub ifname: String,
    /// The pin (DIR/netns/NET@ID): CNI_NETNS for ADD and DEL.
    pub netns: PathBuf,
    /// The container's init, to tell whether it still runs.
    pub pid: i32,
    pub start_time: u64,
    pub boot_id: String,
    pub cni_path: String,
    /// The network config list ADD ran with, and where it came from.
    pub config: Value,
    pub config_path: String,
    /// Capability arguments (`portMappings`), the same for DEL as for ADD.
    pub runtime_config: Value,
    /// ADD went through every plugin.
    pub complete: bool,
    /// The last result: the final one once complete, else the one the
    /// plugins added so far produced (Null before the first).
    pub result: Value,
}

impl Record {
    pub fn to_json(&self) -> Value {
        json!({
            "network": self.network,
            "containerId": self.id,
            "ifName": self.ifname,
            "netns": self.netns,
            "pid": self.pid,
            "startTime": self.start_time,
            "bootId": self.boot_id,
            "cniPath": self.cni_path,
            "configPath": self.config_path,
            "config": self.config,
            "runtimeConfig": self.runtime_config,
            "complete": self.complete,
            "result": self.result,
        })
    }

    pub fn from_json(path: &Path, v: &Value) -> Result<Record> {
        let bad = |f: &str| Error::input(path.display().to_string(), format!("record field {f:?} missing or of the wrong type"));
        let s = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_string).ok_or_else(|| bad(f));
        Ok(Record {
            network: s("network")?,
            id: s("containerId")?,
            ifname: s("ifName")?,
            netns: PathBuf::from(s("netns")?),
            pid: v.get("pid").and_then(Value::as_i64).ok_or_else(|| bad("pid"))? as i32,
            start_time: v.get("startTime").and_then(Value::as_u64).ok_or_else(|| bad("startTime"))?,
            boot_id: s("bootId")?,
            cni_path: s("cniPath")?,
            config_path: s("configPath")?,
            config: v.get("config").cloned().ok_or_else(|| bad("config"))?,
            runtime_config: v.get("runtimeConfig").cloned().unwrap_or(json!({})),
            complete: v.get("complete").and_then(Value::as_bool).ok_or_else(|| bad("complete"))?,
            result: v.get("result").cloned().unwrap_or(Value::Null),
        })
    }

    /// The container-side addresses of the result (`ips` whose interface
    /// has a sandbox; all of them when the result names no interfaces).
    pub fn addresses(&self) -> Vec<String> {
        addresses(&self.result)
    }
}

pub fn addresses(result: &Value) -> Vec<String> {
    let ifs = result["interfaces"].as_array();
    let in_sandbox = |ip: &Value| match (ifs, ip["interface"].as_u64()) {
        (Some(ifs), Some(i)) => ifs.get(i as usize).and_then(|f| f["sandbox"].as_str()).is_some_and(|s| !s.is_empty()),
        _ => true,
    };
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|ip| in_sandbox(ip))
        .filter_map(|ip| ip["address"].as_str())
        .map(str::to_string)
        .collect()
}

pub struct Store {
    pub dir: PathBuf,
}

/// Creates `p` (and parents) mode 0700 if missing.
fn mkdirs(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p).map_err(|e| Error::io("mkdir", p, e))
}

/// Writes `data` to `path` through a temp file and a rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(".{}.tmp-{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    res.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("write", path, e)
    })
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    fn net_dir(&self, net: &str) -> PathBuf {
        self.dir.join("networks").join(net)
    }
    pub fn record_path(&self, net: &str, id: &str) -> PathBuf {
        self.net_dir(net).join(format!("{id}.json"))
    }
    pub fn pin_path(&self, net: &str, id: &str) -> PathBuf {
        self.dir.join("netns").join(format!("{net}@{id}"))
    }
    fn addr_path(&self, id: &str) -> PathBuf {
        self.dir.join("addr").join(id)
    }

    /// Takes the lock of network `net` (held until the File is dropped).
    pub fn lock(&self, net: &str) -> Result<File> {
        let d = self.net_dir(net);
        mkdirs(&d)?;
        lock_file(&d.join(".lock"))
    }

    pub fn load(&self, net: &str, id: &str) -> Result<Option<Record>> {
        let p = self.record_path(net, id);
        let text = match fs::read(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &p, e)),
        };
        let v: Value = serde_json::from_slice(&text).map_err(|e| Error::input(p.display().to_string(), format!("not JSON: {e}")))?;
        Record::from_json(&p, &v).map(Some)
    }

    pub fn save(&self, r: &Record) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(&r.to_json()).unwrap_or_default();
        text.push(b'\n');
        write_atomic(&self.record_path(&r.network, &r.id), &text)
    }

    pub fn remove(&self, r: &Record) -> Result<()> {
        let p = self.record_path(&r.network, &r.id);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", &p, e)),
            _ => Ok(()),
        }
    }

    /// Every (network, container ID) with a record, sorted.
    pub fn all(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for net in list_dir(&self.dir.join("networks"))? {
            for f in list_dir(&self.net_dir(&net))? {
                if let Some(id) = f.strip_suffix(".json").filter(|_| !f.starts_with('.')) {
                    out.push((net.clone(), id.to_string()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Pins /proc/PID/ns/net at the pin path of (net, id).
    pub fn pin(&self, net: &str, id: &str, pid: i32) -> Result<PathBuf> {
        let d = self.dir.join("netns");
        mkdirs(&d)?;
        {
            // Two ADDs on different networks must not both make the mount.
            let _l = lock_file(&self.dir.join(".netns.lock"))?;
            make_shared(&d)?;
        }
        let p = self.pin_path(net, id);
        if is_pinned(&p) {
            unpin(&p)?;
        }
        File::create(&p).map_err(|e| Error::io("create", &p, e))?;
        let src = format!("/proc/{pid}/ns/net");
        rustix::mount::mount_bind(src.as_str(), &p).map_err(|e| {
            let _ = fs::remove_file(&p);
            Error::io("bind-mount the network namespace of the container at", &p, e)
        })?;
        Ok(p)
    }

    /// Pins that have no record (left by a crash between pin and record).
    pub fn orphan_pins(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for f in list_dir(&self.dir.join("netns"))? {
            let Some((net, id)) = f.split_once('@') else { continue };
            if !self.record_path(net, id).exists() {
                out.push(self.dir.join("netns").join(&f));
            }
        }
        Ok(out)
    }

    /// Rewrites DIR/addr/ID from the complete records of `id` (or removes
    /// it when there are none).
    pub fn update_addr(&self, id: &str) -> Result<()> {
        let mut addrs = Vec::new();
        for (net, rid) in self.all()? {
            if rid == id {
                if let Some(r) = self.load(&net, id)?.filter(|r| r.complete) {
                    addrs.extend(r.addresses());
                }
            }
        }
        let p = self.addr_path(id);
        if addrs.is_empty() {
            return match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", &p, e)),
                _ => Ok(()),
            };
        }
        mkdirs(&self.dir.join("addr"))?;
        write_atomic(&p, format!("{}\n", addrs.join(",")).as_bytes())
    }

    /// Address files whose container has no record left.
    pub fn orphan_addrs(&self) -> Result<Vec<String>> {
        let ids: Vec<String> = self.all()?.into_iter().map(|(_, id)| id).collect();
        Ok(list_dir(&self.dir.join("addr"))?.into_iter().filter(|f| !f.starts_with('.') && !ids.contains(f)).collect())
    }
}

/// An exclusive flock on `p` (created if missing), held until dropped.
fn lock_file(p: &Path) -> Result<File> {
    let f = OpenOptions::new().create(true).truncate(false).write(true).open(p).map_err(|e| Error::io("open", p, e))?;
    f.lock().map_err(|e| Error::io("lock", p, e))?;
    Ok(f)
}

/// Names in `d` (none when it does not exist), sorted.
fn list_dir(d: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", d, e)),
    };
    let mut v: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    Ok(v)
}

/// Makes `d` a shared mount of its own (bind-mounting it on itself first
/// when it is not a mount point).
fn make_shared(d: &Path) -> Result<()> {
    let flags = MountPropagationFlags::SHARED | MountPropagationFlags::REC;
    match rustix::mount::mount_change(d, flags) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) => {
            rustix::mount::mount_bind_recursive(d, d).map_err(|e| Error::io("bind-mount on itself", d, e))?;
            rustix::mount::mount_change(d, flags).map_err(|e| Error::io("make a shared mount of", d, e))
        }
        Err(e) => Err(Error::io("make a shared mount of", d, e)),
    }
}

/// Whether `p` is a live pin (a network namespace file), not the empty
/// file a reboot leaves.
pub fn is_pinned(p: &Path) -> bool {
    rustix::fs::statfs(p).map(|s| s.f_type == NSFS_MAGIC).unwrap_or(false)
}

/// Unmounts (if pinned) and removes a pin.
pub fn unpin(p: &Path) -> Result<()> {
    if is_pinned(p) {
        rustix::mount::unmount(p, UnmountFlags::DETACH).map_err(|e| Error::io("unmount", p, e))?;
    }
    match fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", p, e)),
        _ => Ok(()),
    }
}

/// This boot's ID (a different one means every container of the record's
/// boot is gone).
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Start time of `pid` (clock ticks since boot, /proc/PID/stat field 22),
/// to tell the container's init from a recycled pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    // rest starts at field 3 (state): a zombie is gone too.
    if matches!(f.next(), Some("Z" | "X")) {
        return None;
    }
    f.nth(18)?.parse().ok()
}

/// Whether the container the record was made for still runs.
pub fn alive(r: &Record) -> bool {
    r.pid > 0 && r.boot_id == boot_id() && start_time(r.pid) == Some(r.start_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_results() {
        // 1.0.0: ips point at interfaces; only the sandbox ones count.
        let r = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "br0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/proc/1/ns/net"}],
            "ips": [{"interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"}, {"interface": 0, "address": "10.1.0.1/16"}]});
        assert_eq!(addresses(&r), ["10.1.0.5/16"]);
        // 0.4.0 from an IPAM-only chain: no interfaces.
        let r = json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "192.168.1.3/24"}]});
        assert_eq!(addresses(&r), ["192.168.1.3/24"]);
        assert!(addresses(&Value::Null).is_empty());
    }

    #[test]
    fn records_round_trip_and_addr_files() {
        let d = std::env::temp_dir().join(format!("husk-cni-store-{}", std::process::id()));
        let s = Store::new(&d);
        let r = Record {
            network: "n1".into(),
            id: "c1".into(),
            ifname: "eth0".into(),
            netns: s.pin_path("n1", "c1"),
            pid: std::process::id() as i32,
            start_time: start_time(std::process::id() as i32).unwrap(),
            boot_id: boot_id(),
            cni_path: "/usr/lib/cni".into(),
            config: json!({"cniVersion": "1.0.0"}),
            config_path: "/x.conflist".into(),
            runtime_config: json!({}),
            complete: true,
            result: json!({"ips": [{"address": "10.0.0.2/24"}]}),
        };
        let _l = s.lock("n1").unwrap();
        s.save(&r).unwrap();
        let back = s.load("n1", "c1").unwrap().unwrap();
        assert_eq!(back.to_json(), r.to_json());
        assert!(alive(&back));
        assert_eq!(s.all().unwrap(), [("n1".to_string(), "c1".to_string())]);
        s.update_addr("c1").unwrap();
        assert_eq!(fs::read_to_string(d.join("addr/c1")).unwrap(), "10.0.0.2/24\n");
        s.remove(&r).unwrap();
        s.update_addr("c1").unwrap();
        assert!(!d.join("addr/c1").exists());
        assert_eq!(s.load("n1", "c1").unwrap().map(|r| r.id), None);
        let _ = fs::remove_dir_all(&d);
    }
}
