//! Small text helpers shared by the other modules (numbers, and the octal
//! escapes of service names in the control protocol). They depend on
//! nothing else in the crate, so nothing imports in a circle through them.

use core::fmt;

/// Decimal digits only, at most 9 of them (no sign, no white space).
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut n: u32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as u32;
    }
    Some(n)
}

/// C's atoi: leading white space, an optional sign, then digits; anything
/// else ends the number (0 when there is none). Saturates instead of
/// overflowing.
pub fn atoi(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = i < s.len() && s[i] == b'-';
    if i < s.len() && (s[i] == b'-' || s[i] == b'+') {
        i += 1;
    }
    let mut n: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        n = n.saturating_mul(10).saturating_add((s[i] - b'0') as i64);
        i += 1;
    }
    if neg {
        -n
    } else {
        n
    }
}

/// Decimal digits of `n` in `buf`.
pub fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// An integer in a message. (core's integer Display, with the padding
/// machinery behind it, costs about 1.5 KiB in this binary; this a few
/// dozen bytes.)
#[derive(Clone, Copy)]
pub struct Num(pub i64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b = [0; 20];
        if self.0 < 0 {
            f.write_str("-")?;
        }
        fmt::Display::fmt(&Show(fmt_u64(self.0.unsigned_abs(), &mut b)), f)
    }
}

/// Bytes shown as text (invalid UTF-8 replaced by '?').
pub struct Show<'a>(pub &'a [u8]);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("?")?;
            }
        }
        Ok(())
    }
}

/// Bytes that a name carries escaped in the control protocol: white space
/// and other control bytes, DEL and the backslash itself.
pub fn needs_escape(b: u8) -> bool {
    b <= b' ' || b == 0x7f || b == b'\\'
}

/// A name escaped the way /proc/mounts escapes paths: `\ooo` (three octal
/// digits) for the bytes of `needs_escape` and for bytes that are not valid
/// UTF-8; every other byte as it is. Lossless: `unescape` gives the name back.
pub struct Esc<'a>(pub &'a [u8]);

fn octal(f: &mut fmt::Formatter<'_>, b: u8) -> fmt::Result {
    let e = [b'\\', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)];
    fmt::Display::fmt(&Show(&e), f)
}

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            let v = chunk.valid();
            let mut start = 0;
            for (i, b) in v.bytes().enumerate() {
                if needs_escape(b) {
                    // An ASCII byte: both ends are char boundaries.
                    f.write_str(v.get(start..i).unwrap_or_default())?;
                    octal(f, b)?;
                    start = i + 1;
                }
            }
            f.write_str(v.get(start..).unwrap_or_default())?;
            for &b in chunk.invalid() {
                octal(f, b)?;
            }
        }
        Ok(())
    }
}

/// Undoes `Esc` in place; returns the decoded length. A backslash not
/// followed by three octal digits stays as it is.
pub fn unescape(s: &mut [u8]) -> usize {
    let (mut r, mut w) = (0, 0);
    while r < s.len() {
        let b = s[r];
        if b == b'\\' && r + 3 < s.len() && s[r + 1..r + 4].iter().all(|d| (b'0'..=b'7').contains(d)) {
            let v = ((s[r + 1] - b'0') as u32) * 64 + ((s[r + 2] - b'0') as u32) * 8 + (s[r + 3] - b'0') as u32;
            s[w] = v as u8;
            r += 4;
        } else {
            s[w] = b;
            r += 1;
        }
        w += 1;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(b"42"), Some(42));
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"4x"), None);
        assert_eq!(atoi(b" 3x"), 3);
        assert_eq!(atoi(b"-1"), -1);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b"+7"), 7);
        let mut b = [0; 20];
        assert_eq!(fmt_u64(1234, &mut b), b"1234");
    }

    #[test]
    fn escapes_round_trip() {
        extern crate std;
        use std::string::ToString;
        let name = b"with space\nand\\tab\t\x7f caf\xc3\xa9\xff";
        let e = Esc(name).to_string();
        assert_eq!(e, "with\\040space\\012and\\134tab\\011\\177\\040caf\u{e9}\\377");
        let mut v = e.into_bytes();
        let n = unescape(&mut v);
        assert_eq!(&v[..n], &name[..]);
        let mut odd = *b"a\\9b\\";
        let n = unescape(&mut odd);
        assert_eq!(&odd[..n], b"a\\9b\\");
    }
}
