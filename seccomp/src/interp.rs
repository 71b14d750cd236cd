//! A classic-BPF interpreter for the subset the compiler emits, to check
//! compiled filters against synthetic `seccomp_data` in tests and the fuzzer
//! (on any host arch, and under qemu-user where real filters cannot run).

use super::bpf::{self, Insn};

/// `struct seccomp_data`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl Data {
    fn word(&self, off: u32) -> Option<u32> {
        Some(match off {
            0 => self.nr,
            4 => self.arch,
            8 => self.ip as u32,
            12 => (self.ip >> 32) as u32,
            16..=60 if off.is_multiple_of(4) => {
                let a = self.args[((off - 16) / 8) as usize];
                if (off - 16).is_multiple_of(8) {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => return None,
        })
    }
}

/// Why a program could not run to a `ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    UnknownOpcode(usize, u16),
    BadLoad(usize, u32),
    RanOff,
}

/// Runs `prog` on `d`; returns what the filter returns.
pub fn run(prog: &[Insn], d: &Data) -> Result<u32, Fault> {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    while pc < prog.len() {
        let i = prog[pc];
        pc += 1;
        match i.code {
            bpf::LD_W_ABS => a = d.word(i.k).ok_or(Fault::BadLoad(pc - 1, i.k))?,
            bpf::ALU_AND_K => a &= i.k,
            bpf::RET_K => return Ok(i.k),
            bpf::JMP_JA => pc += i.k as usize,
            bpf::JMP_JEQ_K | bpf::JMP_JGT_K | bpf::JMP_JGE_K => {
                let t = match i.code {
                    bpf::JMP_JEQ_K => a == i.k,
                    bpf::JMP_JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += if t { i.jt } else { i.jf } as usize;
            }
            c => return Err(Fault::UnknownOpcode(pc - 1, c)),
        }
    }
    Err(Fault::RanOff)
}
