//! `husk-rootfs import`: flatten an image's layers into one directory, built
//! beside DIR and renamed into place only when every digest checked out.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};

use sha2::{Digest, Sha256};

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::image::{self, hex, is_gzip, is_zstd};
use crate::layer::Apply;
use crate::staging::Staging;
use crate::tree::Tree;

pub struct Opts {
    pub src: PathBuf,
    pub dir: PathBuf,
    pub platform: Option<Arch>,
    pub max_size: u64,
}

pub const DEFAULT_MAX_SIZE: u64 = 16 << 30;

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    h: Sha256,
    n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

fn hashing<R: Read>(inner: R) -> Hashing<R> {
    Hashing { inner, h: Sha256::new(), n: 0 }
}

fn drain<R: Read>(r: &mut R, what: &str) -> Result<()> {
    std::io::copy(r, &mut std::io::sink()).map_err(|e| Error::format(what, format!("reading: {e}")))?;
    Ok(())
}

/// Digests of one layer as stored and as uncompressed.
struct Sums {
    blob: String,
    blob_size: u64,
    diff: String,
}

/// The producer: reads the blob to its end, hashing it, sniffs and
/// decompresses it, hashes the uncompressed stream, and sends it in chunks.
/// Stops early (without error) when the receiver is gone.
fn decode_layer(r: Box<dyn Read + Send>, tx: SyncSender<std::io::Result<Vec<u8>>>) -> std::io::Result<Sums> {
    const CHUNK: usize = 256 * 1024;
    let mut buf = BufReader::with_capacity(CHUNK, hashing(r));
    let head = buf.fill_buf()?;
    let (gz, zst) = (is_gzip(head), is_zstd(head));
    let d = {
        let dec: Box<dyn Read + '_> = if gz {
            Box::new(flate2::bufread::MultiGzDecoder::new(&mut buf))
        } else if zst {
            Box::new(crate::zstd::Zstd::new(&mut buf))
        } else {
            Box::new(&mut buf)
        };
        let mut diff = hashing(dec);
        loop {
            let mut v = vec![0u8; CHUNK];
            let n = match diff.read(&mut v) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            if n == 0 {
                break;
            }
            v.truncate(n);
            if tx.send(Ok(v)).is_err() {
                return Err(std::io::Error::other("extraction stopped"));
            }
        }
        hex(&diff.h.finalize_reset())
    };
    drop(tx);
    // Trailing bytes after the compressed stream still count for the blob.
    std::io::copy(&mut buf, &mut std::io::sink())?;
    let blob = buf.into_inner();
    Ok(Sums { blob: format!("sha256:{}", hex(&blob.h.finalize())), blob_size: blob.n, diff: format!("sha256:{d}") })
}

/// The consumer's side of the channel, as a reader.
struct ChanReader {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.cur.len() {
                let n = out.len().min(self.cur.len() - self.pos);
                out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // Sender gone: end of stream.
                Err(_) => self.done = true,
            }
        }
    }
}

pub fn run(o: &Opts) -> Result<()> {
    crate::staging::check_dest(&o.dir)?;
    let plan = image::plan(&o.src, o.platform)?;
    let st = Staging::new(&o.dir)?;
    let (n, total) = apply_plan(&plan, &st.tmp, o.max_size)?;
    let dest = st.commit()?;
    println!(
        "imported {} ({}, {} layer{}) into {}: {} entries, {} bytes",
        o.src.display(),
        plan.kind,
        plan.layers.len(),
        if plan.layers.len() == 1 { "" } else { "s" },
        dest.display(),
        n,
        total
    );
    print_command(&plan);
    Ok(())
}

/// Prints the image's Entrypoint + Cmd, when it has one.
pub fn print_command(plan: &image::Plan) {
    if let Some(rc) = plan.config.as_ref().and_then(|c| c.config.as_ref()) {
        let mut argv: Vec<String> = rc.entrypoint.clone().unwrap_or_default();
        argv.extend(rc.cmd.clone().unwrap_or_default());
        if !argv.is_empty() {
            println!("image command: {}", serde_json::to_string(&argv).unwrap_or_default());
        }
    }
}

/// Applies every layer of `plan` onto the (empty) staging tree `tmp`,
/// checking each blob's digest and size and its diff_id. Returns the entry
/// count and unpacked bytes.
pub fn apply_plan(plan: &image::Plan, tmp: &std::path::Path, max_size: u64) -> Result<(u64, u64)> {
    let tree = Tree::open(tmp)?;
    let mut apply = Apply::new(tree, max_size);
    for (i, l) in plan.layers.iter().enumerate() {
        let what = format!("layer {} ({})", i + 1, l.member);
        let (r, _) = plan.store.open(&l.member)?;
        // Reading, hashing and decompressing run on a second thread, feeding
        // the extraction here (like `tar -z` with its gzip process).
        let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(16);
        let producer = std::thread::spawn(move || decode_layer(r, tx));
        let mut chan = ChanReader { rx, cur: Vec::new(), pos: 0, done: false };
        let applied = apply.layer(&mut chan).map_err(|e| match e {
            // Name the layer when its stream is broken.
            Error::Format { what: w, msg } if w == "layer" => Error::Format { what: what.clone(), msg },
            other => other,
        });
        let drained = applied.and_then(|()| drain(&mut chan, &what));
        // Dropping the receiver stops the producer early on failure.
        drop(chan);
        let sums = producer.join().map_err(|_| Error::format(what.clone(), "decoder thread panicked"))?;
        drained?;
        let sums = sums.map_err(|e| Error::format(what.clone(), format!("reading: {e}")))?;
        if let Some(want) = &l.diff_id {
            if &sums.diff != want {
                return Err(Error::Digest { what: format!("{what} uncompressed"), want: want.clone(), got: sums.diff });
            }
        }
        if let Some(size) = l.size {
            if sums.blob_size != size {
                return Err(Error::format(what, format!("size {} but manifest says {size}", sums.blob_size)));
            }
        }
        if let Some(want) = &l.digest {
            if &sums.blob != want {
                return Err(Error::Digest { what, want: want.clone(), got: sums.blob });
            }
        }
    }
    apply.finish()?;
    Ok((apply.entries, apply.total))
}
