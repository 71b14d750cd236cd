//! The runtime's side of cgroups: what create/kill/delete/state need, over
//! the cgroups module. The cgroup is stored in state.json as JSON (null when
//! cgroups are disabled).

use serde_json::Value;

use crate::cgroups::{self, Cgroup, Mode, Resources};
use crate::config::Spec;
use crate::error::{Error, Result};
use crate::state::State;

/// How husk manages cgroups (`--cgroup-manager`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    Cgroupfs,
    Disabled,
}

fn cg_err(e: cgroups::Error) -> Error {
    Error::Cgroup(e.to_string())
}

/// `linux.resources` parsed, with the failing field named.
pub fn resources(spec: &Spec) -> Result<Option<Resources>> {
    match &spec.linux().resources {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_path_to_error::deserialize::<_, Resources>(v.clone())
            .map(Some)
            .map_err(|e| Error::Config { field: format!("linux.resources.{}", e.path()), msg: e.into_inner().to_string() }),
    }
}

/// Creates the container's cgroup and applies its resources; returns its
/// serialised form for state.json.
pub fn create(mgr: Manager, spec: &Spec, id: &str) -> Result<Value> {
    let mut res = resources(spec)?;
    if let Some(rules) = res.as_mut().and_then(|r| r.devices.as_mut()) {
        allow_container_devices(rules, spec);
    }
    let mode = match mgr {
        Manager::Disabled => Mode::Disabled,
        Manager::Cgroupfs => cgroups::detect(),
    };
    if mode == Mode::Disabled {
        return Ok(Value::Null);
    }
    let cg = Cgroup::new(mode, spec.linux().cgroups_path.as_deref(), id).map_err(cg_err)?;
    cg.create(res.as_ref()).map_err(cg_err)?;
    serde_json::to_value(&cg).map_err(|e| Error::Other(format!("cgroup state: {e}")))
}

/// After the config's device rules, allow the nodes of `linux.devices`, as
/// runc and crun do.
fn allow_container_devices(rules: &mut Vec<cgroups::DeviceRule>, spec: &Spec) {
    let rule = |kind: &str, major: i64, minor: Option<i64>| {
        serde_json::from_value::<cgroups::DeviceRule>(serde_json::json!({
            "allow": true, "type": kind, "major": major, "minor": minor, "access": "rwm"
        }))
        .ok()
    };
    // The default devices are allowed by the cgroups module ahead of the
    // config's rules (so a config can still deny them).
    let mut extra: Vec<Option<cgroups::DeviceRule>> = Vec::new();
    for d in &spec.linux().devices {
        let kind = if d.typ == "b" { "b" } else { "c" };
        if d.typ != "p" {
            extra.push(rule(kind, d.major.unwrap_or(0), d.minor));
        }
    }
    rules.extend(extra.into_iter().flatten());
}

pub fn load(v: &Value) -> Option<Cgroup> {
    if v.is_null() {
        return None;
    }
    serde_json::from_value(v.clone()).ok()
}

/// The cgroup of a container, or a clear error when it has none.
pub fn of(st: &State) -> Result<Cgroup> {
    load(&st.husk.cgroup).ok_or_else(|| Error::State { id: st.id.clone(), msg: "has no cgroup (cgroups disabled)".into() })
}

pub fn add_pid(v: &Value, pid: i32) -> Result<()> {
    match load(v) {
        Some(cg) => cg.add_pid(pid).map_err(cg_err),
        None => Ok(()),
    }
}

/// For a `cgroup` mount: (host dir of the container's cgroup, subdir name)
/// per hierarchy; and whether the host is pure v2.
pub fn mount_binds(v: &Value) -> (Vec<(String, String)>, bool) {
    let Some(cg) = load(v) else { return (Vec::new(), false) };
    let binds = cg
        .hierarchies
        .iter()
        .map(|h| {
            let name = h.controllers.iter().map(|c| c.strip_prefix("name=").unwrap_or(c)).collect::<Vec<_>>().join(",");
            (h.dir.to_string_lossy().into_owned(), name)
        })
        .collect();
    (binds, cg.is_v2())
}

pub fn destroy(v: &Value) -> Result<()> {
    match load(v) {
        Some(cg) => cg.destroy().map_err(cg_err),
        None => Ok(()),
    }
}

pub fn is_frozen(st: &State) -> bool {
    load(&st.husk.cgroup).is_some_and(|cg| cg.is_frozen())
}

pub fn pids(v: &Value) -> Result<Vec<i32>> {
    match load(v) {
        Some(cg) => cg.pids().map_err(cg_err),
        None => Ok(Vec::new()),
    }
}

pub fn kill_all(v: &Value, sig: i32) -> Result<()> {
    match load(v) {
        Some(cg) => cg.kill_all(sig).map_err(cg_err),
        None => Ok(()),
    }
}

pub fn freeze(st: &State, on: bool) -> Result<()> {
    let cg = of(st)?;
    if on { cg.freeze() } else { cg.thaw() }.map_err(cg_err)
}

pub fn update(st: &State, args: &[String]) -> Result<()> {
    cgroups::cmd_update(&of(st)?, args).map_err(cg_err)
}

pub fn events(st: &State, stats_only: bool, interval: u64, root: &std::path::Path) -> Result<()> {
    let cg = of(st)?;
    let id = st.id.clone();
    let root = root.to_path_buf();
    let running = move || State::load(&root, &id).map(|s| s.alive()).unwrap_or(false);
    cgroups::cmd_events(&cg, &st.id, stats_only, interval, &running).map_err(cg_err)
}
