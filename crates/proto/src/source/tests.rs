//! Scenario tests of one source against answers from our own server core.

use super::*;
use crate::packet::{LeapIndicator, Mode, NtpHeader};
use crate::server::{Answer, SystemSnapshot, answer};
use crate::time::NtpShort;

const ORIGIN_UNIX: i64 = 1_764_000_000;

fn at(seconds: f64) -> Monotonic {
    Monotonic::from_seconds_f64(seconds)
}

/// Local clock reading at monotonic `seconds`, and the server's clock `ahead` seconds later.
fn local(seconds: f64) -> NtpTimestamp {
    NtpTimestamp::from_unix(ORIGIN_UNIX, 0) + NtpDuration::from_seconds_f64(seconds)
}

struct Harness {
    source: NtpSource,
    server: SystemSnapshot,
    /// Server clock minus ours.
    ahead: f64,
    cookie: u64,
}

impl Harness {
    fn new(config: SourceConfig) -> Self {
        let source = NtpSource::new(config, ReferenceId::from_bytes([10, 0, 0, 1]), -20, at(0.0));
        let server = SystemSnapshot::local_clock(1, -20, local(-10.0));
        Self { source, server, ahead: 0.25, cookie: 1 }
    }

    /// Polls at `t`; if `answered`, the answer arrives 10 ms later. Returns the outcome.
    fn exchange(&mut self, t: f64, answered: bool) -> Option<ResponseOutcome> {
        self.cookie += 1;
        let request = self.source.poll(at(t), NtpTimestamp::from_bits(self.cookie), 0.0);
        self.source.sent(local(t));
        if !answered {
            return None;
        }
        let mut reply = [0u8; 64];
        let server_time = local(t + 0.005 + self.ahead);
        let Answer::Reply(prepared) = answer(&request, server_time, &self.server, &mut reply)
        else {
            panic!("server did not answer");
        };
        prepared.stamp_transmit_time(&mut reply, server_time);
        Some(self.source.handle_response(at(t + 0.010), &reply[..prepared.len], local(t + 0.010)))
    }

    /// Polls whenever due until `until`, all answered; returns the poll times.
    fn run_until(&mut self, until: f64, answered: bool) -> Vec<f64> {
        let mut times = Vec::new();
        while self.source.next_poll_at().seconds_since(Monotonic::ZERO) <= until {
            let t = self.source.next_poll_at().seconds_since(Monotonic::ZERO);
            times.push(t);
            self.exchange(t, answered);
        }
        times
    }
}

#[test]
fn iburst_polls_every_2_s_then_at_minpoll() {
    let mut harness = Harness::new(SourceConfig::default());
    let times = harness.run_until(200.0, true);
    assert_eq!(&times[..7], &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 74.0]);
    let view = harness.source.view();
    assert_eq!(view.reach & 0x3f, 0x3f);
    let filter = view.filter.unwrap();
    assert!((filter.offset - 0.25).abs() < 1e-6, "{filter:?}");
    assert!((filter.delay - 0.010).abs() < 1e-6, "{filter:?}");
    assert!(view.unfit_reason(at(200.0), 6).is_none());
}

#[test]
fn the_filter_becomes_selectable_after_four_samples() {
    let mut harness = Harness::new(SourceConfig::default());
    let mut fit_after = None;
    for (i, t) in [0.0, 2.0, 4.0, 6.0, 8.0].iter().enumerate() {
        harness.exchange(*t, true);
        if fit_after.is_none() && harness.source.view().unfit_reason(at(t + 0.01), 6).is_none() {
            fit_after = Some(i + 1);
        }
    }
    assert_eq!(fit_after, Some(4), "samples needed before the source can be selected");
}

#[test]
fn fallback_sources_burst_no_faster_than_every_4_s() {
    let config = SourceConfig { burst_spacing: Duration::from_secs(4), ..SourceConfig::default() };
    let mut harness = Harness::new(config);
    let times = harness.run_until(30.0, true);
    assert!(times.windows(2).all(|w| w[1] - w[0] >= 4.0), "{times:?}");
}

#[test]
fn a_silent_server_gets_three_burst_requests_then_ever_longer_polls() {
    let mut harness = Harness::new(SourceConfig::default());
    let times = harness.run_until(20_000.0, false);
    assert_eq!(&times[..4], &[0.0, 2.0, 4.0, 68.0], "burst stops when twice unanswered");
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().any(|&g| g >= 1024.0), "polls back off to maxpoll: {gaps:?}");
    assert!(gaps.iter().all(|&g| g <= 1024.0 * 1.1 + 1e-9));
    assert_eq!(harness.source.view().reach, 0);
    assert_eq!(harness.source.view().unfit_reason(at(20_000.0), 6), Some("unreachable"));
}

