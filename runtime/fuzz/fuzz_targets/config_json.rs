//! config.json text → husk-oci's parser and validation → linux.seccomp →
//! BPF, for both arches. Bad input must come back as an Error, never a
//! panic; good input must compile to a program that agrees with the
//! reference semantics.
#![no_main]

mod common;
use husk_seccomp as seccomp;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The whole document through the config parser: errors are one line.
    if let Err(e) = husk_oci::spec::parse(data) {
        assert!(!e.to_string().contains('\n'));
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    // A whole config.json, or just the seccomp object.
    let v = match v.pointer("/linux/seccomp") {
        Some(s) => s.clone(),
        None => v,
    };
    let Ok(s) = seccomp::from_value(v) else {
        return;
    };
    if let Err(e) = seccomp::compile(&s) {
        // Errors are one line.
        assert!(!e.to_string().contains('\n'));
    }
    common::check(&s, data);
});
