//! Real clients drive husk unchanged: podman (+conmon), containerd (+ctr
//! and the io.containerd.runc.v2 shim) and Docker (dockerd with its own
//! containerd) run the flows of tests/clients/clients.sh, once with Debian's
//! runc and once with husk.
//! A flow that fails with runc too is an environment problem (printed, not
//! a husk failure); every flow that passes with runc must pass with husk.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use husk_tests::*;

fn have(cmd: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file())).unwrap_or(false)
}

/// Where clients.sh runs: on this host, or in a QEMU guest that boots on
/// the host's own userspace under cgroup v2 only (cross/qemu/hostroot.sh).
#[derive(Clone, Copy, PartialEq)]
enum Machine {
    Host,
    CgroupV2Guest,
}

/// What one run of clients.sh gave: flow → PASS/FAIL reason, and the
/// whole output.
type Flows = (BTreeMap<String, Result<(), String>>, String);

/// Runs the script with `runtime` on `machine`; None when the guest cannot
/// be booted (SKIP printed).
fn run_flows(runtime: &Path, machine: Machine) -> Option<Flows> {
    let script = workspace().join("tests/clients/clients.sh");
    let mut cmd = Command::new("bash");
    if machine == Machine::CgroupV2Guest {
        cmd.arg(workspace().join("cross/qemu/hostroot.sh")).args(["--timeout", "1500", "--", "bash"]);
        cmd.env("HUSK_ROOTFS", bin("husk-rootfs")).env("CLIENTS_TIMEOUT", "180");
    }
    let o = cmd
        .arg(&script)
        .arg(runtime)
        .env("CLIENTS_NO_INSTALL", "1")
        .env("CLIENTS_INIT", bin("husk-init"))
        .env("CLIENTS_HUSK_ROOTFS", bin("husk-rootfs"))
        .stdin(Stdio::null())
        .output()
        .expect("run clients.sh");
    if machine == Machine::CgroupV2Guest && o.status.code() == Some(77) {
        let e = stderr(&o);
        eprintln!(
            "SKIP: cannot boot a guest on the host's userspace: {}",
            e.lines().rfind(|l| l.contains("unavailable")).unwrap_or(e.trim())
        );
        return None;
    }
    let text = stdout(&o);
    let mut flows = BTreeMap::new();
    for l in text.lines() {
        if let Some(name) = l.strip_prefix("PASS ") {
            flows.insert(name.trim().to_string(), Ok(()));
        } else if let Some(rest) = l.strip_prefix("FAIL ") {
            let (name, why) = rest.split_once(": ").unwrap_or((rest, ""));
            flows.insert(name.trim().to_string(), Err(why.to_string()));
        }
    }
    // Indented, so the script's own "N passed, N failed" line is not taken
    // for the test runner's summary.
    let all = format!("{text}--- stderr ---\n{}", stderr(&o)).lines().map(|l| format!("  | {l}\n")).collect();
    Some((flows, all))
}

/// The engines' tools, or a SKIP line naming the missing ones; then runc
/// (the reference) and husk on `machine`, flow by flow: every flow that
/// passes with runc must pass with husk.
fn husk_like_runc(machine: Machine) {
    // One machine at a time: the guest's engines would compete with the
    // host's for the CPUs and push their commands past the time limits.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if skip_unless_root() {
        return;
    }
    let tools = ["podman", "conmon", "containerd", "ctr", "containerd-shim-runc-v2", "buildah", "dockerd", "docker", "unshare", "script"];
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if skip_unless(
        missing.is_empty(),
        &format!(
            "missing {missing:?}: apt-get install -y --no-install-recommends containerd podman buildah skopeo busybox-static catatonit tini docker.io"
        ),
    ) {
        return;
    }
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"].into_iter().map(Path::new).find(|p| p.exists());
    let Some(runc) = runc else {
        eprintln!("SKIP: runc is not installed: no reference to compare husk with");
        return;
    };
    let husk = bin("husk");
    let Some((with_runc, out_runc)) = run_flows(runc, machine) else { return };
    let Some((with_husk, out_husk)) = run_flows(&husk, machine) else { return };
    eprintln!("=== runc ===\n{out_runc}\n=== husk ===\n{out_husk}");
    assert!(!with_runc.is_empty(), "clients.sh printed no flow with runc:\n{out_runc}");
    assert!(!with_husk.is_empty(), "clients.sh printed no flow with husk:\n{out_husk}");

    if !with_runc.values().any(|r| r.is_ok()) {
        eprintln!("SKIP: environment problem: no client flow works even with runc");
        return;
    }
    let mut husk_failures = Vec::new();
    for (flow, r) in &with_runc {
        let h = with_husk.get(flow);
        let hs = match h {
            Some(Ok(())) => "PASS".to_string(),
            Some(Err(w)) => format!("FAIL ({w})"),
            None => "not run".to_string(),
        };
        match r {
            Ok(()) => {
                println!("{flow:<26} runc PASS  husk {hs}");
                if !matches!(h, Some(Ok(()))) {
                    husk_failures.push(format!("{flow}: {hs}"));
                }
            }
            Err(w) => println!("{flow:<26} runc FAIL ({w}) husk {hs}  [environment problem: fails with runc too]"),
        }
    }
    for flow in with_husk.keys().filter(|f| !with_runc.contains_key(*f)) {
        println!("{flow:<26} runc not run  husk {:?}", with_husk[flow]);
    }
    // The core flows must have run at all (not merely failed with both).
    const CORE: [&str; 8] =
        ["podman-run-echo", "podman-exec", "ctr-run-echo", "ctr-exec", "ctr-tty", "docker-run-echo", "docker-exec", "docker-update"];
    for core in CORE {
        assert!(with_runc.contains_key(core), "flow {core} was not run:\n{out_runc}");
    }
    assert!(husk_failures.is_empty(), "flows that pass with runc but not with husk:\n{}", husk_failures.join("\n"));
}

#[test]
fn podman_containerd_and_docker_drive_husk_like_runc() {
    husk_like_runc(Machine::Host);
}

/// The same flows on cgroup v2 (the host here is hybrid): the engines and
/// runtimes of this host, in a QEMU guest booted on its userspace.
#[test]
fn podman_containerd_and_docker_drive_husk_like_runc_on_cgroup_v2() {
    husk_like_runc(Machine::CgroupV2Guest);
}
