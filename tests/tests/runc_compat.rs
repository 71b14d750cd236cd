//! runc drop-in behaviour (issues 11 and 12), end to end: the command line
//! as runc's callers use it (flags after the id, exit codes, `kill ID 0`,
//! `delete --force` of nothing, `ps` pass-through, `events --interval`,
//! `run --keep`, `exec --cgroup`, `--ignore-paused`), the cgroup corner
//! cases runc handles (a frozen or busy cgroup at create, a parent CFS
//! limit, the unified hierarchy of a hybrid host, runc's zeros meaning
//! "not set", all-or-nothing updates), and container setup details
//! (read-only /dev, pty owner, user namespace binds, seccomp as
//! libseccomp, runc's JSON key order, runc's own `spec`).
//!
//! Every test runs real containers as root and checks what the container
//! and the host see; cgroups made by a test are removed by a guard even
//! when it fails. cgroup v1 checks print SKIP on a pure v2 host.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use husk_tests::*;

// ---------------------------------------------------------------- helpers

fn sh<'a>(b: &'a mut Bundle, script: &str) -> &'a mut Bundle {
    b.args(&["sh", "-c", script])
}

/// `husk run` attached: (exit code, stdout, stderr); the container is deleted.
fn run_sh(b: &mut Bundle, script: &str) -> (i32, String, String) {
    sh(b, script);
    let o = b.run(&unique("rc"));
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

/// `husk --root B.root ARGS…` with stdin null, output captured.
fn husk(b: &Bundle, args: &[&str]) -> Output {
    run_cmd(b.husk().args(args))
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Runs `cmd` with stdout/stderr in files (a container may inherit them),
/// killing it after `secs`: None if it had to be killed.
fn output_within(mut cmd: Command, dir: &Path, secs: u64) -> Option<Output> {
    let n = unique("o");
    let (out, err) = (dir.join(format!("{n}.out")), dir.join(format!("{n}.err")));
    let mut ch = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn");
    let end = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = ch.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > end {
            let _ = ch.kill();
            let _ = ch.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    status.map(|status| Output { status, stdout: std::fs::read(&out).unwrap_or_default(), stderr: std::fs::read(&err).unwrap_or_default() })
}

/// `husk ARGS…` whose output goes to files (a detached process keeps
/// them open), killed after 30 s.
fn husk_detached(b: &Bundle, args: &[&str]) -> Output {
    let mut c = b.husk();
    c.args(args);
    output_within(c, b.path(), 30).unwrap_or_else(|| panic!("husk {args:?} did not finish in 30 s"))
}

/// Creates and starts the bundle's container.
fn start<'a>(b: &'a Bundle, prefix: &str) -> Container<'a> {
    let c = b.create(&unique(prefix));
    let o = c.cmd(&["start", &c.id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    c
}

/// A bundle whose container runs `sleep 1000`.
fn sleeper() -> Bundle {
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b
}

fn gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z")).unwrap_or(true)
}

/// A console socket: (path, thread receiving the pty master).
fn console_socket(b: &Bundle) -> (String, std::thread::JoinHandle<Option<OwnedFd>>) {
    let p = b.dir.join(format!("{}.sock", unique("console")));
    let l = UnixListener::bind(&p).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().ok()?;
        recv_fd(&s)
    });
    (p.to_string_lossy().into_owned(), t)
}

// --------------------------------------------------------- cgroup helpers

/// Mount point of the v1 hierarchy holding `ctrl` (None on pure v2 or
/// when not mounted).
fn v1_mount(ctrl: &str) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(sep + 1) == Some(&"cgroup") && f.get(sep + 3)?.split(',').any(|o| o == ctrl)).then(|| PathBuf::from(f[4]))
    })
}

/// Every v1 hierarchy's mount point (controllers and named ones).
fn v1_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.get(sep + 1) == Some(&"cgroup")).then(|| PathBuf::from(f[4]))
        })
        .collect()
}

/// The cgroup2 mount of a hybrid host (v1 controllers plus cgroup2).
fn hybrid_unified() -> Option<PathBuf> {
    if v1_mounts().is_empty() {
        return None;
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(sep + 1) == Some(&"cgroup2")).then(|| PathBuf::from(f[4]))
    })
}

/// A file of the v1 controller `ctrl` for cgroup `path`.
fn v1_file(ctrl: &str, path: &str, file: &str) -> PathBuf {
    v1_mount(ctrl).expect("controller mounted").join(path.trim_start_matches('/')).join(file)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string()
}

/// Skips unless root and the v1 controllers named are mounted.
fn skip_unless_v1(ctrls: &[&str]) -> bool {
    if skip_unless_root() {
        return true;
    }
    for c in ctrls {
        if v1_mount(c).is_none() {
            eprintln!("SKIP: no cgroup v1 {c} hierarchy (this check is written for v1/hybrid hosts)");
            return true;
        }
    }
    false
}

/// Removes cgroup paths (deepest first, in every v1 hierarchy and the
/// unified one) on drop: thawed, emptied with SIGKILL, rmdir'd.
struct CgGuard(Vec<String>);

