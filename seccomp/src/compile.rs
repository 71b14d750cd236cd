//! OCI profile → classic BPF program.
//!
//! Layout of a filter (one section per audit arch the kernel can present):
//!
//! ```text
//!   A = arch;  if A == AUDIT_ARCH_X86_64 goto x86_64;  if A == AUDIT_ARCH_I386 goto i386
//!   return KILL_PROCESS                                  (bad arch)
//! x86_64:
//!   A = nr;  if A >= 0x40000000 goto x32 (or KILL_PROCESS when x32 is not listed)
//!   binary search over syscall-number intervals → return action | argument checks
//! x32: …  i386: …
//! ```
//!
//! Precedence for several rules naming the same syscall: the first rule
//! without argument conditions decides alone; otherwise rules with argument
//! conditions are tried in profile order and the first whose conditions all
//! hold decides; none holding → defaultAction. Rules whose action equals the
//! default action are dropped (as runc does).

use std::collections::BTreeMap;

use super::action::{self, Op, RET_BAD_ARCH, RET_USER_NOTIF};
use super::arch::{Arch, Parsed, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::bpf::{self, Asm, Insn, Label};
use super::error::Error;
use super::syscalls;
use husk_oci::seccomp::Seccomp;

pub const FLAG_TSYNC: u64 = 1;
pub const FLAG_LOG: u64 = 2;
pub const FLAG_SPEC_ALLOW: u64 = 4;
pub const FLAG_NEW_LISTENER: u64 = 8;
pub const FLAG_TSYNC_ESRCH: u64 = 16;

pub const FLAGS: [(&str, u64); 3] =
    [("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC), ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG), ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW)];

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// A compiled filter, ready for `install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub(crate) insns: Vec<Insn>,
    pub(crate) flags: u64,
    pub(crate) notify: bool,
    pub(crate) arch: Arch,
    pub(crate) warnings: Vec<String>,
}

impl Program {
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }
    pub fn len(&self) -> usize {
        self.insns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
    /// `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    pub fn flags(&self) -> u64 {
        self.flags
    }
    /// Whether `install` returns a notify listener fd.
    pub fn uses_notify(&self) -> bool {
        self.notify
    }
    /// The arch the filter was built for (its native section).
    pub fn arch(&self) -> Arch {
        self.arch
    }
    /// Skipped names and arches, one line each, for the caller to log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// One argument condition, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// One syscall rule, validated; `ids` are the table indices of its known
/// names, in the profile's order.
#[derive(Debug, Clone)]
pub struct Rule {
    pub ids: Vec<usize>,
    pub ret: u32,
    pub conds: Vec<Cond>,
}

/// A validated profile, independent of the arch.
#[derive(Debug, Clone)]
pub struct Checked {
    pub default: u32,
    pub arches: Vec<Arch>,
    pub flags: u64,
    pub notify: bool,
    pub rules: Vec<Rule>,
    /// Table indices of every known name in the profile, whatever its
    /// action (for the -ENOSYS stub).
    pub named: Vec<usize>,
    /// Syscalls newer than every name in the profile get -ENOSYS instead of
    /// the default action (runc's stub: a program probing a new syscall
    /// falls back instead of failing on EPERM). Off when the default
    /// allows (ALLOW, LOG, TRACE) or already is ENOSYS.
    pub enosys: bool,
    pub warnings: Vec<String>,
}

const ENOSYS: u32 = 38;

/// The stub's return value.
pub const RET_ENOSYS: u32 = action::RET_ERRNO | ENOSYS;

/// Validates every field of the profile; nothing arch-specific yet.
pub fn check(p: &Seccomp) -> Result<Checked, Error> {
    const F: &str = "linux.seccomp";
    let default = action::parse(&p.default_action, p.default_errno_ret, "linux.seccomp.defaultAction")?;
    if default == RET_USER_NOTIF {
        return Err(Error::Invalid { field: format!("{F}.defaultAction"), why: "SCMP_ACT_NOTIFY cannot be the default action" });
    }
    let mut warnings = Vec::new();
    let mut arches = Vec::new();
    for (i, a) in p.architectures.iter().flatten().enumerate() {
        match Arch::parse(a) {
            Parsed::Known(a) => {
                if !arches.contains(&a) {
                    arches.push(a)
                }
            }
            Parsed::Unsupported => warnings.push(format!("{F}.architectures[{i}]: {a} is not supported, its syscalls get KILL_PROCESS")),
            Parsed::Unknown => return Err(Error::UnknownArch { field: format!("{F}.architectures[{i}]"), arch: a.clone() }),
        }
    }
    let mut flags = 0;
    for (i, f) in p.flags.iter().flatten().enumerate() {
        match FLAGS.iter().find(|(n, _)| n == f) {
            Some((_, bit)) => flags |= bit,
            None => return Err(Error::UnknownFlag { field: format!("{F}.flags[{i}]"), flag: f.clone() }),
        }
    }
    let mut rules = Vec::new();
    let mut named = Vec::new();
    let mut notify = false;
    let mut unknown: Vec<&str> = Vec::new();
    for (i, r) in p.syscalls.iter().flatten().enumerate() {
        let field = format!("{F}.syscalls[{i}]");
        let ret = action::parse(&r.action, r.errno_ret, &format!("{field}.action"))?;
        let mut conds = Vec::new();
        for (j, a) in r.args.iter().flatten().enumerate() {
            let af = format!("{field}.args[{j}]");
            if a.index > 5 {
                return Err(Error::ArgIndex { field: format!("{af}.index"), index: a.index });
            }
            let op = Op::parse(&a.op, &format!("{af}.op"))?;
            conds.push(Cond { index: a.index as u8, op, value: a.value, value_two: a.value_two.unwrap_or(0) });
        }
        if ret == RET_USER_NOTIF {
            if r.names.iter().any(|n| n == "write") {
                return Err(Error::Invalid {
                    field: format!("{field}.names"),
                    why: "SCMP_ACT_NOTIFY cannot be used for the write syscall (the runtime needs it after the filter is in place)",
                });
            }
            notify = true;
        }
        let mut ids = Vec::with_capacity(r.names.len());
        for n in &r.names {
            match syscalls::index(n) {
                Some(i) => {
                    ids.push(i);
                    if !named.contains(&i) {
                        named.push(i);
                    }
                }
                None if !unknown.contains(&n.as_str()) => {
                    unknown.push(n);
                    warnings.push(format!("{field}.names: unknown syscall {n}, skipped"));
                }
                None => {}
            }
        }
        if ret == default {
            continue;
        }
        // libseccomp ANDs the conditions of a rule, but cannot take two on
        // the same argument; runc then adds each condition as a rule of
        // its own (so they OR). Do the same.
        let same_arg = conds.iter().enumerate().any(|(k, a)| conds[..k].iter().any(|b| b.index == a.index));
        if same_arg {
            for c in conds {
                rules.push(Rule { ids: ids.clone(), ret, conds: vec![c] });
            }
        } else {
            rules.push(Rule { ids, ret, conds });
        }
    }
    if notify {
        if p.listener_path.as_deref().unwrap_or("").is_empty() {
            return Err(Error::Invalid { field: format!("{F}.listenerPath"), why: "required when an action is SCMP_ACT_NOTIFY" });
        }
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    }
    let allows = matches!(default & 0xffff_0000, action::RET_ALLOW | action::RET_LOG | action::RET_TRACE);
    let enosys = !allows && default != RET_ENOSYS;
    Ok(Checked { default, arches, flags, notify, rules, named, enosys, warnings })
}

/// The arches a filter built on `native` covers: native first, then each
/// listed arch the kernel can present there.
pub fn covered(native: Arch, listed: &[Arch]) -> Vec<Arch> {
    let mut v = vec![native];
    for &a in listed {
        if native.can_present(a) && !v.contains(&a) {
            v.push(a);
        }
    }
    v
}

/// What one syscall number does on one arch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Body<'r> {
    Ret(u32),
    /// Conditional rules in profile order, then the default.
    Cond(Vec<(&'r [Cond], u32)>),
}

fn bodies<'r>(c: &'r Checked, arch: Arch) -> BTreeMap<u32, Body<'r>> {
    let mut m: BTreeMap<u32, Body<'r>> = BTreeMap::new();
    for r in &c.rules {
        for &id in &r.ids {
            let Some(nr) = syscalls::number_at(arch, id) else {
                continue;
            };
            let e = m.entry(nr).or_insert(Body::Cond(Vec::new()));
            match e {
                Body::Ret(_) => {}
                Body::Cond(list) => {
                    if r.conds.is_empty() {
                        *e = Body::Ret(r.ret);
                    } else if !list.iter().any(|(cs, ret)| *cs == &r.conds[..] && *ret == r.ret) {
                        list.push((&r.conds, r.ret));
                    }
                }
            }
        }
    }
    m
}

/// Compiles for `native` (the arch the kernel runs), covering the listed
/// arches the kernel can present there.
pub fn compile_for(p: &Seccomp, native: Arch) -> Result<Program, Error> {
    let c = check(p)?;
    let arches = covered(native, &c.arches);
    let mut asm = Asm::new();
    asm.load(OFF_ARCH);
    // One section per audit value; x86_64 and x32 share one.
    let mut audits: Vec<u32> = Vec::new();
    for a in &arches {
        if !audits.contains(&a.audit()) {
            audits.push(a.audit());
        }
    }
    let sections: Vec<Label> = audits.iter().map(|_| asm.label()).collect();
    for (i, &au) in audits.iter().enumerate() {
        let next = asm.label();
        asm.jump(bpf::JMP_JEQ_K, au, sections[i], next);
        asm.bind(next);
    }
    asm.ret(RET_BAD_ARCH);
    for (i, &au) in audits.iter().enumerate() {
        asm.bind(sections[i]);
        asm.load(OFF_NR);
        if au == AUDIT_ARCH_X86_64 {
            let main = arches.iter().copied().find(|&a| a == Arch::X86_64);
            let x32 = arches.iter().copied().find(|&a| a == Arch::X32);
            let (l_x32, l_main) = (asm.label(), asm.label());
            asm.jump(bpf::JMP_JGE_K, X32_SYSCALL_BIT, l_x32, l_main);
            asm.bind(l_main);
            emit_arch(&mut asm, &c, main);
            asm.bind(l_x32);
            emit_arch(&mut asm, &c, x32);
        } else {
            let a = arches.iter().copied().find(|a| a.audit() == au);
            emit_arch(&mut asm, &c, a);
        }
    }
    let insns = asm.finish();
    if insns.len() > bpf::MAX_INSNS {
        return Err(Error::TooLong { arch: native.oci_name(), len: insns.len() });
    }
    Ok(Program { insns, flags: c.flags, notify: c.notify, arch: native, warnings: c.warnings })
}

/// The section for one arch, entered with A = syscall number. `None` (x86_64
/// numbers seen while x32 or x86_64 is not covered) returns the bad-arch action.
fn emit_arch(asm: &mut Asm, c: &Checked, arch: Option<Arch>) {
    let Some(arch) = arch else {
        asm.ret(RET_BAD_ARCH);
        return;
    };
    let map = bodies(c, arch);
    // Partition the number space into intervals [start, next start) with one
    // body each; neighbouring numbers returning the same value merge.
    let mut iv: Vec<(u32, Body)> = Vec::new();
    push_interval(&mut iv, 0, Body::Ret(c.default));
    for (nr, body) in map {
        push_interval(&mut iv, nr, body);
        if nr < u32::MAX {
            push_interval(&mut iv, nr + 1, Body::Ret(c.default));
        }
    }
    if let Some(last) = enosys_above(c, arch) {
        push_interval(&mut iv, last + 1, Body::Ret(RET_ENOSYS));
    }
    emit_tree(asm, c, arch, &iv);
}

/// The highest number of the profile's syscalls on `arch`, above which the
/// -ENOSYS stub answers (None: no stub).
pub fn enosys_above(c: &Checked, arch: Arch) -> Option<u32> {
    if !c.enosys {
        return None;
    }
    c.named.iter().filter_map(|&i| syscalls::number_at(arch, i)).max().filter(|&n| n < u32::MAX)
}

/// Appends interval `start..` to `iv` (whose starts ascend); an interval that
/// began at the same number is replaced, and a plain return equal to the
/// previous one just extends it.
fn push_interval<'r>(iv: &mut Vec<(u32, Body<'r>)>, start: u32, body: Body<'r>) {
    if iv.last().is_some_and(|l| l.0 == start) {
        iv.pop();
    }
    if let (Some((_, Body::Ret(a))), Body::Ret(b)) = (iv.last(), &body) {
        if a == b {
            return;
        }
    }
    iv.push((start, body));
}

