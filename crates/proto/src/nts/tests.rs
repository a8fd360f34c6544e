//! NTS scenarios: KE messages both ways, cookies across key rotation, and a whole request and
//! answer with every tampering refused, and the NTS NAK for cookies from before a key change.

use super::cookie::{COOKIE_LEN, Keyring, ServerKey};
use super::fields::*;
use super::ke::*;
use super::*;
use crate::client::ClientRequest;
use crate::packet::{HEADER_LEN, Mode, NtpHeader};
use crate::server::{Answer, Ignored, SystemSnapshot, answer_nts};
use crate::time::{NtpDuration, NtpTimestamp};

fn keyring() -> Keyring {
    Keyring { current: ServerKey { id: 7, key: [0x42; KEY_LEN] }, previous: None }
}

fn session() -> SessionKeys {
    SessionKeys { c2s: [1; KEY_LEN], s2c: [2; KEY_LEN] }
}

#[test]
fn ke_messages_round_trip_and_refuse_what_they_must() {
    let request = KeRequest::parse(&KeRequest::encode_client()).unwrap();
    assert_eq!(request.chosen(), Some(AEAD_AES_SIV_CMAC_256));
    let cookies = vec![vec![1; 104], vec![2; 104]];
    let response = encode_response(AEAD_AES_SIV_CMAC_256, &cookies, Some("hub.lan"), Some(123));
    let parsed = KeResponse::parse(&response).unwrap();
    assert_eq!(
        (parsed.cookies, parsed.server.as_deref(), parsed.port),
        (cookies, Some("hub.lan"), Some(123))
    );
    assert_eq!(KeResponse::parse(&encode_error(ERROR_BAD_REQUEST)), Err(KeError::ServerError(1)));

    // An unknown critical record, a truncated message, bytes after the end.
    let mut unknown = Vec::new();
    push(&mut unknown, true, 1, &[0, 0]);
    push(&mut unknown, true, 99, &[]);
    push(&mut unknown, true, END_OF_MESSAGE, &[]);
    assert_eq!(KeRequest::parse(&unknown), Err(KeError::UnrecognizedCritical(99)));
    let whole = KeRequest::encode_client();
    assert_eq!(KeRequest::parse(&whole[..whole.len() - 2]), Err(KeError::Truncated));
    let mut trailing = whole.clone();
    trailing.push(0);
    assert_eq!(KeRequest::parse(&trailing), Err(KeError::TrailingBytes));
    // A message arriving in pieces is complete only at End of Message.
    assert_eq!(message_len(&whole[..5]), Ok(None));
    assert_eq!(message_len(&whole), Ok(Some(whole.len())));
}

#[test]
fn cookies_open_under_the_current_and_previous_key_only() {
    let mut ring = keyring();
    let cookie = ring.make_cookie(&session(), &[9; 16]);
    assert_eq!(cookie.len(), COOKIE_LEN);
    assert_eq!(cookie.len() % 4, 0);
    assert_eq!(ring.open_cookie(&cookie), Some(session()));
    let mut altered = cookie.clone();
    altered[30] ^= 1;
    assert_eq!(ring.open_cookie(&altered), None);
    ring.rotate([0x43; KEY_LEN]);
    assert_eq!(ring.open_cookie(&cookie), Some(session()), "previous key");
    ring.rotate([0x44; KEY_LEN]);
    assert_eq!(ring.open_cookie(&cookie), None, "retired key");
    assert_eq!(Keyring::from_text(&ring.to_text()), Some(ring));
}

fn header(transmit: u64) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    ClientRequest::new(NtpTimestamp::from_bits(transmit)).encode(&mut out);
    out
}

fn ask(request: &[u8], ring: &Keyring) -> (Answer, Vec<u8>) {
    let now = NtpTimestamp::from_unix(1_764_000_000, 0);
    let system = SystemSnapshot::local_clock(10, -20, now - NtpDuration::from_seconds(5));
    let random = [0x5a; RANDOM_NEEDED];
    let mut out = [0u8; 2048];
    let peer = std::net::IpAddr::from([10, 0, 0, 2]);
    let keys = crate::auth::KeyStore::EMPTY;
    let answer = answer_nts(request, now, &system, &keys, Some(ring), peer, || random, &mut out);
    let len = match &answer {
        Answer::Reply(reply) => {
            reply.stamp_transmit_time(&mut out, now + NtpDuration::from_seconds(1));
            reply.len
        }
        Answer::Kiss { len, .. } => *len,
        Answer::Ignore(_) => 0,
    };
    (answer, out[..len].to_vec())
}

