//! Scenario tests of the server's answer: what real clients send, and what must get no answer.

use super::*;
use crate::packet::{HEADER_LEN, LeapIndicator, Mode, NtpHeader, NtpPacket, ReferenceId};
use crate::time::{NtpDuration, NtpShort, NtpTimestamp};
use proptest::prelude::*;

fn now() -> NtpTimestamp {
    NtpTimestamp::from_unix(1_764_000_000, 123_456_789)
}

fn local_system() -> SystemSnapshot {
    SystemSnapshot::local_clock(10, -20, now() - NtpDuration::from_seconds(30))
}

fn request(version: u8, mode: Mode, transmit: NtpTimestamp) -> Vec<u8> {
    let header = NtpHeader {
        leap: LeapIndicator::Unsynchronised,
        version,
        mode,
        stratum: 0,
        poll: 4,
        precision: 0,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: ReferenceId::NONE,
        reference_time: NtpTimestamp::ZERO,
        origin_time: NtpTimestamp::ZERO,
        receive_time: NtpTimestamp::ZERO,
        transmit_time: transmit,
    };
    let mut out = [0; HEADER_LEN];
    header.encode(&mut out);
    out.to_vec()
}

fn answer_of(request: &[u8], system: &SystemSnapshot) -> (Answer, Vec<u8>) {
    let mut out = [0u8; 1024];
    let answer = answer(request, now(), system, &mut out);
    let len = match &answer {
        Answer::Reply(reply) => reply.len,
        Answer::Kiss { len, .. } => *len,
        Answer::Ignore(_) => 0,
    };
    (answer, out[..len].to_vec())
}

fn reply_header(request: &[u8], system: &SystemSnapshot) -> NtpHeader {
    let (answer, bytes) = answer_of(request, system);
    assert!(matches!(answer, Answer::Reply(_)), "expected a reply, got {answer:?}");
    NtpPacket::decode(&bytes).unwrap().header
}

#[test]
fn client_request_gets_a_server_reply_with_the_system_state() {
    let client_transmit = NtpTimestamp::from_parts(0xeb00_0000, 42);
    let reply = reply_header(&request(4, Mode::Client, client_transmit), &local_system());
    assert_eq!(reply.mode, Mode::Server);
    assert_eq!(reply.version, 4);
    assert_eq!(reply.leap, LeapIndicator::NoWarning);
    assert_eq!(reply.stratum, 10);
    assert_eq!(reply.reference_id, ReferenceId::LOCAL);
    assert_eq!(reply.precision, -20);
    assert_eq!(reply.poll, 4, "poll is copied from the request");
    assert_eq!(reply.origin_time, client_transmit);
    assert_eq!(reply.receive_time, now());
    assert_eq!(reply.reference_time, now() - NtpDuration::from_seconds(30));
    assert_eq!(reply.root_delay, NtpShort::ZERO);
    // Precision (2^-20 s) plus 30 s at 15 ppm = 1 µs + 450 µs.
    let dispersion = reply.root_dispersion.to_seconds_f64();
    assert!((dispersion - 451e-6).abs() < 20e-6, "root dispersion {dispersion}");
}

#[test]
fn versions_1_to_4_are_mirrored() {
    for version in 1..=4 {
        let reply = reply_header(&request(version, Mode::Client, now()), &local_system());
        assert_eq!(reply.version, version);
    }
}

#[test]
fn ntpv1_mode_0_is_answered_as_a_client_request_in_version_1() {
    let reply = reply_header(&request(1, Mode::Unspecified, now()), &local_system());
    assert_eq!((reply.version, reply.mode), (1, Mode::Server));
    let (answer, _) = answer_of(&request(3, Mode::Unspecified, now()), &local_system());
    assert!(matches!(answer, Answer::Ignore(Ignored::NotARequest { .. })));
}

#[test]
fn symmetric_active_gets_a_stateless_passive_reply() {
    let transmit = NtpTimestamp::from_parts(0xeb00_0001, 7);
    let reply = reply_header(&request(3, Mode::SymmetricActive, transmit), &local_system());
    assert_eq!(reply.mode, Mode::SymmetricPassive);
    assert_eq!(reply.version, 3);
    assert_eq!(reply.origin_time, transmit);
    assert_eq!(reply.receive_time, now());
}

#[test]
fn sntp_client_with_zero_transmit_time_gets_zero_origin() {
    let reply = reply_header(&request(4, Mode::Client, NtpTimestamp::ZERO), &local_system());
    assert_eq!(reply.origin_time, NtpTimestamp::ZERO);
}

#[test]
fn unsynchronised_server_says_so() {
    let system = SystemSnapshot::unsynchronised(-20);
    let reply = reply_header(&request(4, Mode::Client, now()), &system);
    assert_eq!(reply.leap, LeapIndicator::Unsynchronised);
    assert_eq!(reply.stratum, 16);
}

