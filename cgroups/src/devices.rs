//! Device access rules: normalising linux.resources.devices, writing them to
//! the v1 devices controller, and compiling them to an eBPF
//! BPF_PROG_TYPE_CGROUP_DEVICE program for v2.
//!
//! Semantics (the same on v1 and v2): when `devices` is present the default
//! is deny; a rule matching every device ("a", no major/minor, "rwm") resets
//! the default to its own verdict and drops the rules before it; otherwise the
//! last matching rule wins.

use super::error::Error;
use husk_oci::resources::DeviceRule;

pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = 7;
/// BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR.
pub const DEV_BLOCK: u32 = 1;
pub const DEV_CHAR: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    All,
    Char,
    Block,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    fn matches_all(&self) -> bool {
        self.kind == Kind::All && self.major.is_none() && self.minor.is_none() && self.access == ACC_ALL
    }
    #[cfg(test)]
    /// Does this rule cover a request (kind is DEV_CHAR/DEV_BLOCK)?
    pub fn matches(&self, kind: u32, major: u32, minor: u32, access: u8) -> bool {
        let k = match self.kind {
            Kind::All => true,
            Kind::Char => kind == DEV_CHAR,
            Kind::Block => kind == DEV_BLOCK,
        };
        k && self.major.is_none_or(|m| m == major) && self.minor.is_none_or(|m| m == minor) && access & !self.access == 0
    }
    /// The v1 devices.allow/deny line: "c 1:3 rwm".
    pub fn v1_line(&self) -> String {
        let k = match self.kind {
            Kind::All => 'a',
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        let num = |n: Option<u32>| n.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{k} {}:{} {acc}", num(self.major), num(self.minor))
    }
}

/// The effective rule set: (default allow?, rules in order).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSet {
    pub default_allow: bool,
    pub rules: Vec<Rule>,
}

impl RuleSet {
    #[cfg(test)]
    /// The verdict for one request: last matching rule, else the default.
    pub fn decide(&self, kind: u32, major: u32, minor: u32, access: u8) -> bool {
        self.rules.iter().rev().find(|r| r.matches(kind, major, minor, access)).map(|r| r.allow).unwrap_or(self.default_allow)
    }
}

fn num(v: Option<i64>, field: &str) -> Result<Option<u32>, Error> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None), // -1: wildcard
        Some(n) if n <= i32::MAX as i64 => Ok(Some(n as u32)),
        Some(n) => Err(Error::invalid(field, format!("{n} is not a device number"))),
    }
}

pub fn normalize(rules: &[DeviceRule]) -> Result<RuleSet, Error> {
    let mut set = RuleSet { default_allow: false, rules: Vec::new() };
    for (i, r) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let kind = match r.kind.as_deref() {
            None | Some("a") => Kind::All,
            Some("c") | Some("u") => Kind::Char,
            Some("b") => Kind::Block,
            Some(o) => return Err(Error::invalid(format!("{field}.type"), format!("{o:?} is not one of a, c, u, b"))),
        };
        let access = match r.access.as_deref() {
            None => ACC_ALL,
            Some(s) => {
                let mut a = 0;
                for c in s.chars() {
                    a |= match c {
                        'r' => ACC_READ,
                        'w' => ACC_WRITE,
                        'm' => ACC_MKNOD,
                        // As runc: other letters mean nothing and are
                        // ignored (an allow rule only gets narrower).
                        _ => 0,
                    };
                }
                if a == 0 {
                    // An empty access string grants nothing and denies nothing.
                    continue;
                }
                a
            }
        };
        let rule = Rule {
            allow: r.allow,
            kind,
            major: num(r.major, &format!("{field}.major"))?,
            minor: num(r.minor, &format!("{field}.minor"))?,
            access,
        };
        if rule.matches_all() {
            set.default_allow = rule.allow;
            set.rules.clear();
        } else {
            set.rules.push(rule);
        }
    }
    Ok(set)
}

/// The devices every container may use (the OCI default devices, plus
/// mknod of any node), as runc allows them: null, zero, full, random,
/// urandom, tty, console, ptmx and pts.
pub fn default_allowed() -> Vec<Rule> {
    let r = |kind, major: Option<u32>, minor: Option<u32>, access| Rule { allow: true, kind, major, minor, access };
    vec![
        r(Kind::Char, None, None, ACC_MKNOD),
        r(Kind::Block, None, None, ACC_MKNOD),
        r(Kind::Char, Some(1), Some(3), ACC_ALL),
        r(Kind::Char, Some(1), Some(5), ACC_ALL),
        r(Kind::Char, Some(1), Some(7), ACC_ALL),
        r(Kind::Char, Some(1), Some(8), ACC_ALL),
        r(Kind::Char, Some(1), Some(9), ACC_ALL),
        r(Kind::Char, Some(5), Some(0), ACC_ALL),
        r(Kind::Char, Some(5), Some(1), ACC_ALL),
        r(Kind::Char, Some(5), Some(2), ACC_ALL),
        r(Kind::Char, Some(136), None, ACC_ALL),
    ]
}

