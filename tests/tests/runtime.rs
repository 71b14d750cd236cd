//! husk runtime core, end to end: real containers on a busybox rootfs,
//! asserted from inside (what the process sees) and from the host after
//! delete (nothing left behind).

use std::path::Path;
use std::process::Command;

use husk_tests::*;

fn sh<'a>(b: &'a mut Bundle, script: &str) -> &'a mut Bundle {
    b.args(&["sh", "-c", script])
}

/// Runs `script` attached and returns (exit code, stdout, stderr).
fn run_sh(b: &mut Bundle, script: &str) -> (i32, String, String) {
    sh(b, script);
    let id = unique("rt");
    let o = b.run(&id);
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

fn assert_clean(b: &Bundle, id: &str) {
    assert!(!b.root.join(id).exists(), "state dir left for {id}");
    assert!(mounts_under(b.path()).is_empty(), "mounts left: {:?}", mounts_under(b.path()));
}

#[test]
fn pid1_hostname_env_cwd_user() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config["hostname"] = json!("box1");
    b.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar baz"]);
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
    let (code, out, err) = run_sh(&mut b, "echo pid=$$; hostname; echo foo=$FOO; pwd; id -u; id -g; id -G");
    assert_eq!(code, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["pid=1", "box1", "foo=bar baz", "/tmp", "1000", "1000", "1000 10 20"], "{out}");
}

#[test]
fn exit_codes_and_signals() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    assert_eq!(run_sh(&mut b, "exit 7").0, 7);
    assert_eq!(run_sh(&mut b, "true").0, 0);
    // Killed by a signal: 128 + N, as a shell reports it.
    // PID 1 of a pid namespace ignores signals it has no handler for: test
    // the mapping without a pid namespace.
    b.config["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "pid");
    assert_eq!(run_sh(&mut b, "kill -USR1 $$; sleep 5").0, 128 + libc::SIGUSR1);
    // A program that does not exist fails at create with a clear error.
    b.args(&["/no/such/program"]);
    let o = b.run(&unique("rt"));
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("/no/such/program"), "{}", stderr(&o));
}

#[test]
fn capabilities_rlimits_nnp() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []});
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]);
    b.config["process"]["noNewPrivileges"] = json!(true);
    let (code, out, err) = run_sh(&mut b, "grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs)' /proc/self/status; ulimit -n; ulimit -Hn");
    assert_eq!(code, 0, "{err}");
    // CAP_KILL = 5, CAP_NET_BIND_SERVICE = 10 → 0x420.
    assert!(out.contains("CapEff:\t0000000000000420"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000420"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("\n321\n654"), "{out}");
}

#[test]
fn mounts_readonly_root_masks_devices() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = json!(true);
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/timer_list", "/proc/acpi", "/etc/hostname"]);
    b.config["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    let (code, out, err) = run_sh(
        &mut b,
        "awk '$5 == \"/\"' /proc/self/mountinfo; touch /x 2>&1 || echo rootro; \
         cat /etc/hostname | wc -c; \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>&1 || echo sysro; \
         ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | cut -c1; \
         for l in fd stdin ptmx; do readlink /dev/$l; done; echo hi > /dev/null && echo devnull-ok",
    );
    assert_eq!(code, 0, "{err}");
    let first = out.lines().next().unwrap_or("");
    assert!(first.contains(" ro,") || first.contains(" ro "), "root not ro: {first}");
    assert!(out.contains("rootro"), "{out}");
    assert!(out.contains("\n0\n"), "masked /etc/hostname not empty: {out}");
    assert!(out.contains("sysro"), "{out}");
    assert_eq!(out.lines().filter(|l| *l == "c").count(), 6, "6 char devices expected: {out}");
    assert!(out.contains("/proc/self/fd\n/proc/self/fd/0\npts/ptmx"), "{out}");
    assert!(out.contains("devnull-ok"), "{out}");
}

