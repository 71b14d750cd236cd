//! husk-rootfs: build, import, check and pack flat rootfs directories.

mod arch;
mod bundle;
mod busybox;
mod check;
mod cli;
mod elf;
mod error;
mod image;
mod import;
mod layer;
mod pack;
mod pull;
mod registry;
mod staging;
mod tree;
mod zstd;

use std::ffi::OsString;
use std::path::PathBuf;

use arch::Arch;
use cli::Args;
use error::{Error, Result};

const USAGE: &str = "husk-rootfs COMMAND ...
  busybox DIR [--arch x86_64|aarch64] [--busybox PATH]
  import SRC DIR [--platform linux/amd64|linux/arm64] [--max-size SIZE]
  pull REF DIR [--platform linux/ARCH] [--max-size SIZE] [--creds USER:PASS | --authfile FILE]
       [--ca FILE] [--cert FILE --key FILE] [--plain-http] [--cache DIR] [--quiet]
       (REF: host[:port]/repo[:tag|@sha256:…])
  check DIR [--arch x86_64|aarch64] [--entrypoint PATH]
  pack DIR OUT.tar|OUT.tar.gz|OUT.cpio|OUT.cpio.gz [--mtime SECONDS]
  bundle BUNDLE --rootfs DIR [--network CONFLIST [--port [IP:]HOST:CONTAINER[/tcp|udp]]... [--husk-cni PATH]]
       [-- CMD...]";

fn arch_opt(a: &Args) -> Result<Arch> {
    match a.opt_str("arch") {
        Some(s) => Arch::parse(&s),
        None => Ok(Arch::host()),
    }
}

fn run(argv: Vec<OsString>) -> Result<()> {
    let mut it = argv.into_iter();
    let cmd = it.next().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let rest: Vec<OsString> = it.collect();
    match cmd.as_str() {
        "busybox" => {
            let a = Args::parse(rest, &["arch", "busybox"], &[])?;
            a.expect_positional(1, "busybox DIR")?;
            busybox::run(&busybox::Opts {
                dir: PathBuf::from(&a.positional[0]),
                arch: arch_opt(&a)?,
                busybox: a.opt("busybox").map(PathBuf::from),
            })
        }
        "import" => {
            let a = Args::parse(rest, &["platform", "max-size"], &[])?;
            a.expect_positional(2, "import SRC DIR")?;
            import::run(&import::Opts {
                src: PathBuf::from(&a.positional[0]),
                dir: PathBuf::from(&a.positional[1]),
                platform: a.opt_str("platform").map(|p| Arch::parse_platform(&p)).transpose()?,
                max_size: match a.opt_str("max-size") {
                    Some(s) => cli::parse_size(&s)?,
                    None => import::DEFAULT_MAX_SIZE,
                },
            })
        }
        "pull" => {
            let a =
                Args::parse(rest, &["platform", "max-size", "creds", "authfile", "ca", "cert", "key", "cache"], &["plain-http", "quiet"])?;
            a.expect_positional(2, "pull REF DIR")?;
            let reference = a.positional[0].to_string_lossy().into_owned();
            let creds = match (a.opt_str("creds"), a.opt("authfile")) {
                (Some(_), Some(_)) => return Err(Error::Usage("--creds and --authfile exclude each other".into())),
                (Some(c), None) => {
                    let (u, p) = c.split_once(':').ok_or_else(|| Error::Usage("--creds wants USER:PASS".into()))?;
                    Some((u.to_string(), p.to_string()))
                }
                (None, Some(f)) => registry::creds_from_authfile(std::path::Path::new(f), &registry::Reference::parse(&reference)?)?,
                (None, None) => None,
            };
            pull::run(&pull::Opts {
                reference,
                dir: PathBuf::from(&a.positional[1]),
                platform: a.opt_str("platform").map(|p| Arch::parse_platform(&p)).transpose()?,
                max_size: match a.opt_str("max-size") {
                    Some(s) => cli::parse_size(&s)?,
                    None => import::DEFAULT_MAX_SIZE,
                },
                registry: registry::Opts {
                    plain_http: a.flag("plain-http"),
                    tls: registry::TlsOpts {
                        ca: a.opt("ca").map(PathBuf::from),
                        cert: a.opt("cert").map(PathBuf::from),
                        key: a.opt("key").map(PathBuf::from),
                    },
                    creds,
                },
                cache: a.opt("cache").map(PathBuf::from).unwrap_or_else(pull::default_cache),
                quiet: a.flag("quiet"),
            })
        }
        "pack" => {
            let a = Args::parse(rest, &["mtime"], &[])?;
            a.expect_positional(2, "pack DIR OUT")?;
            pack::run(&pack::Opts {
                dir: PathBuf::from(&a.positional[0]),
                out: PathBuf::from(&a.positional[1]),
                mtime: a.opt_str("mtime").map(|s| s.parse::<u64>().map_err(|_| Error::Usage(format!("bad --mtime {s:?}")))).transpose()?,
            })
        }
        "check" => {
            let a = Args::parse(rest, &["arch", "entrypoint"], &[])?;
            a.expect_positional(1, "check DIR")?;
            check::run(&check::Opts { dir: PathBuf::from(&a.positional[0]), arch: arch_opt(&a)?, entrypoint: a.opt_str("entrypoint") })
        }
        "bundle" => {
            let a = Args::parse(rest, &["rootfs", "network", "port", "husk-cni"], &[])?;
            a.expect_positional(1, "bundle BUNDLE --rootfs DIR [-- CMD...]")?;
            let rootfs = a.opt("rootfs").ok_or_else(|| Error::Usage("bundle needs --rootfs DIR".into()))?;
            let all =
                |name: &str| a.opts.iter().filter(|(n, _)| n == name).map(|(_, v)| v.to_string_lossy().into_owned()).collect::<Vec<_>>();
            let (networks, ports) = (all("network"), all("port"));
            if networks.len() > 1 {
                return Err(Error::Usage("--network given more than once (one network per bundle)".into()));
            }
            if networks.is_empty() && (!ports.is_empty() || a.opt("husk-cni").is_some()) {
                return Err(Error::Usage("--port and --husk-cni need --network CONFLIST".into()));
            }
            bundle::run(&bundle::Opts {
                bundle: PathBuf::from(&a.positional[0]),
                rootfs: PathBuf::from(rootfs),
                args: a.rest.iter().map(|s| s.to_string_lossy().into_owned()).collect(),
                network: networks.first().map(|c| bundle::Network {
                    conflist: PathBuf::from(c),
                    ports,
                    husk_cni: a.opt("husk-cni").map(PathBuf::from),
                }),
            })
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        "" => Err(Error::Usage("no command; try husk-rootfs --help".into())),
        other => Err(Error::Usage(format!("unknown command {other:?}; try husk-rootfs --help"))),
    }
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    if let Err(e) = run(argv) {
        eprintln!("husk-rootfs: {e}");
        std::process::exit(match e {
            Error::Usage(_) => 2,
            _ => 1,
        });
    }
}
