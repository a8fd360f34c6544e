//! Tests of one exchange against a server answer built by our own server core.

use super::*;
use crate::packet::{HEADER_LEN, LeapIndicator, Mode, NtpHeader, ReferenceId};
use crate::server::{Answer, SystemSnapshot, answer};
use crate::time::{NtpDuration, NtpTimestamp};

fn t(seconds: f64) -> NtpTimestamp {
    NtpTimestamp::from_unix(1_764_000_000, 0) + NtpDuration::from_seconds_f64(seconds)
}

/// Runs an exchange where the server's clock is `server_ahead` seconds ahead of ours and each way
/// takes `one_way` seconds, returning the sample.
fn exchange(
    server_ahead: f64,
    one_way: f64,
    system: SystemSnapshot,
) -> Result<Sample, ResponseError> {
    let request = ClientRequest::new(NtpTimestamp::from_bits(0x1234_5678_9abc_def0));
    let mut bytes = [0; HEADER_LEN];
    request.encode(&mut bytes);
    let mut out = [0; 64];
    let Answer::Reply(reply) = answer(&bytes, t(one_way + server_ahead), &system, &mut out) else {
        panic!("server did not answer");
    };
    reply.stamp_transmit_time(&mut out, t(one_way + 0.001 + server_ahead));
    evaluate_response(&request, t(0.0), &out[..reply.len], t(2.0 * one_way + 0.001))
}

fn local() -> SystemSnapshot {
    SystemSnapshot::local_clock(10, -20, t(-1.0))
}

#[test]
fn offset_and_delay_follow_rfc_5905() {
    let sample = exchange(0.25, 0.010, local()).unwrap();
    assert!((sample.offset.to_seconds_f64() - 0.25).abs() < 1e-9, "{:?}", sample.offset);
    assert!((sample.delay.to_seconds_f64() - 0.020).abs() < 1e-9, "{:?}", sample.delay);
    assert!(sample.server_synchronised());
    assert_eq!(sample.server.stratum, 10);
}

#[test]
fn negative_offset_when_server_is_behind() {
    let sample = exchange(-3.5, 0.002, local()).unwrap();
    assert!((sample.offset.to_seconds_f64() + 3.5).abs() < 1e-9);
}

#[test]
fn unsynchronised_server_is_reported_not_hidden() {
    let sample = exchange(0.0, 0.001, SystemSnapshot::unsynchronised(-20)).unwrap();
    assert!(!sample.server_synchronised());
    assert_eq!(sample.server.leap, LeapIndicator::Unsynchronised);
}

#[test]
fn answer_to_someone_else_is_refused() {
    let request = ClientRequest::new(NtpTimestamp::from_bits(1));
    let mut bytes = [0; HEADER_LEN];
    let mut reply = NtpHeader::decode(&{
        ClientRequest::new(NtpTimestamp::from_bits(2)).encode(&mut bytes);
        bytes
    })
    .unwrap();
    reply.mode = Mode::Server;
    reply.stratum = 2;
    reply.origin_time = NtpTimestamp::from_bits(2);
    reply.receive_time = t(0.0);
    reply.transmit_time = t(0.0);
    reply.encode(&mut bytes);
    assert_eq!(
        evaluate_response(&request, t(0.0), &bytes, t(0.1)),
        Err(ResponseError::OriginMismatch)
    );
    reply.origin_time = request.cookie;
    reply.stratum = 0;
    reply.reference_id = ReferenceId::KISS_RATE;
    reply.encode(&mut bytes);
    assert_eq!(
        evaluate_response(&request, t(0.0), &bytes, t(0.1)),
        Err(ResponseError::Kiss(ReferenceId::KISS_RATE))
    );
    reply.mode = Mode::Broadcast;
    reply.encode(&mut bytes);
    assert_eq!(
        evaluate_response(&request, t(0.0), &bytes, t(0.1)),
        Err(ResponseError::UnexpectedMode(Mode::Broadcast))
    );
    // Someone else's broadcast (origin not ours) is "not ours", whatever its mode.
    reply.origin_time = NtpTimestamp::from_bits(99);
    reply.encode(&mut bytes);
    assert_eq!(
        evaluate_response(&request, t(0.0), &bytes, t(0.1)),
        Err(ResponseError::OriginMismatch)
    );
}

