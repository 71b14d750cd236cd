//! `delete`.

use super::{flag, Args, Command, Global};
use crate::error::{Error, Result};

pub const DELETE: Command = Command {
    name: "delete",
    about: "delete any resources held by the container often used with detached container",
    args: "<container-id>",
    flags: &[flag(&["force", "f"], false, "forcibly deletes the container if it is still running (uses SIGKILL)")],
    stop_at_arg: false,
    run: delete,
};

fn delete(g: &Global, a: &Args) -> Result<i32> {
    let id = a.one_id("delete")?;
    let force = a.has("force");
    match crate::container::delete(&g.root, &id, force) {
        // As runc and crun: forcing the removal of what is not there is
        // not an error (engines call it after every failed create).
        Err(Error::NotExist(_)) if force => Ok(0),
        r => r.map(|()| 0),
    }
}
