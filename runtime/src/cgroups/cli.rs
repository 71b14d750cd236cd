//! The `update` and `events` sub-commands (runc's flags and JSON).

use super::error::Error;
use super::spec::*;
use super::Cgroup;
use serde_json::json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Parses a byte count like runc (docker's RAMInBytes): "1024", "512k",
/// "64m", "1g", "2GiB"; "-1" means unlimited.
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64, Error> {
    let bad = || {
        Error::Usage(format!(
            "update: {flag} {s:?}: expected a byte count like 1048576, 512k, 64m, 1g or -1"
        ))
    };
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
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

fn num<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T, Error> {
    s.trim()
        .parse()
        .map_err(|_| Error::Usage(format!("update: {flag} {s:?}: not a valid number")))
}

/// Parses `update`'s words (runc order: flags, then the container ID) into
/// the resources to apply and the ID. `--resources FILE|-` is read first and
/// individual flags override it.
pub fn parse_update_args(args: &[String]) -> Result<(Resources, String), Error> {
    let mut from_file: Option<Resources> = None;
    let mut flags = Resources::default();
    let mut id: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if !a.starts_with('-') || a == "-" {
            if id.replace(a.clone()).is_some() {
                return Err(Error::Usage(format!(
                    "update: unexpected argument {a:?} (one container ID expected)"
                )));
            }
            continue;
        }
        let name = a.trim_start_matches('-');
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (name.to_string(), None),
        };
        let flag = format!("--{name}");
        let mut value = || -> Result<String, Error> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| Error::Usage(format!("update: {flag} needs a value")))?;
            i += 1;
            Ok(v)
        };
        match name.as_str() {
            "r" | "resources" => {
                let src = value()?;
                let text = if src == "-" {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s).map_err(|e| {
                        Error::Usage(format!("update: --resources -: reading stdin: {e}"))
                    })?;
                    s
                } else {
                    std::fs::read_to_string(&src).map_err(|e| {
                        Error::Usage(format!(
                            "update: --resources {src}: {}",
                            super::error::errno_desc(e.raw_os_error().unwrap_or(libc::EIO))
                        ))
                    })?
                };
                from_file = Some(serde_json::from_str(&text).map_err(|e| {
                    Error::Usage(format!(
                        "update: --resources {src}: invalid linux.resources JSON: {e}"
                    ))
                })?);
            }
            "memory" => {
                flags.memory.get_or_insert_with(Default::default).limit =
                    Some(parse_bytes(&flag, &value()?)?)
            }
            "memory-reservation" => {
                flags
                    .memory
                    .get_or_insert_with(Default::default)
                    .reservation = Some(parse_bytes(&flag, &value()?)?)
            }
            "memory-swap" => {
                flags.memory.get_or_insert_with(Default::default).swap =
                    Some(parse_bytes(&flag, &value()?)?)
            }
            "kernel-memory" => {
                flags.memory.get_or_insert_with(Default::default).kernel =
                    Some(parse_bytes(&flag, &value()?)?)
            }
            "kernel-memory-tcp" => {
                flags.memory.get_or_insert_with(Default::default).kernel_tcp =
                    Some(parse_bytes(&flag, &value()?)?)
            }
            "cpu-period" => {
                flags.cpu.get_or_insert_with(Default::default).period = Some(num(&flag, &value()?)?)
            }
            "cpu-quota" => {
                flags.cpu.get_or_insert_with(Default::default).quota = Some(num(&flag, &value()?)?)
            }
            "cpu-burst" => {
                flags.cpu.get_or_insert_with(Default::default).burst = Some(num(&flag, &value()?)?)
            }
            "cpu-share" | "cpu-shares" => {
                flags.cpu.get_or_insert_with(Default::default).shares = Some(num(&flag, &value()?)?)
            }
            "cpu-rt-period" => {
                flags
                    .cpu
                    .get_or_insert_with(Default::default)
                    .realtime_period = Some(num(&flag, &value()?)?)
            }
            "cpu-rt-runtime" => {
                flags
                    .cpu
                    .get_or_insert_with(Default::default)
                    .realtime_runtime = Some(num(&flag, &value()?)?)
            }
            "cpu-idle" => {
                flags.cpu.get_or_insert_with(Default::default).idle = Some(num(&flag, &value()?)?)
            }
            "cpuset-cpus" => flags.cpu.get_or_insert_with(Default::default).cpus = Some(value()?),
            "cpuset-mems" => flags.cpu.get_or_insert_with(Default::default).mems = Some(value()?),
            "pids-limit" => {
                flags.pids = Some(Pids {
                    limit: Some(num(&flag, &value()?)?),
                })
            }
            "blkio-weight" => {
                flags.block_io.get_or_insert_with(Default::default).weight =
                    Some(num(&flag, &value()?)?)
            }
            "l3-cache-schema" | "mem-bw-schema" => {
                return Err(Error::Usage(format!(
                    "update: {flag}: Intel RDT is not supported by husk"
                )))
            }
            _ => return Err(Error::Usage(format!("update: unknown flag {a:?}"))),
        }
    }
    let id = id.ok_or_else(|| {
        Error::Usage("update: missing container ID (usage: husk update [flags] ID)".into())
    })?;
    let mut res = from_file.unwrap_or_default();
    res.merge(flags);
    if res == Resources::default() {
        return Err(Error::Usage("update: nothing to update (give --resources FILE|- or flags like --memory, --pids-limit)".into()));
    }
    Ok((res, id))
}

