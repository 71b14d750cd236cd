//! The command line: `add`, `del`, `gc`, `list`. Errors are printed once,
//! as one line, here.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ops::{self, AddOpts, DelOpts};
use crate::store::{self, Store};
use crate::{conf, plugin};

const USAGE: &str = "husk-cni COMMAND ...
  add --config CONFLIST [--port [IP:]HOST:CONTAINER[/tcp|udp]]... [--ifname eth0]
                            a createRuntime hook: ADD (the OCI state on stdin)
  del [--network NAME | --config CONFLIST] [--id ID]
                            a poststop hook: DEL (the OCI state on stdin, unless --id);
                            without a network, every network the container is on
  gc                        DEL the attachments of containers that are gone (run at boot)
  list [--format table|json] [ID]
                            attachments and their addresses
options of every command:
  --dir DIR                 records and pins (default $HUSK_CNI_DIR, else /var/lib/husk-cni)
  --cni-path DIRS           where plugins are (default $CNI_PATH, else /opt/cni/bin:/usr/lib/cni)";

/// Parsed arguments: `--name VALUE` / `--name=VALUE` options (repeatable)
/// and positionals.
#[derive(Debug, Default)]
struct Args {
    opts: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Args {
    fn parse(argv: impl IntoIterator<Item = OsString>, known: &[&str]) -> Result<Args> {
        let mut a = Args::default();
        let mut it = argv.into_iter().map(|s| s.to_string_lossy().into_owned());
        while let Some(s) = it.next() {
            if let Some(name) = s.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (name.to_string(), None),
                };
                if !known.contains(&name.as_str()) && name != "dir" && name != "cni-path" {
                    return Err(Error::Usage(format!("unknown option --{name}; try husk-cni --help")));
                }
                let v = match inline {
                    Some(v) => v,
                    None => it.next().ok_or_else(|| Error::Usage(format!("--{name} needs a value")))?,
                };
                a.opts.push((name, v));
            } else if s.starts_with('-') && s.len() > 1 {
                return Err(Error::Usage(format!("unknown option {s}; try husk-cni --help")));
            } else {
                a.positional.push(s);
            }
        }
        Ok(a)
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.opts.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
    /// The value of an option given at most once.
    fn one(&self, name: &str) -> Result<Option<&str>> {
        match self.all(name)[..] {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err(Error::Usage(format!("--{name} given more than once"))),
        }
    }
    fn no_positional(&self, cmd: &str) -> Result<()> {
        match self.positional.first() {
            Some(p) => Err(Error::Usage(format!("{cmd}: unexpected argument {p:?}"))),
            None => Ok(()),
        }
    }
    fn store(&self) -> Result<Store> {
        Ok(Store::new(match self.one("dir")? {
            Some(d) => PathBuf::from(d),
            None => {
                std::env::var_os("HUSK_CNI_DIR").filter(|d| !d.is_empty()).map(PathBuf::from).unwrap_or_else(|| store::DEFAULT_DIR.into())
            }
        }))
    }
    fn cni_path(&self) -> Result<Option<String>> {
        Ok(self.one("cni-path")?.map(str::to_string))
    }
}

fn default_cni_path() -> String {
    std::env::var("CNI_PATH").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| plugin::DEFAULT_CNI_PATH.to_string())
}

fn stdin_state() -> Result<ops::Container> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).map_err(|e| Error::io("read", "stdin", e))?;
    ops::parse_state(&buf)
}

fn dispatch(argv: Vec<OsString>) -> Result<()> {
    let mut it = argv.into_iter();
    let cmd = it.next().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let rest: Vec<OsString> = it.collect();
    match cmd.as_str() {
        "add" => {
            let a = Args::parse(rest, &["config", "port", "ifname"])?;
            a.no_positional("add")?;
            let config = a.one("config")?.ok_or_else(|| Error::Usage("add needs --config CONFLIST".into()))?;
            let o = AddOpts {
                config: PathBuf::from(config),
                ports: a.all("port").into_iter().map(conf::parse_port).collect::<Result<_>>()?,
                ifname: a.one("ifname")?.unwrap_or("eth0").to_string(),
                cni_path: a.cni_path()?.unwrap_or_else(default_cni_path),
            };
            let store = a.store()?;
            ops::add(&store, &o, &stdin_state()?)
        }
        "del" => {
            let a = Args::parse(rest, &["network", "config", "id"])?;
            a.no_positional("del")?;
            let network = match (a.one("network")?, a.one("config")?) {
                (Some(_), Some(_)) => return Err(Error::Usage("--network and --config exclude each other".into())),
                (Some(n), None) => Some(n.to_string()),
                (None, Some(c)) => Some(conf::NetConf::load(PathBuf::from(c).as_path())?.name),
                (None, None) => None,
            };
            if let Some(n) = network.as_deref().filter(|n| !conf::valid_name(n)) {
                return Err(Error::Usage(format!("--network {n:?} is not a network name")));
            }
            let (id, from_hook) = match a.one("id")? {
                Some(id) => (id.to_string(), false),
                None => (stdin_state()?.id, true),
            };
            let store = a.store()?;
            ops::del(&store, &DelOpts { network, cni_path: a.cni_path()?, from_hook }, &id)
        }
        "gc" => {
            let a = Args::parse(rest, &[])?;
            a.no_positional("gc")?;
            ops::gc(&a.store()?, &mut std::io::stdout())
        }
        "list" => {
            let a = Args::parse(rest, &["format"])?;
            let json = match a.one("format")? {
                None | Some("table") => false,
                Some("json") => true,
                Some(f) => return Err(Error::Usage(format!("--format {f:?}: table or json"))),
            };
            if a.positional.len() > 1 {
                return Err(Error::Usage("list takes at most one container ID".into()));
            }
            ops::list(&a.store()?, a.positional.first().map(String::as_str), json, &mut std::io::stdout())
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        "version" | "--version" => {
            println!("husk-cni version {} (CNI spec 1.0.0, 0.4.0, 0.3.x)", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "" => Err(Error::Usage("no command; try husk-cni --help".into())),
        other => Err(Error::Usage(format!("unknown command {other:?}; try husk-cni --help"))),
    }
}

/// Runs husk-cni with `argv` (without the program name); returns the exit
/// code: 0, 1 for a failure, 2 for a bad command line.
pub fn run(argv: Vec<OsString>) -> i32 {
    match dispatch(argv) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("husk-cni: {e}");
            match e {
                Error::Usage(_) => 2,
                _ => 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn args() {
        let a = Args::parse(v(&["--config", "c", "--port=1:2", "--port", "3:4", "--dir", "/d"]), &["config", "port"]).unwrap();
        assert_eq!(a.one("config").unwrap(), Some("c"));
        assert_eq!(a.all("port"), ["1:2", "3:4"]);
        assert_eq!(a.store().unwrap().dir, PathBuf::from("/d"));
        assert!(Args::parse(v(&["--nope", "x"]), &[]).is_err());
        assert!(Args::parse(v(&["--config"]), &["config"]).is_err());
        assert!(Args::parse(v(&["--config", "a", "--config", "b"]), &["config"]).unwrap().one("config").is_err());
        assert_eq!(run(v(&["frobnicate"])), 2);
        assert_eq!(run(v(&["add", "--port", "80"])), 2);
    }
}
