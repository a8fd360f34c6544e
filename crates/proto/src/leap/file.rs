//! The leap-seconds.list text format: sorts its lines into the `#$` update time, the `#@` expiry,
//! the `#h` SHA-1 hash and the data lines, and checks the hash. No meaning is given to the numbers
//! here beyond their being numbers; the table decides whether they make sense.

use super::LeapFileError;
use sha1::{Digest, Sha1};

/// One `NTP_SECONDS TAI_MINUS_UTC [# comment]` line.
pub(super) struct DataLine<'a> {
    /// Line number, from 1.
    pub line: usize,
    pub text: &'a str,
    /// Seconds since 1900-01-01 00:00 UTC, counted on past 2036 rather than wrapped.
    pub ntp_seconds: i64,
    /// TAI - UTC in seconds from that instant on.
    pub tai_offset: i32,
    /// The two numbers exactly as written: what the hash covers.
    digits: [&'a str; 2],
}

/// A file whose hash has been checked.
pub(super) struct LeapFile<'a> {
    /// NTP seconds after which the file must not be used (`#@`).
    pub expires: i64,
    pub data: Vec<DataLine<'a>>,
}

/// A `#$` or `#@` line as written.
struct Stamp<'a> {
    /// NTP seconds.
    value: i64,
    digits: &'a str,
}

/// Sorts the lines and checks the hash: all or nothing.
pub(super) fn read(text: &str) -> Result<LeapFile<'_>, LeapFileError> {
    let mut updated: Option<Stamp<'_>> = None;
    let mut expires: Option<Stamp<'_>> = None;
    let mut hash: Option<[u8; 20]> = None;
    let mut data = Vec::new();

    for (index, text) in text.lines().enumerate() {
        let line = index + 1;
        let bad =
            |reason: &'static str| LeapFileError::BadLine { line, text: text.to_string(), reason };
        if let Some(rest) = tagged(text, '$') {
            let stamp = stamp(rest).ok_or_else(|| {
                bad("a `#$` line holds one number, the NTP time of the last update")
            })?;
            if updated.replace(stamp).is_some() {
                return Err(bad("a second `#$` line"));
            }
        } else if let Some(rest) = tagged(text, '@') {
            let stamp = stamp(rest)
                .ok_or_else(|| bad("a `#@` line holds one number, the NTP time of expiry"))?;
            if expires.replace(stamp).is_some() {
                return Err(bad("a second `#@` line"));
            }
        } else if let Some(rest) = tagged(text, 'h') {
            let digest = parse_hash(rest)
                .ok_or_else(|| LeapFileError::BadHash { line, text: text.to_string() })?;
            if hash.replace(digest).is_some() {
                return Err(bad("a second `#h` line"));
            }
        } else if !text.trim_start().starts_with('#') && !text.trim().is_empty() {
            data.push(data_line(line, text).ok_or_else(|| {
                bad("expected `NTP_SECONDS TAI_MINUS_UTC`, two whole numbers, then an optional \
                     `#` comment")
            })?);
        }
    }

    let updated = updated.ok_or(LeapFileError::MissingUpdateTime)?;
    let expires = expires.ok_or(LeapFileError::MissingExpiry)?;
    let expected = hash.ok_or(LeapFileError::MissingHash)?;
    let computed = digest(&updated, &expires, &data);
    if computed != expected {
        return Err(LeapFileError::HashMismatch {
            expected: hash_text(&expected),
            computed: hash_text(&computed),
        });
    }
    Ok(LeapFile { expires: expires.value, data })
}

/// SHA-1 over the digits of the update time, the expiry and then every data line's two numbers,
/// with nothing between them: no whitespace, no comments.
fn digest(updated: &Stamp<'_>, expires: &Stamp<'_>, data: &[DataLine<'_>]) -> [u8; 20] {
    let mut sha1 = Sha1::new();
    sha1.update(updated.digits);
    sha1.update(expires.digits);
    for line in data {
        sha1.update(line.digits[0]);
        sha1.update(line.digits[1]);
    }
    sha1.finalize().into()
}

/// The rest of a `#<tag>` line, if the line has that tag. `#hello` is a comment, not a `#h` line.
fn tagged(text: &str, tag: char) -> Option<&str> {
    let rest = text.strip_prefix('#')?.strip_prefix(tag)?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

/// The one number of a `#$` or `#@` line.
fn stamp(rest: &str) -> Option<Stamp<'_>> {
    let mut fields = rest.split_whitespace();
    let digits = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    Some(Stamp { value: number(digits)?, digits })
}

fn data_line(line: usize, text: &str) -> Option<DataLine<'_>> {
    let content = text.split('#').next().unwrap_or("");
    let mut fields = content.split_whitespace();
    let (seconds, offset) = (fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    Some(DataLine {
        line,
        text,
        ntp_seconds: number(seconds)?,
        tai_offset: i32::try_from(number(offset)?).ok()?,
        digits: [seconds, offset],
    })
}

/// A non-negative whole number written in decimal digits only (no sign, no spaces).
fn number(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Five groups of hex digits, each a big-endian 32-bit word. Up to 8 digits each: files that drop
/// a word's leading zeros, as some older ones did, are read as well.
fn parse_hash(rest: &str) -> Option<[u8; 20]> {
    let mut digest = [0u8; 20];
    let mut groups = rest.split_whitespace();
    for chunk in digest.chunks_exact_mut(4) {
        let group = groups.next()?;
        if group.len() > 8 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        chunk.copy_from_slice(&u32::from_str_radix(group, 16).ok()?.to_be_bytes());
    }
    groups.next().is_none().then_some(digest)
}

/// A hash written as a `#h` line writes it.
fn hash_text(digest: &[u8; 20]) -> String {
    let words: Vec<String> = digest
        .chunks_exact(4)
        .map(|word| format!("{:08x}", u32::from_be_bytes([word[0], word[1], word[2], word[3]])))
        .collect();
    words.join(" ")
}
