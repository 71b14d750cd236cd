//! runc-compatible command line: global flags, then a command with its
//! flags (before or after the container id).

use std::path::{Path, PathBuf};

use crate::cgroups_glue::Manager;
use crate::container::{self, CreateOpts};
use crate::error::{Error, Result};
use crate::state::{self, State};

const USAGE: &str = "usage: husk [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--cgroup-manager cgroupfs|disabled] COMMAND [ARGS]
commands:
  create [--bundle DIR] [--pid-file F] [--console-socket SOCK] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
  start ID
  run [create's flags] [--detach] ID
  state ID
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  list [--format table|json] [--quiet]
  exec [--process F] [--tty] [--console-socket S] [--detach] [--pid-file F] [--cwd D] [--env K=V]… [--user UID[:GID]] [--cap CAP]… ID [ARGS…]
  ps [--format table|json] ID [-- PS_ARGS]
  pause ID | resume ID
  events [--stats] [--interval N] ID
  update [--resources FILE|-] [--memory N] [--cpu-quota N] [--cpu-period N] [--cpu-shares N] [--pids-limit N] ID
  spec [--bundle DIR] [--rootless]
  features
  --version";

/// Parsed words of one command: flags (name → value, "" for switches) and
/// positional arguments.
pub struct Args {
    pub flags: Vec<(String, String)>,
    pub pos: Vec<String>,
}

impl Args {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(k, _)| k == name)
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.flags.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// Flag spec: (names, takes a value). The first name is canonical.
pub type FlagSpec = &'static [(&'static [&'static str], bool)];

/// Parses `words` by `spec`. `--x=v`, `--x v`, `-x v` and single-dash long
/// forms are accepted; `--` ends the flags.
pub fn parse(words: &[String], spec: FlagSpec, cmd: &str) -> Result<Args> {
    let mut a = Args { flags: Vec::new(), pos: Vec::new() };
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w == "--" {
            a.pos.extend(words[i..].iter().cloned());
            break;
        }
        if !w.starts_with('-') || w == "-" || !a.pos.is_empty() && cmd == "exec" {
            a.pos.push(w.clone());
            continue;
        }
        let body = w.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some((names, takes)) = spec.iter().find(|(ns, _)| ns.contains(&name)) else {
            return Err(Error::Usage(format!("{cmd}: unknown flag {w:?}")));
        };
        let value = if *takes {
            match inline {
                Some(v) => v,
                None => {
                    let v = words.get(i).cloned().ok_or_else(|| Error::Usage(format!("{cmd}: {w} needs a value")))?;
                    i += 1;
                    v
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") => String::new(),
                Some("false") => continue,
                Some(v) => return Err(Error::Usage(format!("{cmd}: {w}: unexpected value {v:?}"))),
            }
        };
        a.flags.push((names[0].to_string(), value));
    }
    Ok(a)
}

const CREATE_FLAGS: FlagSpec = &[
    (&["bundle", "b"], true),
    (&["pid-file"], true),
    (&["console-socket"], true),
    (&["no-pivot"], false),
    (&["no-new-keyring"], false),
    (&["preserve-fds"], true),
    (&["detach", "d"], false),
    (&["keep"], false),
    (&["no-subreaper"], false),
];

const EXEC_FLAGS: FlagSpec = &[
    (&["process", "p"], true),
    (&["tty", "t"], false),
    (&["console-socket"], true),
    (&["detach", "d"], false),
    (&["pid-file"], true),
    (&["cwd"], true),
    (&["env", "e"], true),
    (&["user", "u"], true),
    (&["additional-gids", "g"], true),
    (&["cap", "c"], true),
    (&["no-new-privs"], false),
    (&["preserve-fds"], true),
    (&["apparmor"], true),
    (&["process-label"], true),
    (&["ignore-paused"], false),
    (&["cgroup"], true),
];

/// `ps`: the container's processes from its cgroup; the table comes from
/// the host's `ps` filtered to them, as runc does.
fn ps(st: &State, format: &str, ps_args: &[String]) -> Result<()> {
    let pids = crate::cgroups_glue::pids(&st.husk.cgroup)?;
    let pids = if pids.is_empty() && st.alive() { vec![st.pid] } else { pids };
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids).unwrap_or_default());
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
            let out = std::process::Command::new("ps").args(&args).output().map_err(|e| Error::Other(format!("ps: {e}")))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header.split_whitespace().position(|h| h == "PID").ok_or_else(|| Error::Other("ps: output has no PID column".into()))?;
            println!("{header}");
            for l in lines {
                if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
                    println!("{l}");
                }
            }
            Ok(())
        }
        f => Err(Error::Usage(format!("ps: unknown format {f:?}"))),
    }
}

