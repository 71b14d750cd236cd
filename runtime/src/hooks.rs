//! OCI hooks: run with the state JSON on stdin, the hook's own args and env,
//! and killed after `timeout` seconds.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Hook;
use crate::error::{Error, Result};

pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for h in hooks {
        run(kind, h, state_json)?;
    }
    Ok(())
}

pub fn run(kind: &str, h: &Hook, state_json: &[u8]) -> Result<()> {
    let err = |msg: String| Error::Hook { kind: kind.into(), path: h.path.clone(), msg };
    let mut cmd = Command::new(&h.path);
    if let Some(a0) = h.args.first() {
        cmd.arg0(a0);
        cmd.args(&h.args[1..]);
    }
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| err(format!("{e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state_json);
    }
    let deadline = h.timeout.filter(|t| *t > 0).map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return if st.success() {
                    Ok(())
                } else {
                    Err(err(format!("failed: {st}")))
                };
            }
            Ok(None) => {}
            Err(e) => return Err(err(format!("wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(format!("timed out after {}s", h.timeout.unwrap_or(0))));
        }
        if deadline.is_none() {
            let st = child.wait().map_err(|e| err(format!("wait: {e}")))?;
            return if st.success() { Ok(()) } else { Err(err(format!("failed: {st}"))) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
