//! The attachment operations (CNI spec section 3): ADD runs the plugins in
//! order chaining `prevResult`, and on a failure DELs them all in reverse;
//! DEL runs them in reverse with the final ADD result; gc DELs what a
//! container that is gone left; list shows the records.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::conf::{self, NetConf};
use crate::error::{Error, Result};
use crate::plugin::{self, Params};
use crate::store::{self, Record, Store};

/// The container as the OCI state on a hook's stdin describes it.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub pid: i32,
}

/// Parses the OCI state JSON (runtime-spec "State") a hook gets on stdin.
pub fn parse_state(text: &[u8]) -> Result<Container> {
    let what = "OCI state on stdin";
    let v: Value = serde_json::from_slice(text).map_err(|e| Error::input(what, format!("not JSON: {e}")))?;
    let id = v.get("id").and_then(Value::as_str).ok_or_else(|| Error::input(what, "no \"id\" string"))?;
    let pid = v.get("pid").and_then(Value::as_i64).unwrap_or(0);
    Ok(Container { id: id.to_string(), pid: i32::try_from(pid).map_err(|_| Error::input(what, format!("\"pid\" {pid} out of range")))? })
}

fn check_id(id: &str) -> Result<()> {
    if conf::valid_name(id) {
        Ok(())
    } else {
        Err(Error::input(format!("container ID {id:?}"), "CNI wants alphanumerics, '_', '.' or '-', starting alphanumeric"))
    }
}

pub struct AddOpts {
    pub config: PathBuf,
    /// CNI port mappings (from `--port`).
    pub ports: Vec<Value>,
    pub ifname: String,
    pub cni_path: String,
}

/// The executables of every plugin of `c`, and of the IPAM plugins they
/// delegate to, resolved before anything runs.
fn resolve(c: &NetConf, cni_path: &str) -> Result<Vec<PathBuf>> {
    let missing = |plugin: &str, msg: String| Error::Plugin {
        network: c.name.clone(),
        plugin: plugin.to_string(),
        command: "lookup",
        msg,
        rollback: None,
    };
    let mut exes = Vec::new();
    for (i, p) in c.plugins().iter().enumerate() {
        let t = c.plugin_type(i);
        exes.push(plugin::find(cni_path, t).ok_or_else(|| missing(t, format!("not found in CNI_PATH {cni_path}")))?);
        if let Some(ipam) = p["ipam"]["type"].as_str() {
            if ipam.contains('/') || plugin::find(cni_path, ipam).is_none() {
                return Err(missing(t, format!("IPAM plugin {ipam:?} not found in CNI_PATH {cni_path}")));
            }
        }
    }
    Ok(exes)
}

