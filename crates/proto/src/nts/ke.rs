//! NTS-KE records (RFC 8915 section 4): the client's request and the server's response, each a
//! run of records ending with End of Message. A record: critical bit and 15-bit type, 16-bit body
//! length, body.

use super::{AEAD_AES_SIV_CMAC_256, PROTOCOL_NTPV4};

pub const END_OF_MESSAGE: u16 = 0;
pub const NEXT_PROTOCOL: u16 = 1;
pub const ERROR: u16 = 2;
pub const WARNING: u16 = 3;
pub const AEAD_ALGORITHM: u16 = 4;
pub const NEW_COOKIE: u16 = 5;
pub const SERVER: u16 = 6;
pub const PORT: u16 = 7;

/// Error codes a server sends.
pub const ERROR_UNRECOGNIZED_CRITICAL: u16 = 0;
pub const ERROR_BAD_REQUEST: u16 = 1;

/// Longest message either side accepts, bytes.
pub const MAX_MESSAGE: usize = 8192;

/// One record, borrowing its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub critical: bool,
    pub kind: u16,
    pub body: &'a [u8],
}

/// Whether `bytes` hold a whole message yet: records up to and including End of Message.
/// Returns its length, `Ok(None)` while more is needed, or an error for what can never be one.
pub fn message_len(bytes: &[u8]) -> Result<Option<usize>, KeError> {
    let mut offset = 0;
    while bytes.len() >= offset + 4 {
        let kind = u16::from_be_bytes([bytes[offset], bytes[offset + 1]]) & 0x7fff;
        let len = usize::from(u16::from_be_bytes([bytes[offset + 2], bytes[offset + 3]]));
        let end = offset + 4 + len;
        if end > MAX_MESSAGE {
            return Err(KeError::TooLong);
        }
        if bytes.len() < end {
            return Ok(None);
        }
        offset = end;
        if kind == END_OF_MESSAGE {
            return Ok(Some(offset));
        }
    }
    if offset > MAX_MESSAGE { Err(KeError::TooLong) } else { Ok(None) }
}