struct Global {
    root: PathBuf,
    manager: Manager,
}

fn one_id(a: &Args, cmd: &str) -> Result<String> {
    match a.pos.as_slice() {
        [id] => {
            state::validate_id(id)?;
            Ok(id.clone())
        }
        [] => Err(Error::Usage(format!("{cmd}: missing container id"))),
        _ => Err(Error::Usage(format!("{cmd}: expected one container id, got {:?}", a.pos))),
    }
}

fn create_opts(a: &Args) -> Result<CreateOpts> {
    Ok(CreateOpts {
        bundle: PathBuf::from(a.get("bundle").unwrap_or(".")),
        pid_file: a.get("pid-file").map(PathBuf::from),
        console_socket: a.get("console-socket").map(str::to_string),
        no_pivot: a.has("no-pivot"),
        no_new_keyring: a.has("no-new-keyring"),
        preserve_fds: match a.get("preserve-fds") {
            Some(v) => v.parse().map_err(|_| Error::Usage(format!("--preserve-fds: bad number {v:?}")))?,
            None => 0,
        },
    })
}

pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&argv) {
        Ok(code) => code,
        Err(e) => {
            crate::log::error(&e.to_string());
            1
        }
    }
}

fn dispatch(argv: &[String]) -> Result<i32> {
    let mut root = PathBuf::from("/run/husk");
    let mut log = crate::log::Config::default();
    let mut manager = Manager::Cgroupfs;
    let mut i = 0;
    while i < argv.len() && argv[i].starts_with('-') {
        let w = argv[i].as_str();
        let (name, inline) = match w.trim_start_matches('-').split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (w.trim_start_matches('-').to_string(), None),
        };
        i += 1;
        let mut value = || -> Result<String> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            let v = argv.get(i).cloned().ok_or_else(|| Error::Usage(format!("{w} needs a value")))?;
            i += 1;
            Ok(v)
        };
        match name.as_str() {
            "root" => root = PathBuf::from(value()?),
            "log" => log.file = Some(value()?),
            "log-format" => {
                let v = value()?;
                log.json = match v.as_str() {
                    "json" => true,
                    "text" => false,
                    _ => return Err(Error::Usage(format!("--log-format: {v:?} is not text or json"))),
                }
            }
            "debug" => log.debug = true,
            "systemd-cgroup" => {
                if !matches!(inline.as_deref(), Some("false")) {
                    return Err(Error::Usage("--systemd-cgroup: systemd cgroup management is not supported; use --cgroup-manager cgroupfs".into()));
                }
            }
            "cgroup-manager" => {
                let v = value()?;
                manager = match v.as_str() {
                    "cgroupfs" => Manager::Cgroupfs,
                    "disabled" => Manager::Disabled,
                    "systemd" => return Err(Error::Usage("--cgroup-manager systemd is not supported".into())),
                    _ => return Err(Error::Usage(format!("--cgroup-manager: unknown manager {v:?}"))),
                }
            }
            "rootless" => {
                let _ = value();
            }
            "criu" => {
                let _ = value()?;
            }
            "version" | "v" => {
                println!("husk version {}\nspec: {}", env!("CARGO_PKG_VERSION"), state::OCI_VERSION);
                return Ok(0);
            }
            "help" | "h" => {
                println!("{USAGE}");
                return Ok(0);
            }
            _ => return Err(Error::Usage(format!("unknown global flag {w:?}\n{USAGE}"))),
        }
    }
    crate::log::init(log);
    let Some(cmd) = argv.get(i) else {
        return Err(Error::Usage(USAGE.into()));
    };
    let rest = &argv[i + 1..];
    let g = Global { root, manager };
    run_command(&g, cmd, rest)
}