/// The rules husk enforces for a config: when the default is deny, the
/// default devices are allowed first, so that the config's own later rules
/// can still deny them (last match wins).
pub fn effective(rules: &[DeviceRule]) -> Result<RuleSet, Error> {
    let mut s = normalize(rules)?;
    if !s.default_allow {
        let mut v = default_allowed();
        v.append(&mut s.rules);
        s.rules = v;
    }
    Ok(s)
}

/// Lines to write on v1, in order: (file, line). First the default
/// ("a" to devices.deny or devices.allow), then each rule.
pub fn v1_writes(set: &RuleSet) -> Vec<(&'static str, String)> {
    let mut out = vec![(if set.default_allow { "devices.allow" } else { "devices.deny" }, "a".to_string())];
    for r in &set.rules {
        out.push((if r.allow { "devices.allow" } else { "devices.deny" }, r.v1_line()));
    }
    out
}

/// One eBPF instruction (struct bpf_insn).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

pub const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub const ALU32_AND_K: u8 = 0x54;
pub const ALU32_RSH_K: u8 = 0x74;
pub const MOV64_K: u8 = 0xb7;
pub const MOV64_X: u8 = 0xbf;
pub const JNE_K: u8 = 0x55;
pub const EXIT: u8 = 0x95;

const fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | (dst & 0xf), off, imm }
}

