//! Architectures the compiler knows, their audit identifiers and the OCI names.

/// An architecture as the kernel reports it in `seccomp_data.arch` (x32 shares
/// x86_64's audit value and is told apart by `__X32_SYSCALL_BIT` in the number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
}

/// `AUDIT_ARCH_*` values from <linux/audit.h>: EM_* | 64BIT | LE.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
pub const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// OCI arch names that exist but that this compiler has no table for. A
/// profile may list them (Docker's does); they are skipped.
const OTHER_OCI_ARCHES: &[&str] = &[
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

pub const ALL: [Arch; 4] = [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64];

/// What an OCI arch name means to the compiler.
pub enum Parsed {
    Known(Arch),
    /// A real libseccomp arch without a table here.
    Unsupported,
    Unknown,
}

impl Arch {
    pub fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    pub fn parse(name: &str) -> Parsed {
        for a in ALL {
            if a.oci_name() == name {
                return Parsed::Known(a);
            }
        }
        if OTHER_OCI_ARCHES.contains(&name) {
            Parsed::Unsupported
        } else {
            Parsed::Unknown
        }
    }

    /// The value the kernel puts in `seccomp_data.arch`.
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Whether syscall arguments are 64 bits wide. On i386 and x32 only the
    /// low 32 bits are compared (as libseccomp does for 32-bit ABIs).
    pub fn wide_args(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    /// The arch this binary runs on.
    pub fn native() -> Arch {
        #[cfg(target_arch = "x86_64")]
        {
            Arch::X86_64
        }
        #[cfg(target_arch = "aarch64")]
        {
            Arch::Aarch64
        }
        #[cfg(target_arch = "x86")]
        {
            Arch::X86
        }
    }

    /// Whether a kernel running `self` natively can present `other` to a filter.
    pub fn can_present(self, other: Arch) -> bool {
        match self {
            Arch::X86_64 | Arch::X32 => matches!(other, Arch::X86_64 | Arch::X86 | Arch::X32),
            Arch::X86 => other == Arch::X86,
            Arch::Aarch64 => other == Arch::Aarch64,
        }
    }
}
