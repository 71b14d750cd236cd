//! Crash safety: husk is SIGKILLed at every fault point of `create`, `run`,
//! `start`, `exec` and `delete --force` (a husk built with the
//! `fault-injection` feature: `HUSK_FAULT_AT=N` kills it at the N-th
//! point), and after each kill `state` still finds the container, `delete
//! --force` leaves nothing behind (state dir, cgroup dirs in every
//! hierarchy, processes, mounts) and the id can be created again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use husk_tests::*;

/// husk with fault points, built once into target/fault-injection.
fn fault_husk() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let ws = workspace();
        let dir = ws.join("target/fault-injection");
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&ws)
            .args(["build", "-q", "-p", "husk", "--features", "fault-injection", "--target-dir"])
            .arg(&dir)
            .status();
        match st {
            Ok(s) if s.success() => Some(dir.join("debug/husk")),
            _ => None,
        }
    })
    .clone()
}

/// The cgroup directories a container `id` could have (default path
/// /husk/ID) in every mounted hierarchy, v1 and v2.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| Path::new(m).join("husk").join(id))
        .filter(|d| d.exists())
        .collect()
}

/// Processes whose environment carries `marker` (husk itself before the
/// container's exec, and the container's processes after).
fn marked_processes(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        if env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) {
            // Zombies have an empty environ; a live marked process counts.
            v.push(pid);
        }
    }
    v
}

struct Case<'a> {
    bundle: &'a Bundle,
    fault: &'a Path,
    id: String,
    marker: String,
}

impl Case<'_> {
    fn husk(&self, bin: &Path, args: &[&str], fault_at: Option<u32>) -> std::process::Output {
        let mut c = Command::new(bin);
        c.arg("--root").arg(&self.bundle.root).args(args).current_dir(self.bundle.path());
        c.env("HUSK_CRASH_MARK", &self.marker["HUSK_CRASH_MARK=".len()..]);
        c.env_remove("HUSK_FAULT_AT");
        if let Some(n) = fault_at {
            c.env("HUSK_FAULT_AT", n.to_string());
        }
        run_to_files(&mut c, self.bundle.path())
    }
    fn ok(&self, args: &[&str]) {
        let o = self.husk(self.fault, args, None);
        assert!(o.status.success(), "husk {args:?}: {}", stderr(&o));
    }

    /// After a kill at point `n` of `what`: the container is findable, and
    /// `delete --force` removes every trace of it.
    fn check_recovers(&self, what: &str, n: u32) {
        let dir = self.bundle.root.join(&self.id);
        if dir.exists() {
            let o = self.husk(self.fault, &["state", &self.id], None);
            assert!(o.status.success(), "{what} killed at point {n}: state dir exists but state says: {}", stderr(&o));
        }
        let o = self.husk(self.fault, &["delete", "--force", &self.id], None);
        assert!(o.status.success(), "{what} killed at point {n}: delete --force: {}", stderr(&o));
        let o = self.husk(self.fault, &["state", &self.id], None);
        assert!(!o.status.success() && stderr(&o).contains("does not exist"), "{what} at {n}: state after delete: {}", stderr(&o));
        assert!(!dir.exists(), "{what} at {n}: state dir left");
        assert_eq!(cgroup_dirs(&self.id), Vec::<PathBuf>::new(), "{what} at {n}: cgroup dirs left");
        let procs = marked_processes(&self.marker);
        assert!(procs.is_empty(), "{what} at {n}: processes left: {procs:?}");
        assert_eq!(mounts_under(self.bundle.path()), Vec::<String>::new(), "{what} at {n}: host mounts left");
        // The id is free again.
        self.ok(&["create", &self.id]);
        self.ok(&["delete", "--force", &self.id]);
    }

    /// Runs `setup`, then `args` killed at points 1, 2, … until it
    /// completes; checks recovery after each. Returns the points covered.
    fn sweep(&self, what: &str, setup: &[&[&str]], args: &[&str]) -> u32 {
        let mut n = 1;
        loop {
            for s in setup {
                self.ok(s);
            }
            let o = self.husk(self.fault, args, Some(n));
            let killed = std::os::unix::process::ExitStatusExt::signal(&o.status) == Some(libc::SIGKILL);
            if !killed {
                assert!(o.status.success(), "{what} with no kill: {}", stderr(&o));
                let _ = self.husk(self.fault, &["delete", "--force", &self.id], None);
                return n - 1;
            }
            self.check_recovers(what, n);
            n += 1;
            assert!(n < 100, "{what}: fault points never end");
        }
    }
}

