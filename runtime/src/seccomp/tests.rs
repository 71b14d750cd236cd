//! Unit tests: tables, validation, BPF generation checked with the
//! interpreter against the reference semantics (both arches, runs under
//! qemu-aarch64 too), and real-kernel tests on x86_64 in forked children.

use super::action::*;
use super::arch::*;
use super::compile::check;
use super::interp::{self, Data};
use super::*;

fn profile(v: serde_json::Value) -> Seccomp {
    from_value(v).expect("test profile parses")
}

fn data(arch: Arch, name: &str, args: [u64; 6]) -> Data {
    let nr = syscalls::number(arch, name).unwrap_or_else(|| panic!("{name} on {arch:?}"));
    Data { nr, arch: arch.audit(), ip: 0, args }
}

fn run(p: &Program, d: &Data) -> u32 {
    interp::run(p.instructions(), d).expect("filter runs to a ret")
}

/// Interpreter result == reference result for `d`.
fn agree(s: &Seccomp, native: Arch, p: &Program, d: &Data) {
    let c = check(s).unwrap();
    let want = reference::eval(&c, native, d);
    let got = run(p, d);
    assert_eq!(got, want, "nr {:#x} arch {:#x} args {:x?}", d.nr, d.arch, d.args);
}

/// Small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Values near the interesting edges of 32/64-bit comparisons.
    fn value(&mut self) -> u64 {
        const EDGES: [u64; 12] = [
            0,
            1,
            2,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0001,
            0xffff_ffff_0000_0000,
            0x7fff_ffff_ffff_ffff,
            0xffff_ffff_ffff_fffe,
            u64::MAX,
        ];
        match self.below(4) {
            0 => EDGES[self.below(EDGES.len())],
            1 => self.next(),
            2 => self.next() & 0xff,
            _ => (self.below(4) as u64) << 32 | (self.below(4) as u64),
        }
    }
}

// ---------------------------------------------------------------- tables

#[test]
#[cfg(target_arch = "x86_64")]
fn table_matches_libc_on_x86_64() {
    let cases: &[(&str, libc::c_long)] = &[
        ("read", libc::SYS_read),
        ("write", libc::SYS_write),
        ("open", libc::SYS_open),
        ("mkdir", libc::SYS_mkdir),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("reboot", libc::SYS_reboot),
        ("kexec_load", libc::SYS_kexec_load),
        ("keyctl", libc::SYS_keyctl),
        ("bpf", libc::SYS_bpf),
        ("unshare", libc::SYS_unshare),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("getppid", libc::SYS_getppid),
        ("sched_yield", libc::SYS_sched_yield),
        ("personality", libc::SYS_personality),
        ("openat2", libc::SYS_openat2),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("newfstatat", libc::SYS_newfstatat),
        ("pidfd_getfd", libc::SYS_pidfd_getfd),
        ("memfd_secret", libc::SYS_memfd_secret),
        ("seccomp", libc::SYS_seccomp),
        ("exit_group", libc::SYS_exit_group),
        ("arch_prctl", libc::SYS_arch_prctl),
    ];
    for (name, nr) in cases {
        assert_eq!(syscalls::number(Arch::X86_64, name), Some(*nr as u32), "{name}");
    }
}

#[test]
#[cfg(target_arch = "aarch64")]
fn table_matches_libc_on_aarch64() {
    let cases: &[(&str, libc::c_long)] = &[
        ("read", libc::SYS_read),
        ("write", libc::SYS_write),
        ("openat", libc::SYS_openat),
        ("mkdirat", libc::SYS_mkdirat),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("reboot", libc::SYS_reboot),
        ("keyctl", libc::SYS_keyctl),
        ("bpf", libc::SYS_bpf),
        ("unshare", libc::SYS_unshare),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("getppid", libc::SYS_getppid),
        ("sched_yield", libc::SYS_sched_yield),
        ("newfstatat", libc::SYS_newfstatat),
        ("fstat", libc::SYS_fstat),
        ("seccomp", libc::SYS_seccomp),
        ("exit_group", libc::SYS_exit_group),
    ];
    for (name, nr) in cases {
        assert_eq!(syscalls::number(Arch::Aarch64, name), Some(*nr as u32), "{name}");
    }
}

