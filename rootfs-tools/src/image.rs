//! Reading image sources: an OCI image layout (directory or tar), a `docker
//! save` archive, or a plain rootfs tarball. Finds the layers in order and
//! the digests they must match.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::arch::Arch;
use crate::error::{Error, Result};

/// Where the image's files are: a directory, or members of an uncompressed tar.
pub enum Store {
    /// An OCI layout (or the blob cache): members are opened inside it
    /// without following symlinks, and must be regular files.
    Dir(PathBuf),
    /// A plain tarball named on the command line (its one member is itself).
    File(PathBuf),
    Tar {
        path: PathBuf,
        members: HashMap<String, (u64, u64)>,
    },
}

/// One layer to apply: a member of the store, and what it must hash to.
#[derive(Debug, Clone)]
pub struct LayerRef {
    pub member: String,
    /// sha256 of the blob as stored (OCI manifests).
    pub digest: Option<String>,
    pub size: Option<u64>,
    /// sha256 of the uncompressed tar (config rootfs.diff_ids).
    pub diff_id: Option<String>,
}

pub struct Plan {
    pub store: Store,
    pub layers: Vec<LayerRef>,
    /// What kind of source it was, for messages.
    pub kind: &'static str,
    pub config: Option<ImageConfig>,
}

#[derive(Deserialize, Debug, Default, Clone)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<RunConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Deserialize, Debug, Default, Clone)]
pub struct RunConfig {
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Default, Clone)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize, Debug)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

#[derive(Deserialize, Debug)]
pub struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize, Debug)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn norm_member(name: &str) -> String {
    let mut s = name;
    while let Some(r) = s.strip_prefix("./") {
        s = r;
    }
    s.trim_start_matches('/').to_string()
}

pub fn sha256_hex(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    hex(&h.finalize())
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Store {
    pub fn has(&self, member: &str) -> bool {
        match self {
            Store::Dir(d) => open_in_layout(d, member).is_ok(),
            Store::File(p) => p.is_file(),
            Store::Tar { members, .. } => members.contains_key(member),
        }
    }

    fn where_(&self, member: &str) -> String {
        match self {
            Store::Dir(d) => d.join(member).display().to_string(),
            Store::File(p) => p.display().to_string(),
            Store::Tar { path, .. } => format!("{}:{member}", path.display()),
        }
    }

    /// A reader over one member, and its size.
    pub fn open(&self, member: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Store::Dir(d) => {
                let (f, len) = open_in_layout(d, member)?;
                Ok((Box::new(f), len))
            }
            Store::File(p) => {
                let m = std::fs::metadata(p).map_err(|e| Error::io("open", p, e))?;
                if !m.is_file() {
                    return Err(Error::format(p.display().to_string(), "not a regular file"));
                }
                let f = File::open(p).map_err(|e| Error::io("open", p, e))?;
                Ok((Box::new(f), m.len()))
            }
            Store::Tar { path, members } => {
                let (off, size) =
                    *members.get(member).ok_or_else(|| Error::format(path.display().to_string(), format!("no member {member}")))?;
                let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
                f.seek(SeekFrom::Start(off)).map_err(|e| Error::io("seek", path, e))?;
                Ok((Box::new(f.take(size)), size))
            }
        }
    }

    pub fn read_small(&self, member: &str) -> Result<Vec<u8>> {
        let (mut r, size) = self.open(member)?;
        if size > 16 << 20 {
            return Err(Error::format(self.where_(member), "metadata file too large"));
        }
        let mut v = Vec::with_capacity(size as usize);
        r.read_to_end(&mut v).map_err(|e| Error::io("read", self.where_(member), e))?;
        Ok(v)
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, member: &str) -> Result<T> {
        let b = self.read_small(member)?;
        serde_json::from_slice(&b).map_err(|e| Error::format(self.where_(member), format!("bad JSON: {e}")))
    }

    /// Reads a blob by digest and checks it.
    fn blob_json<T: for<'de> Deserialize<'de>>(&self, d: &Descriptor) -> Result<(T, Vec<u8>)> {
        let member = blob_member(&d.digest)?;
        let b = self.read_small(&member)?;
        let got = format!("sha256:{}", sha256_hex(&b));
        if got != d.digest {
            return Err(Error::Digest { what: self.where_(&member), want: d.digest.clone(), got });
        }
        let v = serde_json::from_slice(&b).map_err(|e| Error::format(self.where_(&member), format!("bad JSON: {e}")))?;
        Ok((v, b))
    }
}

