//! `husk-rootfs check`: is a rootfs usable? The entrypoint (default /bin/sh)
//! exists inside it, is executable and built for the arch, its loader and
//! libraries are there, /etc/passwd exists. Prints size, file count and the
//! setuid/setgid files. Paths are resolved as the container would see them
//! (openat2 RESOLVE_IN_ROOT), so absolute symlinks stay inside the rootfs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{fstat, openat, openat2, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

use crate::arch::{machine_name, Arch};
use crate::elf::{self, ElfInfo};
use crate::error::{Error, Result};

pub struct Opts {
    pub dir: PathBuf,
    pub arch: Arch,
    pub entrypoint: Option<String>,
}

/// At most this much of a text file (ld.so.conf, .path) is read.
const MAX_TEXT: u64 = 1 << 20;

fn kind_name(k: FileType) -> &'static str {
    match k {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of unknown type",
    }
}

const PATH_DIRS: [&str; 6] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

struct Root {
    fd: OwnedFd,
    /// The rootfs's canonical host path (to map /proc/self/fd links back).
    real: PathBuf,
    arch: Arch,
    /// Library search directories, in order.
    lib_dirs: Vec<String>,
    lib_cache: HashMap<String, std::result::Result<String, String>>,
}

impl Root {
    /// Opens the regular file `path` as seen from inside the rootfs. Nothing
    /// but a regular file is ever opened for reading: the path is resolved
    /// to an O_PATH fd (which opens nothing), fstat'ed, and only a regular
    /// file is reopened, O_NONBLOCK, through /proc/self/fd. So a FIFO cannot
    /// block and a device (`/bin/sh -> /dev/zero` inside the rootfs) is
    /// never opened at all.
    fn open(&self, path: &str) -> std::io::Result<File> {
        self.open_kind(path, FileType::RegularFile)
    }

    /// A directory inside the rootfs, opened the same way.
    fn open_dir(&self, path: &str) -> std::io::Result<File> {
        self.open_kind(path, FileType::Directory)
    }

