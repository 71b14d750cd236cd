//! Docker's default seccomp profile and capability set, for `husk spec`.
//!
//! The profile is Docker's as it reaches the runtime for a container with
//! the 14 default capabilities: rules Docker gates on capabilities the
//! default set lacks (CAP_SYS_ADMIN: mount, umount2, unshare, setns, bpf,
//! perf_event_open, …; CAP_SYS_BOOT: reboot; CAP_SYS_MODULE; CAP_SYS_TIME;
//! CAP_SYS_RAWIO; CAP_SYS_NICE; CAP_SYS_PACCT; CAP_SYSLOG; …) are left out,
//! so those syscalls fail with EPERM. CAP_SYS_CHROOT is in the set, so
//! `chroot` is allowed. Names an arch lacks are skipped on that arch.

use super::arch::Arch;
use husk_oci::seccomp::{ArgRule, Seccomp, SyscallRule};

/// Allowed outright (Docker's main list, less what the default caps gate).
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close",
    "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
    "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
    "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
    "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
    "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat",
    "_newselect", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal",
    "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
    "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease",
    "process_vm_readv", "process_vm_writev", "pselect6", "pselect6_time64", "ptrace",
    "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
    "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64",
    "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev",
    // x86 only (absent names are skipped on aarch64)
    "arch_prctl", "modify_ldt",
    // gated by CAP_SYS_CHROOT, which the default set has
    "chroot",
];

/// Namespace flags a default container may not pass to clone:
/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
pub const CLONE_NS_FLAGS: u64 = 0x7E02_0000;
const AF_VSOCK: u64 = 40;
const ENOSYS: u32 = 38;

/// Docker's default profile for the native arch.
pub fn default_profile() -> Seccomp {
    default_profile_for(Arch::native())
}

/// Docker's default profile for a host of arch `native`.
pub fn default_profile_for(native: Arch) -> Seccomp {
    let allow = "SCMP_ACT_ALLOW";
    let mut rules = vec![SyscallRule::new(ALLOWED, allow)];
    // socket: everything but AF_VSOCK (the host's vsock is not namespaced).
    rules.push(SyscallRule { args: Some(vec![ArgRule::new(0, "SCMP_CMP_NE", AF_VSOCK, None)]), ..SyscallRule::new(&["socket"], allow) });
    // personality: only the harmless personas.
    for p in [0x0u64, 0x0008, 0x20000, 0x20008, 0xffff_ffff] {
        rules.push(SyscallRule { args: Some(vec![ArgRule::new(0, "SCMP_CMP_EQ", p, None)]), ..SyscallRule::new(&["personality"], allow) });
    }
    // clone: no new namespaces without CAP_SYS_ADMIN.
    rules.push(SyscallRule {
        args: Some(vec![ArgRule::new(0, "SCMP_CMP_MASKED_EQ", CLONE_NS_FLAGS, Some(0))]),
        ..SyscallRule::new(&["clone"], allow)
    });
    // clone3 hides its flags in memory the filter cannot read: ENOSYS makes
    // libc fall back to clone, whose flags are checked above.
    rules.push(SyscallRule { errno_ret: Some(ENOSYS), ..SyscallRule::new(&["clone3"], "SCMP_ACT_ERRNO") });
    let architectures = match native {
        Arch::X86_64 | Arch::X86 | Arch::X32 => vec![Arch::X86_64, Arch::X86, Arch::X32],
        Arch::Aarch64 => vec![Arch::Aarch64],
    };
    Seccomp {
        default_action: "SCMP_ACT_ERRNO".to_string(),
        default_errno_ret: Some(1),
        architectures: Some(architectures.iter().map(|a| a.oci_name().to_string()).collect()),
        flags: None,
        listener_path: None,
        listener_metadata: None,
        syscalls: Some(rules),
    }
}