#[test]
fn an_nts_request_gets_an_authenticated_answer_with_fresh_cookies() {
    let ring = keyring();
    let cookie = ring.make_cookie(&session(), &[9; 16]);
    let uid = [0xab; 32];
    let request = client_request(&header(77), &uid, &cookie, 3, &session(), &[3; 16]);
    let (answer, reply) = ask(&request, &ring);
    assert!(matches!(answer, Answer::Reply(_)), "{answer:?}");
    assert_eq!(reply.len(), request.len(), "the answer is exactly as long as the request");
    let cookies = check_answer(&reply, &uid, &session()).unwrap();
    assert_eq!(cookies.len(), 4, "one for the cookie used, one per placeholder");
    for fresh in &cookies {
        assert_eq!(ring.open_cookie(fresh), Some(session()));
    }
    let decoded = NtpHeader::decode(&reply).unwrap();
    assert_eq!((decoded.mode, decoded.origin_time.to_bits()), (Mode::Server, 77));
    // The client refuses the answer for another request, and one altered on the way.
    assert_eq!(check_answer(&reply, &[0xcd; 32], &session()), Err(NtsAnswerError::WrongUniqueId));
    let mut altered = reply.clone();
    altered[44] ^= 1;
    assert_eq!(check_answer(&altered, &uid, &session()), Err(NtsAnswerError::BadAuthenticator));
}

#[test]
fn tampered_requests_get_nothing() {
    let ring = keyring();
    let cookie = ring.make_cookie(&session(), &[9; 16]);
    let uid = [0xab; 32];
    let request = client_request(&header(77), &uid, &cookie, 0, &session(), &[3; 16]);
    let mut tampered = request.clone();
    tampered[41] ^= 1;
    assert_eq!(ask(&tampered, &ring).0, Answer::Ignore(Ignored::Nts(NtsRefusal::BadAuthenticator)));
    // The wrong client key: the authenticator fails.
    let wrong = SessionKeys { c2s: [9; KEY_LEN], s2c: [2; KEY_LEN] };
    let request = client_request(&header(79), &uid, &cookie, 0, &wrong, &[3; 16]);
    assert_eq!(ask(&request, &ring).0, Answer::Ignore(Ignored::Nts(NtsRefusal::BadAuthenticator)));
    // A short unique identifier.
    let request = client_request(&header(80), &[1; 16], &cookie, 0, &session(), &[3; 16]);
    assert!(matches!(
        ask(&request, &ring).0,
        Answer::Ignore(Ignored::Nts(NtsRefusal::Malformed(_)))
    ));
}

/// The NTS NAK's bytes, checked one by one against the request it answers.
fn assert_is_nak(nak: &[u8], request: &[u8], uid_field_len: usize) {
    assert_eq!(nak.len(), HEADER_LEN + uid_field_len, "a header and the unique identifier");
    assert!(nak.len() < request.len(), "{} bytes answer {}", nak.len(), request.len());
    // Leap 3 (unsynchronised), version 4, mode 4 (server); stratum 0; the client's poll.
    assert_eq!(nak[0], 0b11_100_100);
    assert_eq!(nak[1], 0, "stratum");
    assert_eq!(nak[2], request[2], "poll");
    assert_eq!(&nak[12..16], b"NTSN", "kiss code");
    // No time of ours: reference time zero, the request's transmit time everywhere else.
    assert_eq!(&nak[16..24], &[0; 8]);
    for at in [24, 32, 40] {
        assert_eq!(&nak[at..at + 8], &request[40..48], "timestamp at byte {at}");
    }
    // The unique identifier field echoed byte for byte (it is the request's first field).
    assert_eq!(&nak[HEADER_LEN..], &request[HEADER_LEN..HEADER_LEN + uid_field_len]);
    assert_eq!(u16::from_be_bytes([nak[48], nak[49]]), UNIQUE_IDENTIFIER);
    // Nothing else: no cookie, no authenticator.
    let packet = crate::packet::NtpPacket::decode(nak).unwrap();
    let kinds: Vec<u16> = packet.extensions.iter().map(|f| f.field_type).collect();
    assert_eq!(kinds, [UNIQUE_IDENTIFIER]);
}

