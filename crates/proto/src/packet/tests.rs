//! Codec tests: known layouts, malformed input, and property tests that any bytes decode or are
//! refused without a panic, and that what decodes encodes back to the same bytes.

use super::*;
use crate::time::{NtpShort, NtpTimestamp};
use proptest::prelude::*;

fn sample_header(version: u8, mode: Mode) -> NtpHeader {
    NtpHeader {
        leap: LeapIndicator::Unsynchronised,
        version,
        mode,
        stratum: 0,
        poll: 6,
        precision: -20,
        root_delay: NtpShort::from_bits(0x0001_0000),
        root_dispersion: NtpShort::from_bits(0x0000_8000),
        reference_id: ReferenceId::LOCAL,
        reference_time: NtpTimestamp::from_parts(1, 2),
        origin_time: NtpTimestamp::from_parts(3, 4),
        receive_time: NtpTimestamp::from_parts(5, 6),
        transmit_time: NtpTimestamp::from_parts(0xe000_0000, 0x8000_0000),
    }
}

fn encode_header(header: &NtpHeader) -> Vec<u8> {
    let mut out = [0u8; HEADER_LEN];
    header.encode(&mut out);
    out.to_vec()
}

fn extension(field_type: u16, len: usize) -> Vec<u8> {
    let mut field = vec![0xAB; len];
    field[..2].copy_from_slice(&field_type.to_be_bytes());
    field[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    field
}

#[test]
fn header_layout_matches_rfc_5905() {
    let bytes = encode_header(&sample_header(4, Mode::Client));
    assert_eq!(bytes[0], 0b11_100_011, "LI=3, VN=4, mode=3");
    assert_eq!(bytes[2], 6);
    assert_eq!(bytes[3] as i8, -20);
    assert_eq!(&bytes[4..8], &[0, 1, 0, 0]);
    assert_eq!(&bytes[12..16], b"LOCL");
    assert_eq!(&bytes[40..44], &[0xe0, 0, 0, 0]);
    let decoded = NtpPacket::decode(&bytes).unwrap();
    assert_eq!(decoded.header, sample_header(4, Mode::Client));
    assert!(decoded.extensions.is_empty());
    assert_eq!(decoded.mac, None);
}

#[test]
fn every_version_from_1_to_4_decodes_and_others_are_refused() {
    for version in 1..=4 {
        let bytes = encode_header(&sample_header(version, Mode::Client));
        assert_eq!(NtpPacket::decode(&bytes).unwrap().header.version, version);
    }
    for version in [0, 5, 6, 7] {
        let mut bytes = encode_header(&sample_header(4, Mode::Client));
        bytes[0] = (bytes[0] & !0b0011_1000) | (version << 3);
        assert_eq!(NtpPacket::decode(&bytes), Err(DecodeError::UnsupportedVersion(version)));
    }
}

#[test]
fn short_packets_and_control_modes_are_refused() {
    let bytes = encode_header(&sample_header(4, Mode::Client));
    assert_eq!(NtpPacket::decode(&bytes[..47]), Err(DecodeError::Truncated(47)));
    assert_eq!(NtpPacket::decode(&[]), Err(DecodeError::Truncated(0)));
    for mode in [Mode::Control, Mode::Private] {
        let bytes = encode_header(&sample_header(2, mode));
        assert_eq!(NtpPacket::decode(&bytes), Err(DecodeError::ControlMode(mode.to_bits())));
    }
}

#[test]
fn mac_lengths_are_recognised() {
    for (mac_len, digest_len) in [(4, 0), (20, 16), (24, 20)] {
        let mut bytes = encode_header(&sample_header(4, Mode::Client));
        bytes.extend_from_slice(&7u32.to_be_bytes());
        bytes.extend(std::iter::repeat_n(0x5A, mac_len - 4));
        let packet = NtpPacket::decode(&bytes).unwrap();
        let mac = packet.mac.unwrap();
        assert_eq!(mac.key_id, 7);
        assert_eq!(mac.digest.len(), digest_len);
        assert_eq!(mac.is_crypto_nak(), digest_len == 0);
    }
    let mut bytes = encode_header(&sample_header(4, Mode::Client));
    bytes.extend_from_slice(&[0; 8]);
    assert_eq!(NtpPacket::decode(&bytes), Err(DecodeError::BadTrailer(8)));
}

#[test]
fn extension_fields_are_parsed_and_kept() {
    let mut bytes = encode_header(&sample_header(4, Mode::Client));
    bytes.extend(extension(0x0104, 36)); // NTS unique identifier
    bytes.extend(extension(0x0204, 16));
    bytes.extend(extension(0x0404, 40));
    let packet = NtpPacket::decode(&bytes).unwrap();
    let fields: Vec<_> = packet.extensions.iter().collect();
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[0].field_type, 0x0104);
    assert_eq!(fields[0].value.len(), 32);
    assert_eq!(fields[1].value.len(), 12);
    assert_eq!(packet.mac, None);
    let mut out = vec![0; bytes.len()];
    assert_eq!(packet.encode(&mut out), Some(bytes.len()));
    assert_eq!(out, bytes);
}

