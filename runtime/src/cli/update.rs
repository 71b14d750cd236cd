//! `update`: changes the resources of a live container. Flags (before or
//! after the id) and `--resources FILE|-` give the new values; a zero (what
//! engines send for "not given") leaves a value as it is, as with runc;
//! husk-cgroups applies the whole change or none of it.

use std::io::Read;

use husk_cgroups::{Pids, Resources};

use super::{flag, Args, Command, Flag, Global};
use crate::error::{Error, Result};
use crate::state::{self, State};

const FLAGS: &[Flag] = &[
    flag(&["resources", "r"], true, "path to the file containing the resources to update or '-' to read from the standard input"),
    flag(&["blkio-weight"], true, "specifies per cgroup weight, range is from 10 to 1000"),
    flag(&["cpu-period"], true, "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    flag(&["cpu-quota"], true, "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    flag(&["cpu-burst"], true, "CPU CFS hardcap burst limit (in usecs)"),
    flag(&["cpu-share"], true, "CPU shares (relative weight vs. other containers)"),
    flag(&["cpu-rt-period"], true, "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
    flag(&["cpu-rt-runtime"], true, "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
    flag(&["cpu-idle"], true, "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
    flag(&["cpuset-cpus"], true, "CPU(s) to use"),
    flag(&["cpuset-mems"], true, "memory node(s) to use"),
    flag(&["kernel-memory"], true, "kernel memory limit (in bytes)"),
    flag(&["kernel-memory-tcp"], true, "kernel memory limit (in bytes) for tcp buffer"),
    flag(&["memory"], true, "memory limit (in bytes)"),
    flag(&["memory-reservation"], true, "memory reservation or soft_limit (in bytes)"),
    flag(&["memory-swap"], true, "total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    flag(&["pids-limit"], true, "maximum number of pids allowed in the container"),
    flag(&["l3-cache-schema"], true, "not supported: Intel RDT"),
    flag(&["mem-bw-schema"], true, "not supported: Intel RDT"),
];

pub const UPDATE: Command = Command {
    name: "update",
    about: "update container resource constraints",
    args: "<container-id>",
    flags: FLAGS,
    stop_at_arg: false,
    run: update,
};

/// Parses a byte count like runc (docker's RAMInBytes): "1024", "512k",
/// "64m", "1g", "2GiB"; "-1" means unlimited.
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    let bad = || Error::Usage(format!("update: --{flag} {s:?}: expected a byte count like 1048576, 512k, 64m, 1g or -1"));
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let digits_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let unit = unit.trim();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b')).unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let v = n * mult;
    if !(0.0..9.2e18).contains(&v) {
        return Err(bad());
    }
    Ok(v as i64)
}

fn num<T: std::str::FromStr>(a: &Args, name: &str) -> Result<Option<T>> {
    a.num(name).map_err(|_| Error::Usage(format!("update: --{name} {:?}: not a valid number", a.get(name).unwrap_or(""))))
}

fn bytes(a: &Args, name: &str) -> Result<Option<i64>> {
    a.get(name).map(|v| parse_bytes(name, v)).transpose()
}

/// The resources an `update` command line asks for: `--resources` first,
/// the individual flags over it.
pub fn resources_of(a: &Args) -> Result<Resources> {
    for f in ["l3-cache-schema", "mem-bw-schema"] {
        if a.has(f) {
            return Err(Error::Usage(format!("update: --{f}: Intel RDT is not supported by husk")));
        }
    }
    let mut res = match a.get("resources") {
        None => Resources::default(),
        Some(src) => {
            let text = if src == "-" {
                let mut s = Vec::new();
                std::io::stdin().read_to_end(&mut s).map_err(|e| Error::io("stdin", e))?;
                s
            } else {
                std::fs::read(src).map_err(|e| Error::io(src, e))?
            };
            husk_oci::spec::from_json(&text).map_err(|e| e.within(&format!("update --resources {src}: ")))?
        }
    };
    let mut flags = Resources::default();
    macro_rules! set {
        ($group:ident . $field:ident = $val:expr) => {
            if let Some(v) = $val {
                flags.$group.get_or_insert_with(Default::default).$field = Some(v);
            }
        };
    }
    set!(memory.limit = bytes(a, "memory")?);
    set!(memory.reservation = bytes(a, "memory-reservation")?);
    set!(memory.swap = bytes(a, "memory-swap")?);
    set!(memory.kernel = bytes(a, "kernel-memory")?);
    set!(memory.kernel_tcp = bytes(a, "kernel-memory-tcp")?);
    set!(cpu.period = num(a, "cpu-period")?);
    set!(cpu.quota = num(a, "cpu-quota")?);
    set!(cpu.burst = num(a, "cpu-burst")?);
    set!(cpu.shares = num(a, "cpu-share")?);
    set!(cpu.realtime_period = num(a, "cpu-rt-period")?);
    set!(cpu.realtime_runtime = num(a, "cpu-rt-runtime")?);
    set!(cpu.idle = num(a, "cpu-idle")?);
    set!(cpu.cpus = a.get("cpuset-cpus").map(str::to_string));
    set!(cpu.mems = a.get("cpuset-mems").map(str::to_string));
    set!(block_io.weight = num(a, "blkio-weight")?);
    if let Some(l) = num(a, "pids-limit")? {
        flags.pids = Some(Pids { limit: Some(l) });
    }
    res.merge(flags);
    Ok(res)
}

fn update(g: &Global, a: &Args) -> Result<i32> {
    let id = a.one_id("update")?;
    let res = resources_of(a)?;
    let _lock = state::lock(&g.root, &id)?;
    let st = State::load(&g.root, &id)?;
    if st.status() == husk_oci::Status::Stopped {
        return Err(Error::state(&id, "cannot update a container that is stopped"));
    }
    let cg = st.cgroup.as_ref().ok_or_else(|| Error::state(&id, "has no cgroup (cgroups disabled)"))?;
    cg.update(&res)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        let w: Vec<String> = s.split_whitespace().map(String::from).collect();
        super::super::parse(&w, FLAGS, "update", false).unwrap()
    }

    #[test]
    fn bytes_like_runc() {
        assert_eq!(parse_bytes("memory", "1024").unwrap(), 1024);
        assert_eq!(parse_bytes("memory", "512k").unwrap(), 512 * 1024);
        assert_eq!(parse_bytes("memory", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("memory", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("memory", "1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("memory-swap", "-1").unwrap(), -1);
        let e = parse_bytes("memory", "12q").unwrap_err().to_string();
        assert!(e.contains("--memory") && e.contains("12q"), "{e}");
    }

    #[test]
    fn flags_make_resources() {
        let a = args("c1 --memory 64m --cpu-quota=20000 --cpu-period 100000 --cpu-share 512 --pids-limit 7 --cpuset-cpus 0");
        assert_eq!(a.one_id("update").unwrap(), "c1");
        let r = resources_of(&a).unwrap();
        assert_eq!(r.memory.as_ref().unwrap().limit, Some(64 << 20));
        let c = r.cpu.as_ref().unwrap();
        assert_eq!((c.quota, c.period, c.shares, c.cpus.as_deref()), (Some(20000), Some(100000), Some(512), Some("0")));
        assert_eq!(r.pids.unwrap().limit, Some(7));
        assert!(resources_of(&args("--memory 1x c")).unwrap_err().to_string().contains("--memory"));
        assert!(resources_of(&args("--pids-limit x c")).unwrap_err().to_string().contains("--pids-limit"));
    }

    #[test]
    fn resources_file_then_flags() {
        let d = std::env::temp_dir().join(format!("husk-upd-{}", std::process::id()));
        std::fs::write(&d, r#"{"memory":{"limit":1000,"swap":5000},"pids":{"limit":3}}"#).unwrap();
        let r = resources_of(&args(&format!("--resources {} --pids-limit 9 x", d.display())));
        let _ = std::fs::remove_file(&d);
        let r = r.unwrap();
        assert_eq!(r.memory.as_ref().unwrap().swap, Some(5000));
        assert_eq!(r.pids.unwrap().limit, Some(9));
        let e = resources_of(&args("-r /nonexistent/x c")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/x"), "{e}");
    }
}
