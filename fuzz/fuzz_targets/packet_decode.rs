//! Any bytes: decoding never panics; what decodes encodes back to exactly those bytes, and its
//! extension fields cover their bytes exactly, each of a length RFC 7822 allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syhub_ntp_proto::NtpPacket;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = NtpPacket::decode(data) else { return };
    assert_eq!(packet.len(), data.len(), "decoded length");
    let mut out = vec![0u8; data.len()];
    assert_eq!(packet.encode(&mut out), Some(data.len()));
    assert_eq!(out, data, "re-encoding changed the packet");
    let mut covered = 0;
    for field in packet.extensions.iter() {
        let len = field.value.len() + 4;
        assert!(len >= 16 && len % 4 == 0, "an extension field of {len} bytes");
        covered += len;
    }
    assert_eq!(covered, packet.extensions.as_bytes().len());
});
