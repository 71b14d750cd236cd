//! Attached `run` of a terminal container without `--console-socket`: husk
//! itself copies between its stdio and the pty master (as runc does).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

pub struct Proxy {
    saved: Option<Termios>,
    out: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(master: OwnedFd) -> Proxy {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
            copy_winsize(&master);
        }
        let mut m_in = std::fs::File::from(master.try_clone().expect("dup pty master"));
        let mut m_out = std::fs::File::from(master);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut inp = std::io::stdin();
            while let Ok(n) = inp.read(&mut buf) {
                if n == 0 || m_in.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let out = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut o = std::io::stdout();
            // EIO once the last slave fd closes: the container is done.
            while let Ok(n) = m_out.read(&mut buf) {
                if n == 0 || o.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = o.flush();
            }
        });
        Proxy { saved, out: Some(out) }
    }

    pub fn finish(mut self) {
        if let Some(h) = self.out.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn copy_winsize(master: &OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ on fds we hold, with a struct we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}
