//! A small hand-written command-line parser: positionals, `--opt VALUE`,
//! `--opt=VALUE`, boolean flags, and everything after `--`.

use crate::error::{Error, Result};
use std::ffi::OsString;

#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<OsString>,
    pub opts: Vec<(String, OsString)>,
    pub flags: Vec<String>,
    pub rest: Vec<OsString>,
}

impl Args {
    /// `with_value` lists options taking a value; `flags` those that don't.
    pub fn parse(args: impl IntoIterator<Item = OsString>, with_value: &[&str], flags: &[&str]) -> Result<Args> {
        let mut a = Args::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let s = arg.to_string_lossy().to_string();
            if s == "--" {
                a.rest.extend(it.by_ref());
                break;
            }
            if let Some(name) = s.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(OsString::from(v))),
                    None => (name.to_string(), None),
                };
                if with_value.contains(&name.as_str()) {
                    let v = match inline {
                        Some(v) => v,
                        None => it.next().ok_or_else(|| Error::Usage(format!("--{name} needs a value")))?,
                    };
                    a.opts.push((name, v));
                } else if flags.contains(&name.as_str()) && inline.is_none() {
                    a.flags.push(name);
                } else {
                    return Err(Error::Usage(format!("unknown option --{name}")));
                }
            } else if s.starts_with('-') && s.len() > 1 {
                return Err(Error::Usage(format!("unknown option {s}")));
            } else {
                a.positional.push(arg);
            }
        }
        Ok(a)
    }

    pub fn opt(&self, name: &str) -> Option<&OsString> {
        self.opts.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    pub fn opt_str(&self, name: &str) -> Option<String> {
        self.opt(name).map(|v| v.to_string_lossy().to_string())
    }
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
    /// Exactly `n` positionals, named in `what` for the error message.
    pub fn expect_positional(&self, n: usize, what: &str) -> Result<()> {
        if self.positional.len() != n {
            return Err(Error::Usage(format!("expected {what}")));
        }
        Ok(())
    }
}

/// Parses sizes like `1048576`, `512K`, `100M`, `2G`.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        Some('t' | 'T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| Error::Usage(format!("bad size {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_options_and_rest() {
        let a = Args::parse(v(&["d", "--arch", "aarch64", "--x=1", "--f", "--", "sh", "-c"]), &["arch", "x"], &["f"]).unwrap();
        assert_eq!(a.positional, v(&["d"]));
        assert_eq!(a.opt_str("arch").unwrap(), "aarch64");
        assert_eq!(a.opt_str("x").unwrap(), "1");
        assert!(a.flag("f"));
        assert_eq!(a.rest, v(&["sh", "-c"]));
    }

    #[test]
    fn rejects_unknown_and_missing() {
        assert!(Args::parse(v(&["--nope"]), &[], &[]).is_err());
        assert!(Args::parse(v(&["--arch"]), &["arch"], &[]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("100M").unwrap(), 100 << 20);
        assert!(parse_size("x").is_err());
    }
}
