//! Tests of the SOCK parser and of the listener on real sockets in a private directory.

use std::mem::offset_of;
use std::os::unix::fs::PermissionsExt;

use super::*;

const TV_SEC: i64 = 1_700_000_000;
const TV_USEC: i64 = 250_000;

/// A directory of its own under the system's temporary directory, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("syhub-refclock-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test directory");
        Self(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn good_datagram() -> Vec<u8> {
    encode_sock_sample(SockLayout::Time64, TV_SEC, TV_USEC, 0.125, false, 1)
}

fn send(path: &Path, datagram: &[u8]) {
    let sender = UnixDatagram::unbound().expect("a sending socket");
    sender.send_to(datagram, path).expect("send a datagram");
}

#[test]
fn sock_sample_layouts_match_the_c_struct() {
    // From offsetof()/sizeof() of struct sock_sample compiled by gcc for x86_64 and for armhf
    // with and without _TIME_BITS=64.
    assert_eq!(SockLayout::Time64.size(), 40);
    assert_eq!(
        [
            offset_of!(SockSampleTime64, offset),
            offset_of!(SockSampleTime64, pulse),
            offset_of!(SockSampleTime64, leap),
            offset_of!(SockSampleTime64, magic),
        ],
        [16, 24, 28, 36]
    );
    assert_eq!(SockLayout::Time32.size(), 32);
    assert_eq!(
        [
            offset_of!(SockSampleTime32, offset),
            offset_of!(SockSampleTime32, pulse),
            offset_of!(SockSampleTime32, leap),
            offset_of!(SockSampleTime32, magic),
        ],
        [8, 16, 20, 28]
    );
    assert_eq!(SockLayout::NATIVE.size(), syhub_ntp_sys::TIMEVAL_SIZE + 24);
}

#[test]
fn a_well_formed_datagram_is_parsed() {
    let parsed = parse_sock_sample(&good_datagram()).unwrap();
    assert!(!parsed.pulse);
    let local = NtpTimestamp::from_unix(TV_SEC, 250_000_000);
    assert_eq!(parsed.sample.local, local);
    assert_eq!(parsed.sample.reference, NtpTimestamp::from_unix(TV_SEC, 375_000_000));
    assert_eq!(parsed.sample.leap, LeapIndicator::InsertSecond);
    assert_eq!(parsed.sample.precision, None);
    assert!((parsed.sample.offset() - 0.125).abs() < 1e-9);
}

#[test]
fn a_pulse_and_a_negative_offset_are_parsed() {
    let datagram = encode_sock_sample(SockLayout::Time64, TV_SEC, 0, -0.000_250, true, 0);
    let parsed = parse_sock_sample(&datagram).unwrap();
    assert!(parsed.pulse);
    assert_eq!(parsed.sample.leap, LeapIndicator::NoWarning);
    assert!((parsed.sample.offset() + 0.000_250).abs() < 1e-9);
}

#[test]
fn a_sender_with_32_bit_time_t_is_understood() {
    let datagram = encode_sock_sample(SockLayout::Time32, TV_SEC, TV_USEC, 0.125, false, 2);
    assert_eq!(datagram.len(), 32);
    let parsed = parse_sock_sample(&datagram).unwrap();
    assert_eq!(parsed.sample.local, NtpTimestamp::from_unix(TV_SEC, 250_000_000));
    assert_eq!(parsed.sample.leap, LeapIndicator::DeleteSecond);
}

#[test]
fn malformed_datagrams_name_their_problem() {
    let mut wrong_magic = good_datagram();
    wrong_magic[36..40].copy_from_slice(&SOCK_MAGIC.swap_bytes().to_ne_bytes());
    let cases: Vec<(Vec<u8>, SockDatagramError)> = vec![
        (vec![0; 39], SockDatagramError::Length { len: 39 }),
        (vec![], SockDatagramError::Length { len: 0 }),
        ([good_datagram(), vec![0]].concat(), SockDatagramError::Length { len: 41 }),
        (wrong_magic, SockDatagramError::Magic { magic: SOCK_MAGIC.swap_bytes() as u32 }),
        (
            encode_sock_sample(SockLayout::Time64, TV_SEC, TV_USEC, 0.1, false, 3),
            SockDatagramError::Leap { leap: 3 },
        ),
        (
            encode_sock_sample(SockLayout::Time64, TV_SEC, TV_USEC, 0.1, false, -1),
            SockDatagramError::Leap { leap: -1 },
        ),
        (
            encode_sock_sample(SockLayout::Time64, TV_SEC, 1_000_000, 0.1, false, 0),
            SockDatagramError::Microseconds { usec: 1_000_000 },
        ),
        (
            encode_sock_sample(SockLayout::Time32, TV_SEC, -1, 0.1, false, 0),
            SockDatagramError::Microseconds { usec: -1 },
        ),
        (
            encode_sock_sample(SockLayout::Time64, TV_SEC, TV_USEC, f64::INFINITY, false, 0),
            SockDatagramError::Offset { offset: f64::INFINITY },
        ),
        (
            encode_sock_sample(SockLayout::Time64, TV_SEC, TV_USEC, 3e9, false, 0),
            SockDatagramError::Offset { offset: 3e9 },
        ),
    ];
    for (datagram, expected) in cases {
        assert_eq!(parse_sock_sample(&datagram), Err(expected));
    }
    let nan = encode_sock_sample(SockLayout::Time64, TV_SEC, TV_USEC, f64::NAN, false, 0);
    assert!(matches!(parse_sock_sample(&nan), Err(SockDatagramError::Offset { .. })));
    let message = SockDatagramError::Magic { magic: 0x4b434f53 }.to_string();
    assert!(message.contains("0x4b434f53"), "{message}");
}

#[test]
fn samples_sent_to_the_socket_are_received_in_order() {
    let dir = TestDir::new("receive");
    let path = dir.path("chrony.ttyTEST.sock");
    let listener = SockListener::bind(&path).unwrap();
    assert_eq!(listener.try_recv().unwrap(), None, "nothing sent yet");
    send(&path, &good_datagram());
    send(&path, &encode_sock_sample(SockLayout::Time64, TV_SEC + 1, 0, 0.5, true, 0));
    let first = listener.try_recv().unwrap().expect("the first datagram");
    assert!(!first.pulse);
    assert_eq!(first.sample.local, NtpTimestamp::from_unix(TV_SEC, 250_000_000));
    let second = listener.try_recv().unwrap().expect("the second datagram");
    assert!(second.pulse);
    assert_eq!(listener.try_recv().unwrap(), None);
}

#[test]
fn a_bad_datagram_is_an_error_and_the_next_one_is_read() {
    let dir = TestDir::new("bad");
    let path = dir.path("chrony.ttyTEST.sock");
    let listener = SockListener::bind(&path).unwrap();
    send(&path, &[0xff; 200]);
    send(&path, &good_datagram());
    let error = listener.try_recv().unwrap_err();
    assert!(
        matches!(
            &error,
            RefclockError::SockBadDatagram { problem: SockDatagramError::Length { len: 200 }, .. }
        ),
        "{error}"
    );
    assert!(error.is_one_sample_lost());
    assert!(listener.try_recv().unwrap().is_some());
}

#[test]
fn the_socket_file_has_mode_0660_and_goes_on_drop() {
    let dir = TestDir::new("mode");
    let path = dir.path("chrony.pps0.sock");
    let listener = SockListener::bind(&path).unwrap();
    let metadata = fs::symlink_metadata(&path).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o660);
    assert_eq!(listener.path(), path);
    assert!(listener.as_raw_fd() >= 0);
    drop(listener);
    assert!(!path.exists(), "the socket file is removed on drop");
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = TestDir::new("stale");
    let path = dir.path("chrony.ttyTEST.sock");
    // A socket file whose process has gone: bound, then closed without removing the file.
    drop(UnixDatagram::bind(&path).unwrap());
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
    let listener = SockListener::bind(&path).expect("replace the stale socket");
    send(&path, &good_datagram());
    assert!(listener.try_recv().unwrap().is_some());
}