impl Drop for CgGuard {
    fn drop(&mut self) {
        let mut roots = v1_mounts();
        roots.extend(hybrid_unified());
        if v1_mounts().is_empty() {
            roots.push(PathBuf::from("/sys/fs/cgroup"));
        }
        let mut paths = self.0.clone();
        paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
        for p in &paths {
            for r in &roots {
                let d = r.join(p.trim_start_matches('/'));
                if !d.is_dir() {
                    continue;
                }
                let _ = std::fs::write(d.join("freezer.state"), "THAWED");
                for _ in 0..100 {
                    for pid in std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default().lines() {
                        if let Ok(pid) = pid.trim().parse::<i32>() {
                            // SAFETY: kill has no memory-safety preconditions.
                            unsafe { libc::kill(pid, libc::SIGKILL) };
                        }
                    }
                    if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// A unique cgroup path `/husk-compat-PID-N/leaf` and its guard.
fn cg_path(leaf: &str) -> (String, CgGuard) {
    let parent = format!("/{}", unique("husk-compat"));
    let path = format!("{parent}/{leaf}");
    (path.clone(), CgGuard(vec![path, parent]))
}

// ------------------------------------------------------------- issue 11

/// 11.1: a `cgroupsPath` that exists and is FROZEN: `run -d` fails at once
/// (no hang in the frozen cgroup), leaves no state and keeps the cgroup.
#[test]
fn run_into_frozen_cgroup_is_refused_and_cgroup_kept() {
    if skip_unless_v1(&["freezer"]) {
        return;
    }
    let id = unique("frozen");
    let (path, _g) = cg_path(&id);
    let fz = v1_file("freezer", &path, "");
    std::fs::create_dir_all(&fz).unwrap();
    std::fs::write(fz.join("freezer.state"), "FROZEN").unwrap();
    assert!(wait_until(5, || read(&fz.join("freezer.state")) == "FROZEN"));
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.write_config();
    let mut cmd = b.husk();
    cmd.args(["run", "-d", "--bundle"]).arg(b.path()).arg(&id);
    let t0 = Instant::now();
    let o = output_within(cmd, b.path(), 20).expect("run -d into a frozen cgroup hung");
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    assert_ne!(code(&o), 0, "run -d into a frozen cgroup succeeded");
    assert!(stderr(&o).contains("container's cgroup unexpectedly frozen"), "{}", stderr(&o));
    assert!(!b.root.join(&id).exists(), "state dir left");
    assert!(fz.is_dir(), "the pre-existing cgroup was removed");
    assert_eq!(read(&fz.join("freezer.state")), "FROZEN");
    assert!(!v1_file("memory", &path, "").exists(), "husk made cgroup dirs for a refused create");
}

/// 11.2: command flags after the container id (urfave/cli reordering), and
/// `ps`'s arguments passed on to the host's ps.
#[test]
fn flags_after_the_container_id() {
    if skip_unless_v1(&["pids"]) {
        return;
    }
    let id = unique("flags");
    let (path, _g) = cg_path(&id);
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    let c = b.create(&id);
    assert!(c.cmd(&["start", &id]).status.success());
    let o = husk(&b, &["update", &id, "--pids-limit", "30"]);
    assert!(o.status.success(), "update ID --pids-limit: {}", stderr(&o));
    assert_eq!(read(&v1_file("pids", &path, "pids.max")), "30");
    let o = husk(&b, &["update", &id, "--pids-limit=31"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&v1_file("pids", &path, "pids.max")), "31");
    let o = husk(&b, &["list", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(l[0]["id"], json!(id));
    let o = husk(&b, &["state", &id]);
    assert!(o.status.success());
    // `ps ID -e`: -e goes to the host's ps (its plain header), filtered.
    let pid = c.pid();
    let o = husk(&b, &["ps", &id, "-e"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    assert_eq!(t.lines().next().unwrap_or("").split_whitespace().collect::<Vec<_>>(), ["PID", "TTY", "TIME", "CMD"], "{t}");
    assert!(t.lines().any(|l| l.split_whitespace().next() == Some(&pid.to_string())), "{t}");
    assert_eq!(t.lines().count(), 2, "{t}");
    let o = husk(&b, &["delete", &id, "--force"]);
    assert!(o.status.success(), "delete ID --force: {}", stderr(&o));
    assert!(!b.root.join(&id).exists());
    assert!(wait_until(5, || gone(pid)));
}

/// 11.3: v1 CFS period and quota under a parent limit (50000/100000): the
/// pair is written in the order the kernel accepts, down and back up.
#[test]
fn update_cfs_period_and_quota_under_a_parent_limit() {
    if skip_unless_v1(&["cpu"]) {
        return;
    }
    let id = unique("cfs");
    let (path, _g) = cg_path(&id);
    let parent = v1_file("cpu", path.rsplit_once('/').unwrap().0, "");
    std::fs::create_dir_all(&parent).unwrap();
    std::fs::write(parent.join("cpu.cfs_period_us"), "100000").unwrap();
    std::fs::write(parent.join("cpu.cfs_quota_us"), "50000").unwrap();
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.config["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 100000});
    let c = b.create(&id);
    let q = || (read(&v1_file("cpu", &path, "cpu.cfs_period_us")), read(&v1_file("cpu", &path, "cpu.cfs_quota_us")));
    assert_eq!(q(), ("100000".into(), "20000".into()));
    // Period first would make 20000/10000 > the parent's 0.5: EINVAL.
    let o = c.cmd(&["update", "--cpu-period", "10000", "--cpu-quota", "3000", &id]);
    assert!(o.status.success(), "update down: {}", stderr(&o));
    assert_eq!(q(), ("10000".into(), "3000".into()));
    // Quota first would make 40000/10000 > 0.5.
    let o = c.cmd(&["update", "--cpu-period", "100000", "--cpu-quota", "40000", &id]);
    assert!(o.status.success(), "update back up: {}", stderr(&o));
    assert_eq!(q(), ("100000".into(), "40000".into()));
    // Over the parent's limit: refused, old values kept.
    let o = c.cmd(&["update", "--cpu-quota", "90000", &id]);
    assert!(!o.status.success(), "quota over the parent's limit accepted");
    assert_eq!(q(), ("100000".into(), "40000".into()));
}

/// 11.4: a read-only /dev (tmpfs with "ro"), with and without a terminal.
#[test]
fn read_only_dev_with_and_without_terminal() {
    if skip_unless_root() {
        return;
    }
    let ro_dev = |b: &mut Bundle| {
        for m in b.config["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    };
    let script = "grep ' /dev ' /proc/mounts; touch /dev/x 2>/dev/null || echo dev-ro; echo hi > /dev/null && echo null-ok";
    let mut b = Bundle::new();
    ro_dev(&mut b);
    let (code, out, err) = run_sh(&mut b, script);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().next().unwrap_or("").starts_with("tmpfs /dev tmpfs ro,"), "{out}");
    assert!(out.contains("dev-ro\nnull-ok"), "{out}");

    let mut b = Bundle::new();
    ro_dev(&mut b);
    sh(&mut b, &format!("{script}; ls -l /dev/console | cut -c1; tty"));
    b.config["process"]["terminal"] = json!(true);
    b.write_config();
    let (sock, t) = console_socket(&b);
    let id = unique("rodev");
    let o = b.create_cmd(&id, &["--console-socket", &sock]);
    assert!(o.status.success(), "create with a terminal and a read-only /dev: {}", stderr(&o));
    let c = Container { bundle: &b, id: id.clone() };
    let master = t.join().unwrap().expect("pty master");
    assert!(c.cmd(&["start", &id]).status.success());
    let text = read_pty(master);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.first().is_some_and(|l| l.starts_with("tmpfs /dev tmpfs ro,")), "{text}");
    assert_eq!(lines.get(1..4), Some(&["dev-ro", "null-ok", "c"][..]), "{text}");
    assert!(lines.get(4).is_some_and(|l| l.starts_with("/dev/pts/")), "{text}");
}

/// 11.5: user namespace + a bind mount whose source sits under a 0700
/// root-owned host directory (unreachable for the mapped root).
#[test]
fn userns_bind_from_private_host_dir() {
    if skip_unless_root() {
        return;
    }
    let host = TempDir::new("husk-private");
    std::fs::set_permissions(&host.path, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir(host.join("data")).unwrap();
    std::fs::write(host.join("data/f"), "private-content\n").unwrap();
    std::fs::set_permissions(host.join("data/f"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut b = Bundle::new();
    let st = Command::new("chown").args(["-R", "100000:100000"]).arg(b.rootfs()).status().unwrap();
    assert!(st.success());
    let l = &mut b.config["linux"];
    l["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    l["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    l["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/sys/fs/cgroup");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": host.join("data"), "options": ["rbind", "ro"]}));
    let (code, out, err) = run_sh(&mut b, "cat /data/f; id -u");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "private-content\n0\n");
}

/// 11.6: the pty belongs to process.user (run and exec -t).
#[test]
fn pty_owned_by_the_process_user() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = json!(false);
    sh(&mut b, "stat -c %u $(tty) > /tmp/owner; exec sleep 1000");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.write_config();
    let (sock, t) = console_socket(&b);
    let id = unique("ptyown");
    let o = b.create_cmd(&id, &["--console-socket", &sock]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = Container { bundle: &b, id: id.clone() };
    let _master = t.join().unwrap().expect("pty master");
    assert!(c.cmd(&["start", &id]).status.success());
    let f = b.rootfs().join("tmp/owner");
    assert!(wait_until(10, || std::fs::read_to_string(&f).is_ok_and(|s| s.ends_with('\n'))));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "1000\n", "run: pty owner");
    let o = c.cmd(&["exec", "-t", &id, "sh", "-c", "stat -c %u $(tty); id -u"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).replace('\r', ""), "1000\n1000\n", "exec -t: pty owner");
    let o = c.cmd(&["exec", "-t", "--user", "1001:1001", &id, "sh", "-c", "stat -c %u $(tty)"]);
    assert_eq!(stdout(&o).replace('\r', ""), "1001\n", "exec -t --user: {}", stderr(&o));
}

/// 11.7: `exec -p /dev/fd/N`: the process JSON on an inherited pipe.
#[test]
fn exec_process_json_from_an_inherited_fd() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "execfd");
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds we then own (close-on-exec: only the
    // dup2'd copy below reaches husk).
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds from pipe(2).
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let p = json!({"args": ["sh", "-c", "echo from-fd $A $(id -u)"], "env": ["PATH=/bin:/usr/bin", "A=via-pipe"], "cwd": "/", "user": {"uid": 7, "gid": 7}});
    std::fs::File::from(w).write_all(p.to_string().as_bytes()).unwrap();
    let raw = r.as_raw_fd();
    let mut cmd = b.husk();
    cmd.args(["exec", "-p", "/dev/fd/7", &c.id]);
    // SAFETY: dup2 in the child before exec; fd 7 stays open across it.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = run_cmd(&mut cmd);
    drop(r);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "from-fd via-pipe 7\n");
}

/// 11.8: exec's own failures exit 255; the program's 1 stays 1.
#[test]
fn exec_own_failures_exit_255() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "exec255");
    let id = c.id.as_str();
    assert_eq!(code(&husk(&b, &["exec", id, "sh", "-c", "exit 1"])), 1);
    assert_eq!(code(&husk(&b, &["exec", id, "sh", "-c", "exit 254"])), 254);
    let missing = b.dir.join("no/such/dir/pid");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("no such binary", vec!["exec", id, "/no/such/binary"]),
        ("no such container", vec!["exec", "no-such-container", "true"]),
        ("pid file in a missing directory", vec!["exec", "--pid-file", missing.to_str().unwrap(), id, "true"]),
    ];
    for (what, args) in &cases {
        let o = husk(&b, args);
        assert_eq!(code(&o), 255, "{what}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{what}: {}", stderr(&o));
    }
    assert!(c.cmd(&["pause", id]).status.success());
    let o = husk(&b, &["exec", id, "true"]);
    assert_eq!(code(&o), 255, "paused: {}", stderr(&o));
    assert!(stderr(&o).contains("paused"), "{}", stderr(&o));
    assert!(c.cmd(&["resume", id]).status.success());
}

/// 11.9: `kill ID 0` probes: succeeds while running, fails once stopped;
/// `kill --all ID 0` succeeds on a stopped container.
#[test]
fn kill_signal_zero() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "kill0");
    let id = c.id.as_str();
    let o = husk(&b, &["kill", id, "0"]);
    assert!(o.status.success(), "kill ID 0 on a running container: {}", stderr(&o));
    assert_eq!(c.status(), "running", "signal 0 must not hurt");
    assert!(husk(&b, &["kill", id, "KILL"]).status.success());
    assert!(c.wait_status("stopped"));
    let o = husk(&b, &["kill", id, "0"]);
    assert!(!o.status.success(), "kill ID 0 on a stopped container succeeded");
    let o = husk(&b, &["kill", "--all", id, "0"]);
    assert!(o.status.success(), "kill --all ID 0 on a stopped container: {}", stderr(&o));
}

/// 11.10: `delete --force` of nothing is quietly fine; `delete` of nothing is not.
#[test]
fn delete_force_of_a_missing_container() {
    if skip_unless_root() {
        return;
    }
    let d = TempDir::new("husk-del");
    let h = |args: &[&str]| run_cmd(Command::new(bin("husk")).arg("--root").arg(d.join("state")).args(args));
    let o = h(&["delete", "--force", "nosuch"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "not silent: {} {}", stdout(&o), stderr(&o));
    let o = h(&["delete", "nosuch", "--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = h(&["delete", "nosuch"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));
}

/// 11.11: `ps ID -e -x` and `ps ID -- -ef` list the container's processes.
#[test]
fn ps_passes_arguments_to_ps() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "ps");
    let pid = c.pid().to_string();
    let o = husk_detached(&b, &["exec", "-d", &c.id, "sleep", "999"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for args in [vec!["ps", c.id.as_str(), "-e", "-x"], vec!["ps", c.id.as_str(), "--", "-ef"]] {
        let o = c.cmd(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let t = stdout(&o);
        let header: Vec<&str> = t.lines().next().unwrap_or("").split_whitespace().collect();
        let col = header.iter().position(|h| *h == "PID").unwrap_or_else(|| panic!("{args:?}: no PID column: {t}"));
        let pids: Vec<&str> = t.lines().skip(1).filter_map(|l| l.split_whitespace().nth(col)).collect();
        assert_eq!(pids.len(), 2, "{args:?}: {t}");
        assert!(pids.contains(&pid.as_str()), "{args:?}: init {pid} missing: {t}");
        assert!(t.contains("sleep 999"), "{args:?}: {t}");
    }
    // `-ef`'s own header (UID PID PPID …), not the default one.
    let t = stdout(&c.cmd(&["ps", &c.id, "--", "-ef"]));
    assert!(t.lines().next().unwrap_or("").starts_with("UID"), "-ef header: {t}");
}

/// Reads `husk events` lines for `secs` seconds.
fn event_lines(b: &Bundle, args: &[&str], secs: f64) -> Vec<String> {
    let mut ch = b.husk().args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let out = ch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), l)).is_err() {
                break;
            }
        }
    });
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let mut v = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((_, l)) => v.push(l),
            Err(_) => break,
        }
    }
    let _ = ch.kill();
    let _ = ch.wait();
    v
}

/// 11.12: `events --interval 100ms`: stats lines at that rate, runc's key
/// order; `--interval 1s`; bad durations refused.
#[test]
fn events_interval_go_durations() {
    if skip_unless_root() {
        return;
    }
    if v1_mounts().is_empty() && !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("SKIP: no cgroups");
        return;
    }
    let b = sleeper();
    let c = start(&b, "events");
    let id = c.id.as_str();
    let lines = event_lines(&b, &["events", "--interval", "100ms", id], 2.0);
    assert!(lines.len() >= 5, "{} lines in 2 s at 100ms: {lines:?}", lines.len());
    for l in &lines {
        assert!(l.starts_with(&format!("{{\"type\":\"stats\",\"id\":\"{id}\",\"data\":{{")), "{l}");
    }
    let lines = event_lines(&b, &["events", "--interval", "1s", id], 2.5);
    assert!((2..=4).contains(&lines.len()), "{} lines in 2.5 s at 1s", lines.len());
    for bad in ["5x", "-1s", "0", "ms", ""] {
        let o = husk(&b, &["events", "--interval", bad, id]);
        assert_ne!(code(&o), 0, "--interval {bad:?} accepted");
        assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{bad:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{bad:?}: {}", stdout(&o));
    }
}

/// 11.13a: `run --keep`: the exited container stays `stopped` with its
/// cgroup until `delete`.
#[test]
fn run_keep_leaves_a_stopped_container() {
    if skip_unless_v1(&["memory"]) {
        return;
    }
    let id = unique("keep");
    let (path, _g) = cg_path(&id);
    let mut b = Bundle::new();
    b.args(&["sh", "-c", "exit 3"]);
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.write_config();
    let o = run_cmd(b.husk().args(["run", "--keep", "--bundle"]).arg(b.path()).arg(&id));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let c = Container { bundle: &b, id: id.clone() };
    assert_eq!(c.status(), "stopped");
    let dir = v1_file("memory", &path, "");
    assert!(dir.is_dir(), "cgroup removed by run --keep");
    let o = c.cmd(&["delete", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dir.exists(), "cgroup left after delete");
    assert!(!b.root.join(&id).exists());
}

/// 11.13b: `exec --ignore-paused` joins a paused container (and runs once
/// it is resumed); without the flag it is refused.
#[test]
fn exec_ignore_paused() {
    if skip_unless_v1(&["freezer"]) {
        return;
    }
    let mut b = sleeper();
    b.config["root"]["readonly"] = json!(false);
    let c = start(&b, "ignpaused");
    let id = c.id.clone();
    assert!(c.cmd(&["pause", &id]).status.success());
    assert_eq!(c.status(), "paused");
    let o = husk(&b, &["exec", &id, "true"]);
    assert_eq!(code(&o), 255, "{}", stderr(&o));
    let mut cmd = b.husk();
    cmd.args(["exec", "--ignore-paused", &id, "sh", "-c", "echo ran > /tmp/ran"]);
    let n = unique("o");
    let err = b.dir.join(format!("{n}.err"));
    let mut ch = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&err).unwrap()).spawn().unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let early = ch.try_wait().unwrap();
    assert!(early.is_none(), "exec --ignore-paused ended while the container is paused: {early:?} {}", read(&err));
    let ran = b.rootfs().join("tmp/ran");
    assert!(!ran.exists(), "the process ran in a frozen cgroup");
    assert!(c.cmd(&["resume", &id]).status.success());
    let mut ch = Reap(ch);
    assert!(wait_until(10, || ch.0.try_wait().unwrap().is_some()), "exec did not finish after resume");
    assert_eq!(ch.0.wait().unwrap().code(), Some(0), "{}", read(&err));
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "ran\n");
}

