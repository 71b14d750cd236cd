//! cgroup v1 (legacy and hybrid hosts): applying linux.resources to the
//! per-controller hierarchies, and reading statistics.

use super::devices;
use super::error::Error;
use super::fsio::{self, read_kv, read_u64, write};
use super::Cgroup;
use husk_oci::resources::*;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// (controller, config field) pairs a resource set needs on v1.
pub fn needed(r: &Resources) -> Vec<(&'static str, String)> {
    let mut n: Vec<(&'static str, String)> = Vec::new();
    let f = |s: &str| format!("linux.resources.{s}");
    if r.devices.is_some() {
        n.push(("devices", f("devices")));
    }
    if let Some(m) = &r.memory {
        for (set, name) in [
            (m.limit.is_some(), "limit"),
            (m.reservation.is_some(), "reservation"),
            (m.swap.is_some(), "swap"),
            (m.kernel_tcp.is_some(), "kernelTCP"),
            (m.swappiness.is_some(), "swappiness"),
            (m.disable_oom_killer == Some(true), "disableOOMKiller"),
        ] {
            if set {
                n.push(("memory", f(&format!("memory.{name}"))));
            }
        }
    }
    if let Some(c) = &r.cpu {
        for (set, name) in [
            (c.shares.is_some(), "shares"),
            (c.quota.is_some(), "quota"),
            (c.period.is_some(), "period"),
            (c.burst.is_some(), "burst"),
            (c.realtime_runtime.is_some(), "realtimeRuntime"),
            (c.realtime_period.is_some(), "realtimePeriod"),
            (c.idle.is_some(), "idle"),
        ] {
            if set {
                n.push(("cpu", f(&format!("cpu.{name}"))));
            }
        }
        if c.cpus.is_some() {
            n.push(("cpuset", f("cpu.cpus")));
        }
        if c.mems.is_some() {
            n.push(("cpuset", f("cpu.mems")));
        }
    }
    if r.pids.as_ref().is_some_and(|p| p.limit.is_some()) {
        n.push(("pids", f("pids.limit")));
    }
    if let Some(b) = &r.block_io {
        if b.weight.is_some()
            || b.leaf_weight.is_some()
            || b.weight_device.is_some()
            || b.throttle_read_bps_device.is_some()
            || b.throttle_write_bps_device.is_some()
            || b.throttle_read_iops_device.is_some()
            || b.throttle_write_iops_device.is_some()
        {
            n.push(("blkio", f("blockIO")));
        }
    }
    if r.hugepage_limits.as_ref().is_some_and(|h| !h.is_empty()) {
        n.push(("hugetlb", f("hugepageLimits")));
    }
    if let Some(net) = &r.network {
        if net.class_id.is_some() {
            n.push(("net_cls", f("network.classID")));
        }
        if net.priorities.as_ref().is_some_and(|p| !p.is_empty()) {
            n.push(("net_prio", f("network.priorities")));
        }
    }
    if r.rdma.as_ref().is_some_and(|m| !m.is_empty()) {
        n.push(("rdma", f("rdma")));
    }
    n
}

struct Ctx<'a> {
    cg: &'a Cgroup,
}

impl Ctx<'_> {
    fn dir(&self, ctrl: &str, field: &str) -> Result<&Path, Error> {
        self.cg.v1_dir(ctrl).ok_or_else(|| Error::missing(ctrl, field))
    }
    fn file(&self, ctrl: &str, name: &str, field: &str) -> Result<PathBuf, Error> {
        Ok(self.dir(ctrl, field)?.join(name))
    }
    fn set(&self, ctrl: &str, name: &str, val: &str, field: &str) -> Result<(), Error> {
        write(ctrl, &self.file(ctrl, name, field)?, val)
    }
    /// Writes two files whose valid values depend on each other (limit and
    /// memsw limit, rt period and runtime): try one order, then the other.
    fn set_pair(&self, ctrl: &str, a: (&str, String), b: (&str, String), field: &str) -> Result<(), Error> {
        let fa = self.file(ctrl, a.0, field)?;
        let fb = self.file(ctrl, b.0, field)?;
        let first = write(ctrl, &fa, &a.1).and_then(|_| write(ctrl, &fb, &b.1));
        match first {
            Ok(()) => Ok(()),
            Err(_) => write(ctrl, &fb, &b.1).and_then(|_| write(ctrl, &fa, &a.1)),
        }
    }
}

