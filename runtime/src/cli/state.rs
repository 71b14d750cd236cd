//! `state` and `list`.

use super::{flag, Args, Command, Global};
use crate::error::{Error, Result};
use crate::state::{self, State};

pub const STATE: Command =
    Command { name: "state", about: "output the state of a container", args: "<container-id>", flags: &[], stop_at_arg: false, run: show };

pub const LIST: Command = Command {
    name: "list",
    about: "lists containers started by husk with the given root",
    args: "",
    flags: &[
        flag(&["format", "f"], true, "select one of: table or json (default: \"table\")"),
        flag(&["quiet", "q"], false, "display only container IDs"),
    ],
    stop_at_arg: false,
    run: list,
};

fn show(g: &Global, a: &Args) -> Result<i32> {
    let id = a.one_id("state")?;
    let st = State::load(&g.root, &id)?;
    let cs = st.container_state(state::status_of(&g.root, &st));
    println!("{}", serde_json::to_string_pretty(&cs).unwrap_or_default());
    Ok(0)
}

fn list(g: &Global, a: &Args) -> Result<i32> {
    if !a.pos.is_empty() {
        return Err(Error::Usage("list takes no arguments".into()));
    }
    let ids = state::list_ids(&g.root);
    if a.has("quiet") {
        for id in ids {
            println!("{id}");
        }
        return Ok(0);
    }
    let states: Vec<_> = ids
        .iter()
        .filter_map(|id| State::load(&g.root, id).ok())
        .map(|s| {
            let status = state::status_of(&g.root, &s);
            s.container_state(status)
        })
        .collect();
    match a.get("format").unwrap_or("table") {
        "json" => println!("{}", serde_json::to_string(&states).unwrap_or_default()),
        "table" => {
            println!("{:<20} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
            for s in &states {
                println!("{:<20} {:<8} {:<10} {:<40} {:<32} {}", s.id, s.pid, s.status.as_str(), s.bundle, s.created, s.owner);
            }
        }
        f => return Err(Error::Usage(format!("list: unknown format {f:?} (table or json)"))),
    }
    Ok(0)
}
