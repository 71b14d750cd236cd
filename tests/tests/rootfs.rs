//! End-to-end tests of `husk-rootfs`: real archives (hand-built tar, OCI
//! layouts, OCI archives, docker-save archives; buildah/skopeo ones when
//! installed) imported into real directories and compared with the tree they
//! must give; hostile archives refused with nothing written outside DIR;
//! pack, check and bundle on real trees.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use husk_tests::{bin, busybox_rootfs, json, run_cmd, skip_unless, skip_unless_root, stderr, stdout, TempDir, Value};

// ---------------------------------------------------------------- helpers

fn rootfs_tool() -> Command {
    Command::new(bin("husk-rootfs"))
}

fn tool(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = rootfs_tool();
    for a in args {
        c.arg(a);
    }
    run_cmd(&mut c)
}

/// A hand-written ustar writer, so tests can also write entries that
/// well-behaved tar libraries refuse to produce (absolute paths, `..`).
#[derive(Default)]
struct Tar {
    buf: Vec<u8>,
}

#[derive(Clone)]
struct Ent<'a> {
    name: &'a str,
    kind: u8,
    mode: u32,
    uid: u32,
    gid: u32,
    data: &'a [u8],
    link: &'a str,
    dev: (u32, u32),
    mtime: u64,
}

fn ent(name: &str) -> Ent<'_> {
    Ent { name, kind: b'0', mode: 0o644, uid: 0, gid: 0, data: b"", link: "", dev: (0, 0), mtime: 1_600_000_000 }
}
fn file<'a>(name: &'a str, data: &'a [u8]) -> Ent<'a> {
    Ent { data, ..ent(name) }
}
fn dir(name: &str) -> Ent<'_> {
    Ent { kind: b'5', mode: 0o755, ..ent(name) }
}
fn symlink<'a>(name: &'a str, target: &'a str) -> Ent<'a> {
    Ent { kind: b'2', mode: 0o777, link: target, ..ent(name) }
}
fn hardlink<'a>(name: &'a str, target: &'a str) -> Ent<'a> {
    Ent { kind: b'1', link: target, ..ent(name) }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
    field[s.len()] = 0;
}

impl Tar {
    fn header(&mut self, name: &str, kind: u8, size: u64, e: &Ent<'_>) {
        assert!(name.len() <= 100 && e.link.len() <= 100, "test names must fit ustar");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], e.mode as u64);
        octal(&mut h[108..116], e.uid as u64);
        octal(&mut h[116..124], e.gid as u64);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], e.mtime);
        h[156] = kind;
        h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], e.dev.0 as u64);
        octal(&mut h[337..345], e.dev.1 as u64);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        let s = format!("{:06o}\0 ", sum);
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
    }
    fn data(&mut self, d: &[u8]) {
        self.buf.extend_from_slice(d);
        let pad = (512 - d.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0, pad));
    }
    fn add(&mut self, e: Ent<'_>) -> &mut Self {
        self.header(e.name, e.kind, e.data.len() as u64, &e);
        self.data(e.data);
        self
    }
    /// A pax extended header ('x') with the given records, for the next entry.
    fn pax(&mut self, recs: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in recs {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while len != base + len.to_string().len() {
                len = base + len.to_string().len();
            }
            body.extend(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let e = ent("PaxHeaders/x");
        self.header("PaxHeaders/x", b'x', body.len() as u64, &e);
        self.data(&body);
        self
    }
    fn finish(&mut self) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.buf);
        b.extend(std::iter::repeat_n(0, 1024));
        b
    }
}

fn tar_of(entries: Vec<Ent<'_>>) -> Vec<u8> {
    let mut t = Tar::default();
    for e in entries {
        t.add(e);
    }
    t.finish()
}

fn pipe(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut ch = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
    let mut si = ch.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = si.write_all(&data);
    });
    let out = ch.wait_with_output().unwrap();
    w.join().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    out.stdout
}

fn gzip(b: &[u8]) -> Vec<u8> {
    pipe(Command::new("gzip").args(["-n", "-c"]), b)
}

fn sha256(b: &[u8]) -> String {
    let out = pipe(&mut Command::new("sha256sum"), b);
    String::from_utf8_lossy(&out).split_whitespace().next().unwrap().to_string()
}

/// One layer: the bytes as stored and the uncompressed tar's digest.
struct Layer {
    blob: Vec<u8>,
    diff_id: String,
    gz: bool,
}

fn layer(tar: Vec<u8>, gz: bool) -> Layer {
    let diff_id = format!("sha256:{}", sha256(&tar));
    Layer { blob: if gz { gzip(&tar) } else { tar }, diff_id, gz }
}

fn put_blob(layout: &Path, data: &[u8]) -> (String, u64) {
    let h = sha256(data);
    let d = layout.join("blobs/sha256");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join(&h), data).unwrap();
    (format!("sha256:{h}"), data.len() as u64)
}

fn image_config(arch: &str, layers: &[Layer]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()}
    }))
    .unwrap()
}

/// Writes an image manifest (and its config and layers) into an OCI layout;
/// returns the manifest's descriptor.
fn oci_manifest(layout: &Path, arch: &str, layers: &[Layer]) -> Value {
    let (cd, cs) = put_blob(layout, &image_config(arch, layers));
    let mut ls = Vec::new();
    for l in layers {
        let (d, s) = put_blob(layout, &l.blob);
        let mt = if l.gz { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" };
        ls.push(json!({"mediaType": mt, "digest": d, "size": s}));
    }
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": ls
    }))
    .unwrap();
    let (md, ms) = put_blob(layout, &m);
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
           "platform": {"architecture": arch, "os": "linux"}})
}

fn oci_layout(layout: &Path, manifests: Vec<Value>) {
    fs::create_dir_all(layout).unwrap();
    fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(layout.join("index.json"), serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap()).unwrap();
}

/// Every file under `dir` as a tar (names relative), sorted.
fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut files = Vec::new();
    fn rec(base: &Path, rel: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut names: Vec<_> = fs::read_dir(base.join(rel)).unwrap().flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let p = base.join(&r);
            if p.is_dir() {
                rec(base, &r, out);
            } else {
                out.push((r.to_string_lossy().into_owned(), fs::read(&p).unwrap()));
            }
        }
    }
    rec(dir, Path::new(""), &mut files);
    let mut t = Tar::default();
    for (n, d) in &files {
        t.add(file(n, d));
    }
    t.finish()
}

