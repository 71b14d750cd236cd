//! A small classic-BPF assembler with labels.
//!
//! cBPF conditional jumps reach at most 255 instructions forward. The
//! assembler lets the generator jump anywhere forward by label, and on
//! `finish` rewrites every conditional jump whose target is too far into a
//! short jump to an unconditional `ja` trampoline (32-bit offset).

/// One instruction as the kernel reads it (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (<linux/filter.h> / <linux/bpf_common.h>).
pub const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
pub const ALU_AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
pub const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub const JMP_JEQ_K: u16 = 0x05 | 0x10;
pub const JMP_JGT_K: u16 = 0x05 | 0x20;
pub const JMP_JGE_K: u16 = 0x05 | 0x30;
pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// The kernel's limit (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum Item {
    Stmt { code: u16, k: u32 },
    Jump { code: u16, k: u32, jt: Label, jf: Label },
    Ja(Label),
    Mark(Label),
}

#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub fn new() -> Asm {
        Asm { items: Vec::with_capacity(2048), labels: 0 }
    }

    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `l` at the next instruction.
    pub fn bind(&mut self, l: Label) {
        self.items.push(Item::Mark(l));
    }

    /// A ≔ 32-bit word at `off` in `seccomp_data`.
    pub fn load(&mut self, off: u32) {
        self.items.push(Item::Stmt { code: LD_W_ABS, k: off });
    }

    pub fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: ALU_AND_K, k });
    }

    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: RET_K, k });
    }

    /// `if A <op> k goto jt else goto jf` with op one of JMP_JEQ_K/JGT_K/JGE_K.
    pub fn jump(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }

    /// Where each label lands, as an instruction index, into `pos`.
    fn positions(&self, pos: &mut Vec<usize>) {
        pos.clear();
        pos.resize(self.labels, usize::MAX);
        let mut n = 0;
        for it in &self.items {
            match it {
                Item::Mark(l) => pos[l.0] = n,
                _ => n += 1,
            }
        }
    }

    /// Resolves labels. Every label used must be bound after its use
    /// (cBPF only jumps forward); the generator guarantees it.
    pub fn finish(mut self) -> Vec<Insn> {
        // Buffers reused across relaxation passes: musl's allocator maps and
        // unmaps big blocks, so fresh vectors per pass cost syscalls.
        let mut pos = Vec::with_capacity(self.labels + 64);
        let mut out: Vec<Item> = Vec::with_capacity(self.items.len() + 64);
        loop {
            self.positions(&mut pos);
            out.clear();
            let mut changed = false;
            let mut n = 0usize; // instruction index of the item being copied
            for &it in &self.items {
                if let Item::Jump { code, k, jt, jf } = it {
                    let far = |l: Label| pos[l.0].saturating_sub(n + 1) > 255;
                    let (t, f) = (far(jt), far(jf));
                    if t || f {
                        changed = true;
                        let new_jt = if t {
                            self.labels += 1;
                            Label(self.labels - 1)
                        } else {
                            jt
                        };
                        let new_jf = if f {
                            self.labels += 1;
                            Label(self.labels - 1)
                        } else {
                            jf
                        };
                        out.push(Item::Jump { code, k, jt: new_jt, jf: new_jf });
                        if t {
                            out.push(Item::Mark(new_jt));
                            out.push(Item::Ja(jt));
                        }
                        if f {
                            out.push(Item::Mark(new_jf));
                            out.push(Item::Ja(jf));
                        }
                        n += 1;
                        continue;
                    }
                }
                if !matches!(it, Item::Mark(_)) {
                    n += 1;
                }
                out.push(it);
            }
            std::mem::swap(&mut self.items, &mut out);
            if !changed {
                break;
            }
        }
        self.positions(&mut pos);
        let mut insns = Vec::with_capacity(self.items.len());
        for it in &self.items {
            let here = insns.len();
            let rel = |l: Label| {
                let p = pos[l.0];
                debug_assert!(p != usize::MAX && p > here, "label bound before use");
                p.saturating_sub(here + 1)
            };
            match *it {
                Item::Mark(_) => {}
                Item::Stmt { code, k } => insns.push(Insn { code, jt: 0, jf: 0, k }),
                Item::Jump { code, k, jt, jf } => insns.push(Insn { code, jt: rel(jt) as u8, jf: rel(jf) as u8, k }),
                Item::Ja(l) => insns.push(Insn { code: JMP_JA, jt: 0, jf: 0, k: rel(l) as u32 }),
            }
        }
        insns
    }
}
