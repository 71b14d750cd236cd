//! `husk-rootfs pack`: reproducible tar or cpio (newc, for initramfs)
//! archives of a rootfs, optionally gzipped. Entries are sorted by name,
//! inode numbers are assigned in order, and `--mtime` (or SOURCE_DATE_EPOCH)
//! fixes every timestamp. The archive is written beside OUT and renamed into
//! place when complete.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct Opts {
    pub dir: PathBuf,
    pub out: PathBuf,
    pub mtime: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Tar,
    Cpio,
}

struct Item {
    rel: PathBuf,
    meta: fs::Metadata,
}

/// Every entry under `dir` (not the root itself), sorted bytewise by path,
/// parents before children.
fn walk(dir: &Path) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    fn rec(base: &Path, rel: &Path, out: &mut Vec<Item>) -> Result<()> {
        let full = base.join(rel);
        let mut names: Vec<OsString> = fs::read_dir(&full)
            .map_err(|e| Error::io("read", &full, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io("read", &full, e))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            let r = rel.join(&n);
            let p = base.join(&r);
            let meta = fs::symlink_metadata(&p).map_err(|e| Error::io("stat", &p, e))?;
            let is_dir = meta.is_dir();
            out.push(Item { rel: r.clone(), meta });
            if is_dir {
                rec(base, &r, out)?;
            }
        }
        Ok(())
    }
    rec(dir, Path::new(""), &mut out)?;
    Ok(out)
}

fn format_of(out: &Path) -> Result<(Format, bool)> {
    let n = out.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let (base, gz) = match n.strip_suffix(".gz") {
        Some(b) => (b.to_string(), true),
        None => match n.strip_suffix(".tgz") {
            Some(b) => (format!("{b}.tar"), true),
            None => (n.clone(), false),
        },
    };
    if base.ends_with(".tar") {
        Ok((Format::Tar, gz))
    } else if base.ends_with(".cpio") {
        Ok((Format::Cpio, gz))
    } else {
        Err(Error::Usage(format!("{}: output must end in .tar, .tar.gz, .tgz, .cpio or .cpio.gz", out.display())))
    }
}

/// Removes the temporary output unless committed.
struct TmpOut {
    path: PathBuf,
    keep: bool,
}
impl Drop for TmpOut {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub fn run(o: &Opts) -> Result<()> {
    let (fmt, gz) = format_of(&o.out)?;
    let m = fs::metadata(&o.dir).map_err(|e| Error::io("open", &o.dir, e))?;
    if !m.is_dir() {
        return Err(Error::format(o.dir.display().to_string(), "not a directory"));
    }
    let parent = match o.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cdir = fs::canonicalize(&o.dir).map_err(|e| Error::io("resolve", &o.dir, e))?;
    let cparent = fs::canonicalize(&parent).map_err(|e| Error::io("resolve", &parent, e))?;
    if cparent.starts_with(&cdir) {
        return Err(Error::Usage(format!("{}: output must not be inside the rootfs", o.out.display())));
    }
    let mtime = o.mtime.or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse().ok()));
    let items = walk(&o.dir)?;
    let name = o.out.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = TmpOut { path: crate::staging::tmp_sibling(&parent, &name), keep: false };
    let f =
        fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp.path).map_err(|e| Error::io("create", &tmp.path, e))?;
    let w = BufWriter::with_capacity(256 * 1024, f);
    let werr = |e: std::io::Error| Error::io("write", &o.out, e);
    let file = if gz {
        let mut enc = flate2::GzBuilder::new().mtime(0).write(w, flate2::Compression::default());
        write_archive(fmt, &o.dir, &items, mtime, &mut enc)?;
        enc.finish().map_err(werr)?
    } else {
        let mut w = w;
        write_archive(fmt, &o.dir, &items, mtime, &mut w)?;
        w
    };
    let f = file.into_inner().map_err(|e| werr(e.into_error()))?;
    f.sync_all().map_err(werr)?;
    fs::rename(&tmp.path, &o.out).map_err(|e| Error::io("rename into place", &o.out, e))?;
    let mut tmp = tmp;
    tmp.keep = true;
    let size = fs::metadata(&o.out).map(|m| m.len()).unwrap_or(0);
    println!("packed {} entries into {} ({} bytes)", items.len(), o.out.display(), size);
    Ok(())
}

fn open_nofollow(p: &Path) -> Result<File> {
    fs::OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32).open(p).map_err(|e| Error::io("open", p, e))
}