/// 11.13c: `exec --cgroup CTRL:SUB` joins an existing sub-cgroup; a missing
/// one fails with 255 and one line.
#[test]
fn exec_into_a_sub_cgroup() {
    if skip_unless_v1(&["memory", "pids"]) {
        return;
    }
    let id = unique("subcg");
    let (path, _g) = cg_path(&id);
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    let c = b.create(&id);
    assert!(c.cmd(&["start", &id]).status.success());
    let sub = v1_file("memory", &path, "sub");
    std::fs::create_dir(&sub).unwrap();
    let _sg = CgGuard(vec![format!("{path}/sub")]);
    // Inside (cgroup namespace): memory in /sub, pids at the container's root.
    let o = c.cmd(&["exec", "--cgroup", "memory:sub", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let t = stdout(&o);
    let line =
        |ctrl: &str| t.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|x| x == ctrl))).unwrap_or("").to_string();
    assert!(line("memory").ends_with(":/sub"), "{t}");
    assert!(line("pids").ends_with(":/"), "{t}");
    // From the host: the process is listed in the sub-cgroup.
    let pf = b.dir.join("exec.pid");
    let o = husk_detached(&b, &["exec", "-d", "--cgroup", "memory:sub", "--pid-file", pf.to_str().unwrap(), &id, "sleep", "999"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let epid = read(&pf);
    assert!(read(&sub.join("cgroup.procs")).lines().any(|l| l == epid), "{epid} not in {}", sub.display());
    assert!(read(&v1_file("pids", &path, "cgroup.procs")).lines().any(|l| l == epid));
    // A sub-cgroup that does not exist.
    let o = c.cmd(&["exec", "--cgroup", "memory:nosuch", &id, "true"]);
    assert_eq!(code(&o), 255, "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));
    let o = c.cmd(&["exec", "--cgroup", "sub", &id, "true"]);
    assert_eq!(code(&o), 255, "sub exists only under memory: {}", stderr(&o));
}

/// 11.14: on a hybrid host the init is in the unified hierarchy too, at the
/// container's path; delete removes that directory.
#[test]
fn hybrid_host_places_the_init_in_the_unified_hierarchy() {
    if skip_unless_root() {
        return;
    }
    let Some(unified) = hybrid_unified() else {
        eprintln!("SKIP: not a hybrid cgroup host (no cgroup2 mount beside v1 controllers)");
        return;
    };
    let id = unique("unified");
    let (path, _g) = cg_path(&id);
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    let c = b.create(&id);
    let pid = c.pid();
    let cg = read(Path::new(&format!("/proc/{pid}/cgroup")));
    let zero = cg.lines().find(|l| l.starts_with("0::")).unwrap_or_else(|| panic!("no 0:: line: {cg}"));
    assert_eq!(zero, format!("0::{path}"), "{cg}");
    let udir = unified.join(path.trim_start_matches('/'));
    assert!(read(&udir.join("cgroup.procs")).lines().any(|l| l == pid.to_string()));
    let o = c.cmd(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!udir.exists(), "unified dir left: {}", udir.display());
}

/// 11.15: a cgroup that already holds a process gets a warning at create.
#[test]
fn busy_cgroup_warns_at_create() {
    if skip_unless_v1(&["pids", "memory"]) {
        return;
    }
    let id = unique("busy");
    let (path, _g) = cg_path(&id);
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let squatter = Reap(Command::new("sleep").arg("1000").spawn().unwrap());
    let d = v1_file("pids", &path, "");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("cgroup.procs"), squatter.0.id().to_string()).unwrap();
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.write_config();
    let o = b.create_cmd(&id, &[]);
    let _c = Container { bundle: &b, id: id.clone() };
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("not empty") && e.contains("1 process"), "no warning: {e:?}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

// ---------------------------------------------------------------- seccomp

/// Builds a static helper that makes raw syscalls: `sc NR ARG0 …` prints
/// "NR RET ERRNO" per pair. None (after SKIP) without gcc.
fn syscall_helper(rootfs: &Path) -> Option<PathBuf> {
    let src = rootfs.join("tmp/sc.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        long nr = atol(argv[i]), a0 = atol(argv[i + 1]);
        errno = 0;
        long r = syscall(nr, a0, 0L, 0L, 0L, 0L, 0L);
        printf("%ld %ld %d\n", nr, r, r < 0 ? errno : 0);
    }
    return 0;
}
"#,
    )
    .unwrap();
    let out = rootfs.join("bin/sc");
    match Command::new("gcc").args(["-static", "-O", "-o"]).arg(&out).arg(&src).output() {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => {
            eprintln!("SKIP: gcc -static failed (no static libc?): {}", stderr(&o).trim());
            None
        }
        Err(_) => {
            eprintln!("SKIP: gcc is not installed");
            None
        }
    }
}