#[test]
fn tables_know_each_abi() {
    // asm-generic has no legacy path calls.
    for n in ["open", "mkdir", "fork", "vfork", "stat", "lstat", "access", "pipe", "dup2", "poll", "select", "rename", "unlink"] {
        assert_eq!(syscalls::number(Arch::Aarch64, n), None, "aarch64 has no {n}");
        assert!(syscalls::number(Arch::X86_64, n).is_some(), "x86_64 has {n}");
    }
    assert_eq!(syscalls::number(Arch::Aarch64, "mkdirat"), Some(34));
    assert_eq!(syscalls::number(Arch::Aarch64, "openat"), Some(56));
    assert_eq!(syscalls::number(Arch::Aarch64, "fstat"), Some(80));
    assert_eq!(syscalls::number(Arch::Aarch64, "newfstatat"), Some(79));
    assert_eq!(syscalls::number(Arch::X86_64, "mkdir"), Some(83));
    assert_eq!(syscalls::number(Arch::X86, "mkdir"), Some(39));
    assert_eq!(syscalls::number(Arch::X86, "socketcall"), Some(102));
    assert_eq!(syscalls::number(Arch::X86_64, "socketcall"), None);
    // x32: shared numbers with the x32 bit, own numbers from 512.
    assert_eq!(syscalls::number(Arch::X32, "read"), Some(0x4000_0000));
    assert_eq!(syscalls::number(Arch::X32, "mkdir"), Some(0x4000_0000 | 83));
    assert_eq!(syscalls::number(Arch::X32, "rt_sigaction"), Some(0x4000_0000 | 512));
    assert_eq!(syscalls::number(Arch::X32, "ioctl"), Some(0x4000_0000 | 514));
    // Added after the header release the tables came from.
    for a in ALL {
        assert_eq!(syscalls::number(a, "fchmodat2"), Some(452 | if a == Arch::X32 { 0x4000_0000 } else { 0 }));
    }
    assert!(syscalls::number(Arch::X86_64, "nonsense").is_none());
    let names: Vec<_> = syscalls::all_names().collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "names sorted for binary search");
    for n in &names {
        assert!(syscalls::known(n));
    }
}

// ---------------------------------------------------------------- validation

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["read"], "action": "SCMP_ACT_FOO"}]}),
            "linux.seccomp.syscalls[3].action: unknown action SCMP_ACT_FOO",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_NOPE"}),
            "linux.seccomp.defaultAction: unknown action SCMP_ACT_NOPE",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}),
            "linux.seccomp.syscalls[0].args[1].op: unknown operator SCMP_CMP_LIKE",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index: argument index 6 out of range 0..=5",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]}),
            "linux.seccomp.architectures[1]: unknown architecture SCMP_ARCH_Z80",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}),
            "linux.seccomp.flags[0]: unknown flag SECCOMP_FILTER_FLAG_FAST",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}),
            "linux.seccomp.defaultErrnoRet: errno 5000 out of range 0..=4095",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}),
            "linux.seccomp.syscalls[0].errnoRet: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath: required when an action is SCMP_ACT_NOTIFY",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0].names: SCMP_ACT_NOTIFY cannot be used for write (the runtime needs it after the filter is in place)",
        ),
    ];
    for (v, want) in cases {
        let e = compile_for(&profile(v), Arch::X86_64).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert!(!e.to_string().contains('\n'));
    }
    let e = from_json(b"{\"defaultAction\": 3}").unwrap_err();
    assert!(e.to_string().starts_with("linux.seccomp: invalid type"), "{e}");
}

#[test]
fn unknown_names_are_skipped_with_a_warning() {
    let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_call", "getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9}]}));
    let p = compile_for(&s, Arch::X86_64).unwrap();
    assert_eq!(p.warnings(), ["linux.seccomp.syscalls[0].names: unknown syscall no_such_call, skipped"]);
    assert_eq!(run(&p, &data(Arch::X86_64, "getppid", [0; 6])), RET_ERRNO | 9);
    // A name only another arch has is skipped silently.
    let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}));
    let p = compile_for(&s, Arch::Aarch64).unwrap();
    assert!(p.warnings().is_empty());
    assert_eq!(run(&p, &data(Arch::Aarch64, "mkdirat", [0; 6])), RET_ERRNO | 1);
}

