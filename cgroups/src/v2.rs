//! cgroup v2 (unified hosts): applying linux.resources, the BPF device
//! filter, and statistics.

use super::bpf;
use super::devices;
use super::error::Error;
use super::fsio::{self, read_kv, read_u64, write};
use super::v1::rdma_line;
use husk_oci::resources::*;
use serde_json::{json, Map, Value};
use std::path::Path;

/// (controller, config field) pairs a resource set needs on v2. Devices need
/// no controller (they are a BPF program).
pub fn needed(r: &Resources) -> Result<Vec<(String, String)>, Error> {
    let mut n: Vec<(String, String)> = Vec::new();
    let mut push = |c: &str, f: &str| n.push((c.to_string(), format!("linux.resources.{f}")));
    if let Some(m) = &r.memory {
        if m.swappiness.is_some() {
            return Err(Error::unsupported("memory", "linux.resources.memory.swappiness: not available on cgroup v2"));
        }
        if m.disable_oom_killer == Some(true) {
            return Err(Error::unsupported("memory", "linux.resources.memory.disableOOMKiller: not available on cgroup v2"));
        }
        if m.kernel_tcp.is_some() {
            return Err(Error::unsupported("memory", "linux.resources.memory.kernelTCP: not available on cgroup v2"));
        }
        if m.limit.is_some() || m.reservation.is_some() || m.swap.is_some() {
            push("memory", "memory");
        }
    }
    if let Some(c) = &r.cpu {
        if c.realtime_period.is_some() || c.realtime_runtime.is_some() {
            return Err(Error::unsupported(
                "cpu",
                "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime bandwidth control",
            ));
        }
        if c.shares.is_some() || c.quota.is_some() || c.period.is_some() || c.burst.is_some() || c.idle.is_some() {
            push("cpu", "cpu");
        }
        if c.cpus.is_some() || c.mems.is_some() {
            push("cpuset", "cpu.cpus/mems");
        }
    }
    if r.pids.as_ref().is_some_and(|p| p.limit.is_some()) {
        push("pids", "pids.limit");
    }
    if let Some(b) = &r.block_io {
        if b.leaf_weight.is_some() || b.weight_device.iter().flatten().any(|d| d.leaf_weight.is_some()) {
            return Err(Error::unsupported("io", "linux.resources.blockIO.leafWeight: not available on cgroup v2"));
        }
        if b.weight.is_some()
            || b.weight_device.is_some()
            || b.throttle_read_bps_device.is_some()
            || b.throttle_write_bps_device.is_some()
            || b.throttle_read_iops_device.is_some()
            || b.throttle_write_iops_device.is_some()
        {
            push("io", "blockIO");
        }
    }
    if r.hugepage_limits.as_ref().is_some_and(|h| !h.is_empty()) {
        push("hugetlb", "hugepageLimits");
    }
    if let Some(net) = &r.network {
        if net.class_id.is_some() || net.priorities.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::unsupported("net_cls", "linux.resources.network: cgroup v2 has no net_cls/net_prio controllers"));
        }
    }
    if r.rdma.as_ref().is_some_and(|m| !m.is_empty()) {
        push("rdma", "rdma");
    }
    for k in r.unified.iter().flat_map(|u| u.keys()) {
        if k.contains('/') || k.starts_with('.') || k.is_empty() {
            return Err(Error::invalid(format!("linux.resources.unified[{k:?}]"), "not a cgroup file name"));
        }
        let ctrl = k.split('.').next().unwrap_or("");
        if ctrl != "cgroup" {
            push(ctrl, &format!("unified[{k:?}]"));
        }
    }
    Ok(n)
}

/// runc's shares → weight conversion: [2, 262144] → [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// blkio weight [10, 1000] → io.weight [1, 10000].
pub fn blkio_to_io_weight(w: u16) -> u64 {
    let w = (w as u64).clamp(10, 1000);
    1 + ((w - 10) * 9999) / 990
}