pub fn apply(cg: &Cgroup, r: &Resources) -> Result<(), Error> {
    let c = Ctx { cg };
    if let Some(u) = &r.unified {
        if !u.is_empty() {
            return Err(Error::invalid(
                "linux.resources.unified",
                "cannot use unified on cgroup v1 (this host runs cgroup v1 controllers)",
            ));
        }
    }
    if let Some(m) = &r.memory {
        apply_memory(&c, m)?;
    }
    if let Some(cpu) = &r.cpu {
        apply_cpu(&c, cpu)?;
    }
    if let Some(l) = r.pids.as_ref().and_then(|p| p.limit) {
        let v = if l < 0 { "max".to_string() } else { l.to_string() };
        c.set("pids", "pids.max", &v, "linux.resources.pids.limit")?;
    }
    if let Some(b) = &r.block_io {
        apply_blkio(&c, b)?;
    }
    if let Some(h) = &r.hugepage_limits {
        for (i, l) in h.iter().enumerate() {
            let field = format!("linux.resources.hugepageLimits[{i}]");
            let f = c.file("hugetlb", &format!("hugetlb.{}.limit_in_bytes", l.page_size), &field)?;
            if !f.exists() {
                return Err(Error::unsupported("hugetlb", format!("{field}: page size {:?} not supported by this kernel", l.page_size)));
            }
            write("hugetlb", &f, &l.limit.to_string())?;
        }
    }
    if let Some(n) = &r.network {
        if let Some(id) = n.class_id {
            c.set("net_cls", "net_cls.classid", &id.to_string(), "linux.resources.network.classID")?;
        }
        for p in n.priorities.iter().flatten() {
            c.set("net_prio", "net_prio.ifpriomap", &format!("{} {}", p.name, p.priority), "linux.resources.network.priorities")?;
        }
    }
    if let Some(rd) = &r.rdma {
        for (dev, l) in rd {
            c.set("rdma", "rdma.max", &rdma_line(dev, l), "linux.resources.rdma")?;
        }
    }
    if let Some(d) = &r.devices {
        let set = devices::effective(d)?;
        for (file, line) in devices::v1_writes(&set) {
            c.set("devices", file, &line, "linux.resources.devices")?;
        }
    }
    Ok(())
}

pub fn rdma_line(dev: &str, l: &Rdma) -> String {
    let mut s = dev.to_string();
    if let Some(h) = l.hca_handles {
        s += &format!(" hca_handle={h}");
    }
    if let Some(o) = l.hca_objects {
        s += &format!(" hca_object={o}");
    }
    s
}

fn apply_memory(c: &Ctx, m: &Memory) -> Result<(), Error> {
    let f = "linux.resources.memory";
    // As runc: an unlimited memory limit with swap not given makes swap
    // unlimited too (memsw must stay at or above the limit).
    let mut m = m.clone();
    if m.limit == Some(-1) && m.swap.is_none() && c.file("memory", "memory.memsw.limit_in_bytes", f)?.exists() {
        m.swap = Some(-1);
    }
    let m = &m;
    if let Some(s) = m.swap {
        let memsw = c.file("memory", "memory.memsw.limit_in_bytes", f)?;
        if !memsw.exists() {
            return Err(Error::unsupported(
                "memory",
                "linux.resources.memory.swap: this kernel has no swap accounting (memory.memsw.limit_in_bytes; boot with swapaccount=1)",
            ));
        }
        match m.limit {
            Some(l) => c.set_pair("memory", ("memory.limit_in_bytes", l.to_string()), ("memory.memsw.limit_in_bytes", s.to_string()), f)?,
            None => write("memory", &memsw, &s.to_string())?,
        }
    } else if let Some(l) = m.limit {
        let lim = c.file("memory", "memory.limit_in_bytes", f)?;
        let memsw = c.file("memory", "memory.memsw.limit_in_bytes", f)?;
        let old_lim = read_u64("memory", &lim).ok();
        let old_sw = read_u64("memory", &memsw).ok();
        match write("memory", &lim, &l.to_string()) {
            // Raising the limit above memory+swap fails. A container set up
            // with no swap (memsw == limit) keeps having none: raise both.
            Err(e) if e.errno() == Some(libc::EINVAL) && old_sw.is_some() && old_sw == old_lim => {
                write("memory", &memsw, &l.to_string())?;
                write("memory", &lim, &l.to_string())?;
            }
            r => r?,
        }
    }
    if let Some(r) = m.reservation {
        c.set("memory", "memory.soft_limit_in_bytes", &r.to_string(), f)?;
    }
    if let Some(k) = m.kernel_tcp {
        c.set("memory", "memory.kmem.tcp.limit_in_bytes", &k.to_string(), f)?;
    }
    if let Some(s) = m.swappiness {
        if s > 100 {
            return Err(Error::invalid("linux.resources.memory.swappiness", format!("{s} is not in 0..=100")));
        }
        c.set("memory", "memory.swappiness", &s.to_string(), f)?;
    }
    if m.disable_oom_killer == Some(true) {
        c.set("memory", "memory.oom_control", "1", f)?;
    }
    Ok(())
}

