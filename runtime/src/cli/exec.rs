//! `exec`. Its exit status is the program's; husk's own failures exit 255
//! (as runc), so that they cannot be mistaken for the program's 1.

use super::{flag, Args, Command, Flag, Global};
use crate::container::exec::{self, ExecOpts};
use crate::error::Result;

const FLAGS: &[Flag] = &[
    flag(
        &["console-socket"],
        true,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
    ),
    flag(&["cwd"], true, "current working directory in the container"),
    flag(&["env", "e"], true, "set environment variables"),
    flag(&["tty", "t"], false, "allocate a pseudo-TTY"),
    flag(&["user", "u"], true, "UID (format: <uid>[:<gid>])"),
    flag(&["additional-gids", "g"], true, "additional gids"),
    flag(&["process", "p"], true, "path to the process.json"),
    flag(&["detach", "d"], false, "detach from the container's process"),
    flag(&["pid-file"], true, "specify the file to write the process id to"),
    flag(&["process-label"], true, "not supported: SELinux is not enabled"),
    flag(&["apparmor"], true, "not supported: AppArmor is not enabled"),
    flag(&["no-new-privs"], false, "set the no new privileges value for the process"),
    flag(&["cap", "c"], true, "add a capability to the bounding set for the process"),
    flag(&["preserve-fds"], true, "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
    flag(&["cgroup"], true, "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
    flag(&["ignore-paused"], false, "allow exec in a paused container"),
];

pub const EXEC: Command = Command {
    name: "exec",
    about: "execute new process inside the container",
    args: "<container-id> <command> [command options]",
    flags: FLAGS,
    stop_at_arg: true,
    run,
};

fn run(g: &Global, a: &Args) -> Result<i32> {
    match exec_in(g, a) {
        Ok(code) => Ok(code),
        Err(e) => {
            crate::log::error(&e.to_string());
            Ok(255)
        }
    }
}

fn exec_in(g: &Global, a: &Args) -> Result<i32> {
    let (id, args) = a.id_and_rest("exec")?;
    for unsupported in ["apparmor", "process-label"] {
        if a.get(unsupported).is_some_and(|v| !v.is_empty()) {
            return Err(crate::error::Error::Usage(format!("exec: --{unsupported}: not supported on this host")));
        }
    }
    let o = ExecOpts {
        process_file: a.get("process").map(str::to_string),
        tty: a.has("tty"),
        console_socket: a.get("console-socket").map(str::to_string),
        detach: a.has("detach"),
        pid_file: a.get("pid-file").map(str::to_string),
        cwd: a.get("cwd").map(str::to_string),
        env: a.all("env").into_iter().map(str::to_string).collect(),
        user: a.get("user").map(str::to_string),
        additional_gids: a.all("additional-gids").into_iter().map(str::to_string).collect(),
        caps: a.all("cap").into_iter().map(str::to_string).collect(),
        no_new_privs: a.has("no-new-privs"),
        preserve_fds: a.num("preserve-fds")?.unwrap_or(0),
        ignore_paused: a.has("ignore-paused"),
        cgroups: a.all("cgroup").into_iter().map(str::to_string).collect(),
        args: args.to_vec(),
    };
    exec::exec(&g.root, &id, &o)
}
