//! Tests of the PPS logic against a fake device, and of the real ioctls' errors (the ioctl
//! numbers and structs are checked against linux/pps.h in `syhub_ntp_sys::pps`).

use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;

/// What a typical GPIO PPS device supports: assert capture, offsets, echo, wait, timespec.
const GPIO_CAPS: i32 = 0x1 | 0x10 | 0x40 | 0x100 | PPS_TSFMT_TSPEC;

/// A device that answers from a script: capabilities, the parameters last set, and a queue of
/// fetch results (the last kernel state repeats once the queue is empty).
#[derive(Debug)]
struct FakePps {
    caps: io::Result<i32>,
    params: RefCell<PpsParams>,
    set_calls: RefCell<Vec<PpsParams>>,
    set_error: Option<i32>,
    fetches: RefCell<VecDeque<io::Result<PpsInfo>>>,
    latest: RefCell<PpsInfo>,
    timeouts: RefCell<Vec<Option<Duration>>>,
}

impl FakePps {
    fn new(caps: i32) -> Self {
        Self {
            caps: Ok(caps),
            params: RefCell::new(PpsParams {
                api_version: PPS_API_VERS,
                mode: PPS_CAPTUREASSERT | 0x10 | PPS_TSFMT_TSPEC,
                assert_off_tu: PpsTime { sec: 0, nsec: 1500, flags: 0 },
                clear_off_tu: PpsTime::default(),
            }),
            set_calls: RefCell::new(Vec::new()),
            set_error: None,
            fetches: RefCell::new(VecDeque::new()),
            latest: RefCell::new(PpsInfo::default()),
            timeouts: RefCell::new(Vec::new()),
        }
    }

    /// The kernel's state after an assert edge numbered `sequence` at Unix time `sec.nsec`.
    fn edge(&self, sequence: u32, sec: i64, nsec: i32) {
        let info = PpsInfo {
            assert_sequence: sequence,
            assert_tu: PpsTime { sec, nsec, flags: 0 },
            current_mode: PPS_CAPTUREASSERT | PPS_TSFMT_TSPEC,
            ..PpsInfo::default()
        };
        self.fetches.borrow_mut().push_back(Ok(info));
    }

    fn fail_next_fetch(&self, errno: i32) {
        self.fetches.borrow_mut().push_back(Err(io::Error::from_raw_os_error(errno)));
    }
}

impl PpsIoctl for FakePps {
    fn get_cap(&self) -> io::Result<i32> {
        match &self.caps {
            Ok(caps) => Ok(*caps),
            Err(error) => Err(io::Error::from_raw_os_error(error.raw_os_error().unwrap_or(0))),
        }
    }

    fn get_params(&self) -> io::Result<PpsParams> {
        Ok(*self.params.borrow())
    }

    fn set_params(&self, params: &PpsParams) -> io::Result<()> {
        if let Some(errno) = self.set_error {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.set_calls.borrow_mut().push(*params);
        *self.params.borrow_mut() = *params;
        Ok(())
    }

    fn fetch(&self, timeout: Option<Duration>) -> io::Result<PpsInfo> {
        self.timeouts.borrow_mut().push(timeout);
        match self.fetches.borrow_mut().pop_front() {
            Some(Ok(info)) => {
                *self.latest.borrow_mut() = info;
                Ok(info)
            }
            Some(Err(error)) => Err(error),
            None => Ok(*self.latest.borrow()),
        }
    }
}

fn open_fake(fake: FakePps) -> PpsDevice<FakePps> {
    PpsDevice::with_device(fake, "/dev/pps-fake").expect("the fake device opens")
}

#[test]
fn a_device_without_assert_capture_is_refused() {
    let error =
        PpsDevice::with_device(FakePps::new(0x2 | PPS_TSFMT_TSPEC), "/dev/pps1").unwrap_err();
    assert!(matches!(error, RefclockError::PpsNoAssertCapture { caps: 0x1002, .. }), "{error}");
    assert!(error.to_string().starts_with("PPS device /dev/pps1 cannot capture assert edges"));
}

#[test]
fn a_device_without_timespec_is_refused() {
    let error = PpsDevice::with_device(FakePps::new(PPS_CAPTUREASSERT), "/dev/pps1").unwrap_err();
    assert!(matches!(error, RefclockError::PpsNoTimespec { .. }), "{error}");
}

#[test]
fn a_failed_capability_query_names_the_call() {
    let mut fake = FakePps::new(GPIO_CAPS);
    fake.caps = Err(io::Error::from_raw_os_error(errno::ENOTTY));
    let error = PpsDevice::with_device(fake, "/dev/pps1").unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("PPS_GETCAP on PPS device /dev/pps1 failed"), "{message}");
    assert!(message.ends_with("(is it a PPS device?)"), "{message}");
}

#[test]
fn opening_selects_assert_capture_with_timespec() {
    let device = open_fake(FakePps::new(GPIO_CAPS));
    let calls = device.device.set_calls.borrow();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].api_version, PPS_API_VERS);
    assert_eq!(calls[0].mode, 0x1001);
    // The offset compensation is left as it was (and is off, without PPS_OFFSETASSERT).
    assert_eq!(calls[0].assert_off_tu, PpsTime { sec: 0, nsec: 1500, flags: 0 });
}

