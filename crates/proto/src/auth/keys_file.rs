//! The keys file: `keyid type key [addresses]` per line, `#` comments, as ntpd and NTPsec read it
//! (a key of 20 characters or fewer is ASCII, a longer one hex) and as chrony writes it (`HEX:`
//! and `ASCII:` prefixes). The optional comma-separated addresses or prefixes limit who may use
//! the key. Parsing is all-or-nothing: one bad line refuses the file, naming its line, column
//! and field but never quoting it (it may hold a key, or be a line of /etc/shadow).

use super::{KeyType, SymmetricKey};
use crate::server::{Access, AccessList, Prefix};
use std::net::IpAddr;

/// Why a keys file was refused. The message never quotes the file: a keys file holds secrets,
/// and a file named as one by mistake (`/etc/shadow`) may hold others. It says where (line,
/// column and which field) and what is wrong instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct KeysFileError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters, where the faulty field starts.
    pub column: usize,
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
            let error = |(column, message): (usize, String)| KeysFileError {
                line: index + 1,
                column,
                message,
            };
            let content = line.split('#').next().unwrap_or("");
            if content.trim().is_empty() {
                continue;
            }
            let (key, addresses) = parse_line(content).map_err(error)?;
            if keys.iter().any(|(known, _)| known.id == key.id) {
                let column = fields(content).first().map_or(1, |(column, _)| *column);
                return Err(error((column, format!("key id {} appears twice", key.id))));
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

/// What a key line looks like, for messages.
const FORM: &str = "a key line is `ID TYPE KEY [ADDRESSES]`, such as `1 SHA1` and 40 hex digits";

/// The whitespace-separated fields of a line, each with the column (1-based, in characters) it
/// starts at.
fn fields(line: &str) -> Vec<(usize, &str)> {
    let mut fields = Vec::new();
    let mut start = None;
    for (column, (offset, c)) in line.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((column + 1, offset)),
            (true, Some((first, from))) => {
                fields.push((first, &line[from..offset]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some((first, from)) = start {
        fields.push((first, &line[from..]));
    }
    fields
}

/// One key line (without its comment). An error is the column of the faulty field and what is
/// wrong with it, never the field itself.
fn parse_line(content: &str) -> Result<(SymmetricKey, Option<AccessList>), (usize, String)> {
    let fields = fields(content);
    let Some(&(first_column, first)) = fields.first() else {
        return Err((1, format!("an empty line where a key was expected; {FORM}")));
    };
    if first.contains(':') {
        return Err((
            first_column,
            "not an ntpd keys file: its lines are fields separated by `:`, as in /etc/passwd or \
             /etc/shadow, and "
                .to_owned()
                + FORM,
        ));
    }
    let [(_, id), (kind_column, kind), (key_column, secret), rest @ ..] = fields.as_slice() else {
        return Err((first_column, format!("{} field(s), where {FORM}", fields.len())));
    };
    let id = id.parse::<u32>().ok().filter(|id| (1..=65_534).contains(id)).ok_or_else(|| {
        (first_column, "field 1, the key id, is not a number from 1 to 65534".to_owned())
    })?;
    let kind = KeyType::from_name(kind).ok_or_else(|| {
        (
            *kind_column,
            "field 2, the key type, is not one this server knows: use MD5, SHA1 or AES128CMAC \
             (also spelt AES or AES128)"
                .to_owned(),
        )
    })?;
    let in_key = |message: String| (*key_column, format!("field 3, the key: {message}"));
    let secret = parse_secret(secret).map_err(in_key)?;
    let key = SymmetricKey::new(id, kind, &secret).map_err(in_key)?;
    let addresses = match rest.first() {
        None => None,
        Some(&(column, list)) => Some(
            parse_addresses(list)
                .map_err(|message| (column, format!("field 4, who may use the key: {message}")))?,
        ),
    };
    if let Some(&(column, _)) = rest.get(1) {
        return Err((
            column,
            "field 5 is one too many: separate the addresses with commas, without spaces (a key \
             cannot contain spaces either)"
                .to_owned(),
        ));
    }
    Ok((key, addresses))
}

/// The comma-separated addresses or prefixes that may use a key. Errors say which entry and what
/// is wrong, without quoting it: a key written with a space in it ends up here.
fn parse_addresses(list: &str) -> Result<AccessList, String> {
    let mut prefixes = Vec::new();
    for (index, item) in list.split(',').filter(|item| !item.is_empty()).enumerate() {
        let (address, length) = match item.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (item, None),
        };
        let problem = match (address.parse::<IpAddr>(), length.map(str::parse::<u8>)) {
            (Err(_), _) => "is not an IP address or ADDRESS/LENGTH prefix",
            (Ok(_), Some(Err(_))) => "has a prefix length that is not a number",
            (Ok(ip), Some(Ok(length))) if length > if ip.is_ipv4() { 32 } else { 128 } => {
                "has a prefix length beyond the address's bits (32 for IPv4, 128 for IPv6)"
            }
            _ => match item.parse::<Prefix>() {
                Ok(prefix) => {
                    prefixes.push(prefix);
                    continue;
                }
                Err(_) => "has host bits set beyond its prefix length",
            },
        };
        return Err(format!("entry {} {problem}", index + 1));
    }
    Ok(AccessList::new(&prefixes, std::iter::empty()))
}

/// `HEX:…` or `ASCII:…` (chrony), else ASCII up to 20 characters and hex beyond (ntpd).
fn parse_secret(text: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("HEX:") {
        return decode_hex(hex, "the key after HEX:");
    }
    if let Some(ascii) = text.strip_prefix("ASCII:") {
        return Ok(ascii.as_bytes().to_vec());
    }
    if text.len() <= 20 {
        Ok(text.as_bytes().to_vec())
    } else {
        decode_hex(text, "a key longer than 20 characters is hex, and this one")
    }
}

/// Hex digits into bytes. `what` starts the message; the digits are never quoted.
fn decode_hex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    if let Some(position) = digits.iter().position(|d| !d.is_ascii_hexdigit()) {
        let character = text[..position].chars().count() + 1;
        return Err(format!(
            "{what} has a character that is not a hex digit (its character {character})"
        ));
    }
    if digits.len() % 2 != 0 {
        return Err(format!("{what} has an odd number of hex digits"));
    }
    let value = |digit: u8| (digit as char).to_digit(16).unwrap_or(0) as u8;
    Ok(digits.chunks(2).map(|pair| value(pair[0]) << 4 | value(pair[1])).collect())
}
