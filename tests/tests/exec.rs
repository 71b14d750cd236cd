//! `husk exec` and `husk ps`, end to end: a process joins a running
//! container (namespaces, cgroup, process settings with overrides), gives
//! back its exit status, and bad input is refused in one line while the
//! container goes on untouched.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use husk_tests::*;

/// A bundle whose container runs `sleep 1000`, with RLIMIT_NOFILE 321/654.
fn sleeper() -> Bundle {
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b.config["hostname"] = json!("exec-box");
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]);
    b
}

/// Creates and starts the bundle's container.
fn start<'a>(b: &'a Bundle, prefix: &str) -> Container<'a> {
    let c = b.create(&unique(prefix));
    let o = c.cmd(&["start", &c.id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    assert_eq!(c.status(), "running");
    c
}

/// `husk exec ID ARGS…` attached; (exit code, stdout, stderr).
fn exec(c: &Container, flags: &[&str], args: &[&str]) -> (i32, String, String) {
    let mut v = vec!["exec"];
    v.extend_from_slice(flags);
    v.push(&c.id);
    v.extend_from_slice(args);
    let o = c.cmd(&v);
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

/// The container's PIDs as `husk ps --format json` reports them.
fn ps_pids(c: &Container) -> Vec<i64> {
    let o = c.cmd(&["ps", "--format", "json", &c.id]);
    assert!(o.status.success(), "ps: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("ps JSON");
    v.as_array().expect("ps array").iter().map(|p| p.as_i64().unwrap()).collect()
}

/// The container still runs its init alone, with the same PID.
fn assert_untouched(c: &Container, pid: i32, what: &str) {
    assert_eq!(c.status(), "running", "after {what}");
    assert_eq!(c.pid(), pid, "after {what}");
    // A failed exec must not leave a process in the container's cgroup
    // (the child is reaped before husk exits).
    assert_eq!(ps_pids(c), vec![pid as i64], "processes left after {what}");
}

fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).map(|p| p.to_string_lossy().to_string()).unwrap_or_default()
}

#[test]
fn exec_joins_namespaces_cgroup_and_gives_exit_status() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "exec");
    let pid = c.pid().to_string();

    assert_eq!(exec(&c, &[], &["sh", "-c", "exit 7"]).0, 7);
    assert_eq!(exec(&c, &[], &["true"]).0, 0);
    // Killed by a signal: 128 + N.
    assert_eq!(exec(&c, &[], &["sh", "-c", "kill -USR1 $$; sleep 5"]).0, 128 + libc::SIGUSR1);

    // Every namespace is the container's; the cgroup too.
    let (code, out, err) = exec(
        &c,
        &[],
        &["sh", "-c", "hostname; for n in mnt pid net ipc uts; do readlink /proc/self/ns/$n; done; ulimit -n; ulimit -Hn; tr '\\0' ' ' </proc/1/cmdline"],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "exec-box", "{out}");
    for (i, n) in ["mnt", "pid", "net", "ipc", "uts"].iter().enumerate() {
        assert_eq!(lines[1 + i], ns_link(&pid, n), "{n} namespace differs: {out}");
    }
    // rlimits of the container's process, and its init is visible (same pid ns).
    assert_eq!(&lines[6..], ["321", "654", "sleep 1000 "], "{out}");
    assert_untouched(&c, c.pid(), "attached execs");
}

#[test]
fn exec_overrides_env_cwd_user_caps_nnp() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "exec");
    let (code, out, err) = exec(
        &c,
        &["--env", "FOO=bar baz", "-e", "PATH=/bin", "--cwd", "/tmp", "--user", "1000:1001", "--additional-gids", "10"],
        &["sh", "-c", "echo \"$FOO\"; echo $PATH; pwd; id -u; id -g; id -G"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["bar baz", "/bin", "/tmp", "1000", "1001", "1001 10"], "{out}");

    // Capabilities: CAP_SYS_ADMIN (bit 21) only when asked for; NNP on request.
    let caps = |flags: &[&str]| {
        let (code, out, err) = exec(&c, flags, &["grep", "-E", "^(CapEff|CapBnd|NoNewPrivs)", "/proc/self/status"]);
        assert_eq!(code, 0, "{err}");
        let field = |k: &str| {
            let v = out.lines().find(|l| l.starts_with(k)).unwrap_or_else(|| panic!("{k} in {out}"));
            u64::from_str_radix(v.split_whitespace().nth(1).unwrap(), 16)
                .unwrap_or_else(|_| v.split_whitespace().nth(1).unwrap().parse().unwrap())
        };
        (field("CapEff:"), field("CapBnd:"), field("NoNewPrivs:"))
    };
    let (eff, bnd, nnp) = caps(&[]);
    assert_eq!(eff & (1 << 21), 0, "CAP_SYS_ADMIN without --cap: {eff:x}");
    assert_ne!(eff & (1 << 5), 0, "CAP_KILL of the container's defaults: {eff:x}");
    assert_eq!(bnd, eff);
    assert_eq!(nnp, 0);
    let (eff, bnd, nnp) = caps(&["--cap", "CAP_SYS_ADMIN", "--no-new-privs"]);
    assert_ne!(eff & (1 << 21), 0, "--cap CAP_SYS_ADMIN: {eff:x}");
    assert_ne!(bnd & (1 << 21), 0);
    assert_eq!(nnp, 1);
    // A non-root user keeps no effective capabilities.
    let (eff, _, _) = caps(&["--user", "1000"]);
    assert_eq!(eff, 0);
}

