//! A client of the OCI distribution API (v2) for `pull`: image references,
//! GET requests with retries, and the anonymous / basic / bearer-token
//! authentication dance (`WWW-Authenticate` challenges).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::http::Response;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use ureq::Body;

use crate::error::{Error, Result};

/// `host[:port]/repo[:tag|@sha256:HEX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub host: String,
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn valid_repo(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(x))
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || b"_.-".contains(x))
}

pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").map(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))).unwrap_or(false)
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| Error::Usage(format!("bad image reference {s:?}: {why} (want host[:port]/repo[:tag|@sha256:…])"));
        let (host, rest) = s.split_once('/').ok_or_else(|| bad("no registry host"))?;
        if host.is_empty() || !host.bytes().all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c)) {
            return Err(bad("bad registry host"));
        }
        let (name, digest) = match rest.split_once('@') {
            Some((n, d)) => {
                if !valid_digest(d) {
                    return Err(bad("bad digest"));
                }
                (n, Some(d.to_string()))
            }
            None => (rest, None),
        };
        // A tag is after the last ':' of the last path component.
        let last = name.rsplit('/').next().unwrap_or("");
        let (repo, tag) = match last.rsplit_once(':') {
            Some((_, t)) => (&name[..name.len() - t.len() - 1], Some(t.to_string())),
            None => (name, None),
        };
        if !valid_repo(repo) {
            return Err(bad("bad repository name"));
        }
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad("bad tag"));
            }
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(Reference { host: host.to_string(), repo: repo.to_string(), tag, digest })
    }

    /// What goes after `/manifests/`: the digest when given, else the tag.
    pub fn reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- base64

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn b64decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim().bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

// ---------------------------------------------------------------- credentials

/// `--authfile`: containers-auth.json / docker config.json
/// (`{"auths": {"HOST[/PATH]": {"auth": base64("user:pass")}}}`). The most
/// specific key wins: `host/repo`, its parents, then `host` (also in the
/// legacy `https://host/v1/` spelling).
pub fn creds_from_authfile(path: &Path, r: &Reference) -> Result<Option<(String, String)>> {
    let b = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let v: serde_json::Value =
        serde_json::from_slice(&b).map_err(|e| Error::format(path.display().to_string(), format!("bad JSON: {e}")))?;
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let norm = |k: &str| -> String {
        let k = k.strip_prefix("https://").or_else(|| k.strip_prefix("http://")).unwrap_or(k);
        let k = k.strip_suffix("/v1/").or_else(|| k.strip_suffix("/v2/")).unwrap_or(k);
        k.trim_end_matches('/').to_string()
    };
    let mut want = vec![];
    let mut p = format!("{}/{}", r.host, r.repo);
    loop {
        want.push(p.clone());
        match p.rsplit_once('/') {
            Some((a, _)) => p = a.to_string(),
            None => break,
        }
    }
    for w in want {
        for (k, e) in auths {
            if norm(k) != w {
                continue;
            }
            let what = format!("{}: auths[{k:?}]", path.display());
            if let Some(a) = e.get("auth").and_then(|a| a.as_str()) {
                let dec = b64decode(a).ok_or_else(|| Error::format(what.clone(), "auth is not base64"))?;
                let dec = String::from_utf8(dec).map_err(|_| Error::format(what.clone(), "auth is not UTF-8"))?;
                let (u, p) = dec.split_once(':').ok_or_else(|| Error::format(what, "auth is not user:password"))?;
                return Ok(Some((u.to_string(), p.to_string())));
            }
            if let (Some(u), Some(p)) = (e.get("username").and_then(|x| x.as_str()), e.get("password").and_then(|x| x.as_str())) {
                return Ok(Some((u.to_string(), p.to_string())));
            }
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------- TLS

/// The system's CA bundle (Debian's first; `SSL_CERT_FILE` overrides).
fn system_ca_file() -> Option<PathBuf> {
    if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
        return Some(PathBuf::from(f));
    }
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn pem_items(path: &Path) -> Result<Vec<PemItem<'static>>> {
    let b = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let mut out = Vec::new();
    for it in ureq::tls::parse_pem(&b) {
        out.push(it.map_err(|e| Error::format(path.display().to_string(), format!("bad PEM: {e}")))?);
    }
    Ok(out)
}

fn certs(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let v: Vec<Certificate<'static>> = pem_items(path)?
        .into_iter()
        .filter_map(|i| match i {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    if v.is_empty() {
        return Err(Error::format(path.display().to_string(), "no PEM certificates in it"));
    }
    Ok(v)
}

pub struct TlsOpts {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn tls_config(o: &TlsOpts) -> Result<TlsConfig> {
    let mut roots = Vec::new();
    if let Some(f) = system_ca_file() {
        // An unreadable system bundle is not fatal when --ca is given.
        match certs(&f) {
            Ok(mut c) => roots.append(&mut c),
            Err(e) if o.ca.is_none() => return Err(e),
            Err(_) => {}
        }
    }
    if let Some(ca) = &o.ca {
        roots.append(&mut certs(ca)?);
    }
    if roots.is_empty() {
        return Err(Error::Usage("no CA certificates found (no system CA bundle); pass --ca FILE".into()));
    }
    let mut b = TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls_rustcrypto::provider()))
        .root_certs(RootCerts::Specific(Arc::new(roots)));
    match (&o.cert, &o.key) {
        (Some(c), Some(k)) => {
            let chain = certs(c)?;
            let key: PrivateKey<'static> = pem_items(k)?
                .into_iter()
                .find_map(|i| match i {
                    PemItem::PrivateKey(k) => Some(k),
                    _ => None,
                })
                .ok_or_else(|| Error::format(k.display().to_string(), "no PEM private key in it"))?;
            b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        (None, None) => {}
        _ => return Err(Error::Usage("--cert and --key go together".into())),
    }
    Ok(b.build())
}

// ---------------------------------------------------------------- client

pub struct Opts {
    pub plain_http: bool,
    pub tls: TlsOpts,
    pub creds: Option<(String, String)>,
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    pub r: Reference,
    creds: Option<(String, String)>,
    plain_http: bool,
    /// The Authorization header value once a challenge was answered.
    auth: Option<String>,
}

/// Tries per request (connection errors, 5xx, 429) and per blob download.
pub const TRIES: u32 = 5;

pub fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(250u64 << attempt.saturating_sub(1).min(5)));
}

/// A transport error worth retrying (the request may go through later).
fn transient(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_))
}

