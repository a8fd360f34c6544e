//! Any bytes as an NTP packet to an NTS server: the answer never panics and is never longer than
//! the request (an NTS NAK is shorter); and any bytes as an answer to an NTS client: the check
//! never panics. A request whose first byte is 0 is instead built around a real cookie, with the
//! fuzzer's bytes as the unique identifier and a possibly damaged authenticator, to reach the
//! cryptographic checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syhub_ntp_proto::auth::KeyStore;
use syhub_ntp_proto::nts::SessionKeys;
use syhub_ntp_proto::nts::cookie::{Keyring, ServerKey};
use syhub_ntp_proto::nts::fields::{RANDOM_NEEDED, check_answer, client_request};
use syhub_ntp_proto::server::{Answer, SystemSnapshot, answer_nts};
use syhub_ntp_proto::{NtpDuration, NtpTimestamp};

fuzz_target!(|data: &[u8]| {
    let keyring = Keyring { current: ServerKey { id: 1, key: [7; 32] }, previous: None };
    let keys = SessionKeys { c2s: [1; 32], s2c: [2; 32] };
    let request = match data.split_first() {
        Some((0, rest)) if rest.len() >= 50 => {
            let mut header = [0u8; 48];
            header[0] = 0x23;
            let cookie = keyring.make_cookie(&keys, &[3; 16]);
            let placeholders = usize::from(rest[0] % 10);
            let mut packet =
                client_request(&header, &rest[1..33], &cookie, placeholders, &keys, &[4; 16]);
            // Damage one byte, anywhere, when the fuzzer says so.
            let at = usize::from(rest[33]) * 4 + usize::from(rest[34]);
            if rest[35] & 1 == 1 && at < packet.len() {
                packet[at] ^= rest[36] | 1;
            }
            packet
        }
        _ => data.to_vec(),
    };
    let now = NtpTimestamp::from_unix(1_764_000_000, 0);
    let system = SystemSnapshot::local_clock(10, -20, now - NtpDuration::from_seconds(5));
    let mut out = [0u8; 4096];
    let peer = std::net::IpAddr::from([10, 0, 0, 1]);
    let answer = answer_nts(
        &request,
        now,
        &system,
        &KeyStore::EMPTY,
        Some(&keyring),
        peer,
        || [9; RANDOM_NEEDED],
        &mut out,
    );
    match answer {
        Answer::Reply(reply) => {
            assert!(reply.len <= request.len(), "{} bytes answer {}", reply.len, request.len());
            reply.stamp_transmit_time(&mut out, now);
        }
        // The NTS NAK: a header and the unique identifier, shorter than the request.
        Answer::Kiss { len, .. } => {
            assert!(len < request.len(), "{len} bytes answer {}", request.len())
        }
        Answer::Ignore(_) => {}
    }
    let _ = check_answer(data, data.get(..32).unwrap_or(&[]), &keys);
});
