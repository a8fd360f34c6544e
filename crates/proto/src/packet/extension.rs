//! RFC 7822 extension fields: type, length (a multiple of 4, at least 16) and value, kept as the
//! borrowed bytes they arrived in.

use super::{DecodeError, MAX_MAC_LEN};

/// Shortest extension field RFC 7822 allows.
const MIN_FIELD_LEN: usize = 16;

/// One extension field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionField<'a> {
    pub field_type: u16,
    /// The value, including any padding, without the 4-byte type/length header.
    pub value: &'a [u8],
}

/// The validated run of extension fields of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionFields<'a>(&'a [u8]);

impl<'a> ExtensionFields<'a> {
    pub const EMPTY: Self = Self(&[]);

    /// Splits what follows the header into extension fields and MAC bytes, validating every field.
    /// `base` is the offset of `trailer` in the packet, for error messages.
    pub(crate) fn split_from_mac(
        trailer: &'a [u8],
        base: usize,
    ) -> Result<(Self, &'a [u8]), DecodeError> {
        // A last field shorter than 28 bytes with no MAC after it (RFC 7822) cannot occur here: once
        // 24 bytes or fewer remain they are read as the MAC, and refused if they are not one.
        let mut offset = 0;
        while trailer.len() - offset > MAX_MAC_LEN {
            let rest = &trailer[offset..];
            let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            if len < MIN_FIELD_LEN || len % 4 != 0 || len > rest.len() {
                return Err(DecodeError::MalformedExtension { offset: base + offset });
            }
            offset += len;
        }
        let (fields, mac) = trailer.split_at(offset);
        Ok((Self(fields), mac))
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = ExtensionField<'a>> + 'a {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            if rest.len() < 4 {
                return None;
            }
            let field_type = u16::from_be_bytes([rest[0], rest[1]]);
            let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).clamp(4, rest.len());
            let field = ExtensionField { field_type, value: &rest[4..len] };
            rest = &rest[len..];
            Some(field)
        })
    }
}
