//! `create` and `run`.

use std::path::PathBuf;

use super::{flag, Args, Command, Flag, Global};
use crate::container::{self, CreateOpts};
use crate::error::Result;

const CREATE_FLAGS: &[Flag] = &[
    flag(&["bundle", "b"], true, "path to the root of the bundle directory, defaults to the current directory"),
    flag(
        &["console-socket"],
        true,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
    ),
    flag(&["pid-file"], true, "specify the file to write the process id to"),
    flag(&["no-pivot"], false, "do not use pivot root to jail process inside rootfs (for a rootfs on an initramfs)"),
    flag(&["no-new-keyring"], false, "do not create a new session keyring for the container"),
    flag(&["preserve-fds"], true, "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
];

const RUN_FLAGS: &[Flag] = &[
    flag(&["bundle", "b"], true, "path to the root of the bundle directory, defaults to the current directory"),
    flag(
        &["console-socket"],
        true,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
    ),
    flag(&["pid-file"], true, "specify the file to write the process id to"),
    flag(&["no-pivot"], false, "do not use pivot root to jail process inside rootfs (for a rootfs on an initramfs)"),
    flag(&["no-new-keyring"], false, "do not create a new session keyring for the container"),
    flag(&["preserve-fds"], true, "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
    flag(&["detach", "d"], false, "detach from the container's process"),
    flag(&["keep"], false, "do not delete the container after it exits"),
    flag(&["no-subreaper"], false, "ignored (husk does not use a subreaper)"),
];

pub const CREATE: Command =
    Command { name: "create", about: "create a container", args: "<container-id>", flags: CREATE_FLAGS, stop_at_arg: false, run: create };

pub const RUN: Command =
    Command { name: "run", about: "create and run a container", args: "<container-id>", flags: RUN_FLAGS, stop_at_arg: false, run };

fn opts(a: &Args) -> Result<CreateOpts> {
    Ok(CreateOpts {
        bundle: PathBuf::from(a.get("bundle").unwrap_or(".")),
        pid_file: a.get("pid-file").map(PathBuf::from),
        console_socket: a.get("console-socket").map(str::to_string),
        no_pivot: a.has("no-pivot"),
        no_new_keyring: a.has("no-new-keyring"),
        preserve_fds: a.num("preserve-fds")?.unwrap_or(0),
    })
}

fn create(g: &Global, a: &Args) -> Result<i32> {
    let id = a.one_id("create")?;
    container::create(&g.root, &id, &opts(a)?, g.manager, false)?;
    Ok(0)
}

fn run(g: &Global, a: &Args) -> Result<i32> {
    let id = a.one_id("run")?;
    container::run(&g.root, &id, &opts(a)?, g.manager, a.has("detach"), a.has("keep"))
}
