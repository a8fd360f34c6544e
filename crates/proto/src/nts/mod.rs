//! Network Time Security (RFC 8915): the NTS-KE records, the server's cookies, and the NTS
//! extension fields of NTP packets. Keys come from the TLS exporter and randomness from the
//! caller: nothing here does I/O.

pub mod cookie;
pub mod fields;
pub mod ke;

/// NTS next protocol: NTPv4.
pub const PROTOCOL_NTPV4: u16 = 0;
/// AEAD_AES_SIV_CMAC_256 (RFC 5297), the one algorithm every NTS implementation has.
pub const AEAD_AES_SIV_CMAC_256: u16 = 15;
/// Key length of AEAD_AES_SIV_CMAC_256.
pub const KEY_LEN: usize = 32;
/// TLS exporter label for the NTS keys (RFC 8915 section 5.1).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-network-time-security";
/// ALPN protocol id of NTS-KE.
pub const ALPN: &[u8] = b"ntske/1";
/// Default NTS-KE port.
pub const KE_PORT: u16 = 4460;

/// The exporter context for one direction: protocol id, AEAD id, 0 for client-to-server or 1
/// for server-to-client.
pub fn exporter_context(aead: u16, server_to_client: bool) -> [u8; 5] {
    let [p0, p1] = PROTOCOL_NTPV4.to_be_bytes();
    let [a0, a1] = aead.to_be_bytes();
    [p0, p1, a0, a1, u8::from(server_to_client)]
}

/// The two keys of an NTS association.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionKeys {
    pub c2s: [u8; KEY_LEN],
    pub s2c: [u8; KEY_LEN],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

#[cfg(test)]
mod tests;
