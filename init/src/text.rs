//! Small text helpers shared by the other modules (numbers, and the octal
//! escapes of service names in the control protocol). They depend on
//! nothing else in the crate, so nothing imports in a circle through them.

use core::fmt::{self, Write};

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

/// The character at the start of `s` (not empty) and its length in bytes;
/// `None` for bytes that are not UTF-8, with the length of the longest
/// prefix of a valid sequence, as core's `Utf8Chunks` counts it (at least
/// 1). Hand-written: `Utf8Chunks` costs about 400 bytes in this binary.
fn decode(s: &[u8]) -> (usize, Option<char>) {
    // Length, and the range of the second byte (RFC 3629's table).
    let (n, lo, hi) = match s[0] {
        0..=0x7f => return (1, Some(s[0] as char)),
        0xc2..=0xdf => (2, 0x80, 0xbf),
        0xe0 => (3, 0xa0, 0xbf),
        0xed => (3, 0x80, 0x9f),
        0xe1..=0xef => (3, 0x80, 0xbf),
        0xf0 => (4, 0x90, 0xbf),
        0xf1..=0xf3 => (4, 0x80, 0xbf),
        0xf4 => (4, 0x80, 0x8f),
        _ => return (1, None),
    };
    let mut v = (s[0] & (0x7f >> n)) as u32;
    for k in 1..n {
        let (l, h) = if k == 1 { (lo, hi) } else { (0x80, 0xbf) };
        match s.get(k) {
            Some(&c) if (l..=h).contains(&c) => v = v << 6 | (c & 0x3f) as u32,
            _ => return (k, None),
        }
    }
    (n, char::from_u32(v))
}

/// Bytes shown as text (each invalid UTF-8 sequence replaced by '?').
pub struct Show<'a>(pub &'a [u8]);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.0;
        while !s.is_empty() {
            let (n, c) = decode(s);
            f.write_char(c.unwrap_or('?'))?;
            s = &s[n..];
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
        let mut s = self.0;
        while !s.is_empty() {
            let (n, c) = decode(s);
            match c {
                Some(c) if !(c.is_ascii() && needs_escape(c as u8)) => f.write_char(c)?,
                _ => {
                    for &b in &s[..n] {
                        octal(f, b)?;
                    }
                }
            }
            s = &s[n..];
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

    #[test]
    fn show_matches_core_lossy() {
        extern crate std;
        use std::string::{String, ToString};
        let cases: &[&[u8]] = &[
            b"plain",
            b"caf\xc3\xa9",
            b"\xff\xfe",
            b"a\xe2\x82",
            b"a\xe2\x82\xacb",
            b"\xf0\x9f\x98\x80 \xf0\x9f\x98",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf\xe0\x80\xaf",
            b"\xf1\x80\x80\xc3\xa9",
        ];
        for &c in cases {
            let mut want = String::new();
            for chunk in c.utf8_chunks() {
                want.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    want.push('?');
                }
            }
            assert_eq!(Show(c).to_string(), want, "{c:?}");
            let mut e = Esc(c).to_string().into_bytes();
            let n = unescape(&mut e);
            assert_eq!(&e[..n], c);
        }
    }
}