    fn open_kind(&self, path: &str, want: FileType) -> std::io::Result<File> {
        let eio = |e: Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
        let pfd = match openat2(
            &self.fd,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            // Kernels before 5.6 and qemu-user lack openat2.
            Err(Errno::NOSYS) => open_in_root(&self.fd, path)?,
            Err(e) => return Err(eio(e)),
        };
        let st = fstat(&pfd).map_err(eio)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != want {
            return Err(std::io::Error::other(format!("is {}, not {}", kind_name(kind), kind_name(want))));
        }
        let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        if want == FileType::Directory {
            flags |= OFlags::DIRECTORY;
        }
        use std::os::fd::AsRawFd;
        let fd = match openat(CWD, format!("/proc/self/fd/{}", pfd.as_raw_fd()), flags, Mode::empty()) {
            Ok(fd) => fd,
            // No /proc: resolve once more; the fstat below catches a swap.
            Err(Errno::NOENT) => match openat2(&self.fd, path, flags, Mode::empty(), ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS) {
                Ok(fd) => fd,
                Err(Errno::NOSYS) => return Err(eio(Errno::NOSYS)),
                Err(e) => return Err(eio(e)),
            },
            Err(e) => return Err(eio(e)),
        };
        let st2 = fstat(&fd).map_err(eio)?;
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) || FileType::from_raw_mode(st2.st_mode) != want {
            return Err(std::io::Error::other("changed while being checked"));
        }
        Ok(File::from(fd))
    }

    /// The directory an opened file really lives in, as seen from inside
    /// the rootfs: what `$ORIGIN` means for it.
    fn origin(&self, f: &File) -> Option<String> {
        use std::os::fd::AsRawFd;
        let host = fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()?;
        let rel = host.strip_prefix(&self.real).ok()?;
        let dir = rel.parent()?;
        Some(format!("/{}", dir.display()))
    }

    /// Runpath entries with `$ORIGIN` expanded for the object in `f`.
    fn expand_runpath(&self, rp: &[String], f: &File) -> Vec<String> {
        let origin = self.origin(f);
        rp.iter()
            .filter_map(|d| {
                if d.contains("ORIGIN") {
                    let o = origin.as_ref()?;
                    Some(d.replace("${ORIGIN}", o).replace("$ORIGIN", o))
                } else {
                    Some(d.clone())
                }
            })
            .collect()
    }

    fn exists(&self, path: &str) -> bool {
        self.open(path).is_ok()
    }

    /// A small text file (config), at most [`MAX_TEXT`] bytes of it.
    fn read_to_string(&self, path: &str) -> Option<String> {
        let mut b = Vec::new();
        self.open(path).ok()?.take(MAX_TEXT).read_to_end(&mut b).ok()?;
        Some(String::from_utf8_lossy(&b).into_owned())
    }

    /// Where the dynamic linkers of glibc and musl would look.
    fn search_dirs(&self) -> Vec<String> {
        let mut dirs = Vec::new();
        let musl = format!("/etc/ld-musl-{}.path", self.arch.name());
        if let Some(s) = self.read_to_string(&musl) {
            dirs.extend(s.split([':', '\n']).map(str::trim).filter(|l| !l.is_empty()).map(String::from));
        }
        let mut confs = vec!["/etc/ld.so.conf".to_string()];
        let mut seen = HashSet::new();
        while let Some(c) = confs.pop() {
            if !seen.insert(c.clone()) || seen.len() > 64 {
                continue;
            }
            let Some(s) = self.read_to_string(&c) else {
                continue;
            };
            for l in s.lines().map(str::trim) {
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                if let Some(pat) = l.strip_prefix("include ") {
                    confs.extend(self.glob_conf(pat.trim()));
                } else {
                    dirs.push(l.to_string());
                }
            }
        }
        let t = match self.arch {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Aarch64 => "aarch64-linux-gnu",
        };
        for d in ["/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib"] {
            dirs.push(d.to_string());
        }
        dirs.push(format!("/lib/{t}"));
        dirs.push(format!("/usr/lib/{t}"));
        dirs
    }

    /// `include /etc/ld.so.conf.d/*.conf`: only the `DIR/*.SUFFIX` form.
    fn glob_conf(&self, pat: &str) -> Vec<String> {
        let (dir, file) = match pat.rsplit_once('/') {
            Some((d, f)) => (d.to_string(), f.to_string()),
            None => ("/etc".to_string(), pat.to_string()),
        };
        let Ok(fd) = self.open_dir(&dir) else {
            return vec![];
        };
        let Ok(names) = crate::tree::Tree::list(std::os::fd::AsFd::as_fd(&fd)) else {
            return vec![];
        };
        let mut out: Vec<String> = names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| match file.split_once('*') {
                Some((pre, suf)) => n.starts_with(pre) && n.ends_with(suf),
                None => *n == file,
            })
            .map(|n| format!("{dir}/{n}"))
            .collect();
        out.sort();
        out
    }

    fn elf(&self, path: &str) -> std::result::Result<Option<ElfInfo>, String> {
        let f = self.open(path).map_err(|e| format!("{path}: {e}"))?;
        elf::parse(&f).map_err(|e| format!("{path}: {e}"))
    }

    /// Finds a library by soname; Err(problem) when missing or wrong arch.
    fn find_lib(&mut self, name: &str, runpath: &[String]) -> std::result::Result<String, String> {
        if let Some(r) = self.lib_cache.get(name) {
            if runpath.is_empty() || r.is_ok() {
                return r.clone();
            }
        }
        // Runpath-specific results are not cached under the bare name.
        let mut res = Err(format!("library {name} not found"));
        let dirs: Vec<String> = runpath.iter().cloned().chain(self.lib_dirs.iter().cloned()).collect();
        let candidates: Vec<String> = if name.contains('/') {
            vec![name.to_string()]
        } else {
            dirs.iter().map(|d| format!("{}/{name}", d.trim_end_matches('/'))).collect()
        };
        for p in candidates {
            match self.elf(&p) {
                Ok(Some(i)) if i.machine == self.arch.elf_machine() => {
                    res = Ok(p);
                    break;
                }
                Ok(Some(i)) => res = Err(format!("library {p} is for {}", machine_name(i.machine))),
                _ => {}
            }
        }
        if runpath.is_empty() || res.is_err() {
            self.lib_cache.insert(name.to_string(), res.clone());
        }
        res
    }

    /// Problems running the executable at `path` (empty when fine), plus a
    /// description of what it is.
    fn check_exec(&mut self, path: &str, depth: u32) -> (String, Vec<String>) {
        let f = match self.open(path) {
            Ok(f) => f,
            Err(e) => return (String::new(), vec![format!("{path}: {e}")]),
        };
        match f.metadata() {
            Ok(m) if !m.is_file() => return (String::new(), vec![format!("{path} is not a regular file")]),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => return (String::new(), vec![format!("{path} is not executable")]),
            Err(e) => return (String::new(), vec![format!("{path}: {e}")]),
            _ => {}
        }
        let info = match elf::parse(&f) {
            Ok(Some(i)) => i,
            Ok(None) => return self.check_script(path, f, depth),
            Err(e) => return (String::new(), vec![format!("{path}: bad ELF: {e}")]),
        };
        if info.machine != self.arch.elf_machine() {
            return (String::new(), vec![format!("{path} is built for {}, not {}", machine_name(info.machine), self.arch.name())]);
        }
        let Some(interp) = info.interp.clone() else {
            return (format!("static ELF {}", self.arch.name()), vec![]);
        };
        let mut problems = Vec::new();
        if !self.exists(&interp) {
            problems.push(format!("{path}: loader {interp} missing"));
        }
        // Breadth-first over DT_NEEDED of the binary and its libraries.
        let rp = self.expand_runpath(&info.runpath, &f);
        let mut queue: VecDeque<(String, Vec<String>)> = info.needed.iter().map(|n| (n.clone(), rp.clone())).collect();
        let mut seen = HashSet::new();
        let mut found = 0;
        while let Some((lib, rp)) = queue.pop_front() {
            if !seen.insert(lib.clone()) || seen.len() > 512 {
                continue;
            }
            match self.find_lib(&lib, &rp) {
                Ok(p) => {
                    found += 1;
                    if let Ok(lf) = self.open(&p) {
                        if let Ok(Some(li)) = elf::parse(&lf) {
                            let lrp = self.expand_runpath(&li.runpath, &lf);
                            for n in li.needed {
                                queue.push_back((n, lrp.clone()));
                            }
                        }
                    }
                }
                Err(e) => problems.push(format!("{path}: {e}")),
            }
        }
        (format!("dynamic ELF {}, loader {interp}, {found} libraries", self.arch.name()), problems)
    }

    fn check_script(&mut self, path: &str, mut f: File, depth: u32) -> (String, Vec<String>) {
        let mut head = [0u8; 256];
        let n = f.read(&mut head).unwrap_or(0);
        if n < 2 || &head[..2] != b"#!" {
            return (String::new(), vec![format!("{path} is neither ELF nor a #! script")]);
        }
        let line = String::from_utf8_lossy(&head[2..n]);
        let interp = line.lines().next().unwrap_or("").split_whitespace().next().unwrap_or("").to_string();
        if interp.is_empty() || depth > 3 {
            return (String::new(), vec![format!("{path}: bad #! line")]);
        }
        let (what, p) = self.check_exec(&interp, depth + 1);
        (format!("script for {interp} ({what})"), p)
    }
}

