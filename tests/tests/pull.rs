//! `husk-rootfs pull` against a real registry: Debian's `docker-registry`
//! (distribution 2.8) started on 127.0.0.1 by each test with its own config
//! and storage, once over plain HTTP and once over TLS with htpasswd auth and
//! client certificates (CA and certificates made here with the `openssl`
//! CLI). Images are pushed with `skopeo copy` from OCI layouts built here
//! (including a multi-arch index). What is checked is what the host sees:
//! the pulled tree, the registry's access log, the cache, and no DIR left
//! after a failure.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use husk_tests::{bin, busybox_rootfs, json, run_cmd, skip_unless, skip_unless_root, stderr, stdout, TempDir, Value};

fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd}")]).stdout(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

fn skip_without(tools: &[&str]) -> bool {
    for t in tools {
        if skip_unless(have(t), &format!("{t} not installed (scripts/setup-host.sh installs it)")) {
            return true;
        }
    }
    false
}

fn tool() -> Command {
    Command::new(bin("husk-rootfs"))
}

fn sh(cmd: &mut Command) -> Output {
    let o = run_cmd(cmd);
    assert!(o.status.success(), "{cmd:?}: {}{}", stdout(&o), stderr(&o));
    o
}

fn sha256(b: &[u8]) -> String {
    use std::io::Write as _;
    let mut ch = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut si = ch.stdin.take().unwrap();
    let data = b.to_vec();
    let w = std::thread::spawn(move || si.write_all(&data));
    let out = ch.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

// ---------------------------------------------------------------- registry

/// A `docker-registry serve` child on 127.0.0.1, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    storage: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Tls<'a> {
    cert: &'a Path,
    key: &'a Path,
    client_ca: Option<&'a Path>,
}

impl Registry {
    fn start(t: &TempDir, name: &str, tls: Option<Tls<'_>>, htpasswd: Option<&Path>) -> Registry {
        let dir = t.join(name);
        let storage = dir.join("storage");
        fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: husk-test-secret\n",
            storage.display()
        );
        if let Some(tls) = &tls {
            cfg += &format!("  tls:\n    certificate: {}\n    key: {}\n", tls.cert.display(), tls.key.display());
            if let Some(ca) = tls.client_ca {
                cfg += &format!("    clientcas:\n      - {}\n", ca.display());
            }
        }
        if let Some(h) = htpasswd {
            cfg += &format!("auth:\n  htpasswd:\n    realm: husk-test\n    path: {}\n", h.display());
        }
        fs::write(dir.join("config.yml"), cfg).unwrap();
        let log = dir.join("registry.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(dir.join("registry.err")).unwrap())
            .spawn()
            .expect("docker-registry");
        let r = Registry { child, port, log, storage };
        let up = husk_tests::wait_until(20, || TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(up, "registry did not start: {}", fs::read_to_string(dir.join("registry.err")).unwrap_or_default());
        r
    }
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    /// The access log (distribution writes it to stderr, with the app log).
    fn log_text(&self) -> String {
        let err = self.log.with_file_name("registry.err");
        fs::read_to_string(&self.log).unwrap_or_default() + &fs::read_to_string(err).unwrap_or_default()
    }
    /// How many blob GETs the registry answered so far.
    fn blob_gets(&self) -> usize {
        self.log_text().lines().filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:")).count()
    }
}

// ---------------------------------------------------------------- images

fn put_blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let h = sha256(data);
    let d = layout.join("blobs/sha256");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join(&h), data).unwrap();
    (format!("sha256:{h}"), data.len())
}

/// A layer tar of the files given (GNU tar, root-owned), uncompressed.
fn layer_of(t: &TempDir, files: &[(&str, &[u8])]) -> Vec<u8> {
    let src = t.join(husk_tests::unique("layer"));
    for (n, d) in files {
        let p = src.join(n);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, d).unwrap();
    }
    let o = sh(Command::new("tar")
        .args(["--format=pax", "--owner=0", "--group=0", "--numeric-owner", "--sort=name", "-C"])
        .arg(&src)
        .arg("-cf")
        .arg("-")
        .arg("."));
    fs::remove_dir_all(&src).unwrap();
    o.stdout
}

