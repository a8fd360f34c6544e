//! The server's answer to one request: a pure function of the request bytes, the time they were
//! received and the system state. The transmit timestamp is left for the caller to stamp just
//! before sending.

use super::SystemSnapshot;
use crate::auth::{KeyLookup, KeyStore, SymmetricKey};
use crate::nts::cookie::Keyring;
use crate::nts::fields::{
    NtsRefusal, NtsSeal, RANDOM_NEEDED, answer_fields, check_request, nak_fields, parse_request,
};
use crate::packet::{
    CRYPTO_NAK_LEN, DecodeError, HEADER_LEN, Mode, NtpHeader, NtpPacket, ReferenceId,
};
use crate::time::NtpShort;
use crate::time::NtpTimestamp;

/// What to do with a received packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send the first `len` bytes of the output buffer, after stamping its transmit time with
    /// [`Reply::stamp_transmit_time`].
    Reply(Reply),
    /// Send the first `len` bytes of the output buffer as they are: a kiss-o'-death that carries
    /// none of our time, so there is nothing to stamp. Today only the NTS NAK (`NTSN`).
    Kiss { len: usize, code: ReferenceId },
    /// Send nothing.
    Ignore(Ignored),
}

/// A reply written into the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub len: usize,
    /// The key that signed the request, which signs the reply once its transmit time is in.
    pub sign_with: Option<SymmetricKey>,
    /// For an NTS request: the authenticator to seal once the transmit time is in.
    pub nts: Option<Box<NtsSeal>>,
}

impl Reply {
    /// Writes the transmit timestamp, to be read from the clock as late as possible before
    /// sending, and then the MAC when the request was authenticated.
    pub fn stamp_transmit_time(&self, out: &mut [u8], transmit_time: NtpTimestamp) {
        NtpHeader::stamp_transmit_time(&mut out[..self.len], transmit_time);
        if let Some(key) = &self.sign_with {
            key.sign(&mut out[..self.len]);
        }
        if let Some(seal) = &self.nts {
            seal.seal_into(&mut out[..self.len]);
        }
    }
}

/// Why a packet gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    Malformed(DecodeError),
    /// A mode we do not answer (server, broadcast, passive, or mode 0 above version 1).
    NotARequest {
        mode: Mode,
        version: u8,
    },
    /// The MAC is by a key we trust but is wrong: forged or altered in transit. No time is sent.
    BadMac {
        key_id: u32,
    },
    /// An NTS request that does not check, or NTS when this server has no NTS keys.
    Nts(NtsRefusal),
    /// The output buffer cannot hold the reply (a caller bug, never the network's fault).
    BufferTooSmall,
}

/// The mode a request is answered in: client requests (mode 3, and mode 0 from NTPv1 clients,
/// which predate the mode field) get server replies, symmetric active requests (mode 1) stateless
/// symmetric passive ones; anything else is not a request.
fn reply_mode(request: &NtpHeader) -> Result<Mode, Ignored> {
    match (request.mode, request.version) {
        (Mode::Client, _) | (Mode::Unspecified, 1) => Ok(Mode::Server),
        (Mode::SymmetricActive, _) => Ok(Mode::SymmetricPassive),
        (mode, version) => Err(Ignored::NotARequest { mode, version }),
    }
}

/// Writes the reply header for `request` in `mode`: the system state, version and poll mirrored,
/// the request's transmit time as origin, and `received_at` as receive (and provisional transmit)
/// time. Returns `false` when `out` is shorter than a header.
fn write_reply_header(
    request: &NtpHeader,
    mode: Mode,
    received_at: NtpTimestamp,
    system: &SystemSnapshot,
    out: &mut [u8],
) -> bool {
    let Some(Ok(out)) = out.get_mut(..HEADER_LEN).map(<&mut [u8; HEADER_LEN]>::try_from) else {
        return false;
    };
    NtpHeader {
        leap: system.leap,
        version: request.version,
        mode,
        stratum: system.stratum,
        poll: request.poll,
        precision: system.precision,
        root_delay: NtpShort::from_duration_saturating(system.root_delay),
        root_dispersion: NtpShort::from_duration_saturating(system.root_dispersion_at(received_at)),
        reference_id: system.reference_id,
        // Never later than the receive time (clients discard such answers), even if the clock
        // was stepped back since the reference time was taken.
        reference_time: if (received_at - system.reference_time).is_negative() {
            received_at
        } else {
            system.reference_time
        },
        origin_time: request.transmit_time,
        receive_time: received_at,
        // Provisional: the caller stamps the real transmit time just before sending.
        transmit_time: received_at,
    }
    .encode(out);
    true
}

