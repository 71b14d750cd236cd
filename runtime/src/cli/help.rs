//! `--help`, `help COMMAND` and `--version`, in the layout runc's users
//! know (urfave/cli: NAME, USAGE, OPTIONS), from the command table.

use super::{Command, Flag, COMMANDS, GLOBAL_FLAGS};
use crate::error::{Error, Result};

const ABOUT: &str = "a small, static OCI container runtime for embedded and edge Linux";

fn flag_lines(flags: &[Flag]) -> String {
    let mut out = String::new();
    for f in flags {
        let names: Vec<String> = f
            .names
            .iter()
            .map(|n| {
                let dash = if n.len() == 1 { "-" } else { "--" };
                if f.value {
                    format!("{dash}{n} value")
                } else {
                    format!("{dash}{n}")
                }
            })
            .collect();
        out.push_str(&format!("   {:<32} {}\n", names.join(", "), f.help));
    }
    out.push_str(&format!("   {:<32} {}\n", "--help, -h", "show help"));
    out
}

pub fn global() {
    let mut cmds = String::new();
    for c in COMMANDS {
        cmds.push_str(&format!("   {:<12} {}\n", c.name, c.about));
    }
    cmds.push_str(&format!("   {:<12} {}\n", "help, h", "shows a list of commands or help for one command"));
    println!(
        "NAME:\n   husk - {ABOUT}\n\nUSAGE:\n   husk [global options] command [command options] [arguments...]\n\nVERSION:\n   {}\n\nCOMMANDS:\n{cmds}\nGLOBAL OPTIONS:\n{}",
        env!("CARGO_PKG_VERSION"),
        flag_lines(GLOBAL_FLAGS).trim_end()
    );
}

fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Help for one command; an unknown one is an error.
pub fn command(name: &str) -> Result<()> {
    let Some(c) = find(name) else {
        return Err(Error::Usage(format!("No help topic for '{name}'")));
    };
    let opts = if c.flags.is_empty() { String::new() } else { " [command options]".into() };
    println!(
        "NAME:\n   husk {} - {}\n\nUSAGE:\n   husk {}{opts} {}\n\nOPTIONS:\n{}",
        c.name,
        c.about,
        c.name,
        c.args,
        flag_lines(c.flags).trim_end()
    );
    Ok(())
}

/// `husk --version`: the layout of runc's and crun's (`NAME version X`,
/// `commit:`, `spec:`), which engines parse.
pub fn version() {
    println!(
        "husk version {}\ncommit: {}\nspec: {}",
        env!("CARGO_PKG_VERSION"),
        option_env!("HUSK_COMMIT").unwrap_or("unknown"),
        husk_oci::OCI_VERSION
    );
}