#[test]
fn exec_process_file_detach_pid_file_and_ps() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "exec");
    let init = c.pid();
    let out = b.dir.join("exec-out");
    let p = b.dir.join("process.json");
    std::fs::write(
        &p,
        json!({
            "args": ["sh", "-c", "echo $A $(id -u) $(pwd) > /tmp/proc-out; exec sleep 1000"],
            "env": ["PATH=/bin:/usr/bin", "A=from-json"],
            "cwd": "/etc",
            "user": {"uid": 65534, "gid": 65534}
        })
        .to_string(),
    )
    .unwrap();
    let pidf = b.dir.join("exec.pid");
    let o = std::process::Command::new(bin("husk"))
        .arg("--root")
        .arg(&b.root)
        .args(["exec", "--detach", "--process", p.to_str().unwrap(), "--pid-file", pidf.to_str().unwrap(), &c.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(b.dir.join("exec-err")).unwrap())
        .status()
        .unwrap();
    assert!(o.success(), "{}", std::fs::read_to_string(b.dir.join("exec-err")).unwrap_or_default());
    let epid: i64 = std::fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    let rootfs = b.rootfs();
    assert!(wait_until(10, || std::fs::read_to_string(rootfs.join("tmp/proc-out")).is_ok_and(|s| s.ends_with('\n'))));
    assert_eq!(std::fs::read_to_string(rootfs.join("tmp/proc-out")).unwrap(), "from-json 65534 /etc\n");
    // ps lists both, the table through the host's ps.
    // Seen from the host, the exec'd process is in every cgroup of the init.
    let cg = |p: i64| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(epid), cg(init as i64));
    assert!(cg(epid).contains(&format!("/{}", c.id)), "{}", cg(epid));
    for n in ["mnt", "pid", "net", "ipc", "uts", "cgroup"] {
        assert_eq!(ns_link(&epid.to_string(), n), ns_link(&init.to_string(), n), "{n} namespace");
    }
    let pids = ps_pids(&c);
    assert!(pids.contains(&(init as i64)) && pids.contains(&epid), "{pids:?} (init {init}, exec {epid})");
    let o = c.cmd(&["ps", &c.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(t.lines().next().unwrap_or("").contains("PID"), "{t}");
    assert_eq!(t.lines().count(), 3, "header + 2 processes:\n{t}");
    // Arguments after `--` go to the host's ps.
    let o = c.cmd(&["ps", &c.id, "--", "-e", "-o", "pid,args"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    assert_eq!(t.lines().next().map(str::split_whitespace).map(|w| w.collect::<Vec<_>>()), Some(vec!["PID", "COMMAND"]), "{t}");
    for p in [init as i64, epid] {
        assert!(t.lines().any(|l| l.trim_start().starts_with(&format!("{p} ")) && l.ends_with("sleep 1000")), "{p}: {t}");
    }
    assert_eq!(t.lines().count(), 3, "{t}");
    // Killing the container (--all) takes the exec'd process too.
    let o = c.cmd(&["kill", "--all", &c.id, "KILL"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(c.wait_status("stopped"));
    assert!(wait_until(10, || !Path::new(&format!("/proc/{epid}")).exists()
        || std::fs::read_to_string(format!("/proc/{epid}/stat")).is_ok_and(|s| s.contains(") Z"))));
}

#[test]
fn exec_tty_through_console_socket() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "exec");
    let sock = b.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    // The receiver reads the terminal until the slave side closes (EIO).
    let reader = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        read_pty(recv_fd(&s).expect("a terminal fd over the console socket"))
    });
    let (code, _, err) = exec(
        &c,
        &["--tty", "--console-socket", sock.to_str().unwrap()],
        &["sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo is-a-tty; exit 3"],
    );
    assert_eq!(code, 3, "{err}");
    let text = reader.join().unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap_or("").starts_with("/dev/pts/"), "{text:?}");
    assert_eq!(lines.next(), Some("is-a-tty"), "{text:?}");
    assert_untouched(&c, c.pid(), "tty exec");
}

