//! runc's command line: global flags, then a command with its flags. One
//! parser for every command ([`parse`]), one table of commands
//! ([`COMMANDS`]), one file per command.
//!
//! As runc (urfave/cli with argument reordering), a command's flags may come
//! before or after the container id, except for `exec` and `ps`, where
//! everything after the id belongs to the program (`--` ends flags
//! anywhere). Long flags take one or two dashes, values follow as `--f v`
//! or `--f=v`, switches accept `--f=true|false`, and `-h`/`--help` prints
//! the command's help.

mod create;
mod delete;
mod events;
mod exec;
mod help;
mod kill;
mod pause;
mod ps;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use crate::cgroup::Manager;
use crate::error::{Error, Result};

/// One flag: its names (the first is canonical), whether it takes a value,
/// and its help line.
pub struct Flag {
    pub names: &'static [&'static str],
    pub value: bool,
    pub help: &'static str,
}

const fn flag(names: &'static [&'static str], value: bool, help: &'static str) -> Flag {
    Flag { names, value, help }
}

/// A command: its name, what it does, its arguments, its flags, and the
/// function that runs it.
pub struct Command {
    pub name: &'static str,
    pub about: &'static str,
    pub args: &'static str,
    pub flags: &'static [Flag],
    /// Flags end at the first positional argument (`exec`, `ps`).
    pub stop_at_arg: bool,
    pub run: fn(&Global, &Args) -> Result<i32>,
}

/// The parsed words of one command: flags (canonical name → value, "" for
/// switches) in order, and the positional arguments.
#[derive(Debug, Default)]
pub struct Args {
    pub flags: Vec<(&'static str, String)>,
    pub pos: Vec<String>,
    pub help: bool,
}

impl Args {
    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(k, _)| *k == name)
    }
    /// Every value given for a repeatable flag, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.flags.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.as_str()).collect()
    }
    /// A numeric flag value, named in the error.
    pub fn num<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| Error::Usage(format!("--{name}: {v:?} is not a valid number"))),
        }
    }
    /// Exactly one positional argument: the container id.
    pub fn one_id(&self, cmd: &str) -> Result<String> {
        match self.pos.as_slice() {
            [id] => {
                crate::state::validate_id(id)?;
                Ok(id.clone())
            }
            [] => Err(Error::Usage(format!("{cmd}: missing container id"))),
            _ => Err(Error::Usage(format!("{cmd}: expected one container id, got {}", self.pos.join(" ")))),
        }
    }
    /// The first positional argument as the container id, and the rest.
    pub fn id_and_rest(&self, cmd: &str) -> Result<(String, &[String])> {
        let Some((id, rest)) = self.pos.split_first() else {
            return Err(Error::Usage(format!("{cmd}: missing container id")));
        };
        crate::state::validate_id(id)?;
        Ok((id.clone(), rest))
    }
}

