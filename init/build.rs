//! The commit for `--version`, and link flags that keep the static
//! husk-init small: strip symbols (the workspace profile's `strip` does not
//! reach packages with an override), no page-aligned code/data split, no
//! build-id note, and no .eh_frame (panics abort; nothing unwinds).

include!("../scripts/build_commit.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // `--version` as tini's: "husk-init version X - git.COMMIT" (dockerd
    // parses its init's version line in that shape).
    set_commit_env(7);
    println!("cargo:rerun-if-changed=no-eh-frame.ld");
    // HUSK_INIT_KEEP_SYMBOLS=1 keeps symbols (for size analysis with nm).
    println!("cargo:rerun-if-env-changed=HUSK_INIT_KEEP_SYMBOLS");
    let keep_symbols = std::env::var_os("HUSK_INIT_KEEP_SYMBOLS").is_some();
    let target = std::env::var("TARGET").unwrap_or_default();
    let release = std::env::var("PROFILE").map(|p| p == "release").unwrap_or(false);
    if !target.contains("musl") || !release {
        return;
    }
    // rust-lld is invoked directly (ld flavour); the default linker is a
    // C compiler driver that wants -Wl, in front.
    let direct = std::env::var("RUSTC_LINKER").map(|l| l.ends_with("rust-lld") || l.ends_with("ld.lld")).unwrap_or(false);
    let script = format!("{}/no-eh-frame.ld", std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut flags: Vec<Vec<&str>> = vec![
        vec![if keep_symbols { "--discard-locals" } else { "--strip-all" }],
        vec!["-z", "noseparate-code"],
        vec!["--build-id=none"],
        vec!["-z", "norelro"],
    ];
    // GNU ld refuses to drop .eh_frame (crtbegin refers to it), so the C
    // driver is pointed at rustup's bundled lld (gcc-ld/ld.lld) when present.
    let gcc_ld = lld_dir();
    if let Some(dir) = &gcc_ld {
        if !direct {
            println!("cargo:rustc-link-arg-bins=-B{dir}");
            println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
        }
    }
    if direct || gcc_ld.is_some() {
        flags.push(vec!["-T", &script]);
        // Compact relative relocations, should the build be static-pie
        // (musl's startup code applies DT_RELR); none in the non-PIE build.
        flags.push(vec!["-z", "pack-relative-relocs"]);
        // Identical functions (monomorphized copies, one-line syscall
        // wrappers) folded into one: 64 bytes on x86_64, 96 on aarch64.
        flags.push(vec!["--icf=all"]);
    }
    for f in &flags {
        if direct {
            for a in f {
                println!("cargo:rustc-link-arg-bins={a}");
            }
        } else {
            println!("cargo:rustc-link-arg-bins=-Wl,{}", f.join(","));
        }
    }
}

/// rustup's `lib/rustlib/<host>/bin/gcc-ld` (holds an `ld.lld` that runs
/// rust-lld), if this toolchain ships it.
fn lld_dir() -> Option<String> {
    let rustc = std::env::var("RUSTC").ok()?;
    let out = std::process::Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let host = std::env::var("HOST").ok()?;
    let dir = format!("{}/lib/rustlib/{}/bin/gcc-ld", sysroot.trim(), host);
    std::path::Path::new(&dir).join("ld.lld").exists().then_some(dir)
}
