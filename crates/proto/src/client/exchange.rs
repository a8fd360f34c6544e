//! One client/server exchange: a request whose transmit field is a random cookie (so the answer's
//! origin proves it answers us and leaks nothing of our clock), and the answer's checks and the
//! RFC 5905 offset and delay computed from the four timestamps.

use crate::auth::SymmetricKey;
use crate::packet::{
    DecodeError, HEADER_LEN, LeapIndicator, MAX_MAC_LEN, Mode, NtpHeader, NtpPacket, ReferenceId,
};
use crate::time::{NtpDuration, NtpShort, NtpTimestamp};

/// A mode-3 request. `cookie` goes out as the transmit timestamp and must come back as the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRequest {
    pub cookie: NtpTimestamp,
    pub version: u8,
    /// Our poll interval, log2 seconds, as a courtesy to the server.
    pub poll: i8,
    /// Our clock's precision, log2 seconds: sent in the request, and allowed for when the
    /// server's transmit time reads before its receive time.
    pub precision: i8,
    /// Sign the request with this key, and accept only answers signed by it.
    pub key: Option<SymmetricKey>,
}

/// An encoded request: the header, and a MAC when signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPacket {
    bytes: [u8; HEADER_LEN + MAX_MAC_LEN],
    len: usize,
}

impl std::ops::Deref for RequestPacket {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::ops::DerefMut for RequestPacket {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
}

impl ClientRequest {
    pub fn new(cookie: NtpTimestamp) -> Self {
        Self { cookie, version: 4, poll: 6, precision: DEFAULT_PRECISION, key: None }
    }

    /// The whole request: the header, signed when there is a key. The transmit field is the
    /// cookie, not a time, so the MAC can be computed now rather than at the send.
    pub fn encode_packet(&self) -> RequestPacket {
        let mut packet = RequestPacket { bytes: [0; HEADER_LEN + MAX_MAC_LEN], len: HEADER_LEN };
        if let Ok(header) = <&mut [u8; HEADER_LEN]>::try_from(&mut packet.bytes[..HEADER_LEN]) {
            self.encode(header);
        }
        if let Some(key) = &self.key {
            packet.len += key.mac_len();
            key.sign(&mut packet.bytes[..packet.len]);
        }
        packet
    }

    pub fn encode(&self, out: &mut [u8; HEADER_LEN]) {
        NtpHeader {
            leap: LeapIndicator::NoWarning,
            version: self.version,
            mode: Mode::Client,
            stratum: 0,
            poll: self.poll,
            precision: self.precision,
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            reference_id: ReferenceId::NONE,
            reference_time: NtpTimestamp::ZERO,
            origin_time: NtpTimestamp::ZERO,
            receive_time: NtpTimestamp::ZERO,
            transmit_time: self.cookie,
        }
        .encode(out);
    }
}

/// Why an answer carries no usable time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("not an NTP packet: {0}")]
    Malformed(DecodeError),
    #[error("answer has mode {0:?}, not a server answer")]
    UnexpectedMode(Mode),
    #[error(
        "answer does not match our request (origin timestamp differs): spoofed, stale or duplicate"
    )]
    OriginMismatch,
    #[error("kiss-o'-death {}", .0.as_ascii().unwrap_or("(unprintable)"))]
    Kiss(ReferenceId),
    #[error("answer has a zero receive or transmit timestamp")]
    ZeroTimestamp,
    #[error(
        "answer's timestamps are impossible (transmitted before received by more than the \
         precisions, or a negative delay)"
    )]
    ImpossibleTimestamps,
    #[error("answer is not signed by our key, or its MAC is wrong: forged or altered")]
    BadMac,
    #[error("the server does not accept our key (crypto-NAK)")]
    CryptoNak,
}

/// Most a root distance may be for the time to be usable, seconds (RFC 5905 MAXDIST).
pub(super) const MAX_ROOT_DISTANCE: f64 = 1.5;

/// A negative round-trip delay down to this much is rounding and clock slew, and counts as zero.
const DELAY_TOLERANCE: NtpDuration = NtpDuration::from_bits(1 << 22); // ~1 ms
/// Our precision when the caller does not say: a microsecond, log2 seconds.
const DEFAULT_PRECISION: i8 = -20;

/// One measurement from an answer: offset and delay, and the server's own state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Server clock minus our clock: positive when we are behind.
    pub offset: NtpDuration,
    /// Round-trip network delay, never negative.
    pub delay: NtpDuration,
    /// The answer's header (stratum, leap, reference, root delay and dispersion, ...).
    pub server: NtpHeader,
}

