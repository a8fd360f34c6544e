//! Tests of the SHM reader: the protocol over ordinary memory, then real segments at private keys.

use std::cell::RefCell;
use std::mem::offset_of;

use super::*;

const REFERENCE: (i64, u32) = (1_700_000_000, 123_456_789);
const LOCAL: (i64, u32) = (1_700_000_000, 120_000_000);

/// A segment's bytes in ordinary memory, big enough for either layout.
struct HeapMemory([u8; 96]);

impl HeapMemory {
    fn bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        self.0[offset..offset + N].try_into().expect("N bytes")
    }
}

impl SegmentMemory for HeapMemory {
    fn load_i32(&self, offset: usize) -> i32 {
        i32::from_ne_bytes(self.bytes(offset))
    }
    fn load_u32(&self, offset: usize) -> u32 {
        u32::from_ne_bytes(self.bytes(offset))
    }
    fn load_i64(&self, offset: usize) -> i64 {
        i64::from_ne_bytes(self.bytes(offset))
    }
    fn store_i32(&mut self, offset: usize, value: i32) {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
    }
    fn store_u32(&mut self, offset: usize, value: u32) {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
    }
    fn store_i64(&mut self, offset: usize, value: i64) {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
    }
}

/// A segment in ordinary memory, read and written as a mapped one is.
struct HeapShm {
    memory: MappedShm<HeapMemory>,
}

impl HeapShm {
    fn new(layout: ShmLayout) -> Self {
        Self { memory: MappedShm::new(HeapMemory([0; 96]), layout) }
    }
}

fn good_fields() -> ShmFields {
    ShmFields::from_unix(REFERENCE, LOCAL, 0, -20)
}

fn test_segment() -> ShmKey {
    ShmKey::for_unit(0).unwrap()
}

#[test]
fn shm_time_layouts_match_the_c_struct() {
    // From offsetof()/sizeof() of struct shmTime compiled by gcc for x86_64 and for armhf with
    // and without _TIME_BITS=64.
    assert_eq!(size_of::<ShmTime<i32>>(), 80);
    assert_eq!(ShmLayout::Time32.size(), 80);
    let narrow = ShmLayout::Time32.offsets();
    assert_eq!(
        [
            narrow.clock_sec,
            narrow.clock_usec,
            narrow.receive_sec,
            narrow.receive_usec,
            narrow.leap,
            narrow.valid,
            narrow.clock_nsec,
            narrow.receive_nsec,
            offset_of!(ShmTime<i32>, dummy),
        ],
        [8, 12, 16, 20, 24, 36, 40, 44, 48]
    );
    assert_eq!(size_of::<ShmTime<i64>>(), 96);
    assert_eq!(ShmLayout::Time64.size(), 96);
    let wide = ShmLayout::Time64.offsets();
    assert_eq!(
        [
            wide.clock_sec,
            wide.clock_usec,
            wide.receive_sec,
            wide.receive_usec,
            wide.leap,
            wide.valid,
            wide.clock_nsec,
            wide.receive_nsec,
            offset_of!(ShmTime<i64>, dummy),
        ],
        [8, 16, 24, 32, 36, 48, 52, 56, 60]
    );
    assert_eq!((narrow.mode, narrow.count, wide.mode, wide.count), (0, 4, 0, 4));
}

#[test]
fn layout_is_told_by_size() {
    assert_eq!(ShmLayout::from_size(80), Some(ShmLayout::Time32));
    assert_eq!(ShmLayout::from_size(96), Some(ShmLayout::Time64));
    assert_eq!(ShmLayout::from_size(92), None);
    let native =
        if syhub_ntp_sys::TIME_T_SIZE == 8 { ShmLayout::Time64 } else { ShmLayout::Time32 };
    assert_eq!(ShmLayout::NATIVE, native);
}