pub fn apply(dir: &Path, r: &Resources) -> Result<(), Error> {
    let set = |ctrl: &str, name: &str, val: &str| write(ctrl, &dir.join(name), val);
    if let Some(m) = &r.memory {
        let lim = |v: i64| {
            if v < 0 {
                "max".to_string()
            } else {
                v.to_string()
            }
        };
        if let Some(l) = m.limit {
            set("memory", "memory.max", &lim(l))?;
        }
        if let Some(rsv) = m.reservation {
            set("memory", "memory.low", &lim(rsv))?;
        }
        if let Some(s) = m.swap {
            let f = dir.join("memory.swap.max");
            if !f.exists() {
                return Err(Error::unsupported(
                    "memory",
                    "linux.resources.memory.swap: this kernel has no swap accounting (memory.swap.max)",
                ));
            }
            // OCI swap is memory+swap; v2 limits swap alone.
            let v = match (s, m.limit) {
                (s, _) if s < 0 => "max".to_string(),
                (_, Some(l)) if l < 0 => "max".to_string(),
                (s, Some(l)) if s >= l => (s - l).to_string(),
                (s, Some(l)) => return Err(Error::invalid("linux.resources.memory.swap", format!("{s} is below the memory limit {l}"))),
                (_, None) => return Err(Error::invalid("linux.resources.memory.swap", "needs linux.resources.memory.limit on cgroup v2")),
            };
            write("memory", &f, &v)?;
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares {
            if s != 0 {
                set("cpu", "cpu.weight", &shares_to_weight(s).to_string())?;
            }
        }
        if c.quota.is_some() || c.period.is_some() {
            let cur = fsio::read_line("cpu", &dir.join("cpu.max"))?;
            let mut it = cur.split_whitespace();
            let (cq, cp) = (it.next().unwrap_or("max").to_string(), it.next().unwrap_or("100000").to_string());
            let q = match c.quota {
                Some(q) if q > 0 => q.to_string(),
                Some(_) => "max".to_string(),
                None => cq,
            };
            let p = match c.period {
                Some(p) if p > 0 => p.to_string(),
                _ => cp,
            };
            set("cpu", "cpu.max", &format!("{q} {p}"))?;
        }
        if let Some(b) = c.burst {
            set("cpu", "cpu.max.burst", &b.to_string())?;
        }
        if let Some(i) = c.idle {
            set("cpu", "cpu.idle", &i.to_string())?;
        }
        if let Some(s) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
            set("cpuset", "cpuset.cpus", s)?;
        }
        if let Some(s) = c.mems.as_deref().filter(|s| !s.is_empty()) {
            set("cpuset", "cpuset.mems", s)?;
        }
    }
    if let Some(l) = r.pids.as_ref().and_then(|p| p.limit) {
        set("pids", "pids.max", &if l < 0 { "max".to_string() } else { l.to_string() })?;
    }
    if let Some(b) = &r.block_io {
        let bfq = dir.join("io.bfq.weight").exists();
        if let Some(w) = b.weight {
            if bfq {
                set("io", "io.bfq.weight", &w.to_string())?;
            } else if dir.join("io.weight").exists() {
                set("io", "io.weight", &blkio_to_io_weight(w).to_string())?;
            } else {
                return Err(Error::unsupported("io", "linux.resources.blockIO.weight: no io.weight or io.bfq.weight on this kernel"));
            }
        }
        for d in b.weight_device.iter().flatten() {
            if let Some(w) = d.weight {
                if bfq {
                    set("io", "io.bfq.weight", &format!("{}:{} {w}", d.major, d.minor))?;
                } else {
                    set("io", "io.weight", &format!("{}:{} {}", d.major, d.minor, blkio_to_io_weight(w)))?;
                }
            }
        }
        for (list, key) in [
            (&b.throttle_read_bps_device, "rbps"),
            (&b.throttle_write_bps_device, "wbps"),
            (&b.throttle_read_iops_device, "riops"),
            (&b.throttle_write_iops_device, "wiops"),
        ] {
            for d in list.iter().flatten() {
                let rate = if d.rate == 0 { "max".to_string() } else { d.rate.to_string() };
                set("io", "io.max", &format!("{}:{} {key}={rate}", d.major, d.minor))?;
            }
        }
    }
    for (i, l) in r.hugepage_limits.iter().flatten().enumerate() {
        let f = dir.join(format!("hugetlb.{}.max", l.page_size));
        if !f.exists() {
            return Err(Error::unsupported(
                "hugetlb",
                format!("linux.resources.hugepageLimits[{i}]: page size {:?} not supported by this kernel", l.page_size),
            ));
        }
        write("hugetlb", &f, &l.limit.to_string())?;
    }
    for (dev, l) in r.rdma.iter().flatten() {
        set("rdma", "rdma.max", &rdma_line(dev, l))?;
    }
    if let Some(u) = &r.unified {
        let mut keys: Vec<_> = u.keys().collect();
        keys.sort();
        for k in keys {
            let f = dir.join(k);
            let ctrl = k.split('.').next().unwrap_or(k);
            if !f.exists() {
                return Err(Error::missing(ctrl, &format!("linux.resources.unified[{k:?}]")));
            }
            write(ctrl, &f, &u[k])?;
        }
    }
    if let Some(d) = &r.devices {
        let set = devices::effective(d)?;
        let prog = devices::compile(&set);
        let fd = std::fs::File::open(dir).map_err(|e| Error::io("devices", dir, "open", &e))?;
        bpf::install(std::os::fd::AsFd::as_fd(&fd), &prog)?;
    }
    Ok(())
}