/// `husk update [flags] ID`: `args` are the words after `update`.
pub fn cmd_update(cg: &Cgroup, args: &[String]) -> Result<(), Error> {
    let (res, _id) = parse_update_args(args)?;
    cg.update(&res)
}

fn emit(v: serde_json::Value) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let line = v.to_string();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| {
            Error::Usage(format!(
                "events: writing stdout: {}",
                super::error::errno_desc(e.raw_os_error().unwrap_or(libc::EIO))
            ))
        })
}

/// `husk events [--stats] [--interval N] ID`: prints runc-style JSON lines:
/// `{"type":"stats","id":ID,"data":{…}}` every `interval_secs` and
/// `{"type":"oom","id":ID}` on each OOM kill, until the container stops.
/// With `stats_only`, prints one stats line and returns.
pub fn cmd_events(
    cg: &Cgroup,
    id: &str,
    stats_only: bool,
    interval_secs: u64,
    is_running: &dyn Fn() -> bool,
) -> Result<(), Error> {
    let stats = || -> Result<serde_json::Value, Error> {
        Ok(json!({"type": "stats", "id": id, "data": cg.stats()?}))
    };
    if stats_only {
        return emit(stats()?);
    }
    if interval_secs == 0 {
        return Err(Error::Usage(
            "events: --interval must be at least 1 second".into(),
        ));
    }
    let interval = Duration::from_secs(interval_secs);
    let mut seen_oom = cg.oom_count();
    let mut next = Instant::now();
    loop {
        let running = is_running();
        let oom = cg.oom_count();
        while seen_oom < oom {
            emit(json!({"type": "oom", "id": id}))?;
            seen_oom += 1;
        }
        if !running {
            return Ok(());
        }
        if Instant::now() >= next {
            match stats() {
                Ok(v) => emit(v)?,
                Err(_) if !is_running() => return Ok(()),
                Err(e) => return Err(e),
            }
            next += interval;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn bytes_like_runc() {
        assert_eq!(parse_bytes("--memory", "1024").unwrap(), 1024);
        assert_eq!(parse_bytes("--memory", "512k").unwrap(), 512 * 1024);
        assert_eq!(parse_bytes("--memory", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("--memory", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("--memory", "1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("--memory-swap", "-1").unwrap(), -1);
        let e = parse_bytes("--memory", "12q").unwrap_err().to_string();
        assert!(e.contains("--memory") && e.contains("12q"), "{e}");
    }

    #[test]
    fn update_flags() {
        let (r, id) =
            parse_update_args(&words("--memory 64m --cpu-quota=20000 --cpu-period 100000 --cpu-share 512 --pids-limit 7 --cpuset-cpus 0 c1"))
                .unwrap();
        assert_eq!(id, "c1");
        assert_eq!(r.memory.as_ref().unwrap().limit, Some(64 << 20));
        let c = r.cpu.as_ref().unwrap();
        assert_eq!(
            (c.quota, c.period, c.shares, c.cpus.as_deref()),
            (Some(20000), Some(100000), Some(512), Some("0"))
        );
        assert_eq!(r.pids.unwrap().limit, Some(7));
        assert!(parse_update_args(&words("--bogus 1 c1"))
            .unwrap_err()
            .to_string()
            .contains("--bogus"));
        assert!(parse_update_args(&words("--memory 1m"))
            .unwrap_err()
            .to_string()
            .contains("container ID"));
        assert!(parse_update_args(&words("c1"))
            .unwrap_err()
            .to_string()
            .contains("nothing to update"));
        assert!(parse_update_args(&words("--memory"))
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
    }

    #[test]
    fn update_resources_file_then_flags() {
        let d = std::env::temp_dir().join(format!("husk-upd-{}", std::process::id()));
        std::fs::write(
            &d,
            r#"{"memory":{"limit":1000,"swap":5000},"pids":{"limit":3}}"#,
        )
        .unwrap();
        let r = parse_update_args(&[
            "--resources".into(),
            d.to_string_lossy().into(),
            "--pids-limit".into(),
            "9".into(),
            "x".into(),
        ]);
        let _ = std::fs::remove_file(&d);
        let (r, _) = r.unwrap();
        assert_eq!(r.memory.as_ref().unwrap().swap, Some(5000));
        assert_eq!(r.pids.unwrap().limit, Some(9));
        let e = parse_update_args(&words("-r /nonexistent/x c"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/x"), "{e}");
    }
}
