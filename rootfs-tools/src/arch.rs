//! Target architectures and their names in ELF, OCI and Debian.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// Accepts the kernel, OCI and Debian spellings.
    pub fn parse(s: &str) -> Result<Arch> {
        match s {
            "x86_64" | "amd64" | "x86-64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            _ => Err(Error::Usage(format!("unknown arch {s:?} (x86_64 or aarch64)"))),
        }
    }

    /// `linux/arm64`, `linux/amd64`, `linux/arm64/v8`.
    pub fn parse_platform(s: &str) -> Result<Arch> {
        let mut it = s.split('/');
        let os = it.next().unwrap_or("");
        let arch = it.next().unwrap_or("");
        if os != "linux" {
            return Err(Error::Usage(format!("unsupported platform {s:?} (linux/amd64 or linux/arm64)")));
        }
        Arch::parse(arch)
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// GOARCH-style name used by OCI image indexes and Debian.
    pub fn oci(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// ELF e_machine.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }
}

/// A readable name for an ELF machine number.
pub fn machine_name(m: u16) -> String {
    match m {
        3 => "i386".into(),
        8 => "mips".into(),
        20 => "ppc".into(),
        21 => "ppc64".into(),
        22 => "s390".into(),
        40 => "arm".into(),
        62 => "x86_64".into(),
        183 => "aarch64".into(),
        243 => "riscv".into(),
        _ => format!("ELF machine {m}"),
    }
}