#[test]
fn non_requests_get_no_answer() {
    for mode in [Mode::SymmetricPassive, Mode::Server, Mode::Broadcast] {
        let (answer, bytes) = answer_of(&request(4, mode, now()), &local_system());
        assert!(matches!(answer, Answer::Ignore(Ignored::NotARequest { .. })), "{mode:?}");
        assert!(bytes.is_empty());
    }
    let mut control = request(2, Mode::Client, now());
    control[0] = (2 << 3) | 6; // ntpq readvar
    assert!(matches!(
        answer_of(&control, &local_system()).0,
        Answer::Ignore(Ignored::Malformed(_))
    ));
    control[0] = (2 << 3) | 7; // ntpdc monlist
    assert!(matches!(
        answer_of(&control, &local_system()).0,
        Answer::Ignore(Ignored::Malformed(_))
    ));
    let short = request(4, Mode::Client, now());
    assert!(matches!(answer_of(&short[..47], &local_system()).0, Answer::Ignore(_)));
}

#[test]
fn request_with_a_mac_gets_a_crypto_nak() {
    let mut bytes = request(4, Mode::Client, now());
    bytes.extend_from_slice(&5u32.to_be_bytes());
    bytes.extend_from_slice(&[0x77; 20]);
    let (answer, reply) = answer_of(&bytes, &local_system());
    assert!(matches!(answer, Answer::Reply(Reply { len: 52, .. })));
    let mac = NtpPacket::decode(&reply).unwrap().mac.unwrap();
    assert!(mac.is_crypto_nak());
    assert_eq!(mac.key_id, 0);
}

#[test]
fn transmit_time_is_stamped_by_the_caller() {
    let mut out = [0u8; 64];
    let Answer::Reply(reply) =
        answer(&request(4, Mode::Client, now()), now(), &local_system(), &mut out)
    else {
        panic!("no reply");
    };
    let later = now() + NtpDuration::from_nanos(20_000);
    reply.stamp_transmit_time(&mut out, later);
    let header = NtpPacket::decode(&out[..reply.len]).unwrap().header;
    assert_eq!(header.transmit_time, later);
    assert_eq!(header.receive_time, now());
    // Read in place, as the serving path reads a request's.
    assert_eq!(NtpHeader::transmit_time_of(&out[..reply.len]), Some(later));
    assert_eq!(NtpHeader::transmit_time_of(&out[..47]), None);
}

#[test]
fn too_small_output_buffer_is_refused_not_a_panic() {
    let mut out = [0u8; 40];
    let answer = answer(&request(4, Mode::Client, now()), now(), &local_system(), &mut out);
    assert_eq!(answer, Answer::Ignore(Ignored::BufferTooSmall));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_bytes_get_an_answer_no_longer_than_themselves_or_none(
        bytes in proptest::collection::vec(any::<u8>(), 0..200)
    ) {
        let mut out = [0u8; 256];
        if let Answer::Reply(reply) = answer(&bytes, now(), &local_system(), &mut out) {
            prop_assert!(reply.len <= bytes.len());
            let header = NtpPacket::decode(&out[..reply.len]).unwrap().header;
            prop_assert!(matches!(header.mode, Mode::Server | Mode::SymmetricPassive));
            prop_assert_eq!(header.version, NtpPacket::decode(&bytes).unwrap().header.version);
        }
    }
}

#[test]
fn a_kiss_of_death_carries_the_code_and_no_time() {
    let transmit = NtpTimestamp::from_parts(0xeb00_0002, 99);
    let mut out = [0u8; 64];
    let len = answer_kiss(&request(4, Mode::Client, transmit), ReferenceId::KISS_RATE, 6, &mut out)
        .unwrap();
    assert_eq!(len, 48);
    let header = NtpPacket::decode(&out[..len]).unwrap().header;
    assert_eq!(
        (header.stratum, header.leap, header.mode),
        (0, LeapIndicator::Unsynchronised, Mode::Server)
    );
    assert_eq!(header.reference_id, ReferenceId::KISS_RATE);
    assert_eq!(header.poll, 6, "the client's poll 4 is raised to ours");
    assert_eq!(
        (header.origin_time, header.receive_time, header.transmit_time),
        (transmit, transmit, transmit)
    );
    // Our own client reads it as the kiss it is.
    let client = crate::client::ClientRequest::new(transmit);
    assert_eq!(
        crate::client::evaluate_response(&client, transmit, &out[..len], transmit),
        Err(crate::client::ResponseError::Kiss(ReferenceId::KISS_RATE))
    );
    // Nothing for packets that get no answer at all.
    assert_eq!(
        answer_kiss(&request(4, Mode::Server, transmit), ReferenceId::KISS_DENY, 6, &mut out),
        None
    );
    assert_eq!(answer_kiss(&[0u8; 20], ReferenceId::KISS_DENY, 6, &mut out), None);
}