#[test]
fn a_socket_in_use_is_left_alone() {
    let dir = TestDir::new("in-use");
    let path = dir.path("chrony.ttyTEST.sock");
    let other = UnixDatagram::bind(&path).unwrap();
    let error = SockListener::bind(&path).unwrap_err();
    assert!(matches!(error, RefclockError::SockInUse { .. }), "{error}");
    // The other process still gets its datagrams.
    send(&path, &good_datagram());
    let mut buffer = [0u8; 64];
    assert_eq!(other.recv(&mut buffer).unwrap(), 40);
}

#[test]
fn a_file_that_is_not_a_socket_is_refused() {
    let dir = TestDir::new("regular");
    let path = dir.path("chrony.ttyTEST.sock");
    fs::write(&path, "not a socket").unwrap();
    let error = SockListener::bind(&path).unwrap_err();
    assert!(matches!(error, RefclockError::SockPathTaken { .. }), "{error}");
    assert!(error.to_string().contains("refusing to replace it"));
    assert_eq!(fs::read_to_string(&path).unwrap(), "not a socket");
}

#[test]
fn a_missing_directory_is_a_bind_error() {
    let dir = TestDir::new("missing");
    let error = SockListener::bind(dir.path("absent/chrony.sock")).unwrap_err();
    assert!(matches!(error, RefclockError::SockBind { .. }), "{error}");
}

#[test]
fn gpsd_socket_paths_follow_the_device_name() {
    assert_eq!(gpsd_socket_path("/dev/ttyAMA0"), Some(PathBuf::from("/run/chrony.ttyAMA0.sock")));
    assert_eq!(gpsd_socket_path("/dev/pps0"), Some(PathBuf::from("/run/chrony.pps0.sock")));
    assert_eq!(gpsd_socket_path("/"), None);
}
