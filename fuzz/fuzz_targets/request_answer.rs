//! Any bytes as a request, any server state, with and without symmetric keys: the answer and the
//! kiss-o'-death never panic, are never longer than the request (no amplification), and when
//! given are well-formed answers to it: the reply mode, the version mirrored, the request's
//! transmit time as origin; a signed answer verifies under the key that signed the request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use syhub_ntp_proto::auth::KeyStore;
use syhub_ntp_proto::packet::{HEADER_LEN, LeapIndicator, Mode, ReferenceId};
use syhub_ntp_proto::server::{Answer, SystemSnapshot, answer_kiss, answer_with_keys};
use syhub_ntp_proto::{NtpDuration, NtpHeader, NtpPacket, NtpTimestamp};

/// Bytes 0..26 choose the server's state and the receive time; the rest is the request.
/// 0: leap, 1: stratum, 2: precision, 3..7: reference id, 7: root delay, 8..16: reference time,
/// 16..24: receive time, 24: root dispersion, 25: its ceiling.
const STATE_LEN: usize = 26;

/// The keys the seeds sign with (ids 1 to 3), key 4 only for 10.0.0.0/8.
fn keys() -> &'static KeyStore {
    static KEYS: OnceLock<KeyStore> = OnceLock::new();
    KEYS.get_or_init(|| {
        KeyStore::parse(
            "1 SHA1 00112233445566778899aabbccddeeff00112233\n\
             2 AES128CMAC 000102030405060708090a0b0c0d0e0f\n\
             3 MD5 fuzzing-key\n\
             4 MD5 lan-only 10.0.0.0/8\n",
        )
        .expect("the fuzz keys parse")
    })
}

fn word(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

fn snapshot(state: &[u8]) -> SystemSnapshot {
    let leap = match state[0] & 3 {
        0 => LeapIndicator::NoWarning,
        1 => LeapIndicator::InsertSecond,
        2 => LeapIndicator::DeleteSecond,
        _ => LeapIndicator::Unsynchronised,
    };
    SystemSnapshot {
        leap,
        stratum: state[1],
        precision: state[2] as i8,
        reference_id: ReferenceId::from_bytes([state[3], state[4], state[5], state[6]]),
        reference_time: NtpTimestamp::from_bits(word(&state[8..16])),
        root_delay: NtpDuration::from_bits(i64::from(state[7]) << 24),
        root_dispersion: NtpDuration::from_bits(i64::from(state[24]) << 26),
        max_root_dispersion: NtpDuration::from_bits(i64::from(state[25]) << 30),
        smear: None,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < STATE_LEN {
        return;
    }
    let (state, request) = data.split_at(STATE_LEN);
    let system = snapshot(state);
    let received_at = NtpTimestamp::from_bits(word(&state[16..24]));
    let mut out = [0u8; 2048];
    // The peer: on the LAN or not, by one bit of the state.
    let peer =
        std::net::IpAddr::from(if state[0] & 4 == 0 { [10, 1, 2, 3] } else { [192, 0, 2, 1] });
    let keys = if state[0] & 8 == 0 { keys() } else { &KeyStore::EMPTY };

    let decoded = NtpPacket::decode(request).ok();
    let request_header = decoded.map(|p| p.header);
    if let Answer::Reply(reply) =
        answer_with_keys(request, received_at, &system, keys, peer, &mut out)
    {
        assert!(reply.len <= request.len(), "{} bytes answer {}", reply.len, request.len());
        reply.stamp_transmit_time(&mut out, received_at);
        let sent = NtpHeader::decode(&out[..reply.len]).expect("our answer decodes");
        let asked = request_header.expect("only a decodable request is answered");
        check_answers(&sent, &asked);
        assert_eq!(sent.receive_time, received_at);
        assert_eq!(sent.stratum, system.stratum);
        if let Some(key) = reply.sign_with {
            let mac = NtpPacket::decode(&out[..reply.len]).expect("decodes").mac.expect("a MAC");
            assert!(key.verify(&out[..HEADER_LEN], &mac), "our signed answer does not verify");
            let asked_mac = decoded.and_then(|p| p.mac).expect("only signed requests are signed");
            assert_eq!(asked_mac.key_id, key.id);
        }
    }

    let mut kiss = [0u8; 2048];
    if let Some(len) = answer_kiss(request, ReferenceId::KISS_RATE, 6, &mut kiss) {
        assert!(len <= request.len(), "a {len}-byte kiss for {} bytes", request.len());
        let sent = NtpHeader::decode(&kiss[..len]).expect("our kiss decodes");
        let asked = request_header.expect("only a decodable request is kissed");
        check_answers(&sent, &asked);
        assert_eq!((sent.stratum, sent.reference_id), (0, ReferenceId::KISS_RATE));
        assert!(sent.poll >= asked.poll);
    }
});

/// `sent` is a server's answer to `asked`.
fn check_answers(sent: &NtpHeader, asked: &NtpHeader) {
    let expected = match asked.mode {
        Mode::SymmetricActive => Mode::SymmetricPassive,
        Mode::Client | Mode::Unspecified => Mode::Server,
        other => panic!("a {other:?} packet was answered"),
    };
    assert_eq!(sent.mode, expected);
    assert_eq!(sent.version, asked.version);
    assert_eq!(sent.origin_time, asked.transmit_time);
}
