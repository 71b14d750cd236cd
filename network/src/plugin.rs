//! Running one CNI plugin (spec section 2): the executable named by `type`
//! found in CNI_PATH, the parameters in `CNI_*` variables, the execution
//! config on stdin, a result (ADD) or an error JSON on stdout.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Where plugins are looked for when neither `--cni-path` nor CNI_PATH
/// says: upstream's directory, then Debian's.
pub const DEFAULT_CNI_PATH: &str = "/opt/cni/bin:/usr/lib/cni";

/// The search path plugins get when husk-cni runs without one (as a hook
/// with a hook `env` that has no PATH): portmap and bridge's ipMasq run
/// `iptables`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The executable for plugin `name` in the `:`-separated `cni_path`.
pub fn find(cni_path: &str, name: &str) -> Option<PathBuf> {
    cni_path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false))
}

/// The parameters of one attachment.
pub struct Params<'a> {
    pub container_id: &'a str,
    /// None for a DEL whose namespace is gone (the spec allows it).
    pub netns: Option<&'a Path>,
    pub ifname: &'a str,
    pub cni_path: &'a str,
}

/// Runs `exe` with `command` (`ADD`, `DEL`) and `config` on stdin. Ok is
/// the parsed stdout (Null when empty, as DEL prints nothing); Err is one
/// line: the CNI error's message, code and details, or else the last line
/// of stderr and the exit status.
pub fn exec(exe: &Path, command: &str, p: &Params<'_>, config: &Value) -> std::result::Result<Value, String> {
    let mut cmd = Command::new(exe);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CNI_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", p.container_id)
        .env("CNI_IFNAME", p.ifname)
        .env("CNI_PATH", p.cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ns) = p.netns {
        cmd.env("CNI_NETNS", ns);
    }
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", DEFAULT_PATH);
    }
    let mut child = cmd.spawn().map_err(|e| format!("exec {}: {e}", exe.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin that exits without reading gives EPIPE (std ignores
        // SIGPIPE); its exit status tells the rest.
        let _ = stdin.write_all(&serde_json::to_vec(config).unwrap_or_default());
    }
    let out = child.wait_with_output().map_err(|e| format!("wait for {}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        if stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_str(&stdout).map_err(|e| format!("result is not JSON ({e}): {}", one_line(&stdout)));
    }
    if let Ok(v) = serde_json::from_str::<Value>(&stdout) {
        if let Some(msg) = v.get("msg").and_then(Value::as_str) {
            let mut m = msg.to_string();
            if let Some(d) = v.get("details").and_then(Value::as_str).filter(|d| !d.is_empty()) {
                m = format!("{m}: {d}");
            }
            if let Some(c) = v.get("code").and_then(Value::as_u64) {
                m = format!("{m} (CNI error {c})");
            }
            return Err(one_line(&m));
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().chain(stdout.lines()).rfind(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
    let status = describe(out.status);
    Err(if last.is_empty() { status } else { one_line(&format!("{last} ({status})")) })
}

/// Newlines and runs of white space as single spaces: one line of output.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn describe(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => st.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn results_and_errors() {
        let d = std::env::temp_dir().join(format!("husk-cni-plugin-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = Params { container_id: "c1", netns: Some(Path::new("/proc/1/ns/net")), ifname: "eth0", cni_path: "/x" };
        let cfg = json!({"cniVersion": "1.0.0", "name": "n"});
        // Parameters arrive in the environment, the config on stdin.
        let echo = script(
            &d,
            "echo",
            r#"read -r c; printf '{"env":"%s %s %s %s %s","in":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_PATH" "$c""#,
        );
        let v = exec(&echo, "ADD", &p, &cfg).unwrap();
        assert_eq!(v["env"], json!("ADD c1 /proc/1/ns/net eth0 /x"));
        assert_eq!(v["in"], cfg);
        assert_eq!(exec(&script(&d, "quiet", "exit 0"), "DEL", &p, &cfg).unwrap(), Value::Null);
        let fail = script(
            &d,
            "fail",
            "cat <<'E'\n{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"bad config\",\"details\":\"no\\nsubnet\"}\nE\nexit 1",
        );
        assert_eq!(exec(&fail, "ADD", &p, &cfg).unwrap_err(), "bad config: no subnet (CNI error 7)");
        let crash = script(&d, "crash", "echo 'panic: oops' >&2; exit 2");
        assert_eq!(exec(&crash, "ADD", &p, &cfg).unwrap_err(), "panic: oops (exit status 2)");
        assert_eq!(find(&format!("/nonexistent:{}", d.display()), "echo"), Some(echo));
        assert_eq!(find(d.to_str().unwrap(), "absent"), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}