fn apply_cpu(c: &Ctx, cpu: &Cpu) -> Result<(), Error> {
    let f = "linux.resources.cpu";
    if let Some(s) = cpu.shares {
        if s != 0 {
            c.set("cpu", "cpu.shares", &s.to_string(), f)?;
        }
    }
    // A quota below zero is "no limit" (-1). Period and quota depend on
    // each other under a parent's limit: set_pair tries both orders.
    let quota = cpu.quota.map(|q| if q < 0 { "-1".to_string() } else { q.to_string() });
    match (cpu.period, quota) {
        (Some(p), Some(q)) => c.set_pair("cpu", ("cpu.cfs_period_us", p.to_string()), ("cpu.cfs_quota_us", q), f)?,
        (Some(p), None) => c.set("cpu", "cpu.cfs_period_us", &p.to_string(), f)?,
        (None, Some(q)) => c.set("cpu", "cpu.cfs_quota_us", &q, f)?,
        (None, None) => {}
    }
    if let Some(b) = cpu.burst {
        c.set("cpu", "cpu.cfs_burst_us", &b.to_string(), f)?;
    }
    match (cpu.realtime_period, cpu.realtime_runtime) {
        (Some(p), Some(r)) => c.set_pair("cpu", ("cpu.rt_period_us", p.to_string()), ("cpu.rt_runtime_us", r.to_string()), f)?,
        (Some(p), None) => c.set("cpu", "cpu.rt_period_us", &p.to_string(), f)?,
        (None, Some(r)) => c.set("cpu", "cpu.rt_runtime_us", &r.to_string(), f)?,
        (None, None) => {}
    }
    if let Some(i) = cpu.idle {
        c.set("cpu", "cpu.idle", &i.to_string(), f)?;
    }
    if let Some(s) = &cpu.cpus {
        if !s.is_empty() {
            c.set("cpuset", "cpuset.cpus", s, f)?;
        }
    }
    if let Some(s) = &cpu.mems {
        if !s.is_empty() {
            c.set("cpuset", "cpuset.mems", s, f)?;
        }
    }
    Ok(())
}

