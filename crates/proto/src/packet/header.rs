//! The fixed 48-byte NTP header and its small enumerations (leap indicator, mode).

use super::{DecodeError, ReferenceId};
use crate::time::{NtpShort, NtpTimestamp};

/// Length of the NTP header in bytes; the shortest valid packet.
pub const HEADER_LEN: usize = 48;

/// The two leap bits: a pending leap second at the end of the day, or "unsynchronised".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeapIndicator {
    NoWarning,
    /// The last minute of the day has 61 seconds.
    InsertSecond,
    /// The last minute of the day has 59 seconds.
    DeleteSecond,
    /// The sender's clock is not synchronised.
    Unsynchronised,
}

impl LeapIndicator {
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => Self::NoWarning,
            1 => Self::InsertSecond,
            2 => Self::DeleteSecond,
            _ => Self::Unsynchronised,
        }
    }

    /// For people: "none", "insert second", "delete second" or "unsynchronised".
    pub const fn name(self) -> &'static str {
        match self {
            Self::NoWarning => "none",
            Self::InsertSecond => "insert second",
            Self::DeleteSecond => "delete second",
            Self::Unsynchronised => "unsynchronised",
        }
    }

    pub const fn to_bits(self) -> u8 {
        match self {
            Self::NoWarning => 0,
            Self::InsertSecond => 1,
            Self::DeleteSecond => 2,
            Self::Unsynchronised => 3,
        }
    }
}

/// The association mode of a packet (RFC 5905, figure 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Mode 0: reserved; NTPv1 clients, which predate the mode field, send it.
    Unspecified,
    SymmetricActive,
    SymmetricPassive,
    Client,
    Server,
    Broadcast,
    /// Mode 6 (ntpq); its packets have another layout and are never decoded as time packets.
    Control,
    /// Mode 7 (ntpdc, monlist); likewise never decoded.
    Private,
}

impl Mode {
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b111 {
            0 => Self::Unspecified,
            1 => Self::SymmetricActive,
            2 => Self::SymmetricPassive,
            3 => Self::Client,
            4 => Self::Server,
            5 => Self::Broadcast,
            6 => Self::Control,
            _ => Self::Private,
        }
    }

    pub const fn to_bits(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::SymmetricActive => 1,
            Self::SymmetricPassive => 2,
            Self::Client => 3,
            Self::Server => 4,
            Self::Broadcast => 5,
            Self::Control => 6,
            Self::Private => 7,
        }
    }
}

/// The fixed NTP header. Field names follow RFC 5905; durations are in NTP's own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpHeader {
    pub leap: LeapIndicator,
    /// 1 to 4 in any decoded header.
    pub version: u8,
    pub mode: Mode,
    /// 0 = unspecified or kiss-o'-death, 1 = primary, 2–15 = secondary, 16 = unsynchronised.
    pub stratum: u8,
    /// Poll interval, log2 seconds.
    pub poll: i8,
    /// Precision of the sender's clock, log2 seconds.
    pub precision: i8,
    pub root_delay: NtpShort,
    pub root_dispersion: NtpShort,
    pub reference_id: ReferenceId,
    pub reference_time: NtpTimestamp,
    pub origin_time: NtpTimestamp,
    pub receive_time: NtpTimestamp,
    pub transmit_time: NtpTimestamp,
}

impl NtpHeader {
    /// Byte offset of the transmit timestamp, which a sender writes last, just before sending.
    pub const TRANSMIT_TIME_OFFSET: usize = 40;

    /// Decodes the first 48 bytes; refuses short packets, versions other than 1–4 and modes 6 and 7.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::Truncated(bytes.len()))?;
        let version = (b[0] >> 3) & 0b111;
        if !(1..=4).contains(&version) {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let mode = Mode::from_bits(b[0]);
        if matches!(mode, Mode::Control | Mode::Private) {
            return Err(DecodeError::ControlMode(mode.to_bits()));
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let ts_at = |i: usize| NtpTimestamp::from_parts(u32_at(i), u32_at(i + 4));
        Ok(Self {
            leap: LeapIndicator::from_bits(b[0] >> 6),
            version,
            mode,
            stratum: b[1],
            poll: b[2] as i8,
            precision: b[3] as i8,
            root_delay: NtpShort::from_bits(u32_at(4)),
            root_dispersion: NtpShort::from_bits(u32_at(8)),
            reference_id: ReferenceId::from_bytes([b[12], b[13], b[14], b[15]]),
            reference_time: ts_at(16),
            origin_time: ts_at(24),
            receive_time: ts_at(32),
            transmit_time: ts_at(40),
        })
    }

    pub fn encode(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = (self.leap.to_bits() << 6) | ((self.version & 0b111) << 3) | self.mode.to_bits();
        out[1] = self.stratum;
        out[2] = self.poll as u8;
        out[3] = self.precision as u8;
        out[4..8].copy_from_slice(&self.root_delay.to_bits().to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.to_bits().to_be_bytes());
        out[12..16].copy_from_slice(&self.reference_id.to_bytes());
        out[16..24].copy_from_slice(&self.reference_time.to_bits().to_be_bytes());
        out[24..32].copy_from_slice(&self.origin_time.to_bits().to_be_bytes());
        out[32..40].copy_from_slice(&self.receive_time.to_bits().to_be_bytes());
        out[40..48].copy_from_slice(&self.transmit_time.to_bits().to_be_bytes());
    }

    /// The transmit timestamp of an encoded packet, read in place (`None`: too short).
    pub fn transmit_time_of(packet: &[u8]) -> Option<NtpTimestamp> {
        let field = packet.get(Self::TRANSMIT_TIME_OFFSET..Self::TRANSMIT_TIME_OFFSET + 8)?;
        Some(NtpTimestamp::from_bits(u64::from_be_bytes(field.try_into().ok()?)))
    }

    /// Overwrites the transmit timestamp of an encoded packet in place.
    pub fn stamp_transmit_time(packet: &mut [u8], transmit_time: NtpTimestamp) {
        let field = Self::TRANSMIT_TIME_OFFSET..Self::TRANSMIT_TIME_OFFSET + 8;
        if let Some(slot) = packet.get_mut(field) {
            slot.copy_from_slice(&transmit_time.to_bits().to_be_bytes());
        }
    }
}
