//! OCI hooks: run with the state JSON on stdin, the hook's own args, its
//! env (or, without one, ours, as runc), and killed after `timeout`
//! seconds.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use husk_oci::spec::Hook;

use crate::error::{Error, Result};

pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run(kind, i, h, state_json)?;
    }
    Ok(())
}

/// Hooks whose failure is only a warning (poststart, poststop).
pub fn run_all_warn(kind: &str, hooks: &[Hook], state_json: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run(kind, i, h, state_json) {
            crate::log::warn(&e.to_string());
        }
    }
}

/// Writes the state to the hook's stdin. A hook that exits without reading
/// it closes the pipe: that must be EPIPE for us, never a SIGPIPE death.
fn feed(stdin: &mut std::process::ChildStdin, data: &[u8]) {
    // SAFETY: changing and restoring our own SIGPIPE disposition; husk is
    // single-threaded while it runs hooks.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let _ = stdin.write_all(data);
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGPIPE, old) };
}

/// An anonymous file for a hook's stderr.
fn stderr_file() -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create with a static C string; returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"hook-stderr".as_ptr(), libc::MFD_CLOEXEC) };
    // SAFETY: a fresh fd nothing else owns.
    (fd >= 0).then(|| unsafe { std::fs::File::from_raw_fd(fd) })
}

/// What a hook wrote to its stderr (at most the last 4 KiB).
fn read_back(f: &mut std::fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut s = Vec::new();
    let _ = f.read_to_end(&mut s);
    String::from_utf8_lossy(&s).into_owned()
}

/// "exit status 3", or "killed by signal 31 (bad system call)".
fn describe(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => {
            // SAFETY: strsignal returns a pointer to a static string.
            let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(s)) }.to_string_lossy().to_lowercase();
            format!("killed by signal {s} ({name})")
        }
        _ => st.to_string(),
    }
}

pub fn run(kind: &str, index: usize, h: &Hook, state_json: &[u8]) -> Result<()> {
    let err = |msg: String| Error::Hook { kind: kind.into(), index, path: h.path.clone(), msg };
    let mut cmd = Command::new(&h.path);
    if let Some(a0) = h.args.first() {
        cmd.arg0(a0);
        cmd.args(&h.args[1..]);
    }
    if let Some(env) = &h.env {
        cmd.env_clear();
        for e in env {
            if let Some((k, v)) = e.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped());
    // The hook's stderr goes to a memfd (no pipe a hook's child could hold
    // open): on failure its last line joins husk's one-line error, as runc
    // puts it in its message; on success it is passed on.
    let mut errf = stderr_file();
    if let Some(f) = &errf {
        if let Ok(f2) = f.try_clone() {
            cmd.stderr(Stdio::from(f2));
        }
    }
    let mut child = cmd.spawn().map_err(|e| err(format!("{e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        feed(&mut stdin, state_json);
    }
    let deadline = h.timeout.filter(|t| *t > 0).map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut done = |st: std::process::ExitStatus| {
        let text = errf.as_mut().map(read_back).unwrap_or_default();
        if st.success() {
            if !text.is_empty() {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
            Ok(())
        } else {
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).map(str::trim).unwrap_or("");
            Err(err(if last.is_empty() { describe(st) } else { format!("{}: {last}", describe(st)) }))
        }
    };
    let Some(deadline) = deadline else {
        return done(child.wait().map_err(|e| err(format!("wait: {e}")))?);
    };
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return done(st),
            Ok(None) => {}
            Err(e) => return Err(err(format!("wait: {e}"))),
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(format!("timed out after {}s", h.timeout.unwrap_or(0))));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
