//! Syscall name → number lookup over the generated tables.

use super::arch::{Arch, X32_SYSCALL_BIT};
use super::tables;

fn name_at(i: usize) -> &'static str {
    let start = tables::OFFS[i] as usize;
    // Each name ends with a NUL, where the next one starts.
    let end = match tables::OFFS.get(i + 1) {
        Some(&next) => next as usize - 1,
        None => tables::NAMES.len() - 1,
    };
    &tables::NAMES[start..end]
}

/// Index of `name` in the shared name list, if any arch has that syscall.
pub fn index(name: &str) -> Option<usize> {
    let (mut lo, mut hi) = (0usize, tables::COUNT);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match name_at(mid).cmp(name) {
            std::cmp::Ordering::Equal => return Some(mid),
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    None
}

/// Whether any table knows `name`.
#[cfg(test)]
pub fn known(name: &str) -> bool {
    index(name).is_some()
}

/// The number the kernel reports for `name` on `arch` (x32 numbers carry
/// `__X32_SYSCALL_BIT`), or None when that arch has no such syscall.
pub fn number(arch: Arch, name: &str) -> Option<u32> {
    number_at(arch, index(name)?)
}

/// Like `number`, for a name already looked up with `index`.
pub fn number_at(arch: Arch, i: usize) -> Option<u32> {
    let table: &[u16; tables::COUNT] = match arch {
        Arch::X86_64 => &tables::X86_64,
        Arch::X86 => &tables::I386,
        Arch::X32 => &tables::X32,
        Arch::Aarch64 => &tables::AARCH64,
    };
    let n = table[i];
    if n == tables::NONE {
        return None;
    }
    Some(match arch {
        Arch::X32 => n as u32 | X32_SYSCALL_BIT,
        _ => n as u32,
    })
}

/// Every known name (for tests and the fuzzer).
pub fn all_names() -> impl Iterator<Item = &'static str> {
    (0..tables::COUNT).map(name_at)
}
