//! cgroups end to end through husk's runc-style command line: limits written
//! where the host can read them and enforced inside real containers, pause /
//! resume, events, update, kill --all, delete leaving no cgroup directory.
//!
//! The tests read the host's layout (v1/hybrid or pure v2) and check the
//! matching files, so the same tests run on a pure cgroup v2 guest. Set
//! HUSK_TEST_CGROUP2=1 there to make `runs_on_pure_cgroup2` fail instead of
//! skipping when the host is not pure v2. A command husk does not have yet
//! makes its test print SKIP.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use husk_tests::*;

/// The host's cgroup layout, read from /proc/self/mountinfo.
struct Layout {
    /// Pure v2: one mount, no v1 controller hierarchies.
    v2: bool,
    /// (mount point, controllers) of each hierarchy husk uses.
    mounts: Vec<(PathBuf, Vec<String>)>,
}

const V1: &[&str] = &[
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

fn layout() -> Layout {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let (mut v1, mut v2) = (Vec::new(), Vec::new());
    for l in info.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        match f.get(sep + 1) {
            Some(&"cgroup") => {
                let c: Vec<String> = f[sep + 3].split(',').filter(|o| V1.contains(o)).map(String::from).collect();
                if !c.is_empty() && !v1.iter().any(|(_, x)| *x == c) {
                    v1.push((PathBuf::from(f[4]), c));
                }
            }
            Some(&"cgroup2") => v2.push((PathBuf::from(f[4]), vec![])),
            _ => {}
        }
    }
    if v1.is_empty() {
        v2.sort_by_key(|(p, _)| p != Path::new("/sys/fs/cgroup"));
        v2.truncate(1);
        Layout { v2: true, mounts: v2 }
    } else {
        Layout { v2: false, mounts: v1 }
    }
}

impl Layout {
    fn dirs(&self, cg_path: &str) -> Vec<PathBuf> {
        self.mounts.iter().map(|(m, _)| m.join(cg_path.trim_start_matches('/'))).collect()
    }
    /// A control file of the container's cgroup: (v1 controller, v1 name) or
    /// the v2 name.
    fn file(&self, cg_path: &str, v1: (&str, &str), v2: &str) -> PathBuf {
        let rel = cg_path.trim_start_matches('/');
        if self.v2 {
            self.mounts[0].0.join(rel).join(v2)
        } else {
            let (m, _) = self.mounts.iter().find(|(_, c)| c.iter().any(|x| x == v1.0)).expect("controller mounted");
            m.join(rel).join(v1.1)
        }
    }
    fn read(&self, cg_path: &str, v1: (&str, &str), v2: &str) -> String {
        let f = self.file(cg_path, v1, v2);
        std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())).trim().to_string()
    }
    fn has(&self, ctrl: &str) -> bool {
        if self.v2 {
            std::fs::read_to_string(self.mounts[0].0.join("cgroup.controllers")).is_ok_and(|s| s.split_whitespace().any(|c| c == ctrl))
        } else {
            self.mounts.iter().any(|(_, c)| c.iter().any(|x| x == ctrl))
        }
    }
}

/// Removes the test's cgroup directories (and the shared parent when empty)
/// even when husk failed to.
struct CgDirs(Vec<PathBuf>);
impl Drop for CgDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for p in s.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
            for _ in 0..100 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(p) = d.parent() {
                let _ = std::fs::remove_dir(p);
            }
        }
    }
}

/// Skips unless root, cgroups mounted, and husk can run containers.
fn ready() -> bool {
    if skip_unless_root() {
        return false;
    }
    let l = layout();
    if l.mounts.is_empty() {
        eprintln!("SKIP: no cgroup filesystem mounted");
        return false;
    }
    let t = TempDir::new("husk-cg-probe");
    let o = run_cmd(Command::new(bin("husk")).arg("spec").arg("--bundle").arg(&t.path));
    if !o.status.success() {
        eprintln!("SKIP: husk spec does not work yet: {}", stderr(&o).trim());
        return false;
    }
    true
}

