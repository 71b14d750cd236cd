//! Real-cgroup tests (need root and a cgroup-enabled kernel; they SKIP with a
//! printed reason otherwise). Each creates a test-unique cgroup under
//! /husk-test/, runs real processes in it, checks what the kernel enforces,
//! and removes everything through Drop guards even when an assertion fails.
//! They go through the `Cgroup` API only, so the same tests run on v1
//! (legacy/hybrid) and pure v2 hosts.

use super::*;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("cgroup tests need root".into());
    }
    if detect() == Mode::Disabled {
        return Some("no cgroup filesystem is mounted".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox is missing".into());
    }
    None
}

/// Is this controller usable here (v1: mounted; v2: in the root's
/// cgroup.controllers)?
fn has_controller(c: &str) -> bool {
    let ms = mounts::mounts();
    match detect() {
        Mode::Unified => mounts::v2_mount(&ms)
            .and_then(|m| std::fs::read_to_string(m.mountpoint.join("cgroup.controllers")).ok())
            .is_some_and(|s| s.split_whitespace().any(|x| x == c)),
        _ => ms.iter().any(|m| !m.v2 && m.controllers.iter().any(|x| x == c)),
    }
}

macro_rules! skip_if_unfit {
    ($($ctrl:expr),*) => {
        if let Some(r) = skip_reason() {
            eprintln!("SKIP: {r}");
            return;
        }
        $(
            if !has_controller($ctrl) {
                eprintln!("SKIP: the {} controller is not available on this host", $ctrl);
                return;
            }
        )*
    };
}

/// A cgroup destroyed (with its /husk-test parent, when empty) on drop.
struct TestCg(Cgroup);

impl TestCg {
    fn path() -> String {
        format!("/husk-test/{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
    }
    fn resolve(res: &str) -> (Cgroup, Option<Resources>) {
        let cg = Cgroup::new(detect(), Some(&Self::path()), "t").unwrap();
        let r: Option<Resources> = if res.is_empty() { None } else { Some(serde_json::from_str(res).unwrap()) };
        (cg, r)
    }
    fn new(res: &str) -> TestCg {
        let (cg, r) = Self::resolve(res);
        let g = TestCg(cg);
        g.0.create(r.as_ref()).unwrap_or_else(|e| panic!("create: {e}"));
        g
    }
    /// Reads a control file by its v1 (controller, name) or v2 name.
    fn read(&self, v1: (&str, &str), v2: &str) -> String {
        let f = match self.0.v2_dir() {
            Some(d) => d.join(v2),
            None => self.0.v1_dir(v1.0).unwrap().join(v1.1),
        };
        std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())).trim().to_string()
    }
    fn assert_gone(&self) {
        for d in self.0.dirs() {
            assert!(!d.exists(), "{} still exists", d.display());
        }
    }
}

impl Drop for TestCg {
    fn drop(&mut self) {
        let _ = self.0.destroy();
        for h in &self.0.hierarchies {
            let _ = std::fs::remove_dir(h.mount.join("husk-test"));
        }
    }
}

/// A busybox shell held at `read` until it has joined the cgroup; killed and
/// reaped on drop.
struct Proc(Child, Option<std::process::ChildStdin>);