fn run_command(g: &Global, cmd: &str, rest: &[String]) -> Result<i32> {
    let root = g.root.as_path();
    match cmd {
        "create" => {
            let a = parse(rest, CREATE_FLAGS, cmd)?;
            let id = one_id(&a, cmd)?;
            container::create(root, &id, &create_opts(&a)?, g.manager, false)?;
            Ok(0)
        }
        "run" => {
            let a = parse(rest, CREATE_FLAGS, cmd)?;
            let id = one_id(&a, cmd)?;
            container::run(root, &id, &create_opts(&a)?, g.manager, a.has("detach"))
        }
        "start" => {
            let a = parse(rest, &[], cmd)?;
            container::start(root, &one_id(&a, cmd)?)?;
            Ok(0)
        }
        "state" => {
            let a = parse(rest, &[], cmd)?;
            let id = one_id(&a, cmd)?;
            let st = State::load(root, &id)?;
            let j = st.oci_json(st.status());
            println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
            Ok(0)
        }
        "kill" => {
            let a = parse(rest, &[(&["all", "a"], false), (&["signal", "s"], true)], cmd)?;
            let (id, sig) = match a.pos.as_slice() {
                [id] => (id, a.get("signal").unwrap_or("SIGTERM")),
                [id, s] => (id, s.as_str()),
                _ => return Err(Error::Usage("kill: usage: kill [--all] ID [SIGNAL]".into())),
            };
            state::validate_id(id)?;
            container::kill(root, id, container::parse_signal(sig)?, a.has("all"))?;
            Ok(0)
        }
        "delete" => {
            let a = parse(rest, &[(&["force", "f"], false)], cmd)?;
            container::delete(root, &one_id(&a, cmd)?, a.has("force"))?;
            Ok(0)
        }
        "list" => {
            let a = parse(rest, &[(&["format", "f"], true), (&["quiet", "q"], false)], cmd)?;
            list(root, a.get("format").unwrap_or("table"), a.has("quiet"))?;
            Ok(0)
        }
        "spec" => {
            let a = parse(rest, &[(&["bundle", "b"], true), (&["rootless"], false)], cmd)?;
            crate::spec::write(Path::new(a.get("bundle").unwrap_or(".")), a.has("rootless"))?;
            Ok(0)
        }
        "features" => {
            let a = parse(rest, &[], cmd)?;
            if !a.pos.is_empty() {
                return Err(Error::Usage("features takes no arguments".into()));
            }
            println!("{}", serde_json::to_string_pretty(&crate::spec::features()).unwrap_or_default());
            Ok(0)
        }
        "exec" => {
            let a = parse(rest, EXEC_FLAGS, cmd)?;
            let Some((id, args)) = a.pos.split_first() else {
                return Err(Error::Usage("exec: missing container id".into()));
            };
            state::validate_id(id)?;
            let o = crate::exec::ExecOpts {
                process_file: a.get("process").map(str::to_string),
                tty: a.has("tty"),
                console_socket: a.get("console-socket").map(str::to_string),
                detach: a.has("detach"),
                pid_file: a.get("pid-file").map(str::to_string),
                cwd: a.get("cwd").map(str::to_string),
                env: a.all("env").into_iter().map(str::to_string).collect(),
                user: a.get("user").map(str::to_string),
                additional_gids: a.all("additional-gids").into_iter().map(str::to_string).collect(),
                caps: a.all("cap").into_iter().map(str::to_string).collect(),
                no_new_privs: a.has("no-new-privs"),
                preserve_fds: match a.get("preserve-fds") {
                    Some(v) => v.parse().map_err(|_| Error::Usage(format!("--preserve-fds: bad number {v:?}")))?,
                    None => 0,
                },
                args: args.to_vec(),
            };
            crate::exec::exec(root, id, &o)
        }
        "ps" => {
            let a = parse(rest, &[(&["format", "f"], true)], cmd)?;
            let Some((id, ps_args)) = a.pos.split_first() else {
                return Err(Error::Usage("ps: missing container id".into()));
            };
            let st = State::load(root, id)?;
            ps(&st, a.get("format").unwrap_or("table"), ps_args)?;
            Ok(0)
        }
        "pause" | "resume" => {
            let a = parse(rest, &[], cmd)?;
            let id = one_id(&a, cmd)?;
            let _lock = state::lock(root, &id)?;
            let st = State::load(root, &id)?;
            let status = st.status();
            let ok = if cmd == "pause" { status == state::Status::Running || status == state::Status::Created } else { status == state::Status::Paused };
            if !ok {
                return Err(Error::State { id, msg: format!("cannot {cmd} a container that is {}", status.as_str()) });
            }
            crate::cgroups_glue::freeze(&st, cmd == "pause")?;
            Ok(0)
        }
        "events" => {
            let a = parse(rest, &[(&["stats"], false), (&["interval"], true)], cmd)?;
            let id = one_id(&a, cmd)?;
            let st = State::load(root, &id)?;
            let interval = match a.get("interval") {
                Some(v) => v.trim_end_matches('s').parse().map_err(|_| Error::Usage(format!("--interval: bad value {v:?}")))?,
                None => 5,
            };
            crate::cgroups_glue::events(&st, a.has("stats"), interval, root)?;
            Ok(0)
        }
        "update" => {
            // The cgroups module parses runc's update flags itself.
            let id = rest.iter().rev().find(|w| !w.starts_with('-')).cloned().unwrap_or_default();
            state::validate_id(&id)?;
            let _lock = state::lock(root, &id)?;
            let st = State::load(root, &id)?;
            crate::cgroups_glue::update(&st, rest)?;
            Ok(0)
        }
        _ => Err(Error::Usage(format!("unknown command {cmd:?}\n{USAGE}"))),
    }
}

