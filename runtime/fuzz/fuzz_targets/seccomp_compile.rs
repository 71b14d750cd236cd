//! Structured profiles decoded from the fuzzer's bytes (mostly valid names,
//! actions, operators and edge values, sometimes garbage) → compiler, with
//! the compiled BPF checked against the reference semantics.
#![no_main]

mod common;
use husk_seccomp as seccomp;

use libfuzzer_sys::fuzz_target;
use seccomp::{ArgRule, Seccomp, SyscallRule};

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u64(&mut self) -> u64 {
        match self.u8() % 4 {
            0 => [0, 1, 0xffff_ffff, 0x1_0000_0000, u64::MAX, 0x7E02_0000][self.u8() as usize % 6],
            1 => self.u8() as u64,
            _ => (0..8).fold(0u64, |acc, _| acc << 8 | self.u8() as u64),
        }
    }
    fn pick<'s>(&mut self, list: &[&'s str], junk: &'s str) -> String {
        let i = self.u8() as usize;
        if i < 250 {
            list[i % list.len()].to_string()
        } else {
            junk.to_string()
        }
    }
}

const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
const ARCHES: [&str; 6] = [
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_PPC64LE",
];
const FLAGS: [&str; 3] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
];

fuzz_target!(|data: &[u8]| {
    let names: Vec<&str> = seccomp::syscall_names().collect();
    let mut b = Bytes(data);
    let errno = |b: &mut Bytes| {
        if b.u8() & 1 == 0 {
            None
        } else {
            Some(b.u8() as u32 * 17)
        }
    };
    let mut s = Seccomp {
        default_action: b.pick(&ACTIONS, "SCMP_ACT_NONE"),
        default_errno_ret: errno(&mut b),
        architectures: Some(
            (0..b.u8() % 4)
                .map(|_| b.pick(&ARCHES, "SCMP_ARCH_PDP11"))
                .collect(),
        ),
        flags: Some(
            (0..b.u8() % 3)
                .map(|_| b.pick(&FLAGS, "SECCOMP_FILTER_FLAG_X"))
                .collect(),
        ),
        listener_path: if b.u8() & 1 == 0 {
            Some("/run/agent.sock".into())
        } else {
            None
        },
        listener_metadata: None,
        syscalls: None,
    };
    let mut rules = Vec::new();
    for _ in 0..b.u8() % 64 {
        let mut r = SyscallRule::new(&[], "");
        r.names = (0..b.u8() % 4)
            .map(|_| b.pick(&names, "no_such_syscall"))
            .collect();
        r.action = b.pick(&ACTIONS, "SCMP_ACT_MAYBE");
        if r.action == "SCMP_ACT_ERRNO" || r.action == "SCMP_ACT_TRACE" || b.u8() == 0 {
            r.errno_ret = errno(&mut b);
        }
        let n = b.u8() % 5;
        if n > 0 {
            r.args = Some(
                (0..n)
                    .map(|_| {
                        let index = (b.u8() % 7) as u32;
                        let op = b.pick(&OPS, "SCMP_CMP_ABOUT");
                        ArgRule::new(index, &op, b.u64(), Some(b.u64()))
                    })
                    .collect(),
            );
        }
        rules.push(r);
    }
    s.syscalls = Some(rules);
    if let Err(e) = seccomp::compile(&s) {
        assert!(!e.to_string().contains('\n'));
    }
    common::check(&s, b.0);
});