#[test]
fn bind_mount_with_flags() {
    if skip_unless_root() {
        return;
    }
    let host = TempDir::new("husk-bindsrc");
    std::fs::write(host.join("f"), "from-host").unwrap();
    let mut b = Bundle::new();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": host.path, "options": ["rbind", "ro", "nosuid", "nodev"]}));
    mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "noexec"]}));
    let (code, out, err) = run_sh(
        &mut b,
        "cat /data/f; echo; touch /data/g 2>/dev/null || echo bind-ro; grep ' /data ' /proc/self/mountinfo; grep ' /scratch ' /proc/self/mountinfo",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("from-host\nbind-ro\n"), "{out}");
    let data = out.lines().find(|l| l.contains(" /data ")).unwrap();
    assert!(data.contains("ro,nosuid,nodev"), "{data}");
    let scratch = out.lines().find(|l| l.contains(" /scratch ")).unwrap();
    assert!(scratch.contains("noexec") && scratch.contains("size=1024k"), "{scratch}");
    assert!(!host.join("g").exists());
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let out = b.dir.join("out");
    std::fs::write(&out, "").unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/out", "type": "bind", "source": out, "options": ["bind"]}));
    sh(&mut b, "trap 'echo got-term >> /out; exit 3' TERM; echo started >> /out; while :; do sleep 0.1; done");
    let pidfile = b.dir.join("pid");
    b.write_config();
    let id = unique("life");
    let o = b.create_cmd(&id, &["--pid-file", pidfile.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = Container { bundle: &b, id: id.clone() };
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.path().to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // Not started yet: the program has not run.
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "");
    // Deleting a running container needs --force; a created one may go.
    let o = c.cmd(&["start", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(wait_until(10, || std::fs::read_to_string(&out).unwrap().contains("started")));
    assert_eq!(c.status(), "running");
    // Start twice: refused.
    let o = c.cmd(&["start", &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("running"), "{}", stderr(&o));
    let o = c.cmd(&["delete", &id]);
    assert!(!o.status.success(), "delete of a running container must fail");
    // list shows it
    let o = c.cmd(&["list", "-q"]);
    assert_eq!(stdout(&o).trim(), id);
    let o = c.cmd(&["list", "--format", "json"]);
    let l: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(l[0]["status"], "running");
    // kill delivers SIGTERM by default; the trap records it.
    let o = c.cmd(&["kill", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(c.wait_status("stopped"), "still {}", c.status());
    assert!(std::fs::read_to_string(&out).unwrap().contains("got-term"));
    let o = c.cmd(&["kill", &id, "KILL"]);
    assert!(!o.status.success(), "kill of a stopped container must fail");
    let o = c.cmd(&["delete", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_clean(&b, &id);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z")).unwrap_or(true)
    );
    let o = c.cmd(&["state", &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

#[test]
fn kill_signal_forms_and_force_delete() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = unique("kill");
    let c = b.create(&id);
    assert!(c.cmd(&["start", &id]).status.success());
    let o = c.cmd(&["kill", &id, "NOPE"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("NOPE"));
    // SIGCONT (18) as a number is harmless; SIGSTOP by name.
    assert!(c.cmd(&["kill", &id, "18"]).status.success());
    assert!(c.cmd(&["kill", &id, "SIGSTOP"]).status.success());
    assert!(c.cmd(&["kill", &id, "CONT"]).status.success());
    let pid = c.pid();
    let o = c.cmd(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(wait_until(5, || !Path::new(&format!("/proc/{pid}/exe")).exists()));
    assert_clean(&b, &id);
}

#[test]
fn user_namespace_maps() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    // The rootfs must be reachable by the mapped root.
    let st = Command::new("chown").args(["-R", "100000:100000"]).arg(&rootfs).status().unwrap();
    assert!(st.success());
    let l = &mut b.config["linux"];
    l["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    l["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    l["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["root"]["readonly"] = json!(false);
    // sysfs and cgroup mounts need more than a plain user namespace here.
    b.config["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/sys/fs/cgroup");
    let (code, out, err) =
        run_sh(&mut b, "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/x && ls -n /tmp/x | awk '{print $3}'");
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&words[..6], ["0", "100000", "65536", "0", "100000", "65536"], "{out}");
    assert_eq!(words[6], "0");
    assert_eq!(words[7], "0");
    // Owned by the mapped uid on the host.
    let m = std::fs::metadata(rootfs.join("tmp/x")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(m.uid(), 100000);
}

#[test]
fn join_namespace_by_path() {
    if skip_unless_root() {
        return;
    }
    // A helper process in its own uts namespace, whose hostname we set.
    let mut helper = Command::new("unshare").args(["--uts", "sh", "-c", "hostname joined-uts; sleep 100"]).spawn().unwrap();
    let pid = helper.id();
    let ok = wait_until(5, || std::fs::read_link(format!("/proc/{pid}/ns/uts")).ok() != std::fs::read_link("/proc/self/ns/uts").ok());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut b = Bundle::new();
    b.config.as_object_mut().unwrap().remove("hostname");
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "uts" {
            ns["path"] = json!(format!("/proc/{pid}/ns/uts"));
        }
    }
    let (code, out, err) = run_sh(&mut b, "hostname");
    let _ = helper.kill();
    let _ = helper.wait();
    assert!(ok);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "joined-uts");
}

#[test]
fn hooks_run_in_order_with_state() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let log = b.dir.join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {name} \"$s\" >> {}", log.display())], "env": ["A=1"]});
    b.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    let (code, _, err) = run_sh(&mut b, "true");
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["prestart", "createRuntime", "poststart", "poststop"], "{text}");
    let state: Value = serde_json::from_str(text.lines().next().unwrap().split_once(' ').unwrap().1).unwrap();
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert_eq!(state["bundle"], b.path().to_str().unwrap());

    // A failing createRuntime hook fails create and leaves nothing.
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    sh(&mut b, "true");
    b.write_config();
    let id = unique("hookfail");
    let o = b.create_cmd(&id, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("createRuntime"), "{}", stderr(&o));
    assert_clean(&b, &id);
}

#[test]
fn sysctl_and_oom_score() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    b.config["process"]["oomScoreAdj"] = json!(345);
    let (code, out, err) = run_sh(&mut b, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/self/oom_score_adj");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1", "1234", "345"]);
    // Not namespaced: refused with the key named.
    b.config["linux"]["sysctl"] = json!({"vm.swappiness": "1"});
    let (code, _, err) = run_sh(&mut b, "true");
    assert_ne!(code, 0);
    assert!(err.contains("vm.swappiness"), "{err}");
}

#[test]
fn bad_input_is_refused_cleanly() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["true"]);
    b.write_config();
    let try_create = |b: &Bundle, id: &str| b.create_cmd(id, &[]);

    // Bad ids.
    for id in ["../x", "a/b", ".hidden", ""] {
        let o = try_create(&b, id);
        assert_eq!(o.status.code(), Some(1), "id {id:?}");
        assert!(stderr(&o).lines().count() == 1, "one line: {}", stderr(&o));
    }
    // Malformed JSON and a wrong type: the field is named.
    std::fs::write(b.dir.join("config.json"), "{ not json").unwrap();
    let o = try_create(&b, "malformed");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
    std::fs::write(b.dir.join("config.json"), r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":"root"}},"linux":{"namespaces":[{"type":"mount"}]}}"#).unwrap();
    let o = try_create(&b, "wrongtype");
    assert!(stderr(&o).contains("process.user.uid"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1);
    // Missing rootfs.
    let mut b2 = Bundle::new();
    b2.args(&["true"]);
    b2.config["root"]["path"] = json!("nope");
    b2.write_config();
    let o = try_create(&b2, "norootfs");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("root.path"), "{}", stderr(&o));
    for id in ["malformed", "wrongtype", "norootfs"] {
        assert_clean(&b, id);
        assert_clean(&b2, id);
    }
    // Duplicate id.
    b2.config["root"]["path"] = json!("rootfs");
    b2.args(&["sleep", "100"]);
    let c = b2.create("dup");
    let o = try_create(&b2, "dup");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(c.status(), "created");
    // Unknown container.
    let o = run_cmd(b2.husk().args(["start", "nosuch"]));
    assert!(stderr(&o).contains("does not exist"));
}

