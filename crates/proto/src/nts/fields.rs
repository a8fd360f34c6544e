//! NTS extension fields in NTP packets (RFC 8915 section 5): the unique identifier, the cookie,
//! cookie placeholders and the authenticator with its encrypted fields; the server's check of a
//! request and its answer, sealed once the transmit time is in.

use super::cookie::{COOKIE_LEN, Keyring, NONCE_LEN, open, seal};
use super::{KEY_LEN, SessionKeys};
use crate::packet::{HEADER_LEN, NtpPacket};

pub const UNIQUE_IDENTIFIER: u16 = 0x0104;
pub const COOKIE: u16 = 0x0204;
pub const COOKIE_PLACEHOLDER: u16 = 0x0304;
pub const AUTHENTICATOR: u16 = 0x0404;
/// Most cookies a server returns at once.
pub const MAX_COOKIES: usize = 8;
/// Random bytes `answer_nts` needs: a nonce per cookie and one for the authenticator.
pub const RANDOM_NEEDED: usize = NONCE_LEN * (MAX_COOKIES + 1);

/// An NTS request's fields, borrowed from the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtsRequest<'a> {
    pub unique_id: &'a [u8],
    pub cookie: &'a [u8],
    /// Placeholders, asking for that many more cookies.
    pub placeholders: usize,
    /// Offset of the authenticator field: what it authenticates is everything before it.
    pub authenticator_at: usize,
    pub nonce: &'a [u8],
    pub ciphertext: &'a [u8],
}

/// Why an NTS request gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtsRefusal {
    /// Fields missing, repeated, of bad lengths, or the authenticator not last.
    Malformed(&'static str),
    /// A cookie we did not make, or made with a key long retired.
    UnknownCookie,
    /// The authenticator does not check: altered in transit or forged.
    BadAuthenticator,
}

/// The authenticator's body: nonce and ciphertext, each padded to a multiple of 4.
fn authenticator_parts(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let nonce_len = usize::from(u16::from_be_bytes(body.get(0..2)?.try_into().ok()?));
    let ciphertext_len = usize::from(u16::from_be_bytes(body.get(2..4)?.try_into().ok()?));
    let nonce = body.get(4..4 + nonce_len)?;
    let at = 4 + nonce_len.next_multiple_of(4);
    let ciphertext = body.get(at..at + ciphertext_len)?;
    Some((nonce, ciphertext))
}

/// A packet's extension fields, each with its offset in the packet.
fn located_fields<'a>(
    packet: &NtpPacket<'a>,
) -> impl Iterator<Item = (usize, crate::packet::ExtensionField<'a>)> + 'a {
    packet.extensions.iter().scan(HEADER_LEN, |offset, field| {
        let at = *offset;
        *offset += 4 + field.value.len();
        Some((at, field))
    })
}

/// The NTS fields of a decoded request; `None` when it has no unique identifier (not NTS).
pub fn parse_request<'a>(packet: &NtpPacket<'a>) -> Option<Result<NtsRequest<'a>, NtsRefusal>> {
    let mut unique_id = None;
    let mut cookie = None;
    let mut placeholders = 0;
    let mut authenticator = None;
    for (offset, field) in located_fields(packet) {
        if authenticator.is_some() {
            return Some(Err(NtsRefusal::Malformed("a field after the authenticator")));
        }
        match field.field_type {
            UNIQUE_IDENTIFIER if unique_id.is_none() => unique_id = Some(field.value),
            COOKIE if cookie.is_none() => cookie = Some(field.value),
            COOKIE_PLACEHOLDER => placeholders += 1,
            AUTHENTICATOR => authenticator = Some((offset, field.value)),
            UNIQUE_IDENTIFIER | COOKIE => {
                return Some(Err(NtsRefusal::Malformed("a unique identifier or cookie twice")));
            }
            _ => {}
        }
    }
    let unique_id = unique_id?;
    Some((|| {
        if unique_id.len() < 32 {
            return Err(NtsRefusal::Malformed("a unique identifier shorter than 32 bytes"));
        }
        let cookie = cookie.ok_or(NtsRefusal::Malformed("no cookie"))?;
        let (authenticator_at, body) =
            authenticator.ok_or(NtsRefusal::Malformed("no authenticator"))?;
        let (nonce, ciphertext) =
            authenticator_parts(body).ok_or(NtsRefusal::Malformed("a malformed authenticator"))?;
        Ok(NtsRequest { unique_id, cookie, placeholders, authenticator_at, nonce, ciphertext })
    })())
}

