//! Just enough ELF parsing for `check`: the machine, the program interpreter
//! and the DT_NEEDED libraries, read with positioned reads (no whole-file load).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub machine: u16,
    pub is64: bool,
    /// PT_INTERP: the dynamic loader's path (None for static binaries).
    pub interp: Option<String>,
    /// DT_NEEDED sonames.
    pub needed: Vec<String>,
    /// DT_RPATH / DT_RUNPATH directories.
    pub runpath: Vec<String>,
}

struct Rd<'a> {
    f: &'a File,
    le: bool,
    is64: bool,
}

impl Rd<'_> {
    fn bytes(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        self.f.read_exact_at(&mut b, off)?;
        Ok(b)
    }
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }
    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }
    fn u64(&self, b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        if self.le {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    }
    /// A word: u64 in ELF64, u32 in ELF32.
    fn word(&self, b: &[u8], at64: usize, at32: usize) -> u64 {
        if self.is64 {
            self.u64(b, at64)
        } else {
            self.u32(b, at32) as u64
        }
    }
}

struct Phdr {
    ptype: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Returns Ok(None) when the file is not ELF.
pub fn parse(f: &File) -> io::Result<Option<ElfInfo>> {
    let mut h = [0u8; 64];
    let n = f.read_at(&mut h, 0)?;
    if n < 52 || &h[..4] != b"\x7fELF" {
        return Ok(None);
    }
    let is64 = match h[4] {
        1 => false,
        2 => true,
        _ => return Err(bad("bad ELF class")),
    };
    if is64 && n < 64 {
        return Err(bad("short ELF header"));
    }
    let le = h[5] != 2;
    let r = Rd { f, le, is64 };
    let machine = r.u16(&h, 18);
    let phoff = r.word(&h, 32, 28);
    let (phentsize, phnum) = if is64 { (r.u16(&h, 54) as u64, r.u16(&h, 56) as u64) } else { (r.u16(&h, 42) as u64, r.u16(&h, 44) as u64) };
    let mut info = ElfInfo { machine, is64, interp: None, needed: vec![], runpath: vec![] };
    let min_ent = if is64 { 56 } else { 32 };
    if phnum == 0 || phentsize < min_ent || phentsize > 256 || phnum > 4096 {
        return Ok(Some(info));
    }
    let tbl = r.bytes(phoff, (phentsize * phnum) as usize)?;
    let mut ph = Vec::new();
    for i in 0..phnum as usize {
        let e = &tbl[i * phentsize as usize..];
        ph.push(if is64 {
            Phdr { ptype: r.u32(e, 0), offset: r.u64(e, 8), vaddr: r.u64(e, 16), filesz: r.u64(e, 32) }
        } else {
            Phdr { ptype: r.u32(e, 0), offset: r.u32(e, 4) as u64, vaddr: r.u32(e, 8) as u64, filesz: r.u32(e, 16) as u64 }
        });
    }
    for p in &ph {
        if p.ptype == 3 && p.filesz > 0 && p.filesz < 4096 {
            let b = r.bytes(p.offset, p.filesz as usize)?;
            let s = b.split(|c| *c == 0).next().unwrap_or(&[]);
            info.interp = Some(String::from_utf8_lossy(s).into_owned());
        }
    }
    let Some(dynp) = ph.iter().find(|p| p.ptype == 2) else {
        return Ok(Some(info));
    };
    if dynp.filesz > 1 << 20 {
        return Err(bad("oversized dynamic section"));
    }
    let d = r.bytes(dynp.offset, dynp.filesz as usize)?;
    let esz = if is64 { 16 } else { 8 };
    let (mut strtab, mut strsz) = (None, 0u64);
    let mut needed = Vec::new();
    let mut paths = Vec::new();
    for e in d.chunks_exact(esz) {
        let tag = r.word(e, 0, 0);
        let val = if is64 { r.u64(e, 8) } else { r.u32(e, 4) as u64 };
        match tag {
            0 => break,
            1 => needed.push(val),
            5 => strtab = Some(val),
            10 => strsz = val,
            15 | 29 => paths.push(val),
            _ => {}
        }
    }
    let Some(strtab) = strtab else {
        return Ok(Some(info));
    };
    // Map the string table's address to a file offset through PT_LOAD.
    let Some(load) = ph.iter().find(|p| p.ptype == 1 && p.vaddr <= strtab && strtab < p.vaddr + p.filesz) else {
        return Ok(Some(info));
    };
    let off = strtab - load.vaddr + load.offset;
    let strsz = strsz.min(load.vaddr + load.filesz - strtab).min(8 << 20);
    let strs = r.bytes(off, strsz as usize)?;
    let get = |o: u64| -> String {
        let o = o as usize;
        if o >= strs.len() {
            return String::new();
        }
        let s = strs[o..].split(|c| *c == 0).next().unwrap_or(&[]);
        String::from_utf8_lossy(s).into_owned()
    };
    info.needed = needed.into_iter().map(get).collect();
    info.runpath =
        paths.into_iter().flat_map(|o| get(o).split(':').map(str::to_string).collect::<Vec<_>>()).filter(|s| !s.is_empty()).collect();
    Ok(Some(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_busybox_is_static() {
        let Ok(f) = File::open("/bin/busybox") else {
            eprintln!("SKIP: /bin/busybox not installed");
            return;
        };
        let i = parse(&f).unwrap().expect("busybox is ELF");
        // Not compared with Arch::host(): these tests also run under qemu.
        assert!(i.machine == 62 || i.machine == 183, "machine {}", i.machine);
        assert_eq!(i.interp, None);
        assert!(i.needed.is_empty());
    }

    #[test]
    fn dynamic_binary_has_interp_and_libc() {
        let f = File::open("/bin/ls").unwrap();
        let i = parse(&f).unwrap().unwrap();
        assert!(i.interp.as_deref().unwrap().contains("ld-linux"), "{:?}", i.interp);
        assert!(i.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", i.needed);
    }

    #[test]
    fn text_file_is_not_elf() {
        let f = File::open("/etc/passwd").unwrap();
        assert_eq!(parse(&f).unwrap(), None);
    }
}