#[test]
fn reach_register_records_the_last_eight_polls() {
    let mut harness = Harness::new(SourceConfig { iburst: false, ..SourceConfig::default() });
    let pattern = [true, true, false, true, false, false, true, true];
    for (i, answered) in pattern.iter().enumerate() {
        harness.exchange(i as f64 * 64.0, *answered);
    }
    assert_eq!(harness.source.view().reach, 0b1101_0011);
}

#[test]
fn a_server_back_from_an_outage_gets_a_burst() {
    let mut harness = Harness::new(SourceConfig::default());
    harness.run_until(20.0, true);
    let mut t = 20.0;
    for _ in 0..8 {
        t = harness.source.next_poll_at().seconds_since(Monotonic::ZERO);
        harness.exchange(t, false);
    }
    assert_eq!(harness.source.view().reach, 0);
    let t = harness.source.next_poll_at().seconds_since(Monotonic::ZERO).max(t);
    harness.exchange(t, true);
    let next = harness.source.next_poll_at().seconds_since(Monotonic::ZERO);
    assert!(
        (next - (t + 0.01 + 2.0)).abs() < 1e-6,
        "burst after the outage: next poll {next}, answered at {t}"
    );
}

#[test]
fn answers_that_are_not_ours_are_ignored() {
    let mut harness = Harness::new(SourceConfig::default());
    let request = harness.source.poll(at(0.0), NtpTimestamp::from_bits(77), 0.0);
    harness.source.sent(local(0.0));
    let mut reply = [0u8; 48];
    let Answer::Reply(_) = answer(&request, local(0.005), &harness.server, &mut reply) else {
        panic!()
    };
    // Forged: another origin.
    let mut forged = reply;
    forged[24..32].copy_from_slice(&78u64.to_be_bytes());
    assert!(matches!(
        harness.source.handle_response(at(0.01), &forged, local(0.01)),
        ResponseOutcome::NotOurs(_)
    ));
    assert_eq!(harness.source.view().reach, 0);
    // The real answer, then a replay of it.
    assert!(matches!(
        harness.source.handle_response(at(0.01), &reply, local(0.01)),
        ResponseOutcome::Sample { .. }
    ));
    assert!(matches!(
        harness.source.handle_response(at(0.02), &reply, local(0.02)),
        ResponseOutcome::NotOurs(_)
    ));
    assert_eq!(harness.source.view().samples, 1);
}

#[test]
fn an_unsynchronised_server_is_reachable_but_unusable() {
    let mut harness = Harness::new(SourceConfig::default());
    harness.server = SystemSnapshot::unsynchronised(-20);
    let outcome = harness.exchange(0.0, true).unwrap();
    assert!(
        matches!(outcome, ResponseOutcome::Unusable { reason, .. } if reason.contains("unsynchronised"))
    );
    let view = harness.source.view();
    assert_eq!(view.reach, 1);
    assert_eq!(view.unfit_reason(at(1.0), 6), Some("the server is not synchronised"));
}

fn kiss(harness: &mut Harness, code: &[u8; 4], poll: i8, t: f64) -> ResponseOutcome {
    harness.cookie += 1;
    let cookie = NtpTimestamp::from_bits(harness.cookie);
    harness.source.poll(at(t), cookie, 0.0);
    harness.source.sent(local(t));
    let header = NtpHeader {
        leap: LeapIndicator::Unsynchronised,
        version: 4,
        mode: Mode::Server,
        stratum: 0,
        poll,
        precision: -20,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: ReferenceId::from_bytes(*code),
        reference_time: NtpTimestamp::ZERO,
        origin_time: cookie,
        receive_time: local(t),
        transmit_time: local(t),
    };
    let mut bytes = [0u8; 48];
    header.encode(&mut bytes);
    harness.source.handle_response(at(t + 0.01), &bytes, local(t + 0.01))
}

#[test]
fn rate_kiss_makes_us_poll_less_often() {
    let mut harness = Harness::new(SourceConfig::default());
    harness.run_until(20.0, true);
    let before = harness.source.poll_exponent();
    assert!(matches!(kiss(&mut harness, b"RATE", 8, 100.0), ResponseOutcome::Kiss(_)));
    assert_eq!(harness.source.poll_exponent(), 8.max(before + 1));
    let next = harness.source.next_poll_at().seconds_since(at(100.01));
    assert!(next >= 255.0, "next poll in {next} s");
}

