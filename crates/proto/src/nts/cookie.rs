//! The server's cookies: the association's AEAD and keys, sealed with AES-SIV-CMAC-256 under a
//! server key the client never sees. Layout: server key id (4 bytes), nonce (16), sealed keys.
//! Server keys rotate; the previous one still opens cookies, so clients holding them keep working.

use super::{AEAD_AES_SIV_CMAC_256, KEY_LEN, SessionKeys};
use aes_siv::Aes128SivAead;
use aes_siv::aead::{Aead, KeyInit, Payload};

pub const NONCE_LEN: usize = 16;
/// Sealed content: AEAD id, both keys, two bytes of zeros (so the cookie is a multiple of 4 long).
const PLAINTEXT_LEN: usize = 2 + 2 * KEY_LEN + 2;
/// Length of every cookie we make.
pub const COOKIE_LEN: usize = 4 + NONCE_LEN + 16 + PLAINTEXT_LEN;

/// Seals `plaintext` with AES-SIV-CMAC-256: the synthetic IV (16 bytes), then the ciphertext.
pub fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes128SivAead::new(key.into());
    cipher.encrypt(nonce.into(), Payload { msg: plaintext, aad }).unwrap_or_default()
}

/// Opens what `seal` made; `None` if anything was altered or the key is wrong.
pub fn open(key: &[u8; KEY_LEN], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if nonce.len() != NONCE_LEN {
        return None;
    }
    let cipher = Aes128SivAead::new(key.into());
    cipher.decrypt(nonce.into(), Payload { msg: sealed, aad }).ok()
}

/// A server key: its id and bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ServerKey {
    pub id: u32,
    pub key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerKey {{ id: {} }}", self.id)
    }
}

/// The current server key and the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    pub current: ServerKey,
    pub previous: Option<ServerKey>,
}

impl Keyring {
    /// Makes `fresh` (random bytes from the caller) the current key.
    pub fn rotate(&mut self, fresh: [u8; KEY_LEN]) {
        let id = self.current.id.wrapping_add(1);
        self.previous = Some(self.current);
        self.current = ServerKey { id, key: fresh };
    }

    /// A new cookie for `keys`, with `nonce` (random bytes from the caller).
    pub fn make_cookie(&self, keys: &SessionKeys, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let mut plaintext = Vec::with_capacity(PLAINTEXT_LEN);
        plaintext.extend_from_slice(&AEAD_AES_SIV_CMAC_256.to_be_bytes());
        plaintext.extend_from_slice(&keys.c2s);
        plaintext.extend_from_slice(&keys.s2c);
        plaintext.extend_from_slice(&[0, 0]);
        let mut cookie = Vec::with_capacity(COOKIE_LEN);
        cookie.extend_from_slice(&self.current.id.to_be_bytes());
        cookie.extend_from_slice(nonce);
        cookie.extend_from_slice(&seal(&self.current.key, nonce, &[], &plaintext));
        cookie
    }

    /// The keys inside a cookie we made with the current or previous key; `None` for anything else.
    pub fn open_cookie(&self, cookie: &[u8]) -> Option<SessionKeys> {
        if cookie.len() != COOKIE_LEN {
            return None;
        }
        let id = u32::from_be_bytes(cookie[..4].try_into().ok()?);
        let key = [Some(self.current), self.previous].into_iter().flatten().find(|k| k.id == id)?;
        let plaintext = open(&key.key, &cookie[4..4 + NONCE_LEN], &[], &cookie[4 + NONCE_LEN..])?;
        if plaintext.len() != PLAINTEXT_LEN
            || u16::from_be_bytes([plaintext[0], plaintext[1]]) != AEAD_AES_SIV_CMAC_256
        {
            return None;
        }
        let mut keys = SessionKeys { c2s: [0; KEY_LEN], s2c: [0; KEY_LEN] };
        keys.c2s.copy_from_slice(&plaintext[2..2 + KEY_LEN]);
        keys.s2c.copy_from_slice(&plaintext[2 + KEY_LEN..2 + 2 * KEY_LEN]);
        Some(keys)
    }

    /// As text for the keyring file: one `id hexkey` line per key, current first.
    pub fn to_text(&self) -> String {
        [Some(self.current), self.previous]
            .into_iter()
            .flatten()
            .map(|k| {
                format!(
                    "{} {}\n",
                    k.id,
                    k.key.iter().map(|b| format!("{b:02x}")).collect::<String>()
                )
            })
            .collect()
    }

    pub fn from_text(text: &str) -> Option<Self> {
        let mut keys = text.lines().filter(|l| !l.trim().is_empty()).map(|line| {
            let (id, hex) = line.trim().split_once(' ')?;
            let id: u32 = id.parse().ok()?;
            if hex.len() != 2 * KEY_LEN {
                return None;
            }
            let mut key = [0u8; KEY_LEN];
            for (i, byte) in key.iter_mut().enumerate() {
                *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
            }
            Some(ServerKey { id, key })
        });
        let current = keys.next()??;
        let previous = match keys.next() {
            Some(key) => Some(key?),
            None => None,
        };
        Some(Self { current, previous })
    }
}
