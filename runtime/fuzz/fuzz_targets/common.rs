// Shared by both fuzz targets: check a compiled program with the BPF
// interpreter against the reference semantics for a few calls.

use husk_seccomp::interp::{self, Data};
use husk_seccomp::{self as seccomp, reference, Arch, Seccomp};

/// Compiles `s` for both arches; every program that compiles must run to a
/// `ret` and agree with the reference for calls derived from `seed`.
pub fn check(s: &Seccomp, seed: &[u8]) {
    for native in [Arch::X86_64, Arch::Aarch64] {
        let Ok(p) = seccomp::compile_for(s, native) else {
            continue;
        };
        assert!(p.len() <= 4096);
        let names: Vec<&str> = s
            .syscalls
            .iter()
            .flatten()
            .flat_map(|r| r.names.iter().map(|n| n.as_str()))
            .collect();
        let mut rng = Rng::new(seed);
        for _ in 0..32 {
            let arch = [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64][rng.below(4)];
            let nr = if !names.is_empty() && rng.below(4) > 0 {
                seccomp::syscall_number(arch, names[rng.below(names.len())])
                    .unwrap_or(rng.next() as u32)
            } else {
                rng.next() as u32
            };
            let mut args = [0u64; 6];
            for a in args.iter_mut() {
                *a = rng.value(s);
            }
            let d = Data {
                nr,
                arch: arch.audit(),
                ip: 0,
                args,
            };
            let got = interp::run(p.instructions(), &d).expect("compiled program runs to a ret");
            let want = reference::expect(s, native, &d).expect("compiled, so it checks");
            assert_eq!(got, want, "{native:?} {d:?}");
        }
    }
}

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: &[u8]) -> Rng {
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        for &b in seed {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Often one of the profile's own values, so conditions get hit.
    fn value(&mut self, s: &Seccomp) -> u64 {
        let vals: Vec<u64> = s
            .syscalls
            .iter()
            .flatten()
            .flat_map(|r| r.args.iter().flatten())
            .flat_map(|a| [a.value, a.value_two.unwrap_or(0)])
            .collect();
        match self.below(3) {
            0 if !vals.is_empty() => vals[self.below(vals.len())],
            1 => self.next() >> self.below(64),
            _ => self.next(),
        }
    }
}
