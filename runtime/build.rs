//! Puts the git commit into `husk --version` (engines show it).
include!("../scripts/build_commit.rs");

fn main() {
    set_commit_env(12);
}
