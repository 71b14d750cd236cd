//! The end of PID 1: a machine's init must never exit (the kernel would
//! panic), so it syncs, unmounts and powers off / reboots / halts.

use crate::sys;
use core::ffi::c_int;

/// The inode of the initial PID namespace (PROC_PID_INIT_INO in the kernel).
const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;

/// Some(true) when /proc shows us in the initial PID namespace.
fn in_init_pid_ns() -> Option<bool> {
    sys::stat(c"/proc/self/ns/pid").ok().map(|st| st.ino == INIT_PID_NS_INO)
}

/// True when we are PID 1 of the whole machine, not of a container.
pub fn is_machine_pid1() -> bool {
    if sys::getpid() != 1 {
        return false;
    }
    if let Some(b) = in_init_pid_ns() {
        return b;
    }
    // No /proc yet (a fresh boot, or a chroot): mount it to find out.
    let _ = sys::mkdir(c"/proc", 0o555);
    let p = Some(c"proc");
    let _ = sys::mount(p, c"/proc", p, libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None);
    in_init_pid_ns().unwrap_or(true)
}

pub fn action_name(cmd: c_int) -> &'static str {
    match cmd {
        libc::LINUX_REBOOT_CMD_RESTART => "rebooting",
        libc::LINUX_REBOOT_CMD_HALT => "halting",
        _ => "powering off",
    }
}

/// Unmounts everything but / (deepest first), then remounts / read-only.
pub fn unmount_all() {
    let mut buf = [0u8; 8192];
    let Ok(text) = sys::read_file(c"/proc/self/mounts", &mut buf) else {
        return;
    };
    let mut points: heapless::Vec<(usize, usize), 128> = heapless::Vec::new();
    let mut off = 0;
    for line in text.split(|&b| b == b'\n') {
        if let Some(sp) = line.iter().position(|&b| b == b' ') {
            let rest = &line[sp + 1..];
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            let _ = points.push((off + sp + 1, end));
        }
        off += line.len() + 1;
    }
    for &(start, len) in points.iter().rev() {
        let raw = &text[start..start + len];
        if raw == b"/" {
            continue;
        }
        // Decode the octal escapes (\040 for a space) of /proc/mounts.
        let mut p = sys::CBuf::<{ crate::services::PATH_MAX }>::new();
        let mut i = 0;
        let mut ok = true;
        while i < raw.len() {
            let c = if raw[i] == b'\\' && i + 3 < raw.len() && raw[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = (raw[i + 1] - b'0') * 64 + (raw[i + 2] - b'0') * 8 + (raw[i + 3] - b'0');
                i += 4;
                v
            } else {
                i += 1;
                raw[i - 1]
            };
            ok &= p.push(&[c]).is_some();
        }
        if !ok {
            continue;
        }
        if sys::umount(p.cstr(), 0).is_err() {
            let _ = sys::umount(p.cstr(), libc::MNT_DETACH);
        }
    }
    let _ = sys::mount(None, c"/", None, libc::MS_REMOUNT | libc::MS_RDONLY, None);
}

/// Ends PID 1: everything else is terminated by the caller first. On a
/// machine this never returns; in a PID namespace reboot(2) ends the
/// namespace (its init dies of SIGINT for poweroff/halt, SIGHUP for reboot).
pub fn finish(cmd: c_int, machine: bool) {
    sys::sync();
    // Unmounting (and remounting / read-only) only with positive proof that
    // this is the machine's init: never the host's root from a container.
    if machine && in_init_pid_ns() == Some(true) {
        unmount_all();
        sys::sync();
    }
    if sys::getpid() == 1 {
        if let Err(e) = sys::reboot(cmd) {
            crate::error!("reboot(2) failed: {}", e);
        }
    }
    if machine {
        // Never exit: that would panic the kernel.
        loop {
            sys::sleep_ms(3_600_000);
        }
    }
}