/// 11.16: conditions on one argument index in one rule are alternatives
/// (libseccomp), and syscalls above the profile's highest get ENOSYS.
#[test]
fn seccomp_same_argument_conditions_or_and_enosys_above_the_table() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    if syscall_helper(&b.rootfs()).is_none() {
        return;
    }
    // Docker's profile does not allow kcmp (CAP_SYS_PTRACE only): allow it
    // for pid1 100 or 9001. Allowed, kcmp of a missing pid is ESRCH.
    let rules = b.config["linux"]["seccomp"]["syscalls"].as_array_mut().unwrap();
    assert!(!rules
        .iter()
        .any(|r| r["names"].as_array().unwrap().contains(&json!("kcmp")) && r["action"] == "SCMP_ACT_ALLOW" && r["args"].is_null()));
    rules.push(json!({"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 100, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 9001, "op": "SCMP_CMP_EQ"}]}));
    let kcmp = libc::SYS_kcmp.to_string();
    let args = ["sc", &kcmp, "100", &kcmp, "9001", &kcmp, "5", "1000", "0"];
    b.args(&args);
    let o = b.run(&unique("scor"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want = format!(
        "{kcmp} -1 {esrch}\n{kcmp} -1 {esrch}\n{kcmp} -1 {eperm}\n1000 -1 {enosys}\n",
        esrch = libc::ESRCH,
        eperm = libc::EPERM,
        enosys = libc::ENOSYS
    );
    assert_eq!(stdout(&o), want, "kcmp(100), kcmp(9001) allowed; kcmp(5) denied; syscall 1000 ENOSYS");
}

// ------------------------------------------------------ JSON key order

/// Byte offsets of `"key":` in `text`, in the order given; panics if one is
/// missing.
fn key_positions(text: &str, keys: &[&str]) -> Vec<usize> {
    keys.iter().map(|k| text.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("no {k} in {text}"))).collect()
}

/// 11.17: `state` and `list --format json` print runc's key order.
#[test]
fn state_and_list_json_key_order() {
    if skip_unless_root() {
        return;
    }
    let mut b = sleeper();
    b.config["annotations"] = json!({"org.example.k": "v"});
    let c = b.create(&unique("order"));
    let keys = ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"];
    let s = stdout(&c.cmd(&["state", &c.id]));
    let pos = key_positions(&s, &keys);
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "state key order: {s}");
    let l = stdout(&c.cmd(&["list", "--format", "json"]));
    let pos = key_positions(&l, &keys);
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "list key order: {l}");
    let v: Value = serde_json::from_str(&l).unwrap();
    assert_eq!(v[0]["owner"], "root", "{l}");
    assert_eq!(v[0]["annotations"]["org.example.k"], "v", "{l}");
}

// ------------------------------------------------------- runc's configs

/// Loads `runc spec`'s config.json (Debian's runc) written in `dir`.
fn runc_spec(dir: &Path) -> Option<Value> {
    match Command::new("runc").arg("spec").current_dir(dir).output() {
        Ok(o) if o.status.success() => Some(serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()),
        _ => {
            eprintln!("SKIP: runc is not installed");
            None
        }
    }
}

/// A config written by Debian's `runc spec` runs under husk: its ambient
/// capabilities (not inheritable) are dropped, not an error.
#[test]
fn runc_spec_config_runs() {
    if skip_unless_root() {
        return;
    }
    let b = Bundle::new();
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    let Some(mut cfg) = runc_spec(b.path()) else { return };
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["sh", "-c", "grep -E '^Cap(Eff|Amb|Inh)' /proc/self/status; echo ok"]);
    let mut b = b;
    b.config = cfg;
    let o = b.run(&unique("runcspec"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    // CAP_KILL 5, CAP_NET_BIND_SERVICE 10, CAP_AUDIT_WRITE 29.
    assert!(out.contains("CapEff:\t0000000020000420"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000") && out.contains("CapAmb:\t0000000000000000"), "{out}");
    assert!(out.ends_with("ok\n"), "{out}");
}

/// `husk spec` writes what Debian's `runc spec` writes (its ociVersion
/// aside); `--hardened` has Docker's 14 capabilities and seccomp profile.
#[test]
fn husk_spec_is_runc_spec() {
    let t = TempDir::new("husk-runcspec");
    let Some(mut runc) = runc_spec(&t.path) else { return };
    let h = TempDir::new("husk-huskspec");
    let o = run_cmd(Command::new(bin("husk")).args(["spec", "--bundle"]).arg(&h.path));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut husk: Value = serde_json::from_str(&std::fs::read_to_string(h.join("config.json")).unwrap()).unwrap();
    for c in [&mut runc, &mut husk] {
        c.as_object_mut().unwrap().remove("ociVersion");
    }
    assert_eq!(husk, runc, "husk spec differs from runc spec");
    let d = TempDir::new("husk-hardspec");
    let o = run_cmd(Command::new(bin("husk")).args(["spec", "--hardened", "--bundle"]).arg(&d.path));
    assert!(o.status.success(), "{}", stderr(&o));
    let c: Value = serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    let docker = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE"
    ]);
    let caps = &c["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted"] {
        let mut got: Vec<String> = serde_json::from_value(caps[set].clone()).unwrap();
        let mut want: Vec<String> = serde_json::from_value(docker.clone()).unwrap();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{set}");
    }
    let sc = &c["linux"]["seccomp"];
    assert_eq!(sc["defaultAction"], "SCMP_ACT_ERRNO");
    let allowed: Vec<&str> =
        sc["syscalls"].as_array().unwrap().iter().flat_map(|r| r["names"].as_array().unwrap().iter().filter_map(|n| n.as_str())).collect();
    for s in ["read", "write", "execve", "clone"] {
        assert!(allowed.contains(&s), "{s} not in the profile");
    }
}

// ------------------------------------------------------------ hooks

/// Hooks that never read their stdin (the state, made larger than a pipe
/// by an annotation) never make husk fail: six hooks, ten runs.
#[test]
fn hooks_that_do_not_read_stdin() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let log = b.dir.join("hooks.log");
    let hook = json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo x >> {}", log.display())]});
    b.config["hooks"] = json!({
        "prestart": [hook], "createRuntime": [hook, hook], "poststart": [hook, hook], "poststop": [hook]
    });
    b.config["annotations"] = json!({"org.example.big": "y".repeat(200_000)});
    for i in 0..10 {
        let (code, _, err) = run_sh(&mut b, "true");
        assert_eq!(code, 0, "run {i}: {err}");
        assert!(!err.contains("hook"), "run {i}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 60);
}

/// A hook without `env` sees husk's environment.
#[test]
fn hook_without_env_inherits_husks_environment() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let out = b.dir.join("hook.env");
    b.config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo \"$HUSK_TEST_MARKER\" > {}", out.display())]}]});
    sh(&mut b, "true");
    b.write_config();
    let id = unique("hookenv");
    let o = run_cmd(b.husk().env("HUSK_TEST_MARKER", "marker-42").args(["run", "--bundle"]).arg(b.path()).arg(&id));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "marker-42\n");
}

