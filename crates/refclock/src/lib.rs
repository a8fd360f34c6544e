//! Reference clocks for syhub-ntp: reads what a GPS receiver (through gpsd) or a kernel PPS device
//! says the time is, and turns it into timestamped samples.
//!
//! Three inputs, one module each:
//!
//! - [`ShmSegment`] (`shm`): the NTP shared-memory segment ("SHM" refclock) that gpsd fills for
//!   ntpd and chronyd. Unit N is the System V segment with key `0x4E545030 + N`; poll it about
//!   once a second.
//! - [`SockListener`] (`sock`): chrony's SOCK protocol. gpsd sends one datagram per fix to
//!   `/run/chrony.<device>.sock` (and one per pulse to `/run/chrony.pps<N>.sock`) when a socket is
//!   bound there; the socket is non-blocking, ready for the daemon's event loop.
//! - [`PpsDevice`] (`pps`): the kernel PPS API (RFC 2783 as Linux has it) on `/dev/ppsN`: the
//!   system time of each pulse edge, with no idea of which second it marks.
//!
//! Every input becomes a [`RefSample`] (reference time, local time, leap warning, precision) or, for
//! PPS, a [`PpsEdge`]. The crate only reads: it never steers or sets the clock, and it neither
//! filters nor selects samples; the daemon does that.
//!
//! The `testing` feature adds `ShmWriter` and `encode_sock_sample`, which play gpsd's part in
//! the daemon's tests.
//!
//! The system calls themselves (SysV shared memory, the PPS ioctls, receiving a datagram with
//! its full length) are in `syhub_ntp_sys`; this crate keeps the protocols and layouts.

#![forbid(unsafe_code)]

mod pps;
mod shm;
mod sock;

use std::io;
use std::path::PathBuf;

use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::packet::LeapIndicator;

pub use pps::{
    PPS_API_VERS, PPS_CAPTUREASSERT, PPS_TSFMT_TSPEC, PpsDevice, PpsEdge, PpsInfo, PpsIoctl,
    PpsParams, PpsTime,
};
pub use shm::{SHM_KEY_BASE, ShmKey, ShmLayout, ShmSegment};
#[cfg(any(test, feature = "testing"))]
pub use shm::{ShmFields, ShmWriter};
#[cfg(any(test, feature = "testing"))]
pub use sock::encode_sock_sample;
pub use sock::{
    SOCK_MAGIC, SockDatagramError, SockLayout, SockListener, SockSample, gpsd_socket_path,
    parse_sock_sample,
};

/// One reading of a reference clock: the true time of an event and the system clock at that event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefSample {
    /// The true (UTC) time of the event, as the reference clock reports it.
    pub reference: NtpTimestamp,
    /// The system clock (CLOCK_REALTIME) when the event happened, as the driver stamped it.
    pub local: NtpTimestamp,
    /// The leap second the reference announces for the end of the current UTC day;
    /// [`LeapIndicator::Unsynchronised`] when the reference says it has no time.
    pub leap: LeapIndicator,
    /// The reference's precision as a power of two in seconds (-20 is about 1 µs), when the driver
    /// reports one.
    pub precision: Option<i8>,
}

impl RefSample {
    /// `reference − local` in seconds: positive when the system clock is behind the reference.
    pub fn offset(&self) -> f64 {
        (self.reference - self.local).to_seconds_f64()
    }
}