#[test]
fn a_cookie_from_before_a_key_change_gets_an_nts_nak() {
    let ring = keyring();
    let cookie = ring.make_cookie(&session(), &[9; 16]);
    let uid: Vec<u8> = (0..32).map(|i| 0xa0 ^ i).collect();
    let request =
        client_request(&header(0x1234_5678_9abc_def0), &uid, &cookie, 2, &session(), &[3; 16]);

    // The keys file replaced (a new keyring) or the key retired by two rotations.
    let replaced = Keyring { current: ServerKey { id: 1, key: [0x99; KEY_LEN] }, previous: None };
    let mut rotated = ring.clone();
    rotated.rotate([0x43; KEY_LEN]);
    rotated.rotate([0x44; KEY_LEN]);
    for ring in [&replaced, &rotated] {
        let (answer, nak) = ask(&request, ring);
        assert_eq!(answer, Answer::Kiss { len: 84, code: crate::packet::ReferenceId::KISS_NTSN });
        assert_is_nak(&nak, &request, 36);
        // Our own client reads it as a NAK: it keys again.
        assert_eq!(check_answer(&nak, &uid, &session()), Err(NtsAnswerError::Nak));
    }

    // A longer identifier, not a multiple of 4: echoed with its padding, as it came.
    let uid = [0x77; 45];
    let request = client_request(&header(5), &uid, &cookie, 0, &session(), &[3; 16]);
    let (answer, nak) = ask(&request, &replaced);
    assert!(matches!(answer, Answer::Kiss { len: 100, .. }), "{answer:?}");
    assert_is_nak(&nak, &request, 52);

    // A cookie of a length we never make, or altered inside: not ours either.
    let mut altered = cookie.clone();
    altered[30] ^= 1;
    for cookie in [altered, vec![0x55; 64]] {
        let request = client_request(&header(6), &[1; 32], &cookie, 0, &session(), &[3; 16]);
        let (answer, nak) = ask(&request, &ring);
        assert!(matches!(answer, Answer::Kiss { .. }), "{answer:?}");
        assert_is_nak(&nak, &request, 36);
    }
}

#[test]
fn malformed_nts_requests_get_no_nak() {
    let replaced = Keyring { current: ServerKey { id: 1, key: [0x99; KEY_LEN] }, previous: None };
    let cookie = keyring().make_cookie(&session(), &[9; 16]);
    let good = client_request(&header(7), &[1; 32], &cookie, 0, &session(), &[3; 16]);
    let silent = |request: &[u8]| {
        let (answer, bytes) = ask(request, &replaced);
        assert!(matches!(answer, Answer::Ignore(Ignored::Nts(_))), "{answer:?}");
        assert!(bytes.is_empty());
    };
    // A unique identifier shorter than 32 bytes.
    silent(&client_request(&header(7), &[1; 16], &cookie, 0, &session(), &[3; 16]));
    // No cookie: the unique identifier and the authenticator alone.
    let uid_end = HEADER_LEN + 36;
    let cookie_end = uid_end + 4 + COOKIE_LEN;
    let mut no_cookie = good[..uid_end].to_vec();
    no_cookie.extend_from_slice(&good[cookie_end..]);
    silent(&no_cookie);
    // No authenticator.
    silent(&good[..cookie_end]);
    // A server-mode packet, or one with a MAC after the fields.
    let mut server_mode = good.clone();
    server_mode[0] = 0x24;
    silent(&server_mode);
    let mut with_mac = good.clone();
    with_mac.extend_from_slice(&[0, 0, 0, 1]);
    with_mac.extend_from_slice(&[0; 16]);
    let (answer, _) = ask(&with_mac, &replaced);
    assert!(!matches!(answer, Answer::Kiss { .. }), "{answer:?}");
    // The cookie twice.
    let mut twice = good[..cookie_end].to_vec();
    twice.extend_from_slice(&good[uid_end..]);
    silent(&twice);
}