/// Answers one request received at `received_at`, writing the reply into `out`.
///
/// Client requests (mode 3, and mode 0 from NTPv1 clients, which predate the mode field) get a
/// server reply (mode 4); symmetric active requests (mode 1, sent by Windows `w32tm` in symmetric
/// mode) get a stateless symmetric passive reply (mode 2) with the same timestamps. The version and
/// poll are mirrored and the request's transmit time becomes the origin, even when it is zero, as
/// some SNTP clients send. A request carrying a MAC, which we cannot check without keys, gets a
/// crypto-NAK so the client knows not to trust the time. The reply is never longer than the request.
pub fn answer(
    request: &[u8],
    received_at: NtpTimestamp,
    system: &SystemSnapshot,
    out: &mut [u8],
) -> Answer {
    let nobody = std::net::IpAddr::from([0, 0, 0, 0]);
    answer_with_keys(request, received_at, system, &KeyStore::EMPTY, nobody, out)
}

/// [`answer`] with symmetric keys: a request signed by a key that `keys` trusts for `peer` and
/// whose MAC is right gets a reply signed by the same key (by
/// [`Reply::stamp_transmit_time`]); one signed by an unknown or untrusted key gets a
/// crypto-NAK; one whose MAC is wrong gets nothing. Requests without a MAC are answered as by
/// [`answer`]. A signed reply is as long as the request's header and MAC, never longer.
pub fn answer_with_keys(
    request: &[u8],
    received_at: NtpTimestamp,
    system: &SystemSnapshot,
    keys: &KeyStore,
    peer: std::net::IpAddr,
    out: &mut [u8],
) -> Answer {
    match NtpPacket::decode(request) {
        Ok(packet) => answer_packet(&packet, request, received_at, system, keys, peer, out),
        Err(error) => Answer::Ignore(Ignored::Malformed(error)),
    }
}

/// [`answer_with_keys`] for a request decoded already.
fn answer_packet(
    packet: &NtpPacket<'_>,
    request: &[u8],
    received_at: NtpTimestamp,
    system: &SystemSnapshot,
    keys: &KeyStore,
    peer: std::net::IpAddr,
    out: &mut [u8],
) -> Answer {
    let mode = match reply_mode(&packet.header) {
        Ok(mode) => mode,
        Err(ignored) => return Answer::Ignore(ignored),
    };
    // A crypto-NAK is a MAC with key id 0 and no digest; a signed reply's MAC is written last.
    let (mac_len, sign_with) = match packet.mac {
        Some(mac) if !mac.is_crypto_nak() => match keys.lookup(mac.key_id, peer) {
            KeyLookup::Usable(key) if key.verify_packet(request, &mac) => {
                (key.mac_len(), Some(*key))
            }
            KeyLookup::Usable(_) => return Answer::Ignore(Ignored::BadMac { key_id: mac.key_id }),
            KeyLookup::Unknown => (CRYPTO_NAK_LEN, None),
        },
        _ => (0, None),
    };
    let len = HEADER_LEN + mac_len;
    let Some(out) = out.get_mut(..len) else {
        return Answer::Ignore(Ignored::BufferTooSmall);
    };
    write_reply_header(&packet.header, mode, received_at, system, out);
    out[HEADER_LEN..].fill(0);
    Answer::Reply(Reply { len, sign_with, nts: None })
}