#[test]
fn unit_keys_start_at_ntp0() {
    assert_eq!(ShmKey::for_unit(0).unwrap().raw(), 0x4E54_5030);
    assert_eq!(ShmKey::for_unit(2).unwrap().raw(), 0x4E54_5032);
    assert_eq!(ShmKey::for_unit(2).unwrap().unit(), Some(2));
    assert_eq!(ShmKey::from_raw(0x5359_0001).unit(), None);
    assert!(matches!(ShmKey::for_unit(256), Err(RefclockError::ShmUnitOutOfRange { unit: 256 })));
    assert_eq!(ShmKey::from_raw(0x5359_0001).to_string(), "the SHM segment with key 0x53590001");
}

#[test]
fn a_good_sample_is_read_once_then_none() {
    let mut shm = HeapShm::new(ShmLayout::Time64);
    shm.memory.write_mode1(&good_fields());
    let sample = poll_memory(test_segment(), &mut shm.memory).unwrap().expect("a sample");
    assert_eq!(sample.reference, NtpTimestamp::from_unix(REFERENCE.0, REFERENCE.1));
    assert_eq!(sample.local, NtpTimestamp::from_unix(LOCAL.0, LOCAL.1));
    assert_eq!(sample.leap, LeapIndicator::NoWarning);
    assert_eq!(sample.precision, Some(-20));
    assert!((sample.offset() - 0.003_456_789).abs() < 1e-9);
    assert_eq!(shm.memory.valid(), 0, "reading clears valid");
    assert_eq!(poll_memory(test_segment(), &mut shm.memory).unwrap(), None);
}

#[test]
fn valid_zero_means_no_new_sample() {
    let mut shm = HeapShm::new(ShmLayout::Time64);
    shm.memory.write_mode1(&good_fields());
    shm.memory.clear_valid();
    assert_eq!(read_protocol(&mut shm.memory), ReadOutcome::NoNewSample);
    assert_eq!(poll_memory(test_segment(), &mut shm.memory).unwrap(), None);
}

/// Passes accesses through to a segment and plays a writer that starts a new sample while the
/// reader is copying the old one (once).
struct WriterInterrupts {
    shm: RefCell<HeapShm>,
    interrupt: RefCell<bool>,
}

impl ShmAccess for WriterInterrupts {
    fn mode(&self) -> i32 {
        self.shm.borrow().memory.mode()
    }
    fn count(&self) -> i32 {
        self.shm.borrow().memory.count()
    }
    fn valid(&self) -> i32 {
        self.shm.borrow().memory.valid()
    }
    fn fields(&self) -> ShmFields {
        let fields = self.shm.borrow().memory.fields();
        if self.interrupt.replace(false) {
            let mut shm = self.shm.borrow_mut();
            let count = shm.memory.count();
            shm.memory.set_count(count.wrapping_add(1));
        }
        fields
    }
    fn clear_valid(&mut self) {
        self.shm.borrow_mut().memory.clear_valid();
    }
}

#[test]
fn count_changed_while_reading_discards_the_sample() {
    let mut shm = HeapShm::new(ShmLayout::Time64);
    shm.memory.write_mode1(&good_fields());
    let mut access = WriterInterrupts { shm: RefCell::new(shm), interrupt: RefCell::new(true) };
    assert_eq!(read_protocol(&mut access), ReadOutcome::ChangedWhileReading);
    assert_eq!(access.valid(), 1, "valid is left for the writer's next sample");

    let mut shm = HeapShm::new(ShmLayout::Time64);
    shm.memory.write_mode1(&good_fields());
    let mut access = WriterInterrupts { shm: RefCell::new(shm), interrupt: RefCell::new(true) };
    let error = poll_memory(test_segment(), &mut access).unwrap_err();
    assert!(matches!(error, RefclockError::ShmChangedWhileReading { .. }), "{error}");
    assert!(error.is_one_sample_lost());
    // The writer finishes; the next poll reads a whole sample.
    access.shm.borrow_mut().memory.write_mode1(&good_fields());
    assert!(poll_memory(test_segment(), &mut access).unwrap().is_some());
}

#[test]
fn nanoseconds_are_used_when_they_agree_with_microseconds() {
    let mut shm = HeapShm::new(ShmLayout::Time64);
    shm.memory.write_mode1(&good_fields());
    let sample = poll_memory(test_segment(), &mut shm.memory).unwrap().unwrap();
    assert_eq!(sample.reference.to_unix_near(REFERENCE.0), REFERENCE);
}

