//! Symmetric-key authentication: keys (MD5 and SHA-1 as RFC 5905 and ntpd compute them, AES-128-CMAC
//! per RFC 8573), the keys file of ntpd, NTPsec and chrony, and signing and checking packets.

mod key;
mod keys_file;

pub use key::{KeyType, MAX_KEY_LEN, SymmetricKey};
pub use keys_file::{KeyLookup, KeyStore, KeysFileError};

#[cfg(test)]
mod tests;