/// True (after printing SKIP) when husk rejects `cmd` as unknown.
fn lacks(b: &Bundle, cmd: &str) -> bool {
    let o = run_cmd(b.husk().args([cmd, "husk-no-such-container"]));
    let e = stderr(&o);
    if e.contains("unknown command") {
        eprintln!("SKIP: husk has no `{cmd}` command yet");
        return true;
    }
    false
}

/// A bundle whose container lives at /husk-e2e/<id> in every hierarchy.
fn bundle(script: &str, resources: Value) -> (Bundle, String, String, CgDirs) {
    let mut b = Bundle::new();
    b.args(&["sh", "-c", script]);
    let id = unique("cg");
    let path = format!("/husk-e2e/{id}");
    b.config["linux"]["cgroupsPath"] = json!(path);
    let res = b.config["linux"]["resources"].as_object().cloned().unwrap_or_default();
    let mut res = Value::Object(res);
    for (k, v) in resources.as_object().unwrap() {
        if k == "devices" {
            // Keep husk spec's default rules first, as runtimes' callers do.
            let mut d = res["devices"].as_array().cloned().unwrap_or_default();
            d.extend(v.as_array().unwrap().iter().cloned());
            res["devices"] = json!(d);
        } else {
            res[k] = v.clone();
        }
    }
    b.config["linux"]["resources"] = res;
    let dirs = CgDirs(layout().dirs(&path));
    (b, id, path, dirs)
}