/// Opens `member` (like `blobs/sha256/HEX`) inside the layout directory
/// `dir`, one component at a time with O_NOFOLLOW: a symlink anywhere below
/// `dir` (a blob, `blobs/`, `blobs/sha256/`) is refused, so a layout cannot
/// point the import at a host file. The member must be a regular file (a
/// FIFO or device is refused before any read: O_NONBLOCK, then fstat).
pub fn open_in_layout(dir: &Path, member: &str) -> Result<(File, u64)> {
    use rustix::fs::{fstat, openat, FileType, Mode, OFlags};
    let full = dir.join(member);
    let refuse = |why: &str| Error::format(full.display().to_string(), why.to_string());
    let eio = |e: rustix::io::Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
    let parts: Vec<&str> = member.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|c| *c == "." || *c == "..") {
        return Err(refuse("bad member name"));
    }
    let mut cur = openat(rustix::fs::CWD, dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", dir, eio(e)))?;
    let last = parts.len() - 1;
    for (i, c) in parts.iter().enumerate() {
        let flags = if i == last {
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC
        } else {
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        cur = match openat(&cur, *c, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP) => {
                return Err(refuse(&format!("{c} is a symlink (image files must be regular files inside the layout)")))
            }
            Err(rustix::io::Errno::NOTDIR) => return Err(refuse(&format!("{c} is not a directory"))),
            Err(e) => return Err(Error::io("open", &full, eio(e))),
        };
    }
    let st = fstat(&cur).map_err(|e| Error::io("stat", &full, eio(e)))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(refuse("not a regular file"));
    }
    Ok((File::from(cur), st.st_size as u64))
}

pub fn blob_member(digest: &str) -> Result<String> {
    let (alg, hexd) = digest.split_once(':').ok_or_else(|| Error::format("manifest", format!("bad digest {digest:?}")))?;
    if alg != "sha256" {
        return Err(Error::format("manifest", format!("unsupported digest algorithm {alg}")));
    }
    if hexd.len() != 64 || !hexd.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
        return Err(Error::format("manifest", format!("bad digest {digest:?}")));
    }
    Ok(format!("blobs/sha256/{hexd}"))
}

/// Indexes an uncompressed tar's members (name -> data offset, size).
fn index_tar(path: &Path) -> Result<Option<HashMap<String, (u64, u64)>>> {
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut ar = tar::Archive::new(f);
    let mut members = HashMap::new();
    let entries = match ar.entries() {
        Ok(e) => e,
        Err(_) => return Ok(None),
    };
    let mut aliases = Vec::new();
    for e in entries {
        let Ok(e) = e else { return Ok(None) };
        let name = norm_member(&String::from_utf8_lossy(&e.path_bytes()));
        let ty = e.header().entry_type();
        if ty.is_file() {
            members.insert(name, (e.raw_file_position(), e.size()));
        } else if ty.is_symlink() || ty.is_hard_link() {
            // docker save links identical layers to one copy.
            if let Some(t) = e.link_name_bytes() {
                let t = String::from_utf8_lossy(&t).into_owned();
                let base = if ty.is_symlink() { Path::new(&name).parent().map(Path::to_path_buf) } else { None };
                aliases.push((name, base.unwrap_or_default().join(t)));
            }
        }
    }
    for _ in 0..4 {
        for (name, target) in &aliases {
            if members.contains_key(name) {
                continue;
            }
            if let Some(t) = lexical(target) {
                if let Some(v) = members.get(&t).copied() {
                    members.insert(name.clone(), v);
                }
            }
        }
    }
    Ok(Some(members))
}

/// `a/../b/./c` -> `b/c`; None if it climbs above the top.
fn lexical(p: &Path) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                out.pop()?;
            }
            _ => {}
        }
    }
    Some(out.join("/"))
}

