//! The profile's meaning computed directly, without BPF: the oracle the
//! compiled filter is checked against (tests and fuzzer).

use super::action::RET_BAD_ARCH;
use super::arch::{Arch, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::compile::{covered, Checked};
use super::interp::Data;
use super::syscalls;

/// What the filter compiled from `p` for `native` must return for `d`, or
/// None when the profile does not compile.
pub fn expect(p: &super::Seccomp, native: Arch, d: &Data) -> Option<u32> {
    let c = super::compile::check(p).ok()?;
    Some(eval(&c, native, d))
}

/// What a filter built for `native` from `c` must return for `d`.
pub fn eval(c: &Checked, native: Arch, d: &Data) -> u32 {
    let arches = covered(native, &c.arches);
    let arch = if d.arch == AUDIT_ARCH_X86_64 && arches.iter().any(|a| a.audit() == d.arch) {
        // One audit value, two ABIs: numbers from the x32 bit up are x32's
        // (or invalid), never x86_64's.
        let want = if d.nr >= X32_SYSCALL_BIT { Arch::X32 } else { Arch::X86_64 };
        match arches.iter().find(|&&a| a == want) {
            Some(&a) => a,
            None => return RET_BAD_ARCH,
        }
    } else {
        match arches.iter().find(|a| a.audit() == d.arch) {
            Some(&a) => a,
            None => return RET_BAD_ARCH,
        }
    };
    if super::compile::enosys_above(c, arch).is_some_and(|last| d.nr > last) {
        return super::compile::RET_ENOSYS;
    }
    let matches = |r: &super::compile::Rule| r.ids.iter().any(|&i| syscalls::number_at(arch, i) == Some(d.nr));
    // The first unconditional rule decides alone.
    if let Some(r) = c.rules.iter().find(|r| r.conds.is_empty() && matches(r)) {
        return r.ret;
    }
    for r in c.rules.iter().filter(|r| !r.conds.is_empty() && matches(r)) {
        let all = r.conds.iter().all(|k| {
            let (mut arg, mut v, mut v2) = (d.args[k.index as usize], k.value, k.value_two);
            if !arch.wide_args() {
                arg &= 0xffff_ffff;
                v &= 0xffff_ffff;
                v2 &= 0xffff_ffff;
            }
            k.op.eval(arg, v, v2)
        });
        if all {
            return r.ret;
        }
    }
    c.default
}