#[test]
fn deny_and_rstr_stop_the_source() {
    for code in [b"DENY", b"RSTR"] {
        let mut harness = Harness::new(SourceConfig::default());
        harness.run_until(20.0, true);
        kiss(&mut harness, code, 6, 100.0);
        let view = harness.source.view();
        assert_eq!(view.denied, Some(ReferenceId::from_bytes(*code)));
        assert!(view.unfit_reason(at(101.0), 6).unwrap().contains("refused"));
        assert!(harness.source.next_poll_at().seconds_since(Monotonic::ZERO) > 1e9);
    }
}

mod broadcast {
    use super::*;
    use crate::auth::{KeyType, SymmetricKey};
    use crate::server::broadcast_packet;

    /// The server's broadcast sent at local time `t` (server clock `ahead` later), signed by `key`.
    fn broadcast(harness: &Harness, t: f64, key: Option<&SymmetricKey>) -> Vec<u8> {
        let header = broadcast_packet(&harness.server, 6, local(t + harness.ahead)).unwrap();
        let mut packet = header.to_vec();
        if let Some(key) = key {
            packet.resize(48 + key.mac_len(), 0);
            key.sign(&mut packet);
        }
        packet
    }

    #[test]
    fn broadcasts_count_once_an_exchange_has_measured_the_delay() {
        let mut harness = Harness::new(SourceConfig::default());
        // Sent at 1.0, heard 5 ms later: no delay known yet.
        let early = broadcast(&harness, 1.0, None);
        let outcome = harness.source.handle_broadcast(at(1.005), &early, local(1.005));
        assert!(
            matches!(outcome, ResponseOutcome::Unusable { reason, .. } if reason.contains("delay"))
        );
        // One exchange: 10 ms round trip.
        harness.exchange(2.0, true);
        let packet = broadcast(&harness, 3.0, None);
        let ResponseOutcome::Sample { measurement, .. } =
            harness.source.handle_broadcast(at(3.005), &packet, local(3.005))
        else {
            panic!("a broadcast after the exchange was not used");
        };
        // 5 ms one way, as the exchange measured: the offset is the server's 0.25 s exactly.
        assert!((measurement.offset - 0.25).abs() < 1e-6, "{measurement:?}");
        assert!((measurement.delay - 0.010).abs() < 1e-6);
        assert_eq!(harness.source.view().reach & 1, 1);
        // The same broadcast again is a replay.
        let again = harness.source.handle_broadcast(at(3.006), &packet, local(3.006));
        assert!(matches!(again, ResponseOutcome::NotOurs(_)));
    }

    #[test]
    fn with_a_key_only_broadcasts_it_signed_count() {
        let key = SymmetricKey::new(5, KeyType::AesCmac, &[7; 16]).unwrap();
        let mut harness = Harness::new(SourceConfig { key: Some(key), ..SourceConfig::default() });
        harness.server = SystemSnapshot::local_clock(1, -20, local(-10.0));
        // The exchange itself is signed both ways.
        let request = harness.source.poll(at(0.0), NtpTimestamp::from_bits(99), 0.0);
        harness.source.sent(local(0.0));
        let keys = crate::auth::KeyStore::parse("5 AES128CMAC 07070707070707070707070707070707\n")
            .unwrap();
        let mut reply = [0u8; 128];
        let server_time = local(0.005 + harness.ahead);
        let peer = std::net::IpAddr::from([10, 0, 0, 1]);
        let crate::server::Answer::Reply(prepared) = crate::server::answer_with_keys(
            &request,
            server_time,
            &harness.server,
            &keys,
            peer,
            &mut reply,
        ) else {
            panic!("the signed request was not answered");
        };
        prepared.stamp_transmit_time(&mut reply, server_time);
        let outcome =
            harness.source.handle_response(at(0.010), &reply[..prepared.len], local(0.010));
        assert!(matches!(outcome, ResponseOutcome::Sample { .. }), "{outcome:?}");

        let unsigned = broadcast(&harness, 1.0, None);
        let outcome = harness.source.handle_broadcast(at(1.005), &unsigned, local(1.005));
        assert_eq!(outcome, ResponseOutcome::NotOurs(ResponseError::BadMac));
        let forged_key = SymmetricKey::new(5, KeyType::AesCmac, &[8; 16]).unwrap();
        let forged = broadcast(&harness, 2.0, Some(&forged_key));
        let outcome = harness.source.handle_broadcast(at(2.005), &forged, local(2.005));
        assert_eq!(outcome, ResponseOutcome::NotOurs(ResponseError::BadMac));
        let signed = broadcast(&harness, 3.0, Some(&key));
        let outcome = harness.source.handle_broadcast(at(3.005), &signed, local(3.005));
        assert!(matches!(outcome, ResponseOutcome::Sample { .. }), "{outcome:?}");
    }