impl Proc {
    fn start(script: &str) -> Proc {
        let mut c = Command::new("/bin/busybox")
            .args(["sh", "-c", &format!("read go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let i = c.stdin.take();
        Proc(c, i)
    }
    /// Moves the process into `cg`, then lets the script run.
    fn go(&mut self, cg: &Cgroup) {
        cg.add_pid(self.0.id() as i32).unwrap_or_else(|e| panic!("add_pid: {e}"));
        self.1.take().unwrap().write_all(b"go\n").unwrap();
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    /// Waits for exit; returns (exit code or 128+signal, stdout, stderr).
    fn finish(&mut self) -> (i32, String, String) {
        let (mut o, mut e) = (String::new(), String::new());
        self.0.stdout.take().unwrap().read_to_string(&mut o).unwrap();
        self.0.stderr.take().unwrap().read_to_string(&mut e).unwrap();
        let st = self.0.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        (st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)), o, e)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_in(cg: &Cgroup, script: &str) -> Proc {
    let mut p = Proc::start(script);
    p.go(cg);
    p
}

fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

#[test]
fn memory_limit_is_written_and_oom_kills() {
    skip_if_unfit!("memory");
    let limit = 16 << 20;
    // Swap equal to the limit: no swap to escape to, even on hosts with swap.
    let (probe, _) = TestCg::resolve("");
    let swap_file = match probe.v2_dir() {
        Some(_) => "memory.swap.max",
        None => "memory.memsw.limit_in_bytes",
    };
    let has_swap_knob =
        probe.hierarchies.iter().any(|h| h.mount.join(swap_file).exists() || std::fs::read_dir(&h.mount).is_ok_and(|_| probe.is_v2()));
    let res = if has_swap_knob && !probe.is_v2() {
        format!(r#"{{"memory":{{"limit":{limit},"swap":{limit}}}}}"#)
    } else {
        format!(r#"{{"memory":{{"limit":{limit}}}}}"#)
    };
    let cg = TestCg::new(&res);
    assert_eq!(cg.read(("memory", "memory.limit_in_bytes"), "memory.max"), limit.to_string());
    assert_eq!(cg.0.oom_count(), 0);
    // The shell keeps 64 MB in a variable: far past the limit.
    let mut p = run_in(&cg.0, "a=$(head -c 64000000 /dev/zero | tr '\\0' x); echo survived ${#a}");
    let (code, out, _) = p.finish();
    assert!(!out.contains("survived"), "allocation past the limit succeeded: {out}");
    assert_eq!(code, 128 + libc::SIGKILL, "expected an OOM kill");
    assert!(cg.0.oom_count() >= 1, "oom_kill counter did not move");
    let st = cg.0.stats().unwrap();
    assert!(st["memory"]["usage"]["max"].as_u64().unwrap() > 0, "{st}");
    assert!(st["memory"].get("oom_kill").is_none(), "runc's stats have no oom fields: {st}");
    assert_eq!(st["memory"]["usage"]["limit"].as_u64().unwrap(), limit);
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    skip_if_unfit!("pids");
    let cg = TestCg::new(r#"{"pids":{"limit":8}}"#);
    assert_eq!(cg.read(("pids", "pids.max"), "pids.max"), "8");
    let mut p = run_in(&cg.0, "i=0; while [ $i -lt 40 ]; do sleep 1000 >/dev/null 2>&1 & i=$((i+1)); done; echo loop-done");
    let (_, out, err) = p.finish();
    // busybox sh treats the failed fork as fatal: the loop never completes.
    assert!(!out.contains("loop-done"), "40 forks succeeded under pids.max=8");
    assert!(err.contains("fork"), "no fork failure reported: {err}");
    // The shell exited; its sleeps stay in the cgroup, capped by pids.max.
    let n = cg.0.pids().unwrap().len();
    assert!((1..=8).contains(&n), "{n} processes in the cgroup");
    assert_eq!(cg.read(("pids", "pids.current"), "pids.current"), n.to_string());
    let st = cg.0.stats().unwrap();
    assert_eq!(st["pids"]["limit"].as_u64(), Some(8));
    cg.0.destroy().unwrap();
    cg.assert_gone();
}

#[test]
fn cpu_quota_throttles_a_spin_loop() {
    skip_if_unfit!("cpu");
    let cg = TestCg::new(r#"{"cpu":{"quota":10000,"period":100000,"shares":512}}"#);
    if cg.0.is_v2() {
        assert_eq!(cg.read(("", ""), "cpu.max"), "10000 100000");
        assert_eq!(cg.read(("", ""), "cpu.weight"), v2::shares_to_weight(512).to_string());
    } else {
        assert_eq!(cg.read(("cpu", "cpu.cfs_quota_us"), ""), "10000");
        assert_eq!(cg.read(("cpu", "cpu.cfs_period_us"), ""), "100000");
        assert_eq!(cg.read(("cpu", "cpu.shares"), ""), "512");
    }
    let _p = run_in(&cg.0, "while :; do :; done");
    let th = |k: &str| cg.0.stats().unwrap()["cpu"]["throttling"][k].as_u64().unwrap_or(0);
    assert!(wait_until(30, || th("throttledPeriods") >= 5), "spin loop never throttled");
    // CPU time consumed is bounded by quota × periods, not by wall time.
    let periods = th("periods");
    let used = cg.0.stats().unwrap()["cpu"]["usage"]["total"].as_u64().unwrap();
    let allowed = (periods + 2) * 10_000_000;
    assert!(used <= allowed * 3 / 2, "used {used} ns over {periods} periods (allowed {allowed})");
    assert!(th("throttledTime") > 0);
}

#[test]
fn devices_deny_makes_dev_null_unopenable() {
    skip_if_unfit!();
    let cg = TestCg::new(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"rw"}]}"#);
    if !cg.0.is_v2() {
        let list = cg.read(("devices", "devices.list"), "");
        assert!(list.lines().any(|l| l == "c 1:3 m") && list.lines().any(|l| l == "c 1:5 rwm"), "{list}");
        assert!(!list.lines().any(|l| l.starts_with("a ")), "{list}");
    }
    let mut p = run_in(&cg.0, "echo hi > /dev/null && echo null-ok; head -c 3 /dev/zero | wc -c");
    let (_, out, err) = p.finish();
    assert!(!out.contains("null-ok"), "/dev/null was writable: {out}");
    assert!(err.contains("/dev/null"), "{err}");
    assert_eq!(out.trim(), "3", "/dev/zero should stay readable: {out} {err}");
    // The same binary outside the cgroup can open it.
    let o = Command::new("/bin/busybox").args(["sh", "-c", "echo hi > /dev/null && echo null-ok"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("null-ok"));
}

#[test]
fn freeze_stops_a_counter_and_thaw_restarts_it() {
    skip_if_unfit!();
    let dir = std::env::temp_dir().join(format!("husk-cg-freeze-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&dir).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let f = dir.join("count");
    let cg = TestCg::new("");
    let _p = run_in(&cg.0, &format!("while :; do echo x >> {}; done", f.display()));
    let size = || std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
    assert!(wait_until(10, || size() > 0), "counter never started");
    assert!(!cg.0.is_frozen());
    cg.0.freeze().unwrap();
    assert!(cg.0.is_frozen());
    if cg.0.is_v2() {
        assert!(cg.read(("", ""), "cgroup.events").contains("frozen 1"));
    } else {
        assert_eq!(cg.read(("freezer", "freezer.state"), ""), "FROZEN");
    }
    let s1 = size();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(size(), s1, "counter moved while frozen");
    cg.0.thaw().unwrap();
    assert!(!cg.0.is_frozen());
    assert!(wait_until(10, || size() > s1), "counter did not restart after thaw");
}

#[test]
fn kill_all_and_destroy_leave_nothing() {
    skip_if_unfit!("pids");
    let cg = TestCg::new(r#"{"pids":{"limit":50}}"#);
    let p = run_in(&cg.0, "sleep 1000 & sleep 1000 & wait");
    assert!(wait_until(10, || cg.0.pids().map(|v| v.len() == 3).unwrap_or(false)), "{:?}", cg.0.pids());
    assert!(cg.0.pids().unwrap().contains(&p.pid()));
    for d in cg.0.dirs() {
        assert!(d.is_dir(), "{} missing", d.display());
    }
    cg.0.kill_all(libc::SIGTERM).unwrap();
    let mut p = p;
    let (code, _, _) = p.finish();
    assert_eq!(code, 128 + libc::SIGTERM);
    // A fresh process that ignores SIGTERM: destroy must still remove it.
    let mut q = run_in(&cg.0, "trap '' TERM; sleep 1000 & wait");
    assert!(wait_until(10, || cg.0.pids().map(|v| v.len() >= 2).unwrap_or(false)));
    cg.0.destroy().unwrap();
    cg.assert_gone();
    let (code, _, _) = q.finish();
    assert_eq!(code, 128 + libc::SIGKILL);
    // Idempotent.
    cg.0.destroy().unwrap();
}

#[test]
fn destroy_kills_a_paused_container() {
    skip_if_unfit!();
    let cg = TestCg::new("");
    let mut p = run_in(&cg.0, "while :; do :; done");
    cg.0.freeze().unwrap();
    cg.0.destroy().unwrap();
    cg.assert_gone();
    let (code, _, _) = p.finish();
    assert_eq!(code, 128 + libc::SIGKILL);
}

#[test]
fn update_changes_live_limits() {
    skip_if_unfit!("pids", "memory", "cpuset");
    let cg = TestCg::new(r#"{"pids":{"limit":10},"memory":{"limit":67108864}}"#);
    let _p = run_in(&cg.0, "sleep 1000");
    cg.0.update(&serde_json::from_str(r#"{"pids":{"limit":20},"memory":{"limit":33554432}}"#).unwrap()).unwrap();
    assert_eq!(cg.read(("pids", "pids.max"), "pids.max"), "20");
    assert_eq!(cg.read(("memory", "memory.limit_in_bytes"), "memory.max"), (32u64 << 20).to_string());
    // Raising the limit of a container without swap (memsw == limit) keeps it without swap.
    if !cg.0.is_v2() && cg.0.v1_dir("memory").unwrap().join("memory.memsw.limit_in_bytes").exists() {
        cg.0.update(&serde_json::from_str(r#"{"memory":{"limit":33554432,"swap":33554432}}"#).unwrap()).unwrap();
        cg.0.update(&serde_json::from_str(r#"{"memory":{"limit":50331648}}"#).unwrap()).unwrap();
        assert_eq!(cg.read(("memory", "memory.limit_in_bytes"), ""), (48u64 << 20).to_string());
        assert_eq!(cg.read(("memory", "memory.memsw.limit_in_bytes"), ""), (48u64 << 20).to_string());
        cg.0.update(&serde_json::from_str(r#"{"memory":{"limit":33554432,"swap":-1}}"#).unwrap()).unwrap();
    }
    // Not asked: untouched.
    // Zeros are "not set" (what engines send for flags not given): unchanged.
    cg.0.update(
        &serde_json::from_str(r#"{"pids":{"limit":0},"memory":{"limit":0,"reservation":0},"cpu":{"shares":0,"quota":0,"period":0}}"#)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(cg.read(("pids", "pids.max"), "pids.max"), "20");
    assert_eq!(cg.read(("memory", "memory.limit_in_bytes"), "memory.max"), (32u64 << 20).to_string());
    cg.0.update(&serde_json::from_str(r#"{"pids":{"limit":-1}}"#).unwrap()).unwrap();
    assert_eq!(cg.read(("pids", "pids.max"), "pids.max"), "max");
    // All or nothing: a failing write (a cpuset no CPU has) puts back what
    // was already written (the memory limit), and the error names the file.
    let e = cg.0.update(&serde_json::from_str(r#"{"memory":{"limit":50331648},"cpu":{"cpus":"999"}}"#).unwrap()).unwrap_err().to_string();
    assert_eq!(cg.read(("memory", "memory.limit_in_bytes"), "memory.max"), (32u64 << 20).to_string());
    assert!(e.contains("cpuset.cpus") && e.contains("999"), "{e}");
}

#[test]
fn missing_knob_errors_and_leaves_nothing() {
    skip_if_unfit!();
    let (cg, r) = TestCg::resolve(r#"{"hugepageLimits":[{"pageSize":"3MB","limit":0}]}"#);
    let g = TestCg(cg);
    let e = g.0.create(r.as_ref()).unwrap_err().to_string();
    assert!(e.contains("hugetlb"), "{e}");
    g.assert_gone();
    // blkio/io weight where the kernel has no weight file at all.
    let (cg, r) = TestCg::resolve(r#"{"blockIO":{"weight":500}}"#);
    let g = TestCg(cg);
    match g.0.create(r.as_ref()) {
        Ok(()) => eprintln!("note: this kernel supports blockIO.weight"),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("weight") || e.contains("blockIO"), "{e}");
            g.assert_gone();
        }
    }
    if !g.0.is_v2() {
        let (cg, r) = TestCg::resolve(r#"{"unified":{"memory.high":"1"}}"#);
        let e = cg.create(r.as_ref()).unwrap_err().to_string();
        assert!(e.contains("cgroup v1") && e.contains("unified"), "{e}");
        let g = TestCg(cg);
        g.assert_gone();
    }
}

/// The v2 device filter on whatever cgroup2 mount this host has (on a
/// hybrid host, a test-unique child of the unified hierarchy: device
/// programs need no controller). Checks the program passes the kernel's
/// verifier, is enforced, and that a second install replaces the first.
#[test]
fn bpf_device_filter_enforced_on_cgroup2() {
    skip_if_unfit!();
    let ms = mounts::mounts();
    let Some(m) = mounts::v2_mount(&ms) else {
        eprintln!("SKIP: no cgroup2 mount for the BPF device filter test");
        return;
    };
    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let mut v = Vec::new();
            let _ = fsio::procs_recursive("cgroup2", &self.0, &mut v);
            for p in v {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            let _ = fsio::rmdir_tree("cgroup2", &self.0);
        }
    }
    let d = Dir(m.mountpoint.join(format!("husk-test-bpf-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))));
    std::fs::create_dir(&d.0).unwrap();
    let deny_null: Resources =
        serde_json::from_str(r#"{"devices":[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]}"#)
            .unwrap();
    v2::apply(&d.0, &deny_null).unwrap_or_else(|e| panic!("{e}"));
    let fd = std::fs::File::open(&d.0).unwrap();
    assert_eq!(bpf::query(std::os::fd::AsFd::as_fd(&fd)).unwrap().len(), 1);
    let run = || {
        let mut c = Command::new("/bin/busybox")
            .args(["sh", "-c", "read go; echo hi > /dev/null && echo null-ok; cat /dev/null && echo read-ok"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        fsio::write("cgroup2", &d.0.join("cgroup.procs"), &c.id().to_string()).unwrap();
        c.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let o = c.wait_with_output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let out = run();
    assert!(!out.contains("null-ok") && out.contains("read-ok"), "{out}");
    let allow_all: Resources = serde_json::from_str(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#).unwrap();
    v2::apply(&d.0, &allow_all).unwrap();
    assert_eq!(bpf::query(std::os::fd::AsFd::as_fd(&fd)).unwrap().len(), 1, "old program not detached");
    let out = run();
    assert!(out.contains("null-ok") && out.contains("read-ok"), "{out}");
}

#[test]
fn verifier_accepts_typical_program() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: loading BPF programs needs root");
        return;
    }
    let rules: Vec<DeviceRule> = serde_json::from_str(
        r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":136,"access":"rw"},{"allow":true,"type":"b","major":8,"minor":0,"access":"r"},
            {"allow":false,"type":"c","major":5,"minor":1,"access":"m"},{"allow":true,"type":"a","access":"m"}]"#,
    )
    .unwrap();
    let prog = devices::compile(&devices::normalize(&rules).unwrap());
    bpf::load(&prog).unwrap_or_else(|e| panic!("{e}"));
    // And a broken program is refused with the verifier's reason.
    let bad = [devices::Insn { code: devices::EXIT, regs: 0, off: 0, imm: 0 }];
    let e = bpf::load(&bad).unwrap_err().to_string();
    assert!(e.contains("BPF_PROG_LOAD") && e.contains("verifier"), "{e}");
}
