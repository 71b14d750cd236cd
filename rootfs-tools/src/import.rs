//! `husk-rootfs import`: flatten an image's layers into one directory, built
//! beside DIR and renamed into place only when every digest checked out.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

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

pub fn run(o: &Opts) -> Result<()> {
    crate::staging::check_dest(&o.dir)?;
    let plan = image::plan(&o.src, o.platform)?;
    let st = Staging::new(&o.dir)?;
    let tree = Tree::open(&st.tmp)?;
    let mut apply = Apply::new(tree, o.max_size);
    for (i, l) in plan.layers.iter().enumerate() {
        let what = format!("layer {} ({})", i + 1, l.member);
        let (r, _) = plan.store.open(&l.member)?;
        let mut buf = BufReader::with_capacity(256 * 1024, hashing(r));
        let head = buf.fill_buf().map_err(|e| Error::format(what.clone(), format!("reading: {e}")))?;
        let (gz, zst) = (is_gzip(head), is_zstd(head));
        {
            let dec: Box<dyn Read + '_> = if gz {
                Box::new(flate2::bufread::MultiGzDecoder::new(&mut buf))
            } else if zst {
                Box::new(crate::zstd::Zstd::new(&mut buf))
            } else {
                Box::new(&mut buf)
            };
            let mut diff = hashing(dec);
            apply.layer(&mut diff).map_err(|e| match e {
                // Name the layer when its stream is broken.
                Error::Format { what: w, msg } if w == "layer" => Error::Format { what: what.clone(), msg },
                other => other,
            })?;
            drain(&mut diff, &what)?;
            if let Some(want) = &l.diff_id {
                let got = format!("sha256:{}", hex(&diff.h.finalize_reset()));
                if &got != want {
                    return Err(Error::Digest { what: format!("{what} uncompressed"), want: want.clone(), got });
                }
            }
        }
        drain(&mut buf, &what)?;
        let blob = buf.into_inner();
        if let Some(size) = l.size {
            if blob.n != size {
                return Err(Error::format(what, format!("size {} but manifest says {size}", blob.n)));
            }
        }
        if let Some(want) = &l.digest {
            let got = format!("sha256:{}", hex(&blob.h.finalize()));
            if &got != want {
                return Err(Error::Digest { what, want: want.clone(), got });
            }
        }
    }
    apply.finish()?;
    let (n, total) = (apply.entries, apply.total);
    drop(apply);
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
    if let Some(rc) = plan.config.as_ref().and_then(|c| c.config.as_ref()) {
        let mut argv: Vec<String> = rc.entrypoint.clone().unwrap_or_default();
        argv.extend(rc.cmd.clone().unwrap_or_default());
        if !argv.is_empty() {
            println!("image command: {}", serde_json::to_string(&argv).unwrap_or_default());
        }
    }
    Ok(())
}