/// A challenge's scheme and parameters: `Bearer realm="…",service="…"`.
fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, mut rest) = match h.split_once(' ') {
        Some((s, r)) => (s.to_ascii_lowercase(), r.trim()),
        None => (h.to_ascii_lowercase(), ""),
    };
    let mut params = Vec::new();
    while !rest.is_empty() {
        let Some((k, r)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let r = r.trim_start();
        let (v, r) = if let Some(q) = r.strip_prefix('"') {
            let mut v = String::new();
            let mut it = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = it.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = it.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end..])
        } else {
            let end = r.find(',').unwrap_or(r.len());
            (r[..end].trim().to_string(), &r[end..])
        };
        params.push((k, v));
        rest = r.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme, params)
}

/// The registry's own error text (`{"errors":[{"code":…,"message":…}]}`).
fn registry_message(resp: Response<Body>) -> String {
    let (_, body) = resp.into_parts();
    let mut b = Vec::new();
    let _ = body.into_reader().take(8192).read_to_end(&mut b);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
    let e = &v["errors"][0];
    match (e["code"].as_str(), e["message"].as_str()) {
        (Some(c), Some(m)) => format!(" ({c}: {m})"),
        (Some(c), None) => format!(" ({c})"),
        _ => String::new(),
    }
}

impl Client {
    pub fn new(r: Reference, o: &Opts) -> Result<Client> {
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("husk-rootfs/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .max_redirects(5)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost);
        if !o.plain_http {
            cfg = cfg.tls_config(tls_config(&o.tls)?).https_only(true);
        }
        let scheme = if o.plain_http { "http" } else { "https" };
        Ok(Client {
            agent: cfg.build().new_agent(),
            base: format!("{scheme}://{}/v2/{}", r.host, r.repo),
            r,
            creds: o.creds.clone(),
            plain_http: o.plain_http,
            auth: None,
        })
    }

    /// `GET /v2/REPO/PATH` with retries and authentication. Returns the
    /// response for 2xx (and 416, for Range requests); every other status
    /// becomes an error naming `what`.
    pub fn get(&mut self, path: &str, accept: Option<&str>, range: Option<u64>, what: &str) -> Result<Response<Body>> {
        let url = format!("{}/{path}", self.base);
        let mut answered = false;
        let mut attempt = 0;
        loop {
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(a) = &self.auth {
                req = req.header("Authorization", a);
            }
            if let Some(off) = range {
                req = req.header("Range", format!("bytes={off}-"));
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(e) if transient(&e) && attempt + 1 < TRIES => {
                    attempt += 1;
                    backoff(attempt);
                    continue;
                }
                Err(e) => return Err(self.unreachable(&e, attempt + 1)),
            };
            let st = resp.status().as_u16();
            match st {
                200..=299 | 416 => return Ok(resp),
                401 if !answered => {
                    answered = true;
                    let chal = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    drop(resp);
                    self.answer(&chal)?;
                }
                401 | 403 => {
                    let m = registry_message(resp);
                    let hint = if self.creds.is_none() { "; pass --creds USER:PASS or --authfile FILE" } else { "" };
                    return Err(Error::Registry { what: what.to_string(), msg: format!("access denied (HTTP {st}){m}{hint}") });
                }
                404 => {
                    let m = registry_message(resp);
                    return Err(Error::Registry {
                        what: what.to_string(),
                        msg: format!("not found (HTTP 404){m}: no such repository, tag or digest at {}", self.r.host),
                    });
                }
                429 | 500..=599 if attempt + 1 < TRIES => {
                    drop(resp);
                    attempt += 1;
                    backoff(attempt);
                }
                _ => {
                    let m = registry_message(resp);
                    return Err(Error::Registry { what: what.to_string(), msg: format!("HTTP {st}{m}") });
                }
            }
        }
    }

    fn unreachable(&self, e: &ureq::Error, tries: u32) -> Error {
        Error::Registry {
            what: self.r.host.clone(),
            msg: format!("registry unreachable: {e} ({tries} tr{})", if tries == 1 { "y" } else { "ies" }),
        }
    }

    /// Answers a 401's challenge: Basic with the credentials, or Bearer by
    /// fetching a token from the realm (with the credentials when given).
    fn answer(&mut self, challenge: &str) -> Result<()> {
        let (scheme, params) = parse_challenge(challenge);
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let denied = |msg: String| Error::Registry { what: self.r.host.clone(), msg };
        match scheme.as_str() {
            "basic" => {
                let (u, p) = self
                    .creds
                    .as_ref()
                    .ok_or_else(|| denied("authentication required (HTTP 401); pass --creds USER:PASS or --authfile FILE".into()))?;
                self.auth = Some(format!("Basic {}", b64encode(format!("{u}:{p}").as_bytes())));
                Ok(())
            }
            "bearer" => {
                let realm = param("realm").ok_or_else(|| denied("bearer challenge without a realm".into()))?;
                if !(realm.starts_with("https://") || (self.plain_http && realm.starts_with("http://"))) {
                    return Err(denied(format!("token realm {realm:?} is not https (use --plain-http for a test registry)")));
                }
                let scope = param("scope").unwrap_or_else(|| format!("repository:{}:pull", self.r.repo));
                let mut url = realm.clone();
                url.push(if realm.contains('?') { '&' } else { '?' });
                if let Some(s) = param("service") {
                    url.push_str(&format!("service={}&", urlencode(&s)));
                }
                url.push_str(&format!("scope={}", urlencode(&scope)));
                let mut attempt = 0;
                let resp = loop {
                    let mut req = self.agent.get(&url);
                    if let Some((u, p)) = &self.creds {
                        req = req.header("Authorization", format!("Basic {}", b64encode(format!("{u}:{p}").as_bytes())));
                    }
                    match req.call() {
                        Ok(r) if r.status().is_server_error() && attempt + 1 < TRIES => {}
                        Ok(r) => break r,
                        Err(e) if transient(&e) && attempt + 1 < TRIES => {}
                        Err(e) => return Err(denied(format!("token server {realm}: {e}"))),
                    }
                    attempt += 1;
                    backoff(attempt);
                };
                let st = resp.status().as_u16();
                if st != 200 {
                    let m = registry_message(resp);
                    return Err(denied(format!("token server {realm} refused (HTTP {st}){m}")));
                }
                let (_, body) = resp.into_parts();
                let mut b = Vec::new();
                body.into_reader().take(1 << 20).read_to_end(&mut b).map_err(|e| denied(format!("token server {realm}: {e}")))?;
                let v: serde_json::Value =
                    serde_json::from_slice(&b).map_err(|e| denied(format!("token server {realm}: bad JSON: {e}")))?;
                let tok = v["token"]
                    .as_str()
                    .or(v["access_token"].as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| denied(format!("token server {realm}: no token in the answer")))?;
                self.auth = Some(format!("Bearer {tok}"));
                Ok(())
            }
            _ => Err(denied(format!("unsupported authentication challenge {challenge:?} (HTTP 401)"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!((r.host.as_str(), r.repo.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "a/b", Some("v1")));
        assert_eq!(r.reference(), "v1");
        let r = Reference::parse("reg.example/x").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost:5000/x@{d}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.reference()), (None, d.as_str()));
        let r = Reference::parse(&format!("h/x:t@{d}")).unwrap();
        assert_eq!(r.reference(), d.as_str());
        for bad in ["x", "/x", "h/X", "h/x:", "h/x@sha256:12", "h/x/../y", "h/x:t t", "h/"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "user:pass", "Aladdin:open sesame"] {
            assert_eq!(b64decode(&b64encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64encode(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn challenges() {
        let (s, p) =
            parse_challenge(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#);
        assert_eq!(s, "bearer");
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into())
            ]
        );
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!((s.as_str(), p[0].1.as_str()), ("basic", "Registry Realm"));
    }

    #[test]
    fn authfile_picks_the_most_specific_entry() {
        let d = std::env::temp_dir().join(format!("husk-rootfs-authfile-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("auth.json");
        std::fs::write(
            &f,
            format!(
                r#"{{"auths":{{"h:5000":{{"auth":"{}"}},"h:5000/team":{{"auth":"{}"}},"https://o/v1/":{{"auth":"{}"}}}}}}"#,
                b64encode(b"a:1"),
                b64encode(b"b:2"),
                b64encode(b"c:3")
            ),
        )
        .unwrap();
        let c = |r: &str| creds_from_authfile(&f, &Reference::parse(r).unwrap()).unwrap();
        assert_eq!(c("h:5000/x"), Some(("a".into(), "1".into())));
        assert_eq!(c("h:5000/team/x"), Some(("b".into(), "2".into())));
        assert_eq!(c("o/x"), Some(("c".into(), "3".into())));
        assert_eq!(c("other/x"), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}