#[test]
fn impossible_timestamps_are_refused_not_turned_into_a_zero_delay() {
    let request = ClientRequest::new(NtpTimestamp::from_bits(5));
    let mut bytes = [0; HEADER_LEN];
    request.encode(&mut bytes);
    let mut reply = NtpHeader::decode(&bytes).unwrap();
    reply.mode = Mode::Server;
    reply.stratum = 2;
    reply.origin_time = request.cookie;
    reply.reference_time = t(-10.0);
    // Transmitted 10 ms before it received: far beyond both precisions.
    reply.precision = -23;
    reply.receive_time = t(0.05);
    reply.transmit_time = t(0.04);
    reply.encode(&mut bytes);
    assert_eq!(
        evaluate_response(&request, t(0.0), &bytes, t(0.1)),
        Err(ResponseError::ImpossibleTimestamps)
    );
    // Claims to have held the request for 10 s during a 0.1 s round trip.
    reply.transmit_time = t(10.05);
    reply.encode(&mut bytes);
    assert_eq!(
        evaluate_response(&request, t(0.0), &bytes, t(0.1)),
        Err(ResponseError::ImpossibleTimestamps)
    );
}

#[test]
fn header_tests_mark_unusable_servers() {
    let good = exchange(0.0, 0.001, local()).unwrap();
    assert_eq!(good.unusable_reason(), None);
    let mut never_synced = good;
    never_synced.server.reference_time = NtpTimestamp::ZERO;
    assert!(never_synced.unusable_reason().unwrap().contains("zero reference time"));
    let mut future_reference = good;
    future_reference.server.reference_time =
        good.server.transmit_time + NtpDuration::from_seconds(5);
    assert!(!future_reference.server_synchronised());
    let mut far = good;
    far.server.root_dispersion = crate::time::NtpShort::from_bits(2 << 16);
    assert!(far.unusable_reason().unwrap().contains("root distance"));
}

/// A reply whose transmit time reads `server_time` seconds after its receive time, from a server
/// of `precision` (log2 s), to a request of ours at 2^-20 s.
fn reply_with_server_time(server_time: f64, precision: i8) -> Result<Sample, ResponseError> {
    let request =
        ClientRequest { precision: -20, ..ClientRequest::new(NtpTimestamp::from_bits(9)) };
    let mut bytes = [0; HEADER_LEN];
    request.encode(&mut bytes);
    let mut reply = NtpHeader::decode(&bytes).unwrap();
    reply.mode = Mode::Server;
    reply.stratum = 1;
    reply.precision = precision;
    reply.origin_time = request.cookie;
    reply.reference_time = t(-10.0);
    reply.receive_time = t(0.000_100);
    reply.transmit_time = t(0.000_100 + server_time);
    reply.encode(&mut bytes);
    evaluate_response(&request, t(0.0), &bytes, t(0.000_200))
}

#[test]
fn a_transmit_time_before_the_receive_time_by_less_than_the_precisions_is_noise() {
    // chronyd fills the bits below 2^-23 s (119 ns) with noise: T3 − T2 of −102 ns was seen.
    let sample = reply_with_server_time(-102e-9, -23).expect("noise, not an impossible answer");
    // It counts as no time at the server: the delay is the whole round trip.
    assert!((sample.delay.to_seconds_f64() - 200e-6).abs() < 1e-9, "{:?}", sample.delay);
    assert!(sample.offset.to_seconds_f64().abs() < 1e-6);
    // Up to the server's precision plus ours (119 ns + 954 ns) it is still noise.
    assert!(reply_with_server_time(-1.0e-6, -23).is_ok());
}

#[test]
fn a_transmit_time_before_the_receive_time_beyond_the_precisions_is_refused() {
    assert_eq!(reply_with_server_time(-2e-6, -23), Err(ResponseError::ImpossibleTimestamps));
    // A coarse server is allowed its coarseness: 2^-10 s is about a millisecond.
    assert!(reply_with_server_time(-500e-6, -10).is_ok());
    assert_eq!(reply_with_server_time(-2e-3, -10), Err(ResponseError::ImpossibleTimestamps));
}