#[test]
fn exec_tty_without_console_socket_is_proxied() {
    if skip_unless_root() {
        return;
    }
    // husk holds the pty itself and copies it to its stdout (a thread that
    // must start although husk joined the container's pid namespace).
    let b = sleeper();
    let c = start(&b, "exec");
    let (code, out, err) = exec(&c, &["--tty"], &["sh", "-c", "tty; [ -t 1 ] && echo is-a-tty; exit 4"]);
    assert_eq!(code, 4, "stderr: {err}");
    let out = out.replace('\r', "");
    let mut lines = out.lines();
    assert!(lines.next().unwrap_or("").starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(lines.next(), Some("is-a-tty"), "{out:?}");
    assert_untouched(&c, c.pid(), "proxied tty exec");
}

#[test]
fn exec_bad_input_one_line_container_unaffected() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let c = start(&b, "exec");
    let pid = c.pid();
    let bad_json = b.dir.join("bad.json");
    std::fs::write(&bad_json, "{\"args\": [\"true\"").unwrap();
    let wrong_type = b.dir.join("wrong.json");
    std::fs::write(&wrong_type, r#"{"args": "true", "cwd": "/"}"#).unwrap();
    let no_args = b.dir.join("noargs.json");
    std::fs::write(&no_args, r#"{"args": [], "cwd": "/"}"#).unwrap();
    let plain = b.dir.join("plain-file");
    std::fs::write(&plain, "").unwrap();
    // A socket bound but never listening refuses connections.
    let unlistened = b.dir.join("unlistened.sock");
    // SAFETY: socket/bind on fds we own; the fd is closed at the end of the test.
    let sfd = unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut a: libc::sockaddr_un = std::mem::zeroed();
        a.sun_family = libc::AF_UNIX as _;
        for (i, ch) in unlistened.to_str().unwrap().bytes().enumerate() {
            a.sun_path[i] = ch as _;
        }
        assert_eq!(libc::bind(fd, (&a as *const libc::sockaddr_un).cast(), std::mem::size_of_val(&a) as _), 0);
        OwnedFd::from_raw_fd(fd)
    };
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, Vec<&str>, &str)> = vec![
        (vec!["--process".into(), p(&bad_json)], vec![], "bad.json"),
        (vec!["--process".into(), p(&wrong_type)], vec![], "args"),
        (vec!["--process".into(), p(&no_args)], vec![], "args"),
        (vec!["--process".into(), p(&b.dir.join("missing.json"))], vec![], "missing.json"),
        (vec!["--user".into(), "root".into()], vec!["id"], "root"),
        (vec!["--user".into(), "nosuchuser".into()], vec!["id"], "nosuchuser"),
        (vec!["--user".into(), "1000:".into()], vec!["id"], "1000:"),
        (vec!["--user".into(), ":1000".into()], vec!["id"], ":1000"),
        (vec!["--user".into(), "1000:100:5".into()], vec!["id"], "1000:100:5"),
        (vec!["--user".into(), "-1".into()], vec!["id"], "-1"),
        (vec!["--user".into(), "0x10".into()], vec!["id"], "0x10"),
        (vec!["--additional-gids".into(), "wheel".into()], vec!["id"], "wheel"),
        (vec!["--console-socket".into(), p(&b.dir.join("nosock"))], vec!["true"], "nosock"),
        (vec!["--tty".into(), "--console-socket".into(), p(&plain)], vec!["true"], "plain-file"),
        (vec!["--tty".into(), "--console-socket".into(), p(&unlistened)], vec!["true"], "unlistened.sock"),
        (vec!["--cap".into(), "CAP_NO_SUCH".into()], vec!["true"], "CAP_NO_SUCH"),
        (vec!["--cwd".into(), "/no/such/dir".into()], vec!["true"], "/no/such/dir"),
        (vec![], vec!["/no/such/program"], "/no/such/program"),
        (vec![], vec![], "command"),
    ];
    for (flags, args, names) in &cases {
        let f: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (code, out, err) = exec(&c, &f, args);
        let what = format!("exec {f:?} {args:?}");
        assert_ne!(code, 0, "{what} succeeded: {out}");
        assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
        assert!(err.starts_with("husk: "), "{what}: {err:?}");
        assert!(err.contains(names), "{what}: error does not name {names:?}: {err:?}");
        assert_untouched(&c, pid, &what);
    }
    drop(sfd);
    // An unknown container.
    let o = c.cmd(&["exec", "no-such-container", "true"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-container") && stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // An id that could escape the state root.
    let o = c.cmd(&["exec", "../x", "true"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_untouched(&c, pid, "bad ids");
}

#[test]
fn exec_into_stopped_container_fails_clearly() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["true"]);
    let c = b.create(&unique("exec"));
    let o = c.cmd(&["start", &c.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(c.wait_status("stopped"), "still {}", c.status());
    let o = c.cmd(&["exec", &c.id, "true"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("stopped") && e.contains(&c.id), "{e}");
    // Still there to be deleted normally.
    assert_eq!(c.status(), "stopped");
    let o = c.cmd(&["delete", &c.id]);
    assert!(o.status.success(), "{}", stderr(&o));
}