#[test]
fn symlinked_dev_and_mount_destination_stay_in_rootfs() {
    if skip_unless_root() {
        return;
    }
    let host = TempDir::new("husk-hostdir");
    std::fs::write(host.join("keep"), "untouched").unwrap();
    let list = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    };
    let before = list(&host.path);

    // rootfs/dev is a symlink to a host directory (CVE-2026-41579 shape).
    let mut b = Bundle::new();
    let dev = b.rootfs().join("dev");
    std::fs::remove_dir_all(&dev).unwrap();
    std::os::unix::fs::symlink(&host.path, &dev).unwrap();
    // and a mount destination that is a symlink to the host directory.
    std::os::unix::fs::symlink(&host.path, b.rootfs().join("evil")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
    let (code, _out, _err) = run_sh(&mut b, "ls /dev >/dev/null; touch /evil/x 2>/dev/null; true");
    let _ = code;
    assert_eq!(list(&host.path), before, "host directory changed");
    assert_eq!(std::fs::read_to_string(host.join("keep")).unwrap(), "untouched");
    assert!(mounts_under(&host.path).is_empty());
}

#[test]
fn spec_and_features() {
    let d = TempDir::new("husk-spec");
    let o = run_cmd(Command::new(bin("husk")).args(["spec", "--bundle"]).arg(&d.path));
    assert!(o.status.success(), "{}", stderr(&o));
    let c: Value = serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["root"]["path"], "rootfs");
    // runc spec's config: three capabilities, also ambient; no seccomp.
    assert_eq!(c["process"]["capabilities"]["ambient"], json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]));
    assert!(c["linux"]["seccomp"].is_null());
    let h = TempDir::new("husk-spec-hardened");
    let o = run_cmd(Command::new(bin("husk")).args(["spec", "--hardened", "--bundle"]).arg(&h.path));
    assert!(o.status.success(), "{}", stderr(&o));
    let c: Value = serde_json::from_str(&std::fs::read_to_string(h.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["capabilities"]["bounding"].as_array().unwrap().len(), 14);
    assert_eq!(c["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    // A second spec refuses to overwrite.
    let o = run_cmd(Command::new(bin("husk")).args(["spec", "--bundle"]).arg(&d.path));
    assert!(!o.status.success());
    let o = run_cmd(Command::new(bin("husk")).arg("features"));
    let f: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    assert!(f["linux"]["namespaces"].as_array().unwrap().len() == 8);
    let o = run_cmd(Command::new(bin("husk")).arg("--version"));
    assert!(stdout(&o).starts_with("husk version"));
}

#[test]
fn json_log_for_failures() {
    if skip_unless_root() {
        return;
    }
    let d = TempDir::new("husk-log");
    let log = d.join("log.json");
    let o = run_cmd(Command::new(bin("husk")).arg("--root").arg(d.join("state")).arg("--log").arg(&log).args([
        "--log-format",
        "json",
        "state",
        "nosuch",
    ]));
    assert!(!o.status.success());
    let last = std::fs::read_to_string(&log).unwrap();
    let v: Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"));
    assert!(v["time"].is_string());
}

#[test]
fn terminal_over_console_socket() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["sh", "-c", "tty; echo rows=$(stty size)"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    let sock_path = b.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let id = unique("tty");
    b.write_config();
    let sp = sock_path.to_str().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        recv_fd(&s)
    });
    let o = b.create_cmd(&id, &["--console-socket", &sp]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = Container { bundle: &b, id: id.clone() };
    let master = h.join().unwrap().expect("pty master received");
    assert!(c.cmd(&["start", &id]).status.success());
    let text = read_pty(master);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("rows=33 101"), "{text}");
}