fn gz(b: &[u8]) -> Vec<u8> {
    let d = std::env::temp_dir().join(husk_tests::unique("husk-pull-gz"));
    fs::write(&d, b).unwrap();
    let o = sh(Command::new("gzip").arg("-n").arg("-c").arg(&d));
    fs::remove_file(&d).unwrap();
    o.stdout
}

/// Writes an image (config + layers, given as (uncompressed tar, gzip?))
/// into `layout`; returns the manifest's descriptor.
fn manifest(layout: &Path, arch: &str, layers: &[(Vec<u8>, bool)], cmd: &[&str]) -> Value {
    let diff_ids: Vec<String> = layers.iter().map(|(t, _)| format!("sha256:{}", sha256(t))).collect();
    let cfg = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux", "config": {"Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .unwrap();
    let (cd, cs) = put_blob(layout, &cfg);
    let ls: Vec<Value> = layers
        .iter()
        .map(|(t, z)| {
            let (d, s) = put_blob(layout, &if *z { gz(t) } else { t.clone() });
            let mt = if *z { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" };
            json!({"mediaType": mt, "digest": d, "size": s})
        })
        .collect();
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": ls
    }))
    .unwrap();
    let (d, s) = put_blob(layout, &m);
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": s,
           "platform": {"architecture": arch, "os": "linux"}})
}

/// index.json of an OCI layout naming `top` as `tag`.
fn layout_index(layout: &Path, mut top: Value, tag: &str) {
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    if let Some(o) = top.as_object_mut() {
        o.remove("platform");
    }
    fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(layout.join("index.json"), serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top]})).unwrap()).unwrap();
}

/// A nested image index (a blob) over `manifests`; returns its descriptor.
fn nested_index(layout: &Path, manifests: Vec<Value>) -> Value {
    let b = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests
    }))
    .unwrap();
    let (d, s) = put_blob(layout, &b);
    json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s})
}

fn skopeo_push(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let mut c = Command::new("skopeo");
    c.args(["--insecure-policy", "copy", "-q", "--all"]).args(extra);
    c.arg(format!("oci:{}:{tag}", layout.display())).arg(format!("docker://{dest}"));
    sh(&mut c);
}

/// The busybox rootfs as one gzip layer plus a small top layer.
fn busy_layers(t: &TempDir) -> Vec<(Vec<u8>, bool)> {
    let packed = t.join(format!("{}.tar", husk_tests::unique("base")));
    sh(tool().arg("pack").arg(busybox_rootfs()).arg(&packed));
    let base = fs::read(&packed).unwrap();
    let top = layer_of(t, &[("etc/motd", b"pulled by husk-rootfs\n")]);
    vec![(base, true), (top, false)]
}

fn pull(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = tool();
    c.arg("pull");
    for a in args {
        c.arg(a);
    }
    // stderr is a file, not a terminal: one progress line per layer.
    run_cmd(&mut c)
}