#[test]
fn features_report_what_compile_accepts() {
    let f = features();
    assert_eq!(f.actions.len(), 9);
    assert_eq!(f.operators.len(), 7);
    assert_eq!(f.archs, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]);
    for a in &f.actions {
        let mut s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "listenerPath": "/x",
            "syscalls": [{"names": ["getppid"], "action": a}]}));
        s.flags = Some(f.flags.iter().map(|x| x.to_string()).collect());
        compile_for(&s, Arch::X86_64).unwrap_or_else(|e| panic!("{a}: {e}"));
    }
    for op in &f.operators {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 1, "op": op}]}]}));
        compile_for(&s, Arch::Aarch64).unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    for a in &f.archs {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [a]}));
        compile_for(&s, Arch::X86_64).unwrap();
    }
}

#[test]
fn notify_sets_the_listener_flags() {
    let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC"], "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}));
    let p = compile_for(&s, Arch::X86_64).unwrap();
    assert!(p.uses_notify());
    assert_eq!(p.flags(), 1 | 8 | 16);
    assert_eq!(run(&p, &data(Arch::X86_64, "getppid", [0; 6])), RET_USER_NOTIF);
}

// ---------------------------------------------------------------- generation

fn both() -> [Arch; 2] {
    [Arch::X86_64, Arch::Aarch64]
}

#[test]
fn actions_encode_as_the_kernel_expects() {
    for native in both() {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "listenerPath": "/x", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL"},
            {"names": ["gettid"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["getuid"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["getgid"], "action": "SCMP_ACT_TRAP"},
            {"names": ["geteuid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getegid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["getpgid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["getsid"], "action": "SCMP_ACT_LOG"},
            {"names": ["sched_yield"], "action": "SCMP_ACT_NOTIFY"}]}));
        let p = compile_for(&s, native).unwrap();
        let r = |n: &str| run(&p, &data(native, n, [0; 6]));
        assert_eq!(r("getpid"), 0x7fff_0000);
        assert_eq!(r("getppid"), 0);
        assert_eq!(r("gettid"), 0x8000_0000);
        assert_eq!(r("getuid"), 0);
        assert_eq!(r("getgid"), 0x0003_0000);
        assert_eq!(r("geteuid"), 0x0005_0001, "ERRNO defaults to EPERM");
        assert_eq!(r("getegid"), 0x0005_000d);
        assert_eq!(r("getpgid"), 0x7ff0_0007);
        assert_eq!(r("getsid"), 0x7ffc_0000);
        assert_eq!(r("sched_yield"), 0x7fc0_0000);
        assert_eq!(r("read"), 0x0005_0026, "default ERRNO with defaultErrnoRet");
        // Unknown and huge syscall numbers get the default too.
        let mut d = data(native, "read", [0; 6]);
        for nr in [999, 0x3fff_ffff] {
            d.nr = nr;
            assert_eq!(run(&p, &d), 0x0005_0026);
        }
    }
}

#[test]
fn arch_is_checked_first() {
    let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 17}]}));
    // Native only: anything else is killed.
    let p = compile_for(&s, Arch::X86_64).unwrap();
    assert_eq!(run(&p, &data(Arch::X86_64, "mkdir", [0; 6])), RET_ERRNO | 17);
    assert_eq!(run(&p, &data(Arch::X86_64, "getpid", [0; 6])), RET_ALLOW);
    assert_eq!(run(&p, &data(Arch::X86, "mkdir", [0; 6])), RET_KILL_PROCESS);
    assert_eq!(run(&p, &data(Arch::Aarch64, "mkdirat", [0; 6])), RET_KILL_PROCESS);
    // x32 numbers must not slip past x86_64 rules: without x32 they kill.
    assert_eq!(run(&p, &data(Arch::X32, "mkdir", [0; 6])), RET_KILL_PROCESS);
    assert_eq!(run(&p, &data(Arch::X32, "getpid", [0; 6])), RET_KILL_PROCESS);
    let p = compile_for(&s, Arch::Aarch64).unwrap();
    assert_eq!(run(&p, &data(Arch::Aarch64, "mkdirat", [0; 6])), RET_ERRNO | 17);
    assert_eq!(run(&p, &data(Arch::X86_64, "mkdir", [0; 6])), RET_KILL_PROCESS);

    // Listing x86 and x32 adds their sections, each with its own numbers.
    let mut s2 = s.clone();
    s2.architectures = Some(vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into(), "SCMP_ARCH_AARCH64".into()]);
    let p = compile_for(&s2, Arch::X86_64).unwrap();
    for a in [Arch::X86_64, Arch::X86, Arch::X32] {
        assert_eq!(run(&p, &data(a, "mkdir", [0; 6])), RET_ERRNO | 17, "{a:?}");
        assert_eq!(run(&p, &data(a, "getpid", [0; 6])), RET_ALLOW, "{a:?}");
        // i386's mkdir (39) is x86_64's getpid: numbers are per arch.
    }
    assert_eq!(syscalls::number(Arch::X86, "mkdir"), syscalls::number(Arch::X86_64, "getpid"));
    // aarch64 is listed but cannot reach an x86_64 kernel.
    assert_eq!(run(&p, &data(Arch::Aarch64, "mkdirat", [0; 6])), RET_KILL_PROCESS);
    // Docker's profile lists arches without a table: skipped, with a warning.
    s2.architectures = Some(vec!["SCMP_ARCH_AARCH64".into(), "SCMP_ARCH_ARM".into()]);
    let p = compile_for(&s2, Arch::Aarch64).unwrap();
    assert_eq!(p.warnings().len(), 1);
    assert_eq!(run(&p, &data(Arch::Aarch64, "mkdirat", [0; 6])), RET_ERRNO | 17);
}

