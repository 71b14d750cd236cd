//! `husk-rootfs bundle`: an OCI bundle (config.json) around a rootfs, with
//! husk's hardened defaults (husk-oci's: those of `husk spec --hardened`,
//! Docker's capabilities and a cgroup namespace), except that the terminal
//! is off: a bundle made here runs a given command, not an interactive
//! shell. With `--network CONFLIST [--port HOST:CONTAINER]…` it also
//! gets husk-cni's hooks (ADD at createRuntime, DEL at poststop) and a new
//! network namespace: see docs/network.md.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};

pub struct Opts {
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub network: Option<Network>,
}

/// `--network CONFLIST [--port P]… [--husk-cni PATH]`.
pub struct Network {
    pub conflist: PathBuf,
    pub ports: Vec<String>,
    /// The hook's program; by default husk-cni next to husk-rootfs, else
    /// the first in PATH.
    pub husk_cni: Option<PathBuf>,
}

/// husk-cni: beside our own executable, else in PATH.
fn find_husk_cni() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("husk-cni")));
    let path = std::env::var_os("PATH").unwrap_or_default();
    beside.into_iter().chain(std::env::split_paths(&path).map(|d| d.join("husk-cni"))).find(|p| p.is_file())
}

/// Adds the hooks that attach the container to the network of `conflist`
/// (named `name`) and a network namespace of its own (when the spec has
/// none: one that joins a `path` is left as it is).
pub fn add_network(spec: &mut Value, husk_cni: &str, conflist: &str, name: &str, ports: &[String]) {
    let mut add = vec!["husk-cni".to_string(), "add".into(), "--config".into(), conflist.into()];
    for p in ports {
        add.push("--port".into());
        add.push(p.clone());
    }
    let hooks = &mut spec["hooks"];
    if !hooks.is_object() {
        *hooks = json!({});
    }
    for (kind, args) in [("createRuntime", json!(add)), ("poststop", json!(["husk-cni", "del", "--network", name]))] {
        let list = &mut hooks[kind];
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(a) = list.as_array_mut() {
            a.push(json!({"path": husk_cni, "args": args}));
        }
    }
    let ns = &mut spec["linux"]["namespaces"];
    if !ns.is_array() {
        *ns = json!([]);
    }
    if let Some(a) = ns.as_array_mut() {
        if !a.iter().any(|n| n["type"] == "network") {
            a.push(json!({"type": "network"}));
        }
    }
}

/// Checks `--network`/`--port` and turns them into hooks on `spec`.
fn network(spec: &mut Value, n: &Network) -> Result<()> {
    let conflist = fs::canonicalize(&n.conflist).map_err(|e| Error::io("resolve", &n.conflist, e))?;
    let conf = husk_cni::conf::NetConf::load(&conflist).map_err(|e| Error::format("--network", e.to_string()))?;
    for p in &n.ports {
        husk_cni::conf::parse_port(p).map_err(|e| Error::Usage(e.to_string()))?;
    }
    if !n.ports.is_empty() && !conf.has_capability("portMappings") {
        return Err(Error::format(
            conflist.display().to_string(),
            "--port needs a plugin with \"capabilities\": {\"portMappings\": true} (portmap)",
        ));
    }
    let exe = match &n.husk_cni {
        Some(p) => fs::canonicalize(p).map_err(|e| Error::io("resolve", p, e))?,
        None => find_husk_cni()
            .ok_or_else(|| Error::Usage("--network: husk-cni is neither beside husk-rootfs nor in PATH; give --husk-cni PATH".into()))?,
    };
    add_network(spec, &exe.display().to_string(), &conflist.display().to_string(), &conf.name, &n.ports);
    Ok(())
}

/// husk's hardened default config.json (husk-oci's, as `husk spec
/// --hardened` without the seccomp profile), running `args` with no terminal.
pub fn default_spec(root_path: &str, args: &[String]) -> Value {
    let mut c = husk_oci::defaults::hardened(false);
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(args);
    c["root"]["path"] = json!(root_path);
    c
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
        let mut spec = default_spec(&root_path(&o.bundle, &o.rootfs)?, &args);
        if let Some(n) = &o.network {
            network(&mut spec, n)?;
        }
        let tmp = crate::staging::tmp_sibling(&o.bundle, "config.json");
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

    #[test]
    fn network_hooks() {
        let mut s = default_spec("rootfs", &["sh".into()]);
        s["linux"]["namespaces"] = json!([{"type": "pid"}]);
        add_network(&mut s, "/bin/husk-cni", "/etc/cni/net.d/app.conflist", "app", &["8080:80".into(), "53:53/udp".into()]);
        assert_eq!(
            s["hooks"]["createRuntime"],
            json!([{"path": "/bin/husk-cni", "args": ["husk-cni", "add", "--config", "/etc/cni/net.d/app.conflist", "--port", "8080:80", "--port", "53:53/udp"]}])
        );
        assert_eq!(s["hooks"]["poststop"], json!([{"path": "/bin/husk-cni", "args": ["husk-cni", "del", "--network", "app"]}]));
        assert_eq!(s["linux"]["namespaces"], json!([{"type": "pid"}, {"type": "network"}]));
        // A namespace that joins a path is the user's choice: kept.
        let mut s = default_spec("rootfs", &["sh".into()]);
        s["linux"]["namespaces"] = json!([{"type": "network", "path": "/run/netns/x"}]);
        add_network(&mut s, "/bin/husk-cni", "/c", "app", &[]);
        assert_eq!(s["linux"]["namespaces"], json!([{"type": "network", "path": "/run/netns/x"}]));
    }
}