/// Checks an NTS request (its cookie and its authenticator) and returns the association's keys.
pub fn check_request(
    request: &NtsRequest<'_>,
    bytes: &[u8],
    keyring: &Keyring,
) -> Result<SessionKeys, NtsRefusal> {
    let keys = keyring.open_cookie(request.cookie).ok_or(NtsRefusal::UnknownCookie)?;
    let authenticated = &bytes[..request.authenticator_at];
    open(&keys.c2s, request.nonce, authenticated, request.ciphertext)
        .ok_or(NtsRefusal::BadAuthenticator)?;
    Ok(keys)
}

fn push_field(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    let padded = body.len().next_multiple_of(4);
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
}

/// What the caller does to an NTS answer once its transmit time is stamped: seal the fresh
/// cookies into the authenticator with the server-to-client key.
#[derive(Clone, PartialEq, Eq)]
pub struct NtsSeal {
    pub key: [u8; KEY_LEN],
    pub nonce: [u8; NONCE_LEN],
    /// Where the authenticator field starts in the answer.
    pub authenticator_at: usize,
    /// The encrypted fields to seal: the new cookies.
    pub plaintext: Vec<u8>,
}

impl std::fmt::Debug for NtsSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NtsSeal {{ authenticator_at: {} }}", self.authenticator_at)
    }
}

impl NtsSeal {
    /// The length of the answer once sealed.
    pub fn answer_len(&self) -> usize {
        self.authenticator_at + 4 + 4 + NONCE_LEN + (16 + self.plaintext.len()).next_multiple_of(4)
    }

    /// Writes the authenticator after `out[..authenticator_at]` (header and unique identifier,
    /// transmit time included), which it authenticates.
    pub fn seal_into(&self, out: &mut [u8]) {
        let sealed = seal(&self.key, &self.nonce, &out[..self.authenticator_at], &self.plaintext);
        let mut field = Vec::with_capacity(8 + NONCE_LEN + sealed.len());
        field.extend_from_slice(&(NONCE_LEN as u16).to_be_bytes());
        field.extend_from_slice(&(sealed.len() as u16).to_be_bytes());
        field.extend_from_slice(&self.nonce);
        field.extend_from_slice(&sealed);
        let mut encoded = Vec::with_capacity(4 + field.len());
        push_field(&mut encoded, AUTHENTICATOR, &field);
        if let Some(target) =
            out.get_mut(self.authenticator_at..self.authenticator_at + encoded.len())
        {
            target.copy_from_slice(&encoded);
        }
    }
}

/// The extension fields of the answer to a checked request: the unique identifier echoed, and the
/// seal that will hold one fresh cookie for the one used and one per placeholder (at most 8).
/// `random` supplies the nonces; `header_len` is where the fields start.
pub fn answer_fields(
    request: &NtsRequest<'_>,
    keys: &SessionKeys,
    keyring: &Keyring,
    random: &[u8; RANDOM_NEEDED],
) -> (Vec<u8>, NtsSeal) {
    let mut fields = Vec::with_capacity(4 + request.unique_id.len());
    push_field(&mut fields, UNIQUE_IDENTIFIER, request.unique_id);
    let count = (1 + request.placeholders).min(MAX_COOKIES);
    let mut plaintext = Vec::with_capacity(count * (4 + COOKIE_LEN));
    for nonce in random.chunks_exact(NONCE_LEN).skip(1).take(count) {
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().unwrap_or(&[0; NONCE_LEN]);
        push_field(&mut plaintext, COOKIE, &keyring.make_cookie(keys, nonce));
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&random[..NONCE_LEN]);
    let seal =
        NtsSeal { key: keys.s2c, nonce, authenticator_at: HEADER_LEN + fields.len(), plaintext };
    (fields, seal)
}