/// What went wrong reading a reference clock, worded so that the person running the daemon can act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefclockError {
    #[error("NTP SHM unit {unit} does not exist: units are 0 to {max}", max = shm::MAX_UNIT)]
    ShmUnitOutOfRange { unit: u32 },

    #[error("{segment} does not exist: is gpsd running and does it have a device?")]
    ShmNotFound { segment: ShmKey },

    #[error(
        "{segment} is a root-only segment: attach before dropping privileges (units 0 and 1 are \
         created with mode 0600; units 2 and up are open to all)"
    )]
    ShmPermissionDenied { segment: ShmKey },

    #[error(
        "{segment} is {size} bytes, not an NTP shmTime (80 bytes with a 32-bit time_t, {wide} with \
         a 64-bit one): another program uses this key, so configure another unit",
        wide = ShmLayout::Time64.size()
    )]
    ShmWrongSize { segment: ShmKey, size: usize },

    #[error("{call} on {segment} failed: {source}")]
    ShmSystemCall {
        segment: ShmKey,
        call: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("{segment} is in mode {mode}, but an NTP SHM writer uses mode 0 or 1: is it gpsd's?")]
    ShmBadMode { segment: ShmKey, mode: i32 },

    #[error(
        "{segment} changed while reading; the sample was discarded and the next poll reads the new one"
    )]
    ShmChangedWhileReading { segment: ShmKey },

    #[error("{segment} holds a sample that cannot be right ({problem}); it was discarded")]
    ShmBadSample { segment: ShmKey, problem: String },

    #[error(
        "{} exists and is not a socket; refusing to replace it: remove it or configure another path",
        path.display()
    )]
    SockPathTaken { path: PathBuf },

    #[error(
        "another process is listening at {}: stop it (chronyd?) or configure another path",
        path.display()
    )]
    SockInUse { path: PathBuf },

    #[error(
        "cannot bind the SOCK socket at {}: {source} (the directory must exist and be writable)",
        path.display()
    )]
    SockBind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("reading the SOCK socket at {} failed: {source}", path.display())]
    SockReceive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("ignored a SOCK datagram on {}: {problem}", path.display())]
    SockBadDatagram { path: PathBuf, problem: SockDatagramError },

    #[error("cannot open PPS device {}: {source}{}", path.display(), pps::open_hint(source))]
    PpsOpen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "PPS device {} cannot capture assert edges (capabilities {caps:#x}): check how the pulse \
         is wired and which edge the driver reports",
        path.display()
    )]
    PpsNoAssertCapture { path: PathBuf, caps: i32 },

    #[error(
        "PPS device {} cannot report timestamps as timespec (capabilities {caps:#x})",
        path.display()
    )]
    PpsNoTimespec { path: PathBuf, caps: i32 },

    #[error("{call} on PPS device {} failed: {source}{}", path.display(), pps::ioctl_hint(source))]
    PpsIoctl {
        path: PathBuf,
        call: &'static str,
        #[source]
        source: io::Error,
    },

    #[error(
        "PPS device {} reported an impossible edge time ({seconds} s, {nanos} ns); it was discarded",
        path.display()
    )]
    PpsBadTime { path: PathBuf, seconds: i64, nanos: i32 },
}

impl RefclockError {
    /// True when only one sample was lost and the source is still usable: polling again is the
    /// remedy. False when the source needs attention (configuration, privileges, a missing writer).
    pub fn is_one_sample_lost(&self) -> bool {
        matches!(
            self,
            Self::ShmChangedWhileReading { .. }
                | Self::ShmBadSample { .. }
                | Self::SockBadDatagram { .. }
                | Self::PpsBadTime { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_reference_minus_local() {
        let sample = RefSample {
            reference: NtpTimestamp::from_unix(1_700_000_000, 250_000_000),
            local: NtpTimestamp::from_unix(1_700_000_000, 0),
            leap: LeapIndicator::NoWarning,
            precision: None,
        };
        assert!((sample.offset() - 0.25).abs() < 1e-9);
        let behind = RefSample { reference: sample.local, local: sample.reference, ..sample };
        assert!((behind.offset() + 0.25).abs() < 1e-9);
    }

    #[test]
    fn errors_say_what_to_do() {
        let missing = RefclockError::ShmNotFound { segment: ShmKey::for_unit(0).unwrap() };
        assert_eq!(
            missing.to_string(),
            "gpsd's SHM segment for unit 0 (key 0x4E545030) does not exist: is gpsd running and \
             does it have a device?"
        );
        let denied = RefclockError::ShmPermissionDenied { segment: ShmKey::for_unit(1).unwrap() };
        assert!(denied.to_string().contains("attach before dropping privileges"));
        assert!(!denied.is_one_sample_lost());
        let torn = RefclockError::ShmChangedWhileReading { segment: ShmKey::from_raw(7) };
        assert!(torn.is_one_sample_lost());
    }
}
