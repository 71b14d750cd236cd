//! `ps`: the container's processes from its cgroup; the table comes from
//! the host's `ps` filtered to them, as runc does. Arguments after the id
//! go to ps (with or without `--`).

use super::{flag, Args, Command, Global};
use crate::error::{Error, Result};
use crate::state::State;

pub const PS: Command = Command {
    name: "ps",
    about: "ps displays the processes running inside a container",
    args: "<container-id> [ps options]",
    flags: &[flag(&["format", "f"], true, "select one of: table or json (default: \"table\")")],
    stop_at_arg: true,
    run: ps,
};

fn ps(g: &Global, a: &Args) -> Result<i32> {
    let (id, rest) = a.id_and_rest("ps")?;
    let ps_args: Vec<String> = match rest.first() {
        Some(w) if w == "--" => rest[1..].to_vec(),
        _ => rest.to_vec(),
    };
    let st = State::load(&g.root, &id)?;
    let mut pids = match &st.cgroup {
        Some(cg) => cg.pids()?,
        None => Vec::new(),
    };
    if pids.is_empty() && st.alive() {
        pids.push(st.pid);
    }
    match a.get("format").unwrap_or("table") {
        "json" => {
            println!("{}", serde_json::to_string(&pids).unwrap_or_default());
            Ok(0)
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args };
            let out = std::process::Command::new("ps").args(&args).output().map_err(|e| Error::Other(format!("ps: {e}")))?;
            if !out.status.success() {
                return Err(Error::Other(format!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col =
                header.split_whitespace().position(|h| h == "PID").ok_or_else(|| Error::Other("ps: output has no PID column".into()))?;
            println!("{header}");
            for l in lines {
                if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
                    println!("{l}");
                }
            }
            Ok(0)
        }
        f => Err(Error::Usage(format!("ps: unknown format {f:?} (table or json)"))),
    }
}
