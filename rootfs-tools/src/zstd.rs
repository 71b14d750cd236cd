//! A zstd reader over any number of concatenated frames (the zstd CLI and
//! image builders may split a layer into several), using ruzstd's pure-Rust
//! frame decoder.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

enum State<R: BufRead> {
    Frame(Box<StreamingDecoder<R, FrameDecoder>>),
    Between(R),
    Broken,
}

pub struct Zstd<R: BufRead> {
    state: State<R>,
}

impl<R: BufRead> Zstd<R> {
    pub fn new(r: R) -> Zstd<R> {
        Zstd { state: State::Between(r) }
    }
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, State::Broken) {
                State::Frame(mut d) => {
                    let n = d.read(buf)?;
                    if n > 0 {
                        self.state = State::Frame(d);
                        return Ok(n);
                    }
                    self.state = State::Between(d.into_inner());
                }
                State::Between(mut r) => {
                    if r.fill_buf()?.is_empty() {
                        self.state = State::Between(r);
                        return Ok(0);
                    }
                    self.state = State::Frame(Box::new(StreamingDecoder::new(r).map_err(bad)?));
                }
                State::Broken => return Err(bad("stream already failed")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn zstd_cli(data: &[u8]) -> Option<Vec<u8>> {
        let mut ch = Command::new("zstd").args(["-q", "-c"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().ok()?;
        let mut si = ch.stdin.take()?;
        let d = data.to_vec();
        let w = std::thread::spawn(move || std::io::Write::write_all(&mut si, &d));
        let out = ch.wait_with_output().ok()?;
        w.join().ok()?.ok()?;
        Some(out.stdout)
    }

    #[test]
    fn decodes_concatenated_frames() {
        let a: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let b = b"second frame".repeat(1000);
        let (Some(za), Some(zb)) = (zstd_cli(&a), zstd_cli(&b)) else {
            eprintln!("SKIP: zstd CLI not installed");
            return;
        };
        let mut both = za.clone();
        both.extend_from_slice(&zb);
        let mut out = Vec::new();
        Zstd::new(&both[..]).read_to_end(&mut out).unwrap();
        let mut want = a.clone();
        want.extend_from_slice(&b);
        assert!(out == want, "decoded {} bytes, want {}", out.len(), want.len());
        // Corrupt input is an error, not a short read.
        let mut broken = za.clone();
        let mid = broken.len() / 2;
        broken.truncate(mid);
        assert!(Zstd::new(&broken[..]).read_to_end(&mut Vec::new()).is_err());
    }
}