fn start(c: &Container) {
    let o = c.cmd(&["start", &c.id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
}

fn procs(l: &Layout, path: &str) -> Vec<i32> {
    std::fs::read_to_string(l.file(path, ("pids", "cgroup.procs"), "cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

fn assert_no_dirs(l: &Layout, path: &str) {
    for d in l.dirs(path) {
        assert!(!d.exists(), "cgroup directory left behind: {}", d.display());
    }
}

#[test]
fn memory_limit_on_host_oom_kill_reported_by_events() {
    if !ready() {
        return;
    }
    let l = layout();
    if !l.has("memory") {
        eprintln!("SKIP: no memory controller");
        return;
    }
    let limit: u64 = 16 << 20;
    let mut mem = json!({"limit": limit});
    if !l.v2 && l.file("/", ("memory", "memory.memsw.limit_in_bytes"), "").exists() {
        mem["swap"] = json!(limit); // no swap to escape to
    }
    // The subshell grows past the limit once /go appears; PID 1 stays.
    let (b, id, path, _g) = bundle(
        "while [ ! -e /go ]; do sleep 0.05; done; (a=$(head -c 64000000 /dev/zero | tr '\\0' x); echo survived); sleep 1000",
        json!({"memory": mem}),
    );
    let c = b.create(&id);
    assert_eq!(l.read(&path, ("memory", "memory.limit_in_bytes"), "memory.max"), limit.to_string());
    start(&c);
    let oom_kills = || {
        let f = l.file(&path, ("memory", "memory.oom_control"), "memory.events");
        let s = std::fs::read_to_string(f).unwrap_or_default();
        s.lines().find_map(|x| x.strip_prefix("oom_kill ")).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    assert_eq!(oom_kills(), 0);
    if lacks(&b, "events") {
        std::fs::write(b.rootfs().join("go"), "").unwrap();
        assert!(wait_until(30, || oom_kills() >= 1), "no OOM kill under the memory limit");
        assert_eq!(c.status(), "running", "PID 1 should have survived the OOM kill of its child");
        return;
    }
    let mut ev = b.husk().args(["events", "--interval", "1", &id]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let out = ev.stdout.take().unwrap();
    let _ev = Kill(ev);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).expect("no events output");
    let v: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(v["type"], "stats", "{first}");
    assert_eq!(v["id"], json!(id));
    std::fs::write(b.rootfs().join("go"), "").unwrap();
    let mut saw_oom = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["type"] == "oom" {
            assert_eq!(v["id"], json!(id));
            saw_oom = true;
            break;
        }
    }
    assert!(saw_oom, "events reported no oom");
    let o = c.cmd(&["events", "--stats", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["data"]["memory"]["usage"]["max"].as_u64().unwrap_or(0) > 0, "{v}");
    // runc's stats shape: a client grepping the stats line for "oom" must
    // not mistake it for the oom event (runc's own events test does).
    assert!(!o.stdout.windows(3).any(|w| w == b"oom"), "{v}");
    assert_eq!(c.status(), "running", "PID 1 should have survived the OOM kill of its child");
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    if !ready() {
        return;
    }
    let l = layout();
    if !l.has("pids") {
        eprintln!("SKIP: no pids controller");
        return;
    }
    let (b, id, path, _g) = bundle(
        "i=0; while [ $i -lt 50 ]; do sleep 1000 >/dev/null 2>&1 & i=$((i+1)); done; echo loop-done",
        json!({"pids": {"limit": 10}}),
    );
    b.write_config();
    let o = b.run(&id);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(!out.contains("loop-done"), "50 forks succeeded under pids.limit 10: {out}");
    assert!(err.contains("fork"), "no fork failure seen: {err}");
    assert_no_dirs(&l, &path);
}

#[test]
fn cpu_quota_throttles_a_spin_loop() {
    if !ready() {
        return;
    }
    let l = layout();
    if !l.has("cpu") {
        eprintln!("SKIP: no cpu controller");
        return;
    }
    let (b, id, path, _g) = bundle("while :; do :; done", json!({"cpu": {"quota": 10000, "period": 100000}}));
    let c = b.create(&id);
    if l.v2 {
        assert_eq!(l.read(&path, ("", ""), "cpu.max"), "10000 100000");
    } else {
        assert_eq!(l.read(&path, ("cpu", "cpu.cfs_quota_us"), ""), "10000");
    }
    start(&c);
    let stat = || -> std::collections::HashMap<String, u64> {
        let s = std::fs::read_to_string(l.file(&path, ("cpu", "cpu.stat"), "cpu.stat")).unwrap_or_default();
        s.lines().filter_map(|x| x.split_once(' ').and_then(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))).collect()
    };
    assert!(wait_until(30, || stat().get("nr_throttled").copied().unwrap_or(0) >= 5), "never throttled: {:?}", stat());
    let st = stat();
    // CPU time used (kernel accounting, not wall time) is capped by quota × periods.
    let used_ns = if l.v2 { st["usage_usec"] * 1000 } else { l.read(&path, ("cpuacct", "cpuacct.usage"), "").parse::<u64>().unwrap() };
    let allowed = (st["nr_periods"] + 2) * 10_000_000;
    assert!(used_ns <= allowed * 3 / 2, "used {used_ns} ns in {} periods", st["nr_periods"]);
}

#[test]
fn devices_deny_makes_dev_null_unopenable() {
    if !ready() {
        return;
    }
    let l = layout();
    let (b, id, path, _g) = bundle(
        "echo hi > /dev/null && echo null-ok; head -c 3 /dev/zero | wc -c",
        json!({"devices": [{"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}),
    );
    b.write_config();
    let o = b.run(&id);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(!out.contains("null-ok"), "/dev/null writable despite the deny rule: {out}");
    assert!(err.contains("/dev/null"), "{err}");
    assert_eq!(out.trim(), "3", "/dev/zero must stay readable: {out} / {err}");
    assert_no_dirs(&l, &path);
}

#[test]
fn pause_stops_a_counter_and_resume_restarts_it() {
    if !ready() {
        return;
    }
    let l = layout();
    let (mut b, id, path, _g) = bundle("while :; do echo x >> /count; done", json!({}));
    b.config["root"]["readonly"] = json!(false);
    if lacks(&b, "pause") {
        return;
    }
    let c = b.create(&id);
    start(&c);
    let f = b.rootfs().join("count");
    let size = || std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
    assert!(wait_until(10, || size() > 0), "counter never started");
    let o = c.cmd(&["pause", &id]);
    assert!(o.status.success(), "pause: {}", stderr(&o));
    assert_eq!(c.status(), "paused");
    if l.v2 {
        assert_eq!(l.read(&path, ("", ""), "cgroup.freeze"), "1");
    } else {
        assert_eq!(l.read(&path, ("freezer", "freezer.state"), ""), "FROZEN");
    }
    let s1 = size();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(size(), s1, "counter moved while paused");
    let o = c.cmd(&["resume", &id]);
    assert!(o.status.success(), "resume: {}", stderr(&o));
    assert_eq!(c.status(), "running");
    assert!(wait_until(10, || size() > s1), "counter did not restart");
    // delete --force of a paused container works too.
    let o = c.cmd(&["pause", &id]);
    assert!(o.status.success());
    let o = c.cmd(&["delete", "--force", &id]);
    assert!(o.status.success(), "delete --force: {}", stderr(&o));
    assert_no_dirs(&l, &path);
}

#[test]
fn update_changes_limits_of_a_running_container() {
    if !ready() {
        return;
    }
    let l = layout();
    if !l.has("pids") {
        eprintln!("SKIP: no pids controller");
        return;
    }
    if !l.has("memory") {
        eprintln!("SKIP: no memory controller");
        return;
    }
    if !l.has("cpu") {
        eprintln!("SKIP: no cpu controller");
        return;
    }
    let (b, id, path, _g) = bundle("sleep 1000", json!({"pids": {"limit": 10}, "memory": {"limit": 67108864}}));
    if lacks(&b, "update") {
        return;
    }
    let c = b.create(&id);
    start(&c);
    let o = c.cmd(&["update", "--pids-limit", "20", "--memory", "32m", "--cpu-quota", "50000", "--cpu-period", "100000", &id]);
    assert!(o.status.success(), "update: {}", stderr(&o));
    assert_eq!(l.read(&path, ("pids", "pids.max"), "pids.max"), "20");
    assert_eq!(l.read(&path, ("memory", "memory.limit_in_bytes"), "memory.max"), (32u64 << 20).to_string());
    if l.v2 {
        assert_eq!(l.read(&path, ("", ""), "cpu.max"), "50000 100000");
    } else {
        assert_eq!(l.read(&path, ("cpu", "cpu.cfs_quota_us"), ""), "50000");
    }
    // --resources - reads linux.resources JSON from stdin.
    let mut ch = b.husk().args(["update", "--resources", "-", &id]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    ch.stdin.take().unwrap().write_all(br#"{"pids":{"limit":30}}"#).unwrap();
    let o = ch.wait_with_output().unwrap();
    assert!(o.status.success(), "update -r -: {}", stderr(&o));
    assert_eq!(l.read(&path, ("pids", "pids.max"), "pids.max"), "30");
    // Memory untouched by that update.
    assert_eq!(l.read(&path, ("memory", "memory.limit_in_bytes"), "memory.max"), (32u64 << 20).to_string());
    // A bad flag: one line, non-zero.
    let o = c.cmd(&["update", "--memory", "lots", &id]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn events_stats_reports_runc_shape() {
    if !ready() {
        return;
    }
    if !layout().has("pids") || !layout().has("memory") {
        eprintln!("SKIP: events test needs the pids and memory controllers");
        return;
    }
    let (b, id, _path, _g) = bundle("sleep 1000", json!({"pids": {"limit": 42}}));
    if lacks(&b, "events") {
        return;
    }
    let c = b.create(&id);
    start(&c);
    let o = c.cmd(&["events", "--stats", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], json!(id));
    let d = &v["data"];
    assert!(d["pids"]["current"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(d["pids"]["limit"].as_u64(), Some(42), "{v}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{v}");
    assert!(d["cpu"]["usage"]["total"].is_u64(), "{v}");
    assert!(d["cpu"]["throttling"].is_object(), "{v}");
}

#[test]
fn kill_all_and_delete_leave_no_cgroup_directory() {
    if !ready() {
        return;
    }
    let l = layout();
    // No pid namespace: background processes would outlive PID 1 unless
    // husk kills the whole cgroup.
    let (mut b, id, path, _g) = bundle("sleep 1000 & sleep 1000 & wait", json!({}));
    b.config["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "pid");
    let c = b.create(&id);
    start(&c);
    assert!(wait_until(10, || procs(&l, &path).len() == 3), "{:?}", procs(&l, &path));
    let before = procs(&l, &path);
    for d in l.dirs(&path) {
        assert!(d.is_dir(), "{} missing", d.display());
    }
    let o = c.cmd(&["kill", "--all", &id, "KILL"]);
    assert!(o.status.success(), "kill --all: {}", stderr(&o));
    assert!(wait_until(10, || procs(&l, &path).is_empty()), "left: {:?}", procs(&l, &path));
    let o = c.cmd(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    assert_no_dirs(&l, &path);
    for p in before {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists()
                || std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| s.contains(") Z")),
            "pid {p} survived"
        );
    }

    drop(c);

    // delete --force on a running container with stragglers.
    let id2 = unique("cg");
    let path2 = format!("/husk-e2e/{id2}");
    let _g2 = CgDirs(l.dirs(&path2));
    b.config["linux"]["cgroupsPath"] = json!(path2);
    let c2 = b.create(&id2);
    start(&c2);
    assert!(wait_until(10, || procs(&l, &path2).len() == 3));
    let o = c2.cmd(&["delete", "--force", &id2]);
    assert!(o.status.success(), "delete --force: {}", stderr(&o));
    assert_no_dirs(&l, &path2);
}

#[test]
fn missing_controller_is_a_one_line_error_leaving_nothing() {
    if !ready() {
        return;
    }
    let l = layout();
    let (b, id, path, _g) = bundle("true", json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}));
    b.write_config();
    let o = run_cmd(b.husk().arg("run").arg("--bundle").arg(b.path()).arg(&id));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("hugetlb"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert_no_dirs(&l, &path);
    assert!(!b.root.join(&id).exists(), "state left behind");
}

#[test]
fn cgroup_manager_disabled_runs_without_a_cgroup() {
    if !ready() {
        return;
    }
    let l = layout();
    let (b, id, path, _g) = bundle("echo ran", json!({"pids": {"limit": 10}}));
    b.write_config();
    let o = run_cmd(b.husk().args(["--cgroup-manager", "disabled", "run", "--bundle"]).arg(b.path()).arg(&id));
    let _ = run_cmd(b.husk().args(["delete", "--force", &id]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "ran");
    assert_no_dirs(&l, &path);
    let o = run_cmd(b.husk().args(["--systemd-cgroup", "run", "--bundle"]).arg(b.path()).arg(&id));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("systemd"), "{}", stderr(&o));
}

#[test]
fn runs_on_pure_cgroup2() {
    if !ready() {
        return;
    }
    let l = layout();
    if !l.v2 {
        assert!(std::env::var_os("HUSK_TEST_CGROUP2").is_none(), "HUSK_TEST_CGROUP2 is set but this host is not pure cgroup v2");
        eprintln!(
            "SKIP: host is not pure cgroup v2 (the other tests in this file ran against v1); run in a v2 guest with HUSK_TEST_CGROUP2=1"
        );
        return;
    }
    for ctrl in ["memory", "cpu", "pids"] {
        if !l.has(ctrl) {
            eprintln!("SKIP: the {ctrl} controller is not enabled at the cgroup2 root");
            return;
        }
    }
    let (b, id, path, _g) = bundle("sleep 1000", json!({"memory": {"limit": 33554432}, "cpu": {"shares": 1024}, "pids": {"limit": 64}}));
    let c = b.create(&id);
    let d = l.dirs(&path).remove(0);
    assert!(d.join("cgroup.procs").exists());
    assert_eq!(l.read(&path, ("", ""), "memory.max"), "33554432");
    assert_eq!(l.read(&path, ("", ""), "cpu.weight"), "39");
    assert_eq!(l.read(&path, ("", ""), "pids.max"), "64");
    let parent = d.parent().unwrap();
    let sub = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
    for ctrl in ["memory", "cpu", "pids"] {
        assert!(sub.split_whitespace().any(|c| c == ctrl), "{ctrl} not enabled in {}: {sub}", parent.display());
    }
    drop(c);
    assert_no_dirs(&l, &path);
}
