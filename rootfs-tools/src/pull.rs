//! `husk-rootfs pull REF DIR`: resolve an image in a registry (OCI
//! distribution API v2), download its blobs into a content-addressed cache
//! (resuming with HTTP Range, every digest and size checked), and flatten the
//! layers into DIR with the importer, atomically.

use std::fs::{self, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::image::{self, hex, Descriptor, ImageConfig, Index, LayerRef, Manifest, Plan, Store, INDEX_TYPES};
use crate::registry::{self, Client, Reference};
use crate::staging::Staging;

pub struct Opts {
    pub reference: String,
    pub dir: PathBuf,
    pub platform: Option<Arch>,
    pub max_size: u64,
    pub registry: registry::Opts,
    pub cache: PathBuf,
    pub quiet: bool,
}

/// `$HUSK_ROOTFS_CACHE/oci`, by default /var/cache/husk-rootfs/oci.
pub fn default_cache() -> PathBuf {
    std::env::var_os("HUSK_ROOTFS_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/husk-rootfs")).join("oci")
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";
/// Manifests and indexes larger than this are refused (the spec suggests
/// registries accept at least 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;
/// Image configs larger than this are refused.
const MAX_CONFIG: u64 = 16 << 20;

// ---------------------------------------------------------------- progress

enum Mode {
    Quiet,
    /// A terminal: one line redrawn in place.
    Tty,
    /// A pipe or file: one line per blob when it is done.
    Lines,
}

struct Progress {
    mode: Mode,
    label: String,
    total: u64,
    /// Bytes present before this download (a resumed partial file).
    resumed: u64,
    done: u64,
    /// Times the download was resumed after a dropped connection.
    resumes: u32,
    start: Instant,
    drawn: Instant,
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / 1048576.0)
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Tty
        } else {
            Mode::Lines
        };
        Progress { mode, label: String::new(), total: 0, resumed: 0, done: 0, resumes: 0, start: Instant::now(), drawn: Instant::now() }
    }

    fn begin(&mut self, label: String, total: u64, resumed: u64) {
        self.label = label;
        self.total = total;
        self.resumed = resumed;
        self.done = resumed;
        self.resumes = 0;
        self.start = Instant::now();
        self.drawn = Instant::now() - Duration::from_secs(1);
    }

    fn rate(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        format!("{}/s", mib(((self.done - self.resumed) as f64 / secs) as u64))
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        if let Mode::Tty = self.mode {
            if self.drawn.elapsed() >= Duration::from_millis(200) {
                self.drawn = Instant::now();
                eprint!("\r\x1b[K{}: {} / {}, {}", self.label, mib(self.done), mib(self.total), self.rate());
            }
        }
    }

    fn note(&mut self, msg: &str) {
        self.resumes += 1;
        match self.mode {
            Mode::Quiet => {}
            Mode::Tty => eprint!("\r\x1b[K{}: {msg}\n", self.label),
            Mode::Lines => eprintln!("{}: {msg}", self.label),
        }
    }

    fn end(&self, how: &str) {
        let line = match how {
            "cached" => format!("{}: {} (cached)", self.label, mib(self.total)),
            _ => {
                format!(
                    "{}: {} downloaded in {:.1} s, {}{}",
                    self.label,
                    mib(self.done - self.resumed),
                    self.start.elapsed().as_secs_f64(),
                    self.rate(),
                    if self.resumed > 0 { format!(", continued from {} in the cache", mib(self.resumed)) } else { String::new() }
                ) + &match self.resumes {
                    0 => String::new(),
                    1 => ", resumed once".to_string(),
                    n => format!(", resumed {n} times"),
                }
            }
        };
        match self.mode {
            Mode::Quiet => {}
            Mode::Tty => eprint!("\r\x1b[K{line}\n"),
            Mode::Lines => eprintln!("{line}"),
        }
    }
}

// ---------------------------------------------------------------- cache

/// `ROOT/blobs/sha256/HEX` holds complete, verified blobs only (so it is an
/// OCI-layout-shaped store for the importer); downloads happen in
/// `ROOT/partial/HEX`, locked with flock, and are renamed in when their size
/// and digest check out.
struct Cache {
    root: PathBuf,
}

fn hex_of(digest: &str) -> Result<&str> {
    if !registry::valid_digest(digest) {
        return Err(Error::format("manifest", format!("unsupported or bad digest {digest:?}")));
    }
    Ok(&digest["sha256:".len()..])
}

