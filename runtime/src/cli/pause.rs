//! `pause` and `resume`.

use super::{Args, Command, Global};
use crate::error::Result;

pub const PAUSE: Command = Command {
    name: "pause",
    about: "pause suspends all processes inside the container",
    args: "<container-id>",
    flags: &[],
    stop_at_arg: false,
    run: pause,
};

pub const RESUME: Command = Command {
    name: "resume",
    about: "resumes all processes that have been previously paused",
    args: "<container-id>",
    flags: &[],
    stop_at_arg: false,
    run: resume,
};

fn pause(g: &Global, a: &Args) -> Result<i32> {
    crate::container::freeze(&g.root, &a.one_id("pause")?, true).map(|()| 0)
}

fn resume(g: &Global, a: &Args) -> Result<i32> {
    crate::container::freeze(&g.root, &a.one_id("resume")?, false).map(|()| 0)
}
