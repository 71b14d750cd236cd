//! Early boot for a machine's PID 1: the API filesystems, the hostname and
//! the console. Everything is "when absent", so running it where they are
//! already mounted changes nothing.

use crate::logger::Show;
use crate::sys;
use core::ffi::CStr;

/// Is `path` a mount point (a different device than `parent`)?
fn is_mountpoint(path: &CStr, parent: &CStr) -> bool {
    match (sys::stat(path), sys::stat(parent)) {
        (Ok(a), Ok(b)) => a.dev != b.dev,
        _ => false,
    }
}

fn mount_if_absent(path: &CStr, parent: &CStr, fstype: &CStr, flags: libc::c_ulong, data: Option<&CStr>) {
    let _ = sys::mkdir(path, 0o755);
    if is_mountpoint(path, parent) {
        return;
    }
    let shown = Show(path.to_bytes());
    match sys::mount(Some(fstype), path, Some(fstype), flags, data) {
        Ok(()) => crate::info!("mounted {}", shown),
        Err(e) => crate::warn!("mount {} failed: {}", shown, e),
    }
}

pub fn early_boot() {
    let nosuid = libc::MS_NOSUID;
    let nodev = libc::MS_NODEV;
    let noexec = libc::MS_NOEXEC;
    mount_if_absent(c"/proc", c"/", c"proc", nosuid | nodev | noexec, None);
    mount_if_absent(c"/sys", c"/", c"sysfs", nosuid | nodev | noexec, None);
    mount_if_absent(c"/dev", c"/", c"devtmpfs", nosuid, Some(c"mode=0755"));
    mount_if_absent(c"/dev/pts", c"/dev", c"devpts", nosuid | noexec, Some(c"gid=5,mode=620,ptmxmode=666"));
    if !sys::exists(c"/dev/ptmx") {
        let _ = sys::symlink(c"pts/ptmx", c"/dev/ptmx");
    }
    mount_if_absent(c"/dev/shm", c"/dev", c"tmpfs", nosuid | nodev, Some(c"mode=1777"));
    mount_if_absent(c"/run", c"/", c"tmpfs", nosuid | nodev, Some(c"mode=0755"));
    mount_if_absent(c"/tmp", c"/", c"tmpfs", nosuid | nodev, Some(c"mode=1777"));
    mount_if_absent(c"/sys/fs/cgroup", c"/sys", c"cgroup2", nosuid | nodev | noexec, None);
    console_on_stdio();
    hostname();
}

/// Gives fds 0, 1, 2 the console when the kernel left them closed.
pub fn console_on_stdio() {
    if (0..3).all(sys::fd_is_open) {
        return;
    }
    let Ok(fd) = sys::open(c"/dev/console", libc::O_RDWR | libc::O_NOCTTY, 0) else {
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
    let Ok(s) = sys::read_file(c"/etc/hostname", &mut buf) else {
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
