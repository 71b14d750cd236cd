//! `start`.

use super::{Args, Command, Global};
use crate::error::Result;

pub const START: Command = Command {
    name: "start",
    about: "executes the user defined process in a created container",
    args: "<container-id>",
    flags: &[],
    stop_at_arg: false,
    run: start,
};

fn start(g: &Global, a: &Args) -> Result<i32> {
    crate::container::start(&g.root, &a.one_id("start")?)?;
    Ok(0)
}