/// With `listenerPath`, the seccomp agent gets the listener during
/// `create`, before `start`; the listener then serves the container.
#[test]
fn seccomp_listener_arrives_during_create() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = json!(false);
    let sock = b.dir.join("agent.sock");
    let l = UnixListener::bind(&sock).unwrap();
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]});
    sh(&mut b, "mkdir /tmp/notified 2>/dev/null; echo rc=$? > /tmp/rc");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        let _ = tx.send(recv_fd(&s));
        // Keep the connection until the test ends.
        std::thread::sleep(Duration::from_secs(30));
    });
    let id = unique("agent");
    b.write_config();
    let o = b.create_cmd(&id, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = Container { bundle: &b, id: id.clone() };
    let fd = rx.recv_timeout(Duration::from_secs(5)).expect("no listener received by the end of create").expect("an fd");
    assert_eq!(c.status(), "created");
    assert!(c.cmd(&["start", &id]).status.success());
    // SAFETY: zeroed plain-data structs handed to the notify ioctls on our fd.
    unsafe {
        let mut req: libc::seccomp_notif = std::mem::zeroed();
        assert_eq!(libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut req), 0);
        let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
        resp.id = req.id;
        resp.error = -libc::EACCES;
        assert_eq!(libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut resp), 0);
    }
    assert!(c.wait_status("stopped"));
    assert_eq!(std::fs::read_to_string(b.rootfs().join("tmp/rc")).unwrap(), "rc=1\n");
    assert!(!b.rootfs().join("tmp/notified").exists());
}