impl Sample {
    /// Whether the server's time is usable: see [`Sample::unusable_reason`].
    pub fn server_synchronised(&self) -> bool {
        self.unusable_reason().is_none()
    }

    /// Why the server's own header says its time should not be used: see [`unusable_reason`].
    pub fn unusable_reason(&self) -> Option<&'static str> {
        unusable_reason(&self.server)
    }

    /// Root distance: the most our clock could be from true time if it followed this sample;
    /// half the total round trip to the primary reference plus the dispersion on the way.
    pub fn root_distance(&self) -> NtpDuration {
        let delay_to_root = self.server.root_delay.to_duration().saturating_add(self.delay);
        NtpDuration::from_bits(delay_to_root.to_bits() / 2)
            .saturating_add(self.server.root_dispersion.to_duration())
            .saturating_add(NtpDuration::from_log2_seconds(self.server.precision))
    }
}

/// Why a server's header says its time should not be used (RFC 5905's header tests), or `None`
/// when it is usable: unsynchronised, stratum out of range, never synchronised, a reference time
/// after its transmit time, or a root distance beyond 1.5 s.
pub fn unusable_reason(server: &NtpHeader) -> Option<&'static str> {
    if server.leap == LeapIndicator::Unsynchronised {
        Some("the server says it is unsynchronised (leap indicator 3)")
    } else if !(1..16).contains(&server.stratum) {
        Some("the server's stratum is 16 or more (unsynchronised)")
    } else if server.reference_time.is_zero() {
        Some("the server has never been synchronised (zero reference time)")
    } else if (server.transmit_time - server.reference_time).is_negative() {
        Some("the server's reference time is later than its transmit time")
    } else if server.root_delay.to_seconds_f64() / 2.0 + server.root_dispersion.to_seconds_f64()
        > MAX_ROOT_DISTANCE
    {
        Some("the server's root distance exceeds 1.5 s")
    } else {
        None
    }
}

/// Checks an answer to `request` sent at `sent_at` (T1) and received at `received_at` (T4), and
/// computes offset = ((T2 − T1) + (T3 − T4)) / 2 and delay = (T4 − T1) − (T3 − T2).
///
/// A server fills the bits of its timestamps below its precision with noise (chronyd does, at
/// 2^-23 s), so a fast server's T3 often reads a little before its T2. Such a negative server
/// time no larger than the server's precision plus ours is measurement noise and counts as zero;
/// only beyond it is the answer impossible.
pub fn evaluate_response(
    request: &ClientRequest,
    sent_at: NtpTimestamp,
    response: &[u8],
    received_at: NtpTimestamp,
) -> Result<Sample, ResponseError> {
    let packet = NtpPacket::decode(response).map_err(ResponseError::Malformed)?;
    let header = packet.header;
    // Whether it answers us at all comes first: anything else is someone else's packet.
    if header.origin_time != request.cookie {
        return Err(ResponseError::OriginMismatch);
    }
    if let Some(key) = &request.key {
        match packet.mac {
            Some(mac) if mac.is_crypto_nak() => return Err(ResponseError::CryptoNak),
            Some(mac) if key.verify_packet(response, &mac) => {}
            _ => return Err(ResponseError::BadMac),
        }
    }
    if header.mode != Mode::Server {
        return Err(ResponseError::UnexpectedMode(header.mode));
    }
    if header.stratum == 0 {
        return Err(ResponseError::Kiss(header.reference_id));
    }
    if header.receive_time.is_zero() || header.transmit_time.is_zero() {
        return Err(ResponseError::ZeroTimestamp);
    }
    let (t1, t2, t3, t4) = (sent_at, header.receive_time, header.transmit_time, received_at);
    let noise = NtpDuration::from_log2_seconds(header.precision)
        .saturating_add(NtpDuration::from_log2_seconds(request.precision));
    let server_time = t3 - t2;
    if server_time < -noise {
        return Err(ResponseError::ImpossibleTimestamps);
    }
    let delay = (t4 - t1).saturating_sub(server_time.max(NtpDuration::ZERO));
    if delay < -DELAY_TOLERANCE {
        return Err(ResponseError::ImpossibleTimestamps);
    }
    let offset = NtpDuration::midpoint(t2 - t1, t3 - t4);
    Ok(Sample { offset, delay: delay.max(NtpDuration::ZERO), server: header })
}
