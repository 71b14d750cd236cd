//! Shared helpers for husk's end-to-end tests.
//!
//! The tests run real containers as root. Every helper that creates something
//! (a bundle, a container, a state root) returns a guard that removes it on
//! drop, so a failing assertion still cleans up.
//!
//! Binaries are taken from `HUSK_BIN_DIR` (set by `run-tests.sh` to the musl
//! release build) or else from the workspace's `target/debug`.

pub mod qemu;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub use serde_json::{json, Value};

/// Workspace root (the folder holding the top-level Cargo.toml).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Path of one of husk's binaries (`husk`, `husk-init`, `husk-rootfs`).
pub fn bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("HUSK_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace().join("target/debug"),
    };
    let p = dir.join(name);
    assert!(p.exists(), "{} not found: build it first (cargo build --workspace) or set HUSK_BIN_DIR", p.display());
    p
}

/// Prints why a test is skipped and returns true when it must be.
/// Use as `if skip_unless_root() { return; }`.
pub fn skip_unless_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: this test runs real containers and needs root");
        return true;
    }
    false
}

/// Prints a skip reason and returns true if `cond` is false.
pub fn skip_unless(cond: bool, why: &str) -> bool {
    if !cond {
        eprintln!("SKIP: {why}");
    }
    !cond
}

/// A scratch directory removed (with its mounts detached) on drop.
pub struct TempDir {
    pub path: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test process: `prefix-PID-N`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let base = std::env::var_os("HUSK_TEST_TMP").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
        let path = base.join(unique(prefix));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
    pub fn join<P: AsRef<Path>>(&self, p: P) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        kill_processes_under(&self.path);
        umount_under(&self.path);
        let _ = Command::new("rm").args(["-rf", "--one-file-system"]).arg(&self.path).status();
    }
}

/// Kills every process whose root or cwd lies under `dir`.
pub fn kill_processes_under(dir: &Path) {
    let Ok(rd) = std::fs::read_dir("/proc") else { return };
    let me = std::process::id().to_string();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        for link in ["root", "cwd"] {
            if let Ok(t) = std::fs::read_link(e.path().join(link)) {
                if t.starts_with(dir) {
                    let pid: i32 = name.parse().unwrap();
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    break;
                }
            }
        }
    }
}

/// Mount points at or under `dir` in this process's mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.to_string_lossy().to_string();
    info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| *m == d || m.starts_with(&format!("{d}/"))).map(|s| s.to_string()).collect()
}

fn umount_under(dir: &Path) {
    let mut m = mounts_under(dir);
    m.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for p in m {
        let _ = Command::new("umount").arg("-l").arg(&p).status();
    }
}

/// A busybox rootfs built once per machine by `husk-rootfs busybox` (cached
/// under /var/tmp/husk-tests, rebuilt when the busybox binary changes).
/// Callers must not modify it: copy it with [`Bundle::new`].
pub fn busybox_rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let base = PathBuf::from("/var/tmp/husk-tests");
            std::fs::create_dir_all(&base).unwrap();
            let dir = base.join("rootfs-busybox");
            let lock = std::fs::File::create(base.join(".lock")).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: flock on an fd we own.
            unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
            let stamp = dir.join(".husk-test-stamp");
            let want = format!("{:?}", std::fs::metadata("/bin/busybox").and_then(|m| m.modified()).ok());
            if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
                let _ = std::fs::remove_dir_all(&dir);
                let out = Command::new(bin("husk-rootfs")).arg("busybox").arg(&dir).output().unwrap();
                assert!(out.status.success(), "husk-rootfs busybox failed: {}", String::from_utf8_lossy(&out.stderr));
                std::fs::write(&stamp, want).unwrap();
            }
            drop(lock);
            dir
        })
        .clone()
}

/// Runs a command with its output going to files in `dir` (a detached
/// container inherits husk's stdio: waiting for pipes to close would wait
/// for the container) and returns it (stdin null).
pub fn run_to_files(cmd: &mut Command, dir: &Path) -> Output {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let out = dir.join(format!(".cmd-{n}.out"));
    let err = dir.join(format!(".cmd-{n}.err"));
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .expect("spawn");
    let o = Output { status, stdout: std::fs::read(&out).unwrap_or_default(), stderr: std::fs::read(&err).unwrap_or_default() };
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&err);
    o
}

