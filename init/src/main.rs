//! husk-init: a tini-compatible PID 1 for containers that can also
//! supervise the services of a small appliance.
//!
//! Built `no_std` (with musl's libc for syscalls) whenever panics abort,
//! i.e. in release builds; that is what keeps the static binary small. Dev
//! builds link std only for its unwinding runtime and use nothing else.
#![cfg_attr(all(panic = "abort", not(test)), no_std)]
#![cfg_attr(not(test), no_main)]

mod boot;
mod cli;
mod container;
mod ctl;
mod logger;
mod power;
mod procs;
mod services;
mod signals;
mod spawn;
mod supervise;
mod sys;
mod text;
mod update;

#[cfg(not(test))]
use core::ffi::c_char;
use core::ffi::c_int;

// Without std nothing links musl's libc for us.
#[cfg(all(panic = "abort", not(test)))]
#[link(name = "c", kind = "static", modifiers = "-bundle")]
extern "C" {}

#[cfg(all(panic = "abort", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    let _ = sys::write_all(2, b"husk-init: internal error (panic)\n");
    if sys::getpid() == 1 {
        // A machine's PID 1 must not exit; park instead.
        loop {
            sys::sleep_ms(3_600_000);
        }
    }
    sys::exit_now(70)
}

/// The C entry point (musl's crt calls it; there is no Rust runtime).
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: the C runtime passes argc valid pointers in argv, followed by
    // NULL, all alive for the whole process.
    let argv: &'static [*const c_char] = unsafe { core::slice::from_raw_parts(argv, argc.max(0) as usize) };
    real_main(cli::Args { argv })
}

/// TINI_VERBOSITY as tini reads it: atoi() into an unsigned int, so a
/// negative value means "everything".
fn env_verbosity() -> Option<u32> {
    let v = sys::getenv(c"TINI_VERBOSITY")?;
    Some(text::atoi(v).clamp(i32::MIN as i64, i32::MAX as i64) as i32 as u32)
}

fn real_main(args: cli::Args) -> c_int {
    logger::set_verbosity(env_verbosity().unwrap_or(logger::DEFAULT_VERBOSITY));
    let parsed = match cli::parse(args) {
        Ok(p) => p,
        Err(e) => {
            if e.wants_usage() {
                logger::out(2, format_args!("husk-init: {}\n", e));
                cli::usage(2);
            } else {
                // FATAL: shown at any verbosity, as in tini.
                crate::error!("{}", e);
            }
            return 1;
        }
    };
    let mut o = match parsed {
        cli::Parsed::Done => return 0,
        cli::Parsed::Ctl { socket, cmd, name, arg } => return ctl::client(socket, cmd, name, arg),
        cli::Parsed::Run(o) => o,
    };
    if sys::getenv(c"TINI_SUBREAPER").is_some() {
        o.subreaper = true;
    }
    if sys::getenv(c"TINI_KILL_PROCESS_GROUP").is_some() {
        o.group = true;
    }
    let machine = power::is_machine_pid1();
    let has_program = o.program < args.len();
    if o.services.is_none() && !has_program && machine {
        if let Some(st) = sys::stat(c"/etc/husk/services").ok().filter(|s| s.is_dir()) {
            let _ = st;
            o.services = Some(cli::DEFAULT_SERVICES);
        }
    }
    if o.services.is_some() {
        if has_program {
            logger::out(2, format_args!("husk-init: --services takes no PROGRAM\n"));
            return 1;
        }
        // Supervision events are the point of appliance mode: show them.
        // (TINI_VERBOSITY, when set, wins over -v, as in tini.)
        logger::info_to_stderr();
        logger::set_verbosity(env_verbosity().unwrap_or(logger::INFO + o.verbose));
        return supervise::run(&o, machine);
    }
    logger::set_verbosity(env_verbosity().unwrap_or(logger::DEFAULT_VERBOSITY + o.verbose));
    if !has_program {
        cli::usage(2);
        if machine {
            // Nothing to run: still never exit.
            power::finish(o.on_exit.unwrap_or(libc::LINUX_REBOOT_CMD_POWER_OFF), true);
        }
        return 1;
    }
    if machine || o.boot {
        boot::early_boot();
    }
    container::run(&o, args)
}

// Unit tests cover the pure parts and do not run the entry point; this
// reference keeps it, and all it calls, built and linted with them.
#[cfg(test)]
const _: fn(cli::Args) -> c_int = real_main;