fn list(root: &Path, format: &str, quiet: bool) -> Result<()> {
    let ids = state::list_ids(root);
    if quiet {
        for id in ids {
            println!("{id}");
        }
        return Ok(());
    }
    let states: Vec<(State, &'static str)> = ids
        .iter()
        .filter_map(|id| State::load(root, id).ok())
        .map(|s| {
            let st = s.status().as_str();
            (s, st)
        })
        .collect();
    match format {
        "json" => {
            let v: Vec<serde_json::Value> = states.iter().map(|(s, _)| s.oci_json(s.status())).collect();
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
        }
        "table" => {
            println!("{:<20} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
            for (s, status) in &states {
                let pid = if *status == "stopped" { 0 } else { s.pid };
                println!("{:<20} {:<8} {:<10} {:<40} {:<32} {}", s.id, pid, status, s.bundle, s.created, s.owner);
            }
        }
        f => return Err(Error::Usage(format!("list: unknown format {f:?}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_anywhere() {
        let a = parse(&w(&["--bundle", "/b", "id1", "--pid-file=/p", "-d"]), CREATE_FLAGS, "run").unwrap();
        assert_eq!(a.get("bundle"), Some("/b"));
        assert_eq!(a.get("pid-file"), Some("/p"));
        assert!(a.has("detach"));
        assert_eq!(a.pos, vec!["id1"]);
        assert!(parse(&w(&["--nope", "x"]), CREATE_FLAGS, "create").is_err());
        assert!(parse(&w(&["--bundle"]), CREATE_FLAGS, "create").is_err());
    }
}