mod authenticated {
    use super::*;
    use crate::auth::{KeyStore, KeyType, SymmetricKey};
    use crate::packet::Mac;
    use std::net::IpAddr;

    const KEYS: &str = "1 SHA1 00112233445566778899aabbccddeeff00112233\n\
                        2 AES128CMAC 000102030405060708090a0b0c0d0e0f\n\
                        3 MD5 lan-only 10.0.0.0/8\n";

    fn lan() -> IpAddr {
        "10.0.0.9".parse().unwrap()
    }

    fn signed_request(key: &SymmetricKey) -> Vec<u8> {
        let mut packet = request(4, Mode::Client, now() - NtpDuration::from_seconds(1));
        packet.resize(HEADER_LEN + key.mac_len(), 0);
        key.sign(&mut packet);
        packet
    }

    fn ask(request: &[u8], peer: IpAddr) -> (Answer, Vec<u8>) {
        let keys = KeyStore::parse(KEYS).unwrap();
        let mut out = [0u8; 1024];
        let answer = answer_with_keys(request, now(), &local_system(), &keys, peer, &mut out);
        let len = match &answer {
            Answer::Reply(reply) => {
                reply.stamp_transmit_time(&mut out, now() + NtpDuration::from_seconds(1));
                reply.len
            }
            Answer::Kiss { len, .. } => *len,
            Answer::Ignore(_) => 0,
        };
        (answer, out[..len].to_vec())
    }

    #[test]
    fn a_trusted_key_gets_a_reply_signed_after_its_transmit_time() {
        let keys = KeyStore::parse(KEYS).unwrap();
        for id in [1, 2, 3] {
            let key = *keys.key(id).unwrap();
            let request = signed_request(&key);
            let (answer, reply) = ask(&request, lan());
            assert!(matches!(answer, Answer::Reply(_)), "key {id}: {answer:?}");
            assert_eq!(reply.len(), request.len(), "key {id}: never longer than the request");
            let packet = NtpPacket::decode(&reply).unwrap();
            let mac = packet.mac.unwrap();
            assert!(key.verify(&reply[..HEADER_LEN], &mac), "key {id}: reply MAC");
            assert_eq!(packet.header.transmit_time, now() + NtpDuration::from_seconds(1));
            assert_eq!(
                packet.header.origin_time,
                NtpPacket::decode(&request).unwrap().header.transmit_time
            );
        }
    }

    #[test]
    fn an_unknown_key_or_one_not_for_this_address_gets_a_crypto_nak() {
        let stranger = SymmetricKey::new(9, KeyType::Sha1, b"whatever").unwrap();
        let (_, reply) = ask(&signed_request(&stranger), lan());
        assert_eq!(reply.len(), HEADER_LEN + 4);
        assert!(NtpPacket::decode(&reply).unwrap().mac.unwrap().is_crypto_nak());

        let lan_only = *KeyStore::parse(KEYS).unwrap().key(3).unwrap();
        let outsider: IpAddr = "192.168.5.5".parse().unwrap();
        let (_, reply) = ask(&signed_request(&lan_only), outsider);
        assert!(NtpPacket::decode(&reply).unwrap().mac.unwrap().is_crypto_nak());
    }

    #[test]
    fn a_wrong_mac_gets_nothing() {
        let keys = KeyStore::parse(KEYS).unwrap();
        // Right id, wrong secret.
        let impostor = SymmetricKey::new(1, KeyType::Sha1, b"guessed").unwrap();
        let (answer, _) = ask(&signed_request(&impostor), lan());
        assert_eq!(answer, Answer::Ignore(Ignored::BadMac { key_id: 1 }));
        // Altered after signing.
        let mut altered = signed_request(keys.key(2).unwrap());
        altered[41] ^= 0x80;
        assert_eq!(ask(&altered, lan()).0, Answer::Ignore(Ignored::BadMac { key_id: 2 }));
        // A 16-byte digest for a SHA-1 key: the wrong length for the key's type.
        let mut short = request(4, Mode::Client, now());
        short.extend_from_slice(&1u32.to_be_bytes());
        short.extend_from_slice(&[0; 16]);
        assert!(Mac::decode(&short[HEADER_LEN..]).is_some());
        assert_eq!(ask(&short, lan()).0, Answer::Ignore(Ignored::BadMac { key_id: 1 }));
    }

    #[test]
    fn unsigned_requests_are_answered_plainly_with_keys_loaded() {
        let (answer, reply) = ask(&request(4, Mode::Client, now()), lan());
        assert!(matches!(
            answer,
            Answer::Reply(Reply { len: HEADER_LEN, sign_with: None, nts: None })
        ));
        assert_eq!(reply.len(), HEADER_LEN);
    }
}