#[test]
fn sigkill_at_every_point_is_recoverable() {
    if skip_unless_root() {
        return;
    }
    let Some(fault) = fault_husk() else {
        eprintln!("SKIP: cannot build husk with the fault-injection feature");
        return;
    };
    let mut b = Bundle::new();
    let marker = format!("HUSK_CRASH_MARK={}", unique("crash"));
    b.args(&["sleep", "1000"]);
    b.config["process"]["env"].as_array_mut().unwrap().push(json!(marker));
    // A prestart hook adds the hook points of create.
    b.config["hooks"] = json!({"prestart": [{"path": "/bin/true"}], "poststop": [{"path": "/bin/true"}]});
    b.write_config();
    let id = unique("crash");
    let c = Case { bundle: &b, fault: &fault, id: id.clone(), marker };
    let mut total = 0;
    let mut report = Vec::new();
    for (what, setup, args) in [
        ("create", vec![], vec!["create", id.as_str()]),
        ("run -d", vec![], vec!["run", "-d", id.as_str()]),
        ("start", vec![vec!["create", id.as_str()]], vec!["start", id.as_str()]),
        ("exec", vec![vec!["run", "-d", id.as_str()]], vec!["exec", id.as_str(), "true"]),
        ("exec -d", vec![vec!["run", "-d", id.as_str()]], vec!["exec", "-d", id.as_str(), "sleep", "1000"]),
        ("delete --force", vec![vec!["run", "-d", id.as_str()]], vec!["delete", "--force", id.as_str()]),
    ] {
        let setup: Vec<&[&str]> = setup.iter().map(|v| v.as_slice()).collect();
        let n = c.sweep(what, &setup, &args);
        assert!(n > 0, "{what}: no fault point passed");
        report.push(format!("{what}: {n}"));
        total += n;
    }
    eprintln!("fault points covered: {total} ({})", report.join(", "));
}

/// The same checks with the binary under test itself (the shipped build
/// has no fault points): SIGKILL `create` and `delete --force` after 0, 1,
/// 2, … ms.
#[test]
fn sigkill_after_a_delay_sweep_is_recoverable() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let marker = format!("HUSK_CRASH_MARK={}", unique("sweep"));
    b.args(&["sleep", "1000"]);
    b.config["process"]["env"].as_array_mut().unwrap().push(json!(marker));
    b.write_config();
    let husk = bin("husk");
    let id = unique("sweep");
    let c = Case { bundle: &b, fault: &husk, id: id.clone(), marker };
    let mut killed = 0;
    for (what, setup, args) in
        [("create", false, vec!["create", id.as_str()]), ("delete --force", true, vec!["delete", "--force", id.as_str()])]
    {
        for ms in (0..40).step_by(2) {
            if setup {
                c.ok(&["run", "-d", &id]);
            }
            let mut cmd = Command::new(&husk);
            cmd.arg("--root").arg(&b.root).args(&args).current_dir(b.path()).env("HUSK_CRASH_MARK", &c.marker["HUSK_CRASH_MARK=".len()..]);
            cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
            let mut child = cmd.spawn().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(ms));
            let _ = child.kill();
            let st = child.wait().unwrap();
            if std::os::unix::process::ExitStatusExt::signal(&st) == Some(libc::SIGKILL) {
                killed += 1;
            }
            c.check_recovers(what, ms as u32);
        }
    }
    eprintln!("delay sweep: {killed} of 40 runs killed before they finished");
}

#[test]
fn a_bare_state_dir_is_a_stopped_container() {
    if skip_unless_root() {
        return;
    }
    // What a create killed between its mkdir and its first state write
    // leaves (also what a crash of `delete` halfway leaves).
    let b = Bundle::new();
    let id = unique("bare");
    for files in [&[][..], &["lock"][..], &["lock", "config.json"][..]] {
        let d = b.root.join(&id);
        std::fs::create_dir_all(&d).unwrap();
        for f in files {
            std::fs::write(d.join(f), b"").unwrap();
        }
        let o = run_to_files(b.husk().args(["state", &id]), b.path());
        assert!(o.status.success(), "{files:?}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "stopped", "{files:?}");
        let o = run_cmd(b.husk().args(["list", "-q"]));
        assert!(stdout(&o).lines().any(|l| l == id), "{files:?}: list: {}", stdout(&o));
        let o = run_to_files(b.husk().args(["create", "--bundle"]).arg(b.path()).arg(&id), b.path());
        assert!(!o.status.success() && stderr(&o).contains("already exists"), "{files:?}");
        let o = run_cmd(b.husk().args(["delete", &id]));
        assert!(o.status.success(), "{files:?}: {}", stderr(&o));
        assert!(!d.exists(), "{files:?}");
    }
}