/// `add`: attaches the container to the network of `o.config`.
pub fn add(store: &Store, o: &AddOpts, ct: &Container) -> Result<()> {
    check_id(&ct.id)?;
    if ct.pid <= 0 {
        return Err(Error::input("OCI state on stdin", "no \"pid\": add runs as a createRuntime hook, when the container's init exists"));
    }
    if !conf::valid_ifname(&o.ifname) {
        return Err(Error::Usage(format!("--ifname {:?} is not an interface name", o.ifname)));
    }
    let c = NetConf::load(&o.config)?;
    if !o.ports.is_empty() && !c.has_capability("portMappings") {
        return Err(Error::config(
            &o.config,
            "/plugins",
            "--port needs a plugin with \"capabilities\": {\"portMappings\": true} (portmap)",
        ));
    }
    let exes = resolve(&c, &o.cni_path)?;
    let start_time = store::start_time(ct.pid).ok_or_else(|| Error::input("OCI state on stdin", format!("no process {}", ct.pid)))?;
    // A container without a network namespace of its own (none in
    // config.json) shares ours: ADD would configure the host's network.
    let ns = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).map_err(|e| Error::io("stat", p, e));
    if ns(&format!("/proc/{}/ns/net", ct.pid))? == ns("/proc/self/ns/net")? {
        return Err(Error::input(
            format!("container {}", ct.id),
            "shares husk-cni's network namespace (config.json has no network namespace of its own): refusing to configure it",
        ));
    }
    let _lock = store.lock(&c.name)?;
    if let Some(old) = store.load(&c.name, &ct.id)? {
        if store::alive(&old) {
            return Err(Error::Attached { network: c.name.clone(), id: ct.id.clone() });
        }
        // A container of this name that is gone without its DEL (killed
        // husk, no delete): undo its attachment first.
        del_record(store, &old, None)?;
    }
    let netns = store.pin(&c.name, &ct.id, ct.pid)?;
    let mut rt = Map::new();
    if !o.ports.is_empty() {
        rt.insert("portMappings".into(), json!(o.ports));
    }
    let mut r = Record {
        network: c.name.clone(),
        id: ct.id.clone(),
        ifname: o.ifname.clone(),
        netns,
        pid: ct.pid,
        start_time,
        boot_id: store::boot_id(),
        cni_path: o.cni_path.clone(),
        config: c.raw.clone(),
        config_path: o.config.display().to_string(),
        runtime_config: Value::Object(rt.clone()),
        complete: false,
        result: Value::Null,
    };
    if let Err(e) = store.save(&r) {
        let _ = store::unpin(&r.netns);
        return Err(e);
    }
    let params = Params { container_id: &ct.id, netns: Some(&r.netns), ifname: &o.ifname, cni_path: &o.cni_path };
    for (i, exe) in exes.iter().enumerate() {
        let prev = (!r.result.is_null()).then_some(&r.result);
        let res = plugin::exec(exe, "ADD", &params, &c.exec_config(i, &rt, prev)).and_then(|v| {
            if v.is_object() {
                Ok(v)
            } else {
                Err(format!("result is not a JSON object: {v}"))
            }
        });
        match res {
            Ok(v) => {
                r.result = v;
                store.save(&r)?;
            }
            Err(msg) => {
                // Spec: on a failed ADD, DEL every plugin of the list in
                // reverse order, those not called included.
                let rollback = match del_record(store, &r, None) {
                    Ok(()) => format!("rolled back (DEL of {} plugin{})", exes.len(), if exes.len() == 1 { "" } else { "s" }),
                    Err(e) => format!("rollback failed ({e}); `husk-cni gc` retries it"),
                };
                return Err(Error::Plugin {
                    network: c.name.clone(),
                    plugin: c.plugin_type(i).to_string(),
                    command: "ADD",
                    msg,
                    rollback: Some(rollback),
                });
            }
        }
    }
    r.complete = true;
    store.save(&r)?;
    store.update_addr(&r.id)
}

/// DELs one attachment: every plugin in reverse order with the record's
/// config, runtimeConfig and last result; then the pin, the record and the
/// address file go. `cni_path` overrides the record's.
pub fn del_record(store: &Store, r: &Record, cni_path: Option<&str>) -> Result<()> {
    let path = store.record_path(&r.network, &r.id);
    let c = NetConf::from_value(&path, r.config.clone())?;
    let cni_path = cni_path.unwrap_or(&r.cni_path);
    // A pin that is gone (a reboot) means the namespace is: CNI_NETNS is
    // then left out, as the spec allows for DEL.
    let netns = store::is_pinned(&r.netns).then_some(r.netns.as_path());
    let params = Params { container_id: &r.id, netns, ifname: &r.ifname, cni_path };
    let rt = r.runtime_config.as_object().cloned().unwrap_or_default();
    let prev = (!r.result.is_null()).then_some(&r.result);
    for i in (0..c.plugins().len()).rev() {
        let t = c.plugin_type(i);
        let fail = |msg: String| Error::Plugin { network: c.name.clone(), plugin: t.to_string(), command: "DEL", msg, rollback: None };
        let exe = plugin::find(cni_path, t).ok_or_else(|| fail(format!("not found in CNI_PATH {cni_path}")))?;
        plugin::exec(&exe, "DEL", &params, &c.exec_config(i, &rt, prev)).map_err(fail)?;
    }
    store::unpin(&r.netns)?;
    store.remove(r)?;
    store.update_addr(&r.id)
}

