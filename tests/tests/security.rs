//! The CVE regression suite (`cargo test -p husk-tests --test security`).
//!
//! Each test builds a hostile bundle, or attacks from inside a running
//! container, the way a published container-runtime exploit did, and then
//! checks the host: decoy files and directories (made in a TempDir) must be
//! byte-for-byte unchanged, nothing may be mounted on them, the runtime
//! binary must be unchanged, and a container process may hold only the fds
//! of an allow-list. docs/security.md maps each CVE to its test.
//!
//! Every test needs root and real containers; none touches the host's own
//! /dev, /proc or /sys (the procfs test binds over /proc/sys only inside a
//! private mount namespace of its own).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use husk_tests::*;

// ---------------------------------------------------------------- helpers

/// Content hash of a file (SipHash of the bytes, plus the length).
fn file_hash(p: &Path) -> String {
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    format!("{}:{:016x}", data.len(), h.finish())
}

/// Everything observable about a host tree: per entry its type, mode,
/// owner and content hash or link target. Compared before and after.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
        let ft = m.file_type();
        let what = if ft.is_symlink() {
            format!("link->{}", std::fs::read_link(p).unwrap().display())
        } else if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_file() {
            format!("file {}", file_hash(p))
        } else {
            format!("other rdev={}", m.rdev())
        };
        out.insert(rel, format!("{what} mode={:o} uid={} gid={}", m.mode(), m.uid(), m.gid()));
        if ft.is_dir() {
            let mut names: Vec<PathBuf> = std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
            names.sort();
            for n in names {
                walk(root, &n, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A host directory with a few files that no container may touch.
struct Decoy {
    dir: TempDir,
    before: BTreeMap<String, String>,
}

impl Decoy {
    fn new() -> Decoy {
        let dir = TempDir::new("husk-decoy");
        std::fs::write(dir.join("secret"), "host secret\n").unwrap();
        std::fs::write(dir.join("core_pattern"), "|/host/handler\n").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/keep"), "keep\n").unwrap();
        let before = snapshot(&dir.path);
        Decoy { dir, before }
    }
    fn path(&self) -> &Path {
        &self.dir.path
    }
    fn file(&self) -> PathBuf {
        self.dir.join("secret")
    }
    /// The decoy is exactly as made, and nothing is mounted on or under it
    /// (in the host's mount namespace, seen through pid 1's mountinfo too).
    fn assert_untouched(&self, what: &str) {
        assert_eq!(snapshot(self.path()), self.before, "{what}: host decoy directory changed");
        assert!(mounts_under(self.path()).is_empty(), "{what}: mounts on host decoy: {:?}", mounts_under(self.path()));
        let d = self.path().to_string_lossy().to_string();
        let host = std::fs::read_to_string("/proc/1/mountinfo").unwrap_or_default();
        assert!(!host.contains(&d), "{what}: host pid 1 sees a mount at the decoy");
    }
}

/// A relative symlink target that climbs far above any rootfs and then
/// names `host`: outside a rootfs it would reach the host path.
fn climbing(host: &Path) -> String {
    format!("{}{}", "../".repeat(24), host.to_string_lossy().trim_start_matches('/'))
}

/// Makes the directory a link to `host` would reach when resolved inside
/// `rootfs`, so that a correctly confined resolution succeeds (and lands
/// there) instead of failing on a dangling link.
fn plant_inside(rootfs: &Path, host: &Path) -> PathBuf {
    let p = rootfs.join(host.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// True if the ELF file at `p` names a program interpreter (dynamically
/// linked): such a binary cannot run inside the busybox rootfs.
fn is_dynamic_elf(p: &Path) -> bool {
    let d = std::fs::read(p).unwrap();
    if d.len() < 64 || &d[..4] != b"\x7fELF" || d[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([d[o], d[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(d[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        d.len() >= o + 4 && u32::from_le_bytes(d[o..o + 4].try_into().unwrap()) == 3
        // PT_INTERP
    })
}

fn sh<'a>(b: &'a mut Bundle, script: &str) -> &'a mut Bundle {
    b.args(&["sh", "-c", script])
}

/// Drops the tmpfs the default spec mounts on /dev, so the rootfs's own
/// /dev (planted by the test) is what husk works in.
fn no_dev_tmpfs(b: &mut Bundle) {
    b.config["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev");
}

/// A bind mount of a fresh host dir at /out, for results from inside.
fn out_dir(b: &mut Bundle) -> PathBuf {
    let out = b.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]}));
    out
}

/// `husk run` attached: (exit code, stdout, stderr); deletes the container.
fn run(b: &mut Bundle) -> (i32, String, String) {
    let o = b.run(&unique("sec"));
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

/// Nothing of container `id` is left: no state dir, no mounts in the bundle.
fn assert_nothing_left(b: &Bundle, id: &str) {
    assert!(!b.root.join(id).exists(), "state dir left for {id}");
    assert!(mounts_under(b.path()).is_empty(), "mounts left: {:?}", mounts_under(b.path()));
}

/// A create that must be refused: one error line containing `want`, and
/// nothing left behind.
fn assert_create_refused(b: &Bundle, want: &str) -> String {
    b.write_config();
    let id = unique("refused");
    let o = b.create_cmd(&id, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "create must fail: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one error line: {err}");
    assert!(err.contains(want), "error should name {want:?}: {err}");
    assert_nothing_left(b, &id);
    err
}

/// fd numbers open in a host process.
fn fds_of(pid: i32) -> BTreeMap<i32, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n: i32 = e.file_name().to_str()?.parse().ok()?;
            let t = std::fs::read_link(e.path()).map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
            Some((n, t))
        })
        .collect()
}

/// Runs `husk ARGS` through sh with extra fds open in husk (without
/// close-on-exec), as a careless caller would leak them. `redirs` is the
/// shell redirection text, e.g. `5</etc 6<file`.
fn husk_with_fds(b: &Bundle, env: &[(&str, &str)], redirs: &str, args: &[&str]) -> Output {
    let n = unique("o");
    let out = b.dir.join(format!("{n}.out"));
    let err = b.dir.join(format!("{n}.err"));
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("exec \"$0\" \"$@\" {redirs}")).arg(bin("husk")).arg("--root").arg(&b.root).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let status =
        c.stdin(Stdio::null()).stdout(std::fs::File::create(&out).unwrap()).stderr(std::fs::File::create(&err).unwrap()).status().unwrap();
    Output { status, stdout: std::fs::read(&out).unwrap_or_default(), stderr: std::fs::read(&err).unwrap_or_default() }
}

