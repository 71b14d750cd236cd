//! Reading and writing cgroup control files, with errors naming the file.

use super::error::Error;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

thread_local! {
    /// Old contents of the files written while a [`Journal`] is open.
    static JOURNAL: std::cell::RefCell<Option<Vec<(std::path::PathBuf, String)>>> = const { std::cell::RefCell::new(None) };
}

/// Records every file `write` changes (its content before the first
/// write), so that a failed `update` can put the old values back.
pub struct Journal(());

impl Journal {
    pub fn start() -> Journal {
        JOURNAL.with(|j| *j.borrow_mut() = Some(Vec::new()));
        Journal(())
    }

    /// Writes the recorded old values back, newest first. Files that
    /// cannot be read back (devices.allow/deny) were not recorded.
    pub fn roll_back(self) {
        let entries = JOURNAL.with(|j| j.borrow_mut().take()).unwrap_or_default();
        for (path, old) in entries.iter().rev() {
            let _ = raw_write(path, old.trim_end());
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        JOURNAL.with(|j| *j.borrow_mut() = None);
    }
}

fn raw_write(path: &Path, val: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(path)?.write_all(val.as_bytes())
}

/// Writes `val` to a cgroup file in one write(2) (cgroup files need that).
pub fn write(controller: &str, path: &Path, val: &str) -> Result<(), Error> {
    JOURNAL.with(|j| {
        if let Some(list) = j.borrow_mut().as_mut() {
            if !list.iter().any(|(p, _)| p == path) {
                if let Ok(old) = std::fs::read_to_string(path) {
                    // Multi-line files (io.max, rdma.max, devices.list…)
                    // cannot be written back in one line: not recorded.
                    if old.trim_end().lines().count() == 1 {
                        list.push((path.to_path_buf(), old));
                    }
                }
            }
        }
    });
    let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| Error::io(controller, path, "open", &e))?;
    f.write_all(val.as_bytes()).map_err(|e| Error::io(controller, path, format!("write {}", val.trim_end()), &e))
}

pub fn read(controller: &str, path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::io(controller, path, "read", &e))
}

/// First line, trimmed.
pub fn read_line(controller: &str, path: &Path) -> Result<String, Error> {
    Ok(read(controller, path)?.lines().next().unwrap_or("").trim().to_string())
}

/// A number, "max" (→ u64::MAX) or empty.
pub fn read_u64(controller: &str, path: &Path) -> Result<u64, Error> {
    let s = read_line(controller, path)?;
    parse_u64(&s).ok_or_else(|| Error::Io {
        controller: controller.to_string(),
        path: path.to_path_buf(),
        op: format!("parse {s:?}"),
        errno: libc::EINVAL,
    })
}

pub fn parse_u64(s: &str) -> Option<u64> {
    match s.trim() {
        "max" => Some(u64::MAX),
        t => t.parse().ok(),
    }
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, …).
pub fn read_kv(controller: &str, path: &Path) -> Result<BTreeMap<String, u64>, Error> {
    Ok(parse_kv(&read(controller, path)?))
}

pub fn parse_kv(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Process IDs listed in `cgroup.procs` of `dir` and of every cgroup below it.
pub fn procs_recursive(controller: &str, dir: &Path, out: &mut Vec<i32>) -> Result<(), Error> {
    let f = dir.join("cgroup.procs");
    match std::fs::read_to_string(&f) {
        Ok(s) => out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io(controller, &f, "read", &e)),
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                procs_recursive(controller, &e.path(), out)?;
            }
        }
    }
    Ok(())
}

/// Removes `dir` and every cgroup below it (deepest first). A missing
/// directory is fine; EBUSY is retried a few times (the kernel may still be
/// releasing the last exited task).
pub fn rmdir_tree(controller: &str, dir: &Path) -> Result<(), Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io(controller, dir, "read directory", &e)),
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            rmdir_tree(controller, &e.path())?;
        }
    }
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(Error::io(controller, dir, "rmdir", &e)),
        }
    }
}