#[test]
fn microseconds_are_used_when_nanoseconds_disagree() {
    let mut shm = HeapShm::new(ShmLayout::Time64);
    // An old writer: nanoseconds left zero.
    let old = ShmFields { clock_nsec: 0, receive_nsec: 0, ..good_fields() };
    shm.memory.write_mode1(&old);
    let sample = poll_memory(test_segment(), &mut shm.memory).unwrap().unwrap();
    assert_eq!(sample.reference.to_unix_near(REFERENCE.0), (REFERENCE.0, 123_456_000));
    assert_eq!(sample.local.to_unix_near(LOCAL.0), (LOCAL.0, 120_000_000));
    // Stale nanoseconds from an earlier sample.
    let stale = ShmFields { clock_nsec: 999_999_999, ..good_fields() };
    shm.memory.write_mode1(&stale);
    let sample = poll_memory(test_segment(), &mut shm.memory).unwrap().unwrap();
    assert_eq!(sample.reference.to_unix_near(REFERENCE.0), (REFERENCE.0, 123_456_000));
}

#[test]
fn mode_0_uses_the_valid_flag_alone() {
    let mut shm = HeapShm::new(ShmLayout::Time64);
    shm.memory.write_mode0(&good_fields());
    assert_eq!(shm.memory.mode(), 0);
    let sample = poll_memory(test_segment(), &mut shm.memory).unwrap().expect("a sample");
    assert_eq!(sample.reference, NtpTimestamp::from_unix(REFERENCE.0, REFERENCE.1));
    assert_eq!(poll_memory(test_segment(), &mut shm.memory).unwrap(), None);
}

#[test]
fn an_unknown_mode_is_an_error() {
    let mut shm = HeapShm::new(ShmLayout::Time64);
    shm.memory.write_mode1(&good_fields());
    shm.memory.store_i32(shm.memory.offsets.mode, 7);
    let error = poll_memory(test_segment(), &mut shm.memory).unwrap_err();
    assert!(matches!(error, RefclockError::ShmBadMode { mode: 7, .. }), "{error}");
}

#[test]
fn impossible_fields_are_errors_not_panics() {
    let cases = [
        (ShmFields { leap: 4, ..good_fields() }, "leap value 4"),
        (ShmFields { leap: -1, ..good_fields() }, "leap value -1"),
        (ShmFields { clock_usec: 1_000_000, ..good_fields() }, "clock microseconds 1000000"),
        (ShmFields { receive_usec: -5, ..good_fields() }, "receive microseconds -5"),
    ];
    for (fields, problem_start) in cases {
        let mut shm = HeapShm::new(ShmLayout::Time64);
        shm.memory.write_mode1(&fields);
        match poll_memory(test_segment(), &mut shm.memory) {
            Err(RefclockError::ShmBadSample { problem, .. }) => {
                assert!(problem.starts_with(problem_start), "{problem}")
            }
            other => panic!("{fields:?} gave {other:?}"),
        }
    }
}

#[test]
fn leap_and_precision_are_passed_on() {
    let mut shm = HeapShm::new(ShmLayout::Time64);
    for (leap, expected) in [
        (1, LeapIndicator::InsertSecond),
        (2, LeapIndicator::DeleteSecond),
        (3, LeapIndicator::Unsynchronised),
    ] {
        shm.memory.write_mode1(&ShmFields { leap, ..good_fields() });
        let sample = poll_memory(test_segment(), &mut shm.memory).unwrap().unwrap();
        assert_eq!(sample.leap, expected);
    }
    // A precision that no i8 holds is unknown rather than wrong.
    shm.memory.write_mode1(&ShmFields { precision: 1000, ..good_fields() });
    assert_eq!(poll_memory(test_segment(), &mut shm.memory).unwrap().unwrap().precision, None);
}