/// One line of error, naming `want`, and nothing left at `dir` or beside it.
fn assert_failed(o: &Output, want: &str, dir: &Path) {
    assert!(!o.status.success(), "pull should fail ({want}): {}", stdout(o));
    let e = stderr(o);
    let last = e.trim().lines().last().unwrap_or("");
    assert!(last.starts_with("husk-rootfs: ") && last.contains(want), "want {want:?} in: {e}");
    assert_eq!(e.lines().filter(|l| l.starts_with("husk-rootfs:")).count(), 1, "{e}");
    assert!(!dir.exists(), "{} left after a failed pull", dir.display());
    let parent = dir.parent().unwrap();
    for n in fs::read_dir(parent).unwrap().flatten() {
        assert!(!n.file_name().to_string_lossy().contains("husk-tmp"), "staging left: {:?}", n.file_name());
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn pull_from_a_plain_http_registry() {
    if skip_unless_root() || skip_without(&["docker-registry", "skopeo"]) {
        return;
    }
    let t = TempDir::new("husk-pull-plain");
    let reg = Registry::start(&t, "reg", None, None);
    let host = reg.host();
    let plain = ["--dest-tls-verify=false"];

    // busy:v1 (the host's arch), multi:1 (amd64 + arm64 index), armonly:1.
    let l = t.join("busy");
    let m = manifest(&l, host_arch(), &busy_layers(&t), &["/bin/sh"]);
    layout_index(&l, m, "v1");
    skopeo_push(&l, "v1", &format!("{host}/husk/busy:v1"), &plain);
    let l = t.join("multi");
    let amd = manifest(&l, "amd64", &[(layer_of(&t, &[("arch", b"amd64\n")]), true)], &[]);
    let arm = manifest(&l, "arm64", &[(layer_of(&t, &[("arch", b"arm64\n")]), true)], &[]);
    let idx = nested_index(&l, vec![amd, arm]);
    layout_index(&l, idx, "1");
    skopeo_push(&l, "1", &format!("{host}/husk/multi:1"), &plain);
    let l = t.join("armonly");
    let arm = manifest(&l, "arm64", &[(layer_of(&t, &[("arch", b"arm64\n")]), true)], &[]);
    let idx = nested_index(&l, vec![arm]);
    layout_index(&l, idx, "1");
    skopeo_push(&l, "1", &format!("{host}/husk/armonly:1"), &plain);

    let cache = t.join("cache");
    let c: &[&dyn AsRef<std::ffi::OsStr>] = &[&"--plain-http", &"--cache", &cache];

    // By tag.
    let out = t.join("busy.out");
    let before = reg.blob_gets();
    let o = pull(&[&format!("{host}/husk/busy:v1"), &out, c[0], c[1], c[2]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(out.join("etc/motd")).unwrap(), "pulled by husk-rootfs\n");
    assert!(out.join("bin/busybox").is_file());
    assert!(stdout(&o).contains("2 layers"), "{}", stdout(&o));
    assert!(stderr(&o).contains("layer 1/2") && stderr(&o).contains("layer 2/2"), "{}", stderr(&o));
    assert!(reg.blob_gets() >= before + 3, "config and 2 layers fetched:\n{}", reg.log_text());
    // The cache holds complete blobs only.
    assert_eq!(fs::read_dir(cache.join("partial")).unwrap().count(), 0);

    // Again, into the same DIR: nothing downloaded (no blob GET in the
    // registry's log), and the old tree is replaced by the new one.
    fs::write(out.join("stale"), "from before").unwrap();
    let before = reg.blob_gets();
    let o = pull(&[&format!("{host}/husk/busy:v1"), &out, c[0], c[1], c[2]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.blob_gets(), before, "second pull requested blobs:\n{}", reg.log_text());
    assert!(stderr(&o).contains("(cached)"), "{}", stderr(&o));
    assert!(!out.join("stale").exists(), "DIR replaced");
    assert!(out.join("etc/motd").is_file());
    // --quiet: no progress lines.
    let o = pull(&[&format!("{host}/husk/busy:v1"), &out, c[0], c[1], c[2], &"--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");

    // By digest (the manifest's, as the registry computes it).
    let raw =
        sh(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{host}/husk/busy:v1"))).stdout;
    let digest = format!("sha256:{}", sha256(&raw));
    let out2 = t.join("busy-digest.out");
    let o = pull(&[&format!("{host}/husk/busy@{digest}"), &out2, c[0], c[1], c[2]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&digest), "{}", stdout(&o));
    assert!(out2.join("etc/motd").is_file());
    // A digest the registry does not have.
    let out3 = t.join("nodigest.out");
    let o = pull(&[&format!("{host}/husk/busy@sha256:{}", "0".repeat(64)), &out3, c[0], c[1], c[2]]);
    assert_failed(&o, "not found (HTTP 404)", &out3);

    // Platform: the host's by default, --platform picks the other.
    let o = pull(&[&format!("{host}/husk/multi:1"), &t.join("m-host"), c[0], c[1], c[2]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(t.join("m-host/arch")).unwrap(), format!("{}\n", host_arch()));
    let o = pull(&[&format!("{host}/husk/multi:1"), &t.join("m-arm"), c[0], c[1], c[2], &"--platform", &"linux/arm64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(t.join("m-arm/arch")).unwrap(), "arm64\n");
    let o = pull(&[&format!("{host}/husk/multi:1"), &t.join("m-amd"), c[0], c[1], c[2], &"--platform", &"linux/amd64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(t.join("m-amd/arch")).unwrap(), "amd64\n");
    let out4 = t.join("armonly.out");
    let o = pull(&[&format!("{host}/husk/armonly:1"), &out4, c[0], c[1], c[2], &"--platform", &"linux/amd64"]);
    assert_failed(&o, "no image for linux/amd64 (has: linux/arm64)", &out4);

    // Unknown repository, unknown tag.
    let out5 = t.join("nope.out");
    let o = pull(&[&format!("{host}/husk/nope:v1"), &out5, c[0], c[1], c[2]]);
    assert_failed(&o, "not found (HTTP 404)", &out5);
    let o = pull(&[&format!("{host}/husk/busy:v9"), &out5, c[0], c[1], c[2]]);
    assert_failed(&o, "MANIFEST_UNKNOWN", &out5);

    // HTTPS asked of a plain-HTTP registry: a TLS error, nothing left.
    let o = pull(&[&format!("{host}/husk/busy:v1"), &out5, &"--cache", &cache]);
    assert_failed(&o, &host, &out5);
}

#[test]
fn pull_refuses_a_tampered_blob() {
    if skip_unless_root() || skip_without(&["docker-registry", "skopeo"]) {
        return;
    }
    let t = TempDir::new("husk-pull-tamper");
    let reg = Registry::start(&t, "reg", None, None);
    let host = reg.host();
    let l = t.join("img");
    let unique = husk_tests::unique("tamper");
    let layer = layer_of(&t, &[("etc/unique", unique.as_bytes()), ("etc/pad", &[b'x'; 8192])]);
    let m = manifest(&l, host_arch(), &[(layer, false)], &[]);
    layout_index(&l, m, "1");
    skopeo_push(&l, "1", &format!("{host}/husk/tamper:1"), &["--dest-tls-verify=false"]);
    // Same length, other bytes, in the registry's own storage (skopeo
    // compressed the layer on the way: its digest is the manifest's).
    let raw =
        sh(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{host}/husk/tamper:1"))).stdout;
    let man: Value = serde_json::from_slice(&raw).unwrap();
    let hex = man["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let data = reg.storage.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut b = fs::read(&data).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0xff;
    fs::write(&data, &b).unwrap();
    let cache = t.join("cache");
    let out = t.join("out");
    let o = pull(&[&format!("{host}/husk/tamper:1"), &out, &"--plain-http", &"--cache", &cache]);
    assert_failed(&o, "digest mismatch", &out);
    assert!(stderr(&o).contains(&hex), "{}", stderr(&o));
    assert!(!cache.join("blobs/sha256").join(&hex).exists(), "a bad blob entered the cache");
    assert!(!cache.join("partial").join(&hex).exists(), "a bad partial blob was kept");
}

/// A TCP proxy to `upstream` that cuts the first connection whose answer
/// passes `cut_after` bytes (once), so a download breaks mid-layer.
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
}

impl Proxy {
    fn start(upstream: u16, cut_after: u64) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (s2, c2) = (stop.clone(), cuts.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(120);
            while !s2.load(Ordering::SeqCst) && Instant::now() < end {
                let Ok((client, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_r, &mut s_w);
                    let _ = s_w.shutdown(std::net::Shutdown::Write);
                });
                let cuts = c2.clone();
                std::thread::spawn(move || {
                    let (mut s_r, mut c_w) = (server, client);
                    let mut n = 0u64;
                    let mut buf = [0u8; 16384];
                    loop {
                        let k = match s_r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => k,
                        };
                        if cuts.load(Ordering::SeqCst) == 0 && n + k as u64 > cut_after {
                            cuts.fetch_add(1, Ordering::SeqCst);
                            let _ = c_w.shutdown(std::net::Shutdown::Both);
                            let _ = s_r.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        n += k as u64;
                        if c_w.write_all(&buf[..k]).is_err() {
                            break;
                        }
                    }
                    let _ = c_w.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Proxy { port, stop, cuts }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn pull_resumes_a_dropped_download_with_range() {
    if skip_unless_root() || skip_without(&["docker-registry", "skopeo"]) {
        return;
    }
    let t = TempDir::new("husk-pull-resume");
    let reg = Registry::start(&t, "reg", None, None);
    let l = t.join("img");
    // 4 MiB that do not compress: the layer is ~4 MiB on the wire.
    let mut big = vec![0u8; 4 << 20];
    fs::File::open("/dev/urandom").unwrap().read_exact(&mut big).unwrap();
    let layer = layer_of(&t, &[("big", &big)]);
    let m = manifest(&l, host_arch(), &[(layer, false)], &[]);
    layout_index(&l, m, "1");
    skopeo_push(&l, "1", &format!("{}/husk/big:1", reg.host()), &["--dest-tls-verify=false"]);
    let proxy = Proxy::start(reg.port, 1 << 20);
    let out = t.join("out");
    let o = pull(&[&format!("127.0.0.1:{}/husk/big:1", proxy.port), &out, &"--plain-http", &"--cache", &t.join("cache")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "the proxy cut one download");
    assert!(stderr(&o).contains("resuming") && stderr(&o).contains("resumed once"), "{}", stderr(&o));
    // The registry answered a Range request (206) for the rest of the blob.
    assert!(
        reg.log_text().lines().any(|l| l.contains("/blobs/sha256:") && l.contains("\" 206 ")),
        "no 206 in the registry's log:\n{}",
        reg.log_text()
    );
    assert_eq!(fs::read(out.join("big")).unwrap(), big);
}

#[test]
fn pull_from_a_registry_that_is_down() {
    let t = TempDir::new("husk-pull-down");
    let out = t.join("out");
    let start = Instant::now();
    let o = pull(&[&format!("127.0.0.1:{}/husk/busy:v1", free_port()), &out, &"--plain-http", &"--cache", &t.join("cache")]);
    assert_failed(&o, "registry unreachable", &out);
    assert!(start.elapsed() < Duration::from_secs(30), "gave up after {:?}", start.elapsed());
    // A bad reference is a usage error (exit 2), before any network.
    let o = pull(&[&"no-host-here", &out]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

fn openssl(args: &[&str], dir: &Path) {
    sh(Command::new("openssl").args(args).current_dir(dir));
}

#[test]
fn pull_over_tls_with_htpasswd_and_client_certificates() {
    if skip_unless_root() || skip_without(&["docker-registry", "skopeo", "openssl", "htpasswd"]) {
        return;
    }
    let t = TempDir::new("husk-pull-tls");
    let pki = t.join("pki");
    fs::create_dir_all(&pki).unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=husk test CA", "-keyout", "ca.key", "-out", "ca.crt"];
    ca.extend(ec);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(&ca, &pki);
    for (name, cn, ext) in [
        ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "husk-client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let mut req = vec!["req", "-subj"];
        let subj = format!("/CN={cn}");
        let (key, csr, crt, extf) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        req.push(&subj);
        req.extend(["-keyout", &key, "-out", &csr]);
        req.extend(ec);
        openssl(&req, &pki);
        fs::write(pki.join(&extf), format!("basicConstraints=CA:FALSE\n{ext}")).unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-extfile",
                &extf,
            ],
            &pki,
        );
    }
    sh(Command::new("htpasswd").args(["-Bbc"]).arg(t.join("htpasswd")).args(["husk", "s3cret"]));
    let reg = Registry::start(
        &t,
        "reg",
        Some(Tls { cert: &pki.join("server.crt"), key: &pki.join("server.key"), client_ca: Some(&pki.join("ca.crt")) }),
        Some(&t.join("htpasswd")),
    );
    let host = reg.host();
    // skopeo's cert dir: the CA, and the client pair as NAME.cert/NAME.key.
    let certdir = t.join("certs.d");
    fs::create_dir_all(&certdir).unwrap();
    fs::copy(pki.join("ca.crt"), certdir.join("ca.crt")).unwrap();
    fs::copy(pki.join("client.crt"), certdir.join("client.cert")).unwrap();
    fs::copy(pki.join("client.key"), certdir.join("client.key")).unwrap();
    let l = t.join("busy");
    let m = manifest(&l, host_arch(), &busy_layers(&t), &["/bin/sh"]);
    layout_index(&l, m, "v1");
    let cd = format!("--dest-cert-dir={}", certdir.display());
    skopeo_push(&l, "v1", &format!("{host}/husk/busy:v1"), &[&cd, "--dest-creds=husk:s3cret"]);

    let r = format!("{host}/husk/busy:v1");
    let cache = t.join("cache");
    let ca = pki.join("ca.crt");
    let (cert, key) = (pki.join("client.crt"), pki.join("client.key"));
    let tls: [&dyn AsRef<std::ffi::OsStr>; 8] = [&"--cache", &cache, &"--ca", &ca, &"--cert", &cert, &"--key", &key];
    let out = t.join("out");
    // No credentials: 401, one line, a hint, no DIR.
    let mut a: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&r, &out];
    a.extend(tls);
    let o = pull(&a);
    assert_failed(&o, "authentication required (HTTP 401)", &out);
    assert!(stderr(&o).contains("--creds"), "{}", stderr(&o));
    // Wrong password: denied.
    let mut b = a.clone();
    b.extend([&"--creds" as &dyn AsRef<std::ffi::OsStr>, &"husk:wrong"]);
    let o = pull(&b);
    assert_failed(&o, "access denied (HTTP 401)", &out);
    // Without the client certificate: the TLS handshake fails.
    let o = pull(&[&r, &out, &"--cache", &cache, &"--ca", &ca, &"--creds", &"husk:s3cret"]);
    assert_failed(&o, &host, &out);
    // Without our CA: the server's certificate is not trusted.
    let o = pull(&[&r, &out, &"--cache", &cache, &"--cert", &cert, &"--key", &key, &"--creds", &"husk:s3cret"]);
    assert_failed(&o, &host, &out);
    assert!(stderr(&o).to_lowercase().contains("certificate"), "{}", stderr(&o));
    // Right: --creds, then an authfile (and a cached second pull).
    let mut c = a.clone();
    c.extend([&"--creds" as &dyn AsRef<std::ffi::OsStr>, &"husk:s3cret"]);
    let o = pull(&c);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(out.join("etc/motd")).unwrap(), "pulled by husk-rootfs\n");
    let authfile = t.join("auth.json");
    fs::write(&authfile, format!(r#"{{"auths":{{"{host}":{{"auth":"aHVzazpzM2NyZXQ="}}}}}}"#)).unwrap();
    let out2 = t.join("out2");
    let before = reg.blob_gets();
    let mut d: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&r, &out2];
    d.extend(tls);
    d.extend([&"--authfile" as &dyn AsRef<std::ffi::OsStr>, &authfile]);
    let o = pull(&d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.blob_gets(), before, "cached pull fetched blobs");
    assert!(out2.join("bin/busybox").is_file());
    // Plain HTTP asked of a TLS registry: refused, nothing left.
    let out3 = t.join("out3");
    let o = pull(&[&r, &out3, &"--plain-http", &"--cache", &cache, &"--creds", &"husk:s3cret"]);
    assert!(!o.status.success());
    assert!(!out3.exists());
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
fn pulled_image_runs_a_container_with_husk() {
    if skip_unless_root() || skip_without(&["docker-registry", "skopeo"]) {
        return;
    }
    let dir = std::env::var_os("HUSK_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| husk_tests::workspace().join("target/debug"));
    let husk = dir.join("husk");
    if skip_unless(husk.exists(), "husk not built (cargo build -p husk)") {
        return;
    }
    let t = TempDir::new("husk-pull-run");
    let reg = Registry::start(&t, "reg", None, None);
    let l = t.join("busy");
    let m = manifest(&l, host_arch(), &busy_layers(&t), &["/bin/sh"]);
    layout_index(&l, m, "v1");
    skopeo_push(&l, "v1", &format!("{}/husk/busy:v1", reg.host()), &["--dest-tls-verify=false"]);
    let b = t.join("bundle");
    fs::create_dir(&b).unwrap();
    let o = pull(&[&format!("{}/husk/busy:v1", reg.host()), &b.join("rootfs"), &"--plain-http", &"--cache", &t.join("cache")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("image command: [\"/bin/sh\"]"), "{}", stdout(&o));
    sh(tool().arg("bundle").arg(&b).arg("--rootfs").arg(b.join("rootfs")).args([
        "--",
        "sh",
        "-c",
        "cat /etc/motd; echo ran in $(cat /proc/1/comm)",
    ]));
    let ctr = HuskContainer { husk: husk.clone(), root: t.join("state"), id: husk_tests::unique("pull-run") };
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
    assert_ne!(o.status.code(), Some(124), "husk run hung: {}", stderr(&o));
    assert!(o.status.success(), "husk run: {}", stderr(&o));
    assert_eq!(stdout(&o), "pulled by husk-rootfs\nran in sh\n");
}

/// A token-auth front for a plain registry, like Docker Hub's: answers
/// `401 WWW-Authenticate: Bearer realm=…/token,service=…,scope=…` unless the
/// request carries `Bearer TOKEN`; `/token` hands out TOKEN for the right
/// Basic credentials (and records the scope asked); everything else is
/// forwarded, one request per connection.
struct TokenFront {
    port: u16,
    stop: Arc<AtomicBool>,
    scopes: Arc<std::sync::Mutex<Vec<String>>>,
}

impl TokenFront {
    fn start(upstream: u16, basic: &'static str, token: &'static str) -> TokenFront {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let scopes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s2, sc2) = (stop.clone(), scopes.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(120);
            while !s2.load(Ordering::SeqCst) && Instant::now() < end {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                    match c.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => break,
                    }
                }
                let h = String::from_utf8_lossy(&head).to_string();
                let line = h.lines().next().unwrap_or("").to_string();
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let auth = h
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .map(|l| l["authorization:".len()..].trim().to_string())
                    .unwrap_or_default();
                let reply = |c: &mut TcpStream, st: &str, extra: &str, body: &str| {
                    let _ = write!(c, "HTTP/1.1 {st}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                };
                if let Some(q) = path.strip_prefix("/token?") {
                    sc2.lock().unwrap().push(q.to_string());
                    if auth == format!("Basic {basic}") {
                        reply(&mut c, "200 OK", "Content-Type: application/json\r\n", &format!(r#"{{"token":"{token}"}}"#));
                    } else {
                        reply(&mut c, "401 Unauthorized", "", "");
                    }
                    continue;
                }
                if auth != format!("Bearer {token}") {
                    let repo =
                        path.trim_start_matches("/v2/").split("/manifests/").next().unwrap_or("").split("/blobs/").next().unwrap_or("");
                    let chal = format!(
                        "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"husk-test\",scope=\"repository:{repo}:pull\"\r\n"
                    );
                    reply(&mut c, "401 Unauthorized", &chal, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#);
                    continue;
                }
                let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let fwd: String = h
                    .lines()
                    .filter(|l| {
                        let l = l.to_ascii_lowercase();
                        !l.is_empty() && !l.starts_with("authorization:") && !l.starts_with("connection:")
                    })
                    .map(|l| format!("{l}\r\n"))
                    .collect();
                let _ = write!(up, "{fwd}Connection: close\r\n\r\n");
                let _ = std::io::copy(&mut up, &mut c);
            }
        });
        TokenFront { port, stop, scopes }
    }
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn pull_answers_a_bearer_token_challenge() {
    if skip_unless_root() || skip_without(&["docker-registry", "skopeo"]) {
        return;
    }
    let t = TempDir::new("husk-pull-bearer");
    let reg = Registry::start(&t, "reg", None, None);
    let l = t.join("img");
    let m = manifest(&l, host_arch(), &[(layer_of(&t, &[("etc/token", b"bearer\n")]), true)], &[]);
    layout_index(&l, m, "1");
    skopeo_push(&l, "1", &format!("{}/husk/tok:1", reg.host()), &["--dest-tls-verify=false"]);
    // base64("husk:t0ken")
    let front = TokenFront::start(reg.port, "aHVzazp0MGtlbg==", "husk-test-token");
    let r = format!("127.0.0.1:{}/husk/tok:1", front.port);
    let cache = t.join("cache");
    let out = t.join("out");
    // Anonymous: the token server refuses, one line, no DIR.
    let o = pull(&[&r, &out, &"--plain-http", &"--cache", &cache]);
    assert_failed(&o, "token server", &out);
    assert!(stderr(&o).contains("HTTP 401"), "{}", stderr(&o));
    // With credentials: a token for the challenge's scope, then the pull.
    let o = pull(&[&r, &out, &"--plain-http", &"--cache", &cache, &"--creds", &"husk:t0ken"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(out.join("etc/token")).unwrap(), "bearer\n");
    let scopes = front.scopes.lock().unwrap().clone();
    assert!(scopes.iter().any(|q| q.contains("service=husk-test") && q.contains("scope=repository%3Ahusk%2Ftok%3Apull")), "{scopes:?}");
}

/// The arm64 entry of a multi-arch index, pulled with `--platform
/// linux/arm64`, runs as a container service (`husk run` under husk-init)
/// in the QEMU aarch64 guest: cross/qemu/boot.sh with HUSK_QEMU_PULLED,
/// whose `pulled` service prints the image's /etc/motd and the machine.
#[test]
fn pulled_arm64_image_runs_in_the_qemu_aarch64_guest() {
    if skip_unless_root() || skip_without(&["docker-registry", "skopeo", "qemu-system-aarch64"]) {
        return;
    }
    let t = TempDir::new("husk-pull-qemu");
    let tree = t.join("arm64-tree");
    let o = run_cmd(tool().arg("busybox").arg(&tree).args(["--arch", "aarch64"]));
    if skip_unless(o.status.success(), &format!("no arm64 busybox tree: {}", stderr(&o).trim())) {
        return;
    }
    let packed = t.join("arm64.tar");
    sh(tool().arg("pack").arg(&tree).arg(&packed));
    let arm_layers = vec![(fs::read(&packed).unwrap(), true), (layer_of(&t, &[("etc/motd", b"pulled for arm64\n")]), false)];
    let reg = Registry::start(&t, "reg", None, None);
    let l = t.join("multi");
    let amd = manifest(&l, "amd64", &busy_layers(&t), &["/bin/sh"]);
    let arm = manifest(&l, "arm64", &arm_layers, &["/bin/sh"]);
    let idx = nested_index(&l, vec![amd, arm]);
    layout_index(&l, idx, "1");
    skopeo_push(&l, "1", &format!("{}/husk/busy:1", reg.host()), &["--dest-tls-verify=false"]);
    let rootfs = t.join("pulled");
    let o = pull(&[
        &format!("{}/husk/busy:1", reg.host()),
        &rootfs,
        &"--plain-http",
        &"--cache",
        &t.join("cache"),
        &"--platform",
        &"linux/arm64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(rootfs.join("etc/motd")).unwrap(), "pulled for arm64\n");

    let Some(b) = husk_tests::qemu::boot("aarch64", &[], &[("HUSK_QEMU_PULLED", rootfs.as_os_str())]) else {
        return;
    };
    let c = &b.console;
    assert_eq!(b.code, 0, "boot.sh: {}\n{c}", b.out);
    let r = husk_tests::qemu::result(c, "pulled");
    let pairs: Vec<(&str, &str)> = r.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(pairs, [("name", "pulled"), ("rc", "0"), ("machine", "aarch64"), ("motd", "pulled_for_arm64")], "{c}");
    assert!(c.contains("pulled: started"), "{c}");
}
