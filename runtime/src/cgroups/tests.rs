//! Real-cgroup tests (root).
