//! `husk-rootfs busybox`: a minimal rootfs around one static busybox.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::arch::{machine_name, Arch};
use crate::elf;
use crate::error::{Error, Result};
use crate::staging::Staging;

pub struct Opts {
    pub dir: PathBuf,
    pub arch: Arch,
    pub busybox: Option<PathBuf>,
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
user:x:1000:1000:user:/home/user:/bin/sh\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nuser:x:1000:\n";

/// Where foreign-arch busybox packages are cached.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("HUSK_ROOTFS_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/husk-rootfs"))
}

pub fn run(o: &Opts) -> Result<()> {
    crate::staging::check_dest(&o.dir)?;
    let bb = match &o.busybox {
        Some(p) => p.clone(),
        None => default_busybox(o.arch)?,
    };
    let info = elf_of(&bb)?;
    if info.machine != o.arch.elf_machine() {
        return Err(Error::Arch { path: bb, want: o.arch.name(), got: machine_name(info.machine) });
    }
    if let Some(i) = info.interp {
        return Err(Error::format(bb.display().to_string(), format!("is dynamically linked (loader {i}); a static busybox is needed")));
    }
    let applets = list_applets(&bb, o.arch)?;
    let st = Staging::new(&o.dir)?;
    build(&st.tmp, &bb, &applets)?;
    st.commit()?;
    Ok(())
}

fn elf_of(p: &Path) -> Result<elf::ElfInfo> {
    let f = fs::File::open(p).map_err(|e| Error::io("open", p, e))?;
    elf::parse(&f).map_err(|e| Error::io("read ELF", p, e))?.ok_or_else(|| Error::format(p.display().to_string(), "not an ELF binary"))
}

fn is_static_for(p: &Path, arch: Arch) -> bool {
    matches!(elf_of(p), Ok(i) if i.machine == arch.elf_machine() && i.interp.is_none())
}

/// The host's busybox-static when it fits, else Debian's package for `arch`.
fn default_busybox(arch: Arch) -> Result<PathBuf> {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(p);
        if is_static_for(p, arch) {
            return Ok(p.to_path_buf());
        }
    }
    fetch_debian_busybox(arch)
}

fn run_tool(cmd: &mut Command) -> Result<()> {
    let name = format!("{:?}", cmd).replace('"', "");
    let out = cmd.stdin(std::process::Stdio::null()).output().map_err(|e| Error::Tool { cmd: name.clone(), msg: e.to_string() })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("failed").trim();
        return Err(Error::Tool { cmd: name, msg: format!("{} ({})", line, out.status) });
    }
    Ok(())
}

/// Downloads busybox-static:ARCH with apt-get (adding the dpkg architecture
/// when apt does not know it yet) and unpacks it into the cache.
fn fetch_debian_busybox(arch: Arch) -> Result<PathBuf> {
    let cache = cache_dir();
    let unpacked = cache.join(format!("busybox-static-{}", arch.oci()));
    for rel in ["bin/busybox", "usr/bin/busybox"] {
        let p = unpacked.join(rel);
        if is_static_for(&p, arch) {
            return Ok(p);
        }
    }
    let dl = cache.join(format!(".download-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dl);
    fs::create_dir_all(&dl).map_err(|e| Error::io("mkdir", &dl, e))?;
    let res = (|| {
        let pkg = format!("busybox-static:{}", arch.oci());
        if run_tool(Command::new("apt-get").args(["download", "-qq", &pkg]).current_dir(&dl)).is_err() {
            // apt does not know the architecture (or its lists are old).
            run_tool(Command::new("dpkg").args(["--add-architecture", arch.oci()]))?;
            run_tool(Command::new("apt-get").args(["update", "-qq"]))?;
            run_tool(Command::new("apt-get").args(["download", "-qq", &pkg]).current_dir(&dl))?;
        }
        let deb = fs::read_dir(&dl)
            .map_err(|e| Error::io("read", &dl, e))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| Error::Tool { cmd: "apt-get download".into(), msg: "no .deb downloaded".into() })?;
        let x = dl.join("x");
        run_tool(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x))?;
        let _ = fs::remove_dir_all(&unpacked);
        fs::rename(&x, &unpacked).map_err(|e| Error::io("rename", &unpacked, e))?;
        for rel in ["bin/busybox", "usr/bin/busybox"] {
            let p = unpacked.join(rel);
            if is_static_for(&p, arch) {
                return Ok(p);
            }
        }
        Err(Error::format(unpacked.display().to_string(), "package holds no static busybox"))
    })();
    let _ = fs::remove_dir_all(&dl);
    res
}

