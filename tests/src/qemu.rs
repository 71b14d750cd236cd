//! QEMU boots through cross/qemu/boot.sh, shared by tests/tests/qemu.rs
//! and tests/tests/pull.rs (docs/qemu.md).

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{skip_unless_root, workspace, TempDir};

/// The static binaries for `arch`: `$HUSK_BIN_DIR` when it is
/// `…/dist/<arch>`-like (run-tests.sh sets it to dist/x86_64) with the arch
/// replaced, else the workspace's dist/<arch>.
pub fn dist_dir(arch: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("HUSK_BIN_DIR").map(PathBuf::from) {
        let name = d.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "x86_64" || name == "aarch64" {
            return d.with_file_name(arch);
        }
    }
    workspace().join("dist").join(arch)
}

/// Kills the boot's whole process group (boot.sh, timeout, qemu) if the
/// test ends before it does.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: kill has no memory-safety preconditions; the group is
            // the one this test created for the child (process_group(0)).
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

pub struct Boot {
    pub code: i32,
    /// boot.sh's stdout: the verdict and, on failure, the failed checks.
    pub out: String,
    /// boot.sh's stderr (the initramfs builder's notes among it).
    pub err: String,
    pub console: String,
    _dir: TempDir,
}

/// Runs cross/qemu/boot.sh ARCH ARGS with the extra environment `env`; None when the machine cannot boot guests
/// (SKIP printed).
pub fn boot(arch: &str, args: &[&str], env: &[(&str, &OsStr)]) -> Option<Boot> {
    if skip_unless_root() {
        return None;
    }
    let dist = dist_dir(arch);
    for b in ["husk", "husk-init"] {
        if !dist.join(b).exists() {
            eprintln!("SKIP: {} missing: run cross/build.sh", dist.join(b).display());
            return None;
        }
    }
    let dir = TempDir::new("husk-qemu");
    let log = dir.join("console.log");
    let child = Command::new("bash")
        .arg(workspace().join("cross/qemu/boot.sh"))
        .arg(arch)
        .arg("--log")
        .arg(&log)
        .args(args)
        .env("HUSK_QEMU_DIST", &dist)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run cross/qemu/boot.sh");
    let mut g = Group(child);
    // Read both pipes to the end (boot.sh bounds QEMU with its timeout).
    let mut err = g.0.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(g.0.stdout.as_mut().unwrap(), &mut out);
    let status = g.0.wait().expect("wait for boot.sh");
    let err = t.join().unwrap();
    let code = status.code().unwrap_or(-1);
    if code == 77 {
        let why = err.lines().rfind(|l| l.contains("unavailable")).unwrap_or(err.trim());
        eprintln!("SKIP: cannot boot a {arch} guest: {why}");
        return None;
    }
    eprintln!("{err}");
    let console = std::fs::read_to_string(&log).unwrap_or_default();
    Some(Boot { code, out, err, console, _dir: dir })
}

/// The `HUSK-QEMU-RESULT name=NAME …` line, as `key=value` pairs.
pub fn result(console: &str, name: &str) -> Vec<(String, String)> {
    let prefix = format!("HUSK-QEMU-RESULT name={name} ");
    let line = console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        // (a kernel message may have been printed on the same line first)
        .find_map(|l| l.find(&prefix).map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no result line from {name} in the console log:\n{console}"));
    line.split_whitespace().skip(1).filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn get<'a>(r: &'a [(String, String)], k: &str) -> &'a str {
    r.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {k}= in {r:?}"))
}
