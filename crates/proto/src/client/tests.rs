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
    evaluate_response(
        &request,
        t(0.0),
        &out[..reply.len],
        t(2.0 * one_way + 0.001),
    )
}

fn local() -> SystemSnapshot {
    SystemSnapshot::local_clock(10, -20, t(-1.0))
}

#[test]
fn offset_and_delay_follow_rfc_5905() {
    let sample = exchange(0.25, 0.010, local()).unwrap();
    assert!(
        (sample.offset.to_seconds_f64() - 0.25).abs() < 1e-9,
        "{:?}",
        sample.offset
    );
    assert!(
        (sample.delay.to_seconds_f64() - 0.020).abs() < 1e-9,
        "{:?}",
        sample.delay
    );
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
}