fn write_archive<W: Write>(fmt: Format, dir: &Path, items: &[Item], mtime: Option<u64>, w: &mut W) -> Result<()> {
    match fmt {
        Format::Tar => write_tar(dir, items, mtime, w),
        Format::Cpio => write_cpio(dir, items, mtime, w),
    }
}

/// Hard-link groups: (dev, ino) -> (first path, links inside the tree).
fn link_groups(items: &[Item]) -> HashMap<(u64, u64), (PathBuf, u32)> {
    let mut g: HashMap<(u64, u64), (PathBuf, u32)> = HashMap::new();
    for it in items {
        if it.meta.file_type().is_file() && it.meta.nlink() > 1 {
            g.entry((it.meta.dev(), it.meta.ino())).or_insert_with(|| (it.rel.clone(), 0)).1 += 1;
        }
    }
    g
}

fn pax_record(key: &str, val: &[u8]) -> Vec<u8> {
    let body = key.len() + val.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(val);
    r.push(b'\n');
    r
}

fn xattrs_of(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(p, &mut names[..]) else {
        return out;
    };
    for name in names[..n].split(|c| *c == 0).filter(|s| !s.is_empty()) {
        let key = String::from_utf8_lossy(name).into_owned();
        let mut val = vec![0u8; 65536];
        if let Ok(m) = rustix::fs::lgetxattr(p, name, &mut val[..]) {
            val.truncate(m);
            out.push((key, val));
        }
    }
    out.sort();
    out
}

fn write_tar<W: Write>(dir: &Path, items: &[Item], mtime: Option<u64>, w: &mut W) -> Result<()> {
    let groups = link_groups(items);
    let mut b = tar::Builder::new(w);
    let err = |p: &Path, e: std::io::Error| Error::io("archive", p, e);
    for it in items {
        let full = dir.join(&it.rel);
        let m = &it.meta;
        let ft = m.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(m.uid() as u64);
        h.set_gid(m.gid() as u64);
        h.set_mtime(mtime.unwrap_or(m.mtime().max(0) as u64));
        h.set_size(0);
        if !ft.is_symlink() {
            let xs = xattrs_of(&full);
            if !xs.is_empty() {
                let mut data = Vec::new();
                for (k, v) in &xs {
                    data.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
                }
                let mut xh = tar::Header::new_ustar();
                xh.set_entry_type(tar::EntryType::XHeader);
                xh.set_size(data.len() as u64);
                xh.set_mode(0o644);
                xh.set_mtime(mtime.unwrap_or(0));
                b.append_data(&mut xh, "PaxHeader", &data[..]).map_err(|e| err(&full, e))?;
            }
        }
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            b.append_data(&mut h, &it.rel, std::io::empty()).map_err(|e| err(&full, e))?;
        } else if ft.is_symlink() {
            let t = fs::read_link(&full).map_err(|e| Error::io("readlink", &full, e))?;
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, &it.rel, &t).map_err(|e| err(&full, e))?;
        } else if ft.is_file() {
            if let Some((first, _)) = groups.get(&(m.dev(), m.ino())) {
                if first != &it.rel {
                    h.set_entry_type(tar::EntryType::Link);
                    b.append_link(&mut h, &it.rel, first).map_err(|e| err(&full, e))?;
                    continue;
                }
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(m.len());
            let f = open_nofollow(&full)?;
            b.append_data(&mut h, &it.rel, f.take(m.len())).map_err(|e| err(&full, e))?;
        } else {
            let ty = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else if ft.is_fifo() {
                tar::EntryType::Fifo
            } else {
                eprintln!("husk-rootfs: warning: {}: sockets are not archived", full.display());
                continue;
            };
            h.set_entry_type(ty);
            if !ft.is_fifo() {
                let r = m.rdev();
                h.set_device_major(rustix::fs::major(r)).map_err(|e| err(&full, e))?;
                h.set_device_minor(rustix::fs::minor(r)).map_err(|e| err(&full, e))?;
            }
            b.append_data(&mut h, &it.rel, std::io::empty()).map_err(|e| err(&full, e))?;
        }
    }
    b.finish().map_err(|e| err(dir, e))?;
    Ok(())
}

struct Cpio<'a, W: Write> {
    w: &'a mut W,
    off: u64,
}