fn parse_list(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out).lines().map(|l| l.trim().trim_start_matches('/').to_string()).filter(|l| !l.is_empty()).collect()
}

/// `busybox --list-full`, through qemu for a foreign binary, or the host
/// busybox's list as a last resort.
fn list_applets(bb: &Path, arch: Arch) -> Result<Vec<String>> {
    let mut tries: Vec<Command> = Vec::new();
    let mut c = Command::new(bb);
    c.arg("--list-full");
    tries.push(c);
    if arch != Arch::host() {
        let mut c = Command::new(format!("qemu-{}-static", arch.name()));
        c.arg(bb).arg("--list-full");
        tries.push(c);
    }
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            let mut c = Command::new(p);
            c.arg("--list-full");
            tries.push(c);
            break;
        }
    }
    for mut c in tries {
        if let Ok(out) = c.stdin(std::process::Stdio::null()).output() {
            if out.status.success() {
                let l = parse_list(&out.stdout);
                if !l.is_empty() {
                    return Ok(l);
                }
            }
        }
    }
    Err(Error::Tool { cmd: format!("{} --list-full", bb.display()), msg: "cannot list applets (no qemu and no host busybox?)".into() })
}

fn mkdir(p: &Path, mode: u32) -> Result<()> {
    if !p.is_dir() {
        fs::DirBuilder::new().mode(mode).create(p).map_err(|e| Error::io("mkdir", p, e))?;
    }
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(|e| Error::io("chmod", p, e))
}

fn write(p: &Path, data: &str, mode: u32) -> Result<()> {
    fs::write(p, data).map_err(|e| Error::io("write", p, e))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(|e| Error::io("chmod", p, e))
}

/// Applet paths must be plain relative paths: no `..`, no root.
fn applet_ok(a: &str) -> bool {
    let p = Path::new(a);
    !a.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn build(root: &Path, bb: &Path, applets: &[String]) -> Result<()> {
    for (d, mode) in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("run", 0o755),
        ("var", 0o755),
        ("var/tmp", 0o1777),
        ("home", 0o755),
        ("home/user", 0o755),
    ] {
        mkdir(&root.join(d), mode)?;
    }
    let home = root.join("home/user");
    std::os::unix::fs::chown(&home, Some(1000), Some(1000)).map_err(|e| Error::io("chown", &home, e))?;
    let dst = root.join("bin/busybox");
    fs::copy(bb, &dst).map_err(|e| Error::io("copy busybox to", &dst, e))?;
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io("chmod", &dst, e))?;
    for a in applets {
        if !applet_ok(a) {
            return Err(Error::format("busybox --list-full", format!("unsafe applet path {a:?}")));
        }
        if a == "bin/busybox" {
            continue;
        }
        let link = root.join(a);
        if fs::symlink_metadata(&link).is_ok() {
            continue;
        }
        let depth = Path::new(a).components().count();
        if let Some(parent) = link.parent() {
            if !parent.is_dir() {
                fs::DirBuilder::new().recursive(true).mode(0o755).create(parent).map_err(|e| Error::io("mkdir", parent, e))?;
            }
        }
        let target =
            if a.starts_with("bin/") && depth == 2 { "busybox".to_string() } else { format!("{}bin/busybox", "../".repeat(depth - 1)) };
        symlink(&target, &link).map_err(|e| Error::io("symlink", &link, e))?;
    }
    write(&root.join("etc/passwd"), PASSWD, 0o644)?;
    write(&root.join("etc/group"), GROUP, 0o644)?;
    write(&root.join("etc/hostname"), "husk\n", 0o644)?;
    write(&root.join("etc/hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost\n", 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applet_paths_are_checked() {
        assert!(applet_ok("bin/sh"));
        assert!(applet_ok("usr/bin/env"));
        assert!(!applet_ok("../etc/passwd"));
        assert!(!applet_ok("bin/../../x"));
        assert!(!applet_ok(""));
    }

    #[test]
    fn list_is_trimmed() {
        assert_eq!(parse_list(b"bin/sh\n/usr/bin/env\n\n"), vec!["bin/sh", "usr/bin/env"]);
    }
}
