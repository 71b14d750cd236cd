//! cgroup v1/v2 management (see issue 3).
