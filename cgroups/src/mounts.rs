//! Finding cgroup hierarchies: /proc/self/mountinfo (where each hierarchy is
//! mounted, with which controllers) and /proc/self/cgroup (where this process
//! sits in each).

use std::path::PathBuf;

/// The v1 controllers husk knows. Named hierarchies (name=systemd) hold no
/// controller but are joined too, as runc joins them (a container running
/// systemd on a v1 host needs its own name=systemd cgroup); other mount
/// options are not controllers.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

#[derive(Clone, Debug, PartialEq)]
pub struct CgMount {
    /// true for cgroup2.
    pub v2: bool,
    /// Root of the mount inside the hierarchy (field 4 of mountinfo).
    pub root: String,
    pub mountpoint: PathBuf,
    /// v1 controllers of this hierarchy (empty for v2).
    pub controllers: Vec<String>,
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// cgroup and cgroup2 mounts in mountinfo text, first mount of each v1
/// hierarchy only (bind mounts of the same controllers are skipped).
pub fn parse_mountinfo(text: &str) -> Vec<CgMount> {
    let mut out: Vec<CgMount> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < 5 || f.len() < sep + 4 {
            continue;
        }
        let fstype = f[sep + 1];
        let m = match fstype {
            "cgroup2" => CgMount { v2: true, root: unescape(f[3]), mountpoint: PathBuf::from(unescape(f[4])), controllers: vec![] },
            "cgroup" => {
                let controllers: Vec<String> =
                    f[sep + 3].split(',').filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name=")).map(|s| s.to_string()).collect();
                if controllers.is_empty() {
                    continue;
                }
                CgMount { v2: false, root: unescape(f[3]), mountpoint: PathBuf::from(unescape(f[4])), controllers }
            }
            _ => continue,
        };
        let dup = out.iter().any(|o| o.v2 == m.v2 && (if m.v2 { o.mountpoint == m.mountpoint } else { o.controllers == m.controllers }));
        if !dup {
            out.push(m);
        }
    }
    out
}

pub fn mounts() -> Vec<CgMount> {
    parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// The v2 mount to use: /sys/fs/cgroup if it is cgroup2, else the first one.
pub fn v2_mount(ms: &[CgMount]) -> Option<&CgMount> {
    ms.iter().filter(|m| m.v2).min_by_key(|m| if m.mountpoint == std::path::Path::new("/sys/fs/cgroup") { 0 } else { 1 })
}

/// This process's cgroup path in the hierarchy holding `controllers` (v1), or
/// in the unified hierarchy when `controllers` is empty, from
/// /proc/self/cgroup text.
pub fn own_path(proc_self_cgroup: &str, controllers: &[String]) -> Option<String> {
    for line in proc_self_cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if controllers.is_empty() {
            if id == "0" && ctrls.is_empty() {
                return Some(path.to_string());
            }
        } else if ctrls.split(',').any(|c| controllers.iter().any(|w| w == c)) {
            return Some(path.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 23 0:32 /x /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn parses_hybrid_mountinfo() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 5, "{m:?}");
        assert_eq!(m[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m[0].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m[1].controllers, vec!["cpuset"]);
        assert_eq!(m[2].controllers, vec!["memory"]);
        assert_eq!(m[3].controllers, vec!["name=systemd"], "named hierarchies are joined too");
        assert!(m[4].v2);
        assert_eq!(v2_mount(&m).unwrap().mountpoint, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn unescapes_mountpoints() {
        let m = parse_mountinfo("99 23 0:32 / /mnt/a\\040b rw - cgroup2 cgroup2 rw\n");
        assert_eq!(m[0].mountpoint, PathBuf::from("/mnt/a b"));
    }

    #[test]
    fn finds_own_paths() {
        let pc = "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n1:name=systemd:/x\n0::/unified/p\n";
        assert_eq!(own_path(pc, &["memory".into()]).as_deref(), Some("/process_api/abc"));
        assert_eq!(own_path(pc, &["cpuacct".into()]).as_deref(), Some("/"));
        assert_eq!(own_path(pc, &[]).as_deref(), Some("/unified/p"));
        assert_eq!(own_path(pc, &["pids".into()]), None);
    }
}