// ------------------------------------------------------ process setup

/// A process started by `exec` leads its own session.
#[test]
fn exec_process_is_a_session_leader() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "session");
    let o = c.cmd(&["exec", &c.id, "sh", "-c", "echo $$; cut -d' ' -f6 /proc/$$/stat"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l.len(), 2, "{out}");
    assert_eq!(l[0], l[1], "session id is not the exec'd process: {out}");
}

/// `cpu.realtimeRuntime` and `realtimePeriod` are written (v1 with
/// CONFIG_RT_GROUP_SCHED).
#[test]
fn cpu_realtime_runtime() {
    if skip_unless_v1(&["cpu"]) {
        return;
    }
    let root = v1_mount("cpu").unwrap();
    if skip_unless(root.join("cpu.rt_runtime_us").exists(), "kernel without CONFIG_RT_GROUP_SCHED (no cpu.rt_runtime_us)") {
        return;
    }
    let id = unique("rt");
    let (path, _g) = cg_path(&id);
    let parent = root.join(path.trim_start_matches('/')).parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&parent).unwrap();
    if std::fs::write(parent.join("cpu.rt_runtime_us"), "20000").is_err() {
        eprintln!("SKIP: cannot give the test's parent cgroup an rt_runtime of 20000 (root's rt_runtime is taken by other groups)");
        return;
    }
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.config["linux"]["resources"]["cpu"] = json!({"realtimeRuntime": 10000, "realtimePeriod": 500000});
    let c = b.create(&id);
    assert_eq!(read(&v1_file("cpu", &path, "cpu.rt_period_us")), "500000");
    assert_eq!(read(&v1_file("cpu", &path, "cpu.rt_runtime_us")), "10000");
    drop(c);
}