/// A docker-save archive: manifest.json, <id>.json config, <n>/layer.tar.
fn docker_archive(out: &Path, layers: &[Layer]) {
    let cfg = image_config("amd64", layers);
    let cfg_name = format!("{}.json", sha256(&cfg));
    let mut t = Tar::default();
    t.add(file(&cfg_name, &cfg));
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("{:064x}/layer.tar", i + 1);
        t.add(dir(&format!("{:064x}/", i + 1)));
        let data = if l.gz { gunzip(&l.blob) } else { l.blob.clone() };
        t.add(file(&n, &data));
        names.push(n);
    }
    let m = serde_json::to_vec(&json!([{"Config": cfg_name, "RepoTags": ["husk-test:latest"], "Layers": names}])).unwrap();
    t.add(file("manifest.json", &m));
    fs::write(out, t.finish()).unwrap();
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    pipe(Command::new("gzip").args(["-d", "-c"]), b)
}

/// A stable description of a tree: one line per entry (not the root).
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn rec(base: &Path, rel: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(base.join(rel)).unwrap().flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let p = base.join(&r);
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let mode = m.mode() & 0o7777;
            let rs = r.to_string_lossy();
            let line = if ft.is_dir() {
                format!("{rs} d {mode:04o} {}:{}", m.uid(), m.gid())
            } else if ft.is_symlink() {
                format!("{rs} l -> {}", fs::read_link(&p).unwrap().display())
            } else if ft.is_file() {
                let d = fs::read(&p).unwrap();
                format!("{rs} f {mode:04o} {}:{} {:?}", m.uid(), m.gid(), String::from_utf8_lossy(&d))
            } else if ft.is_char_device() {
                format!("{rs} c {mode:04o} {}:{}", m.rdev() >> 8, m.rdev() & 0xff)
            } else if ft.is_fifo() {
                format!("{rs} p {mode:04o}")
            } else {
                format!("{rs} ?")
            };
            out.push(line);
            if ft.is_dir() {
                rec(base, &r, out);
            }
        }
    }
    rec(root, Path::new(""), &mut out);
    out
}

/// Names in `dir` (to prove nothing else appeared there).
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the stated length.
    let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

/// Whether `dir`'s filesystem takes user xattrs.
fn fs_has_user_xattrs(dir: &Path) -> bool {
    let p = dir.join(".xattr-probe");
    fs::write(&p, b"").unwrap();
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new("user.probe").unwrap();
    // SAFETY: valid C strings and a 1-byte value.
    let r = unsafe { libc::setxattr(c.as_ptr(), n.as_ptr(), b"1".as_ptr().cast(), 1, 0) };
    fs::remove_file(&p).unwrap();
    r == 0
}

// ------------------------------------------------- the layered test image

fn layer1() -> Vec<u8> {
    let mut t = Tar::default();
    t.add(Ent { mode: 0o700, ..dir("./") })
        .add(dir("a/"))
        .add(file("a/keep", b"keep\n"))
        .add(file("a/gone", b"gone\n"))
        .add(dir("a/gonedir/"))
        .add(file("a/gonedir/x", b"x"))
        .add(dir("b/"))
        .add(file("b/old", b"old"))
        .add(dir("b/sub/"))
        .add(file("b/sub/deep", b"deep"))
        .add(dir("c/"))
        .add(file("c/inner", b"inner"))
        .add(Ent { mode: 0o640, uid: 1000, gid: 1000, ..file("f", b"data\n") })
        .add(hardlink("hl", "f"))
        .add(symlink("sym", "f"))
        .add(symlink("abs", "/etc/passwd"))
        .add(Ent { kind: b'6', ..ent("p") })
        .add(dir("dev/"))
        .add(Ent { kind: b'3', mode: 0o666, dev: (1, 3), ..ent("dev/null") })
        .add(Ent { mode: 0o4755, ..file("suid", b"x") })
        .pax(&[("SCHILY.xattr.user.test", b"hello")])
        .add(file("xa", b"xattr"))
        .add(Ent { mode: 0o700, mtime: 1_000_000, ..dir("secret/") })
        .add(file("secret/k", b"k"));
    t.finish()
}

fn layer2() -> Vec<u8> {
    tar_of(vec![
        file("a/.wh.gone", b""),
        file("a/.wh.gonedir", b""),
        dir("b/"),
        file("b/.wh..wh..opq", b""),
        file("b/new", b"new"),
        file("c", b"now a file"),
        file("sym", b"replaced"),
        hardlink("hl2", "f"),
        file("newdir/sub/file", b"implicit parents"),
    ])
}

fn layer3() -> Vec<u8> {
    tar_of(vec![file("a/keep", b"keep2\n"), file(".wh.p", b"")])
}

fn three_layers() -> Vec<Layer> {
    vec![layer(layer1(), false), layer(layer2(), true), layer(layer3(), false)]
}

const EXPECTED: &[&str] = &[
    "a d 0755 0:0",
    "a/keep f 0644 0:0 \"keep2\\n\"",
    "abs l -> /etc/passwd",
    "b d 0755 0:0",
    "b/new f 0644 0:0 \"new\"",
    "c f 0644 0:0 \"now a file\"",
    "dev d 0755 0:0",
    "dev/null c 0666 1:3",
    "f f 0640 1000:1000 \"data\\n\"",
    "hl f 0640 1000:1000 \"data\\n\"",
    "hl2 f 0640 1000:1000 \"data\\n\"",
    "newdir d 0755 0:0",
    "newdir/sub d 0755 0:0",
    "newdir/sub/file f 0644 0:0 \"implicit parents\"",
    "secret d 0700 0:0",
    "secret/k f 0644 0:0 \"k\"",
    "suid f 4755 0:0 \"x\"",
    "sym f 0644 0:0 \"replaced\"",
    "xa f 0644 0:0 \"xattr\"",
];

/// Asserts the flattened three-layer image, including what a listing
/// cannot show: hard links share an inode, mtimes and xattrs survive.
fn assert_three_layers(root: &Path) {
    assert_eq!(listing(root), EXPECTED, "flattened tree of {}", root.display());
    let m = fs::metadata(root).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o755, "DIR itself is 0755");
    let f = fs::metadata(root.join("f")).unwrap();
    assert_eq!(f.nlink(), 3, "f, hl and hl2 are one inode");
    assert_eq!(fs::metadata(root.join("hl")).unwrap().ino(), f.ino());
    assert_eq!(fs::metadata(root.join("hl2")).unwrap().ino(), f.ino());
    assert_eq!(f.mtime(), 1_600_000_000);
    assert_eq!(fs::metadata(root.join("secret")).unwrap().mtime(), 1_000_000, "dir mtime set after its children");
    assert_eq!(fs::symlink_metadata(root.join("abs")).unwrap().mtime(), 1_600_000_000);
    if fs_has_user_xattrs(root.parent().unwrap()) {
        assert_eq!(xattr(&root.join("xa"), "user.test").as_deref(), Some(&b"hello"[..]));
    } else {
        eprintln!("SKIP: xattr part: filesystem has no user xattrs");
    }
}