/// Parses `words` by `flags` (see the module doc).
pub fn parse(words: &[String], flags: &'static [Flag], cmd: &str, stop_at_arg: bool) -> Result<Args> {
    let mut a = Args::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w == "--" {
            a.pos.extend(words[i..].iter().cloned());
            break;
        }
        if !w.starts_with('-') || w == "-" || (stop_at_arg && !a.pos.is_empty()) {
            a.pos.push(w.clone());
            if stop_at_arg && a.pos.len() == 1 {
                // Everything after the id is the program's.
                a.pos.extend(words[i..].iter().cloned());
                break;
            }
            continue;
        }
        let body = w.strip_prefix("--").unwrap_or(&w[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            a.help = true;
            continue;
        }
        let Some(f) = flags.iter().find(|f| f.names.contains(&name)) else {
            return Err(Error::Usage(format!("{cmd}: flag provided but not defined: {w}")));
        };
        let value = if f.value {
            match inline {
                Some(v) => v,
                None => {
                    let v = words.get(i).cloned().ok_or_else(|| Error::Usage(format!("{cmd}: flag needs an argument: {w}")))?;
                    i += 1;
                    v
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") => String::new(),
                Some("false") | Some("0") => {
                    a.flags.retain(|(k, _)| *k != f.names[0]);
                    continue;
                }
                Some(v) => return Err(Error::Usage(format!("{cmd}: {w}: invalid boolean value {v:?}"))),
            }
        };
        a.flags.push((f.names[0], value));
    }
    Ok(a)
}

/// Global flags, as runc's.
pub struct Global {
    pub root: PathBuf,
    pub manager: Manager,
}

const GLOBAL_FLAGS: &[Flag] = &[
    flag(&["root"], true, "root directory for storage of container state (default: \"/run/husk\")"),
    flag(&["log"], true, "set the log file to write husk logs to (default is stderr)"),
    flag(&["log-format"], true, "set the log format ('text' (default), or 'json')"),
    flag(&["debug"], false, "enable debug logging"),
    flag(&["systemd-cgroup"], false, "not supported: husk manages cgroupfs itself"),
    flag(&["cgroup-manager"], true, "cgroup manager: 'cgroupfs' (default) or 'disabled'"),
    flag(&["rootless"], true, "ignored (rootless mode is detected from the config)"),
    flag(&["criu"], true, "ignored (checkpoint/restore is not supported)"),
    flag(&["version", "v"], false, "print the version"),
];

pub const COMMANDS: &[Command] = &[
    create::CREATE,
    create::RUN,
    start::START,
    state::STATE,
    state::LIST,
    kill::KILL,
    delete::DELETE,
    exec::EXEC,
    ps::PS,
    pause::PAUSE,
    pause::RESUME,
    events::EVENTS,
    update::UPDATE,
    spec::SPEC,
    spec::FEATURES,
    spec::CHECKPOINT,
    spec::RESTORE,
];

pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&argv) {
        Ok(code) => code,
        Err(e) => {
            crate::log::error(&e.to_string());
            // runc exits 1 for its own failures; `exec` returns the
            // program's status, so its own failures use 255 (see exec.rs).
            1
        }
    }
}

