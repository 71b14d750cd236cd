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
        (serde_json::json!({"defaultAction": "SCMP_ACT_NOPE"}), "linux.seccomp.defaultAction: unknown action SCMP_ACT_NOPE"),
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
            "linux.seccomp.syscalls[0].names: SCMP_ACT_NOTIFY cannot be used for the write syscall (the runtime needs it after the filter is in place)",
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
fn runtime_helpers() {
    assert_eq!(prepare(None).unwrap(), None);
    let p = prepare(Some(&from_value(default_profile_json()).unwrap())).unwrap().unwrap();
    assert_eq!(p, compile(&default_profile()).unwrap());
    let bad = from_value(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["X"]})).unwrap();
    let e = prepare(Some(&bad)).unwrap_err();
    assert_eq!(e.to_string(), "linux.seccomp.flags[0]: unknown flag X");
    let e = from_value(serde_json::json!({"syscalls": []})).unwrap_err();
    assert_eq!(e.to_string(), "linux.seccomp: missing field `defaultAction`");
    let f = features_json();
    assert_eq!(f["enabled"], true);
    assert_eq!(f["operators"].as_array().unwrap().len(), 7);
    assert!(f["actions"].as_array().unwrap().contains(&serde_json::json!("SCMP_ACT_NOTIFY")));
    // Every flag husk knows is older than any kernel husk runs on (4.17+),
    // except under qemu-user, which does not pass seccomp(2) through.
    let supported = f["supportedFlags"].as_array().unwrap();
    if cfg!(target_arch = "x86_64") {
        assert_eq!(supported.len(), 3, "{f}");
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
    let vals: [u64; 10] = [
        0,
        1,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x2_0000_0000,
        0xffff_ffff_0000_0000,
        0x8000_0000_0000_0000,
        u64::MAX - 1,
        u64::MAX,
    ];
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
    let actions =
        ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_LOG", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_KILL_PROCESS"];
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
            let mut r =
                serde_json::json!({"names": (0..rng.below(3) + 1).map(|_| pool[rng.below(pool.len())]).collect::<Vec<_>>(), "action": act});
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
    for native in both() {
        let s = default_profile_for(native);
        let p = compile_for(&s, native).unwrap();
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
        assert!(p.len() < 1200, "{} instructions", p.len());
        let eperm = RET_ERRNO | 1;
        let r = |n: &str, args: [u64; 6]| run(&p, &data(native, n, args));
        for n in [
            "reboot",
            "kexec_load",
            "kexec_file_load",
            "mount",
            "umount2",
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "perf_event_open",
            "unshare",
            "setns",
            "pivot_root",
            "init_module",
            "finit_module",
            "delete_module",
            "acct",
            "swapon",
            "swapoff",
            "settimeofday",
            "clock_settime",
            "clock_adjtime",
            "quotactl",
            "open_by_handle_at",
            "name_to_handle_at",
            "userfaultfd",
            "mbind",
            "set_mempolicy",
            "get_mempolicy",
            "move_pages",
            "kcmp",
            "io_uring_setup",
            "fsopen",
            "move_mount",
            "open_tree",
            "syslog",
            "lookup_dcookie",
            "vhangup",
            "sethostname",
            "setdomainname",
        ] {
            assert_eq!(r(n, [0; 6]), eperm, "{n} on {native:?}");
        }
        for n in [
            "read",
            "write",
            "openat",
            "execve",
            "exit_group",
            "mmap",
            "futex",
            "clock_gettime",
            "getpid",
            "wait4",
            "chroot",
            "ptrace",
            "socketpair",
            "rt_sigreturn",
            "fchmodat2",
        ] {
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
    let s = default_profile_for(Arch::X86_64);
    let p = compile_for(&s, Arch::X86_64).unwrap();
    assert_eq!(run(&p, &data(Arch::X86, "socketcall", [0; 6])), RET_ALLOW);
    assert_eq!(run(&p, &data(Arch::X86, "mount", [0; 6])), RET_ERRNO | 1);
    assert_eq!(run(&p, &data(Arch::X32, "mount", [0; 6])), RET_ERRNO | 1);
    assert_eq!(run(&p, &data(Arch::X32, "read", [0; 6])), RET_ALLOW);
    // The profile survives a JSON round trip (husk spec writes it).
    let text = serde_json::to_vec(&s).unwrap();
    assert_eq!(from_json(&text).unwrap(), s);
}

// ---------------------------------------------------------------- real kernel

/// Real filters in forked children. x86_64 only: under qemu-user a filter
/// would judge qemu's own host syscalls, so these do not run for aarch64.
#[cfg(target_arch = "x86_64")]
mod kernel {
    use super::*;
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn skip_without_seccomp() -> bool {
        // SAFETY: PR_GET_SECCOMP takes no pointers.
        if unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } < 0 {
            eprintln!("SKIP: the kernel has no seccomp");
            return true;
        }
        false
    }

    #[derive(Debug, PartialEq, Eq)]
    pub enum Outcome {
        Exit(i32),
        Signal(i32),
    }

    /// A forked child, killed and reaped on drop if the test bails out early.
    pub struct Child(libc::pid_t);

    impl Child {
        pub fn wait(mut self) -> Outcome {
            let mut st = 0;
            // SAFETY: waits for our own child; `st` is a valid out-pointer.
            let r = unsafe { libc::waitpid(self.0, &mut st, 0) };
            assert_eq!(r, self.0, "waitpid");
            self.0 = 0;
            if libc::WIFEXITED(st) {
                Outcome::Exit(libc::WEXITSTATUS(st))
            } else {
                Outcome::Signal(libc::WTERMSIG(st))
            }
        }
    }

    impl Drop for Child {
        fn drop(&mut self) {
            if self.0 > 0 {
                // SAFETY: signals and reaps our own child.
                unsafe {
                    libc::kill(self.0, libc::SIGKILL);
                    libc::waitpid(self.0, std::ptr::null_mut(), 0);
                }
            }
        }
    }

    /// Forks; the child installs `p` and exits with `body`'s value (250 if the
    /// install failed). The child makes no core dump.
    pub fn spawn(p: &Program, body: impl FnOnce(Option<OwnedFd>) -> i32) -> Child {
        // SAFETY: the child only makes syscalls and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let nocore = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: plain syscalls on our own process.
            unsafe {
                libc::setrlimit(libc::RLIMIT_CORE, &nocore);
                libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            }
            let code = match install(p) {
                Ok(fd) => body(fd),
                Err(_) => 250,
            };
            // SAFETY: leaves the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        Child(pid)
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// A raw syscall: Ok(return value) or Err(errno).
    fn sys(nr: libc::c_long, a: [u64; 6]) -> Result<i64, i32> {
        // SAFETY: the tests only pass syscalls and arguments that touch no
        // memory of ours (or are refused before they run).
        let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
        if r == -1 {
            Err(errno())
        } else {
            Ok(r as i64)
        }
    }

    #[test]
    fn kernel_errno_action_returns_the_errno() {
        if skip_without_seccomp() {
            return;
        }
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]}));
        let p = compile(&s).unwrap();
        let out = spawn(&p, |_| match sys(libc::SYS_getppid, [0; 6]) {
            Err(e) => e,
            Ok(_) => 0,
        });
        assert_eq!(out.wait(), Outcome::Exit(77));
        // Default ERRNO with defaultErrnoRet; only exit is allowed.
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 88, "syscalls": [
            {"names": ["exit", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}));
        let p = compile(&s).unwrap();
        let out = spawn(&p, |_| match sys(libc::SYS_getpid, [0; 6]) {
            Err(e) => e,
            Ok(_) => 0,
        });
        assert_eq!(out.wait(), Outcome::Exit(88));
    }

    /// Each operator, against the kernel's real `seccomp_data`: sched_yield
    /// ignores its arguments, so only the filter decides the result.
    #[test]
    fn kernel_argument_filters_block_only_matching_calls() {
        if skip_without_seccomp() {
            return;
        }
        let vals: [u64; 8] = [0, 1, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 0xffff_ffff_0000_0000, u64::MAX - 1, u64::MAX];
        for (k, op) in action::OPERATORS.iter().enumerate() {
            for &v in &[1u64, 0x1_0000_0000, 0xffff_ffff, u64::MAX - 1] {
                let index = k % 6;
                let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["sched_yield"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                     "args": [{"index": index, "value": v, "valueTwo": 1, "op": op}]}]}));
                let p = compile(&s).unwrap();
                let c = check(&s).unwrap();
                let probes: Vec<[u64; 6]> = vals
                    .iter()
                    .map(|&x| {
                        let mut a = [0u64; 6];
                        a[index] = x;
                        a
                    })
                    .collect();
                let mut fds = [0; 2];
                // SAFETY: fds is a valid out-array of two ints.
                assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
                // SAFETY: pipe just returned these fds; each is owned once.
                let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
                let child = spawn(&p, |_| {
                    for a in &probes {
                        let b: u8 = match sys(libc::SYS_sched_yield, *a) {
                            Ok(0) => 0,
                            Err(e) => e as u8,
                            Ok(_) => 255,
                        };
                        // SAFETY: writes one byte from a live local.
                        unsafe { libc::write(w.as_raw_fd(), &b as *const u8 as *const libc::c_void, 1) };
                    }
                    0
                });
                drop(w);
                let mut got = Vec::new();
                std::fs::File::from(r).read_to_end(&mut got).unwrap();
                assert_eq!(child.wait(), Outcome::Exit(0));
                for (a, b) in probes.iter().zip(&got) {
                    let d = Data { nr: libc::SYS_sched_yield as u32, arch: AUDIT_ARCH_X86_64, ip: 0, args: *a };
                    let want = if reference::eval(&c, Arch::X86_64, &d) == RET_ALLOW { 0 } else { 5 };
                    assert_eq!(*b, want, "{op} arg{index}={:#x} vs {v:#x}", a[index]);
                }
                assert_eq!(got.len(), probes.len());
            }
        }
    }

    #[test]
    fn kernel_kill_and_trap_deliver_sigsys() {
        if skip_without_seccomp() {
            return;
        }
        for act in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"] {
            let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": act}]}));
            let p = compile(&s).unwrap();
            let out = spawn(&p, |_| {
                let _ = sys(libc::SYS_getppid, [0; 6]);
                0
            });
            assert_eq!(out.wait(), Outcome::Signal(libc::SIGSYS), "{act}");
        }
        // The rule is what kills: other calls still work.
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}));
        let p = compile(&s).unwrap();
        let out = spawn(&p, |_| if sys(libc::SYS_getpid, [0; 6]).is_ok() { 3 } else { 4 });
        assert_eq!(out.wait(), Outcome::Exit(3));
    }

    #[test]
    fn kernel_log_allows_the_call_and_logs_it() {
        if skip_without_seccomp() {
            return;
        }
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"}]}));
        let p = compile(&s).unwrap();
        // Read /dev/kmsg from its current end: new records only.
        let kmsg = std::fs::OpenOptions::new().read(true).custom_flags_nonblock().open("/dev/kmsg").ok();
        if let Some(k) = &kmsg {
            // SAFETY: seeks our own fd.
            unsafe { libc::lseek(k.as_raw_fd(), 0, libc::SEEK_END) };
        }
        let me = std::process::id() as i64;
        let child = spawn(&p, |_| if sys(libc::SYS_getppid, [0; 6]) == Ok(me) { 0 } else { 1 });
        let pid = child.0;
        assert_eq!(child.wait(), Outcome::Exit(0), "LOG must allow the call");
        let Some(mut k) = kmsg else {
            eprintln!("SKIP: /dev/kmsg unreadable; LOG allowed the call, its record not checked");
            return;
        };
        // kauditd prints the record asynchronously: look for it for a while.
        let mut found = false;
        let mut buf = vec![0u8; 8192];
        for _ in 0..100 {
            // Each read returns one record; EAGAIN at the end.
            while let Ok(n) = k.read(&mut buf) {
                let rec = String::from_utf8_lossy(&buf[..n]);
                if rec.contains("type=1326")
                    && rec.contains(&format!(" pid={pid} "))
                    && rec.contains(&format!("syscall={}", libc::SYS_getppid))
                {
                    assert!(rec.contains("code=0x7ffc0000"), "{rec}");
                    found = true;
                }
            }
            if found {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if !found {
            eprintln!("SKIP: no seccomp audit record in /dev/kmsg (auditd consuming them, or rate limited); LOG allowed the call");
        }
    }

    trait NonBlock {
        fn custom_flags_nonblock(&mut self) -> &mut Self;
    }
    impl NonBlock for std::fs::OpenOptions {
        fn custom_flags_nonblock(&mut self) -> &mut Self {
            use std::os::unix::fs::OpenOptionsExt;
            self.custom_flags(libc::O_NONBLOCK)
        }
    }

    #[test]
    fn kernel_flags_are_accepted() {
        if skip_without_seccomp() {
            return;
        }
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9}]}));
        let p = compile(&s).unwrap();
        let out = spawn(&p, |_| sys(libc::SYS_getppid, [0; 6]).err().unwrap_or(0));
        assert_eq!(out.wait(), Outcome::Exit(9));
    }

    /// The checks the default profile must pass, as (name, outcome wanted).
    fn default_profile_checks() -> i32 {
        let bad = u64::MAX; // an argument no kernel accepts, in case a call got through
        type Check = (libc::c_long, [u64; 6], fn(Result<i64, i32>) -> bool);
        let checks: [Check; 16] = [
            (libc::SYS_getpid, [0; 6], |r| r.is_ok()),
            (libc::SYS_getcwd, [0, 0, 0, 0, 0, 0], |r| r == Err(libc::ERANGE) || r == Err(libc::EFAULT)),
            (libc::SYS_mount, [0, 0, 0, bad, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_umount2, [0, bad, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_reboot, [0, 0, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_kexec_load, [0, 0, 0, 0xffff_0000, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_keyctl, [bad, 0, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_add_key, [0, 0, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_bpf, [bad, 0, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_perf_event_open, [0, 0, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_clone3, [0, 0, 0, 0, 0, 0], |r| r == Err(libc::ENOSYS)),
            (libc::SYS_socket, [libc::AF_VSOCK as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
            (libc::SYS_socket, [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0], |r| r.is_ok()),
            (libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0], |r| r.is_ok()),
            (libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0], |r| r == Err(libc::EPERM)),
        ];
        for (i, (nr, a, ok)) in checks.iter().enumerate() {
            if !ok(sys(*nr, *a)) {
                return i as i32 + 1;
            }
        }
        // clone without namespaces works (fork), with CLONE_NEWNS it does not.
        // SAFETY: fork in a single-threaded child; the grandchild exits at once.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: leaves the grandchild.
            unsafe { libc::_exit(7) };
        }
        if pid < 0 {
            return 100;
        }
        let mut st = 0;
        // SAFETY: reaps the grandchild.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 7 {
            return 101;
        }
        let flags = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        if sys(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]) != Err(libc::EPERM) {
            // If the filter let it through we are now two processes: the new
            // one leaves quietly, the old one reports.
            return 102;
        }
        0
    }

    #[test]
    fn kernel_default_profile_allows_work_and_blocks_dockers_list() {
        if skip_without_seccomp() {
            return;
        }
        let p = compile(&default_profile()).unwrap();
        let out = spawn(&p, |_| default_profile_checks());
        assert_eq!(out.wait(), Outcome::Exit(0), "exit code = 1 + index of the failed check");
    }

    /// A real program runs under the default profile, installed right
    /// before exec as the runtime does.
    #[test]
    fn kernel_exec_under_default_profile() {
        if skip_without_seccomp() {
            return;
        }
        if !std::path::Path::new("/bin/sh").exists() {
            eprintln!("SKIP: no /bin/sh");
            return;
        }
        use std::os::unix::process::CommandExt;
        let p = std::sync::Arc::new(compile(&default_profile()).unwrap());
        let script = "echo hello; grep '^Seccomp:' /proc/self/status; \
                      if command -v unshare >/dev/null; then unshare -m true 2>/dev/null && echo unshared || echo no-unshare; fi";
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(script);
        let p2 = p.clone();
        // SAFETY: the closure only makes syscalls and does not allocate.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                install(&p2).map(|_| ()).map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))
            });
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("hello"), "{text}");
        assert!(text.contains("Seccomp:\t2"), "{text}");
        assert!(!text.contains("unshared"), "unshare -m must fail: {text}");
    }

    /// i386 syscalls (int 0x80) and x32 numbers from a 64-bit process: the
    /// filter sees AUDIT_ARCH_I386 / the x32 bit and must not let them past.
    #[test]
    fn kernel_compat_abis_cannot_bypass() {
        if skip_without_seccomp() {
            return;
        }
        const I386_GETPPID: u32 = 64;
        const X32_GETPID: u64 = 0x4000_0000 | 39;
        fn int80(nr: u32) -> i32 {
            let ret: i32;
            // SAFETY: int 0x80 with a syscall that takes no arguments and
            // touches no memory; rbx..rbp are not read by it.
            unsafe { std::arch::asm!("int 0x80", inlateout("eax") nr as i32 => ret, options(nostack)) };
            ret
        }
        fn x32(nr: u64) -> i64 {
            let ret: i64;
            // SAFETY: the syscall instruction with an argument-less number;
            // rcx and r11 are clobbered by it.
            unsafe { std::arch::asm!("syscall", inlateout("rax") nr as i64 => ret, lateout("rcx") _, lateout("r11") _, options(nostack)) };
            ret
        }
        let allow = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"]}));
        let p = compile(&allow).unwrap();
        let me = std::process::id() as i32;
        let probe = spawn(&p, |_| if int80(I386_GETPPID) == me { 0 } else { 1 });
        let have_ia32 = probe.wait() == Outcome::Exit(0);

        // Only x86_64 covered: both compat paths are killed.
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid", "getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 66}]}));
        let p = compile(&s).unwrap();
        let out = spawn(&p, |_| {
            x32(X32_GETPID);
            0
        });
        assert_eq!(out.wait(), Outcome::Signal(libc::SIGSYS), "x32 number without x32 listed");
        if have_ia32 {
            let out = spawn(&p, |_| {
                int80(I386_GETPPID);
                0
            });
            assert_eq!(out.wait(), Outcome::Signal(libc::SIGSYS), "i386 call without x86 listed");
        }
        // Listed: each ABI gets the rules under its own numbers.
        let mut s2 = s.clone();
        s2.architectures = Some(vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()]);
        let p = compile(&s2).unwrap();
        let out = spawn(&p, |_| -x32(X32_GETPID) as i32);
        assert_eq!(out.wait(), Outcome::Exit(66), "x32 rule applies");
        if have_ia32 {
            let out = spawn(&p, |_| -int80(I386_GETPPID));
            assert_eq!(out.wait(), Outcome::Exit(66), "i386 rule applies");
        } else {
            eprintln!("SKIP: no ia32 emulation; the i386 half of this test did not run");
        }
    }

    #[test]
    fn kernel_notify_hands_the_call_to_the_listener() {
        if skip_without_seccomp() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("husk-seccomp-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        struct Rm(std::path::PathBuf);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _rm = Rm(dir.clone());
        let sock = dir.join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let path = sock.to_str().unwrap().to_string();
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path, "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}));
        let p = compile(&s).unwrap();
        let payload = process_state("1.2.0", 0, "meta", &serde_json::json!({"id": "c1"}));
        let child = spawn(&p, |fd| {
            let Some(fd) = fd else { return 10 };
            use std::os::fd::AsFd;
            let Ok(sock) = connect_listener(&path) else {
                return 11;
            };
            if send_listener(&path, sock.as_fd(), fd.as_fd(), &payload).is_err() {
                return 11;
            }
            drop(fd);
            match sys(libc::SYS_getppid, [0; 6]) {
                Ok(4242) => 0,
                _ => 12,
            }
        });
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 4096];
        let mut cbuf = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg =
            nix::sys::socket::recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cbuf), nix::sys::socket::MsgFlags::empty()).unwrap();
        let n = msg.bytes;
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: the kernel just gave us this fd.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let fd = fd.expect("listener fd received");
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(v["state"]["id"], "c1");
        // SAFETY: zeroed plain-data structs passed to the notify ioctls.
        unsafe {
            let mut req: libc::seccomp_notif = std::mem::zeroed();
            assert_eq!(libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut req), 0, "NOTIF_RECV");
            assert_eq!(req.data.nr as libc::c_long, libc::SYS_getppid);
            assert_eq!(req.pid as libc::pid_t, child.0);
            let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
            resp.id = req.id;
            resp.val = 4242;
            assert_eq!(libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut resp), 0, "NOTIF_SEND");
        }
        assert_eq!(child.wait(), Outcome::Exit(0));
    }
}

