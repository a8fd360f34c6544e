//! NTS scenarios: KE messages both ways, cookies across key rotation, and a whole request and
//! answer with every tampering refused.

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
fn tampered_requests_and_foreign_cookies_get_nothing() {
    let ring = keyring();
    let cookie = ring.make_cookie(&session(), &[9; 16]);
    let uid = [0xab; 32];
    let request = client_request(&header(77), &uid, &cookie, 0, &session(), &[3; 16]);
    let mut tampered = request.clone();
    tampered[41] ^= 1;
    assert_eq!(ask(&tampered, &ring).0, Answer::Ignore(Ignored::Nts(NtsRefusal::BadAuthenticator)));
    let stranger = Keyring { current: ServerKey { id: 7, key: [0x99; KEY_LEN] }, previous: None };
    let foreign = stranger.make_cookie(&session(), &[9; 16]);
    let request = client_request(&header(78), &uid, &foreign, 0, &session(), &[3; 16]);
    assert_eq!(ask(&request, &ring).0, Answer::Ignore(Ignored::Nts(NtsRefusal::UnknownCookie)));
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