fn dispatch(argv: &[String]) -> Result<i32> {
    // Global flags (with their values) end at the first other word.
    let mut n = 0;
    while n < argv.len() {
        let w = &argv[n];
        if !w.starts_with('-') || w == "-" || w == "--" {
            break;
        }
        let name = w.trim_start_matches('-');
        let takes = GLOBAL_FLAGS.iter().any(|f| f.value && f.names.contains(&name));
        n += if takes { 2 } else { 1 };
    }
    let n = n.min(argv.len());
    let (globals, rest) = argv.split_at(n);
    let rest = match rest.first() {
        Some(w) if w == "--" => &rest[1..],
        _ => rest,
    };
    let g = parse(globals, GLOBAL_FLAGS, "global", false)?;
    let mut log = crate::log::Config::default();
    if let Some(f) = g.get("log") {
        log.file = Some(f.to_string());
    }
    match g.get("log-format") {
        None | Some("text") => {}
        Some("json") => log.json = true,
        Some(v) => return Err(Error::Usage(format!("--log-format: {v:?} is not text or json"))),
    }
    log.debug = g.has("debug");
    crate::log::init(log)?;
    if g.has("version") {
        help::version();
        return Ok(0);
    }
    let Some((name, words)) = rest.split_first() else {
        help::global();
        return Ok(if g.help { 0 } else { 1 });
    };
    if name == "help" {
        return match words.first() {
            None => {
                help::global();
                Ok(0)
            }
            Some(topic) => help::command(topic).map(|()| 0),
        };
    }
    if g.help {
        help::global();
        return Ok(0);
    }
    if g.has("systemd-cgroup") {
        return Err(Error::Usage("--systemd-cgroup: systemd cgroup management is not supported; use --cgroup-manager cgroupfs".into()));
    }
    let manager = match g.get("cgroup-manager") {
        None | Some("cgroupfs") => Manager::Cgroupfs,
        Some("disabled") => Manager::Disabled,
        Some("systemd") => return Err(Error::Usage("--cgroup-manager systemd is not supported".into())),
        Some(v) => return Err(Error::Usage(format!("--cgroup-manager: unknown manager {v:?}"))),
    };
    let Some(cmd) = COMMANDS.iter().find(|c| c.name == name) else {
        if words.iter().any(|w| w == "-h" || w == "--help") {
            return help::command(name).map(|()| 0);
        }
        return Err(Error::Usage(format!("unknown command {name:?} (husk --help lists them)")));
    };
    let args = parse(words, cmd.flags, cmd.name, cmd.stop_at_arg)?;
    if args.help {
        help::command(cmd.name)?;
        return Ok(0);
    }
    let global = Global { root: PathBuf::from(g.get("root").unwrap_or("/run/husk")), manager };
    crate::log::debug(&format!("command {name} {}", words.join(" ")));
    (cmd.run)(&global, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_before_and_after_the_id() {
        let a = parse(&w(&["--bundle", "/b", "id1", "--pid-file=/p", "-d"]), create::RUN.flags, "run", false).unwrap();
        assert_eq!(a.get("bundle"), Some("/b"));
        assert_eq!(a.get("pid-file"), Some("/p"));
        assert!(a.has("detach"));
        assert_eq!(a.pos, vec!["id1"]);
        let a = parse(&w(&["c1", "--pids-limit", "30"]), update::UPDATE.flags, "update", false).unwrap();
        assert_eq!((a.pos.as_slice(), a.get("pids-limit")), (&["c1".to_string()][..], Some("30")));
        let a = parse(&w(&["-pids-limit=30", "c1"]), update::UPDATE.flags, "update", false).unwrap();
        assert_eq!(a.get("pids-limit"), Some("30"));
    }

    #[test]
    fn exec_and_ps_stop_at_the_id() {
        let a = parse(&w(&["-t", "c1", "ls", "-l", "--color"]), exec::EXEC.flags, "exec", true).unwrap();
        assert!(a.has("tty"));
        assert_eq!(a.pos, w(&["c1", "ls", "-l", "--color"]));
        let a = parse(&w(&["c1", "-e", "-x"]), ps::PS.flags, "ps", true).unwrap();
        assert_eq!(a.pos, w(&["c1", "-e", "-x"]));
        let a = parse(&w(&["--format", "json", "c1", "--", "-ef"]), ps::PS.flags, "ps", true).unwrap();
        assert_eq!((a.get("format"), a.pos.clone()), (Some("json"), w(&["c1", "--", "-ef"])));
    }

    #[test]
    fn errors_and_switches() {
        let e = parse(&w(&["--nope", "x"]), create::CREATE.flags, "create", false).unwrap_err().to_string();
        assert!(e.contains("--nope"), "{e}");
        assert!(parse(&w(&["--bundle"]), create::CREATE.flags, "create", false).is_err());
        let a = parse(&w(&["-d", "--detach=false", "x"]), create::RUN.flags, "run", false).unwrap();
        assert!(!a.has("detach"));
        assert!(parse(&w(&["--detach=maybe"]), create::RUN.flags, "run", false).is_err());
        assert!(parse(&w(&["x", "-h"]), create::RUN.flags, "run", false).unwrap().help);
        let a = parse(&w(&["-a", "c1", "KILL"]), kill::KILL.flags, "kill", false).unwrap();
        assert!(a.has("all") && a.pos == w(&["c1", "KILL"]));
    }

    #[test]
    fn every_command_has_help_and_unique_flags() {
        for c in COMMANDS {
            assert!(!c.about.is_empty(), "{}", c.name);
            let mut seen = Vec::new();
            for f in c.flags {
                for n in f.names {
                    assert!(!seen.contains(n), "{}: --{n} twice", c.name);
                    seen.push(n);
                }
            }
        }
    }
}