#[test]
fn conditions_on_one_argument_are_ored_as_with_libseccomp() {
    // runc's seccomp test profile: two values of argument 0 in one rule.
    for native in both() {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["process_vm_readv"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 9001, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1337, "op": "SCMP_CMP_EQ"}]}]}));
        let p = compile_for(&s, native).unwrap();
        let r = |n: &str, a: u64, b: u64| run(&p, &data(native, n, [a, b, 0, 0, 0, 0]));
        assert_eq!(r("process_vm_readv", 100, 0), RET_ALLOW);
        assert_eq!(r("process_vm_readv", 9001, 0), RET_ALLOW);
        assert_eq!(r("process_vm_readv", 0, 0), RET_ERRNO | 1);
        // Different arguments still AND.
        assert_eq!(r("kcmp", 0, 1337), RET_ALLOW);
        assert_eq!(r("kcmp", 0, 0), RET_ERRNO | 1);
        assert_eq!(r("kcmp", 500, 1337), RET_ERRNO | 1);
        for d in [data(native, "process_vm_readv", [9001, 0, 0, 0, 0, 0]), data(native, "kcmp", [500, 1337, 0, 0, 0, 0])] {
            agree(&s, native, &p, &d);
        }
    }
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    for native in both() {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "write", "getppid"], "action": "SCMP_ACT_ALLOW"}]}));
        let p = compile_for(&s, native).unwrap();
        let last = ["read", "write", "getppid"].iter().map(|n| syscalls::number(native, n).unwrap()).max().unwrap();
        let at = |nr: u32| run(&p, &Data { nr, arch: native.audit(), ip: 0, args: [0; 6] });
        assert_eq!(at(last + 1), RET_ERRNO | 38, "{native:?}: above the profile's highest syscall");
        assert_eq!(at(1000), RET_ERRNO | 38);
        assert_eq!(at(last), RET_ALLOW);
        // Below it, an unlisted syscall gets the default.
        let unlisted = (0..last).find(|n| at(*n) != RET_ALLOW).unwrap();
        assert_eq!(at(unlisted), RET_ERRNO | 1);
        agree(&s, native, &p, &Data { nr: 1000, arch: native.audit(), ip: 0, args: [0; 6] });
        // No stub when the default allows, or already is ENOSYS.
        for default in [
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}),
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}),
        ] {
            let mut v = default;
            v["syscalls"] = serde_json::json!([{"names": ["getppid"], "action": "SCMP_ACT_KILL"}]);
            let p = compile_for(&profile(v.clone()), native).unwrap();
            let want = if v["defaultAction"] == "SCMP_ACT_ALLOW" { RET_ALLOW } else { RET_ERRNO | 38 };
            assert_eq!(run(&p, &Data { nr: 1000, arch: native.audit(), ip: 0, args: [0; 6] }), want);
        }
    }
}