/// [`answer_with_keys`] for a server that also speaks NTS: a request with NTS fields is answered
/// only if its cookie is one of ours and its authenticator checks, with the unique identifier
/// echoed and fresh cookies (one per cookie and placeholder sent, at most 8) sealed with the
/// server-to-client key after the transmit time is stamped. The answer is as long as the request.
/// `random` gives the nonces; it is called only for a request that checked. A well-formed request
/// whose cookie we cannot open (made under a key we no longer have: the keys file was replaced
/// or lost, or the key retired) gets an NTS NAK, so its client fetches new cookies at once instead
/// of spending them all on silence; any other refusal gets nothing. Without a keyring an NTS
/// request gets no answer.
#[allow(clippy::too_many_arguments)]
pub fn answer_nts(
    request: &[u8],
    received_at: NtpTimestamp,
    system: &SystemSnapshot,
    keys: &KeyStore,
    keyring: Option<&Keyring>,
    peer: std::net::IpAddr,
    random: impl FnOnce() -> [u8; RANDOM_NEEDED],
    out: &mut [u8],
) -> Answer {
    let packet = match NtpPacket::decode(request) {
        Ok(packet) => packet,
        Err(error) => return Answer::Ignore(Ignored::Malformed(error)),
    };
    let nts = match parse_request(&packet) {
        None => return answer_packet(&packet, request, received_at, system, keys, peer, out),
        Some(Err(refusal)) => return Answer::Ignore(Ignored::Nts(refusal)),
        Some(Ok(nts)) => nts,
    };
    if packet.header.mode != Mode::Client || packet.mac.is_some() {
        let refusal = NtsRefusal::Malformed("not a plain client request");
        return Answer::Ignore(Ignored::Nts(refusal));
    }
    let Some(keyring) = keyring else {
        return Answer::Ignore(Ignored::Nts(NtsRefusal::UnknownCookie));
    };
    let session = match check_request(&nts, request, keyring) {
        Ok(session) => session,
        Err(NtsRefusal::UnknownCookie) => {
            return nts_nak(&packet.header, &nak_fields(&nts), request.len(), out);
        }
        Err(refusal) => return Answer::Ignore(Ignored::Nts(refusal)),
    };
    let (fields, seal) = answer_fields(&nts, &session, keyring, &random());
    let len = seal.answer_len();
    if len > request.len() {
        let refusal = NtsRefusal::Malformed("too few placeholders for the answer");
        return Answer::Ignore(Ignored::Nts(refusal));
    }
    if out.len() < len {
        return Answer::Ignore(Ignored::BufferTooSmall);
    }
    write_reply_header(&packet.header, Mode::Server, received_at, system, out);
    out[HEADER_LEN..HEADER_LEN + fields.len()].copy_from_slice(&fields);
    Answer::Reply(Reply { len, sign_with: None, nts: Some(Box::new(seal)) })
}

/// The NTS NAK (RFC 8915 section 5.7) to a request with `request` as header: a kiss-o'-death
/// with code `NTSN` followed by `fields` (the request's unique identifier, which the client checks
/// before it believes the NAK), not authenticated and with no cookies. Like every kiss it tells
/// nothing of our clock, and poll is the client's own. Shorter than the request (`request_len`),
/// which held a cookie and an authenticator besides the identifier.
fn nts_nak(request: &NtpHeader, fields: &[u8], request_len: usize, out: &mut [u8]) -> Answer {
    let len = HEADER_LEN + fields.len();
    if len > request_len {
        return Answer::Ignore(Ignored::Nts(NtsRefusal::Malformed("no room for a NAK")));
    }
    let Some(out) = out.get_mut(..len) else {
        return Answer::Ignore(Ignored::BufferTooSmall);
    };
    let (header, rest) = out.split_at_mut(HEADER_LEN);
    let Ok(header) = <&mut [u8; HEADER_LEN]>::try_from(header) else {
        return Answer::Ignore(Ignored::BufferTooSmall);
    };
    write_kiss_header(request, Mode::Server, ReferenceId::KISS_NTSN, request.poll, header);
    rest.copy_from_slice(fields);
    Answer::Kiss { len, code: ReferenceId::KISS_NTSN }
}

/// A kiss-o'-death (RFC 5905 section 7.4) for `request`: stratum 0, leap 3, `code` (`RATE`,
/// `DENY`, `RSTR`) as the reference id, and the request's own transmit time in every timestamp, so
/// it tells the client nothing of our clock. Version and mode are those of a normal answer; `poll`
/// (log2 seconds) is the least poll interval asked for, never less than the client's. Returns the
/// length written (48, never more than the request), or `None` when the packet would get no answer.
pub fn answer_kiss(request: &[u8], code: ReferenceId, poll: i8, out: &mut [u8]) -> Option<usize> {
    let packet = NtpPacket::decode(request).ok()?;
    let request_header = packet.header;
    let mode = reply_mode(&request_header).ok()?;
    let out: &mut [u8; HEADER_LEN] = out.get_mut(..HEADER_LEN)?.try_into().ok()?;
    write_kiss_header(&request_header, mode, code, request_header.poll.max(poll), out);
    Some(HEADER_LEN)
}

/// A kiss-o'-death header answering `request` in `mode`: leap 3, stratum 0, `code` as the
/// reference id, and the request's transmit time in every timestamp.
fn write_kiss_header(
    request: &NtpHeader,
    mode: Mode,
    code: ReferenceId,
    poll: i8,
    out: &mut [u8; HEADER_LEN],
) {
    let echo = request.transmit_time;
    NtpHeader {
        leap: crate::packet::LeapIndicator::Unsynchronised,
        version: request.version,
        mode,
        stratum: 0,
        poll,
        precision: 0,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: code,
        reference_time: NtpTimestamp::ZERO,
        origin_time: echo,
        receive_time: echo,
        transmit_time: echo,
    }
    .encode(out);
}