pub struct DelOpts {
    /// None: every network the container is attached to.
    pub network: Option<String>,
    pub cni_path: Option<String>,
    /// The ID came from the OCI state of a poststop hook (not `--id`): a
    /// record whose container still runs is then another container's.
    pub from_hook: bool,
}

/// `del`: detaches container `id` (from one network or all of them).
pub fn del(store: &Store, o: &DelOpts, id: &str) -> Result<()> {
    check_id(id)?;
    let nets: Vec<String> = match &o.network {
        Some(n) => vec![n.clone()],
        None => store.all()?.into_iter().filter(|(_, i)| i == id).map(|(n, _)| n).collect(),
    };
    for net in nets {
        let _lock = store.lock(&net)?;
        let Some(r) = store.load(&net, id)? else { continue };
        if o.from_hook && store::alive(&r) {
            return Err(Error::input(
                format!("network {net}: container {id}"),
                format!("the attachment belongs to a running container (pid {}): left alone", r.pid),
            ));
        }
        del_record(store, &r, o.cni_path.as_deref())?;
    }
    Ok(())
}

/// `gc`: DELs every attachment whose container is gone (its init exited,
/// or the machine rebooted), removes pins and address files without a
/// record. Goes on past failures; the first one is returned.
pub fn gc(store: &Store, out: &mut dyn std::io::Write) -> Result<()> {
    let mut first: Option<Error> = None;
    let mut failed = 0;
    for (net, id) in store.all()? {
        let res = (|| {
            let _lock = store.lock(&net)?;
            match store.load(&net, &id)? {
                Some(r) if !store::alive(&r) => {
                    del_record(store, &r, None)?;
                    let _ = writeln!(out, "deleted {net} {id} (container gone)");
                    Ok(())
                }
                _ => Ok(()),
            }
        })();
        if let Err(e) = res {
            failed += 1;
            first.get_or_insert(e);
        }
    }
    for p in store.orphan_pins()? {
        store::unpin(&p)?;
    }
    for id in store.orphan_addrs()? {
        store.update_addr(&id)?;
    }
    match first {
        Some(e) if failed > 1 => Err(Error::input(e.to_string(), format!("and {} more attachment(s) failed", failed - 1))),
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `list`: the records, as a table or as JSON.
pub fn list(store: &Store, id: Option<&str>, json_out: bool, out: &mut dyn std::io::Write) -> Result<()> {
    let mut rows = Vec::new();
    for (net, rid) in store.all()? {
        if id.is_some_and(|i| i != rid) {
            continue;
        }
        if let Some(r) = store.load(&net, &rid)? {
            let state = if !r.complete {
                "adding"
            } else if store::alive(&r) {
                "up"
            } else {
                "stale"
            };
            rows.push((r, state));
        }
    }
    let io = |e| Error::io("write", Path::new("stdout"), e);
    if json_out {
        let v: Vec<Value> = rows
            .iter()
            .map(|(r, state)| {
                json!({"network": r.network, "containerId": r.id, "ifName": r.ifname, "addresses": r.addresses(),
                       "state": state, "pid": r.pid, "result": r.result})
            })
            .collect();
        return writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default()).map_err(io);
    }
    writeln!(out, "{:<16} {:<24} {:<8} {:<7} ADDRESSES", "NETWORK", "CONTAINER", "IFNAME", "STATE").map_err(io)?;
    for (r, state) in rows {
        writeln!(out, "{:<16} {:<24} {:<8} {:<7} {}", r.network, r.id, r.ifname, state, r.addresses().join(",")).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_from_stdin() {
        let c = parse_state(br#"{"ociVersion":"1.2.0","id":"web","status":"created","pid":42,"bundle":"/b"}"#).unwrap();
        assert_eq!((c.id.as_str(), c.pid), ("web", 42));
        // poststop: stopped, pid 0 (or absent).
        assert_eq!(parse_state(br#"{"id":"web","status":"stopped"}"#).unwrap().pid, 0);
        assert_eq!(parse_state(b"{}").unwrap_err().to_string(), "OCI state on stdin: no \"id\" string");
        assert!(parse_state(b"").unwrap_err().to_string().starts_with("OCI state on stdin: not JSON"));
        assert!(check_id("-x").is_err());
    }
}
