//! The mode-5 broadcast packet: the system state, announced to every client on a LAN at once.

use super::SystemSnapshot;
use crate::packet::{HEADER_LEN, Mode, NtpHeader};
use crate::time::{NtpShort, NtpTimestamp};

/// The broadcast packet for `system` at `transmit_time` (read from the clock just before the
/// send), announcing a poll interval of 2^`poll` seconds; `None` while the system has no time to
/// give (unsynchronised), when nothing should be broadcast. Origin and receive timestamps are
/// zero: there is no request. A MAC, if any, is appended after this.
pub fn broadcast_packet(
    system: &SystemSnapshot,
    poll: i8,
    transmit_time: NtpTimestamp,
) -> Option<[u8; HEADER_LEN]> {
    if !system.is_synchronised() {
        return None;
    }
    let mut out = [0u8; HEADER_LEN];
    NtpHeader {
        leap: system.leap,
        version: 4,
        mode: Mode::Broadcast,
        stratum: system.stratum,
        poll,
        precision: system.precision,
        root_delay: NtpShort::from_duration_saturating(system.root_delay),
        root_dispersion: NtpShort::from_duration_saturating(
            system.root_dispersion_at(transmit_time),
        ),
        reference_id: system.reference_id,
        reference_time: system.reference_time,
        origin_time: NtpTimestamp::ZERO,
        receive_time: NtpTimestamp::ZERO,
        transmit_time,
    }
    .encode(&mut out);
    Some(out)
}