/// No staging directories left beside DEST.
fn assert_no_staging(parent: &Path) {
    let left: Vec<String> = names_in(parent).into_iter().filter(|n| n.contains("husk-tmp")).collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

// ---------------------------------------------------------------- busybox

#[test]
fn busybox_builds_a_minimal_rootfs() {
    if skip_unless(Path::new("/bin/busybox").exists(), "busybox-static not installed") {
        return;
    }
    let t = TempDir::new("husk-rootfs-bb");
    let d = t.join("rootfs");
    let o = tool(&[&"busybox", &d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::metadata(&d).unwrap().mode() & 0o7777, 0o755);
    let bb = fs::symlink_metadata(d.join("bin/busybox")).unwrap();
    assert!(bb.is_file() && bb.mode() & 0o111 != 0);
    // Every applet of --list-full is a link that resolves to /bin/busybox.
    let list = run_cmd(Command::new(d.join("bin/busybox")).arg("--list-full"));
    let applets: Vec<String> = stdout(&list).lines().map(|s| s.trim_start_matches('/').to_string()).collect();
    assert!(applets.len() > 100, "busybox lists {} applets", applets.len());
    for a in applets.iter().filter(|a| *a != "bin/busybox") {
        let p = d.join(a);
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_symlink(), "{a} is a symlink");
        assert_eq!(fs::metadata(&p).unwrap().ino(), bb.ino(), "{a} resolves to bin/busybox");
    }
    let passwd = fs::read_to_string(d.join("etc/passwd")).unwrap();
    for who in ["root:x:0:0:", "nobody:x:65534:65534:", ":x:1000:1000:"] {
        assert!(passwd.contains(who), "passwd has {who}: {passwd}");
    }
    assert!(fs::read_to_string(d.join("etc/group")).unwrap().contains(":x:1000:"));
    assert!(!fs::read_to_string(d.join("etc/hostname")).unwrap().trim().is_empty());
    for (p, mode) in [("proc", None), ("sys", None), ("dev", None), ("tmp", Some(0o1777)), ("root", None), ("run", None)] {
        let m = fs::symlink_metadata(d.join(p)).unwrap();
        assert!(m.is_dir(), "{p} is a dir");
        assert!(names_in(&d.join(p)).is_empty(), "{p} is empty");
        if let Some(mode) = mode {
            assert_eq!(m.mode() & 0o7777, mode, "{p} mode");
        }
    }
    assert_no_staging(&t.path);
    // It runs: a shell inside it via chroot.
    if !skip_unless_root() {
        let o = run_cmd(Command::new("chroot").arg(&d).args(["/bin/sh", "-c", "echo hi from $(id -u)"]));
        assert_eq!(stdout(&o).trim(), "hi from 0", "{}", stderr(&o));
    }
}

#[test]
fn busybox_refuses_bad_input_and_leaves_nothing() {
    let t = TempDir::new("husk-rootfs-bbbad");
    // Destination not empty.
    let d = t.join("full");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("x"), b"x").unwrap();
    let o = tool(&[&"busybox", &d]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "one line: {}", stderr(&o));
    assert_eq!(names_in(&d), ["x"]);
    // A --busybox that is not an ELF binary.
    let fake = t.join("fake-busybox");
    fs::write(&fake, b"#!/bin/sh\necho bin/sh\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let o = tool(&[&"busybox", &t.join("out"), &"--busybox", &fake]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not an ELF"), "{}", stderr(&o));
    // A dynamic binary is refused too (busybox must be static).
    let o = tool(&[&"busybox", &t.join("out"), &"--busybox", &"/bin/ls"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("dynamic"), "{}", stderr(&o));
    // Wrong arch for --arch.
    if Path::new("/bin/busybox").exists() {
        let o = tool(&[&"busybox", &t.join("out"), &"--arch", &"aarch64", &"--busybox", &"/bin/busybox"]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("not aarch64"), "{}", stderr(&o));
    }
    assert_eq!(names_in(&t.path), ["fake-busybox", "full"]);
}