/// Runs a command and returns its output (stdin null).
pub fn run_cmd(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("spawn")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// An OCI bundle in a temp dir: `rootfs/` copied from the busybox rootfs and a
/// config.json from `husk spec`, editable as JSON before use.
pub struct Bundle {
    pub dir: TempDir,
    pub config: Value,
    /// State root passed as `--root` to every husk command of this bundle.
    pub root: PathBuf,
}

impl Bundle {
    pub fn new() -> Bundle {
        let dir = TempDir::new("husk-bundle");
        let st = Command::new("cp").arg("-a").arg(busybox_rootfs()).arg(dir.join("rootfs")).status().unwrap();
        assert!(st.success());
        // husk's hardened default (Docker's capabilities and seccomp
        // profile, a cgroup namespace): what the tests below assume.
        let o = run_cmd(Command::new(bin("husk")).args(["spec", "--hardened", "--bundle"]).arg(&dir.path));
        assert!(o.status.success(), "husk spec: {}", stderr(&o));
        let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        let root = dir.join("state");
        Bundle { dir, config, root }
    }

    pub fn path(&self) -> &Path {
        &self.dir.path
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Sets process.args and turns the terminal off.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self.config["process"]["terminal"] = json!(false);
        self
    }

    pub fn write_config(&self) {
        std::fs::write(self.dir.join("config.json"), serde_json::to_vec_pretty(&self.config).unwrap()).unwrap();
    }

    /// A `husk --root STATE ARGS…` command.
    pub fn husk(&self) -> Command {
        let mut c = Command::new(bin("husk"));
        c.arg("--root").arg(&self.root);
        c
    }

    /// `husk run --bundle B ID` attached, stdout/stderr captured.
    pub fn run(&self, id: &str) -> Output {
        self.write_config();
        let o = run_cmd(self.husk().arg("run").arg("--bundle").arg(self.path()).arg(id));
        // An attached run leaves a stopped container: remove it.
        let _ = run_cmd(self.husk().args(["delete", "--force", id]));
        o
    }

    /// Creates container `id` (detached from our stdio) and returns a guard
    /// that force-deletes it on drop.
    pub fn create(&self, id: &str) -> Container<'_> {
        self.write_config();
        let o = self.create_cmd(id, &[]);
        assert!(o.status.success(), "create {id}: {}", stderr(&o));
        Container { bundle: self, id: id.to_string() }
    }

    /// Runs `husk create --bundle B EXTRA… ID` with stdout/stderr sent to
    /// files (the container inherits them, so pipes would never close) and
    /// returns them as an Output. Does not register a guard.
    pub fn create_cmd(&self, id: &str, extra: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out = self.dir.join(format!("create-{n}.out"));
        let err = self.dir.join(format!("create-{n}.err"));
        let status = self
            .husk()
            .arg("create")
            .arg("--bundle")
            .arg(self.path())
            .args(extra)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .expect("spawn husk");
        Output { status, stdout: std::fs::read(&out).unwrap_or_default(), stderr: std::fs::read(&err).unwrap_or_default() }
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Force-delete anything still registered under this bundle's root.
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                let _ = run_cmd(self.husk().args(["delete", "--force", &id]));
            }
        }
    }
}

/// A created container, force-deleted on drop.
pub struct Container<'a> {
    pub bundle: &'a Bundle,
    pub id: String,
}

impl Container<'_> {
    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut c = self.bundle.husk();
        c.args(args);
        run_cmd(&mut c)
    }
    pub fn state(&self) -> Value {
        let o = self.cmd(&["state", &self.id]);
        assert!(o.status.success(), "state: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("state JSON")
    }
    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap_or("").to_string()
    }
    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().unwrap_or(0) as i32
    }
    /// Polls `state` until status is `want` (up to ~10 s).
    pub fn wait_status(&self, want: &str) -> bool {
        for _ in 0..200 {
            if self.status() == want {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", &self.id]);
    }
}

/// Polls `f` until it returns true or ~`secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

/// Reads a pty master until the slave side closes (EIO) and returns the
/// text with carriage returns removed.
pub fn read_pty(master: std::os::fd::OwnedFd) -> String {
    use std::io::Read;
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

/// Receives one fd sent with SCM_RIGHTS on a connected unix stream.
pub fn recv_fd(sock: &std::os::unix::net::UnixStream) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = [0u8; 256];
    // u64 elements: the control buffer must be aligned for cmsghdr.
    let mut cmsg = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is a valid empty header; pointers set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
    // SAFETY: msg points at buffers that live through the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return None;
    }
    // SAFETY: CMSG_FIRSTHDR/CMSG_DATA walk the control buffer recvmsg filled.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32);
        Some(std::os::fd::OwnedFd::from_raw_fd(fd))
    }
}