#[test]
fn argument_filter_blocks_only_the_matching_call() {
    for native in both() {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 0xdead_beef_u64, "op": "SCMP_CMP_EQ"}]}]}));
        let p = compile_for(&s, native).unwrap();
        assert_eq!(run(&p, &data(native, "personality", [0xdead_beef, 0, 0, 0, 0, 0])), RET_ERRNO | 22);
        assert_eq!(run(&p, &data(native, "personality", [0xdead_beee, 0, 0, 0, 0, 0])), RET_ALLOW);
        // 64-bit: the high word counts too.
        assert_eq!(run(&p, &data(native, "personality", [0x1_dead_beef, 0, 0, 0, 0, 0])), RET_ALLOW);
        assert_eq!(run(&p, &data(native, "personality", [0, 0xdead_beef, 0, 0, 0, 0])), RET_ALLOW);
    }
}

#[test]
fn every_operator_on_both_words() {
    let ops = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];
    let vals: [u64; 10] = [0, 1, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 0x2_0000_0000, 0xffff_ffff_0000_0000, 0x8000_0000_0000_0000, u64::MAX - 1, u64::MAX];
    for native in [Arch::X86_64, Arch::Aarch64, Arch::X86] {
        for (k, op) in ops.iter().enumerate() {
            for &v in &vals {
                for &v2 in &[0u64, 1, 0x1_0000_0000, v] {
                    let index = (k % 6) as u32;
                    let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                        {"names": ["sched_yield"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                         "args": [{"index": index, "value": v, "valueTwo": v2, "op": op}]}]}));
                    let p = compile_for(&s, native).unwrap();
                    for &x in &vals {
                        let mut args = [0u64; 6];
                        args[index as usize] = x;
                        let d = data(native, "sched_yield", args);
                        agree(&s, native, &p, &d);
                        // And the oracle itself against plain Rust:
                        if native.wide_args() {
                            let hit = match *op {
                                "SCMP_CMP_NE" => x != v,
                                "SCMP_CMP_LT" => x < v,
                                "SCMP_CMP_LE" => x <= v,
                                "SCMP_CMP_EQ" => x == v,
                                "SCMP_CMP_GE" => x >= v,
                                "SCMP_CMP_GT" => x > v,
                                _ => x & v == v2,
                            };
                            assert_eq!(run(&p, &d), if hit { RET_ERRNO | 5 } else { RET_ALLOW }, "{op} {x:#x} vs {v:#x}/{v2:#x}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn args_are_anded_and_rules_ored_in_order() {
    for native in both() {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2,
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_GT"}]}]}));
        let p = compile_for(&s, native).unwrap();
        let r = |a: u64, b: u64| run(&p, &data(native, "kill", [a, b, 0, 0, 0, 0]));
        assert_eq!(r(1, 9), RET_ERRNO | 1);
        assert_eq!(r(2, 9), RET_ERRNO | 2);
        assert_eq!(r(200, 9), RET_ERRNO | 2, "first matching rule wins");
        assert_eq!(r(200, 15), RET_LOG);
        assert_eq!(r(1, 15), RET_ALLOW);
        // An unconditional rule for the same syscall overrides them all.
        let mut s2 = s.clone();
        s2.syscalls.as_mut().unwrap().push(SyscallRule::new(&["kill"], "SCMP_ACT_TRAP"));
        let p = compile_for(&s2, native).unwrap();
        assert_eq!(run(&p, &data(native, "kill", [1, 9, 0, 0, 0, 0])), RET_TRAP);
    }
}

#[test]
fn thirty_two_bit_abis_compare_the_low_word() {
    let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": u64::MAX, "op": "SCMP_CMP_EQ"}]}]}));
    let p = compile_for(&s, Arch::X86_64).unwrap();
    // i386 passes -1 as 0xffffffff; the rule written for 64-bit still matches.
    assert_eq!(run(&p, &data(Arch::X86, "personality", [0xffff_ffff, 0, 0, 0, 0, 0])), RET_ERRNO | 1);
    assert_eq!(run(&p, &data(Arch::X86_64, "personality", [0xffff_ffff, 0, 0, 0, 0, 0])), RET_ALLOW);
    assert_eq!(run(&p, &data(Arch::X86_64, "personality", [u64::MAX, 0, 0, 0, 0, 0])), RET_ERRNO | 1);
}

/// A profile big enough that conditional jumps need trampolines.
#[test]
fn far_jumps_are_relaxed() {
    for native in both() {
        let names: Vec<&str> = syscalls::all_names().filter(|n| syscalls::number(native, n).is_some()).collect();
        let mut rules = Vec::new();
        for (i, n) in names.iter().enumerate() {
            rules.push(serde_json::json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": (i % 4000) as u32 + 1,
                "args": [{"index": i % 6, "value": i as u64 * 0x1_0000_0001, "op": "SCMP_CMP_GE"}]}));
        }
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        let p = compile_for(&s, native).unwrap();
        assert!(p.len() > 2000 && p.len() <= 4096, "{} instructions", p.len());
        let ja = p.instructions().iter().filter(|i| i.code == bpf::JMP_JA).count();
        assert!(ja > 0, "this profile needs trampolines");
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for n in &names {
            for _ in 0..4 {
                let mut args = [0u64; 6];
                for a in &mut args {
                    *a = rng.value().wrapping_mul(0x1_0000_0001) >> rng.below(3);
                }
                agree(&s, native, &p, &data(native, n, args));
            }
        }
    }
}

#[test]
fn too_long_is_an_error() {
    let names: Vec<&str> = syscalls::all_names().filter(|n| syscalls::number(Arch::X86_64, n).is_some()).collect();
    let conds: Vec<_> = (0..6).map(|i| serde_json::json!({"index": i, "value": 7, "op": "SCMP_CMP_LE"})).collect();
    let rules: Vec<_> = names.iter().map(|n| serde_json::json!({"names": [n], "action": "SCMP_ACT_LOG", "args": conds})).collect();
    let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    let e = compile_for(&s, Arch::X86_64).unwrap_err();
    assert!(matches!(e, Error::TooLong { .. }), "{e}");
}

/// Random profiles, random calls: the filter agrees with the reference.
#[test]
fn random_profiles_agree_with_the_reference() {
    let names: Vec<&str> = syscalls::all_names().collect();
    let actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_LOG", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_KILL_PROCESS"];
    let ops = action::OPERATORS;
    let arch_names = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"];
    let mut rng = Rng(42);
    for round in 0..300 {
        let mut rules = Vec::new();
        let mut pool = Vec::new();
        for _ in 0..rng.below(12) + 1 {
            pool.push(names[rng.below(names.len())]);
        }
        for _ in 0..rng.below(20) {
            let act = actions[rng.below(actions.len())];
            let mut r = serde_json::json!({"names": (0..rng.below(3) + 1).map(|_| pool[rng.below(pool.len())]).collect::<Vec<_>>(), "action": act});
            if act == "SCMP_ACT_ERRNO" || act == "SCMP_ACT_TRACE" {
                r["errnoRet"] = (rng.below(4096) as u32).into();
            }
            if rng.below(3) > 0 {
                r["args"] = (0..rng.below(3) + 1)
                    .map(|_| serde_json::json!({"index": rng.below(6), "value": rng.value(), "valueTwo": rng.value(), "op": ops[rng.below(ops.len())]}))
                    .collect::<Vec<_>>()
                    .into();
            }
            rules.push(r);
        }
        let archs: Vec<_> = (0..rng.below(3)).map(|_| arch_names[rng.below(4)]).collect();
        let s = profile(serde_json::json!({"defaultAction": actions[rng.below(actions.len())], "architectures": archs, "syscalls": rules}));
        let c = check(&s).unwrap();
        for native in both() {
            let p = compile_for(&s, native).unwrap();
            for _ in 0..200 {
                let arch = ALL[rng.below(4)];
                let name = pool[rng.below(pool.len())];
                let nr = match syscalls::number(arch, name) {
                    Some(n) if rng.below(8) > 0 => n,
                    _ => rng.next() as u32 >> rng.below(32),
                };
                let mut args = [0u64; 6];
                for a in &mut args {
                    *a = rng.value();
                }
                // Often reuse a rule's own values so conditions hit.
                if let Some(r) = s.syscalls.as_ref().unwrap().get(rng.below(rules.len().max(1))) {
                    for c in r.args.iter().flatten() {
                        if rng.below(2) == 0 {
                            args[c.index as usize] = if rng.below(2) == 0 { c.value } else { c.value_two.unwrap_or(0) };
                        }
                    }
                }
                let d = Data { nr, arch: arch.audit(), ip: rng.next(), args };
                assert_eq!(run(&p, &d), reference::eval(&c, native, &d), "round {round} {native:?} {d:x?}\n{s:?}");
            }
        }
    }
}