fn sniff(path: &Path) -> Result<[u8; 4]> {
    let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut m = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut m[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    Ok(m)
}

pub fn is_gzip(m: &[u8]) -> bool {
    m.len() >= 2 && m[0] == 0x1f && m[1] == 0x8b
}
pub fn is_zstd(m: &[u8]) -> bool {
    m.len() >= 4 && m[..4] == [0x28, 0xb5, 0x2f, 0xfd]
}

/// Works out what `src` is and which layers to apply.
pub fn plan(src: &Path, platform: Option<Arch>) -> Result<Plan> {
    let meta = std::fs::metadata(src).map_err(|e| Error::io("open", src, e))?;
    if meta.is_dir() {
        let store = Store::Dir(src.to_path_buf());
        if !store.has("index.json") {
            return Err(Error::format(src.display().to_string(), "directory is not an OCI image layout (no index.json)"));
        }
        return oci_plan(store, platform, "OCI layout directory");
    }
    let magic = sniff(src)?;
    if is_gzip(&magic) || is_zstd(&magic) {
        if compressed_image(src, is_gzip(&magic))? {
            return Err(Error::format(src.display().to_string(), "is a compressed image archive (OCI or docker); decompress it first"));
        }
        return Ok(plain(src));
    }
    match index_tar(src)? {
        Some(members) => {
            let store = Store::Tar { path: src.to_path_buf(), members };
            if store.has("index.json") && store.has("oci-layout") {
                oci_plan(store, platform, "OCI archive")
            } else if store.has("manifest.json") {
                docker_plan(store, platform)
            } else {
                Ok(plain(src))
            }
        }
        None => Err(Error::format(src.display().to_string(), "not a tar, gzip or zstd archive")),
    }
}

/// Whether a compressed tarball is really an image archive (its first
/// entries name index.json/oci-layout/manifest.json at the top level).
fn compressed_image(src: &Path, gz: bool) -> Result<bool> {
    let f = File::open(src).map_err(|e| Error::io("open", src, e))?;
    let r = std::io::BufReader::new(f);
    let dec: Box<dyn Read> = if gz { Box::new(flate2::bufread::MultiGzDecoder::new(r)) } else { Box::new(crate::zstd::Zstd::new(r)) };
    let mut ar = tar::Archive::new(dec);
    let Ok(entries) = ar.entries() else {
        return Ok(false);
    };
    for e in entries.take(8) {
        let Ok(e) = e else { return Ok(false) };
        let name = norm_member(&String::from_utf8_lossy(&e.path_bytes()));
        if matches!(name.as_str(), "oci-layout" | "index.json" | "manifest.json") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn plain(src: &Path) -> Plan {
    let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Plan {
        store: Store::File(src.to_path_buf()),
        layers: vec![LayerRef { member: name, digest: None, size: None, diff_id: None }],
        kind: "rootfs tarball",
        config: None,
    }
}

pub const INDEX_TYPES: [&str; 2] = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

/// Picks the entry of an index for `platform` (default: the host's);
/// `what` names the index in errors.
pub fn pick(ds: &[Descriptor], platform: Option<Arch>, what: &str) -> Result<Descriptor> {
    let want = platform.unwrap_or_else(Arch::host);
    let with_platform: Vec<&Descriptor> = ds.iter().filter(|d| d.platform.is_some()).collect();
    if let Some(d) = with_platform.iter().find(|d| {
        let p = d.platform.as_ref().unwrap();
        p.architecture == want.oci() && (p.os.is_empty() || p.os == "linux")
    }) {
        return Ok((*d).clone());
    }
    // Attestation manifests carry platform unknown/unknown: ignore them.
    let real: Vec<&Descriptor> = ds.iter().filter(|d| d.platform.as_ref().map(|p| p.architecture != "unknown").unwrap_or(true)).collect();
    if platform.is_none() && real.len() == 1 {
        return Ok(real[0].clone());
    }
    if platform.is_some() && real.len() == 1 && real[0].platform.is_none() {
        // Checked against the config's architecture later.
        return Ok(real[0].clone());
    }
    let have: Vec<String> = with_platform
        .iter()
        .map(|d| {
            let p = d.platform.as_ref().unwrap();
            format!("{}/{}", p.os, p.architecture)
        })
        .collect();
    Err(Error::format(
        what,
        format!("no image for linux/{} (has: {})", want.oci(), if have.is_empty() { "?".into() } else { have.join(", ") }),
    ))
}

fn oci_plan(store: Store, platform: Option<Arch>, kind: &'static str) -> Result<Plan> {
    let idx: Index = store.json("index.json")?;
    let mut d = pick(&idx.manifests, platform, "index.json")?;
    let mut depth = 0;
    while INDEX_TYPES.contains(&d.media_type.as_str()) {
        depth += 1;
        if depth > 4 {
            return Err(Error::format("index.json", "image indexes nested too deep"));
        }
        let (inner, _): (Index, _) = store.blob_json(&d)?;
        d = pick(&inner.manifests, platform, "index.json")?;
    }
    let (m, _): (Manifest, _) = store.blob_json(&d)?;
    let (config, _): (ImageConfig, _) = store.blob_json(&m.config)?;
    check_platform(&config, platform)?;
    let diff_ids = config.rootfs.as_ref().map(|r| r.diff_ids.clone()).unwrap_or_default();
    if !diff_ids.is_empty() && diff_ids.len() != m.layers.len() {
        return Err(Error::format("image config", "rootfs.diff_ids does not match the manifest's layers"));
    }
    let mut layers = Vec::new();
    for (i, l) in m.layers.iter().enumerate() {
        layers.push(LayerRef {
            member: blob_member(&l.digest)?,
            digest: Some(l.digest.clone()),
            size: l.size,
            diff_id: diff_ids.get(i).cloned(),
        });
    }
    Ok(Plan { store, layers, kind, config: Some(config) })
}

pub fn check_platform(config: &ImageConfig, platform: Option<Arch>) -> Result<()> {
    if !config.os.is_empty() && config.os != "linux" {
        return Err(Error::format("image config", format!("image is for {}, not linux", config.os)));
    }
    if let Some(p) = platform {
        if !config.architecture.is_empty() && config.architecture != p.oci() {
            return Err(Error::format("image config", format!("image is for {}, not {}", config.architecture, p.oci())));
        }
    }
    Ok(())
}

fn docker_plan(store: Store, platform: Option<Arch>) -> Result<Plan> {
    let entries: Vec<DockerEntry> = store.json("manifest.json")?;
    if entries.is_empty() {
        return Err(Error::format("manifest.json", "no images"));
    }
    if entries.len() > 1 {
        eprintln!("husk-rootfs: note: archive holds {} images, importing the first", entries.len());
    }
    let e = &entries[0];
    let cfg_member = norm_member(&e.config);
    let cfg_bytes = store.read_small(&cfg_member)?;
    // The config's name is its digest ("<hex>.json" or "blobs/sha256/<hex>").
    let stem = Path::new(&cfg_member).file_name().map(|s| s.to_string_lossy().trim_end_matches(".json").to_string()).unwrap_or_default();
    let got = sha256_hex(&cfg_bytes);
    if stem.len() == 64 && stem.bytes().all(|c| c.is_ascii_hexdigit()) && stem != got {
        return Err(Error::Digest { what: store.where_(&cfg_member), want: format!("sha256:{stem}"), got: format!("sha256:{got}") });
    }
    let config: ImageConfig =
        serde_json::from_slice(&cfg_bytes).map_err(|err| Error::format(store.where_(&cfg_member), format!("bad JSON: {err}")))?;
    check_platform(&config, platform)?;
    let diff_ids = config.rootfs.as_ref().map(|r| r.diff_ids.clone()).unwrap_or_default();
    if !diff_ids.is_empty() && diff_ids.len() != e.layers.len() {
        return Err(Error::format("image config", "rootfs.diff_ids does not match manifest.json's layers"));
    }
    let mut layers = Vec::new();
    for (i, l) in e.layers.iter().enumerate() {
        let member = norm_member(l);
        if !store.has(&member) {
            return Err(Error::format("manifest.json", format!("layer {member} not in archive")));
        }
        // Newer docker names layers by their blob digest.
        let digest = member.strip_prefix("blobs/sha256/").filter(|h| h.len() == 64).map(|h| format!("sha256:{h}"));
        layers.push(LayerRef { member, digest, size: None, diff_id: diff_ids.get(i).cloned() });
    }
    Ok(Plan { store, layers, kind: "docker archive", config: Some(config) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_member_checks_digest_form() {
        assert_eq!(blob_member(&format!("sha256:{}", "a".repeat(64))).unwrap(), format!("blobs/sha256/{}", "a".repeat(64)));
        assert!(blob_member("sha256:../../etc/passwd").is_err());
        assert!(blob_member("md5:abc").is_err());
    }

    #[test]
    fn lexical_paths() {
        assert_eq!(lexical(Path::new("a/../b/./c")).as_deref(), Some("b/c"));
        assert_eq!(lexical(Path::new("x/../../etc")), None);
    }

    #[test]
    fn pax_style_members_are_normalised() {
        assert_eq!(norm_member("./blobs/sha256/x"), "blobs/sha256/x");
        assert_eq!(norm_member("manifest.json"), "manifest.json");
    }
}
