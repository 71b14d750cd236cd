//! `kill`.

use nix::sys::signal::Signal;

use super::{flag, Args, Command, Global};
use crate::error::{Error, Result};

pub const KILL: Command = Command {
    name: "kill",
    about: "kill sends the specified signal (default: SIGTERM) to the container's init process",
    args: "<container-id> [signal]",
    flags: &[flag(&["all", "a"], false, "send the specified signal to all processes inside the container")],
    stop_at_arg: false,
    run: kill,
};

/// A signal by number (0 asks whether the container is alive), or by name
/// with or without `SIG`, in any case.
pub fn parse_signal(s: &str) -> Result<Option<Signal>> {
    if let Ok(n) = s.parse::<i32>() {
        if n == 0 {
            return Ok(None);
        }
        return Signal::try_from(n).map(Some).map_err(|_| Error::Usage(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map(Some).map_err(|_| Error::Usage(format!("unknown signal {s:?}")))
}

fn kill(g: &Global, a: &Args) -> Result<i32> {
    let (id, sig) = match a.pos.as_slice() {
        [id] => (id, "SIGTERM"),
        [id, s] => (id, s.as_str()),
        _ => return Err(Error::Usage("kill: usage: kill [--all] <container-id> [signal]".into())),
    };
    crate::state::validate_id(id)?;
    crate::container::kill(&g.root, id, parse_signal(sig)?, a.has("all"))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms() {
        assert_eq!(parse_signal("KILL").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("sigterm").unwrap(), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("9").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("0").unwrap(), None);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
