//! Fault injection for the crash tests (tests/tests/crash.rs): with the
//! `fault-injection` feature, `HUSK_FAULT_AT=N` makes husk SIGKILL itself
//! at the N-th fault point it passes, and `HUSK_FAULT_LIST=1` prints each
//! point it passes. Without the feature (the shipped binary) a point is an
//! empty inline function.

#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    static N: AtomicU32 = AtomicU32::new(0);
    static AT: OnceLock<(u32, bool)> = OnceLock::new();
    let (at, list) = *AT.get_or_init(|| {
        let at = std::env::var("HUSK_FAULT_AT").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        (at, std::env::var_os("HUSK_FAULT_LIST").is_some())
    });
    let n = N.fetch_add(1, Ordering::Relaxed) + 1;
    if list {
        eprintln!("husk: fault point {n}: {name}");
    }
    if n == at {
        // SAFETY: kill(2) of ourselves with SIGKILL; never returns.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}
