//! Hostile inputs for `husk-rootfs` (issue 13, items 10–12), each attack
//! tried for real and its result checked from the host: blocks actually
//! allocated on disk (st_blocks), time and peak RSS of the tool (wait4), and
//! whether a host file was opened at all (inotify on it).

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use husk_tests::{bin, json, run_cmd, skip_unless, skip_unless_root, stderr, stdout, TempDir};

fn tool() -> Command {
    Command::new(bin("husk-rootfs"))
}

/// Names in a directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Bytes of disk actually allocated under `p` (st_blocks, like `du`).
fn disk_bytes(p: &Path) -> u64 {
    let m = fs::symlink_metadata(p).unwrap();
    let mut n = m.blocks() * 512;
    if m.is_dir() {
        for e in fs::read_dir(p).unwrap() {
            n += disk_bytes(&e.unwrap().path());
        }
    }
    n
}

/// A child that is SIGKILLed (and reaped) if the test gives up on it.
struct Child {
    pid: i32,
    done: bool,
}
impl Drop for Child {
    fn drop(&mut self) {
        if !self.done {
            // SAFETY: kill/waitpid on our own child's pid.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

struct Measured {
    /// None: still running at the deadline (then killed).
    code: Option<i32>,
    elapsed: Duration,
    maxrss_kib: i64,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with output to files, at most `limit`; reports its exit code,
/// wall time and peak RSS (from wait4's rusage, this child alone).
fn measure(cmd: &mut Command, t: &TempDir, limit: Duration) -> Measured {
    let (o, e) = (t.join(husk_tests::unique("out")), t.join(husk_tests::unique("err")));
    let start = Instant::now();
    // Reaped by wait4 below (for its rusage) or by the guard's kill.
    #[allow(clippy::zombie_processes)]
    let ch = cmd.stdin(Stdio::null()).stdout(fs::File::create(&o).unwrap()).stderr(fs::File::create(&e).unwrap()).spawn().unwrap();
    let mut child = Child { pid: ch.id() as i32, done: false };
    let mut code = None;
    let mut maxrss_kib = 0;
    while start.elapsed() < limit {
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(child.pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == child.pid {
            child.done = true;
            code = Some(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) });
            maxrss_kib = ru.ru_maxrss;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    drop(child);
    Measured {
        code,
        elapsed,
        maxrss_kib,
        stdout: fs::read_to_string(&o).unwrap_or_default(),
        stderr: fs::read_to_string(&e).unwrap_or_default(),
    }
}

// ------------------------------------------- item 10: sparse members

/// A GNU tar holding one sparse file of `size` bytes with a little data at
/// its start, middle and end (GNU tar stores only those blocks).
fn sparse_tar(t: &TempDir, name: &str, size: u64) -> PathBuf {
    let src = t.join(format!("{name}.src"));
    fs::create_dir_all(&src).unwrap();
    let f = fs::File::create(src.join("big")).unwrap();
    f.set_len(size).unwrap();
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"middle", size / 2).unwrap();
    f.write_all_at(b"tail", size - 4).unwrap();
    drop(f);
    let out = t.join(format!("{name}.tar"));
    let o = run_cmd(Command::new("tar").args(["--sparse", "--format=gnu", "-C"]).arg(&src).arg("-cf").arg(&out).arg("big"));
    assert!(o.status.success(), "tar --sparse: {}", stderr(&o));
    fs::remove_dir_all(&src).unwrap();
    out
}

#[test]
fn sparse_member_counts_its_apparent_size_and_keeps_its_holes() {
    let t = TempDir::new("husk-rootfs-sparse");
    // 3 GiB apparent in a ~10 KB archive, against --max-size 1G: refused
    // before a byte is written.
    let bomb = sparse_tar(&t, "bomb", 3 << 30);
    let tar_len = fs::metadata(&bomb).unwrap().len();
    assert!(tar_len < 64 << 10, "the test's tar is {tar_len} bytes: not sparse");
    let before = disk_bytes(&t.path);
    let m = measure(tool().arg("import").arg(&bomb).arg(t.join("out")).args(["--max-size", "1G"]), &t, Duration::from_secs(60));
    assert_eq!(m.code, Some(1), "import of a 3 GiB sparse member under --max-size 1G: {} {}", m.stdout, m.stderr);
    assert!(m.stderr.contains("--max-size") && m.stderr.contains("big"), "{}", m.stderr);
    assert_eq!(m.stderr.trim().lines().count(), 1, "one-line error: {}", m.stderr);
    assert!(m.elapsed < Duration::from_secs(10), "refusal took {:?}", m.elapsed);
    assert!(!t.join("out").exists());
    assert_eq!(names_in(&t.path).iter().filter(|n| n.contains("husk-tmp")).count(), 0, "staging left behind");
    assert!(disk_bytes(&t.path) <= before + (1 << 20), "disk use grew by {}", disk_bytes(&t.path) - before);

    // Within the limit: imported with its holes (a few blocks on disk).
    let ok = sparse_tar(&t, "ok", 1 << 30);
    let o = run_cmd(tool().arg("import").arg(&ok).arg(t.join("tree")).args(["--max-size", "2G"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let big = t.join("tree/big");
    let md = fs::metadata(&big).unwrap();
    assert_eq!(md.len(), 1 << 30, "apparent size");
    assert!(md.blocks() * 512 <= 1 << 20, "{} bytes allocated for a sparse file with 14 bytes of data", md.blocks() * 512);
    let f = fs::File::open(&big).unwrap();
    let mut b = [0u8; 6];
    f.read_exact_at(&mut b[..4], 0).unwrap();
    assert_eq!(&b[..4], b"head");
    f.read_exact_at(&mut b, (1 << 30) / 2).unwrap();
    assert_eq!(&b, b"middle");
    f.read_exact_at(&mut b[..4], (1 << 30) - 4).unwrap();
    assert_eq!(&b[..4], b"tail");
    f.read_exact_at(&mut b[..4], 4096 * 3).unwrap();
    assert_eq!(&b[..4], [0; 4], "a hole reads as zeros");
}

#[test]
fn plain_member_larger_than_the_limit_is_refused_before_writing() {
    // A member whose header claims 1 TiB (the data is not even there):
    // refused from the header alone.
    let t = TempDir::new("husk-rootfs-bigmember");
    let mut h = [0u8; 512];
    h[..4].copy_from_slice(b"huge");
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    // GNU base-256 size field: 0x80, then the size big-endian.
    h[124] = 0x80;
    h[128..136].copy_from_slice(&(1u64 << 40).to_be_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut data = h.to_vec();
    data.extend(std::iter::repeat_n(0u8, 1 << 20));
    // gzip'ed, as a layer would be (and so it is not indexed as a tar).
    fs::write(t.join("huge.tar.gz"), pipe(Command::new("gzip").arg("-c"), &data)).unwrap();
    let o = run_cmd(tool().arg("import").arg(t.join("huge.tar.gz")).arg(t.join("out")));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--max-size"), "{}", stderr(&o));
    assert!(!t.join("out").exists());
}

// ------------------------------------------- item 11: check on a hostile rootfs

fn mknod_char(p: &Path, maj: u32, min: u32) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mknod with a valid C string; the node is made inside the test's TempDir.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(maj, min)) };
    assert_eq!(r, 0, "mknod {}: {}", p.display(), std::io::Error::last_os_error());
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(r, 0, "mkfifo {}", p.display());
}

fn base_rootfs(t: &TempDir, name: &str) -> PathBuf {
    let r = t.join(name);
    for d in ["bin", "etc/ld.so.conf.d", "dev", "usr/bin"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    r
}

const CHECK_LIMIT: Duration = Duration::from_secs(30);
/// Peak RSS allowed for `check` (a debug build is ~ 3 MiB).
const CHECK_RSS_KIB: i64 = 64 << 10;

#[test]
fn check_refuses_devices_and_fifos_without_hanging_or_growing() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-check-hostile");
    // /bin/sh and /etc/ld.so.conf are links to a /dev/zero of the rootfs's
    // own (a char device 1:5 made inside the TempDir).
    let a = base_rootfs(&t, "zero");
    mknod_char(&a.join("dev/zero"), 1, 5);
    std::os::unix::fs::symlink("/dev/zero", a.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", a.join("etc/ld.so.conf")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", a.join("usr/bin/zero")).unwrap();
    let m = measure(tool().arg("check").arg(&a), &t, CHECK_LIMIT);
    assert!(m.code.is_some(), "check hung on /bin/sh -> /dev/zero (killed after {:?})", m.elapsed);
    assert!(m.maxrss_kib < CHECK_RSS_KIB, "check peaked at {} KiB", m.maxrss_kib);
    assert_eq!(m.code, Some(1), "{} {}", m.stdout, m.stderr);
    assert!(m.stderr.contains("/bin/sh") && m.stderr.contains("character device"), "{}", m.stderr);
    assert_eq!(m.stderr.trim().lines().count(), 1, "{}", m.stderr);
    assert!(m.stdout.contains("devices: /dev/zero (char 1:5)"), "{}", m.stdout);

    // /bin/sh a FIFO; /etc/passwd a FIFO.
    let b = base_rootfs(&t, "fifo");
    mkfifo(&b.join("bin/sh"));
    fs::remove_file(b.join("etc/passwd")).unwrap();
    mkfifo(&b.join("etc/passwd"));
    let m = measure(tool().arg("check").arg(&b), &t, CHECK_LIMIT);
    assert!(m.code.is_some(), "check hung on a FIFO /bin/sh (killed after {:?})", m.elapsed);
    assert_eq!(m.code, Some(1), "{} {}", m.stdout, m.stderr);
    assert!(m.stderr.contains("/bin/sh: is a FIFO"), "{}", m.stderr);
    assert!(m.stderr.contains("/etc/passwd: is a FIFO"), "{}", m.stderr);
    assert!(m.stdout.contains("devices: none"), "{}", m.stdout);

    // A usable static /bin/sh, with a FIFO among the ld.so.conf.d files and
    // the musl path file pointing at /dev/zero: still checked, and ok.
    if skip_unless(Path::new("/bin/busybox").exists(), "/bin/busybox (busybox-static) not installed") {
        return;
    }
    let c = base_rootfs(&t, "conf");
    fs::copy("/bin/busybox", c.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", c.join("bin/sh")).unwrap();
    mknod_char(&c.join("dev/zero"), 1, 5);
    fs::write(c.join("etc/ld.so.conf"), "include /etc/ld.so.conf.d/*.conf\n").unwrap();
    fs::write(c.join("etc/ld.so.conf.d/a.conf"), "/opt/lib\n").unwrap();
    mkfifo(&c.join("etc/ld.so.conf.d/b.conf"));
    let arch = if cfg!(target_arch = "aarch64") { "aarch64" } else { "x86_64" };
    std::os::unix::fs::symlink("/dev/zero", c.join(format!("etc/ld-musl-{arch}.path"))).unwrap();
    // A block device node, listed too (7:0 is a loop device number; it is
    // never opened).
    let bc = std::ffi::CString::new(c.join("dev/loop0").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mknod with a valid C string, inside the TempDir.
    assert_eq!(unsafe { libc::mknod(bc.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0)) }, 0);
    let m = measure(tool().arg("check").arg(&c), &t, CHECK_LIMIT);
    assert!(m.code.is_some(), "check hung on a FIFO in ld.so.conf.d (killed after {:?})", m.elapsed);
    assert!(m.maxrss_kib < CHECK_RSS_KIB, "check peaked at {} KiB", m.maxrss_kib);
    assert_eq!(m.code, Some(0), "{} {}", m.stdout, m.stderr);
    assert!(m.stdout.contains("devices: /dev/loop0 (block 7:0) /dev/zero (char 1:5)"), "{}", m.stdout);
    assert!(m.stdout.ends_with("ok\n"), "{}", m.stdout);
}

// ------------------------------------------- item 12: blobs that are symlinks

fn pipe(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut ch = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut si = ch.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = si.write_all(&data);
    });
    let out = ch.wait_with_output().unwrap();
    w.join().unwrap();
    out.stdout
}

fn sha256(b: &[u8]) -> String {
    String::from_utf8_lossy(&pipe(&mut Command::new("sha256sum"), b)).split_whitespace().next().unwrap().to_string()
}

/// A one-file layer tar (GNU tar from a scratch dir).
fn layer_tar(t: &TempDir, file: &str, content: &[u8]) -> Vec<u8> {
    let src = t.join(husk_tests::unique("layer-src"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join(file), content).unwrap();
    let o = run_cmd(
        Command::new("tar")
            .args(["--format=ustar", "--owner=0", "--group=0", "--numeric-owner", "-C"])
            .arg(&src)
            .arg("-cf")
            .arg("-")
            .arg(file),
    );
    assert!(o.status.success());
    fs::remove_dir_all(&src).unwrap();
    o.stdout
}

/// Writes `blobs` (name, bytes) into `blobdir`, returns their digests.
fn put(blobdir: &Path, data: &[u8]) -> String {
    fs::create_dir_all(blobdir).unwrap();
    let h = sha256(data);
    fs::write(blobdir.join(&h), data).unwrap();
    h
}

/// Blobs of a valid one-layer image written into `blobdir`; returns
/// (index.json bytes, layer hex, manifest hex).
fn image_into(blobdir: &Path, layer: &[u8]) -> (Vec<u8>, String, String) {
    let lh = put(blobdir, layer);
    let cfg = serde_json::to_vec(&json!({
        "architecture": if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{lh}")]}
    }))
    .unwrap();
    let ch = put(blobdir, &cfg);
    let man = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{ch}"), "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{lh}"), "size": layer.len()}]
    }))
    .unwrap();
    let mh = put(blobdir, &man);
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{mh}"), "size": man.len()}]
    }))
    .unwrap();
    (idx, lh, mh)
}

/// An inotify watch on `path` (a file or a directory and its entries) for
/// opens and reads; `events()` says how many happened since.
struct Watch(OwnedFd);
impl Watch {
    fn new(path: &Path) -> Watch {
        // SAFETY: inotify_init1 has no preconditions; the fd is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fd is a fresh inotify fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid inotify fd and C string.
        let w = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS) };
        assert!(w >= 0, "inotify_add_watch {}", path.display());
        Watch(fd)
    }
    fn events(&self) -> usize {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            0
        } else {
            n as usize
        }
    }
}