    #[test]
    fn nothing_is_broadcast_while_unsynchronised() {
        assert!(broadcast_packet(&SystemSnapshot::unsynchronised(-20), 6, local(0.0)).is_none());
        let harness = Harness::new(SourceConfig::default());
        let packet = broadcast(&harness, 0.0, None);
        let header = NtpHeader::decode(&packet).unwrap();
        assert_eq!((header.mode, header.version, header.poll), (Mode::Broadcast, 4, 6));
        assert!(header.origin_time.is_zero() && header.receive_time.is_zero());
        assert_eq!(header.stratum, 1);
    }
}

/// Polls at `t` and answers with a transmit time `backwards` seconds before the receive time.
fn backwards_answer(harness: &mut Harness, t: f64, backwards: f64) -> ResponseOutcome {
    harness.cookie += 1;
    let request = harness.source.poll(at(t), NtpTimestamp::from_bits(harness.cookie), 0.0);
    harness.source.sent(local(t));
    let mut reply = [0u8; 64];
    let received = local(t + 0.005 + harness.ahead);
    let Answer::Reply(prepared) = answer(&request, received, &harness.server, &mut reply) else {
        panic!("server did not answer");
    };
    prepared.stamp_transmit_time(&mut reply, received - NtpDuration::from_seconds_f64(backwards));
    harness.source.handle_response(at(t + 0.010), &reply[..prepared.len], local(t + 0.010))
}

#[test]
fn answers_refused_are_counted_and_the_server_is_not_called_unreachable() {
    let mut harness = Harness::new(SourceConfig::default());
    // 2^-20 s on both sides: 50 ns backwards is noise, 1 ms backwards is impossible.
    assert!(matches!(backwards_answer(&mut harness, 0.0, 50e-9), ResponseOutcome::Sample { .. }));
    let mut polls = Vec::new();
    for _ in 0..12 {
        let t = harness.source.next_poll_at().seconds_since(Monotonic::ZERO);
        polls.push(t);
        let outcome = backwards_answer(&mut harness, t, 0.001);
        let ResponseOutcome::Unusable { reason, timestamps: Some([t1, t2, t3, t4]) } = outcome
        else {
            panic!("{outcome:?}");
        };
        assert!(reason.contains("transmit time is before its receive time"), "{reason}");
        assert!((t3 - t2).is_negative() && !(t4 - t1).is_negative(), "the four timestamps");
    }
    let view = harness.source.view();
    assert_eq!((view.refused, view.refused_in_a_row), (12, 12));
    assert_ne!(view.reach, 0, "it answers");
    // The filter still holds the good sample; once it is too old to use, the reason is the
    // refusals, never "unreachable".
    let late = at(polls[11] + 100_000.0);
    assert!(view.unfit_reason(late, 6).is_some_and(|r| r != "unreachable"));
    // An answering server is not polled less often, as a silent one is.
    let gaps: Vec<f64> = polls.windows(2).skip(5).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g <= 64.0 * 1.1 + 1e-6), "{gaps:?}");
    // A usable answer ends the run of refusals, not the count.
    let t = harness.source.next_poll_at().seconds_since(Monotonic::ZERO);
    assert!(matches!(backwards_answer(&mut harness, t, 0.0), ResponseOutcome::Sample { .. }));
    let view = harness.source.view();
    assert_eq!((view.refused, view.refused_in_a_row), (12, 0));
}

#[test]
fn a_server_that_only_ever_answers_unusably_says_why() {
    let mut harness = Harness::new(SourceConfig::default());
    backwards_answer(&mut harness, 0.0, 0.001);
    let view = harness.source.view();
    assert_eq!(
        view.unfit_reason(at(1.0), 6),
        Some(
            "its transmit time is before its receive time by more than the precisions, or the \
             round trip is negative"
        )
    );
}
