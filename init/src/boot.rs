//! Early boot for a machine's PID 1: the API filesystems, the hostname and
//! the console. Everything is "when absent", so running it where they are
//! already mounted changes nothing.

use crate::logger::Show;
use crate::sys::{self, lit};
use core::ffi::c_char;

/// Is `path` a mount point (a different device than `parent`)?
fn is_mountpoint(path: *const c_char, parent: *const c_char) -> bool {
    match (sys::stat(path), sys::stat(parent)) {
        (Ok(a), Ok(b)) => a.dev != b.dev,
        _ => false,
    }
}

fn mount_if_absent(
    path: &'static [u8],
    parent: &'static [u8],
    fstype: &'static [u8],
    flags: libc::c_ulong,
    data: &'static [u8],
) {
    let p = lit(path);
    let _ = sys::mkdir(p, 0o755);
    if is_mountpoint(p, lit(parent)) {
        return;
    }
    let data_ptr = if data.len() > 1 { lit(data) } else { core::ptr::null() };
    match sys::mount(lit(fstype), p, lit(fstype), flags, data_ptr) {
        Ok(()) => crate::info!("mounted {}", Show(&path[..path.len() - 1])),
        Err(e) => crate::warn!("mount {} failed: {}", Show(&path[..path.len() - 1]), e),
    }
}

pub fn early_boot() {
    let nosuid = libc::MS_NOSUID;
    let nodev = libc::MS_NODEV;
    let noexec = libc::MS_NOEXEC;
    mount_if_absent(b"/proc\0", b"/\0", b"proc\0", nosuid | nodev | noexec, b"\0");
    mount_if_absent(b"/sys\0", b"/\0", b"sysfs\0", nosuid | nodev | noexec, b"\0");
    mount_if_absent(b"/dev\0", b"/\0", b"devtmpfs\0", nosuid, b"mode=0755\0");
    mount_if_absent(b"/dev/pts\0", b"/dev\0", b"devpts\0", nosuid | noexec, b"gid=5,mode=620,ptmxmode=666\0");
    if !sys::exists(lit(b"/dev/ptmx\0")) {
        let _ = sys::symlink(lit(b"pts/ptmx\0"), lit(b"/dev/ptmx\0"));
    }
    mount_if_absent(b"/dev/shm\0", b"/dev\0", b"tmpfs\0", nosuid | nodev, b"mode=1777\0");
    mount_if_absent(b"/run\0", b"/\0", b"tmpfs\0", nosuid | nodev, b"mode=0755\0");
    mount_if_absent(b"/tmp\0", b"/\0", b"tmpfs\0", nosuid | nodev, b"mode=1777\0");
    mount_if_absent(b"/sys/fs/cgroup\0", b"/sys\0", b"cgroup2\0", nosuid | nodev | noexec, b"\0");
    console_on_stdio();
    hostname();
}

/// Gives fds 0, 1, 2 the console when the kernel left them closed.
pub fn console_on_stdio() {
    if (0..3).all(sys::fd_is_open) {
        return;
    }
    let Ok(fd) = sys::open(lit(b"/dev/console\0"), libc::O_RDWR | libc::O_NOCTTY, 0) else {
        return;
    };
    for t in 0..3 {
        if !sys::fd_is_open(t) {
            let _ = sys::dup2(fd, t);
        }
    }
    if fd > 2 {
        sys::close(fd);
    }
}

fn hostname() {
    let mut buf = [0u8; 256];
    let Ok(s) = sys::read_file(lit(b"/etc/hostname\0"), &mut buf) else {
        return;
    };
    let name = s.split(|&b| b == b'\n' || b == b' ').find(|w| !w.is_empty());
    if let Some(n) = name {
        match sys::sethostname(n) {
            Ok(()) => crate::info!("hostname {}", Show(n)),
            Err(e) => crate::warn!("sethostname failed: {}", e),
        }
    }
}

/// Ctrl-alt-del sends SIGINT to PID 1 instead of rebooting at once.
pub fn catch_ctrl_alt_del() {
    let _ = sys::reboot(libc::LINUX_REBOOT_CMD_CAD_OFF);
}
