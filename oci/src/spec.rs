//! OCI runtime-spec 1.2 `config.json`: the types husk reads, loading, and
//! validation. Unknown fields are ignored; every error names the field.
//! Parse, don't validate: names with a fixed set of values (namespace
//! kinds) are enums, so an unknown one fails at parse time with its path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names;
use crate::resources::Resources;
use crate::seccomp::Seccomp;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Spec {
    pub oci_version: String,
    pub root: Option<Root>,
    pub process: Option<Process>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub mounts: Vec<Mount>,
    pub hooks: Option<Hooks>,
    pub annotations: BTreeMap<String, String>,
    pub linux: Option<Linux>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Process {
    pub terminal: bool,
    pub console_size: Option<ConsoleSize>,
    pub user: User,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub capabilities: Option<Capabilities>,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub apparmor_profile: Option<String>,
    pub oom_score_adj: Option<i32>,
    pub selinux_label: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub umask: Option<u32>,
    pub additional_gids: Vec<u32>,
    pub username: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Capabilities {
    pub bounding: Option<Vec<String>>,
    pub effective: Option<Vec<String>>,
    pub inheritable: Option<Vec<String>>,
    pub permitted: Option<Vec<String>>,
    pub ambient: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub typ: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub typ: Option<String>,
    pub source: Option<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Hook {
    pub path: String,
    pub args: Vec<String>,
    /// None: the hook gets the runtime's environment (as runc's hooks do).
    pub env: Option<Vec<String>>,
    pub timeout: Option<i64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Linux {
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    pub sysctl: BTreeMap<String, String>,
    pub resources: Option<Resources>,
    pub cgroups_path: Option<String>,
    pub namespaces: Vec<Namespace>,
    pub devices: Vec<Device>,
    pub seccomp: Option<Seccomp>,
    pub rootfs_propagation: Option<String>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub mount_label: Option<String>,
    pub time_offsets: BTreeMap<String, TimeOffset>,
    pub personality: Option<Personality>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub typ: NamespaceKind,
    pub path: Option<String>,
}

/// `linux.namespaces[].type`. The order of [`NamespaceKind::ALL`] is the
/// order husk joins them in: user first, so that the others are owned by it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceKind {
    User,
    #[default]
    Pid,
    Network,
    Ipc,
    Uts,
    Mount,
    Cgroup,
    Time,
}

impl NamespaceKind {
    pub const ALL: [NamespaceKind; 8] = [
        NamespaceKind::User,
        NamespaceKind::Pid,
        NamespaceKind::Network,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Mount,
        NamespaceKind::Cgroup,
        NamespaceKind::Time,
    ];
    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            NamespaceKind::User => "user",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Network => "network",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Mount => "mount",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }
    /// The file under /proc/PID/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::Mount => "mnt",
            NamespaceKind::Network => "net",
            k => k.name(),
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Personality {
    pub domain: String,
    pub flags: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Device {
    #[serde(rename = "type")]
    pub typ: String,
    pub path: String,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TimeOffset {
    pub secs: i64,
    pub nanosecs: u32,
}

impl Spec {
    pub fn linux(&self) -> &Linux {
        static EMPTY: std::sync::OnceLock<Linux> = std::sync::OnceLock::new();
        self.linux.as_ref().unwrap_or_else(|| EMPTY.get_or_init(Linux::default))
    }
    /// The namespace entry of `kind`, if the config lists it.
    pub fn ns(&self, kind: NamespaceKind) -> Option<&Namespace> {
        self.linux().namespaces.iter().find(|n| n.typ == kind)
    }
    /// True if the container gets a new namespace of `kind` (listed, no path).
    pub fn new_ns(&self, kind: NamespaceKind) -> bool {
        self.ns(kind).is_some_and(|n| n.path.as_deref().unwrap_or("").is_empty())
    }
    pub fn hooks(&self) -> Hooks {
        self.hooks.clone().unwrap_or_default()
    }
}

/// Reads and validates `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|err| Error::Io { path: path.display().to_string(), err })?;
    parse(&data).map_err(|e| e.within("config.json: "))
}

/// Parses and validates config.json text.
pub fn parse(data: &[u8]) -> Result<Spec> {
    let spec: Spec = from_json(data)?;
    validate(&spec)?;
    Ok(spec)
}

/// Deserialises `data` as `T`, naming the field at fault.
pub fn from_json<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        Error::invalid(if field == "." { "(document)".to_string() } else { field }, inner.to_string())
    })
}

fn bad(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::invalid(field, msg)
}

pub fn validate(spec: &Spec) -> Result<()> {
    if spec.oci_version.is_empty() {
        return Err(bad("ociVersion", "missing"));
    }
    if !spec.oci_version.starts_with("1.") {
        return Err(bad("ociVersion", format!("unsupported version {:?}", spec.oci_version)));
    }
    match &spec.root {
        None => return Err(bad("root", "missing")),
        Some(r) if r.path.is_empty() => return Err(bad("root.path", "missing")),
        _ => {}
    }
    if let Some(p) = &spec.process {
        validate_process(p, "process")?;
    }
    let linux = spec.linux();
    let mut seen = Vec::new();
    for (i, ns) in linux.namespaces.iter().enumerate() {
        if seen.contains(&ns.typ) {
            return Err(bad(format!("linux.namespaces[{i}].type"), format!("duplicate namespace {:?}", ns.typ.name())));
        }
        seen.push(ns.typ);
        if let Some(p) = ns.path.as_deref().filter(|p| !p.is_empty()) {
            if !p.starts_with('/') {
                return Err(bad(format!("linux.namespaces[{i}].path"), format!("{p:?} is not absolute")));
            }
        }
    }
    let userns = spec.ns(NamespaceKind::User).is_some();
    if !userns && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) {
        return Err(bad("linux.uidMappings", "mappings given without a user namespace"));
    }
    if spec.new_ns(NamespaceKind::User) && (linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty()) {
        return Err(bad("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings"));
    }
    if spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) && spec.ns(NamespaceKind::Uts).is_none() {
        return Err(bad("hostname", "setting the hostname needs a uts namespace"));
    }
    if spec.domainname.as_deref().is_some_and(|h| !h.is_empty()) && spec.ns(NamespaceKind::Uts).is_none() {
        return Err(bad("domainname", "setting the domainname needs a uts namespace"));
    }
    if !linux.time_offsets.is_empty() && spec.ns(NamespaceKind::Time).is_none() {
        return Err(bad("linux.timeOffsets", "time offsets need a time namespace"));
    }
    for k in linux.time_offsets.keys() {
        if k != "monotonic" && k != "boottime" {
            return Err(bad(format!("linux.timeOffsets.{k}"), "only monotonic and boottime clocks have offsets"));
        }
    }
    for (i, m) in spec.mounts.iter().enumerate() {
        if !m.destination.starts_with('/') {
            return Err(bad(format!("mounts[{i}].destination"), format!("{:?} is not absolute", m.destination)));
        }
    }
    for k in linux.sysctl.keys() {
        validate_sysctl(spec, k)?;
    }
    if let Some(p) = linux.rootfs_propagation.as_deref() {
        if !names::PROPAGATIONS.contains(&p) {
            return Err(bad("linux.rootfsPropagation", format!("unknown propagation {p:?}")));
        }
    }
    for (i, d) in linux.devices.iter().enumerate() {
        if !matches!(d.typ.as_str(), "c" | "b" | "u" | "p") {
            return Err(bad(format!("linux.devices[{i}].type"), format!("unknown device type {:?}", d.typ)));
        }
        if !d.path.starts_with('/') {
            return Err(bad(format!("linux.devices[{i}].path"), format!("{:?} is not absolute", d.path)));
        }
        if clean_path(&d.path) == "/" {
            return Err(bad(format!("linux.devices[{i}].path"), format!("{:?} names the root", d.path)));
        }
        if d.typ != "p" && (d.major.is_none() || d.minor.is_none()) {
            return Err(bad(format!("linux.devices[{i}]"), "major and minor are required"));
        }
        for (f, v) in [("uid", d.uid), ("gid", d.gid)] {
            if v.is_some_and(|v| v > names::MAX_ID) {
                return Err(bad(format!("linux.devices[{i}].{f}"), id_range_msg(v.unwrap_or(0))));
            }
        }
    }
    if let Some(pers) = &linux.personality {
        if pers.domain != "LINUX" && pers.domain != "LINUX32" {
            return Err(bad("linux.personality.domain", format!("unknown domain {:?}", pers.domain)));
        }
    }
    Ok(())
}