// ------------------------------------------------- CVE-2019-5736 (runc)

/// The runc exploit: the container's program is replaced by a link to
/// /proc/self/exe, so the runtime's own `exec` runs the host runtime binary
/// inside the container. A container process grabs /proc/PID/exe of it and,
/// once no runtime process runs any more, reopens that fd for writing.
/// Here husk is a private copy (so a hole would not destroy the binary under
/// test); the copy must be unchanged and the write must have failed.
#[test]
fn cve_2019_5736_runtime_binary_not_writable_from_container() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(
        !is_dynamic_elf(&bin("husk")),
        "husk is dynamically linked: the exploit runs it inside a busybox rootfs; use the static build (HUSK_BIN_DIR=dist/x86_64)",
    ) {
        return;
    }
    let bins = TempDir::new("husk-bin");
    let husk = bins.join("husk");
    std::fs::copy(bin("husk"), &husk).unwrap();
    std::fs::set_permissions(&husk, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = file_hash(&husk);

    let mut b = Bundle::new();
    let out = out_dir(&mut b);
    // The trojan: a program in the container that is the caller's own exe.
    std::os::unix::fs::symlink("/proc/self/exe", b.rootfs().join("bin/trojan")).unwrap();
    let fifo = std::ffi::CString::new(b.rootfs().join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // The attacker (the container's pid 1): wait for the pid of the process
    // running the trojan, hold its exe, let it finish, then write through
    // the held fd until no process runs the binary any more.
    sh(
        &mut b,
        r#"while [ ! -s /out/pid ]; do sleep 0.05; done; p=$(cat /out/pid)
if ( : < /proc/$p/exe ) 2>/dev/null; then exec 3< /proc/$p/exe; echo grabbed >> /out/log; else echo grab-denied >> /out/log; fi
cat /fifo > /dev/null
while [ -e /proc/$p/exe ] && [ "$(cat /proc/$p/stat 2>/dev/null | cut -d' ' -f3)" != Z ]; do sleep 0.05; done
r=write-failed
for i in $(seq 1 40); do
  if [ -e /proc/self/fd/3 ] && (printf 'PWNED' 1<> /proc/self/fd/3) 2>/dev/null; then r=wrote; break; fi
  sleep 0.05
done
echo $r >> /out/log; echo done >> /out/log; sleep 1000"#,
    );
    b.write_config();
    let id = unique("c5736");
    let mut cmd = Command::new(&husk);
    cmd.arg("--root").arg(&b.root).arg("run").arg("--detach").arg("--bundle").arg(b.path()).arg(&id);
    let o = run_cmd(cmd.stdout(Stdio::null()).stderr(Stdio::null()));
    let _guard = Container { bundle: &b, id: id.clone() };
    assert!(o.status.success(), "run --detach failed");

    // The victim: the host runs `husk exec` of the (trojaned) program; it
    // blocks opening the fifo as its --log file until the attacker reads.
    let pidfile = b.dir.join("exec.pid");
    let mut cmd = Command::new(&husk);
    cmd.arg("--root").arg(&b.root).args(["exec", "--detach", "--pid-file"]).arg(&pidfile).arg(&id);
    cmd.args(["/bin/trojan", "--log", "/fifo", "state", "nosuch"]);
    let o = run_cmd(cmd.stdout(Stdio::null()).stderr(Stdio::null()));
    assert!(o.status.success(), "husk exec --detach failed");
    let host_pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // The pid as the container sees it (last NSpid field).
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap().split_whitespace().last().unwrap().to_string();
    assert_eq!(std::fs::read_link(format!("/proc/{host_pid}/exe")).ok().map(|p| p.to_string_lossy().contains("husk")), Some(true));
    std::fs::write(out.join("pid"), &nspid).unwrap();

    let done = wait_until(30, || std::fs::read_to_string(out.join("log")).unwrap_or_default().contains("done"));
    let log = std::fs::read_to_string(out.join("log")).unwrap_or_default();
    assert!(done, "attacker did not finish: {log:?}");
    assert_eq!(file_hash(&husk), before, "the host's husk binary was modified from the container: {log}");
    assert!(log.contains("write-failed"), "{log}");
}

/// The same attack on a created container: before `start`, its init is
/// still the host's husk binary. A process that `husk exec` adds grabs
/// /proc/1/exe, waits for the start (after which no husk process runs), and
/// writes through the fd. The copy of husk must be unchanged.
#[test]
fn cve_2019_5736_created_init_exe_not_reachable() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(!is_dynamic_elf(&bin("husk")), "husk is dynamically linked: use the static build (HUSK_BIN_DIR=dist/x86_64)") {
        return;
    }
    let bins = TempDir::new("husk-bin");
    let husk = bins.join("husk");
    std::fs::copy(bin("husk"), &husk).unwrap();
    std::fs::set_permissions(&husk, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = file_hash(&husk);
    let mut b = Bundle::new();
    let out = out_dir(&mut b);
    b.args(&["sleep", "1000"]);
    b.write_config();
    let id = unique("c5736c");
    let husk_cmd = |args: &[&str]| {
        let mut c = Command::new(&husk);
        c.arg("--root").arg(&b.root).args(args);
        run_cmd(c.stdout(Stdio::null()).stderr(Stdio::null()))
    };
    let o = husk_cmd(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let _guard = Container { bundle: &b, id: id.clone() };
    assert!(o.status.success(), "create failed");
    let grabber = r#"if ( : < /proc/1/exe ) 2>/dev/null; then exec 3< /proc/1/exe; echo grabbed >> /out/log; else echo grab-denied >> /out/log; fi
for f in /proc/1/fd/*; do if ( : < $f ) 2>/dev/null || ls $f/ > /dev/null 2>&1; then echo "fd-opened $f" >> /out/log; fi; done
echo ready >> /out/log
while [ "$(readlink /proc/1/exe)" != /bin/busybox ]; do sleep 0.05; done
r=write-failed
for i in $(seq 1 40); do
  if [ -e /proc/self/fd/3 ] && (printf 'PWNED' 1<> /proc/self/fd/3) 2>/dev/null; then r=wrote; break; fi
  sleep 0.05
done
echo $r >> /out/log; echo done >> /out/log"#;
    let o = husk_cmd(&["exec", "--detach", &id, "sh", "-c", grabber]);
    assert!(o.status.success(), "exec into the created container failed");
    assert!(wait_until(10, || std::fs::read_to_string(out.join("log")).unwrap_or_default().contains("ready")));
    assert!(husk_cmd(&["start", &id]).status.success());
    let done = wait_until(30, || std::fs::read_to_string(out.join("log")).unwrap_or_default().contains("done"));
    let log = std::fs::read_to_string(out.join("log")).unwrap_or_default();
    assert!(done, "attacker did not finish: {log:?}");
    assert_eq!(file_hash(&husk), before, "the host's husk binary was modified from the container: {log}");
    assert!(log.contains("grab-denied") && !log.contains("fd-opened"), "created init reachable: {log}");
}

// ------------------------------------------------ CVE-2024-21626 (runc)

/// `cwd` through a leaked fd's magic link (/proc/self/fd/N) is refused, in
/// create and in exec, whatever fds the caller leaks to husk.
#[test]
fn cve_2024_21626_cwd_through_proc_self_fd_refused() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    let mut b = Bundle::new();
    b.args(&["true"]);
    let leak = format!("3<{d} 4<{d} 5<{d} 6<{d} 7<{d} 8<{d} 9<{d}", d = decoy.path().display());
    for n in 3..=10 {
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.write_config();
        let id = unique("cwd");
        let o = husk_with_fds(&b, &[], &leak, &["create", "--bundle", b.path().to_str().unwrap(), &id]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "cwd fd {n} accepted: {err}");
        assert!(err.contains("process.cwd"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert_nothing_left(&b, &id);
    }
    // The same through `husk exec --cwd` into a running container.
    b.config["process"]["cwd"] = json!("/");
    b.args(&["sleep", "1000"]);
    let id = unique("cwdexec");
    let c = b.create(&id);
    assert!(c.cmd(&["start", &id]).status.success());
    for n in [3, 4, 5, 7] {
        let o = husk_with_fds(&b, &[], &leak, &["exec", "--cwd", &format!("/proc/self/fd/{n}"), &id, "sh", "-c", "pwd; ls"]);
        assert_ne!(o.status.code(), Some(0), "exec cwd fd {n} accepted: {}", stdout(&o));
        assert!(!stdout(&o).contains("secret"), "host dir listed from the container: {}", stdout(&o));
    }
    // A cwd that climbs with .. stays inside the root.
    let o = c.cmd(&["exec", "--cwd", "/../../../../..", &id, "pwd"]);
    assert_eq!(stdout(&o).trim(), "/", "{}", stderr(&o));
    decoy.assert_untouched("cwd");
}

/// No host fd reaches the container: fds leaked to husk by its caller are
/// not in the container's process (checked from the host in /proc/PID/fd
/// against an allow-list), with and without --preserve-fds and LISTEN_FDS;
/// the waiting init of a created container holds no host file either.
#[test]
fn cve_2024_21626_no_host_fd_reaches_the_container() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b.write_config();
    let bundle = b.path().to_str().unwrap().to_string();
    let d = decoy.path().display().to_string();
    let f = decoy.file().display().to_string();
    let leak = format!("3<{d} 4<{f} 5<{d} 6<{f} 7<{d} 8<{d} 9<>{f}");

    // (preserve-fds, LISTEN_FDS, allowed fds)
    let cases: [(&str, Option<&str>, &[i32]); 3] =
        [("0", None, &[0, 1, 2]), ("2", None, &[0, 1, 2, 3, 4]), ("0", Some("2"), &[0, 1, 2, 3, 4])];
    for (preserve, listen, allowed) in cases {
        let id = unique("fds");
        let env: Vec<(&str, &str)> = listen.map(|l| vec![("LISTEN_FDS", l)]).unwrap_or_default();
        let o = husk_with_fds(&b, &env, &leak, &["create", "--bundle", &bundle, "--preserve-fds", preserve, &id]);
        assert!(o.status.success(), "create: {}", stderr(&o));
        let c = Container { bundle: &b, id: id.clone() };
        let pid = c.pid();
        // Created, waiting for start: the init may hold its own pipes and
        // sockets, but no file or directory of the host beyond the ones it
        // will hand to the program.
        for (n, target) in fds_of(pid) {
            let host_file = target.starts_with('/') && !target.starts_with("/dev/");
            assert!(!host_file || allowed.contains(&n), "created init holds fd {n} -> {target}");
        }
        assert!(c.cmd(&["start", &id]).status.success());
        assert!(wait_until(10, || std::fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.ends_with("busybox")).unwrap_or(false)));
        let fds = fds_of(pid);
        let got: BTreeSet<i32> = fds.keys().copied().collect();
        let want: BTreeSet<i32> = allowed.iter().copied().collect();
        assert_eq!(got, want, "preserve={preserve} listen={listen:?}: container fds {fds:?}");
        if listen.is_some() {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
            let env = String::from_utf8_lossy(&env);
            assert!(env.contains("LISTEN_FDS=2\0") && env.contains("LISTEN_PID=1\0"), "{env:?}");
        }
        // A process added by `husk exec` gets only stdio (+ what it asks).
        let pf = b.dir.join(format!("{id}.exec.pid"));
        let o = husk_with_fds(&b, &[], &leak, &["exec", "--detach", "--pid-file", pf.to_str().unwrap(), &id, "sleep", "1000"]);
        assert!(o.status.success(), "exec: {}", stderr(&o));
        let epid: i32 = std::fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
        assert!(wait_until(10, || std::fs::read_link(format!("/proc/{epid}/exe")).map(|p| p.ends_with("busybox")).unwrap_or(false)));
        let efds: BTreeSet<i32> = fds_of(epid).keys().copied().collect();
        assert_eq!(efds, BTreeSet::from([0, 1, 2]), "exec'd process fds: {:?}", fds_of(epid));
    }
    decoy.assert_untouched("fds");
}

// ------------------------------------------------ CVE-2021-30465 (runc)

/// Mount destinations are resolved inside the rootfs: symlinks planted in
/// the rootfs (absolute, and climbing with ../) and a symlink swapped into a
/// shared volume by another container (the runc race, made deterministic:
/// container A replaces the directory that container B mounts on with a
/// symlink to a host directory, then B is created) never mount on the host.
#[test]
fn cve_2021_30465_mount_destination_symlinks_stay_in_rootfs() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    let src = TempDir::new("husk-src");
    std::fs::write(src.join("payload"), "payload").unwrap();

    // Planted in the rootfs.
    let mut b = Bundle::new();
    let inside = plant_inside(&b.rootfs(), decoy.path());
    std::os::unix::fs::symlink(decoy.path(), b.rootfs().join("abs")).unwrap();
    std::os::unix::fs::symlink(climbing(decoy.path()), b.rootfs().join("rel")).unwrap();
    let m = b.config["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/abs", "type": "tmpfs", "source": "tmpfs"}));
    m.push(json!({"destination": "/rel/sub", "type": "bind", "source": src.path, "options": ["rbind", "rw"]}));
    let (code, out, err) = run(sh(
        &mut b,
        "touch /abs/x /rel/sub/x 2>&1; echo pwned > /abs/secret; echo pwned > /rel/sub/keep; grep -c . /proc/self/mountinfo",
    ));
    assert_eq!(code, 0, "{out} {err}");
    decoy.assert_untouched("planted mount destinations");
    // The bind landed inside the rootfs (its mount point was made there).
    assert!(inside.is_dir());

    // Swapped by another container through a shared volume.
    let vol = TempDir::new("husk-vol");
    std::fs::create_dir(vol.join("a")).unwrap();
    std::fs::create_dir(vol.join("b")).unwrap();
    let mut a = Bundle::new();
    a.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/vol", "type": "bind", "source": vol.path, "options": ["rbind", "rw"]}));
    let script = format!("rm -rf /vol/a /vol/b && ln -s {} /vol/a && ln -s {} /vol/b", decoy.path().display(), climbing(decoy.path()));
    let (code, _, err) = run(sh(&mut a, &script));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(vol.join("a")).unwrap().file_type().is_symlink());
    let mut v = Bundle::new();
    let m = v.config["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/vol", "type": "bind", "source": vol.path, "options": ["rbind", "rw"]}));
    m.push(json!({"destination": "/vol/a", "type": "tmpfs", "source": "tmpfs"}));
    m.push(json!({"destination": "/vol/b/c", "type": "bind", "source": src.path, "options": ["rbind", "rw"]}));
    v.args(&["sh", "-c", "echo pwned > /vol/a/secret; echo pwned > /vol/b/c/keep; true"]);
    v.write_config();
    let id = unique("swap");
    let o = v.create_cmd(&id, &[]);
    if o.status.success() {
        let c = Container { bundle: &v, id: id.clone() };
        assert!(c.cmd(&["start", &id]).status.success());
        assert!(c.wait_status("stopped"));
    } else {
        // Refusing is fine too, as one line and without leftovers.
        assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
        assert_nothing_left(&v, &id);
    }
    drop(v);
    decoy.assert_untouched("mount on a swapped volume dir");
    assert_eq!(std::fs::read_to_string(src.join("payload")).unwrap(), "payload");
}

// ------------------------------------------------ CVE-2025-31133 (runc)

/// maskedPaths bind /dev/null over the masked file. A /dev/null that is a
/// symlink to a host file, planted in the rootfs or swapped in during setup
/// (by a createContainer hook, after the devices are made and before the
/// masks), must never turn a mask into a bind of the host file.
#[test]
fn cve_2025_31133_dev_null_symlink_does_not_redirect_masks() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    let masks = json!(["/etc/hostname", "/etc/passwd", "/proc/kcore"]);

    // Planted in the rootfs (no /dev tmpfs, so the rootfs's /dev is used).
    let mut b = Bundle::new();
    no_dev_tmpfs(&mut b);
    let null = b.rootfs().join("dev/null");
    let _ = std::fs::remove_file(&null);
    std::os::unix::fs::symlink(decoy.file(), &null).unwrap();
    b.config["linux"]["maskedPaths"] = json!(masks);
    let (code, out, err) =
        run(sh(&mut b, "echo pwned > /etc/hostname; echo pwned > /etc/passwd; wc -c < /etc/hostname; ls -l /dev/null | cut -c1"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["0", "c"], "{out}");
    decoy.assert_untouched("planted /dev/null");

    // Swapped during setup: create must refuse, naming /dev/null.
    let mut b = Bundle::new();
    b.args(&["true"]);
    b.config["linux"]["maskedPaths"] = json!(masks);
    let swap = format!("rm -f {r}/dev/null && ln -s {f} {r}/dev/null", r = b.rootfs().display(), f = decoy.file().display());
    b.config["hooks"] = json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", swap]}]});
    assert_create_refused(&b, "/dev/null");
    // A node that is not the null device is refused too.
    b.config["hooks"] = json!({});
    b.config["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}]);
    assert_create_refused(&b, "/dev/null");
    decoy.assert_untouched("swapped /dev/null");
}

// ------------------------------------------------ CVE-2025-52565 (runc)

/// /dev/console for `terminal: true`: a symlink there to a host file,
/// planted in the rootfs or swapped in during setup, is replaced, not
/// followed; the console is the container's own pty.
#[test]
fn cve_2025_52565_dev_console_symlink_is_not_followed() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    for swapped in [false, true] {
        let mut b = Bundle::new();
        let out = out_dir(&mut b);
        if swapped {
            let swap = format!("rm -f {r}/dev/console; ln -s {f} {r}/dev/console", r = b.rootfs().display(), f = decoy.file().display());
            b.config["hooks"] = json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", swap]}]});
        } else {
            no_dev_tmpfs(&mut b);
            b.config["root"]["readonly"] = json!(false);
            let con = b.rootfs().join("dev/console");
            let _ = std::fs::remove_file(&con);
            std::os::unix::fs::symlink(decoy.file(), &con).unwrap();
            // A planted /dev/pts/0 link too (devpts is mounted over it).
            std::fs::create_dir_all(b.rootfs().join("dev/pts")).unwrap();
            let _ = std::os::unix::fs::symlink(decoy.file(), b.rootfs().join("dev/pts/0"));
        }
        sh(&mut b, "echo pwned > /dev/console; stat -c '%F %t' /dev/console > /out/console; readlink /proc/self/fd/0 >> /out/console; tty >> /out/console; echo done >> /out/console");
        b.config["process"]["terminal"] = json!(true);
        b.write_config();
        let sock_path = b.dir.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = listener.accept().ok()?;
            recv_fd(&s)
        });
        let id = unique("console");
        let o = b.create_cmd(&id, &["--console-socket", sock_path.to_str().unwrap()]);
        assert!(o.status.success(), "create: {}", stderr(&o));
        let c = Container { bundle: &b, id: id.clone() };
        let master = t.join().unwrap();
        assert!(master.is_some(), "no pty master received");
        assert!(c.cmd(&["start", &id]).status.success());
        assert!(wait_until(10, || std::fs::read_to_string(out.join("console")).unwrap_or_default().contains("done")));
        let text = std::fs::read_to_string(out.join("console")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // devpts major 136 (0x88): /dev/console is the pty slave.
        assert_eq!(lines[0], "character special file 88", "{text}");
        assert!(lines[1].starts_with("/dev/pts/") && lines[2].starts_with("/dev/pts/"), "{text}");
        drop(c);
        drop(master);
        decoy.assert_untouched(if swapped { "swapped /dev/console" } else { "planted /dev/console" });
    }
}

// ------------------------------------------------------- CVE-2026-41579

/// The rootfs's /dev is a symlink to a host directory (absolute, and
/// climbing with ../), with and without a tmpfs mounted on /dev: device
/// nodes, links, /dev/pts, /dev/shm, /dev/mqueue all land inside the rootfs.
#[test]
fn cve_2026_41579_dev_symlink_to_host_dir() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    for (relative, tmpfs, counterpart) in
        [(false, true, true), (false, false, true), (true, true, true), (true, false, true), (false, true, false), (true, false, false)]
    {
        let mut b = Bundle::new();
        b.config["root"]["readonly"] = json!(false);
        if counterpart {
            plant_inside(&b.rootfs(), decoy.path());
        }
        let dev = b.rootfs().join("dev");
        std::fs::remove_dir_all(&dev).unwrap();
        let target = if relative { climbing(decoy.path()) } else { decoy.path().to_string_lossy().to_string() };
        std::os::unix::fs::symlink(&target, &dev).unwrap();
        if !tmpfs {
            no_dev_tmpfs(&mut b);
        }
        let (code, out, err) = run(sh(&mut b, "echo pwned > /dev/secret; ls -l /dev/null /dev/zero | cut -c1; readlink /dev/fd; true"));
        let what = format!("/dev -> {target} (tmpfs on /dev: {tmpfs}, target made in rootfs: {counterpart})");
        decoy.assert_untouched(&what);
        if !counterpart {
            // A dangling link: refusing is fine, as one line.
            assert!(code == 0 || err.trim_end().lines().count() == 1, "{what}: {err}");
            continue;
        }
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(out.lines().collect::<Vec<_>>(), ["c", "c", "/proc/self/fd"], "{what}: {out}");
        decoy.assert_untouched(&what);
    }
}

// ------------------------------------------------- /proc and /sys links

/// A rootfs whose /proc or /sys is a symlink (to a host dir, absolute or
/// climbing) is refused: nothing is mounted, nothing written, nothing left.
#[test]
fn proc_or_sys_symlink_in_rootfs_is_refused() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    for dir in ["proc", "sys"] {
        for relative in [false, true] {
            let mut b = Bundle::new();
            b.args(&["true"]);
            b.config["linux"]["sysctl"] = json!({"kernel.shmmni": "1234"});
            let p = b.rootfs().join(dir);
            std::fs::remove_dir_all(&p).unwrap();
            let target = if relative { climbing(decoy.path()) } else { decoy.path().to_string_lossy().to_string() };
            std::os::unix::fs::symlink(&target, &p).unwrap();
            assert_create_refused(&b, &format!("/{dir}"));
            decoy.assert_untouched(&format!("/{dir} -> {target}"));
        }
    }
}

// ------------------------------------------------------- linux.devices

/// A linux.devices entry whose parent directory in the rootfs is a symlink
/// to a host directory: the node is made inside the rootfs.
#[test]
fn device_node_parent_symlink_stays_in_rootfs() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    for relative in [false, true] {
        let mut b = Bundle::new();
        let target = if relative { climbing(decoy.path()) } else { decoy.path().to_string_lossy().to_string() };
        no_dev_tmpfs(&mut b);
        b.config["root"]["readonly"] = json!(false);
        let inside = plant_inside(&b.rootfs(), decoy.path());
        std::os::unix::fs::symlink(&target, b.rootfs().join("dev/evil")).unwrap();
        b.config["linux"]["devices"] = json!([
            {"path": "/dev/evil/nullx", "type": "c", "major": 1, "minor": 3, "fileMode": 438},
            {"path": "/dev/evil/secret", "type": "c", "major": 1, "minor": 3, "fileMode": 438}
        ]);
        let (code, out, err) = run(sh(&mut b, "ls -l /dev/evil/nullx | cut -c1"));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), "c", "{out}");
        assert!(std::fs::symlink_metadata(inside.join("nullx")).is_ok(), "node not made inside the rootfs");
        decoy.assert_untouched(&format!("device parent -> {target}"));
    }
}

// ------------------------------------------------ CVE-2025-52881 (runc)

/// Writes to procfs (linux.sysctl, oomScoreAdj) go only through an fd that
/// was checked to be on procfs. Inside a private mount namespace of this
/// test, a directory is bound over /proc/sys/kernel (as a hostile mount
/// would redirect it): the sysctl write is refused and the directory stays
/// untouched. A bundle that mounts a host dir over its own /proc/sys does
/// not redirect the writes either.
#[test]
fn cve_2025_52881_proc_writes_only_to_procfs() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(Command::new("unshare").arg("--version").output().is_ok(), "unshare(1) not installed") {
        return;
    }
    let decoy = Decoy::new();
    let fake = TempDir::new("husk-fakeproc");
    std::fs::write(fake.join("shmmni"), "4096\n").unwrap();
    let fake_before = snapshot(&fake.path);

    let mut b = Bundle::new();
    b.args(&["true"]);
    b.config["linux"]["sysctl"] = json!({"kernel.shmmni": "1234"});
    b.write_config();
    let id = unique("procfs");
    let script = format!(
        "mount --bind {fake} /proc/sys/kernel && exec {husk} --root {root} run --bundle {bundle} {id}",
        fake = fake.path.display(),
        husk = bin("husk").display(),
        root = b.root.display(),
        bundle = b.path().display()
    );
    let o = run_cmd(Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]));
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "sysctl written to a non-procfs file: {err}");
    assert!(err.contains("not on procfs") && err.contains("kernel.shmmni"), "{err}");
    assert_eq!(snapshot(&fake.path), fake_before, "fake /proc/sys/kernel was written");
    assert_nothing_left(&b, &id);
    assert_ne!(std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap().trim(), "1234", "host sysctl changed");

    // The bundle's own mounts over /proc/sys do not redirect the writes.
    let mut b = Bundle::new();
    b.config["linux"]["sysctl"] = json!({"kernel.shmmni": "1234"});
    b.config["process"]["oomScoreAdj"] = json!(123);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc/sys", "type": "bind", "source": decoy.path(), "options": ["rbind", "rw"]}));
    let (code, out, err) = run(sh(&mut b, "cat /proc/self/oom_score_adj; ls /proc/sys"));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("123\n"), "{out}");
    decoy.assert_untouched("bind over the container's /proc/sys");
}

// ------------------------------------------------ issue 13: hardening

/// 13.1: uid/gid 4294967295 is "unchanged" (-1) to setresuid/setresgid: a
/// process asking for it would stay root. In process.user (uid, gid,
/// additionalGids) create refuses it naming the field; `exec --user`
/// refuses it with 255. Nothing runs as root.
#[test]
fn id_4294967295_never_means_root() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["sh", "-c", "id > /out/ran"]);
    let out = out_dir(&mut b);
    for (field, user) in [
        ("process.user.uid", json!({"uid": 4294967295u32, "gid": 1000})),
        ("process.user.gid", json!({"uid": 1000, "gid": 4294967295u32})),
        ("process.user.additionalGids", json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 4294967295u32]})),
    ] {
        b.config["process"]["user"] = user;
        let err = assert_create_refused(&b, field);
        assert!(err.contains("0-2147483647"), "{field}: {err}");
    }
    assert!(!out.join("ran").exists(), "the process ran");
    let mut s = Bundle::new();
    s.args(&["sleep", "1000"]);
    let id = unique("maxid");
    let c = s.create(&id);
    assert!(c.cmd(&["start", &id]).status.success());
    for user in ["4294967295", "0:4294967295", "4294967295:0", "2147483648"] {
        let o = c.cmd(&["exec", "--user", user, &id, "id"]);
        assert_eq!(o.status.code(), Some(255), "--user {user}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "--user {user} ran: {}", stdout(&o));
        assert!(stderr(&o).contains("0-2147483647"), "--user {user}: {}", stderr(&o));
    }
    let o = c.cmd(&["exec", "--user", "1000", "--additional-gids", "4294967295", &id, "id"]);
    assert_eq!(o.status.code(), Some(255), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    // The largest allowed id still works.
    let o = c.cmd(&["exec", "--user", "2147483647:2147483647", &id, "sh", "-c", "id -u; id -g"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "2147483647\n2147483647\n"), "{}", stderr(&o));
}

/// 13.2: `resources.devices` denying everything wins over a node named in
/// linux.devices: /dev/kmsg exists inside but cannot be written, and the
/// host's kernel log gets no line from the container.
#[test]
fn device_cgroup_deny_all_blocks_dev_kmsg() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let marker = unique("husk-kmsg-marker");
    b.config["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
    b.config["linux"]["devices"] = json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420}]);
    let (code, out, err) = run(sh(&mut b, &format!("ls -l /dev/kmsg | cut -c1; echo {marker} > /dev/kmsg && echo written; echo end")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "c\nend\n", "{out} {err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    let dmesg = run_cmd(&mut Command::new("dmesg"));
    if skip_unless(dmesg.status.success(), "cannot read the host's kernel log (dmesg)") {
        return;
    }
    assert!(!stdout(&dmesg).contains(&marker), "the container wrote to the host's kernel log");
}

fn cap_field(status: &str, k: &str) -> u64 {
    let l = status.lines().find(|l| l.starts_with(k)).unwrap_or_else(|| panic!("{k} in {status}"));
    u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

/// 13.3: `exec --cap` adds to bounding, effective and permitted only
/// (CVE-2022-29162: never inheritable or ambient); the init's ambient set
/// holds only capabilities that are also inheritable and permitted.
#[test]
fn added_and_ambient_capabilities_stay_confined() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let chown = json!(["CAP_CHOWN"]);
    b.config["process"]["capabilities"] = json!({"bounding": chown, "effective": chown, "permitted": chown});
    b.args(&["sleep", "1000"]);
    let id = unique("capadd");
    let c = b.create(&id);
    assert!(c.cmd(&["start", &id]).status.success());
    let o = c.cmd(&["exec", "--cap", "CAP_KILL", &id, "cat", "/proc/self/status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st = stdout(&o);
    assert_eq!(cap_field(&st, "CapEff:"), 1 << 5 | 1, "{st}");
    assert_eq!(cap_field(&st, "CapInh:"), 0, "{st}");
    assert_eq!(cap_field(&st, "CapAmb:"), 0, "{st}");
    drop(c);

    // Ambient: KILL is not inheritable, NET_RAW not permitted, CHOWN both.
    let mut b = Bundle::new();
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_CHOWN", "CAP_NET_RAW"],
        "ambient": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]
    });
    let (code, out, err) = run(sh(&mut b, "cat /proc/self/status"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(cap_field(&out, "CapAmb:"), 1, "ambient beyond inheritable & permitted: {out}");
    assert_eq!(cap_field(&out, "CapEff:"), 1 << 5 | 1, "{out}");
}

/// 13.4: with --no-pivot and no seccomp profile (runc's `spec`), the host's
/// mounts must not stay reachable: a fresh procfs in a nested user + pid
/// namespace (which needs a fully visible /proc) is refused.
#[test]
fn no_pivot_leaves_no_unmasked_proc_to_mount() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let plain = TempDir::new("husk-plainspec");
    let o = run_cmd(Command::new(bin("husk")).args(["spec", "--bundle"]).arg(&plain.path));
    assert!(o.status.success(), "{}", stderr(&o));
    b.config = serde_json::from_str(&std::fs::read_to_string(plain.join("config.json")).unwrap()).unwrap();
    // runc's spec has none; say so for a husk whose spec had one.
    b.config["linux"].as_object_mut().unwrap().remove("seccomp");
    sh(&mut b, "unshare -mrpf sh -c 'mount -t proc none /proc && echo mounted'; echo rc=$?");
    b.write_config();
    let o = run_cmd(b.husk().args(["run", "--no-pivot", "--bundle"]).arg(b.path()).arg(unique("nopivot")));
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out} {err}");
    assert!(!out.contains("mounted"), "procfs mounted from a --no-pivot container: {out}");
    assert!(out.contains("rc=1") || out.contains("rc=255"), "{out}");
    assert!(err.contains("ermission denied") || err.contains("not permitted"), "{err}");
}

/// 13.5: `rro` makes a recursive bind read-only all the way down (the
/// submount too); an unknown option on a bind mount is refused; `husk
/// features` lists rro.
#[test]
fn rro_bind_covers_submounts() {
    if skip_unless_root() {
        return;
    }
    let src = TempDir::new("husk-rro");
    std::fs::create_dir(src.join("sub")).unwrap();
    std::fs::write(src.join("top"), "top\n").unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "husk-rro"]).arg(src.join("sub")).status().unwrap();
    assert!(st.success(), "mount a tmpfs under the source");
    std::fs::write(src.join("sub/inner"), "inner\n").unwrap();
    let before = snapshot(&src.path);
    let mut b = Bundle::new();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": src.path, "options": ["rbind", "rro"]}));
    let (code, out, err) = run(sh(
        &mut b,
        "cat /data/top /data/sub/inner; touch /data/x 2>/dev/null || echo top-ro; touch /data/sub/x 2>/dev/null || echo sub-ro; \
         echo pwned >> /data/sub/inner 2>/dev/null || echo inner-ro",
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "top\ninner\ntop-ro\nsub-ro\ninner-ro\n", "{err}");
    assert_eq!(snapshot(&src.path), before, "the host's submount was written");
    assert!(!src.join("sub/x").exists());

    let mut b = Bundle::new();
    b.args(&["true"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": src.path, "options": ["rbind", "rfrobnicate"]}));
    assert_create_refused(&b, "rfrobnicate");
    let o = run_cmd(Command::new(bin("husk")).arg("features"));
    let f: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(f["mountOptions"].as_array().unwrap().contains(&json!("rro")), "{f}");
}

/// 13.6: startContainer hooks run in the container after its seccomp
/// filter is in place (as runc): with mkdir set to KILL, the hook dies of
/// SIGSYS and the run fails naming the hook.
#[test]
fn start_container_hook_runs_under_the_seccomp_filter() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]});
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/hooked"]}]});
    let out = out_dir(&mut b);
    let (code, _, err) = run(sh(&mut b, "echo ran > /out/ran"));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("error running hook"), "{err}");
    assert!(err.to_lowercase().contains("bad system call"), "{err}");
    assert!(!out.join("ran").exists(), "the program ran after a failed startContainer hook");
}

/// 13.7: the state is private: a `--root` husk creates is 0711, the
/// container's directory 0711, config.json and state.json 0600.
#[test]
fn state_files_are_private() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let fresh = b.dir.join("fresh-root");
    b.root = fresh.join("state");
    b.args(&["sleep", "1000"]);
    let id = unique("modes");
    let c = b.create(&id);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&b.root), 0o711, "--root");
    assert_eq!(mode(&b.root.join(&id)), 0o711, "ID/");
    for f in ["config.json", "state.json"] {
        assert_eq!(mode(&b.root.join(&id).join(f)), 0o600, "{f}");
    }
    drop(c);
}

/// 13.8: a tampered state.json whose cgroup names a hierarchy's root must
/// not make `kill --all` signal processes outside the container.
///
/// Safety: the tampered state lives in a second state root that nothing
/// ever deletes through husk, and `kill --all` runs inside a new pid
/// namespace (`unshare -pf --mount-proc`), so that even a husk that trusts
/// the state sees, and could signal, only the processes of that namespace:
/// the shell and a `sleep` standing in for the host's processes.
#[test]
fn tampered_state_cgroup_does_not_reach_the_host() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(Command::new("unshare").arg("--version").output().is_ok(), "unshare(1) not installed") {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = unique("tamper");
    let c = b.create(&id);
    assert!(c.cmd(&["start", &id]).status.success());
    let evil = TempDir::new("husk-tampered");
    let root2 = evil.join("state");
    std::fs::create_dir_all(root2.join(&id)).unwrap();
    for f in ["config.json", "state.json"] {
        std::fs::copy(b.root.join(&id).join(f), root2.join(&id).join(f)).unwrap();
    }
    let p = root2.join(&id).join("state.json");
    let mut st: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let cg = &mut st["cgroup"];
    assert!(cg.is_object(), "no cgroup in the state: {st}");
    for h in cg["hierarchies"].as_array_mut().unwrap() {
        h["dir"] = h["mount"].clone();
    }
    if !cg["unified"].is_null() {
        if let Some(m) = hybrid_mount() {
            cg["unified"] = json!(m);
        }
    }
    std::fs::write(&p, serde_json::to_vec(&st).unwrap()).unwrap();
    let script = format!(
        "sleep 1000 & s=$!; {husk} --root {root} kill --all {id} KILL; echo rc=$?; sleep 0.3; \
         if kill -0 $s 2>/dev/null; then echo alive; else echo killed; fi; kill $s 2>/dev/null; true",
        husk = bin("husk").display(),
        root = root2.display()
    );
    let o = run_cmd(Command::new("unshare").args(["-pf", "--mount-proc", "sh", "-c", &script]));
    let out = stdout(&o);
    assert!(out.contains("alive"), "kill --all with a tampered cgroup signalled a process outside the container: {out} {}", stderr(&o));
    assert!(!out.contains("rc=0"), "kill --all with a tampered cgroup succeeded: {out}");
    assert_eq!(c.status(), "running");
}

fn hybrid_mount() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(sep + 1) == Some(&"cgroup2")).then(|| f[4].to_string())
    })
}

/// 13.9: a linux.devices path is normalised lexically inside the rootfs:
/// `/dev/../../../NAME` is made at the rootfs's /NAME, never outside; a
/// path outside /dev such as /etc/NAME is allowed.
#[test]
fn device_path_dot_dot_is_normalised_into_the_rootfs() {
    if skip_unless_root() {
        return;
    }
    let decoy = Decoy::new();
    let mut b = Bundle::new();
    let name = unique("husk-devnode");
    let escape = format!("/dev/../../../{name}");
    b.config["linux"]["devices"] = json!([
        {"path": escape, "type": "c", "major": 1, "minor": 3, "fileMode": 438},
        {"path": format!("/etc/{name}"), "type": "c", "major": 1, "minor": 5, "fileMode": 438}
    ]);
    let host_spots: Vec<PathBuf> =
        [PathBuf::from("/"), std::env::temp_dir(), b.path().to_path_buf(), b.path().parent().unwrap().to_path_buf()]
            .iter()
            .map(|d| d.join(&name))
            .collect();
    for p in &host_spots {
        assert!(!p.exists(), "{} exists before the test", p.display());
    }
    let (code, out, err) = run(sh(&mut b, &format!("ls -l /{name} /etc/{name} | cut -c1; head -c 2 /etc/{name} | wc -c")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "c\nc\n2\n");
    let m = std::fs::symlink_metadata(b.rootfs().join(&name)).expect("node made at the rootfs's /NAME");
    assert!(m.file_type().is_char_device());
    assert!(std::fs::symlink_metadata(b.rootfs().join("etc").join(&name)).unwrap().file_type().is_char_device());
    for p in &host_spots {
        assert!(std::fs::symlink_metadata(p).is_err(), "device node made on the host at {}", p.display());
    }
    decoy.assert_untouched("devices path with ..");
}
