//! The bpf(2) calls the v2 device filter needs: load a
//! BPF_PROG_TYPE_CGROUP_DEVICE program, attach it to a cgroup directory with
//! BPF_F_ALLOW_MULTI, and detach the programs it replaces.

use super::devices::Insn;
use super::error::Error;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, i32> {
    // SAFETY: attr is a live, fully initialised repr(C) struct of the layout
    // the kernel expects for `cmd`, and its size is passed alongside; any
    // pointers inside it point to buffers that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>() as u32) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    } else {
        Ok(r)
    }
}

/// Loads a device program; on a verifier rejection the error carries the
/// verifier's last log line.
pub fn load(prog: &[Insn]) -> Result<OwnedFd, Error> {
    let license = b"Apache-2.0\0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..4].copy_from_slice(b"husk");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel returned a new fd that nothing else owns.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(errno) => {
            // Retry with a log buffer to say why.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
                // SAFETY: as above.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(Error::Bpf { op: "BPF_PROG_LOAD", errno, log: String::from_utf8_lossy(&log[..end]).into_owned() })
        }
    }
}

/// IDs of the device programs attached to a cgroup directory.
pub fn query(cgroup: BorrowedFd<'_>) -> Result<Vec<u32>, Error> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|errno| Error::Bpf { op: "BPF_PROG_QUERY", errno, log: String::new() })?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

pub fn attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), Error> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ()).map_err(|errno| Error::Bpf { op: "BPF_PROG_ATTACH", errno, log: String::new() })
}

/// Detaches the program with this ID from the cgroup.
pub fn detach_id(cgroup: BorrowedFd<'_>, id: u32) -> Result<(), Error> {
    let mut g = GetFdAttr { prog_id: id, ..Default::default() };
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut g).map_err(|errno| Error::Bpf { op: "BPF_PROG_GET_FD_BY_ID", errno, log: String::new() })?;
    // SAFETY: a new fd returned by the kernel, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(|_| ()).map_err(|errno| Error::Bpf { op: "BPF_PROG_DETACH", errno, log: String::new() })
}

/// Replaces the device programs on `cgroup` by `prog`: attach the new one
/// first (so there is never a moment without a filter), then detach the old.
pub fn install(cgroup: BorrowedFd<'_>, prog: &[Insn]) -> Result<(), Error> {
    let old = query(cgroup)?;
    let fd = load(prog)?;
    attach(cgroup, std::os::fd::AsFd::as_fd(&fd))?;
    for id in old {
        match detach_id(cgroup, id) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
