//! Command line: tini's flags (getopt-style clusters like `-vvv`, `-pSIGKILL`)
//! plus husk-init's long options. Options end at `--` or at the first
//! argument that is not an option (like musl's getopt).

use crate::signals;
use crate::sys;
use crate::text::parse_u32;
use core::ffi::{c_char, c_int, CStr};
use core::fmt;

pub const DEFAULT_SERVICES: &[u8] = b"/etc/husk/services";
pub const DEFAULT_CTL: &[u8] = b"/run/husk-init.sock";
pub const DEFAULT_HUSK_ROOT: &[u8] = b"/run/husk";

/// The process arguments (argv lives as long as the process).
#[derive(Clone, Copy)]
pub struct Args {
    pub argv: &'static [*const c_char],
}

impl Args {
    pub fn get(&self, i: usize) -> &'static [u8] {
        // SAFETY: argv[i] for i < argc is a NUL-terminated string that the
        // process keeps for its whole life.
        unsafe { CStr::from_ptr(self.argv[i]) }.to_bytes()
    }
    pub fn len(&self) -> usize {
        self.argv.len()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    /// An option we do not know (usage follows).
    Unknown(&'static [u8]),
    /// An option missing its value (usage follows).
    Missing(&'static str),
    /// A value that does not parse: (option, value).
    Invalid(&'static str, &'static [u8]),
    /// `ctl` without a command or with a wrong one.
    Ctl(&'static str),
}

impl CliError {
    pub fn wants_usage(&self) -> bool {
        matches!(self, CliError::Unknown(_) | CliError::Missing(_))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::logger::Show;
        match self {
            CliError::Unknown(a) => write!(f, "invalid option: {}", Show(a)),
            CliError::Missing(o) => write!(f, "option requires an argument: {}", Show(o.as_bytes())),
            // tini's wording, which its tests look for.
            CliError::Invalid(o, v) => write!(f, "Not a valid option for {}: {}", Show(o.as_bytes()), Show(v)),
            CliError::Ctl(m) => write!(f, "usage: {}", Show(m.as_bytes())),
        }
    }
}

pub struct Options {
    pub verbose: u32,
    pub subreaper: bool,
    pub pdeathsig: c_int,
    pub warn_reap: bool,
    pub group: bool,
    /// Exit codes remapped to 0 (-e), as a 256-bit set.
    pub expect: [u32; 8],
    /// --grace in milliseconds.
    pub grace_ms: Option<u64>,
    /// --rewrite: rewrite[FROM] = TO (0 drops it); -1 means unchanged.
    pub rewrite: [i8; 65],
    /// --on-exit: a reboot(2) command.
    pub on_exit: Option<c_int>,
    pub services: Option<&'static [u8]>,
    pub boot: bool,
    pub ctl: &'static [u8],
    /// --ctl-group: a group (name or gid) whose members may use ctl.
    pub ctl_group: Option<&'static [u8]>,
    pub husk_root: &'static [u8],
    pub husk: &'static [u8],
    /// Index in argv of PROGRAM (== argc when none).
    pub program: usize,
}

pub enum Parsed {
    Run(Options),
    /// `husk-init ctl CMD [NAME [ARG]]`.
    Ctl {
        socket: &'static [u8],
        cmd: &'static [u8],
        name: &'static [u8],
        arg: &'static [u8],
    },
    /// -h, -l, --version: already printed; exit 0.
    Done,
}

/// Seconds, with an optional fraction (`2`, `0.5`), as milliseconds.
pub fn parse_seconds(s: &[u8]) -> Option<u64> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let i = if int.is_empty() && !frac.is_empty() { 0 } else { parse_u32(int)? } as u64;
    let mut ms = 0u64;
    let mut scale = 100;
    for &b in frac.iter().take(3) {
        if !b.is_ascii_digit() {
            return None;
        }
        ms += (b - b'0') as u64 * scale;
        scale /= 10;
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(i * 1000 + ms)
}

fn on_exit_cmd(s: &[u8]) -> Option<c_int> {
    match s {
        b"poweroff" => Some(libc::LINUX_REBOOT_CMD_POWER_OFF),
        b"reboot" => Some(libc::LINUX_REBOOT_CMD_RESTART),
        b"halt" => Some(libc::LINUX_REBOOT_CMD_HALT),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Long {
    Version,
    Help,
    Grace,
    Rewrite,
    OnExit,
    Services,
    Boot,
    Ctl,
    CtlGroup,
    HuskRoot,
    Husk,
}

const LONGS: &[(&str, Long)] = &[
    ("--version", Long::Version),
    ("--help", Long::Help),
    ("--grace", Long::Grace),
    ("--rewrite", Long::Rewrite),
    ("--on-exit", Long::OnExit),
    ("--services", Long::Services),
    ("--boot", Long::Boot),
    ("--ctl", Long::Ctl),
    ("--ctl-group", Long::CtlGroup),
    ("--husk-root", Long::HuskRoot),
    ("--husk", Long::Husk),
];

#[inline(never)]
pub fn parse(args: Args) -> Result<Parsed, CliError> {
    if args.len() > 1 && args.get(1) == b"ctl" {
        return parse_ctl(args);
    }
    let mut o = Options {
        verbose: 0,
        subreaper: false,
        pdeathsig: 0,
        warn_reap: false,
        group: false,
        expect: [0; 8],
        grace_ms: None,
        rewrite: [-1; 65],
        on_exit: None,
        services: None,
        boot: false,
        ctl: sys::getenv(c"HUSK_INIT_CTL").unwrap_or(DEFAULT_CTL),
        ctl_group: None,
        husk_root: DEFAULT_HUSK_ROOT,
        husk: b"husk",
        program: args.len(),
    };
    let mut i = 1;
    while i < args.len() {
        let a = args.get(i);
        if a == b"--" {
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        if a[1] == b'-' {
            // --name or --name=value
            let (name, inline) = match a.iter().position(|&b| b == b'=') {
                Some(p) => (&a[..p], Some(&a[p + 1..])),
                None => (a, None),
            };
            let Some(&(opt, long)) = LONGS.iter().find(|(n, _)| n.as_bytes() == name) else {
                return Err(CliError::Unknown(a));
            };
            // Every long option but three takes a value.
            let v: &'static [u8] = match long {
                Long::Version => {
                    let _ = sys::write_all(
                        1,
                        concat!("husk-init version ", env!("CARGO_PKG_VERSION"), " - git.", env!("HUSK_COMMIT"), "\n").as_bytes(),
                    );
                    return Ok(Parsed::Done);
                }
                Long::Help => {
                    usage(1);
                    return Ok(Parsed::Done);
                }
                Long::Boot => b"",
                _ => match inline {
                    Some(v) => v,
                    None if i + 1 < args.len() => {
                        i += 1;
                        args.get(i)
                    }
                    None => return Err(CliError::Missing(opt)),
                },
            };
            let bad = CliError::Invalid(opt, v);
            match long {
                Long::Grace => o.grace_ms = Some(parse_seconds(v).ok_or(bad)?),
                Long::Rewrite => {
                    let p = v.iter().position(|&b| b == b':').ok_or(bad)?;
                    let from = signals::parse(&v[..p]);
                    let to = match &v[p + 1..] {
                        b"0" => Some(0),
                        t => signals::parse(t),
                    };
                    let (Some(from), Some(to)) = (from, to) else {
                        return Err(CliError::Invalid(opt, v));
                    };
                    o.rewrite[from as usize] = to as i8;
                }
                Long::OnExit => o.on_exit = Some(on_exit_cmd(v).ok_or(bad)?),
                Long::Services => o.services = Some(v),
                Long::Boot => o.boot = true,
                Long::Ctl => o.ctl = v,
                Long::CtlGroup => o.ctl_group = Some(v),
                Long::HuskRoot => o.husk_root = v,
                Long::Husk | Long::Version | Long::Help => o.husk = v,
            }
            i += 1;
            continue;
        }
        // A cluster of short options.
        let mut j = 1;
        while j < a.len() {
            let c = a[j];
            j += 1;
            match c {
                b'h' => {
                    usage(1);
                    return Ok(Parsed::Done);
                }
                b'l' => {
                    let _ = sys::write_all(1, LICENSE.as_bytes());
                    return Ok(Parsed::Done);
                }
                b's' => o.subreaper = true,
                b'v' => o.verbose += 1,
                b'w' => o.warn_reap = true,
                b'g' => o.group = true,
                b'p' | b'e' => {
                    let v = if j < a.len() {
                        let v = &a[j..];
                        j = a.len();
                        v
                    } else {
                        i += 1;
                        if i >= args.len() {
                            return Err(CliError::Missing(if c == b'p' { "-p" } else { "-e" }));
                        }
                        args.get(i)
                    };
                    if c == b'p' {
                        o.pdeathsig = signals::parse(v).ok_or(CliError::Invalid("-p", v))?;
                    } else {
                        let n = parse_u32(v).filter(|n| *n <= 255).ok_or(CliError::Invalid("-e", v))?;
                        o.expect[(n / 32) as usize] |= 1 << (n % 32);
                    }
                }
                _ => return Err(CliError::Unknown(a)),
            }
        }
        i += 1;
    }
    o.program = i;
    Ok(Parsed::Run(o))
}

fn parse_ctl(args: Args) -> Result<Parsed, CliError> {
    let mut socket = sys::getenv(c"HUSK_INIT_CTL").unwrap_or(DEFAULT_CTL);
    let mut i = 2;
    if i < args.len() && args.get(i) == b"--ctl" {
        if i + 1 >= args.len() {
            return Err(CliError::Missing("--ctl"));
        }
        socket = args.get(i + 1);
        i += 2;
    }
    let usage = CTL_USAGE;
    let w = |k: usize| if i + k < args.len() { args.get(i + k) } else { b"" };
    let (cmd, name, arg) = (w(0), w(1), w(2));
    // How many words each command takes after it (at most, at least).
    let (most, least) = match cmd {
        b"status" | b"prune" => (1, 0),
        b"start" | b"stop" | b"restart" => (1, 1),
        b"update" => (2, 2),
        _ => (0, 1),
    };
    let n = args.len().saturating_sub(i + 1);
    if n > most || n < least || (n > 0 && name.is_empty()) || (n > 1 && arg.is_empty()) {
        return Err(CliError::Ctl(usage));
    }
    Ok(Parsed::Ctl { socket, cmd, name, arg })
}

/// The ctl line of the usage (also the message of a bad `ctl` command).
const CTL_USAGE: &str = "husk-init ctl [--ctl SOCKET] status|prune [NAME] | start|stop|restart NAME | update NAME DIR";

const USAGE_HEAD: &str = concat!(
    "husk-init (husk-init version ",
    env!("CARGO_PKG_VERSION"),
    " - git.",
    env!("HUSK_COMMIT"),
    ")\n\
Usage: husk-init [OPTIONS] PROGRAM -- [ARGS] | --version\n\
\x20      husk-init [OPTIONS] --services DIR\n\
\x20      "
);

/// The usage text (tini's, with husk-init's additions) after the ctl line.
const USAGE: &str = "\n\n\
Execute a program under the supervision of a valid init process (husk-init)\n\n\
Command line options:\n\n\
\x20 --version: Show version and exit.\n\
\x20 -h: Show this help message and exit.\n\
\x20 -s: Register as a process subreaper (requires Linux >= 3.4).\n\
\x20 -p SIGNAL: Trigger SIGNAL when parent dies, e.g. \"-p SIGKILL\".\n\
\x20 -v: Generate more verbose output. Repeat up to 3 times.\n\
\x20 -w: Print a warning when processes are getting reaped.\n\
\x20 -g: Send signals to the child's process group.\n\
\x20 -e EXIT_CODE: Remap EXIT_CODE (from 0 to 255) to 0.\n\
\x20 -l: Show license and exit.\n\
\x20 --grace SECONDS: After PROGRAM exits, SIGTERM the remaining processes,\n\
\x20     SIGKILL them after SECONDS, and wait for all of them.\n\
\x20 --rewrite FROM:TO: Forward signal FROM as TO (TO=0: drop it).\n\
\x20 --on-exit poweroff|reboot|halt: What PID 1 does when its work is done.\n\
\x20 --services DIR: Supervise the services in DIR (appliance mode).\n\
\x20 --boot: Mount /proc, /sys, /dev... and set the hostname first.\n\
\x20 --ctl SOCKET: Control socket (default /run/husk-init.sock).\n\
\x20 --ctl-group GROUP: Members of GROUP may use the control socket too.\n\
\x20 --husk-root DIR: State root for container services (default /run/husk).\n\
\x20 --husk PATH: The husk binary for container services (default: husk in PATH).\n\n\
Environment variables:\n\n\
\x20 TINI_SUBREAPER: Register as a process subreaper (requires Linux >= 3.4).\n\
\x20 TINI_VERBOSITY: Set the verbosity level (default: 1).\n\
\x20 TINI_KILL_PROCESS_GROUP: Send signals to the child's process group.\n\
\x20 HUSK_INIT_CTL: Control socket for husk-init ctl.\n\n";

pub fn usage(fd: c_int) {
    for part in [USAGE_HEAD, CTL_USAGE, USAGE] {
        let _ = sys::write_all(fd, part.as_bytes());
    }
}

pub const LICENSE: &str = "husk-init is part of husk, licensed under the Apache License, Version 2.0:\n\
http://www.apache.org/licenses/LICENSE-2.0 (no warranties or conditions of any kind).\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds(b"2"), Some(2000));
        assert_eq!(parse_seconds(b"0.5"), Some(500));
        assert_eq!(parse_seconds(b".25"), Some(250));
        assert_eq!(parse_seconds(b"x"), None);
        assert_eq!(parse_seconds(b"1.x"), None);
        assert_eq!(parse_seconds(b""), None);
    }
}
