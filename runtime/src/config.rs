//! OCI runtime-spec 1.2 `config.json`: the types husk reads, loading, and
//! validation. Unknown fields are ignored; every error names the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::caps;
use crate::error::Error;

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
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Linux {
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    pub sysctl: BTreeMap<String, String>,
    /// Kept raw here; the cgroups module parses it (and names its fields).
    pub resources: Option<serde_json::Value>,
    pub cgroups_path: Option<String>,
    pub namespaces: Vec<Namespace>,
    pub devices: Vec<Device>,
    /// Kept raw here; the seccomp module parses it.
    pub seccomp: Option<serde_json::Value>,
    pub rootfs_propagation: Option<String>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub mount_label: Option<String>,
    pub time_offsets: BTreeMap<String, TimeOffset>,
    pub personality: Option<serde_json::Value>,
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
    pub typ: String,
    pub path: Option<String>,
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

/// The namespace kinds of the spec, in the order husk joins them.
pub const NS_KINDS: [&str; 8] = ["user", "pid", "network", "ipc", "uts", "mount", "cgroup", "time"];

impl Spec {
    pub fn linux(&self) -> &Linux {
        static EMPTY: std::sync::OnceLock<Linux> = std::sync::OnceLock::new();
        self.linux.as_ref().unwrap_or_else(|| EMPTY.get_or_init(Linux::default))
    }
    /// The namespace entry of `kind`, if the config lists it.
    pub fn ns(&self, kind: &str) -> Option<&Namespace> {
        self.linux().namespaces.iter().find(|n| n.typ == kind)
    }
    /// True if the container gets a new namespace of `kind` (listed, no path).
    pub fn new_ns(&self, kind: &str) -> bool {
        self.ns(kind).is_some_and(|n| n.path.as_deref().unwrap_or("").is_empty())
    }
    pub fn hooks(&self) -> Hooks {
        self.hooks.clone().unwrap_or_default()
    }
}

/// Reads and validates `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, Error> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    parse(&data).map_err(|e| match e {
        Error::Config { field, msg } => Error::Config { field: format!("config.json: {field}"), msg },
        e => e,
    })
}

/// Parses and validates config.json text.
pub fn parse(data: &[u8]) -> Result<Spec, Error> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        Error::Config {
            field: if field == "." { "(document)".into() } else { field },
            msg: format!("{inner}"),
        }
    })?;
    validate(&spec)?;
    Ok(spec)
}

fn bad(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Config { field: field.into(), msg: msg.into() }
}

pub fn validate(spec: &Spec) -> Result<(), Error> {
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
        if !NS_KINDS.contains(&ns.typ.as_str()) {
            return Err(bad(format!("linux.namespaces[{i}].type"), format!("unknown namespace type {:?}", ns.typ)));
        }
        if seen.contains(&ns.typ) {
            return Err(bad(format!("linux.namespaces[{i}].type"), format!("duplicate namespace {:?}", ns.typ)));
        }
        seen.push(ns.typ.clone());
        if let Some(p) = ns.path.as_deref().filter(|p| !p.is_empty()) {
            if !p.starts_with('/') {
                return Err(bad(format!("linux.namespaces[{i}].path"), format!("{p:?} is not absolute")));
            }
        }
    }
    let userns = spec.ns("user").is_some();
    if !userns && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) {
        return Err(bad("linux.uidMappings", "mappings given without a user namespace"));
    }
    if spec.new_ns("user") && (linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty()) {
        return Err(bad("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings"));
    }
    if spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) && spec.ns("uts").is_none() {
        return Err(bad("hostname", "setting the hostname needs a uts namespace"));
    }
    if spec.domainname.as_deref().is_some_and(|h| !h.is_empty()) && spec.ns("uts").is_none() {
        return Err(bad("domainname", "setting the domainname needs a uts namespace"));
    }
    if !linux.time_offsets.is_empty() && spec.ns("time").is_none() {
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
    for (k, _) in &linux.sysctl {
        validate_sysctl(spec, k)?;
    }
    if let Some(p) = linux.rootfs_propagation.as_deref() {
        if crate::mounts::propagation_flag(p).is_none() {
            return Err(bad("linux.rootfsPropagation", format!("unknown propagation {p:?}")));
        }
    }
    for (i, d) in linux.devices.iter().enumerate() {
        if !matches!(d.typ.as_str(), "c" | "b" | "u" | "p") {
            return Err(bad(format!("linux.devices[{i}].type"), format!("unknown device type {:?}", d.typ)));
        }
        if !d.path.starts_with("/dev/") {
            return Err(bad(format!("linux.devices[{i}].path"), format!("{:?} is not under /dev", d.path)));
        }
        if d.typ != "p" && (d.major.is_none() || d.minor.is_none()) {
            return Err(bad(format!("linux.devices[{i}]"), "major and minor are required"));
        }
    }
    if let Some(pers) = &linux.personality {
        let dom = pers.get("domain").and_then(|d| d.as_str()).unwrap_or("");
        if dom != "LINUX" && dom != "LINUX32" {
            return Err(bad("linux.personality.domain", format!("unknown domain {dom:?}")));
        }
    }
    Ok(())
}

pub fn validate_process(p: &Process, at: &str) -> Result<(), Error> {
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
    if let Some(c) = &p.capabilities {
        for (set, list) in [
            ("bounding", &c.bounding),
            ("effective", &c.effective),
            ("inheritable", &c.inheritable),
            ("permitted", &c.permitted),
            ("ambient", &c.ambient),
        ] {
            for (i, name) in list.iter().flatten().enumerate() {
                if caps::from_name(name).is_none() {
                    return Err(bad(format!("{at}.capabilities.{set}[{i}]"), format!("unknown capability {name:?}")));
                }
            }
        }
    }
    for (i, r) in p.rlimits.iter().enumerate() {
        if crate::process::rlimit_resource(&r.typ).is_none() {
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
fn validate_sysctl(spec: &Spec, key: &str) -> Result<(), Error> {
    let field = format!("linux.sysctl.{key}");
    let ipc = ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    let need = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        "ipc"
    } else if key.starts_with("net.") {
        "network"
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        "uts"
    } else {
        return Err(bad(field, "not a namespaced sysctl"));
    };
    if !spec.new_ns(need) && spec.ns(need).is_none() {
        return Err(bad(field, format!("needs a {need} namespace")));
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