/// Splits a whole message into records (the last being End of Message).
pub fn records(message: &[u8]) -> Result<Vec<Record<'_>>, KeError> {
    let mut out = Vec::new();
    let mut rest = message;
    loop {
        if rest.len() < 4 {
            return Err(KeError::Truncated);
        }
        let word = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let body = rest.get(4..4 + len).ok_or(KeError::Truncated)?;
        let record = Record { critical: word & 0x8000 != 0, kind: word & 0x7fff, body };
        out.push(record);
        rest = &rest[4 + len..];
        if record.kind == END_OF_MESSAGE {
            return if rest.is_empty() { Ok(out) } else { Err(KeError::TrailingBytes) };
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeError {
    #[error("the message ends inside a record")]
    Truncated,
    #[error("bytes after End of Message")]
    TrailingBytes,
    #[error("the message is longer than 8192 bytes")]
    TooLong,
    #[error("record {0} is critical and not understood")]
    UnrecognizedCritical(u16),
    #[error("the request is malformed: {0}")]
    BadRequest(&'static str),
    #[error("the server reports error {0}")]
    ServerError(u16),
    #[error("the server offers no protocol or algorithm we speak")]
    NoCommonParameters,
}

impl KeError {
    /// The error code a server answers this with.
    pub fn code(&self) -> u16 {
        match self {
            Self::UnrecognizedCritical(_) => ERROR_UNRECOGNIZED_CRITICAL,
            _ => ERROR_BAD_REQUEST,
        }
    }
}

fn u16_list(body: &[u8]) -> Result<Vec<u16>, KeError> {
    if body.len() % 2 != 0 {
        return Err(KeError::BadRequest("a list of 16-bit values has an odd length"));
    }
    Ok(body.chunks(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect())
}

/// What a client asks for: whether it speaks NTPv4 and AES-SIV-CMAC-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeRequest {
    pub protocols: Vec<u16>,
    pub aeads: Vec<u16>,
}

impl KeRequest {
    /// Reads a client's message; unknown non-critical records are ignored.
    pub fn parse(message: &[u8]) -> Result<Self, KeError> {
        let mut protocols = None;
        let mut aeads = None;
        for record in records(message)? {
            match record.kind {
                END_OF_MESSAGE => {}
                NEXT_PROTOCOL if protocols.is_none() => protocols = Some(u16_list(record.body)?),
                AEAD_ALGORITHM if aeads.is_none() => aeads = Some(u16_list(record.body)?),
                NEXT_PROTOCOL | AEAD_ALGORITHM => {
                    return Err(KeError::BadRequest("a negotiation record appears twice"));
                }
                SERVER | PORT | NEW_COOKIE | WARNING | ERROR => {}
                other if record.critical => return Err(KeError::UnrecognizedCritical(other)),
                _ => {}
            }
        }
        let protocols = protocols.ok_or(KeError::BadRequest("no Next Protocol record"))?;
        Ok(Self { protocols, aeads: aeads.unwrap_or_default() })
    }

    /// The AEAD to use, if the request allows NTPv4 with one we have.
    pub fn chosen(&self) -> Option<u16> {
        (self.protocols.contains(&PROTOCOL_NTPV4) && self.aeads.contains(&AEAD_AES_SIV_CMAC_256))
            .then_some(AEAD_AES_SIV_CMAC_256)
    }

    /// The request a client sends.
    pub fn encode_client() -> Vec<u8> {
        let mut out = Vec::new();
        push(&mut out, true, NEXT_PROTOCOL, &PROTOCOL_NTPV4.to_be_bytes());
        push(&mut out, true, AEAD_ALGORITHM, &AEAD_AES_SIV_CMAC_256.to_be_bytes());
        push(&mut out, true, END_OF_MESSAGE, &[]);
        out
    }
}

/// Appends one record.
pub fn push(out: &mut Vec<u8>, critical: bool, kind: u16, body: &[u8]) {
    let word = kind | if critical { 0x8000 } else { 0 };
    out.extend_from_slice(&word.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// The server's answer: NTPv4 with `aead`, the cookies, and where to send NTP when it is not
/// the KE server's own address and port 123.
pub fn encode_response(
    aead: u16,
    cookies: &[Vec<u8>],
    server: Option<&str>,
    port: Option<u16>,
) -> Vec<u8> {
    let mut out = Vec::new();
    push(&mut out, true, NEXT_PROTOCOL, &PROTOCOL_NTPV4.to_be_bytes());
    push(&mut out, true, AEAD_ALGORITHM, &aead.to_be_bytes());
    for cookie in cookies {
        push(&mut out, false, NEW_COOKIE, cookie);
    }
    if let Some(server) = server {
        push(&mut out, true, SERVER, server.as_bytes());
    }
    if let Some(port) = port {
        push(&mut out, true, PORT, &port.to_be_bytes());
    }
    push(&mut out, true, END_OF_MESSAGE, &[]);
    out
}

/// An error response.
pub fn encode_error(code: u16) -> Vec<u8> {
    let mut out = Vec::new();
    push(&mut out, true, ERROR, &code.to_be_bytes());
    push(&mut out, true, END_OF_MESSAGE, &[]);
    out
}

/// What a server told a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeResponse {
    pub aead: u16,
    pub cookies: Vec<Vec<u8>>,
    pub server: Option<String>,
    pub port: Option<u16>,
}

impl KeResponse {
    pub fn parse(message: &[u8]) -> Result<Self, KeError> {
        let mut protocol = None;
        let mut aead = None;
        let mut cookies = Vec::new();
        let mut server = None;
        let mut port = None;
        for record in records(message)? {
            match record.kind {
                END_OF_MESSAGE | WARNING => {}
                ERROR => {
                    let code = u16_list(record.body)?.first().copied().unwrap_or(u16::MAX);
                    return Err(KeError::ServerError(code));
                }
                NEXT_PROTOCOL => protocol = u16_list(record.body)?.first().copied(),
                AEAD_ALGORITHM => aead = u16_list(record.body)?.first().copied(),
                NEW_COOKIE => cookies.push(record.body.to_vec()),
                SERVER => {
                    server = Some(
                        String::from_utf8(record.body.to_vec())
                            .map_err(|_| KeError::BadRequest("the server name is not text"))?,
                    );
                }
                PORT => port = u16_list(record.body)?.first().copied(),
                other if record.critical => return Err(KeError::UnrecognizedCritical(other)),
                _ => {}
            }
        }
        match (protocol, aead) {
            (Some(PROTOCOL_NTPV4), Some(AEAD_AES_SIV_CMAC_256)) if !cookies.is_empty() => {
                Ok(Self { aead: AEAD_AES_SIV_CMAC_256, cookies, server, port })
            }
            _ => Err(KeError::NoCommonParameters),
        }
    }
}