/// Compiles a rule set into a BPF_PROG_TYPE_CGROUP_DEVICE program. The
/// context is struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 |
/// type); u32 major; u32 minor; }; the program returns 1 to allow, 0 to deny.
pub fn compile(set: &RuleSet) -> Vec<Insn> {
    let mut p = vec![
        ins(LDX_W, 2, 1, 0, 0),            // r2 = ctx->access_type
        ins(ALU32_AND_K, 2, 0, 0, 0xffff), // r2 = type
        ins(LDX_W, 3, 1, 0, 0),            // r3 = ctx->access_type
        ins(ALU32_RSH_K, 3, 0, 0, 16),     // r3 = access
        ins(LDX_W, 4, 1, 4, 0),            // r4 = major
        ins(LDX_W, 5, 1, 8, 0),            // r5 = minor
    ];
    // Last matching rule wins: test the rules from the last to the first.
    for r in set.rules.iter().rev() {
        // Each test is "if (field != want) goto next_block"; the jump offset is
        // patched once the block length is known.
        let mut block: Vec<Insn> = Vec::new();
        match r.kind {
            Kind::All => {}
            Kind::Char => block.push(ins(JNE_K, 2, 0, 0, DEV_CHAR as i32)),
            Kind::Block => block.push(ins(JNE_K, 2, 0, 0, DEV_BLOCK as i32)),
        }
        if r.access != ACC_ALL {
            block.push(ins(MOV64_X, 6, 3, 0, 0)); // r6 = access
            block.push(ins(ALU32_AND_K, 6, 0, 0, (!r.access & ACC_ALL) as i32)); // bits the rule lacks
            block.push(ins(JNE_K, 6, 0, 0, 0));
        }
        if let Some(m) = r.major {
            block.push(ins(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor {
            block.push(ins(JNE_K, 5, 0, 0, m as i32));
        }
        block.push(ins(MOV64_K, 0, 0, 0, r.allow as i32));
        block.push(ins(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.code == JNE_K {
                insn.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(ins(MOV64_K, 0, 0, 0, set.default_allow as i32));
    p.push(ins(EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
/// A tiny interpreter for exactly the instructions `compile` emits, so the
/// generator can be checked against `RuleSet::decide` without a kernel.
pub fn interpret(prog: &[Insn], kind: u32, major: u32, minor: u32, access: u8) -> Option<u32> {
    let ctx = [((access as u32) << 16) | kind, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let i = prog.get(pc)?;
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_W => {
                if src != 1 || i.off % 4 != 0 || !(0..12).contains(&i.off) {
                    return None;
                }
                r[dst] = ctx[(i.off / 4) as usize] as u64;
            }
            ALU32_AND_K => r[dst] = ((r[dst] as u32) & (i.imm as u32)) as u64,
            ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
            MOV64_K => r[dst] = i.imm as i64 as u64,
            MOV64_X => r[dst] = r[src],
            JNE_K => {
                if r[dst] != i.imm as i64 as u64 {
                    pc = (pc as i64 + i.off as i64) as usize;
                }
            }
            EXIT => return Some(r[0] as u32),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, kind: Option<&str>, major: Option<i64>, minor: Option<i64>, access: Option<&str>) -> DeviceRule {
        DeviceRule { allow, kind: kind.map(Into::into), major, minor, access: access.map(Into::into) }
    }

    /// A runc-like default list: deny all, then allow the usual devices.
    fn typical() -> Vec<DeviceRule> {
        vec![
            rule(false, None, None, None, Some("rwm")),
            rule(true, Some("c"), Some(1), Some(3), Some("rwm")),   // null
            rule(true, Some("c"), Some(1), Some(5), Some("rwm")),   // zero
            rule(true, Some("c"), Some(136), Some(-1), Some("rw")), // pts
            rule(true, Some("b"), Some(8), None, Some("r")),
            rule(false, Some("c"), Some(136), Some(4), Some("w")),
            rule(true, Some("a"), None, Some(99), Some("m")),
        ]
    }

    #[test]
    fn normalize_resets_on_wildcard_and_parses() {
        let s = normalize(&typical()).unwrap();
        assert!(!s.default_allow);
        assert_eq!(s.rules.len(), 6);
        assert_eq!(s.rules[2].v1_line(), "c 136:* rw");
        assert_eq!(s.rules[3].v1_line(), "b 8:* r");
        let s = normalize(&[rule(false, Some("c"), Some(1), Some(3), None), rule(true, Some("a"), Some(-1), None, Some("rwm"))]).unwrap();
        assert!(s.default_allow);
        assert!(s.rules.is_empty());
        assert!(normalize(&[rule(true, Some("x"), None, None, None)]).is_err());
        // As runc: letters other than r, w, m mean nothing (runc's own
        // update test uses "rwa").
        let s = normalize(&[rule(true, Some("c"), None, None, Some("rq"))]).unwrap();
        assert_eq!(s.rules[0].v1_line(), "c *:* r");
    }

    #[test]
    fn v1_lines_start_with_default() {
        let w = v1_writes(&normalize(&typical()).unwrap());
        assert_eq!(w[0], ("devices.deny", "a".to_string()));
        assert_eq!(w[1], ("devices.allow", "c 1:3 rwm".to_string()));
        assert_eq!(w[5], ("devices.deny", "c 136:4 w".to_string()));
        assert_eq!(w[6], ("devices.allow", "a *:99 m".to_string()));
    }

    #[test]
    fn decide_last_match_wins() {
        let s = normalize(&typical()).unwrap();
        assert!(s.decide(DEV_CHAR, 1, 3, ACC_READ | ACC_WRITE));
        assert!(!s.decide(DEV_CHAR, 1, 4, ACC_READ));
        assert!(s.decide(DEV_CHAR, 136, 4, ACC_READ));
        assert!(!s.decide(DEV_CHAR, 136, 4, ACC_WRITE));
        assert!(!s.decide(DEV_CHAR, 136, 7, ACC_MKNOD));
        assert!(s.decide(DEV_BLOCK, 8, 1, ACC_READ));
        assert!(!s.decide(DEV_BLOCK, 8, 1, ACC_WRITE));
        assert!(s.decide(DEV_BLOCK, 5, 99, ACC_MKNOD));
    }

    #[test]
    fn effective_allows_default_devices_unless_denied_later() {
        let s = effective(&[rule(false, None, None, None, None), rule(false, Some("c"), Some(1), Some(3), Some("rw"))]).unwrap();
        assert!(s.decide(DEV_CHAR, 1, 5, ACC_READ | ACC_WRITE));
        assert!(s.decide(DEV_CHAR, 136, 2, ACC_READ));
        assert!(s.decide(DEV_BLOCK, 8, 0, ACC_MKNOD));
        assert!(!s.decide(DEV_BLOCK, 8, 0, ACC_READ));
        assert!(!s.decide(DEV_CHAR, 1, 3, ACC_WRITE));
        assert!(s.decide(DEV_CHAR, 1, 3, ACC_MKNOD));
        // Default allow: nothing added.
        assert!(effective(&[rule(true, None, None, None, None)]).unwrap().rules.is_empty());
    }

    #[test]
    fn compiled_program_agrees_with_decide() {
        let sets = vec![
            normalize(&typical()).unwrap(),
            effective(&typical()).unwrap(),
            normalize(&[]).unwrap(),
            normalize(&[rule(true, None, None, None, None), rule(false, Some("b"), None, None, Some("w"))]).unwrap(),
            normalize(&[rule(true, Some("c"), None, None, Some("r")), rule(false, Some("c"), Some(1), None, Some("rw"))]).unwrap(),
        ];
        for s in &sets {
            let p = compile(s);
            for kind in [DEV_CHAR, DEV_BLOCK] {
                for major in [0, 1, 5, 8, 136, 250] {
                    for minor in [0, 1, 3, 4, 5, 7, 99] {
                        for access in 1..=7u8 {
                            let want = s.decide(kind, major, minor, access) as u32;
                            let got = interpret(&p, kind, major, minor, access);
                            assert_eq!(got, Some(want), "{s:?} kind={kind} {major}:{minor} acc={access}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn jumps_stay_inside_program() {
        let p = compile(&normalize(&typical()).unwrap());
        for (i, insn) in p.iter().enumerate() {
            if insn.code == JNE_K {
                let t = i as i64 + 1 + insn.off as i64;
                assert!(t > i as i64 && (t as usize) < p.len());
            }
        }
        assert_eq!(p.last().unwrap().code, EXIT);
    }
}