#[test]
fn preserve_fds_and_no_other_fd_leaks() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; echo $LISTEN_FDS; cat <&3"]);
    b.write_config();
    let extra = b.dir.join("extra");
    std::fs::write(&extra, "through-fd-3\n").unwrap();
    let f = std::fs::File::open(&extra).unwrap();
    use std::os::fd::AsRawFd;
    let raw = f.as_raw_fd();
    let mut cmd = b.husk();
    cmd.args(["run", "--preserve-fds", "1", "--bundle"]).arg(b.path()).arg(unique("fds"));
    cmd.env("LISTEN_FDS", "1");
    // SAFETY: dup2 in the child before exec onto fd 3.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = run_cmd(&mut cmd);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    // 0,1,2, the preserved 3, and the fd ls itself opened for /proc/self/fd.
    let fds: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert!(fds.len() <= 5 && fds[..4] == ["0", "1", "2", "3"], "fds: {fds:?}");
    assert_eq!(lines.next(), Some("1"));
    assert_eq!(lines.next(), Some("through-fd-3"));
}

#[test]
fn time_namespace_offsets() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(Path::new("/proc/self/ns/time").exists(), "kernel has no time namespaces") {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    let (code, out, err) = run_sh(&mut b, "cut -d. -f1 /proc/uptime");
    assert_eq!(code, 0, "{err}");
    let host: f64 = std::fs::read_to_string("/proc/uptime").unwrap().split('.').next().unwrap().parse().unwrap();
    let inside: f64 = out.trim().parse().unwrap();
    assert!(inside - host > 863000.0, "uptime inside {inside}, host {host}");
}

