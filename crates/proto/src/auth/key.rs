//! One symmetric key and the MACs it makes: MD5 or SHA-1 over key then packet (not HMAC, as ntpd
//! and RFC 5905 define them), or AES-128-CMAC over the packet (RFC 8573).

use crate::packet::Mac;
use aes::Aes128;
use cmac::{Cmac, Mac as _};
use md5::{Digest as _, Md5};
use sha1::Sha1;
use std::fmt;

/// Longest key secret accepted, bytes.
pub const MAX_KEY_LEN: usize = 64;

/// The MAC algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Md5,
    Sha1,
    /// AES-128-CMAC (RFC 8573); the secret is exactly 16 bytes.
    AesCmac,
}

impl KeyType {
    /// Digest length in bytes (the MAC is a 4-byte key id and then this).
    pub fn digest_len(self) -> usize {
        match self {
            Self::Md5 | Self::AesCmac => 16,
            Self::Sha1 => 20,
        }
    }

    /// The name written in keys files (ntpd and NTPsec spelling).
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA1",
            Self::AesCmac => "AES128CMAC",
        }
    }

    /// The name chrony's keyfile uses.
    pub fn chrony_name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA1",
            Self::AesCmac => "AES128",
        }
    }

    /// Reads a type name as ntpd (`M`, `MD5`, `SHA1`, `SHA`), NTPsec (`AES`, `AES128CMAC`) or
    /// chrony (`AES128`) write it, in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "M" | "MD5" => Some(Self::Md5),
            "SHA1" | "SHA" | "SHA-1" => Some(Self::Sha1),
            "AES" | "AES128" | "AES128CMAC" | "AES-128-CMAC" | "CMAC" => Some(Self::AesCmac),
            _ => None,
        }
    }
}

/// A key: its id (1 to 65534, as in ntpd), algorithm and secret. Small and `Copy`, so a reply can
/// carry the key it is to be signed with; `Debug` never shows the secret.
#[derive(Clone, Copy)]
pub struct SymmetricKey {
    pub id: u32,
    pub kind: KeyType,
    secret: [u8; MAX_KEY_LEN],
    len: u8,
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SymmetricKey {{ id: {}, kind: {} }}", self.id, self.kind.name())
    }
}

impl PartialEq for SymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.kind == other.kind && self.secret() == other.secret()
    }
}

impl Eq for SymmetricKey {}

impl SymmetricKey {
    /// Checks the id (1 to 65534) and the secret's length (1 to 64 bytes; exactly 16 for
    /// AES-128-CMAC).
    pub fn new(id: u32, kind: KeyType, secret: &[u8]) -> Result<Self, String> {
        if !(1..=65_534).contains(&id) {
            return Err(format!("key id {id} is out of range: expected 1 to 65534"));
        }
        if secret.is_empty() || secret.len() > MAX_KEY_LEN {
            return Err(format!(
                "a key of {} bytes: expected 1 to {MAX_KEY_LEN} bytes",
                secret.len()
            ));
        }
        if kind == KeyType::AesCmac && secret.len() != 16 {
            return Err(format!(
                "an AES-128-CMAC key must be 16 bytes (32 hex digits), not {}",
                secret.len()
            ));
        }
        let mut bytes = [0u8; MAX_KEY_LEN];
        bytes[..secret.len()].copy_from_slice(secret);
        Ok(Self { id, kind, secret: bytes, len: secret.len() as u8 })
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret[..usize::from(self.len)]
    }

    /// Length of the MAC this key makes: key id and digest.
    pub fn mac_len(&self) -> usize {
        4 + self.kind.digest_len()
    }

    /// The digest of `data` (the packet up to its MAC), in the first `digest_len` bytes.
    pub fn digest(&self, data: &[u8]) -> [u8; 20] {
        let mut out = [0u8; 20];
        match self.kind {
            KeyType::Md5 => {
                let digest = Md5::new().chain_update(self.secret()).chain_update(data).finalize();
                out[..16].copy_from_slice(&digest);
            }
            KeyType::Sha1 => {
                let digest = Sha1::new().chain_update(self.secret()).chain_update(data).finalize();
                out.copy_from_slice(&digest);
            }
            KeyType::AesCmac => {
                // The length was checked in `new`, so this cannot fail.
                if let Ok(mut cmac) = <Cmac<Aes128> as cmac::Mac>::new_from_slice(self.secret()) {
                    cmac.update(data);
                    out[..16].copy_from_slice(&cmac.finalize().into_bytes());
                }
            }
        }
        out
    }

    /// Signs a packet in place: `packet` ends with [`mac_len`](Self::mac_len) bytes of room,
    /// which get the key id and the digest of everything before them.
    pub fn sign(&self, packet: &mut [u8]) {
        let Some(split) = packet.len().checked_sub(self.mac_len()) else { return };
        let (data, mac) = packet.split_at_mut(split);
        let digest = self.digest(data);
        mac[..4].copy_from_slice(&self.id.to_be_bytes());
        mac[4..].copy_from_slice(&digest[..self.kind.digest_len()]);
    }

    /// Whether `mac`, the MAC that ends `packet`, is this key's MAC of everything before it.
    pub fn verify_packet(&self, packet: &[u8], mac: &Mac<'_>) -> bool {
        packet
            .len()
            .checked_sub(mac.encoded_len())
            .is_some_and(|signed| self.verify(&packet[..signed], mac))
    }

    /// Whether `mac` is this key's MAC of `data`: the same key id, the digest length of this
    /// key's type, and the right digest (compared in constant time).
    pub fn verify(&self, data: &[u8], mac: &Mac<'_>) -> bool {
        if mac.key_id != self.id || mac.digest.len() != self.kind.digest_len() {
            return false;
        }
        let expected = self.digest(data);
        let difference =
            expected.iter().zip(mac.digest).fold(0u8, |difference, (a, b)| difference | (a ^ b));
        difference == 0
    }
}