/// Resolves `path` as if `root` were `/` (what RESOLVE_IN_ROOT does): `..`
/// stops at the root, absolute symlinks restart from it, at most 40 links.
fn open_in_root(root: &OwnedFd, path: &str) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsFd;
    let eio = |e: rustix::io::Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
    let dup = |fd: &OwnedFd| rustix::io::dup(fd).map_err(eio);
    let mut stack: Vec<OwnedFd> = vec![dup(root)?];
    let mut todo: VecDeque<String> = path.split('/').filter(|c| !c.is_empty()).map(String::from).collect();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == "." {
            continue;
        }
        if c == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let cur = stack.last().unwrap().as_fd();
        let st = rustix::fs::statat(cur, c.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW).map_err(eio)?;
        match rustix::fs::FileType::from_raw_mode(st.st_mode) {
            rustix::fs::FileType::Symlink => {
                links += 1;
                if links > 40 {
                    return Err(eio(rustix::io::Errno::LOOP));
                }
                let t = rustix::fs::readlinkat(cur, c.as_str(), Vec::new()).map_err(eio)?;
                let t = t.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    stack.truncate(1);
                }
                for part in t.split('/').filter(|p| !p.is_empty()).rev() {
                    todo.push_front(part.to_string());
                }
            }
            rustix::fs::FileType::Directory if !todo.is_empty() => {
                let fd = openat(cur, c.as_str(), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .map_err(eio)?;
                stack.push(fd);
            }
            _ if !todo.is_empty() => return Err(eio(rustix::io::Errno::NOTDIR)),
            // O_PATH: resolves without opening (a FIFO or device is
            // never opened here; the caller fstats and reopens).
            _ => return openat(cur, c.as_str(), OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(eio),
        }
    }
    // The path named a directory (or the root itself).
    dup(stack.last().unwrap())
}

