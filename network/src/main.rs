//! husk-cni: CNI networking for OCI containers, as createRuntime and
//! poststop hooks. See docs/network.md.

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(husk_cni::run(argv));
}
