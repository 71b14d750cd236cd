//! OCI action and operator names → kernel return values and comparisons.

use super::error::Error;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// What a filter returns when `seccomp_data.arch` is not one the profile
/// covers: the whole process is killed (libseccomp's default is to kill the
/// thread; killing the process leaves no half-dead thread group behind).
pub const RET_BAD_ARCH: u32 = RET_KILL_PROCESS;

const EPERM: u32 = 1;
const MAX_ERRNO: u32 = 4095;

pub const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

pub const OPERATORS: [&str; 7] =
    ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];

/// Resolves an action name with its optional errnoRet to the filter's
/// return value. ERRNO and TRACE carry errnoRet (EPERM when absent, as runc
/// does); any other action with an errnoRet is an error.
pub fn parse(name: &str, errno: Option<u32>, field: &str) -> Result<u32, Error> {
    let base = match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_ERRNO" => RET_ERRNO,
        "SCMP_ACT_TRACE" => RET_TRACE,
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_LOG" => RET_LOG,
        "SCMP_ACT_NOTIFY" => RET_USER_NOTIF,
        _ => return Err(Error::UnknownAction { field: field.to_string(), action: name.to_string() }),
    };
    if base == RET_ERRNO || base == RET_TRACE {
        let e = errno.unwrap_or(EPERM);
        if e > MAX_ERRNO {
            return Err(Error::Errno { field: errno_field(field), value: e });
        }
        Ok(base | e)
    } else if errno.is_some() {
        Err(Error::Invalid { field: errno_field(field), why: "errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE" })
    } else {
        Ok(base)
    }
}

fn errno_field(action_field: &str) -> String {
    if let Some(p) = action_field.strip_suffix(".defaultAction") {
        format!("{p}.defaultErrnoRet")
    } else if let Some(p) = action_field.strip_suffix(".action") {
        format!("{p}.errnoRet")
    } else {
        action_field.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

impl Op {
    pub fn parse(name: &str, field: &str) -> Result<Op, Error> {
        Ok(match name {
            "SCMP_CMP_NE" => Op::Ne,
            "SCMP_CMP_LT" => Op::Lt,
            "SCMP_CMP_LE" => Op::Le,
            "SCMP_CMP_EQ" => Op::Eq,
            "SCMP_CMP_GE" => Op::Ge,
            "SCMP_CMP_GT" => Op::Gt,
            "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
            _ => return Err(Error::UnknownOperator { field: field.to_string(), op: name.to_string() }),
        })
    }

    /// The comparison itself, on values already narrowed to the arch's width.
    #[cfg(any(test, feature = "testing"))]
    pub fn eval(self, arg: u64, value: u64, value_two: u64) -> bool {
        match self {
            Op::Ne => arg != value,
            Op::Lt => arg < value,
            Op::Le => arg <= value,
            Op::Eq => arg == value,
            Op::Ge => arg >= value,
            Op::Gt => arg > value,
            Op::MaskedEq => arg & value == value_two,
        }
    }
}