impl Cache {
    fn open(root: &Path) -> Result<Cache> {
        for d in ["blobs/sha256", "partial"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::io("create cache directory", &p, e))?;
        }
        Ok(Cache { root: root.to_path_buf() })
    }

    fn blob(&self, hex: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex)
    }

    /// Size of a complete blob, if cached (a regular file, not a link).
    fn cached(&self, hex: &str) -> Option<u64> {
        image::open_in_layout(&self.root, &format!("blobs/sha256/{hex}")).ok().map(|(_, n)| n)
    }

    fn drop_blob(&self, hex: &str) {
        let _ = fs::remove_file(self.blob(hex));
    }

    /// Makes sure blob `d` is in the cache, downloading what is missing
    /// from `/v2/REPO/ENDPOINT/DIGEST` (`blobs`, or `manifests` for the
    /// manifests an index names).
    fn fetch(&self, c: &mut Client, d: &Descriptor, endpoint: &str, what: &str, pr: &mut Progress) -> Result<()> {
        let hex = hex_of(&d.digest)?.to_string();
        let size = d.size.ok_or_else(|| Error::format(what, "descriptor has no size"))?;
        if self.cached(&hex) == Some(size) {
            pr.begin(what.to_string(), size, size);
            pr.end("cached");
            return Ok(());
        }
        let part = self.root.join("partial").join(&hex);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc_nofollow())
            .open(&part)
            .map_err(|e| Error::io("open", &part, e))?;
        // One download per blob at a time; a second pull waits here.
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io("lock", &part, std::io::Error::from_raw_os_error(e.raw_os_error())))?;
        if self.cached(&hex) == Some(size) {
            let _ = fs::remove_file(&part);
            pr.begin(what.to_string(), size, size);
            pr.end("cached");
            return Ok(());
        }
        // What an interrupted run left: hashed again, then continued.
        let mut have = f.metadata().map_err(|e| Error::io("stat", &part, e))?.len();
        if have > size {
            have = 0;
        }
        f.set_len(have).map_err(|e| Error::io("truncate", &part, e))?;
        let mut h = Sha256::new();
        if have > 0 {
            let mut r = (&f).take(have);
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = r.read(&mut buf).map_err(|e| Error::io("read", &part, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        pr.begin(what.to_string(), size, have);
        let mut attempt = 0;
        let mut buf = vec![0u8; 256 << 10];
        while have < size {
            let resp = c.get(
                &format!("{endpoint}/{}", d.digest),
                (endpoint == "manifests").then_some(ACCEPT),
                (have > 0).then_some(have),
                &format!("{what} {}", d.digest),
            )?;
            let st = resp.status().as_u16();
            let restart = match st {
                206 => {
                    let cr = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("");
                    !cr.starts_with(&format!("bytes {have}-"))
                }
                416 => true,
                _ => have > 0,
            };
            if restart {
                // The registry ignored or refused the Range: start over.
                have = 0;
                h = Sha256::new();
                f.set_len(0).map_err(|e| Error::io("truncate", &part, e))?;
                pr.begin(what.to_string(), size, 0);
                if st == 416 || st == 206 {
                    continue;
                }
            }
            f.seek(SeekFrom::Start(have)).map_err(|e| Error::io("seek", &part, e))?;
            let (_, body) = resp.into_parts();
            let mut r = body.into_reader();
            let broke = loop {
                match r.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        if have + n as u64 > size {
                            let _ = fs::remove_file(&part);
                            return Err(Error::format(
                                format!("{what} {}", d.digest),
                                format!("registry sent more than the manifest's {size} bytes"),
                            ));
                        }
                        f.write_all(&buf[..n]).map_err(|e| Error::io("write", &part, e))?;
                        h.update(&buf[..n]);
                        have += n as u64;
                        pr.advance(n as u64);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Some(e),
                }
            };
            match broke {
                None if have < size => {
                    // A clean end before the size: the same as a drop.
                    attempt += 1;
                    if attempt >= registry::TRIES {
                        return Err(Error::format(
                            format!("{what} {}", d.digest),
                            format!("download ended at {have} of {size} bytes ({attempt} tries; the partial file is kept)"),
                        ));
                    }
                    pr.note(&format!("connection closed at {have} of {size} bytes; resuming"));
                    registry::backoff(attempt);
                }
                None => {}
                Some(e) => {
                    attempt += 1;
                    if attempt >= registry::TRIES {
                        return Err(Error::format(
                            format!("{what} {}", d.digest),
                            format!("download failed at {have} of {size} bytes: {e} ({attempt} tries; the partial file is kept)"),
                        ));
                    }
                    pr.note(&format!("{e} at {have} of {size} bytes; resuming"));
                    registry::backoff(attempt);
                }
            }
        }
        let got = format!("sha256:{}", image::hex(&h.finalize()));
        if got != d.digest {
            let _ = fs::remove_file(&part);
            return Err(Error::Digest { what: format!("{what} from {}", c.r.host), want: d.digest.clone(), got });
        }
        f.sync_all().map_err(|e| Error::io("sync", &part, e))?;
        fs::rename(&part, self.blob(&hex)).map_err(|e| Error::io("rename into the cache", self.blob(&hex), e))?;
        pr.end("downloaded");
        Ok(())
    }

    /// A small blob (manifest, config) by digest: from the cache, else
    /// downloaded and checked; returns its bytes.
    fn small(&self, c: &mut Client, d: &Descriptor, endpoint: &str, what: &str, max: u64) -> Result<Vec<u8>> {
        let hex = hex_of(&d.digest)?.to_string();
        match d.size {
            None => return Err(Error::format(what, "descriptor has no size")),
            Some(s) if s > max => return Err(Error::format(what, format!("{s} bytes, more than the {max} allowed"))),
            _ => {}
        }
        if let Some(b) = self.read_checked(&hex, max) {
            return Ok(b);
        }
        self.fetch(c, d, endpoint, what, &mut Progress::new(true))?;
        self.read_checked(&hex, max).ok_or_else(|| Error::format(what, "blob vanished from the cache"))
    }

    fn read_checked(&self, hex: &str, max: u64) -> Option<Vec<u8>> {
        let (f, n) = image::open_in_layout(&self.root, &format!("blobs/sha256/{hex}")).ok()?;
        if n > max {
            return None;
        }
        let mut b = Vec::new();
        f.take(max).read_to_end(&mut b).ok()?;
        if image::sha256_hex(&b) != hex {
            self.drop_blob(hex);
            return None;
        }
        Some(b)
    }
}

fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

// ---------------------------------------------------------------- resolve

/// The manifest `REF` names, as bytes and media type (from the answer's
/// Content-Type, else the document's own `mediaType`).
fn get_manifest(c: &mut Client, reference: &str, what: &str) -> Result<(Vec<u8>, String)> {
    let resp = c.get(&format!("manifests/{reference}"), Some(ACCEPT), None, what)?;
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let header_digest = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(String::from);
    let (_, body) = resp.into_parts();
    let mut b = Vec::new();
    body.into_reader()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut b)
        .map_err(|e| Error::Registry { what: what.to_string(), msg: format!("reading the manifest: {e}") })?;
    if b.len() as u64 > MAX_MANIFEST {
        return Err(Error::format(what, format!("manifest larger than {MAX_MANIFEST} bytes")));
    }
    let got = format!("sha256:{}", image::sha256_hex(&b));
    // By digest, the content must hash to it; by tag, to what the
    // registry says it is (when it says).
    let want = if registry::valid_digest(reference) { Some(reference.to_string()) } else { header_digest };
    if let Some(want) = want.filter(|w| w.starts_with("sha256:")) {
        if want != got {
            return Err(Error::Digest { what: format!("{what} manifest"), want, got });
        }
    }
    let mt = media_type(&b, &ctype);
    Ok((b, mt))
}

fn media_type(b: &[u8], ctype: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(b).unwrap_or_default();
    if v["schemaVersion"].as_i64() == Some(1) {
        return "schema1".into();
    }
    if let Some(m) = v["mediaType"].as_str().filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    if !ctype.is_empty() && ctype != "application/json" && ctype != "text/plain" {
        return ctype.to_string();
    }
    if v.get("manifests").is_some() {
        INDEX_TYPES[0].into()
    } else {
        OCI_MANIFEST.into()
    }
}