/// `--log` in a missing directory is an error, as runc's.
#[test]
fn log_in_a_missing_directory_is_an_error() {
    let d = TempDir::new("husk-logdir");
    let log = d.join("no/such/dir/husk.log");
    let o = run_cmd(Command::new(bin("husk")).arg("--root").arg(d.join("state")).arg("--log").arg(&log).args(["list"]));
    assert_ne!(code(&o), 0, "--log in a missing directory accepted");
    assert!(stderr(&o).contains(log.to_str().unwrap()), "{}", stderr(&o));
    assert!(!d.join("no").exists(), "husk made the log directory");
}

/// A `process.cwd` that does not exist is created (read-only rootfs too).
#[test]
fn missing_cwd_is_created() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    assert_eq!(b.config["root"]["readonly"], true);
    b.config["process"]["cwd"] = json!("/no/such/cwd");
    let (code, out, err) = run_sh(&mut b, "pwd");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "/no/such/cwd\n");
    assert!(b.rootfs().join("no/such/cwd").is_dir());
}

/// `linux.devices` entries outside /dev are made too.
#[test]
fn devices_outside_dev() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["devices"] = json!([
        {"path": "/dev2/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438},
        {"path": "/opt/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 438}
    ]);
    let (code, out, err) = run_sh(&mut b, "ls -l /dev2/null /opt/zero | cut -c1; echo x > /dev2/null && head -c 3 /opt/zero | wc -c");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "c\nc\n3\n");
}

/// A new network namespace has its loopback up.
#[test]
fn new_netns_has_lo_up() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let (code, out, err) = run_sh(&mut b, "ip -o link show lo; ip -o addr show lo; ping -c 1 -W 2 127.0.0.1 > /dev/null && echo ping-ok");
    assert_eq!(code, 0, "{err}");
    let first = out.lines().next().unwrap_or("");
    assert!(first.contains("<LOOPBACK,UP,LOWER_UP>"), "{out}");
    assert!(out.contains("inet 127.0.0.1/8"), "{out}");
    assert!(out.contains("ping-ok"), "{out}");
}

/// `checkpoint` and `restore`: one line, "not supported", exit 1, also
/// with runc's flags for them (not "flag provided but not defined").
#[test]
fn checkpoint_restore_not_supported() {
    let d = TempDir::new("husk-criu");
    let runc_flags: [&[&str]; 2] = [
        &["--image-path", "./i", "--work-path", "./w", "--parent-path", "../p", "--pre-dump", "--leave-running", "--tcp-established"],
        &["-d", "--bundle", "/b", "--image-path", "./i", "--console-socket", "/s", "--pid-file", "/p", "--no-pivot"],
    ];
    for (cmd, flags) in ["checkpoint", "restore"].into_iter().zip(runc_flags) {
        for args in [&[][..], flags] {
            let o = run_cmd(Command::new(bin("husk")).arg("--root").arg(d.join("state")).arg(cmd).args(args).arg("someid"));
            assert_eq!(code(&o), 1, "{cmd} {args:?}");
            let e = stderr(&o);
            assert_eq!(e.trim_end().lines().count(), 1, "{cmd} {args:?}: {e}");
            assert!(e.contains("not supported"), "{cmd} {args:?}: {e}");
        }
    }
    assert!(!d.join("state").join("someid").exists());
}