// ---------------------------------------------------------------- default profile

#[test]
fn default_profile_blocks_docker_list_and_allows_the_rest() {
    let s = default_profile();
    for native in both() {
        let p = compile_for(&s, native).unwrap();
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
        assert!(p.len() < 1200, "{} instructions", p.len());
        let eperm = RET_ERRNO | 1;
        let r = |n: &str, args: [u64; 6]| run(&p, &data(native, n, args));
        for n in [
            "reboot", "kexec_load", "kexec_file_load", "mount", "umount2", "keyctl", "add_key", "request_key", "bpf",
            "perf_event_open", "unshare", "setns", "pivot_root", "init_module", "finit_module", "delete_module", "acct",
            "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "quotactl", "open_by_handle_at",
            "name_to_handle_at", "userfaultfd", "mbind", "set_mempolicy", "get_mempolicy", "move_pages", "kcmp",
            "io_uring_setup", "fsopen", "move_mount", "open_tree", "syslog", "lookup_dcookie", "vhangup",
            "sethostname", "setdomainname",
        ] {
            assert_eq!(r(n, [0; 6]), eperm, "{n} on {native:?}");
        }
        for n in ["read", "write", "openat", "execve", "exit_group", "mmap", "futex", "clock_gettime", "getpid", "wait4", "chroot", "ptrace", "socketpair", "rt_sigreturn", "fchmodat2"] {
            assert_eq!(r(n, [0; 6]), RET_ALLOW, "{n} on {native:?}");
        }
        // clone: threads and forks yes, new namespaces no.
        assert_eq!(r("clone", [0x3d0f00, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r("clone", [0x1200011, 0, 0, 0, 0, 0]), RET_ALLOW);
        for ns in [0x20000u64, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000] {
            assert_eq!(r("clone", [ns | 0x11, 0, 0, 0, 0, 0]), eperm);
        }
        assert_eq!(r("clone3", [0; 6]), RET_ERRNO | 38);
        assert_eq!(r("socket", [1, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r("socket", [40, 1, 0, 0, 0, 0]), eperm);
        assert_eq!(r("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r("personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r("personality", [0x0040_0000, 0, 0, 0, 0, 0]), eperm);
        // Every syscall of the arch agrees with the reference.
        for n in syscalls::all_names() {
            if syscalls::number(native, n).is_some() {
                agree(&s, native, &p, &data(native, n, [0; 6]));
            }
        }
    }
    // On x86_64 the i386 and x32 ABIs are covered, not killed.
    let p = compile_for(&s, Arch::X86_64).unwrap();
    assert_eq!(run(&p, &data(Arch::X86, "socketcall", [0; 6])), RET_ALLOW);
    assert_eq!(run(&p, &data(Arch::X86, "mount", [0; 6])), RET_ERRNO | 1);
    assert_eq!(run(&p, &data(Arch::X32, "mount", [0; 6])), RET_ERRNO | 1);
    assert_eq!(run(&p, &data(Arch::X32, "read", [0; 6])), RET_ALLOW);
    assert_eq!(default_capabilities().len(), 14);
    // The profile survives a JSON round trip (husk spec writes it).
    let text = serde_json::to_vec(&s).unwrap();
    assert_eq!(from_json(&text).unwrap(), s);
}