fn id_range_msg(v: u32) -> String {
    format!("{v}: uids and gids must be in range 0-{}", names::MAX_ID)
}

/// Refuses an id above 2147483647 (runc's rule); `field` names it.
pub fn check_id(field: &str, v: u32) -> Result<()> {
    if v > names::MAX_ID {
        return Err(bad(field, id_range_msg(v)));
    }
    Ok(())
}

pub fn validate_process(p: &Process, at: &str) -> Result<()> {
    if p.args.is_empty() || p.args[0].is_empty() {
        return Err(bad(format!("{at}.args"), "must name a program"));
    }
    if !p.cwd.starts_with('/') {
        return Err(bad(format!("{at}.cwd"), format!("{:?} is not absolute", p.cwd)));
    }
    for (i, e) in p.env.iter().enumerate() {
        if !e.contains('=') {
            return Err(bad(format!("{at}.env[{i}]"), format!("{e:?} is not KEY=VALUE")));
        }
    }
    check_id(&format!("{at}.user.uid"), p.user.uid)?;
    check_id(&format!("{at}.user.gid"), p.user.gid)?;
    for (i, g) in p.user.additional_gids.iter().enumerate() {
        check_id(&format!("{at}.user.additionalGids[{i}]"), *g)?;
    }
    if let Some(c) = &p.capabilities {
        for (set, list) in [
            ("bounding", &c.bounding),
            ("effective", &c.effective),
            ("inheritable", &c.inheritable),
            ("permitted", &c.permitted),
            ("ambient", &c.ambient),
        ] {
            for (i, name) in list.iter().flatten().enumerate() {
                if names::capability(name).is_none() {
                    return Err(bad(format!("{at}.capabilities.{set}[{i}]"), format!("unknown capability {name:?}")));
                }
            }
        }
    }
    for (i, r) in p.rlimits.iter().enumerate() {
        if names::rlimit(&r.typ).is_none() {
            return Err(bad(format!("{at}.rlimits[{i}].type"), format!("unknown rlimit {:?}", r.typ)));
        }
        if r.soft > r.hard {
            return Err(bad(format!("{at}.rlimits[{i}]"), "soft limit is above the hard limit"));
        }
    }
    if let Some(a) = p.oom_score_adj {
        if !(-1000..=1000).contains(&a) {
            return Err(bad(format!("{at}.oomScoreAdj"), format!("{a} is outside -1000..1000")));
        }
    }
    Ok(())
}