#[test]
fn setting_the_mode_without_privilege_says_what_is_needed() {
    let mut fake = FakePps::new(GPIO_CAPS);
    fake.set_error = Some(errno::EPERM);
    let error = PpsDevice::with_device(fake, "/dev/pps0").unwrap_err();
    assert!(matches!(error, RefclockError::PpsIoctl { call: "PPS_SETPARAMS", .. }), "{error}");
    assert!(error.to_string().contains("needs root or CAP_SYS_TIME"), "{error}");
}

#[test]
fn an_edge_from_before_opening_is_not_reported() {
    let fake = FakePps::new(GPIO_CAPS);
    fake.edge(41, 1_600_000_000, 0);
    let mut device = open_fake(fake);
    assert_eq!(device.next_edge().unwrap(), None);
}

#[test]
fn the_same_sequence_gives_none_and_a_new_one_an_edge() {
    let mut device = open_fake(FakePps::new(GPIO_CAPS));
    assert_eq!(device.next_edge().unwrap(), None);
    device.device.edge(1, 1_700_000_000, 999_999_999);
    let edge = device.next_edge().unwrap().expect("an edge");
    assert_eq!(edge.sequence, 1);
    assert_eq!(edge.missed, 0);
    assert_eq!(edge.local, NtpTimestamp::from_unix(1_700_000_000, 999_999_999));
    assert_eq!(edge.local.to_unix_near(1_700_000_000), (1_700_000_000, 999_999_999));
    assert_eq!(device.next_edge().unwrap(), None, "the same edge is reported once");
    device.device.edge(2, 1_700_000_001, 12);
    let edge = device.next_edge().unwrap().expect("the next edge");
    assert_eq!((edge.sequence, edge.missed), (2, 0));
    assert_eq!(edge.local.to_unix_near(1_700_000_000), (1_700_000_001, 12));
}

#[test]
fn skipped_sequence_numbers_are_counted_as_missed() {
    let fake = FakePps::new(GPIO_CAPS);
    fake.edge(10, 1_700_000_000, 0);
    let mut device = open_fake(fake);
    device.device.edge(13, 1_700_000_003, 0);
    let edge = device.next_edge().unwrap().unwrap();
    assert_eq!((edge.sequence, edge.missed), (13, 2));
}

#[test]
fn the_sequence_number_wraps() {
    let fake = FakePps::new(GPIO_CAPS);
    fake.edge(u32::MAX, 1_700_000_000, 0);
    let mut device = open_fake(fake);
    device.device.edge(0, 1_700_000_001, 0);
    let edge = device.next_edge().unwrap().unwrap();
    assert_eq!((edge.sequence, edge.missed), (0, 0));
}

#[test]
fn fetching_never_waits() {
    let mut device = open_fake(FakePps::new(GPIO_CAPS));
    device.next_edge().unwrap();
    assert!(device.device.timeouts.borrow().iter().all(|t| *t == Some(Duration::ZERO)));
}

#[test]
fn a_fetch_error_is_passed_on() {
    let mut device = open_fake(FakePps::new(GPIO_CAPS));
    device.device.fail_next_fetch(errno::ENODEV);
    let error = device.next_edge().unwrap_err();
    match &error {
        RefclockError::PpsIoctl { call: "PPS_FETCH", source, .. } => {
            assert_eq!(source.raw_os_error(), Some(errno::ENODEV))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!error.is_one_sample_lost());
    // A timeout (only from a kernel that misreads the zero timeout) means no edge.
    device.device.fail_next_fetch(errno::ETIMEDOUT);
    assert_eq!(device.next_edge().unwrap(), None);
}

#[test]
fn an_impossible_edge_time_is_an_error_not_a_panic() {
    let mut device = open_fake(FakePps::new(GPIO_CAPS));
    device.device.edge(1, 1_700_000_000, 1_000_000_000);
    let error = device.next_edge().unwrap_err();
    assert!(matches!(error, RefclockError::PpsBadTime { nanos: 1_000_000_000, .. }), "{error}");
    assert!(error.is_one_sample_lost());
    device.device.edge(2, 1_700_000_001, -1);
    assert!(device.next_edge().is_err());
    device.device.edge(3, 1_700_000_002, 5);
    assert_eq!(device.next_edge().unwrap().unwrap().sequence, 3);
}

#[test]
fn a_missing_device_gets_a_setup_hint() {
    let path = std::env::temp_dir().join(format!("syhub-refclock-{}-no-pps", std::process::id()));
    let error = PpsDevice::open(&path).unwrap_err();
    assert!(matches!(error, RefclockError::PpsOpen { .. }), "{error}");
    assert!(error.to_string().contains("dtoverlay=pps-gpio"), "{error}");
}

#[test]
fn a_file_that_is_not_a_pps_device_fails_the_capability_ioctl() {
    // A real ioctl through the File implementation: a regular file answers ENOTTY (qemu-user,
    // which runs these tests for the Pi, does not pass unknown ioctls on: ENOSYS).
    let path = std::env::temp_dir().join(format!("syhub-refclock-{}-not-pps", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let result = PpsDevice::open(&path);
    let _ = std::fs::remove_file(&path);
    let error = result.unwrap_err();
    match &error {
        RefclockError::PpsIoctl { call: "PPS_GETCAP", source, .. } => {
            let code = source.raw_os_error();
            assert!(code == Some(errno::ENOTTY) || code == Some(errno::ENOSYS), "{source}")
        }
        other => panic!("unexpected {other:?}"),
    }
}