// ------------------------------------------------- issue 12: zero = unset

/// runc's zeros mean "not set": a config with zero weight, reservation,
/// quota and pids limit runs and writes none of them.
#[test]
fn zero_resources_are_not_written() {
    if skip_unless_v1(&["cpu", "memory", "pids", "blkio"]) {
        return;
    }
    let id = unique("zeros");
    let (path, _g) = cg_path(&id);
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    let parent = path.rsplit_once('/').unwrap().0.to_string();
    b.config["linux"]["resources"]["blockIO"] = json!({"weight": 0});
    b.config["linux"]["resources"]["memory"] = json!({"reservation": 0, "limit": 0});
    b.config["linux"]["resources"]["cpu"] = json!({"quota": 0, "period": 0, "shares": 0});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 0});
    // The defaults, as a fresh sibling cgroup has them.
    let fresh = |ctrl: &str, file: &str| {
        let d = v1_file(ctrl, &format!("{parent}/fresh"), "");
        std::fs::create_dir_all(&d).unwrap();
        let v = read(&d.join(file));
        let _ = std::fs::remove_dir(&d);
        v
    };
    let files = [
        ("memory", "memory.soft_limit_in_bytes"),
        ("memory", "memory.limit_in_bytes"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("cpu", "cpu.shares"),
        ("pids", "pids.max"),
    ];
    let mut want: Vec<(String, String)> = files.iter().map(|(c, f)| (f.to_string(), fresh(c, f))).collect();
    let blkio_w = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| v1_file("blkio", "/", f).exists() || v1_file("blkio", &parent, f).exists());
    if let Some(f) = blkio_w {
        want.push((f.to_string(), fresh("blkio", f)));
    }
    let c = b.create(&id);
    assert!(c.cmd(&["start", &id]).status.success());
    assert_eq!(c.status(), "running");
    for (f, v) in &want {
        let ctrl = f.split('.').next().unwrap();
        assert_eq!(&read(&v1_file(ctrl, &path, f)), v, "{f} was written");
    }
    assert_eq!(want.iter().find(|(f, _)| f == "pids.max").unwrap().1, "max");
}

/// An update with zeros keeps the old values: `update --memory 64m` after a
/// CPU quota and a soft limit leaves both.
#[test]
fn update_keeps_what_it_does_not_set() {
    if skip_unless_v1(&["cpu", "memory"]) {
        return;
    }
    let id = unique("keepvals");
    let (path, _g) = cg_path(&id);
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.config["linux"]["resources"]["memory"] = json!({"reservation": 33554432});
    let c = b.create(&id);
    let o = c.cmd(&["update", "--cpu-quota", "20000", "--cpu-period", "100000", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&v1_file("cpu", &path, "cpu.cfs_quota_us")), "20000");
    let o = c.cmd(&["update", "--memory", "64m", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&v1_file("memory", &path, "memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&v1_file("cpu", &path, "cpu.cfs_quota_us")), "20000", "quota reset by update --memory");
    assert_eq!(read(&v1_file("cpu", &path, "cpu.cfs_period_us")), "100000");
    assert_eq!(read(&v1_file("memory", &path, "memory.soft_limit_in_bytes")), "33554432", "soft limit changed");
    // The same through `update -r -` with explicit zeros.
    let mut ch = b.husk().args(["update", "-r", "-", &id]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    ch.stdin
        .take()
        .unwrap()
        .write_all(br#"{"memory":{"limit":50331648,"reservation":0},"cpu":{"quota":0,"period":0,"shares":0}}"#)
        .unwrap();
    let o = ch.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&v1_file("memory", &path, "memory.limit_in_bytes")), "50331648");
    assert_eq!(read(&v1_file("cpu", &path, "cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&v1_file("memory", &path, "memory.soft_limit_in_bytes")), "33554432");
}

/// A failing update changes nothing: the memory limit written before the
/// bad cpuset is put back.
#[test]
fn update_is_all_or_nothing() {
    if skip_unless_v1(&["memory", "cpuset"]) {
        return;
    }
    let id = unique("atomic");
    let (path, _g) = cg_path(&id);
    let mut b = sleeper();
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 33554432});
    let c = b.create(&id);
    let cpus = read(&v1_file("cpuset", &path, "cpuset.cpus"));
    let mut ch = b.husk().args(["update", "-r", "-", &id]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    ch.stdin.take().unwrap().write_all(br#"{"memory":{"limit":67108864},"cpu":{"cpus":"999"}}"#).unwrap();
    let o = ch.wait_with_output().unwrap();
    assert!(!o.status.success(), "cpus 999 accepted");
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    assert_eq!(read(&v1_file("memory", &path, "memory.limit_in_bytes")), "33554432", "memory limit changed by a failed update");
    assert_eq!(read(&v1_file("cpuset", &path, "cpuset.cpus")), cpus);
    assert_eq!(c.status(), "created");
}

/// seccomp's "unknown syscall … skipped" warnings are not printed by exec.
#[test]
fn exec_does_not_warn_about_unknown_syscalls() {
    if skip_unless_root() {
        return;
    }
    let mut b = sleeper();
    b.config["linux"]["seccomp"]["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({"names": ["husk_no_such_syscall"], "action": "SCMP_ACT_ERRNO"}));
    let c = start(&b, "scwarn");
    let o = c.cmd(&["exec", &c.id, "sh", "-c", "echo in"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "in\n");
    assert_eq!(stderr(&o), "", "exec printed warnings");
}
