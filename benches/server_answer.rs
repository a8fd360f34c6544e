//! The hot path of serving one request: decode, answer, encode (ns per request), unsigned and
//! signed with each key type (check the request's MAC, sign the answer).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use syhub_ntp_proto::auth::KeyStore;
use syhub_ntp_proto::client::ClientRequest;
use syhub_ntp_proto::packet::HEADER_LEN;
use syhub_ntp_proto::server::{Answer, SystemSnapshot, answer, answer_with_keys};
use syhub_ntp_proto::{NtpDuration, NtpTimestamp};

fn server_answer(c: &mut Criterion) {
    let now = NtpTimestamp::from_unix(1_764_000_000, 0);
    let system = SystemSnapshot::local_clock(10, -23, now - NtpDuration::from_seconds(8));
    let mut request = [0u8; HEADER_LEN];
    ClientRequest::new(NtpTimestamp::from_bits(0x0123_4567_89ab_cdef)).encode(&mut request);
    let mut reply = [0u8; 2048];
    c.bench_function("decode → answer → encode (48-byte client request)", |b| {
        b.iter(|| {
            let answer = answer(black_box(&request), black_box(now), &system, &mut reply);
            if let Answer::Reply(prepared) = answer {
                prepared.stamp_transmit_time(&mut reply, now);
            }
            black_box(&reply);
        })
    });
}

fn signed_answer(c: &mut Criterion) {
    let now = NtpTimestamp::from_unix(1_764_000_000, 0);
    let system = SystemSnapshot::local_clock(10, -23, now - NtpDuration::from_seconds(8));
    let keys = KeyStore::parse(
        "1 MD5 bench-md5-key\n2 SHA1 00112233445566778899aabbccddeeff00112233\n\
         3 AES128CMAC 000102030405060708090a0b0c0d0e0f\n",
    )
    .unwrap();
    let peer = std::net::IpAddr::from([192, 168, 1, 20]);
    for key in keys.keys() {
        let mut client = ClientRequest::new(NtpTimestamp::from_bits(0x0123_4567_89ab_cdef));
        client.key = Some(*key);
        let request = client.encode_packet();
        let mut reply = [0u8; 2048];
        let name = format!("check MAC → answer → sign ({})", key.kind.name());
        c.bench_function(&name, |b| {
            b.iter(|| {
                let answer =
                    answer_with_keys(black_box(&request), now, &system, &keys, peer, &mut reply);
                let Answer::Reply(prepared) = answer else { panic!("not answered") };
                prepared.stamp_transmit_time(&mut reply, now);
                black_box(&reply);
            })
        });
    }
}

criterion_group!(benches, server_answer, signed_answer);
criterion_main!(benches);