struct Stats {
    files: u64,
    bytes: u64,
    setuid: Vec<String>,
    /// Device nodes (`/dev/zero (char 1:5)`): a rootfs usually has none.
    devices: Vec<String>,
}

fn walk_stats(root: &Path) -> Result<Stats> {
    let mut st = Stats { files: 0, bytes: 0, setuid: vec![], devices: vec![] };
    let mut seen_inodes = HashSet::new();
    let root_dev = fs::metadata(root).map_err(|e| Error::io("stat", root, e))?.dev();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let rd = fs::read_dir(&full).map_err(|e| Error::io("read", &full, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io("read", &full, e))?;
            let r = rel.join(e.file_name());
            let m = match fs::symlink_metadata(root.join(&r)) {
                Ok(m) => m,
                // Gone while walking (a live tree): not ours to report.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(Error::io("stat", root.join(&r), err)),
            };
            st.files += 1;
            if m.is_dir() {
                // Stay on the rootfs's filesystem (mounted /proc etc. are not content).
                if m.dev() == root_dev {
                    stack.push(r);
                }
            } else if m.is_file() {
                if m.nlink() < 2 || seen_inodes.insert((m.dev(), m.ino())) {
                    st.bytes += m.len();
                }
                if m.mode() & 0o6000 != 0 {
                    st.setuid.push(format!("/{}", r.display()));
                }
            } else if m.file_type().is_char_device() || m.file_type().is_block_device() {
                let kind = if m.file_type().is_char_device() { "char" } else { "block" };
                let (maj, min) = (rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev()));
                st.devices.push(format!("/{} ({kind} {maj}:{min})", r.display()));
            }
        }
    }
    st.setuid.sort();
    st.devices.sort();
    Ok(st)
}

