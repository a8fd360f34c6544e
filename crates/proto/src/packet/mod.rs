//! The NTP packet codec: the 48-byte header of NTP v1–v4, RFC 7822 extension fields and a trailing
//! legacy MAC, decoded without copying and encoded back byte for byte.

mod extension;
mod header;
mod mac;
mod reference_id;

pub use extension::{ExtensionField, ExtensionFields};
pub use header::{HEADER_LEN, LeapIndicator, Mode, NtpHeader};
pub use mac::{CRYPTO_NAK_LEN, MAX_MAC_LEN, Mac};
pub use reference_id::ReferenceId;

/// Why bytes are not an NTP packet we can use. Every variant means "no answer".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet is {0} bytes, shorter than the 48-byte NTP header")]
    Truncated(usize),
    #[error("NTP version {0} is not supported (1 to 4 are)")]
    UnsupportedVersion(u8),
    #[error("mode {0} (control/private) is not a time packet")]
    ControlMode(u8),
    #[error("malformed extension field at byte {offset}")]
    MalformedExtension { offset: usize },
    #[error("{0} trailing bytes are neither extension fields nor a MAC")]
    BadTrailer(usize),
}

/// A decoded packet borrowing its extension fields and MAC from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpPacket<'a> {
    pub header: NtpHeader,
    pub extensions: ExtensionFields<'a>,
    pub mac: Option<Mac<'a>>,
}

impl<'a> NtpPacket<'a> {
    /// Decodes a packet, checking the layout of everything after the header.
    ///
    /// After the header, NTPv4 carries extension fields (each a multiple of 4 bytes, at least 16) and
    /// then optionally a MAC. Following RFC 7822, whatever remains once it is 24 bytes or fewer is the
    /// MAC (4 bytes for a crypto-NAK, key id plus a 16- or 20-byte digest), because the last extension
    /// field of a packet without a MAC is at least 28 bytes. Versions 1–3 have no extension fields.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let header = NtpHeader::decode(bytes)?;
        let trailer = &bytes[HEADER_LEN..];
        let (extensions, mac_bytes) = if header.version >= 4 {
            ExtensionFields::split_from_mac(trailer, HEADER_LEN)?
        } else {
            (ExtensionFields::EMPTY, trailer)
        };
        let mac = if mac_bytes.is_empty() {
            None
        } else {
            Some(Mac::decode(mac_bytes).ok_or(DecodeError::BadTrailer(mac_bytes.len()))?)
        };
        Ok(Self { header, extensions, mac })
    }

    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.extensions.as_bytes().len() + self.mac.map_or(0, |m| m.encoded_len())
    }

    /// Never true: a packet has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Encodes into `out`, returning the length written, or `None` if `out` is too short.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.len();
        let out = out.get_mut(..len)?;
        let (header_out, rest) = out.split_at_mut(HEADER_LEN);
        self.header.encode(header_out.try_into().ok()?);
        let ext = self.extensions.as_bytes();
        rest[..ext.len()].copy_from_slice(ext);
        if let Some(mac) = self.mac {
            mac.encode(&mut rest[ext.len()..]);
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests;