fn apply_blkio(c: &Ctx, b: &BlockIo) -> Result<(), Error> {
    let f = "linux.resources.blockIO";
    let dir = c.dir("blkio", f)?.to_path_buf();
    // CFQ's blkio.weight is gone on new kernels; BFQ has blkio.bfq.weight
    // (present only when the bfq scheduler is loaded).
    let pick = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.exists());
    if let Some(w) = b.weight {
        let file = pick(&["blkio.weight", "blkio.bfq.weight"]).ok_or_else(|| {
            Error::unsupported(
                "blkio",
                "linux.resources.blockIO.weight: no blkio.weight or blkio.bfq.weight on this kernel (needs the CFQ or BFQ I/O scheduler)",
            )
        })?;
        write("blkio", &file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight {
        let file = pick(&["blkio.leaf_weight"])
            .ok_or_else(|| Error::unsupported("blkio", "linux.resources.blockIO.leafWeight: no blkio.leaf_weight on this kernel"))?;
        write("blkio", &file, &w.to_string())?;
    }
    for d in b.weight_device.iter().flatten() {
        if let Some(w) = d.weight {
            let file = pick(&["blkio.weight_device", "blkio.bfq.weight_device"]).ok_or_else(|| {
                Error::unsupported(
                    "blkio",
                    "linux.resources.blockIO.weightDevice: no blkio.weight_device or blkio.bfq.weight_device on this kernel",
                )
            })?;
            write("blkio", &file, &format!("{}:{} {w}", d.major, d.minor))?;
        }
        if let Some(w) = d.leaf_weight {
            let file = pick(&["blkio.leaf_weight_device"]).ok_or_else(|| {
                Error::unsupported("blkio", "linux.resources.blockIO.weightDevice.leafWeight: no blkio.leaf_weight_device on this kernel")
            })?;
            write("blkio", &file, &format!("{}:{} {w}", d.major, d.minor))?;
        }
    }
    for (list, name) in [
        (&b.throttle_read_bps_device, "blkio.throttle.read_bps_device"),
        (&b.throttle_write_bps_device, "blkio.throttle.write_bps_device"),
        (&b.throttle_read_iops_device, "blkio.throttle.read_iops_device"),
        (&b.throttle_write_iops_device, "blkio.throttle.write_iops_device"),
    ] {
        for d in list.iter().flatten() {
            write("blkio", &dir.join(name), &format!("{}:{} {}", d.major, d.minor, d.rate))?;
        }
    }
    Ok(())
}

/// Gives each of `parents` (ancestors of `leaf`, husk's own) enough
/// cpu.rt_runtime_us for its other children plus `leaf`'s `runtime`, from
/// the top down; the kernel refuses a child more than its parent has.
pub fn rt_raise_parents(leaf: &Path, parents: &[PathBuf], runtime: i64) -> Result<(), Error> {
    let rt = |d: &Path| read_u64("cpu", &d.join("cpu.rt_runtime_us")).map(|v| v as i64).unwrap_or(0);
    // Bottom up: what each ancestor on the path needs.
    let mut need: Vec<(PathBuf, i64)> = Vec::new();
    let mut child_need = runtime;
    let mut child = leaf.to_path_buf();
    for a in leaf.ancestors().skip(1) {
        let others: i64 = std::fs::read_dir(a)
            .map(|rd| rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.path() != child).map(|e| rt(&e.path())).sum())
            .unwrap_or(0);
        let n = others + child_need;
        if parents.iter().any(|p| p == a) {
            need.push((a.to_path_buf(), n));
        } else {
            break;
        }
        child_need = n;
        child = a.to_path_buf();
    }
    for (d, n) in need.iter().rev() {
        if rt(d) < *n {
            write("cpu", &d.join("cpu.rt_runtime_us"), &n.to_string())?;
        }
    }
    Ok(())
}

/// `memory.oom_control`'s oom_kill counter (0 when unreadable).
pub fn oom_count(cg: &Cgroup) -> u64 {
    cg.v1_dir("memory")
        .and_then(|d| read_kv("memory", &d.join("memory.oom_control")).ok())
        .and_then(|m| m.get("oom_kill").copied())
        .unwrap_or(0)
}

fn opt_u64(ctrl: &str, p: &Path) -> u64 {
    match read_u64(ctrl, p) {
        Ok(v) if v >= 0x7FFF_FFFF_FFFF_F000 => u64::MAX,
        Ok(v) => v,
        Err(_) => 0,
    }
}

fn mem_entry(d: &Path, prefix: &str) -> Option<Value> {
    if !d.join(format!("{prefix}.usage_in_bytes")).exists() {
        return None;
    }
    let g = |n: &str| opt_u64("memory", &d.join(format!("{prefix}.{n}")));
    Some(json!({
        "limit": g("limit_in_bytes"),
        "usage": g("usage_in_bytes"),
        "max": g("max_usage_in_bytes"),
        "failcnt": g("failcnt"),
    }))
}

/// blkio "MAJ:MIN Op value" lines → runc's BlkioEntry list.
pub fn blkio_entries(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (maj, min) = f[0].split_once(':')?;
            Some(json!({
                "major": maj.parse::<u64>().ok()?,
                "minor": min.parse::<u64>().ok()?,
                "op": f[1],
                "value": f[2].parse::<u64>().ok()?,
            }))
        })
        .collect()
}

fn percpu(ctrl: &str, p: &Path) -> Vec<u64> {
    fsio::read(ctrl, p).map(|s| s.split_whitespace().filter_map(|x| x.parse().ok()).collect()).unwrap_or_default()
}