#[test]
fn no_pivot_root() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    sh(&mut b, "echo pid=$$; ls /");
    b.write_config();
    let o = run_cmd(b.husk().args(["run", "--no-pivot", "--bundle"]).arg(b.path()).arg(unique("nopivot")));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("pid=1\n"), "{}", stdout(&o));
    assert!(stdout(&o).contains("bin"));
}

#[test]
fn failed_create_leaves_no_cgroup_or_process() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    // Fails late: after the cgroup exists and the init is running.
    b.args(&["/does/not/exist"]);
    let id = unique("rollback");
    b.config["linux"]["cgroupsPath"] = json!(format!("/husk-test-rollback/{id}"));
    b.write_config();
    let o = b.create_cmd(&id, &[]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_clean(&b, &id);
    for ctrl in ["memory", "pids", "cpu", "freezer", "devices"] {
        let d = Path::new("/sys/fs/cgroup").join(ctrl).join("husk-test-rollback").join(&id);
        assert!(!d.exists(), "cgroup left: {}", d.display());
    }
    let v2 = Path::new("/sys/fs/cgroup/husk-test-rollback").join(&id);
    assert!(!v2.exists());
    // No process of ours is left with the rootfs as its root.
    let rootfs = b.rootfs();
    let left = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_link(e.path().join("root")).map(|r| r == rootfs).unwrap_or(false));
    assert!(!left, "a process is left in the rootfs");
    for ctrl in ["memory", "pids", "cpu", "freezer", "devices", "cpuset", "cpuacct", "blkio"] {
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(ctrl).join("husk-test-rollback"));
    }
}

#[test]
fn sigpipe_default_for_husk_and_the_container() {
    if skip_unless_root() {
        return;
    }
    // The container's program must not inherit an ignored SIGPIPE.
    let mut b = Bundle::new();
    let (code, out, err) = run_sh(&mut b, "grep SigIgn /proc/self/status; yes | head -c 1000 > /dev/null; echo done");
    assert_eq!(code, 0, "{err}");
    let ign = u64::from_str_radix(out.lines().next().unwrap().split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(ign & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE ignored in the container: {out}");
    assert!(out.contains("done"));
    // husk writing into a closed pipe ends quietly (no crash signal).
    let o = run_cmd(Command::new("sh").arg("-c").arg(format!("(sleep 0.3; {} features) | true", bin("husk").display())));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}