pub fn oom_count(dir: &Path) -> u64 {
    read_kv("memory", &dir.join("memory.events")).ok().and_then(|m| m.get("oom_kill").copied()).unwrap_or(0)
}

fn get(ctrl: &str, p: &Path) -> u64 {
    read_u64(ctrl, p).unwrap_or(0)
}

/// runc's `events --stats` data for a v2 cgroup.
pub fn stats(dir: &Path) -> Result<Value, Error> {
    let mut out = Map::new();
    let cs = read_kv("cpu", &dir.join("cpu.stat")).unwrap_or_default();
    let g = |k: &str| cs.get(k).copied().unwrap_or(0);
    out.insert(
        "cpu".into(),
        json!({
            "usage": {"total": g("usage_usec") * 1000, "kernel": g("system_usec") * 1000, "user": g("user_usec") * 1000},
            "throttling": {"periods": g("nr_periods"), "throttledPeriods": g("nr_throttled"), "throttledTime": g("throttled_usec") * 1000},
        }),
    );
    if dir.join("memory.current").exists() {
        let raw = read_kv("memory", &dir.join("memory.stat")).unwrap_or_default();
        let ev = read_kv("memory", &dir.join("memory.events")).unwrap_or_default();
        let mut mem = Map::new();
        mem.insert("cache".into(), json!(raw.get("file").copied().unwrap_or(0)));
        mem.insert(
            "usage".into(),
            json!({
                "limit": get("memory", &dir.join("memory.max")),
                "usage": get("memory", &dir.join("memory.current")),
                "max": get("memory", &dir.join("memory.peak")),
                "failcnt": ev.get("max").copied().unwrap_or(0),
            }),
        );
        if dir.join("memory.swap.current").exists() {
            mem.insert(
                "swap".into(),
                json!({
                    "limit": get("memory", &dir.join("memory.swap.max")),
                    "usage": get("memory", &dir.join("memory.swap.current")),
                    "max": get("memory", &dir.join("memory.swap.peak")),
                    "failcnt": 0,
                }),
            );
        }
        // runc's shape: OOM kills are events ({"type":"oom"}), not stats.
        mem.insert("raw".into(), json!(raw));
        out.insert("memory".into(), Value::Object(mem));
    }
    if dir.join("pids.current").exists() {
        let limit = match read_u64("pids", &dir.join("pids.max")) {
            Ok(u64::MAX) | Err(_) => 0,
            Ok(v) => v,
        };
        out.insert("pids".into(), json!({"current": get("pids", &dir.join("pids.current")), "limit": limit}));
    }
    if let Ok(s) = std::fs::read_to_string(dir.join("io.stat")) {
        let (mut bytes, mut ios) = (Vec::new(), Vec::new());
        for l in s.lines() {
            let mut it = l.split_whitespace();
            let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(v) = v.parse::<u64>() else { continue };
                let e = |op: &str| json!({"major": maj, "minor": min, "op": op, "value": v});
                match k {
                    "rbytes" => bytes.push(e("Read")),
                    "wbytes" => bytes.push(e("Write")),
                    "rios" => ios.push(e("Read")),
                    "wios" => ios.push(e("Write")),
                    _ => {}
                }
            }
        }
        out.insert("blkio".into(), json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios}));
    }
    let mut h = Map::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if let Some(size) = n.strip_prefix("hugetlb.").and_then(|s| s.strip_suffix(".current")) {
                let ev = read_kv("hugetlb", &dir.join(format!("hugetlb.{size}.events"))).unwrap_or_default();
                h.insert(
                    size.into(),
                    json!({"usage": get("hugetlb", &e.path()), "max": get("hugetlb", &dir.join(format!("hugetlb.{size}.max"))), "failcnt": ev.get("max").copied().unwrap_or(0)}),
                );
            }
        }
    }
    if !h.is_empty() {
        out.insert("hugetlb".into(), Value::Object(h));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn needed_names_controllers_and_rejects_v1_only_knobs() {
        let r: Resources =
            serde_json::from_str(r#"{"memory":{"limit":1},"cpu":{"cpus":"0"},"unified":{"io.max":"x","cgroup.type":"y"},"devices":[]}"#)
                .unwrap();
        let n: Vec<String> = needed(&r).unwrap().into_iter().map(|x| x.0).collect();
        assert!(n.contains(&"memory".to_string()) && n.contains(&"cpuset".to_string()) && n.contains(&"io".to_string()));
        assert!(!n.contains(&"cgroup".to_string()));
        let r: Resources = serde_json::from_str(r#"{"memory":{"swappiness":10}}"#).unwrap();
        assert!(needed(&r).unwrap_err().to_string().contains("swappiness"));
        let r: Resources = serde_json::from_str(r#"{"unified":{"../x":"1"}}"#).unwrap();
        assert!(needed(&r).is_err());
    }
}