#[test]
fn extension_field_followed_by_a_mac() {
    let mut bytes = encode_header(&sample_header(4, Mode::Client));
    bytes.extend(extension(0x2005, 16));
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(&[9; 16]);
    let packet = NtpPacket::decode(&bytes).unwrap();
    assert_eq!(packet.extensions.iter().count(), 1);
    assert_eq!(packet.mac.unwrap().key_id, 1);
}

#[test]
fn malformed_extension_fields_are_refused() {
    let cases: [(&str, Vec<u8>); 3] = [
        ("length not a multiple of 4", extension(1, 30)),
        ("length below 16", {
            let mut f = extension(1, 32);
            f[3] = 12;
            f
        }),
        ("length beyond the packet", {
            let mut f = extension(1, 32);
            f[3] = 64;
            f
        }),
    ];
    for (what, trailer) in cases {
        let mut bytes = encode_header(&sample_header(4, Mode::Client));
        bytes.extend(trailer);
        assert!(
            matches!(NtpPacket::decode(&bytes), Err(DecodeError::MalformedExtension { .. })),
            "{what}"
        );
    }
}

#[test]
fn short_last_field_without_a_mac_is_refused() {
    let mut bytes = encode_header(&sample_header(4, Mode::Client));
    bytes.extend(extension(1, 28));
    bytes.extend(extension(2, 16));
    assert_eq!(NtpPacket::decode(&bytes), Err(DecodeError::BadTrailer(16)));
}

#[test]
fn version_3_has_no_extension_fields_only_a_mac() {
    let mut bytes = encode_header(&sample_header(3, Mode::Client));
    bytes.extend_from_slice(&[0, 0, 0, 1]);
    bytes.extend_from_slice(&[3; 16]);
    assert_eq!(NtpPacket::decode(&bytes).unwrap().mac.unwrap().key_id, 1);
    let mut bytes = encode_header(&sample_header(3, Mode::Client));
    bytes.extend(extension(1, 32));
    assert_eq!(NtpPacket::decode(&bytes), Err(DecodeError::BadTrailer(32)));
}

fn arb_header() -> impl Strategy<Value = NtpHeader> {
    (
        (0u8..4, 1u8..=4, prop_oneof![0u8..6], any::<u8>(), any::<i8>(), any::<i8>()),
        (any::<u32>(), any::<u32>(), any::<[u8; 4]>()),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
    )
        .prop_map(
            |((li, vn, mode, stratum, poll, precision), (rd, rdisp, id), (r, o, rx, tx))| {
                NtpHeader {
                    leap: LeapIndicator::from_bits(li),
                    version: vn,
                    mode: Mode::from_bits(mode),
                    stratum,
                    poll,
                    precision,
                    root_delay: NtpShort::from_bits(rd),
                    root_dispersion: NtpShort::from_bits(rdisp),
                    reference_id: ReferenceId::from_bytes(id),
                    reference_time: NtpTimestamp::from_bits(r),
                    origin_time: NtpTimestamp::from_bits(o),
                    receive_time: NtpTimestamp::from_bits(rx),
                    transmit_time: NtpTimestamp::from_bits(tx),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_bytes_decode_or_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(packet) = NtpPacket::decode(&bytes) {
            // What decodes encodes back to exactly the bytes it came from.
            let mut out = vec![0; bytes.len()];
            prop_assert_eq!(packet.encode(&mut out), Some(bytes.len()));
            prop_assert_eq!(out, bytes);
        }
    }

    #[test]
    fn headers_round_trip(header in arb_header()) {
        let bytes = encode_header(&header);
        let packet = NtpPacket::decode(&bytes).unwrap();
        prop_assert_eq!(packet.header, header);
    }

    #[test]
    fn packets_with_extensions_and_mac_round_trip(
        header in arb_header(),
        fields in proptest::collection::vec((any::<u16>(), 4usize..20), 0..4),
        mac in prop_oneof![Just(0usize), Just(4), Just(20), Just(24)],
    ) {
        let mut header = header;
        header.version = 4;
        let mut bytes = encode_header(&header);
        let count = fields.len();
        for (i, (field_type, words)) in fields.into_iter().enumerate() {
            // The last field must reach 28 bytes when no MAC follows, and field plus crypto-NAK
            // must exceed the 24 bytes of the longest MAC to be told apart from one.
            let min_words = match (i + 1 == count, mac) {
                (true, 0) => 7,
                (true, 4) => 6,
                _ => 4,
            };
            bytes.extend(extension(field_type, 4 * words.max(min_words)));
        }
        bytes.extend(std::iter::repeat_n(0x11, mac));
        let packet = NtpPacket::decode(&bytes).unwrap();
        prop_assert_eq!(packet.extensions.iter().count(), count);
        prop_assert_eq!(packet.mac.map(|m| m.encoded_len()).unwrap_or(0), mac);
        let mut out = vec![0; bytes.len()];
        prop_assert_eq!(packet.encode(&mut out), Some(bytes.len()));
        prop_assert_eq!(out, bytes);
    }
}
