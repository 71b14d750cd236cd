// Included by the build scripts of husk (runtime/build.rs) and husk-init
// (init/build.rs): sets HUSK_COMMIT, the short git commit their
// `--version` prints ("unknown" outside a git checkout), and rebuilds when
// HEAD moves.
fn set_commit_env(len: usize) {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", &format!("--short={len}"), "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HUSK_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../.git/logs/HEAD");
}