pub fn run(o: &Opts) -> Result<()> {
    let r = Reference::parse(&o.reference)?;
    let what = r.to_string();
    // Nothing is fetched for a DIR that cannot be replaced.
    if let Ok(m) = fs::symlink_metadata(&o.dir) {
        if !m.is_dir() {
            return Err(Error::Exists(o.dir.clone()));
        }
    }
    let cache = Cache::open(&o.cache)?;
    let mut c = Client::new(r.clone(), &o.registry)?;
    let mut pr = Progress::new(o.quiet);

    let (mut body, mut mt) = get_manifest(&mut c, r.reference(), &what)?;
    let mut depth = 0;
    let mut manifest_digest = format!("sha256:{}", image::sha256_hex(&body));
    while INDEX_TYPES.contains(&mt.as_str()) {
        depth += 1;
        if depth > 4 {
            return Err(Error::format(&what, "image indexes nested too deep"));
        }
        let idx: Index = serde_json::from_slice(&body).map_err(|e| Error::format(format!("{what} index"), format!("bad JSON: {e}")))?;
        let d = image::pick(&idx.manifests, Some(o.platform.unwrap_or_else(Arch::host)), &what)?;
        body = cache.small(&mut c, &d, "manifests", &format!("{what} manifest"), MAX_MANIFEST)?;
        mt = if d.media_type.is_empty() { media_type(&body, "") } else { d.media_type.clone() };
        manifest_digest = d.digest.clone();
    }
    if mt == "schema1" || mt.starts_with("application/vnd.docker.distribution.manifest.v1") {
        return Err(Error::format(&what, "Docker schema 1 manifests are not supported (push the image again with a current tool)"));
    }
    if mt != OCI_MANIFEST && mt != DOCKER_MANIFEST {
        return Err(Error::format(&what, format!("unsupported manifest type {mt:?}")));
    }
    let m: Manifest = serde_json::from_slice(&body).map_err(|e| Error::format(format!("{what} manifest"), format!("bad JSON: {e}")))?;
    let cfg_bytes = cache.small(&mut c, &m.config, "blobs", &format!("{what} config"), MAX_CONFIG)?;
    let config: ImageConfig =
        serde_json::from_slice(&cfg_bytes).map_err(|e| Error::format(format!("{what} config"), format!("bad JSON: {e}")))?;
    image::check_platform(&config, o.platform)?;
    let diff_ids = config.rootfs.as_ref().map(|r| r.diff_ids.clone()).unwrap_or_default();
    if !diff_ids.is_empty() && diff_ids.len() != m.layers.len() {
        return Err(Error::format(format!("{what} config"), "rootfs.diff_ids does not match the manifest's layers"));
    }
    let n = m.layers.len();
    let mut layers = Vec::new();
    for (i, l) in m.layers.iter().enumerate() {
        let label = format!("layer {}/{n} {}", i + 1, &l.digest[..l.digest.len().min(19)]);
        if l.size.is_some_and(|s| s > o.max_size) {
            return Err(Error::TooBig { limit: o.max_size, entry: format!("layer {} ({})", i + 1, l.digest) });
        }
        if l.media_type.contains("foreign") || l.media_type.contains("nondistributable") {
            return Err(Error::format(&label, format!("non-distributable layer ({}) is not supported", l.media_type)));
        }
        cache.fetch(&mut c, l, "blobs", &label, &mut pr)?;
        layers.push(LayerRef {
            member: image::blob_member(&l.digest)?,
            digest: Some(l.digest.clone()),
            size: l.size,
            diff_id: diff_ids.get(i).cloned(),
        });
    }
    let plan = Plan { store: Store::Dir(cache.root.clone()), layers, kind: "registry image", config: Some(config) };
    let st = Staging::new_replacing(&o.dir)?;
    let (entries, total) = match crate::import::apply_plan(&plan, &st.tmp, o.max_size) {
        Ok(x) => x,
        Err(e) => {
            // A cached blob that no longer hashes right is dropped, so the
            // next pull downloads it again.
            if let Error::Digest { .. } = e {
                for l in &plan.layers {
                    if let Some(d) = &l.digest {
                        let h = &d["sha256:".len()..];
                        if let Ok((f, _)) = image::open_in_layout(&cache.root, &l.member) {
                            let mut s = Sha256::new();
                            if std::io::copy(&mut { f }, &mut s).is_ok() && hex(&s.finalize()) != h {
                                cache.drop_blob(h);
                            }
                        }
                    }
                }
            }
            return Err(e);
        }
    };
    let dest = st.commit_replace()?;
    println!(
        "pulled {what} ({manifest_digest}, {n} layer{}) into {}: {entries} entries, {total} bytes",
        if n == 1 { "" } else { "s" },
        dest.display()
    );
    crate::import::print_command(&plan);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(media_type(br#"{"schemaVersion":1}"#, ""), "schema1");
        assert_eq!(media_type(br#"{"mediaType":"x"}"#, "y"), "x");
        assert_eq!(media_type(br#"{"manifests":[]}"#, "application/json"), INDEX_TYPES[0]);
        assert_eq!(media_type(br#"{"layers":[]}"#, DOCKER_MANIFEST), DOCKER_MANIFEST);
        assert_eq!(media_type(br#"{"layers":[]}"#, ""), OCI_MANIFEST);
    }
}