#[test]
fn the_32_bit_layout_reads_the_same_sample() {
    let mut shm = HeapShm::new(ShmLayout::Time32);
    shm.memory.write_mode1(&good_fields());
    let sample = poll_memory(test_segment(), &mut shm.memory).unwrap().unwrap();
    assert_eq!(sample.reference, NtpTimestamp::from_unix(REFERENCE.0, REFERENCE.1));
    assert_eq!(sample.local, NtpTimestamp::from_unix(LOCAL.0, LOCAL.1));
}

#[test]
fn seconds_past_2038_in_a_32_bit_time_t_give_the_right_ntp_time() {
    // 2040-06-01: a 32-bit time_t holds it as a negative number; NTP time is modulo 2^32 too.
    let seconds = 2_222_208_000;
    let mut shm = HeapShm::new(ShmLayout::Time32);
    shm.memory.write_mode1(&ShmFields::from_unix((seconds, 0), (seconds, 0), 0, -1));
    let sample = poll_memory(test_segment(), &mut shm.memory).unwrap().unwrap();
    assert_eq!(sample.reference, NtpTimestamp::from_unix(seconds, 0));
}

/// Removes the segment at one of this process's test keys when dropped.
struct RemoveSegment(i32);

impl Drop for RemoveSegment {
    fn drop(&mut self) {
        assert_eq!(self.0 >> 16, 0x5359, "only test keys are ever removed");
        if let Ok(id) = shm::get(self.0, 0, Create::Never) {
            let _ = id.remove();
        }
    }
}

#[test]
fn a_real_segment_written_by_a_writer_is_read_once() {
    let key = ShmWriter::test_key(0);
    let mut writer = ShmWriter::create(key, ShmLayout::NATIVE).expect("create a test segment");
    let mut reader = ShmSegment::attach_key(key, false).expect("attach");
    assert_eq!(reader.layout(), ShmLayout::NATIVE);
    assert_eq!(reader.poll().unwrap(), None, "a new segment has no sample");
    writer.write(&good_fields());
    let sample = reader.poll().unwrap().expect("a sample");
    assert_eq!(sample.reference, NtpTimestamp::from_unix(REFERENCE.0, REFERENCE.1));
    assert_eq!(reader.poll().unwrap(), None);
    writer.write(&ShmFields { leap: 1, ..good_fields() });
    assert_eq!(reader.poll().unwrap().unwrap().leap, LeapIndicator::InsertSecond);
}

#[test]
fn a_real_80_byte_segment_is_read_with_32_bit_seconds() {
    let key = ShmWriter::test_key(1);
    let mut writer = ShmWriter::create(key, ShmLayout::Time32).expect("create a test segment");
    let mut reader = ShmSegment::attach_key(key, false).expect("attach");
    assert_eq!(reader.layout(), ShmLayout::Time32);
    writer.write(&good_fields());
    let sample = reader.poll().unwrap().expect("a sample");
    assert_eq!(sample.local, NtpTimestamp::from_unix(LOCAL.0, LOCAL.1));
}

#[test]
fn a_missing_segment_asks_whether_gpsd_runs() {
    let key = ShmWriter::test_key(2);
    let error = ShmSegment::attach_key(key, false).unwrap_err();
    assert!(matches!(error, RefclockError::ShmNotFound { .. }), "{error}");
    assert!(
        error.to_string().ends_with("does not exist: is gpsd running and does it have a device?")
    );
}

#[test]
fn attach_with_create_makes_a_segment_in_our_layout() {
    let key = ShmWriter::test_key(3);
    let _cleanup = RemoveSegment(key);
    let mut reader = ShmSegment::attach_key(key, true).expect("create and attach");
    assert_eq!(reader.layout(), ShmLayout::NATIVE);
    assert_eq!(reader.poll().unwrap(), None);
    // A second reader finds it without creating.
    assert!(ShmSegment::attach_key(key, false).is_ok());
}

#[test]
fn a_segment_of_another_size_is_refused() {
    let key = ShmWriter::test_key(4);
    shm::get(key, 100, Create::Exclusive(0o600)).expect("create the test segment");
    let _cleanup = RemoveSegment(key);
    let error = ShmSegment::attach_key(key, false).unwrap_err();
    assert!(matches!(error, RefclockError::ShmWrongSize { size: 100, .. }), "{error}");
}