/// The extension fields of an NTS NAK (RFC 8915 section 5.7): the request's unique identifier,
/// echoed as it came, and nothing else (no cookie, no authenticator).
pub fn nak_fields(request: &NtsRequest<'_>) -> Vec<u8> {
    let mut fields = Vec::with_capacity(4 + request.unique_id.len().next_multiple_of(4));
    push_field(&mut fields, UNIQUE_IDENTIFIER, request.unique_id);
    fields
}

/// A client's NTS request: `header` (a mode-3 header whose transmit time is the client's cookie
/// against replay), the unique identifier, one cookie, `placeholders` more asked for, and the
/// authenticator (empty ciphertext) under the client-to-server key.
pub fn client_request(
    header: &[u8; HEADER_LEN],
    unique_id: &[u8],
    cookie: &[u8],
    placeholders: usize,
    keys: &SessionKeys,
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    let mut packet = header.to_vec();
    push_field(&mut packet, UNIQUE_IDENTIFIER, unique_id);
    push_field(&mut packet, COOKIE, cookie);
    for _ in 0..placeholders {
        push_field(&mut packet, COOKIE_PLACEHOLDER, &vec![0; cookie.len()]);
    }
    let sealed = seal(&keys.c2s, nonce, &packet, &[]);
    let mut body = Vec::with_capacity(4 + NONCE_LEN + sealed.len());
    body.extend_from_slice(&(NONCE_LEN as u16).to_be_bytes());
    body.extend_from_slice(&(sealed.len() as u16).to_be_bytes());
    body.extend_from_slice(nonce);
    body.extend_from_slice(&sealed);
    push_field(&mut packet, AUTHENTICATOR, &body);
    packet
}

/// Why a client refuses an NTS answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NtsAnswerError {
    #[error("the answer has no NTS fields")]
    NotNts,
    #[error("the answer's unique identifier is not ours: a replay or someone else's answer")]
    WrongUniqueId,
    #[error("the answer's authenticator does not check")]
    BadAuthenticator,
    #[error("the server refused our cookie (NTS NAK)")]
    Nak,
}

/// Checks an answer to a request with `unique_id` and returns the fresh cookies it carries.
pub fn check_answer(
    answer: &[u8],
    unique_id: &[u8],
    keys: &SessionKeys,
) -> Result<Vec<Vec<u8>>, NtsAnswerError> {
    let packet = NtpPacket::decode(answer).map_err(|_| NtsAnswerError::NotNts)?;
    let mut seen_id = None;
    let mut authenticator = None;
    for (offset, field) in located_fields(&packet) {
        match field.field_type {
            UNIQUE_IDENTIFIER => seen_id = Some(field.value),
            AUTHENTICATOR => authenticator = Some((offset, field.value)),
            _ => {}
        }
    }
    match seen_id {
        None => return Err(NtsAnswerError::NotNts),
        Some(id) if id.get(..unique_id.len()) != Some(unique_id) => {
            return Err(NtsAnswerError::WrongUniqueId);
        }
        _ => {}
    }
    // A kiss with the unique identifier and no authenticator is a NAK.
    let Some((at, body)) = authenticator else {
        return if packet.header.stratum == 0 {
            Err(NtsAnswerError::Nak)
        } else {
            Err(NtsAnswerError::BadAuthenticator)
        };
    };
    let (nonce, ciphertext) = authenticator_parts(body).ok_or(NtsAnswerError::BadAuthenticator)?;
    let plaintext = open(&keys.s2c, nonce, &answer[..at], ciphertext)
        .ok_or(NtsAnswerError::BadAuthenticator)?;
    // The encrypted fields: cookies.
    let mut cookies = Vec::new();
    let mut rest = plaintext.as_slice();
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if len < 4 || len > rest.len() {
            break;
        }
        if kind == COOKIE {
            cookies.push(rest[4..len].to_vec());
        }
        rest = &rest[len..];
    }
    Ok(cookies)
}
