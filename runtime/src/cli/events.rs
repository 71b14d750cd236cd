//! `events [--stats] [--interval D] ID`: runc's JSON lines,
//! `{"type":"stats","id":ID,"data":{…}}` every interval and
//! `{"type":"oom","id":ID}` on each OOM kill, until the container stops.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{flag, Args, Command, Global};
use crate::error::{Error, Result};
use crate::state::State;

pub const EVENTS: Command = Command {
    name: "events",
    about: "display container events such as OOM notifications and cpu, memory, and IO usage statistics",
    args: "<container-id>",
    flags: &[
        flag(&["interval"], true, "set the stats collection interval (default: 5s)"),
        flag(&["stats"], false, "display the container's stats then exit"),
    ],
    stop_at_arg: false,
    run: events,
};

/// One line, with runc's key order.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
}

/// A Go duration (`100ms`, `1s`, `1m30s`, `1.5h`; units ns, us, µs, ms,
/// s, m, h), as runc's `--interval` takes; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(num_end);
        let n: f64 = num.parse().ok()?;
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = tail;
    }
    Some(Duration::from_secs_f64(total))
}

fn emit(e: &Event) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let line = serde_json::to_string(e).unwrap_or_default();
    writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| Error::io("stdout", e))
}

fn events(g: &Global, a: &Args) -> Result<i32> {
    let id = a.one_id("events")?;
    let interval = match a.get("interval") {
        Some(v) => parse_duration(v)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Error::Usage(format!("--interval: {v:?} is not a duration like 100ms, 1s or 2m")))?,
        None => Duration::from_secs(5),
    };
    let st = State::load(&g.root, &id)?;
    let cg = st.cgroup.as_ref().ok_or_else(|| Error::state(&id, "has no cgroup (cgroups disabled)"))?;
    let stats = || -> Result<Event> { Ok(Event { kind: "stats", id: &id, data: Some(cg.stats()?) }) };
    if a.has("stats") {
        emit(&stats()?)?;
        return Ok(0);
    }
    let running = || State::load(&g.root, &id).map(|s| s.alive()).unwrap_or(false);
    let mut seen_oom = cg.oom_count();
    let mut next = Instant::now();
    loop {
        let alive = running();
        let oom = cg.oom_count();
        while seen_oom < oom {
            emit(&Event { kind: "oom", id: &id, data: None })?;
            seen_oom += 1;
        }
        if !alive {
            return Ok(0);
        }
        if Instant::now() >= next {
            match stats() {
                Ok(v) => emit(&v)?,
                Err(_) if !running() => return Ok(0),
                Err(e) => return Err(e),
            }
            next += interval;
        }
        std::thread::sleep(Duration::from_millis(50).min(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        for bad in ["", "1x", "ms", "1s2", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn event_key_order() {
        let e = Event { kind: "stats", id: "c", data: Some(serde_json::json!({})) };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"stats","id":"c","data":{}}"#);
        let e = Event { kind: "oom", id: "c", data: None };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"oom","id":"c"}"#);
    }
}