fn emit_tree(asm: &mut Asm, c: &Checked, arch: Arch, iv: &[(u32, Body)]) {
    if iv.len() == 1 {
        emit_body(asm, c, arch, &iv[0].1);
        return;
    }
    let mid = iv.len() / 2;
    let (left, right) = (asm.label(), asm.label());
    asm.jump(bpf::JMP_JGE_K, iv[mid].0, right, left);
    asm.bind(left);
    emit_tree(asm, c, arch, &iv[..mid]);
    asm.bind(right);
    emit_tree(asm, c, arch, &iv[mid..]);
}

fn emit_body(asm: &mut Asm, c: &Checked, arch: Arch, body: &Body) {
    match body {
        Body::Ret(r) => asm.ret(*r),
        Body::Cond(rules) => {
            for (conds, ret) in rules {
                let fail = asm.label();
                for cond in conds.iter() {
                    emit_cond(asm, arch, cond, fail);
                }
                asm.ret(*ret);
                asm.bind(fail);
            }
            asm.ret(c.default);
        }
    }
}

/// Emits a check that falls through when `cond` holds and jumps to `fail`
/// otherwise. 64-bit arches compare the high word first, then the low word;
/// 32-bit arches compare the low word against the low 32 bits of the values.
fn emit_cond(asm: &mut Asm, arch: Arch, cond: &Cond, fail: Label) {
    let lo_off = OFF_ARGS + 8 * cond.index as u32;
    let hi_off = lo_off + 4;
    let (v, v2) = (cond.value, cond.value_two);
    let (vlo, vhi) = (v as u32, (v >> 32) as u32);
    let (v2lo, v2hi) = (v2 as u32, (v2 >> 32) as u32);
    let pass = asm.label();
    use bpf::{JMP_JEQ_K as JEQ, JMP_JGE_K as JGE, JMP_JGT_K as JGT};
    if arch.wide_args() {
        let lo = asm.label();
        asm.load(hi_off);
        match cond.op {
            Op::Eq => asm.jump(JEQ, vhi, lo, fail),
            Op::Ne => asm.jump(JEQ, vhi, lo, pass),
            Op::Gt | Op::Ge => {
                let eq = asm.label();
                asm.jump(JGT, vhi, pass, eq);
                asm.bind(eq);
                asm.jump(JEQ, vhi, lo, fail);
            }
            Op::Lt | Op::Le => {
                let eq = asm.label();
                asm.jump(JGT, vhi, fail, eq);
                asm.bind(eq);
                asm.jump(JEQ, vhi, lo, pass);
            }
            Op::MaskedEq => {
                asm.and(vhi);
                asm.jump(JEQ, v2hi, lo, fail);
            }
        }
        asm.bind(lo);
    }
    asm.load(lo_off);
    match cond.op {
        Op::Eq => asm.jump(JEQ, vlo, pass, fail),
        Op::Ne => asm.jump(JEQ, vlo, fail, pass),
        Op::Gt => asm.jump(JGT, vlo, pass, fail),
        Op::Ge => asm.jump(JGE, vlo, pass, fail),
        Op::Lt => asm.jump(JGE, vlo, fail, pass),
        Op::Le => asm.jump(JGT, vlo, fail, pass),
        Op::MaskedEq => {
            asm.and(vlo);
            asm.jump(JEQ, v2lo, pass, fail);
        }
    }
    asm.bind(pass);
}
