//! The keys file: `keyid type key [addresses]` per line, `#` comments, as ntpd and NTPsec read it
//! (a key of 20 characters or fewer is ASCII, a longer one hex) and as chrony writes it (`HEX:`
//! and `ASCII:` prefixes). The optional comma-separated addresses or prefixes limit who may use
//! the key. Parsing is all-or-nothing: one bad line refuses the file, naming the line.

use super::{KeyType, SymmetricKey};
use crate::server::{Access, AccessList, Prefix};
use std::net::IpAddr;

/// Why a keys file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct KeysFileError {
    pub line: usize,
    pub message: String,
}

/// The keys in force, sorted by id, each with the addresses allowed to use it (none: anyone).
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    keys: Vec<(SymmetricKey, Option<AccessList>)>,
}

/// What a key id in a request means for its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup<'a> {
    /// A trusted key this address may use.
    Usable(&'a SymmetricKey),
    /// No trusted key has this id, or this address may not use it.
    Unknown,
}

impl KeyStore {
    /// No keys: every MAC is from an unknown key.
    pub const EMPTY: Self = Self { keys: Vec::new() };

    /// Parses the text of a keys file.
    pub fn parse(text: &str) -> Result<Self, KeysFileError> {
        let mut keys: Vec<(SymmetricKey, Option<AccessList>)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let error = |message: String| KeysFileError { line: index + 1, message };
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (key, addresses) = parse_line(content).map_err(error)?;
            if keys.iter().any(|(known, _)| known.id == key.id) {
                return Err(error(format!("key id {} appears twice", key.id)));
            }
            keys.push((key, addresses));
        }
        keys.sort_by_key(|(key, _)| key.id);
        Ok(Self { keys })
    }

    /// Keeps only the keys whose ids are in `trusted`; an id not in the file is an error.
    pub fn trust_only(&mut self, trusted: &[u32]) -> Result<(), u32> {
        if let Some(&missing) = trusted.iter().find(|id| self.key(**id).is_none()) {
            return Err(missing);
        }
        self.keys.retain(|(key, _)| trusted.contains(&key.id));
        Ok(())
    }

    /// The key with this id, if trusted.
    pub fn key(&self, id: u32) -> Option<&SymmetricKey> {
        let index = self.keys.binary_search_by_key(&id, |(key, _)| key.id).ok()?;
        Some(&self.keys[index].0)
    }

    /// The key with this id, if trusted and `address` may use it.
    pub fn lookup(&self, id: u32, address: IpAddr) -> KeyLookup<'_> {
        let Ok(index) = self.keys.binary_search_by_key(&id, |(key, _)| key.id) else {
            return KeyLookup::Unknown;
        };
        let (key, allowed) = &self.keys[index];
        match allowed {
            Some(list) if list.check(address) == Access::Deny => KeyLookup::Unknown,
            _ => KeyLookup::Usable(key),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, by id.
    pub fn keys(&self) -> impl Iterator<Item = &SymmetricKey> {
        self.keys.iter().map(|(key, _)| key)
    }
}

fn parse_line(content: &str) -> Result<(SymmetricKey, Option<AccessList>), String> {
    let mut fields = content.split_whitespace();
    let (Some(id), Some(kind), Some(secret)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(format!("{content:?}: expected \"keyid type key [addresses]\""));
    };
    let id: u32 = id.parse().map_err(|_| format!("key id {id:?} is not a number"))?;
    let kind = KeyType::from_name(kind).ok_or_else(|| {
        format!("key type {kind:?} is not supported: use MD5, SHA1 or AES128CMAC (AES, AES128)")
    })?;
    let secret = parse_secret(secret)?;
    let key = SymmetricKey::new(id, kind, &secret)?;
    let addresses = match fields.next() {
        None => None,
        Some(list) => {
            let prefixes = list
                .split(',')
                .filter(|item| !item.is_empty())
                .map(str::parse::<Prefix>)
                .collect::<Result<Vec<_>, _>>()?;
            Some(AccessList::new(&prefixes, std::iter::empty()))
        }
    };
    if let Some(extra) = fields.next() {
        return Err(format!(
            "unexpected {extra:?} after the addresses (separate them with commas)"
        ));
    }
    Ok((key, addresses))
}

/// `HEX:…` or `ASCII:…` (chrony), else ASCII up to 20 characters and hex beyond (ntpd).
fn parse_secret(text: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("HEX:") {
        return decode_hex(hex);
    }
    if let Some(ascii) = text.strip_prefix("ASCII:") {
        return Ok(ascii.as_bytes().to_vec());
    }
    if text.len() <= 20 { Ok(text.as_bytes().to_vec()) } else { decode_hex(text) }
}

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!(
            "a key longer than 20 characters is hex, and {text:?} is not an even number of hex digits"
        ));
    }
    let value = |digit: u8| (digit as char).to_digit(16).unwrap_or(0) as u8;
    Ok(digits.chunks(2).map(|pair| value(pair[0]) << 4 | value(pair[1])).collect())
}