#[test]
fn oci_layout_blobs_that_are_symlinks_are_refused_unread() {
    let t = TempDir::new("husk-rootfs-blob-symlink");
    // The host's file: a layer that would plant /stolen if it were read.
    let host = t.join("host");
    let layer = layer_tar(&t, "stolen", b"host secret\n");
    let (idx, lh, mh) = image_into(&host.join("blobs/sha256"), &layer);

    // Control: the same layout with real files imports (so the refusals
    // below are about the links, not a broken image).
    let good = t.join("good");
    fs::create_dir_all(good.join("blobs")).unwrap();
    let o = run_cmd(Command::new("cp").arg("-a").arg(host.join("blobs/sha256")).arg(good.join("blobs/")));
    assert!(o.status.success());
    fs::write(good.join("index.json"), &idx).unwrap();
    fs::write(good.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let o = run_cmd(tool().arg("import").arg(&good).arg(t.join("good.out")));
    assert!(o.status.success(), "control import: {}", stderr(&o));
    assert!(t.join("good.out/stolen").exists());

    let hostblobs = host.join("blobs/sha256");
    // (case, what links where)
    type Plant<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Plant)> = vec![
        (
            "layer blob",
            Box::new(|l: &Path| {
                fs::remove_file(l.join("blobs/sha256").join(&lh)).unwrap();
                std::os::unix::fs::symlink(hostblobs.join(&lh), l.join("blobs/sha256").join(&lh)).unwrap();
            }),
        ),
        (
            "layer blob, relative link",
            Box::new(|l: &Path| {
                fs::remove_file(l.join("blobs/sha256").join(&lh)).unwrap();
                std::os::unix::fs::symlink(format!("../../../host/blobs/sha256/{lh}"), l.join("blobs/sha256").join(&lh)).unwrap();
            }),
        ),
        (
            "manifest blob",
            Box::new(|l: &Path| {
                fs::remove_file(l.join("blobs/sha256").join(&mh)).unwrap();
                std::os::unix::fs::symlink(hostblobs.join(&mh), l.join("blobs/sha256").join(&mh)).unwrap();
            }),
        ),
        (
            "blobs/sha256 directory",
            Box::new(|l: &Path| {
                fs::remove_dir_all(l.join("blobs/sha256")).unwrap();
                std::os::unix::fs::symlink(&hostblobs, l.join("blobs/sha256")).unwrap();
            }),
        ),
        (
            "blobs directory",
            Box::new(|l: &Path| {
                fs::remove_dir_all(l.join("blobs")).unwrap();
                std::os::unix::fs::symlink(host.join("blobs"), l.join("blobs")).unwrap();
            }),
        ),
    ];
    for (i, (case, plant)) in cases.iter().enumerate() {
        let l = t.join(format!("layout{i}"));
        let o = run_cmd(Command::new("cp").arg("-a").arg(&good).arg(&l));
        assert!(o.status.success());
        plant(&l);
        let watch_blob = Watch::new(&hostblobs.join(&lh));
        let watch_dir = Watch::new(&hostblobs);
        let out = t.join(format!("out{i}"));
        let o = run_cmd(tool().arg("import").arg(&l).arg(&out));
        assert!(!o.status.success(), "{case}: a symlinked blob was imported: {}", stdout(&o));
        assert!(stderr(&o).contains("symlink"), "{case}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{case}: {}", stderr(&o));
        assert!(!out.exists(), "{case}: DIR left");
        assert_eq!(watch_blob.events(), 0, "{case}: the host's layer file was opened");
        assert_eq!(watch_dir.events(), 0, "{case}: the host's blob directory was opened");
    }
    // A FIFO as a blob: refused, not waited on.
    let l = t.join("layout-fifo");
    let o = run_cmd(Command::new("cp").arg("-a").arg(&good).arg(&l));
    assert!(o.status.success());
    fs::remove_file(l.join("blobs/sha256").join(&lh)).unwrap();
    mkfifo(&l.join("blobs/sha256").join(&lh));
    let m = measure(tool().arg("import").arg(&l).arg(t.join("out-fifo")), &t, Duration::from_secs(30));
    assert_eq!(m.code, Some(1), "FIFO blob: {} {}", m.stdout, m.stderr);
    assert!(m.stderr.contains("not a regular file"), "{}", m.stderr);
}