/// runc's `events --stats` data for a v1 cgroup.
pub fn stats(cg: &Cgroup) -> Result<Value, Error> {
    let mut out = Map::new();
    // CPU
    let mut cpu = Map::new();
    if let Some(d) = cg.v1_dir("cpuacct") {
        let mut usage = Map::new();
        usage.insert("total".into(), json!(opt_u64("cpuacct", &d.join("cpuacct.usage"))));
        usage.insert("percpu".into(), json!(percpu("cpuacct", &d.join("cpuacct.usage_percpu"))));
        usage.insert("percpu_kernel".into(), json!(percpu("cpuacct", &d.join("cpuacct.usage_percpu_sys"))));
        usage.insert("percpu_user".into(), json!(percpu("cpuacct", &d.join("cpuacct.usage_percpu_user"))));
        // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
        let st = read_kv("cpuacct", &d.join("cpuacct.stat")).unwrap_or_default();
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
            n if n > 0 => n as u64,
            _ => 100,
        };
        let ns = |k: &str| st.get(k).copied().unwrap_or(0) * (1_000_000_000 / hz);
        usage.insert("kernel".into(), json!(ns("system")));
        usage.insert("user".into(), json!(ns("user")));
        cpu.insert("usage".into(), Value::Object(usage));
    }
    if let Some(d) = cg.v1_dir("cpu") {
        let st = read_kv("cpu", &d.join("cpu.stat")).unwrap_or_default();
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        cpu.insert(
            "throttling".into(),
            json!({"periods": g("nr_periods"), "throttledPeriods": g("nr_throttled"), "throttledTime": g("throttled_time")}),
        );
    }
    out.insert("cpu".into(), Value::Object(cpu));
    // Memory
    if let Some(d) = cg.v1_dir("memory") {
        let raw = read_kv("memory", &d.join("memory.stat")).unwrap_or_default();
        let mut mem = Map::new();
        mem.insert("cache".into(), json!(raw.get("total_cache").or(raw.get("cache")).copied().unwrap_or(0)));
        for (key, prefix) in [("usage", "memory"), ("swap", "memory.memsw"), ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")] {
            if let Some(e) = mem_entry(d, prefix) {
                mem.insert(key.into(), e);
            }
        }
        // runc's shape: OOM kills are events ({"type":"oom"}), not stats.
        mem.insert("raw".into(), json!(raw));
        out.insert("memory".into(), Value::Object(mem));
    }
    // Pids
    if let Some(d) = cg.v1_dir("pids") {
        let limit = match read_u64("pids", &d.join("pids.max")) {
            Ok(u64::MAX) | Err(_) => 0,
            Ok(v) => v,
        };
        out.insert("pids".into(), json!({"current": opt_u64("pids", &d.join("pids.current")), "limit": limit}));
    }
    // Block I/O: CFQ/BFQ files when present, else the throttle layer's.
    if let Some(d) = cg.v1_dir("blkio") {
        let pick = |names: &[&str]| {
            names.iter().find_map(|n| std::fs::read_to_string(d.join(n)).ok()).map(|s| blkio_entries(&s)).unwrap_or_default()
        };
        out.insert(
            "blkio".into(),
            json!({
                "ioServiceBytesRecursive": pick(&["blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"]),
                "ioServicedRecursive": pick(&["blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive", "blkio.throttle.io_serviced_recursive"]),
            }),
        );
    }
    // Hugetlb
    if let Some(d) = cg.v1_dir("hugetlb") {
        let mut h = Map::new();
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if let Some(size) = n.strip_prefix("hugetlb.").and_then(|s| s.strip_suffix(".usage_in_bytes")) {
                    let g = |k: &str| opt_u64("hugetlb", &d.join(format!("hugetlb.{size}.{k}")));
                    h.insert(size.into(), json!({"usage": g("usage_in_bytes"), "max": g("max_usage_in_bytes"), "failcnt": g("failcnt")}));
                }
            }
        }
        out.insert("hugetlb".into(), Value::Object(h));
    }
    Ok(Value::Object(out))
}

/// Copies cpuset.cpus/cpuset.mems from the parent into `dir` when empty (a
/// v1 cpuset cgroup with empty sets refuses tasks).
pub fn cpuset_inherit(dir: &Path) -> Result<(), Error> {
    for name in ["cpuset.cpus", "cpuset.mems"] {
        let f = dir.join(name);
        if fsio::read_line("cpuset", &f)?.is_empty() {
            let parent = dir.parent().unwrap_or(dir).join(name);
            let v = fsio::read_line("cpuset", &parent)?;
            write("cpuset", &f, &v)?;
        }
    }
    Ok(())
}
