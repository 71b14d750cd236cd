//! `husk-rootfs bundle`: an OCI bundle (config.json) around a rootfs, with
//! husk's hardened defaults (husk-oci's: those of `husk spec --hardened`,
//! Docker's capabilities and a cgroup namespace), except that the terminal
//! is off: a bundle made here runs a given command, not an interactive
//! shell.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};

pub struct Opts {
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub args: Vec<String>,
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
