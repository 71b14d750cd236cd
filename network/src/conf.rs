//! Network configuration lists (CNI spec section 1), the port mappings of
//! `--port`, and the configuration each plugin gets on stdin (section 3:
//! `cniVersion` and `name` of the list, `runtimeConfig` for the
//! capabilities it declares, `prevResult`, no `capabilities`).

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// A validated network configuration list.
#[derive(Debug, Clone)]
pub struct NetConf {
    /// The whole list as read (what the record keeps, so DEL runs with the
    /// configuration ADD had even if the file changes).
    pub raw: Value,
    pub name: String,
    pub version: String,
}

/// Network names and container IDs as the spec restricts them: an
/// alphanumeric first character, then alphanumerics, `_`, `.` or `-`.
/// (Safe as a path component: no `/`, never `.` or `..`.)
pub fn valid_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
        && s.len() <= 1024
}

/// CNI_IFNAME: a Linux interface name.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() < 16 && s != "." && s != ".." && !s.bytes().any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace())
}

/// "X.Y.Z" as numbers, for comparing versions.
fn semver(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split('.').map(|p| p.parse::<u32>().ok());
    let v = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(v)
}

impl NetConf {
    pub fn load(path: &Path) -> Result<NetConf> {
        let text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let v: Value = serde_json::from_slice(&text).map_err(|e| Error::config(path, "", format!("not JSON: {e}")))?;
        NetConf::from_value(path, v)
    }

    /// Validates a list; a single network config (`type` at the top, no
    /// `plugins`) is taken as a list of one, as libcni does.
    pub fn from_value(path: &Path, mut v: Value) -> Result<NetConf> {
        let Some(obj) = v.as_object_mut() else {
            return Err(Error::config(path, "", "not a JSON object"));
        };
        if !obj.contains_key("plugins") && obj.contains_key("type") {
            let mut plugin = obj.clone();
            plugin.remove("cniVersion");
            plugin.remove("name");
            obj.retain(|k, _| k == "cniVersion" || k == "name");
            obj.insert("plugins".into(), json!([plugin]));
        }
        let version = match obj.get("cniVersion") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::config(path, "/cniVersion", "not a string")),
            None => return Err(Error::config(path, "/cniVersion", "missing")),
        };
        match semver(&version) {
            None => return Err(Error::config(path, "/cniVersion", format!("{version:?} is not a version (X.Y.Z)"))),
            Some(v) if v < (0, 3, 0) => {
                return Err(Error::config(path, "/cniVersion", format!("{version}: plugin chaining needs 0.3.0 or later")))
            }
            _ => {}
        }
        let name = match obj.get("name") {
            Some(Value::String(s)) if valid_name(s) => s.clone(),
            Some(Value::String(s)) => {
                return Err(Error::config(path, "/name", format!("{s:?}: must be alphanumerics, '_', '.' or '-', starting alphanumeric")))
            }
            Some(_) => return Err(Error::config(path, "/name", "not a string")),
            None => return Err(Error::config(path, "/name", "missing")),
        };
        let plugins = match obj.get("plugins") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) => return Err(Error::config(path, "/plugins", "empty")),
            Some(_) => return Err(Error::config(path, "/plugins", "not an array")),
            None => return Err(Error::config(path, "/plugins", "missing")),
        };
        for (i, p) in plugins.iter().enumerate() {
            let Some(p) = p.as_object() else {
                return Err(Error::config(path, format!("/plugins/{i}"), "not a JSON object"));
            };
            match p.get("type") {
                Some(Value::String(t)) if !t.is_empty() && !t.contains('/') && t != "." && t != ".." => {}
                Some(Value::String(t)) => {
                    return Err(Error::config(path, format!("/plugins/{i}/type"), format!("{t:?} is not a plugin name")))
                }
                Some(_) => return Err(Error::config(path, format!("/plugins/{i}/type"), "not a string")),
                None => return Err(Error::config(path, format!("/plugins/{i}/type"), "missing")),
            }
            if let Some(c) = p.get("capabilities") {
                if !c.is_object() {
                    return Err(Error::config(path, format!("/plugins/{i}/capabilities"), "not a JSON object"));
                }
            }
        }
        Ok(NetConf { raw: v, name, version })
    }

    pub fn plugins(&self) -> &[Value] {
        self.raw["plugins"].as_array().map(|a| a.as_slice()).unwrap_or(&[])
    }

    /// The `type` of plugin `i`.
    pub fn plugin_type(&self, i: usize) -> &str {
        self.plugins()[i]["type"].as_str().unwrap_or("")
    }

    /// Whether some plugin declares capability `cap`.
    pub fn has_capability(&self, cap: &str) -> bool {
        self.plugins().iter().any(|p| p["capabilities"][cap] == json!(true))
    }

    /// What plugin `i` gets on stdin. `runtime` holds the capability
    /// arguments the runtime has (`portMappings`); only those the plugin
    /// declares go into its `runtimeConfig`.
    pub fn exec_config(&self, i: usize, runtime: &Map<String, Value>, prev: Option<&Value>) -> Value {
        let mut p = self.plugins()[i].as_object().cloned().unwrap_or_default();
        let caps = p.remove("capabilities");
        p.insert("cniVersion".into(), json!(self.version));
        p.insert("name".into(), json!(self.name));
        let mut rc = Map::new();
        for (k, v) in runtime {
            if caps.as_ref().and_then(|c| c.get(k)) == Some(&json!(true)) {
                rc.insert(k.clone(), v.clone());
            }
        }
        if rc.is_empty() {
            p.remove("runtimeConfig");
        } else {
            p.insert("runtimeConfig".into(), Value::Object(rc));
        }
        match prev {
            Some(r) => p.insert("prevResult".into(), r.clone()),
            None => p.remove("prevResult"),
        };
        Value::Object(p)
    }
}