pub fn run(o: &Opts) -> Result<()> {
    let m = fs::metadata(&o.dir).map_err(|e| Error::io("open", &o.dir, e))?;
    if !m.is_dir() {
        return Err(Error::format(o.dir.display().to_string(), "not a directory"));
    }
    let fd = openat(rustix::fs::CWD, &o.dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", &o.dir, std::io::Error::from_raw_os_error(e.raw_os_error())))?;
    let real = fs::canonicalize(&o.dir).map_err(|e| Error::io("resolve", &o.dir, e))?;
    let mut root = Root { fd, real, arch: o.arch, lib_dirs: vec![], lib_cache: HashMap::new() };
    root.lib_dirs = root.search_dirs();
    let mut problems = Vec::new();

    let ep = o.entrypoint.clone().unwrap_or_else(|| "/bin/sh".to_string());
    let ep_path =
        if ep.starts_with('/') { Some(ep.clone()) } else { PATH_DIRS.iter().map(|d| format!("{d}/{ep}")).find(|p| root.exists(p)) };
    let ep_desc = match &ep_path {
        None => {
            problems.push(format!("entrypoint {ep} not found in PATH"));
            String::new()
        }
        Some(p) => {
            let (d, mut pr) = root.check_exec(p, 0);
            problems.append(&mut pr);
            d
        }
    };
    if let Err(e) = root.open("/etc/passwd") {
        problems.push(if e.kind() == std::io::ErrorKind::NotFound { "/etc/passwd missing".into() } else { format!("/etc/passwd: {e}") });
    }
    // Other programs on PATH: reported, but only the entrypoint decides.
    let mut warnings = Vec::new();
    // Applet links and hard links name one binary: check each inode once.
    let mut checked = HashSet::new();
    if let Some(f) = ep_path.as_ref().and_then(|p| root.open(p).ok()) {
        if let Ok(m) = f.metadata() {
            checked.insert((m.dev(), m.ino()));
        }
    }
    for d in PATH_DIRS {
        // Listed through the rootfs (a `usr -> /` link stays inside it).
        let Ok(dfd) = root.open_dir(d) else { continue };
        let Ok(names) = crate::tree::Tree::list(std::os::fd::AsFd::as_fd(&dfd)) else {
            continue;
        };
        let mut names: Vec<String> = names.into_iter().map(|n| n.to_string_lossy().into_owned()).collect();
        names.sort();
        for n in names {
            let p = format!("{d}/{n}");
            if Some(&p) == ep_path.as_ref() {
                continue;
            }
            let Ok(f) = root.open(&p) else { continue };
            match f.metadata() {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                    if !checked.insert((m.dev(), m.ino())) {
                        continue;
                    }
                }
                _ => continue,
            }
            if let Ok(Some(_)) = elf::parse(&f) {
                let (_, pr) = root.check_exec(&p, 0);
                warnings.extend(pr);
            }
        }
    }
    let st = walk_stats(&o.dir)?;
    println!("rootfs: {}", o.dir.display());
    println!("arch: {}", o.arch.name());
    println!("entrypoint: {} ({})", ep_path.as_deref().unwrap_or(&ep), if ep_desc.is_empty() { "unusable" } else { &ep_desc });
    println!("size: {} bytes ({:.1} MiB)", st.bytes, st.bytes as f64 / 1048576.0);
    println!("files: {}", st.files);
    if st.setuid.is_empty() {
        println!("setuid: none");
    } else {
        println!("setuid: {}", st.setuid.join(" "));
    }
    if st.devices.is_empty() {
        println!("devices: none");
    } else {
        println!("devices: {}", st.devices.join(" "));
    }
    warnings.sort();
    warnings.dedup();
    for w in warnings.iter().take(20) {
        println!("warning: {w}");
    }
    if warnings.len() > 20 {
        println!("warning: ... and {} more", warnings.len() - 20);
    }
    if !problems.is_empty() {
        return Err(Error::Unusable { dir: o.dir.clone(), problems });
    }
    println!("ok");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_resolver_stays_in_root() {
        let base = std::env::temp_dir().join(format!("husk-rootfs-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("r/bin")).unwrap();
        fs::create_dir_all(base.join("r/etc")).unwrap();
        fs::write(base.join("r/bin/busybox"), b"inside").unwrap();
        fs::write(base.join("outside"), b"outside").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", base.join("r/bin/sh")).unwrap();
        std::os::unix::fs::symlink("../../../outside", base.join("r/etc/up")).unwrap();
        std::os::unix::fs::symlink("../bin/../bin/sh", base.join("r/etc/rel")).unwrap();
        std::os::unix::fs::symlink("loop", base.join("r/loop")).unwrap();
        let root = openat(rustix::fs::CWD, base.join("r"), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let read = |p: &str| -> Option<String> {
            use std::os::fd::AsRawFd;
            let f = open_in_root(&root, p).ok()?;
            let mut s = String::new();
            File::open(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()?.read_to_string(&mut s).ok()?;
            Some(s)
        };
        assert_eq!(read("/bin/sh").as_deref(), Some("inside"));
        assert_eq!(read("/etc/rel").as_deref(), Some("inside"));
        assert_eq!(read("/../../bin/busybox").as_deref(), Some("inside"));
        // `..` out of the root stops at the root: ../../../outside is /outside.
        assert_eq!(read("/etc/up"), None);
        assert!(open_in_root(&root, "/loop").is_err());
        assert!(open_in_root(&root, "/bin/busybox/x").is_err());
        let _ = fs::remove_dir_all(&base);
    }
}
