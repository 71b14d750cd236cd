//! `husk-init ctl`: a line-based protocol over a unix stream socket.
//! The client sends `CMD [NAME]\n`; the supervisor answers with text lines
//! (`ok: ...`, `error: ...` or status lines) and closes.

use crate::logger::{self, Show};
use crate::sys;
use core::ffi::c_int;

/// Reads one request line (up to 255 bytes) from a connection.
pub fn read_request(fd: c_int, buf: &mut [u8; 256]) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        match sys::read(fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[..n].contains(&b'\n') {
                    break;
                }
            }
            Err(_) => return None,
        }
    }
    let end = buf[..n].iter().position(|&b| b == b'\n').unwrap_or(n);
    Some(end)
}

/// The client side; returns the exit code.
pub fn client(socket: &'static [u8], cmd: &[u8], name: &[u8]) -> c_int {
    let fd = match sys::connect_unix(socket) {
        Ok(fd) => fd,
        Err(e) => {
            logger::out(2, format_args!("husk-init: ctl: {}: {}\n", Show(socket), e));
            return 1;
        }
    };
    let mut req = logger::Line::new();
    req.push(cmd);
    if !name.is_empty() {
        req.push(b" ");
        req.push(name);
    }
    req.push(b"\n");
    if let Err(e) = sys::write_all(fd, req.bytes()) {
        logger::out(2, format_args!("husk-init: ctl: {}: {}\n", Show(socket), e));
        sys::close(fd);
        return 1;
    }
    sys::shutdown_write(fd);
    let mut buf = [0u8; 512];
    let mut first = true;
    let mut out_fd = 1;
    let mut code = 0;
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if first && buf[..n].starts_with(b"error:") {
                    out_fd = 2;
                    code = 1;
                }
                first = false;
                let _ = sys::write_all(out_fd, &buf[..n]);
            }
            Err(e) => {
                logger::out(2, format_args!("husk-init: ctl: {}: {}\n", Show(socket), e));
                code = 1;
                break;
            }
        }
    }
    if first {
        logger::out(
            2,
            format_args!("husk-init: ctl: {}: no reply\n", Show(socket)),
        );
        code = 1;
    }
    sys::close(fd);
    code
}