/// `[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]` as a CNI port mapping.
pub fn parse_port(s: &str) -> Result<Value> {
    let bad = |m: &str| Error::input(format!("--port {s}"), m.to_string());
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p @ ("tcp" | "udp" | "sctp"))) => (a, p),
        Some(_) => return Err(bad("protocol must be tcp, udp or sctp")),
        None => (s, "tcp"),
    };
    let (host_ip, host, cont) = match spec.rsplitn(3, ':').collect::<Vec<_>>()[..] {
        [c, h] => (None, h, c),
        [c, h, ip] => (Some(ip.trim_start_matches('[').trim_end_matches(']')), h, c),
        _ => return Err(bad("expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]")),
    };
    let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0);
    let (Some(hp), Some(cp)) = (port(host), port(cont)) else {
        return Err(bad("ports must be numbers from 1 to 65535"));
    };
    let mut m = json!({"hostPort": hp, "containerPort": cp, "protocol": proto});
    if let Some(ip) = host_ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(bad("host IP is not an IP address"));
        }
        m["hostIP"] = json!(ip);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(v: Value) -> Result<NetConf> {
        NetConf::from_value(Path::new("t.conflist"), v)
    }

    #[test]
    fn validates_lists() {
        let ok = json!({"cniVersion": "1.0.0", "name": "n1", "plugins": [{"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": true}}]});
        let c = conf(ok.clone()).unwrap();
        assert_eq!(c.name, "n1");
        assert!(c.has_capability("portMappings"));
        let e = |v: Value| conf(v).unwrap_err().to_string();
        assert_eq!(e(json!([])), "t.conflist: not a JSON object");
        assert_eq!(e(json!({"name": "n", "plugins": [{"type": "x"}]})), "t.conflist: /cniVersion: missing");
        assert_eq!(e(json!({"cniVersion": "1.0.0", "name": "-n", "plugins": [{"type": "x"}]})).split(':').nth(1), Some(" /name"));
        assert_eq!(e(json!({"cniVersion": "1.0.0", "name": "n", "plugins": []})), "t.conflist: /plugins: empty");
        assert_eq!(
            e(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}, {"type": "../x"}]})),
            "t.conflist: /plugins/1/type: \"../x\" is not a plugin name"
        );
        assert_eq!(
            e(json!({"cniVersion": "0.2.0", "name": "n", "plugins": [{"type": "a"}]})),
            "t.conflist: /cniVersion: 0.2.0: plugin chaining needs 0.3.0 or later"
        );
    }

    #[test]
    fn single_config_becomes_a_list() {
        let c = conf(json!({"cniVersion": "0.4.0", "name": "n", "type": "bridge", "bridge": "br0"})).unwrap();
        assert_eq!(c.plugins(), [json!({"type": "bridge", "bridge": "br0"})]);
        assert_eq!(c.version, "0.4.0");
    }

    #[test]
    fn exec_config_as_the_spec_derives_it() {
        let c = conf(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [
            {"type": "bridge", "runtimeConfig": {"stale": 1}},
            {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": true}, "snat": true}]}))
        .unwrap();
        let mut rt = Map::new();
        rt.insert("portMappings".into(), json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
        assert_eq!(c.exec_config(0, &rt, None), json!({"type": "bridge", "cniVersion": "1.0.0", "name": "n"}));
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        assert_eq!(
            c.exec_config(1, &rt, Some(&prev)),
            json!({"type": "portmap", "snat": true, "cniVersion": "1.0.0", "name": "n",
                   "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
                   "prevResult": prev})
        );
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("8080:80").unwrap(), json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}));
        assert_eq!(parse_port("53:5353/udp").unwrap(), json!({"hostPort": 53, "containerPort": 5353, "protocol": "udp"}));
        assert_eq!(
            parse_port("127.0.0.1:8080:80/tcp").unwrap(),
            json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"})
        );
        assert_eq!(parse_port("[::1]:8080:80").unwrap()["hostIP"], json!("::1"));
        assert!(parse_port("80").is_err());
        assert!(parse_port("0:80").is_err());
        assert!(parse_port("8080:80/icmp").is_err());
        assert!(parse_port("x:8080:80").is_err());
        assert_eq!(parse_port("70000:80").unwrap_err().to_string(), "--port 70000:80: ports must be numbers from 1 to 65535");
    }

    #[test]
    fn names() {
        assert!(valid_name("web-1.a_b"));
        assert!(!valid_name("_x") && !valid_name("") && !valid_name("a/b") && !valid_name(".."));
        assert!(valid_ifname("eth0") && !valid_ifname("a b") && !valid_ifname("0123456789abcdef"));
    }
}
