//! `spec` (a default config.json, like `runc spec`), `features`, and the
//! checkpoint/restore commands husk leaves out.

use std::path::Path;

use serde_json::Value;

use super::{flag, Args, Command, Global};
use crate::error::{Error, Result};

pub const SPEC: Command = Command {
    name: "spec",
    about: "create a new specification file",
    args: "",
    flags: &[
        flag(&["bundle", "b"], true, "path to the root of the bundle directory"),
        flag(&["rootless"], false, "generate a configuration for a rootless container"),
        flag(
            &["hardened"],
            false,
            "husk's appliance default instead of runc's: Docker's capabilities and seccomp profile, a cgroup namespace",
        ),
    ],
    stop_at_arg: false,
    run: spec,
};

pub const FEATURES: Command =
    Command { name: "features", about: "show the enabled features", args: "", flags: &[], stop_at_arg: false, run: show_features };

pub const CHECKPOINT: Command = Command {
    name: "checkpoint",
    about: "not supported: checkpoint a running container (CRIU)",
    args: "<container-id>",
    flags: CHECKPOINT_FLAGS,
    stop_at_arg: false,
    run: no_criu,
};

pub const RESTORE: Command = Command {
    name: "restore",
    about: "not supported: restore a container from a previous checkpoint (CRIU)",
    args: "<container-id>",
    flags: RESTORE_FLAGS,
    stop_at_arg: false,
    run: no_criu,
};

/// runc 1.1's checkpoint flags, accepted so that a runc command line gets
/// the one "not supported" line rather than a complaint about its flags.
const CHECKPOINT_FLAGS: &[super::Flag] = &[
    flag(&["image-path"], true, "ignored: path for saving criu image files"),
    flag(&["work-path"], true, "ignored: path for saving work files and logs"),
    flag(&["parent-path"], true, "ignored: path for previous criu image files in pre-dump"),
    flag(&["leave-running"], false, "ignored: leave the process running after checkpointing"),
    flag(&["tcp-established"], false, "ignored: allow open tcp connections"),
    flag(&["ext-unix-sk"], false, "ignored: allow external unix sockets"),
    flag(&["shell-job"], false, "ignored: allow shell jobs"),
    flag(&["lazy-pages"], false, "ignored: use userfaultfd to lazily restore memory pages"),
    flag(&["status-fd"], true, "ignored: criu writes to this FD once lazy-pages is ready"),
    flag(&["page-server"], true, "ignored: ADDRESS:PORT of the page server"),
    flag(&["file-locks"], false, "ignored: handle file locks, for safety"),
    flag(&["pre-dump"], false, "ignored: dump container's memory information only"),
    flag(&["manage-cgroups-mode"], true, "ignored: cgroups mode: soft|full|strict|ignore"),
    flag(&["empty-ns"], true, "ignored: create a namespace, but don't restore its properties"),
    flag(&["auto-dedup"], false, "ignored: enable auto deduplication of memory images"),
];

/// runc 1.1's restore flags (see [`CHECKPOINT_FLAGS`]).
const RESTORE_FLAGS: &[super::Flag] = &[
    flag(&["console-socket"], true, "ignored: path to an AF_UNIX socket for the console"),
    flag(&["image-path"], true, "ignored: path to criu image files for restoring"),
    flag(&["work-path"], true, "ignored: path for saving work files and logs"),
    flag(&["tcp-established"], false, "ignored: allow open tcp connections"),
    flag(&["ext-unix-sk"], false, "ignored: allow external unix sockets"),
    flag(&["shell-job"], false, "ignored: allow shell jobs"),
    flag(&["file-locks"], false, "ignored: handle file locks, for safety"),
    flag(&["manage-cgroups-mode"], true, "ignored: cgroups mode: soft|full|strict|ignore"),
    flag(&["bundle", "b"], true, "ignored: path to the root of the bundle directory"),
    flag(&["detach", "d"], false, "ignored: detach from the container's process"),
    flag(&["pid-file"], true, "ignored: file to write the process id to"),
    flag(&["no-subreaper"], false, "ignored: disable the use of the subreaper"),
    flag(&["no-pivot"], false, "ignored: do not use pivot root"),
    flag(&["empty-ns"], true, "ignored: create a namespace, but don't restore its properties"),
    flag(&["auto-dedup"], false, "ignored: enable auto deduplication of memory images"),
    flag(&["lazy-pages"], false, "ignored: use userfaultfd to lazily restore memory pages"),
    flag(&["lsm-profile"], true, "ignored: the LSM profile for the restored process"),
    flag(&["lsm-mount-context"], true, "ignored: the LSM mount context for the restore"),
];

fn no_criu(_: &Global, _: &Args) -> Result<i32> {
    Err(Error::Usage("checkpoint/restore (CRIU) is not supported by husk".into()))
}

/// `runc spec`'s config, or with `hardened` husk's own default with
/// Docker's seccomp profile.
pub fn default_config(rootless: bool, hardened: bool) -> Value {
    if !hardened {
        return husk_oci::defaults::config(rootless);
    }
    let mut c = husk_oci::defaults::hardened(rootless);
    c["linux"]["seccomp"] = serde_json::to_value(husk_seccomp::default_profile()).unwrap_or(Value::Null);
    c
}

fn spec(_: &Global, a: &Args) -> Result<i32> {
    if !a.pos.is_empty() {
        return Err(Error::Usage("spec takes no arguments".into()));
    }
    write(Path::new(a.get("bundle").unwrap_or(".")), a.has("rootless"), a.has("hardened"))?;
    Ok(0)
}

fn show_features(_: &Global, a: &Args) -> Result<i32> {
    if !a.pos.is_empty() {
        return Err(Error::Usage("features takes no arguments".into()));
    }
    println!("{}", serde_json::to_string_pretty(&features()).unwrap_or_default());
    Ok(0)
}

/// Writes `bundle/config.json` (never over an existing one).
pub fn write(bundle: &Path, rootless: bool, hardened: bool) -> Result<()> {
    let p = bundle.join("config.json");
    if p.exists() {
        return Err(Error::Other(format!("{}: already exists; remove it first", p.display())));
    }
    let data = serde_json::to_vec_pretty(&default_config(rootless, hardened)).map_err(|e| Error::Other(e.to_string()))?;
    crate::state::write_atomic_mode(&p, &data, 0o644)
}

/// runtime-spec features.md: what this build supports.
pub fn features() -> Value {
    let mut f = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": husk_oci::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::child::mounts::known_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": husk_oci::names::CAPABILITIES.to_vec(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"io.github.husk.version": env!("CARGO_PKG_VERSION")}
    });
    f["linux"]["seccomp"] = husk_seccomp::features_json();
    f
}