/// Only namespaced sysctls may be set, and only with their namespace.
fn validate_sysctl(spec: &Spec, key: &str) -> Result<()> {
    let field = format!("linux.sysctl.{key}");
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let need = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        NamespaceKind::Ipc
    } else if key.starts_with("net.") {
        NamespaceKind::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        NamespaceKind::Uts
    } else {
        return Err(bad(field, "not a namespaced sysctl"));
    };
    if spec.ns(need).is_none() {
        return Err(bad(field, format!("needs a {} namespace", need.name())));
    }
    if key.contains("..") || key.contains('/') {
        return Err(bad(field, "bad name"));
    }
    Ok(())
}

/// `root.path` made absolute against the bundle.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> PathBuf {
    let p = Path::new(spec.root.as_ref().map(|r| r.path.as_str()).unwrap_or(""));
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        bundle.join(p)
    }
}

/// `path` normalised lexically, as if at the root: `.` and empty
/// components dropped, `..` climbing at most to `/`. The result is
/// absolute. Resolution inside a rootfs (symlinks) happens later, on top of
/// this.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn err_of(v: serde_json::Value) -> String {
        parse(v.to_string().as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn minimal_parses() {
        let s = parse(minimal().to_string().as_bytes()).unwrap();
        assert!(s.new_ns(NamespaceKind::Pid));
        assert!(s.ns(NamespaceKind::User).is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = minimal();
        v["process"]["user"]["uid"] = "x".into();
        assert!(err_of(v).contains("process.user.uid"), "type error names the field");
        let mut v = minimal();
        v["linux"]["namespaces"][1]["type"] = "nope".into();
        let e = err_of(v);
        assert!(e.contains("linux.namespaces[1].type") && e.contains("nope"), "{e}");
        let mut v = minimal();
        v["linux"]["namespaces"][1]["type"] = "pid".into();
        assert!(err_of(v).contains("duplicate namespace"));
        let mut v = minimal();
        v["linux"]["resources"] = serde_json::json!({"memory": {"limit": "big"}});
        assert!(err_of(v).contains("linux.resources.memory.limit"));
        let mut v = minimal();
        v["linux"]["seccomp"] = serde_json::json!({"syscalls": []});
        assert!(err_of(v).contains("linux.seccomp"));
        let mut v = minimal();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NOPE"]});
        assert!(err_of(v).contains("process.capabilities.bounding[0]"));
        let mut v = minimal();
        v["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
        assert!(err_of(v).contains("soft limit is above"));
        let mut v = minimal();
        v["hostname"] = "h".into();
        assert!(err_of(v).contains("uts namespace"));
        let mut v = minimal();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(err_of(v).contains("needs a network namespace"));
        let mut v = minimal();
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(err_of(v).contains("not a namespaced sysctl"));
        let mut v = minimal();
        v["process"]["cwd"] = "rel".into();
        assert!(err_of(v).contains("process.cwd"));
    }

    #[test]
    fn ids_above_int32_are_refused() {
        for (ptr, val) in [("uid", 4294967295u32), ("gid", 2147483648)] {
            let mut v = minimal();
            v["process"]["user"][ptr] = val.into();
            let e = err_of(v);
            assert!(e.contains(&format!("process.user.{ptr}")) && e.contains("0-2147483647"), "{e}");
        }
        let mut v = minimal();
        v["process"]["user"]["additionalGids"] = serde_json::json!([5, 4294967295u32]);
        assert!(err_of(v).contains("process.user.additionalGids[1]"));
        let mut v = minimal();
        v["process"]["user"]["uid"] = 2147483647.into();
        assert!(parse(v.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn device_paths() {
        let mut v = minimal();
        v["linux"]["devices"] = serde_json::json!([{"type": "c", "path": "/etc/x", "major": 1, "minor": 3}]);
        assert!(parse(v.to_string().as_bytes()).is_ok(), "paths outside /dev are allowed");
        v["linux"]["devices"][0]["path"] = "dev/x".into();
        assert!(err_of(v.clone()).contains("not absolute"));
        v["linux"]["devices"][0]["path"] = "/dev/../..".into();
        assert!(err_of(v).contains("names the root"));
        assert_eq!(clean_path("/dev/../../../x"), "/x");
        assert_eq!(clean_path("/dev/./net//tun"), "/dev/net/tun");
    }
}
