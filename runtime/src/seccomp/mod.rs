//! OCI seccomp profile → BPF compiler (see issue 4).