#[test]
fn busybox_for_aarch64() {
    if skip_unless_root() {
        return;
    }
    let qemu = Path::new("/usr/bin/qemu-aarch64-static");
    if skip_unless(qemu.exists(), "qemu-aarch64-static not installed") {
        return;
    }
    let t = TempDir::new("husk-rootfs-arm");
    let d = t.join("rootfs");
    let o = tool(&[&"busybox", &d, &"--arch", &"aarch64"]);
    if !o.status.success() && stderr(&o).contains("apt-get") {
        eprintln!("SKIP: cannot fetch busybox-static:arm64: {}", stderr(&o).trim());
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let head = fs::read(d.join("bin/busybox")).unwrap();
    assert_eq!(u16::from_le_bytes([head[18], head[19]]), 183, "EM_AARCH64");
    let o = run_cmd(Command::new(qemu).arg(d.join("bin/busybox")).args(["echo", "arm says hi"]));
    assert_eq!(stdout(&o).trim(), "arm says hi");
    assert!(fs::symlink_metadata(d.join("bin/sh")).unwrap().file_type().is_symlink());
    let o = tool(&[&"check", &d, &"--arch", &"aarch64"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

// ---------------------------------------------------------------- import

#[test]
fn import_oci_layout_flattens_whiteouts_opaques_and_links() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-oci");
    let layout = t.join("layout");
    let m = oci_manifest(&layout, "amd64", &three_layers());
    oci_layout(&layout, vec![m]);
    let out = t.join("flat");
    let o = tool(&[&"import", &layout, &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 layers"), "{}", stdout(&o));
    assert_three_layers(&out);
    assert_no_staging(&t.path);
}

#[test]
fn import_oci_archive_and_docker_archive_give_the_same_tree() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-arch");
    let layout = t.join("layout");
    let m = oci_manifest(&layout, "amd64", &three_layers());
    oci_layout(&layout, vec![m]);
    let oci_tar = t.join("image-oci.tar");
    fs::write(&oci_tar, tar_dir(&layout)).unwrap();
    let o = tool(&[&"import", &oci_tar, &t.join("from-oci")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("OCI archive"), "{}", stdout(&o));
    assert_three_layers(&t.join("from-oci"));

    // Compressed, the same archive is refused with a hint, not unpacked as a rootfs.
    let oci_gz = t.join("image-oci.tar.gz");
    fs::write(&oci_gz, gzip(&fs::read(&oci_tar).unwrap())).unwrap();
    let o = tool(&[&"import", &oci_gz, &t.join("from-oci-gz")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("decompress it first"), "{}", stderr(&o));
    assert!(!t.join("from-oci-gz").exists());

    let dock = t.join("image-docker.tar");
    docker_archive(&dock, &three_layers());
    let o = tool(&[&"import", &dock, &t.join("from-docker")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("docker archive"), "{}", stdout(&o));
    assert_three_layers(&t.join("from-docker"));
}

#[test]
fn import_plain_tarball_round_trips_pack() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-plain");
    let src = busybox_rootfs();
    for name in ["rootfs.tar", "rootfs.tar.gz"] {
        let ar = t.join(name);
        let o = tool(&[&"pack", &src, &ar]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = t.join(format!("{name}.d"));
        let o = tool(&[&"import", &ar, &out]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("rootfs tarball"), "{}", stdout(&o));
        let mut want = listing(&src);
        want.retain(|l| !l.starts_with(".husk-test-stamp"));
        let mut got = listing(&out);
        got.retain(|l| !l.starts_with(".husk-test-stamp"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn import_picks_the_platform_from_an_index() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-plat");
    let layout = t.join("layout");
    let amd = oci_manifest(&layout, "amd64", &[layer(tar_of(vec![file("arch", b"amd64")]), true)]);
    let arm = oci_manifest(&layout, "arm64", &[layer(tar_of(vec![file("arch", b"arm64")]), true)]);
    oci_layout(&layout, vec![amd, arm.clone()]);
    let o = tool(&[&"import", &layout, &t.join("arm"), &"--platform", &"linux/arm64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(t.join("arm/arch")).unwrap(), "arm64");
    let o = tool(&[&"import", &layout, &t.join("amd"), &"--platform", &"linux/amd64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(t.join("amd/arch")).unwrap(), "amd64");
    // The same two manifests behind a nested image index (as registries ship).
    let nested = t.join("nested");
    let amd = oci_manifest(&nested, "amd64", &[layer(tar_of(vec![file("arch", b"amd64")]), true)]);
    let arm = oci_manifest(&nested, "arm64", &[layer(tar_of(vec![file("arch", b"arm64")]), true)]);
    let inner = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd, arm]
    }))
    .unwrap();
    let (d, s) = put_blob(&nested, &inner);
    oci_layout(&nested, vec![json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s})]);
    let o = tool(&[&"import", &nested, &t.join("nested-arm"), &"--platform", &"linux/arm64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(t.join("nested-arm/arch")).unwrap(), "arm64");
    // An index holding only arm64, asked for amd64: refused, nothing made.
    let only = t.join("only-arm");
    fs::create_dir_all(&only).unwrap();
    let arm_only = oci_manifest(&only, "arm64", &[layer(tar_of(vec![file("arch", b"arm64")]), false)]);
    oci_layout(&only, vec![arm_only]);
    let o = tool(&[&"import", &only, &t.join("none"), &"--platform", &"linux/amd64"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no image for linux/amd64"), "{}", stderr(&o));
    assert!(!t.join("none").exists());
}

#[test]
fn import_digest_mismatch_leaves_no_dir() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-digest");
    // A layer blob altered after the manifest was written (still valid tar).
    let layout = t.join("layout");
    let layers = vec![layer(tar_of(vec![file("a", b"good")]), false)];
    let blob = layers[0].blob.clone();
    let m = oci_manifest(&layout, "amd64", &layers);
    oci_layout(&layout, vec![m]);
    let p = layout.join("blobs/sha256").join(sha256(&blob));
    let bad = String::from_utf8_lossy(&blob).replace("good", "evil");
    fs::write(&p, bad.as_bytes()).unwrap();
    let out = t.join("out");
    let o = tool(&[&"import", &layout, &out]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "one line: {}", stderr(&o));
    assert!(!out.exists(), "no DIR after a digest mismatch");
    assert_no_staging(&t.path);

    // A config blob altered.
    let layout2 = t.join("layout2");
    let layers = vec![layer(tar_of(vec![file("a", b"good")]), true)];
    let cfg = image_config("amd64", &layers);
    let m = oci_manifest(&layout2, "amd64", &layers);
    oci_layout(&layout2, vec![m]);
    let mut cfg2 = cfg.clone();
    cfg2.push(b' ');
    fs::write(layout2.join("blobs/sha256").join(sha256(&cfg)), cfg2).unwrap();
    let o = tool(&[&"import", &layout2, &out]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    assert!(!out.exists());

    // A docker archive whose layer does not match the config's diff_ids.
    let dock = t.join("docker.tar");
    let mut layers = vec![layer(tar_of(vec![file("a", b"good")]), false)];
    layers[0].diff_id = format!("sha256:{}", "0".repeat(64));
    docker_archive(&dock, &layers);
    let o = tool(&[&"import", &dock, &out]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    assert!(!out.exists());
    assert_no_staging(&t.path);
}

/// Imports `layers` (as an OCI layout) and asserts it is refused with
/// `want` in the one-line error, no DEST, and `outside` untouched.
fn assert_refused(t: &TempDir, case: &str, layers: Vec<Vec<u8>>, extra: &[&str], want: &str) {
    let outside = t.join("outside");
    let before = listing(&outside);
    let layout = t.join(format!("layout-{case}"));
    let ls: Vec<Layer> = layers.into_iter().map(|l| layer(l, false)).collect();
    let m = oci_manifest(&layout, "amd64", &ls);
    oci_layout(&layout, vec![m]);
    let dest = t.join(format!("dest-{case}"));
    let mut c = rootfs_tool();
    c.arg("import").arg(&layout).arg(&dest).args(extra);
    let o = run_cmd(&mut c);
    assert!(!o.status.success(), "{case}: hostile archive accepted");
    assert!(stderr(&o).contains(want), "{case}: {}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{case}: one line: {}", stderr(&o));
    assert!(!dest.exists(), "{case}: DEST exists");
    assert_no_staging(&t.path);
    assert_eq!(listing(&outside), before, "{case}: something written outside DIR");
    assert_eq!(fs::metadata(outside.join("secret")).unwrap().nlink(), 1, "{case}: secret got linked");
}

#[test]
fn import_refuses_hostile_archives() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-hostile");
    let outside = t.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    let out_abs = outside.to_string_lossy().to_string();
    let abs_file = format!("{out_abs}/abs");
    let target_secret = format!("{out_abs}/secret");

    assert_refused(&t, "absolute", vec![tar_of(vec![file(&abs_file, b"x")])], &[], "absolute path");
    assert_refused(&t, "dotdot", vec![tar_of(vec![file("../outside/dd", b"x")])], &[], "..");
    assert_refused(&t, "dotdot-mid", vec![tar_of(vec![dir("a/"), file("a/../../outside/dd", b"x")])], &[], "..");
    // Through a symlink written earlier in the same layer (absolute and relative).
    assert_refused(&t, "symlink-abs", vec![tar_of(vec![symlink("evil", &out_abs), file("evil/pwned", b"x")])], &[], "symlink");
    assert_refused(
        &t,
        "symlink-rel",
        vec![tar_of(vec![dir("d/"), symlink("d/up", "../.."), file("d/up/outside/pwned", b"x")])],
        &[],
        "symlink",
    );
    // Through a symlink written by an earlier layer.
    assert_refused(
        &t,
        "symlink-layer",
        vec![tar_of(vec![symlink("evil", &out_abs)]), tar_of(vec![file("evil/pwned", b"x")])],
        &[],
        "symlink",
    );
    // Directory entry and whiteout through a symlink.
    assert_refused(&t, "symlink-dir", vec![tar_of(vec![symlink("evil", &out_abs), dir("evil/newdir/")])], &[], "symlink");
    assert_refused(
        &t,
        "symlink-whiteout",
        vec![tar_of(vec![symlink("evil", &out_abs)]), tar_of(vec![file("evil/.wh.secret", b"")])],
        &[],
        "symlink",
    );
    // Hard links to outside: absolute, `..`, and through a symlink.
    assert_refused(&t, "hardlink-abs", vec![tar_of(vec![hardlink("hl", &target_secret)])], &[], "hard link to outside");
    assert_refused(&t, "hardlink-dotdot", vec![tar_of(vec![hardlink("hl", "../outside/secret")])], &[], "hard link to outside");
    assert_refused(&t, "hardlink-symlink", vec![tar_of(vec![symlink("evil", &out_abs), hardlink("hl", "evil/secret")])], &[], "symlink");
    // Bombs: plain size, and a small gzip that inflates far past --max-size.
    let big = vec![0u8; 3 << 20];
    assert_refused(&t, "size", vec![tar_of(vec![file("big", &big)])], &["--max-size", "1M"], "--max-size");
    let bomb_layout = t.join("layout-gzbomb");
    let zeros = vec![0u8; 64 << 20];
    let bomb = layer(tar_of(vec![file("zeros", &zeros)]), true);
    assert!(bomb.blob.len() < 1 << 20, "the bomb is small compressed");
    let m = oci_manifest(&bomb_layout, "amd64", &[bomb]);
    oci_layout(&bomb_layout, vec![m]);
    let dest = t.join("dest-gzbomb");
    let o = tool(&[&"import", &bomb_layout, &dest, &"--max-size", &"8M"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--max-size"), "{}", stderr(&o));
    assert!(!dest.exists());
    assert_no_staging(&t.path);
}

#[test]
fn import_symlinks_pointing_out_are_kept_but_never_followed() {
    if skip_unless_root() {
        return;
    }
    // A symlink to outside is a valid entry (it resolves inside the
    // container); writing a *file over it* replaces the link, not its target.
    let t = TempDir::new("husk-rootfs-symok");
    let outside = t.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    let target = outside.join("secret").to_string_lossy().to_string();
    let layout = t.join("layout");
    let ls = vec![layer(tar_of(vec![symlink("link", &target)]), false), layer(tar_of(vec![file("link", b"replaced")]), false)];
    let m = oci_manifest(&layout, "amd64", &ls);
    oci_layout(&layout, vec![m]);
    let o = tool(&[&"import", &layout, &t.join("out")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(outside.join("secret")).unwrap(), "secret");
    assert_eq!(listing(&t.join("out")), ["link f 0644 0:0 \"replaced\""]);
}

#[test]
fn import_of_garbage_fails_cleanly() {
    let t = TempDir::new("husk-rootfs-garbage");
    let g = t.join("garbage.bin");
    fs::write(&g, vec![7u8; 4096]).unwrap();
    let o = tool(&[&"import", &g, &t.join("out")]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    assert!(!t.join("out").exists());
    let o = tool(&[&"import", &t.join("missing.tar"), &t.join("out")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.tar"), "{}", stderr(&o));
    assert_eq!(names_in(&t.path), ["garbage.bin"]);
}

// ------------------------------------------- real images (buildah, skopeo)

fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd}")]).stdout(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

#[test]
fn import_images_built_by_buildah() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(have("buildah"), "buildah not installed (apt-get install buildah)") {
        return;
    }
    let t = TempDir::new("husk-rootfs-buildah");
    let storage = t.join("storage");
    let ba = |args: &[&str]| -> Output {
        let mut c = Command::new("buildah");
        c.arg("--root").arg(&storage).arg("--runroot").arg(t.join("run")).arg("--storage-driver").arg("vfs");
        c.args(args);
        run_cmd(&mut c)
    };
    // Layer 1: a busybox rootfs from a tarball.
    let base = t.join("base.tar.gz");
    let o = tool(&[&"pack", &busybox_rootfs(), &base]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ctr = ba(&["from", "scratch"]);
    assert!(ctr.status.success(), "buildah from: {}", stderr(&ctr));
    let ctr = stdout(&ctr).trim().to_string();
    let o = ba(&["add", &ctr, base.to_str().unwrap(), "/"]);
    assert!(o.status.success(), "buildah add: {}", stderr(&o));
    let o = ba(&["commit", "--format", "oci", &ctr, "husk-base"]);
    assert!(o.status.success(), "buildah commit: {}", stderr(&o));
    // Layer 2: delete a file, replace one, empty a directory (opaque).
    let ctr2 = ba(&["from", "husk-base"]);
    let ctr2 = stdout(&ctr2).trim().to_string();
    let mnt = ba(&["mount", &ctr2]);
    assert!(mnt.status.success(), "buildah mount: {}", stderr(&mnt));
    let mnt = PathBuf::from(stdout(&mnt).trim());
    fs::remove_file(mnt.join("etc/hostname")).unwrap();
    fs::write(mnt.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::remove_dir_all(mnt.join("usr/sbin")).unwrap();
    fs::create_dir(mnt.join("usr/sbin")).unwrap();
    fs::write(mnt.join("usr/sbin/only"), "only\n").unwrap();
    let _ = ba(&["umount", &ctr2]);
    let o = ba(&["commit", "--format", "oci", &ctr2, "husk-two"]);
    assert!(o.status.success(), "buildah commit: {}", stderr(&o));
    for (fmt, file) in [("oci-archive", "two-oci.tar"), ("docker-archive", "two-docker.tar")] {
        let dst = t.join(file);
        let o = ba(&["push", "husk-two", &format!("{fmt}:{}", dst.display())]);
        assert!(o.status.success(), "buildah push {fmt}: {}", stderr(&o));
        let out = t.join(format!("{file}.d"));
        let o = tool(&[&"import", &dst, &out]);
        assert!(o.status.success(), "{fmt}: {}", stderr(&o));
        assert!(stdout(&o).contains("2 layers"), "{fmt}: {}", stdout(&o));
        assert!(!out.join("etc/hostname").exists(), "{fmt}: whiteout applied");
        assert_eq!(fs::read_to_string(out.join("etc/passwd")).unwrap(), "root:x:0:0:root:/root:/bin/sh\n");
        assert_eq!(names_in(&out.join("usr/sbin")), ["only"], "{fmt}: usr/sbin emptied");
        assert!(out.join("bin/busybox").is_file());
        let o = tool(&[&"check", &out]);
        assert!(o.status.success(), "{fmt}: check: {}", stderr(&o));
    }
    let _ = ba(&["rm", "--all"]);
    let _ = ba(&["rmi", "--all", "--force"]);
}

#[test]
fn import_image_converted_by_skopeo() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(have("skopeo"), "skopeo not installed (apt-get install skopeo)") {
        return;
    }
    // Our hand-built OCI layout, re-written by a real tool as a docker archive.
    let t = TempDir::new("husk-rootfs-skopeo");
    let layout = t.join("layout");
    let m = oci_manifest(&layout, "amd64", &three_layers());
    oci_layout(&layout, vec![m]);
    let dock = t.join("docker.tar");
    let o = run_cmd(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}", layout.display()),
        &format!("docker-archive:{}:husk/test:latest", dock.display()),
    ]));
    assert!(o.status.success(), "skopeo copy: {}", stderr(&o));
    let out = t.join("out");
    let o = tool(&[&"import", &dock, &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_three_layers(&out);
}

// ---------------------------------------------------------------- pack

#[test]
fn pack_is_reproducible_and_cpio_unpacks() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-pack");
    let src = t.join("src");
    let o = tool(&[
        &"import",
        &{
            let layout = t.join("layout");
            let m = oci_manifest(&layout, "amd64", &three_layers());
            oci_layout(&layout, vec![m]);
            layout
        },
        &src,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for ext in ["tar", "tar.gz", "cpio", "cpio.gz"] {
        let a = t.join(format!("one.{ext}"));
        let b = t.join(format!("two.{ext}"));
        let o = tool(&[&"pack", &src, &a, &"--mtime", &"0"]);
        assert!(o.status.success(), "{}", stderr(&o));
        // Touch every file: with --mtime the archive must not change.
        let o = run_cmd(Command::new("find").arg(&src).args(["-exec", "touch", "-h", "{}", "+"]));
        assert!(o.status.success());
        let o = tool(&[&"pack", &src, &b, &"--mtime", &"0"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap(), "{ext}: archives differ");
    }
    // The tar re-imports to the same tree.
    let o = tool(&[&"import", &t.join("one.tar.gz"), &t.join("back")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&t.join("back")), listing(&src));
    assert_eq!(fs::metadata(t.join("back/hl2")).unwrap().ino(), fs::metadata(t.join("back/f")).unwrap().ino());
    // The cpio is newc and unpacks (busybox cpio) to the same tree.
    let cpio = fs::read(t.join("one.cpio")).unwrap();
    assert_eq!(&cpio[..6], b"070701");
    if skip_unless(Path::new("/bin/busybox").exists(), "busybox not installed: cpio unpack part") {
        return;
    }
    let un = t.join("uncpio");
    fs::create_dir(&un).unwrap();
    let mut c = Command::new("/bin/busybox");
    c.args(["cpio", "-i", "-d", "-m"]).current_dir(&un).stderr(Stdio::null());
    pipe(&mut c, &cpio);
    let mut want = listing(&src);
    // busybox cpio does not restore xattrs or setuid-on-extract differences.
    want.sort();
    let mut got = listing(&un);
    got.sort();
    assert_eq!(got, want);
    assert_eq!(fs::metadata(un.join("hl2")).unwrap().ino(), fs::metadata(un.join("f")).unwrap().ino());
}

#[test]
fn pack_refuses_bad_outputs_and_leaves_nothing() {
    let t = TempDir::new("husk-rootfs-packbad");
    fs::create_dir(t.join("src")).unwrap();
    fs::write(t.join("src/a"), b"a").unwrap();
    let o = tool(&[&"pack", &t.join("src"), &t.join("out.zip")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(".cpio"), "{}", stderr(&o));
    let o = tool(&[&"pack", &t.join("src"), &t.join("src/inside.tar")]);
    assert!(!o.status.success());
    let o = tool(&[&"pack", &t.join("nope"), &t.join("out.tar")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope"));
    assert_eq!(names_in(&t.path), ["src"]);
    assert_eq!(names_in(&t.join("src")), ["a"]);
}

// ---------------------------------------------------------------- check

#[test]
fn check_reports_usable_and_unusable_rootfs() {
    if skip_unless_root() {
        return;
    }
    let t = TempDir::new("husk-rootfs-check");
    let good = busybox_rootfs();
    let o = tool(&[&"check", &good]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("static ELF x86_64") || s.contains("static ELF aarch64"), "{s}");
    assert!(s.contains("files: "), "{s}");
    assert!(s.contains("setuid: none"), "{s}");
    let other = if cfg!(target_arch = "x86_64") { "aarch64" } else { "x86_64" };
    let o = tool(&[&"check", &good, &"--arch", &other]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&format!("not {other}")), "{}", stderr(&o));

    // A copy with a setuid file, no passwd, and a dynamic entrypoint whose
    // loader and libraries are not in the rootfs.
    let bad = t.join("bad");
    assert!(run_cmd(Command::new("cp").arg("-a").arg(&good).arg(&bad)).status.success());
    fs::remove_file(bad.join("etc/passwd")).unwrap();
    fs::copy("/bin/ls", bad.join("bin/dynls")).unwrap();
    fs::set_permissions(bad.join("bin/dynls"), fs::Permissions::from_mode(0o4755)).unwrap();
    let o = tool(&[&"check", &bad, &"--entrypoint", &"/bin/dynls"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("/etc/passwd missing"), "{e}");
    assert!(e.contains("loader") && e.contains("missing"), "{e}");
    assert!(e.contains("libc.so"), "{e}");
    assert!(stdout(&o).contains("setuid: /bin/dynls"), "{}", stdout(&o));
    // An entrypoint found on PATH, and a missing one.
    let o = tool(&[&"check", &good, &"--entrypoint", &"env"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("/usr/bin/env"), "{}", stdout(&o));
    let o = tool(&[&"check", &good, &"--entrypoint", &"no-such-prog"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-prog"));
}

#[test]
fn check_follows_absolute_symlinks_inside_the_rootfs() {
    if skip_unless_root() {
        return;
    }
    // /bin/sh -> /bin/busybox must resolve in the rootfs, not on the host:
    // give the rootfs an entrypoint whose absolute link target exists only
    // on the host.
    let t = TempDir::new("husk-rootfs-checklink");
    let r = t.join("r");
    assert!(run_cmd(Command::new("cp").arg("-a").arg(busybox_rootfs()).arg(&r)).status.success());
    std::os::unix::fs::symlink("/usr/bin/dpkg-query-host-only", r.join("bin/hostonly")).unwrap();
    let o = tool(&[&"check", &r, &"--entrypoint", &"/bin/hostonly"]);
    assert!(!o.status.success(), "a link resolved on the host");
    std::os::unix::fs::symlink("/bin/busybox", r.join("bin/abs-sh")).unwrap();
    let o = tool(&[&"check", &r, &"--entrypoint", &"/bin/abs-sh"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

// ---------------------------------------------------------------- bundle

#[test]
fn bundle_writes_default_config() {
    let t = TempDir::new("husk-rootfs-bundle");
    let rootfs = t.join("b/rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    let o = tool(&[&"bundle", &t.join("b"), &"--rootfs", &rootfs, &"--", &"echo", &"hi there"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: Value = serde_json::from_slice(&fs::read(t.join("b/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["root"]["path"], json!("rootfs"));
    assert_eq!(cfg["process"]["args"], json!(["echo", "hi there"]));
    assert_eq!(cfg["process"]["terminal"], json!(false));
    let ns: Vec<String> = cfg["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
    // Again: config.json exists, refused and untouched.
    let before = fs::read(t.join("b/config.json")).unwrap();
    let o = tool(&[&"bundle", &t.join("b"), &"--rootfs", &rootfs]);
    assert!(!o.status.success());
    assert_eq!(fs::read(t.join("b/config.json")).unwrap(), before);
    // Rootfs outside the bundle: absolute root.path, default args.
    let o = tool(&[&"bundle", &t.join("c"), &"--rootfs", &rootfs]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: Value = serde_json::from_slice(&fs::read(t.join("c/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["root"]["path"], json!(fs::canonicalize(&rootfs).unwrap().to_string_lossy()));
    assert_eq!(cfg["process"]["args"], json!(["sh"]));
    // A missing rootfs: refused, no bundle dir made.
    let o = tool(&[&"bundle", &t.join("d"), &"--rootfs", &t.join("nope")]);
    assert!(!o.status.success());
    assert!(!t.join("d").exists());
}

/// The husk binary, if it has been built.
fn husk_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("HUSK_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| husk_tests::workspace().join("target/debug"));
    let p = dir.join("husk");
    p.exists().then_some(p)
}

fn not_implemented(o: &Output) -> bool {
    let e = stderr(o).to_lowercase();
    ["unknown command", "not implemented", "not yet implemented", "unimplemented", "unrecognized"].iter().any(|s| e.contains(s))
}

#[test]
fn bundle_config_matches_husk_spec() {
    let Some(husk) = husk_bin() else {
        eprintln!("SKIP: husk not built");
        return;
    };
    let t = TempDir::new("husk-rootfs-spec");
    fs::create_dir_all(t.join("ours/rootfs")).unwrap();
    fs::create_dir_all(t.join("theirs")).unwrap();
    let o = run_cmd(Command::new(&husk).args(["spec", "--hardened", "--bundle"]).arg(t.join("theirs")));
    if !o.status.success() {
        if not_implemented(&o) {
            eprintln!("SKIP: husk spec not implemented yet: {}", stderr(&o).trim());
            return;
        }
        panic!("husk spec failed: {}", stderr(&o));
    }
    let o = tool(&[&"bundle", &t.join("ours"), &"--rootfs", &t.join("ours/rootfs")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ours: Value = serde_json::from_slice(&fs::read(t.join("ours/config.json")).unwrap()).unwrap();
    let theirs: Value = serde_json::from_slice(&fs::read(t.join("theirs/config.json")).unwrap()).unwrap();
    let sorted = |v: &Value| -> Vec<String> {
        let mut x: Vec<String> = v.as_array().cloned().unwrap_or_default().iter().map(|e| e.to_string()).collect();
        x.sort();
        x
    };
    let dests = |v: &Value| -> BTreeMap<String, String> {
        v["mounts"].as_array().cloned().unwrap_or_default().iter().map(|m| (m["destination"].to_string(), m["type"].to_string())).collect()
    };
    assert_eq!(sorted(&ours["linux"]["namespaces"]), sorted(&theirs["linux"]["namespaces"]));
    assert_eq!(dests(&ours), dests(&theirs));
    assert_eq!(sorted(&ours["linux"]["maskedPaths"]), sorted(&theirs["linux"]["maskedPaths"]));
    assert_eq!(sorted(&ours["linux"]["readonlyPaths"]), sorted(&theirs["linux"]["readonlyPaths"]));
    assert_eq!(sorted(&ours["process"]["capabilities"]["bounding"]), sorted(&theirs["process"]["capabilities"]["bounding"]));
    assert_eq!(ours["process"]["env"], theirs["process"]["env"]);
    assert_eq!(ours["linux"]["resources"], theirs["linux"]["resources"]);
    assert_eq!(ours["root"]["path"], theirs["root"]["path"]);
}

/// Force-deletes a husk container on drop.
struct HuskContainer {
    husk: PathBuf,
    root: PathBuf,
    id: String,
}
impl Drop for HuskContainer {
    fn drop(&mut self) {
        let _ = run_cmd(Command::new(&self.husk).arg("--root").arg(&self.root).args(["delete", "--force", &self.id]));
    }
}

#[test]
fn imported_rootfs_runs_a_container_with_husk() {
    if skip_unless_root() {
        return;
    }
    let Some(husk) = husk_bin() else {
        eprintln!("SKIP: husk not built");
        return;
    };
    let t = TempDir::new("husk-rootfs-run");
    // busybox rootfs -> image (OCI layout, two layers) -> import -> bundle.
    let packed = t.join("base.tar");
    let o = tool(&[&"pack", &busybox_rootfs(), &packed]);
    assert!(o.status.success(), "{}", stderr(&o));
    let layout = t.join("layout");
    let base = fs::read(&packed).unwrap();
    let top = tar_of(vec![file("etc/motd", b"imported by husk-rootfs\n"), file("etc/.wh.hostname", b"")]);
    let m = oci_manifest(&layout, "amd64", &[layer(base, true), layer(top, false)]);
    oci_layout(&layout, vec![m]);
    let b = t.join("bundle");
    fs::create_dir(&b).unwrap();
    let o = tool(&[&"import", &layout, &b.join("rootfs")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tool(&[
        &"bundle",
        &b,
        &"--rootfs",
        &b.join("rootfs"),
        &"--",
        &"sh",
        &"-c",
        &"cat /etc/motd; test -e /etc/hostname || echo no-hostname",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ctr = HuskContainer { husk: husk.clone(), root: t.join("state"), id: husk_tests::unique("rootfs-run") };
    // `timeout` only guards against a hung run (so the suite ends); it is
    // not a speed assertion.
    let o = run_cmd(
        Command::new("timeout")
            .args(["-k", "5", "120"])
            .arg(&husk)
            .arg("--root")
            .arg(&ctr.root)
            .arg("run")
            .arg("--bundle")
            .arg(&b)
            .arg(&ctr.id),
    );
    assert_ne!(o.status.code(), Some(124), "husk run hung (killed after 120 s): {}", stderr(&o));
    if !o.status.success() && not_implemented(&o) {
        eprintln!("SKIP: husk run not implemented yet: {}", stderr(&o).trim());
        return;
    }
    assert!(o.status.success(), "husk run: {}", stderr(&o));
    assert_eq!(stdout(&o), "imported by husk-rootfs\nno-hostname\n");
}

fn zstd(b: &[u8]) -> Vec<u8> {
    pipe(Command::new("zstd").args(["-q", "-c"]), b)
}

#[test]
fn import_zstd_layers_and_tarballs() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(have("zstd"), "zstd CLI not installed (apt-get install zstd)") {
        return;
    }
    let t = TempDir::new("husk-rootfs-zstd");
    // Layer 2 as two concatenated zstd frames (split mid-tar).
    let l2 = layer2();
    let mut multi = zstd(&l2[..l2.len() / 2 + 7]);
    multi.extend(zstd(&l2[l2.len() / 2 + 7..]));
    let layers = vec![
        layer(layer1(), false),
        Layer { blob: multi, diff_id: format!("sha256:{}", sha256(&l2)), gz: false },
        Layer { blob: zstd(&layer3()), diff_id: format!("sha256:{}", sha256(&layer3())), gz: false },
    ];
    let layout = t.join("layout");
    let m = oci_manifest(&layout, "amd64", &layers);
    oci_layout(&layout, vec![m]);
    let o = tool(&[&"import", &layout, &t.join("out")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_three_layers(&t.join("out"));
    // A plain rootfs .tar.zst.
    let tzst = t.join("rootfs.tar.zst");
    fs::write(&tzst, zstd(&tar_of(vec![dir("etc/"), file("etc/os-release", b"ID=husk\n")]))).unwrap();
    let o = tool(&[&"import", &tzst, &t.join("plain")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&t.join("plain")), ["etc d 0755 0:0", "etc/os-release f 0644 0:0 \"ID=husk\\n\""]);
    // A truncated zstd layer fails and leaves nothing.
    let mut cut = zstd(&layer1());
    cut.truncate(cut.len() / 2);
    let tr = t.join("cut.tar.zst");
    fs::write(&tr, cut).unwrap();
    let o = tool(&[&"import", &tr, &t.join("cut")]);
    assert!(!o.status.success());
    assert!(!t.join("cut").exists());
    assert_no_staging(&t.path);
}

#[test]
fn import_without_root_skips_ownership_and_devices() {
    if skip_unless_root() {
        return;
    }
    if skip_unless(have("setpriv"), "setpriv (util-linux) not installed") {
        return;
    }
    let t = TempDir::new("husk-rootfs-rootless");
    std::os::unix::fs::chown(&t.path, Some(65534), Some(65534)).unwrap();
    let layout = t.join("layout");
    let m = oci_manifest(&layout, "amd64", &three_layers());
    oci_layout(&layout, vec![m]);
    let as_nobody = |args: &[&dyn AsRef<std::ffi::OsStr>]| -> Output {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(bin("husk-rootfs"));
        for a in args {
            c.arg(a);
        }
        run_cmd(&mut c)
    };
    let probe = as_nobody(&[&"--help"]);
    if skip_unless(probe.status.success(), "husk-rootfs binary not reachable by uid 65534") {
        return;
    }
    let out = t.join("out");
    let o = as_nobody(&[&"import", &layout, &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("device nodes skipped"), "{}", stderr(&o));
    assert!(!out.join("dev/null").exists());
    let f = fs::metadata(out.join("f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (65534, 65534));
    assert_eq!(f.nlink(), 3);
    assert_eq!(fs::read_to_string(out.join("b/new")).unwrap(), "new");
    assert!(!out.join("b/old").exists());
}

#[test]
fn import_docker_archive_with_linked_duplicate_layer() {
    if skip_unless_root() {
        return;
    }
    // docker save stores a repeated layer once and symlinks the others to it.
    let t = TempDir::new("husk-rootfs-duplayer");
    let a = tar_of(vec![file("x", b"1")]);
    let b = tar_of(vec![file("x", b"2"), file("y", b"y")]);
    let layers = vec![layer(a.clone(), false), layer(b.clone(), false), layer(a.clone(), false)];
    let cfg = image_config("amd64", &layers);
    let cfg_name = format!("{}.json", sha256(&cfg));
    let mut tw = Tar::default();
    tw.add(file(&cfg_name, &cfg))
        .add(dir("1/"))
        .add(file("1/layer.tar", &a))
        .add(dir("2/"))
        .add(file("2/layer.tar", &b))
        .add(dir("3/"))
        .add(symlink("3/layer.tar", "../1/layer.tar"));
    let m = serde_json::to_vec(&json!([{"Config": cfg_name, "Layers": ["1/layer.tar", "2/layer.tar", "3/layer.tar"]}])).unwrap();
    tw.add(file("manifest.json", &m));
    let ar = t.join("dup.tar");
    fs::write(&ar, tw.finish()).unwrap();
    let o = tool(&[&"import", &ar, &t.join("out")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&t.join("out")), ["x f 0644 0:0 \"1\"", "y f 0644 0:0 \"y\""]);
}

/// A run killed mid-way leaves its `.NAME.husk-tmp-PID` staging sibling
/// (tree or file); the next run of the same NAME removes those whose PID is
/// gone and keeps those of live processes (a concurrent run).
#[test]
fn leftovers_of_killed_runs_are_removed_by_the_next_run() {
    let t = TempDir::new("husk-rootfs-leftovers");
    // A PID that was a process and is no more: a child SIGKILLed and reaped.
    let mut c = Command::new("sleep").arg("100").spawn().unwrap();
    let dead = c.id();
    c.kill().unwrap();
    c.wait().unwrap();
    let live = std::process::id();
    let tar = t.join("in.tar");
    fs::write(&tar, tar_of(vec![file("a", b"A\n")])).unwrap();
    let stale_dir = t.join(format!(".out.husk-tmp-{dead}"));
    fs::create_dir_all(stale_dir.join("half")).unwrap();
    fs::write(stale_dir.join("half/f"), b"partial").unwrap();
    let busy_dir = t.join(format!(".out.husk-tmp-{live}"));
    fs::create_dir(&busy_dir).unwrap();
    let other = t.join(format!(".other.husk-tmp-{dead}"));
    fs::create_dir(&other).unwrap();
    let o = tool(&[&"import", &tar, &t.join("out")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(t.join("out/a")).unwrap(), "A\n");
    assert!(!stale_dir.exists(), "the killed run's staging dir was left");
    assert!(busy_dir.exists(), "a live process's staging dir was removed");
    assert!(other.exists(), "another name's staging dir was removed");
    // pack's temporary file, and a bundle's config.json.
    let stale_file = t.join(format!(".out.tar.husk-tmp-{dead}"));
    fs::write(&stale_file, b"half an archive").unwrap();
    let o = tool(&[&"pack", &t.join("out"), &t.join("out.tar")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale_file.exists() && t.join("out.tar").is_file());
    let b = t.join("bundle");
    fs::create_dir(&b).unwrap();
    let stale_cfg = b.join(format!(".config.json.husk-tmp-{dead}"));
    fs::write(&stale_cfg, b"{").unwrap();
    let o = tool(&[&"bundle", &b, &"--rootfs", &t.join("out")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale_cfg.exists() && b.join("config.json").is_file());
}
