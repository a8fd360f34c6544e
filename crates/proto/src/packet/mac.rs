//! The legacy message authentication code that may end a packet: a key id and a digest, or a bare
//! key id (a crypto-NAK).

/// Length of a crypto-NAK: a key id with no digest.
pub const CRYPTO_NAK_LEN: usize = 4;
/// Longest MAC (key id plus a 20-byte SHA-1 digest); anything longer is an extension field.
pub const MAX_MAC_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac<'a> {
    pub key_id: u32,
    /// Empty for a crypto-NAK, else 16 bytes (MD5, AES-128-CMAC) or 20 (SHA-1).
    pub digest: &'a [u8],
}

impl<'a> Mac<'a> {
    /// Reads a MAC of 4, 20 or 24 bytes (or 12, the DES MAC of NTPv3); other lengths are not MACs.
    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        if !matches!(bytes.len(), 4 | 12 | 20 | 24) {
            return None;
        }
        let key_id = u32::from_be_bytes(bytes[..4].try_into().ok()?);
        Some(Self { key_id, digest: &bytes[4..] })
    }

    pub fn is_crypto_nak(&self) -> bool {
        self.digest.is_empty()
    }

    pub fn encoded_len(&self) -> usize {
        4 + self.digest.len()
    }

    /// Writes the MAC at the start of `out`, which must hold [`Mac::encoded_len`] bytes.
    pub(crate) fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.key_id.to_be_bytes());
        out[4..4 + self.digest.len()].copy_from_slice(self.digest);
    }
}