impl<W: Write> Cpio<'_, W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.w.write_all(b)?;
        self.off += b.len() as u64;
        Ok(())
    }
    fn pad(&mut self) -> std::io::Result<()> {
        let n = (4 - (self.off % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }
    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        ino: u32,
        mode: u32,
        uid: u32,
        gid: u32,
        nlink: u32,
        mtime: u64,
        size: u64,
        rdev: (u32, u32),
        name: &[u8],
    ) -> std::io::Result<()> {
        if size > u32::MAX as u64 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "file too large for cpio newc (4 GiB)"));
        }
        let h = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime as u32,
            size as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.put(h.as_bytes())?;
        self.put(name)?;
        self.put(&[0])?;
        self.pad()
    }
}

fn write_cpio<W: Write>(dir: &Path, items: &[Item], mtime: Option<u64>, w: &mut W) -> Result<()> {
    let groups = link_groups(items);
    let mut inos: HashMap<(u64, u64), u32> = HashMap::new();
    let mut c = Cpio { w, off: 0 };
    let mut next_ino = 1u32;
    for it in items {
        let full = dir.join(&it.rel);
        let err = |e: std::io::Error| Error::io("archive", &full, e);
        let m = &it.meta;
        let ft = m.file_type();
        let name = it.rel.as_os_str().as_bytes();
        let t = mtime.unwrap_or(m.mtime().max(0) as u64);
        let key = (m.dev(), m.ino());
        let (ino, first) = match inos.get(&key) {
            Some(i) if ft.is_file() => (*i, false),
            _ => {
                let i = next_ino;
                next_ino += 1;
                if ft.is_file() && m.nlink() > 1 {
                    inos.insert(key, i);
                }
                (i, true)
            }
        };
        let nlink = if ft.is_dir() { 2 } else { groups.get(&key).map(|g| g.1).unwrap_or(1) };
        if ft.is_file() {
            // Data rides with the first link; later links carry none.
            let size = if first { m.len() } else { 0 };
            c.header(ino, m.mode(), m.uid(), m.gid(), nlink, t, size, (0, 0), name).map_err(err)?;
            if size > 0 {
                let f = open_nofollow(&full)?;
                let n = std::io::copy(&mut f.take(size), c.w).map_err(err)?;
                if n != size {
                    return Err(Error::format(full.display().to_string(), "file changed while packing"));
                }
                c.off += n;
                c.pad().map_err(err)?;
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&full).map_err(|e| Error::io("readlink", &full, e))?;
            let tb = target.as_os_str().as_bytes();
            c.header(ino, m.mode(), m.uid(), m.gid(), 1, t, tb.len() as u64, (0, 0), name).map_err(err)?;
            c.put(tb).map_err(err)?;
            c.pad().map_err(err)?;
        } else {
            if ft.is_socket() {
                eprintln!("husk-rootfs: warning: {}: sockets are not archived", full.display());
                continue;
            }
            let rdev = if ft.is_char_device() || ft.is_block_device() {
                (rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev()))
            } else {
                (0, 0)
            };
            c.header(ino, m.mode(), m.uid(), m.gid(), nlink, t, 0, rdev, name).map_err(err)?;
        }
    }
    c.header(0, 0, 0, 0, 1, 0, 0, (0, 0), b"TRAILER!!!").map_err(|e| Error::io("archive", dir, e))?;
    // Pad the archive to a 512-byte block like GNU cpio.
    let n = ((512 - (c.off % 512)) % 512) as usize;
    c.put(&vec![0u8; n]).map_err(|e| Error::io("archive", dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record("SCHILY.xattr.user.a", b"v");
        let s = String::from_utf8(r.clone()).unwrap();
        let (len, _) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), r.len());
        assert_eq!(String::from_utf8_lossy(&pax_record("k", b"xxx")), "8 k=xxx\n");
        // Where adding the length's own digits carries it to two digits.
        assert_eq!(String::from_utf8_lossy(&pax_record("k", b"xxxxx")), "11 k=xxxxx\n");
    }

    #[test]
    fn output_formats() {
        assert_eq!(format_of(Path::new("a.tar")).unwrap(), (Format::Tar, false));
        assert_eq!(format_of(Path::new("a.tgz")).unwrap(), (Format::Tar, true));
        assert_eq!(format_of(Path::new("x/a.cpio.gz")).unwrap(), (Format::Cpio, true));
        assert!(format_of(Path::new("a.zip")).is_err());
    }
}
