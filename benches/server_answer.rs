//! The hot path of serving one request: decode, answer, encode (ns per request).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use syhub_ntp_proto::client::ClientRequest;
use syhub_ntp_proto::packet::HEADER_LEN;
use syhub_ntp_proto::server::{Answer, SystemSnapshot, answer};
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

criterion_group!(benches, server_answer);
criterion_main!(benches);
