//! What reference clocks and the leap-seconds list hand the daemon: a SOCK datagram (first byte
//! even) or a leap-seconds list (odd). Neither parser panics; an accepted list gives a next leap
//! that is after the time asked about, and an accepted datagram a finite offset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::leap::LeapTable;
use syhub_ntp_refclock::parse_sock_sample;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    if kind % 2 == 0 {
        if let Ok(sample) = parse_sock_sample(rest) {
            assert!(sample.sample.offset().is_finite());
        }
    } else if let Ok(text) = std::str::from_utf8(rest)
        && let Ok(table) = LeapTable::parse(text)
    {
        let now = NtpTimestamp::from_unix(1_767_225_600, 0);
        if let Some(leap) = table.next_leap(now) {
            assert!((leap.at - now).to_seconds_f64() > 0.0);
        }
    }
});
