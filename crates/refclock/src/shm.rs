//! gpsd's NTP shared-memory segment (ntpd's "SHM" refclock): attaching to a unit's System V
//! segment, the reader's side of the count/valid protocol, and the segment's two C layouts.

use std::fmt;
use std::io;
use std::sync::atomic::{Ordering, fence};

use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::packet::LeapIndicator;
use syhub_ntp_sys::errno;
use syhub_ntp_sys::shm::{self, Attached, Create, SegmentId};

use crate::{RefSample, RefclockError};

/// The System V key of unit 0 ("NTP0" in ASCII); unit N uses `SHM_KEY_BASE + N`.
pub const SHM_KEY_BASE: i32 = 0x4E54_5030;

/// The highest unit: ntpd names SHM clocks 127.127.28.N, so N fits in one octet.
pub(crate) const MAX_UNIT: u32 = 255;

/// The segment as the C writer declares it (`struct shmTime`), with `S` standing for `time_t`.
///
/// Natural alignment makes two layouts: 80 bytes where `time_t` is 32 bits (32-bit ARM before
/// Debian's 64-bit time transition), and 96 bytes where it is 64 bits (64-bit targets, and 32-bit
/// ARM built with `_TIME_BITS=64`), with 4 bytes of padding before each 64-bit seconds field.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ShmTime<S> {
    /// 0: only `valid` guards the sample; 1: `count` is also bumped before and after each write.
    mode: i32,
    count: i32,
    /// Reference (true) time of the sample, whole seconds since the Unix epoch.
    clock_sec: S,
    clock_usec: i32,
    /// System time at which the writer took the sample.
    receive_sec: S,
    receive_usec: i32,
    /// 0 no warning, 1 insert a second, 2 delete a second, 3 not synchronised.
    leap: i32,
    /// log2 of the writer's precision in seconds.
    precision: i32,
    nsamples: i32,
    /// Nonzero while a sample is waiting to be read.
    valid: i32,
    /// The same times in nanoseconds; old writers leave these zero.
    clock_nsec: u32,
    receive_nsec: u32,
    dummy: [i32; 8],
}

// The C sizes on every target we build for (i386 alone packs 64-bit fields at 4 bytes), checked
// by `cargo check` for each target, which the unit tests cannot run on.
#[cfg(not(target_arch = "x86"))]
const _: () = assert!(size_of::<ShmTime<i32>>() == 80 && size_of::<ShmTime<i64>>() == 96);

/// The offsets of a layout's fields, from its struct.
macro_rules! field_offsets {
    ($t:ty) => {
        FieldOffsets {
            mode: std::mem::offset_of!($t, mode),
            count: std::mem::offset_of!($t, count),
            clock_sec: std::mem::offset_of!($t, clock_sec),
            clock_usec: std::mem::offset_of!($t, clock_usec),
            receive_sec: std::mem::offset_of!($t, receive_sec),
            receive_usec: std::mem::offset_of!($t, receive_usec),
            leap: std::mem::offset_of!($t, leap),
            precision: std::mem::offset_of!($t, precision),
            valid: std::mem::offset_of!($t, valid),
            clock_nsec: std::mem::offset_of!($t, clock_nsec),
            receive_nsec: std::mem::offset_of!($t, receive_nsec),
        }
    };
}

/// Which C layout a segment has: it depends on the width of the writer's `time_t`, and shows in the
/// segment's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShmLayout {
    /// 32-bit `time_t`: 80 bytes.
    Time32,
    /// 64-bit `time_t`: 96 bytes.
    Time64,
}

impl ShmLayout {
    /// The layout of this build's `time_t`, used when we create a segment.
    pub const NATIVE: Self =
        if syhub_ntp_sys::TIME_T_SIZE == 8 { Self::Time64 } else { Self::Time32 };

    /// The size of the segment in bytes.
    pub const fn size(self) -> usize {
        match self {
            Self::Time32 => size_of::<ShmTime<i32>>(),
            Self::Time64 => size_of::<ShmTime<i64>>(),
        }
    }

    /// The layout whose size is `size`, if any.
    pub fn from_size(size: usize) -> Option<Self> {
        [Self::Time32, Self::Time64].into_iter().find(|layout| layout.size() == size)
    }

    fn offsets(self) -> FieldOffsets {
        match self {
            Self::Time32 => field_offsets!(ShmTime<i32>),
            Self::Time64 => field_offsets!(ShmTime<i64>),
        }
    }
}

/// Byte offsets of the fields that the protocol touches.
#[derive(Debug, Clone, Copy)]
struct FieldOffsets {
    mode: usize,
    count: usize,
    clock_sec: usize,
    clock_usec: usize,
    receive_sec: usize,
    receive_usec: usize,
    leap: usize,
    precision: usize,
    valid: usize,
    clock_nsec: usize,
    receive_nsec: usize,
}

/// The System V key of a segment, named for messages by its unit when it is one of ntpd's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShmKey(i32);

impl ShmKey {
    /// The key of NTP SHM unit `unit` (0 to 255).
    pub fn for_unit(unit: u32) -> Result<Self, RefclockError> {
        if unit > MAX_UNIT {
            return Err(RefclockError::ShmUnitOutOfRange { unit });
        }
        Ok(Self(SHM_KEY_BASE + unit as i32))
    }

    pub const fn from_raw(key: i32) -> Self {
        Self(key)
    }

    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The NTP SHM unit this key belongs to, if it is in ntpd's range.
    pub fn unit(self) -> Option<u32> {
        let unit = u32::try_from(self.0.checked_sub(SHM_KEY_BASE)?).ok()?;
        (unit <= MAX_UNIT).then_some(unit)
    }
}

impl fmt::Display for ShmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit() {
            Some(unit) => write!(f, "gpsd's SHM segment for unit {unit} (key {:#X})", self.0),
            None => write!(f, "the SHM segment with key {:#X}", self.0),
        }
    }
}

/// The raw time fields of a segment, as a writer fills them. Public with the `testing` feature
/// (for a fake gpsd), the crate's own otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(not(any(test, feature = "testing")), allow(unreachable_pub))]
pub struct ShmFields {
    /// Reference (true) time: seconds since the Unix epoch, and the fraction in µs and in ns.
    pub clock_sec: i64,
    pub clock_usec: i32,
    pub clock_nsec: u32,
    /// System time at the same moment.
    pub receive_sec: i64,
    pub receive_usec: i32,
    pub receive_nsec: u32,
    /// 0 none, 1 insert, 2 delete, 3 not synchronised.
    pub leap: i32,
    /// log2 seconds.
    pub precision: i32,
}

impl ShmFields {
    /// Fields for a reference time and a system time given as Unix `(seconds, nanoseconds)`, with
    /// the microsecond fields filled to agree, as gpsd does.
    #[cfg(any(test, feature = "testing"))]
    pub fn from_unix(reference: (i64, u32), local: (i64, u32), leap: i32, precision: i32) -> Self {
        Self {
            clock_sec: reference.0,
            clock_usec: (reference.1 / 1000) as i32,
            clock_nsec: reference.1,
            receive_sec: local.0,
            receive_usec: (local.1 / 1000) as i32,
            receive_nsec: local.1,
            leap,
            precision,
        }
    }

    /// Converts to a sample, or says why the fields cannot be a sample.
    fn to_sample(self) -> Result<RefSample, String> {
        let leap = u8::try_from(self.leap)
            .ok()
            .filter(|bits| *bits <= 3)
            .map(LeapIndicator::from_bits)
            .ok_or_else(|| format!("leap value {} is not 0 to 3", self.leap))?;
        let clock_nanos = fraction_nanos("clock", self.clock_usec, self.clock_nsec)?;
        let receive_nanos = fraction_nanos("receive", self.receive_usec, self.receive_nsec)?;
        Ok(RefSample {
            reference: NtpTimestamp::from_unix(self.clock_sec, clock_nanos),
            local: NtpTimestamp::from_unix(self.receive_sec, receive_nanos),
            leap,
            precision: i8::try_from(self.precision).ok(),
        })
    }
}

/// The fraction of a second in nanoseconds: the nanosecond field when it agrees with the
/// microsecond one (a writer that predates it leaves it zero or stale), else the microseconds.
fn fraction_nanos(which: &str, usec: i32, nsec: u32) -> Result<u32, String> {
    let usec = u32::try_from(usec)
        .ok()
        .filter(|usec| *usec < 1_000_000)
        .ok_or_else(|| format!("{which} microseconds {usec} are not 0 to 999999"))?;
    Ok(if nsec / 1000 == usec { nsec } else { usec * 1000 })
}

/// What the reader protocol needs from a segment, each call one volatile access (or, for
/// `fields`, one volatile copy). Tests implement it over ordinary memory to interleave a writer.
pub(crate) trait ShmAccess {
    fn mode(&self) -> i32;
    fn count(&self) -> i32;
    fn valid(&self) -> i32;
    fn fields(&self) -> ShmFields;
    fn clear_valid(&mut self);
}

/// What one pass of the reader protocol found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    Sample(ShmFields),
    NoNewSample,
    ChangedWhileReading,
    BadMode(i32),
}

/// The reader's side of the protocol. Mode 1: read `count`, copy the sample, read `count` again;
/// a change means the writer was busy and the copy may be torn, so it is dropped and `valid` is
/// left for the next pass. Mode 0: `valid` alone. A sample that is taken clears `valid`.
pub(crate) fn read_protocol(memory: &mut impl ShmAccess) -> ReadOutcome {
    match memory.mode() {
        0 => {
            if memory.valid() == 0 {
                return ReadOutcome::NoNewSample;
            }
            fence(Ordering::SeqCst);
            let fields = memory.fields();
            fence(Ordering::SeqCst);
            memory.clear_valid();
            ReadOutcome::Sample(fields)
        }
        1 => {
            let count_before = memory.count();
            fence(Ordering::SeqCst);
            let valid = memory.valid();
            let fields = memory.fields();
            fence(Ordering::SeqCst);
            let count_after = memory.count();
            if valid == 0 {
                ReadOutcome::NoNewSample
            } else if count_before != count_after {
                ReadOutcome::ChangedWhileReading
            } else {
                memory.clear_valid();
                ReadOutcome::Sample(fields)
            }
        }
        mode => ReadOutcome::BadMode(mode),
    }
}

/// One poll of a segment: the protocol, then the fields checked and converted.
pub(crate) fn poll_memory(
    segment: ShmKey,
    memory: &mut impl ShmAccess,
) -> Result<Option<RefSample>, RefclockError> {
    match read_protocol(memory) {
        ReadOutcome::Sample(fields) => fields
            .to_sample()
            .map(Some)
            .map_err(|problem| RefclockError::ShmBadSample { segment, problem }),
        ReadOutcome::NoNewSample => Ok(None),
        ReadOutcome::ChangedWhileReading => Err(RefclockError::ShmChangedWhileReading { segment }),
        ReadOutcome::BadMode(mode) => Err(RefclockError::ShmBadMode { segment, mode }),
    }
}

/// Memory that holds a segment: 32- and 64-bit fields at byte offsets, aligned for their size.
/// An attached System V segment (volatile accesses, another process changes it) or, in tests,
/// ordinary memory.
pub(crate) trait SegmentMemory {
    fn load_i32(&self, offset: usize) -> i32;
    fn load_u32(&self, offset: usize) -> u32;
    fn load_i64(&self, offset: usize) -> i64;
    fn store_i32(&mut self, offset: usize, value: i32);
    #[cfg(any(test, feature = "testing"))]
    fn store_u32(&mut self, offset: usize, value: u32);
    #[cfg(any(test, feature = "testing"))]
    fn store_i64(&mut self, offset: usize, value: i64);
}

impl SegmentMemory for Attached {
    fn load_i32(&self, offset: usize) -> i32 {
        Attached::load_i32(self, offset)
    }
    fn load_u32(&self, offset: usize) -> u32 {
        Attached::load_u32(self, offset)
    }
    fn load_i64(&self, offset: usize) -> i64 {
        Attached::load_i64(self, offset)
    }
    fn store_i32(&mut self, offset: usize, value: i32) {
        Attached::store_i32(self, offset, value)
    }
    #[cfg(any(test, feature = "testing"))]
    fn store_u32(&mut self, offset: usize, value: u32) {
        Attached::store_u32(self, offset, value)
    }
    #[cfg(any(test, feature = "testing"))]
    fn store_i64(&mut self, offset: usize, value: i64) {
        Attached::store_i64(self, offset, value)
    }
}

/// A segment's fields in one of the two layouts, over its memory.
pub(crate) struct MappedShm<M> {
    memory: M,
    layout: ShmLayout,
    offsets: FieldOffsets,
}

impl<M: SegmentMemory> MappedShm<M> {
    /// `memory` must hold at least `layout.size()` bytes (accesses beyond it panic).
    pub(crate) fn new(memory: M, layout: ShmLayout) -> Self {
        Self { memory, layout, offsets: layout.offsets() }
    }

    fn load_i32(&self, offset: usize) -> i32 {
        self.memory.load_i32(offset)
    }

    fn load_u32(&self, offset: usize) -> u32 {
        self.memory.load_u32(offset)
    }

    fn load_seconds(&self, offset: usize) -> i64 {
        match self.layout {
            ShmLayout::Time32 => i64::from(self.load_i32(offset)),
            // In the 64-bit layout seconds fields are 8-aligned.
            ShmLayout::Time64 => self.memory.load_i64(offset),
        }
    }

    fn store_i32(&mut self, offset: usize, value: i32) {
        self.memory.store_i32(offset, value)
    }

    #[cfg(any(test, feature = "testing"))]
    fn store_u32(&mut self, offset: usize, value: u32) {
        self.memory.store_u32(offset, value)
    }

    #[cfg(any(test, feature = "testing"))]
    fn store_seconds(&mut self, offset: usize, value: i64) {
        match self.layout {
            // A 32-bit time_t holds the seconds modulo 2^32, as the C writer's would.
            ShmLayout::Time32 => self.store_i32(offset, value as i32),
            ShmLayout::Time64 => self.memory.store_i64(offset, value),
        }
    }

    /// gpsd's side of mode 1: `valid` down, `count` up, the sample, `count` up, `valid` up.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn write_mode1(&mut self, fields: &ShmFields) {
        let o = self.offsets;
        self.store_i32(o.mode, 1);
        self.store_i32(o.valid, 0);
        let count = self.load_i32(o.count);
        self.store_i32(o.count, count.wrapping_add(1));
        fence(Ordering::SeqCst);
        self.store_fields(fields);
        fence(Ordering::SeqCst);
        self.store_i32(o.count, count.wrapping_add(2));
        fence(Ordering::SeqCst);
        self.store_i32(o.valid, 1);
    }

    /// The older writer's side of mode 0: the sample, then `valid` up.
    #[cfg(test)]
    pub(crate) fn write_mode0(&mut self, fields: &ShmFields) {
        self.store_i32(self.offsets.mode, 0);
        self.store_fields(fields);
        fence(Ordering::SeqCst);
        self.store_i32(self.offsets.valid, 1);
    }

    #[cfg(any(test, feature = "testing"))]
    fn store_fields(&mut self, fields: &ShmFields) {
        let o = self.offsets;
        self.store_seconds(o.clock_sec, fields.clock_sec);
        self.store_i32(o.clock_usec, fields.clock_usec);
        self.store_u32(o.clock_nsec, fields.clock_nsec);
        self.store_seconds(o.receive_sec, fields.receive_sec);
        self.store_i32(o.receive_usec, fields.receive_usec);
        self.store_u32(o.receive_nsec, fields.receive_nsec);
        self.store_i32(o.leap, fields.leap);
        self.store_i32(o.precision, fields.precision);
    }

    #[cfg(test)]
    pub(crate) fn set_count(&mut self, count: i32) {
        self.store_i32(self.offsets.count, count);
    }
}

impl<M: SegmentMemory> ShmAccess for MappedShm<M> {
    fn mode(&self) -> i32 {
        self.load_i32(self.offsets.mode)
    }

    fn count(&self) -> i32 {
        self.load_i32(self.offsets.count)
    }

    fn valid(&self) -> i32 {
        self.load_i32(self.offsets.valid)
    }

    fn fields(&self) -> ShmFields {
        let o = self.offsets;
        ShmFields {
            clock_sec: self.load_seconds(o.clock_sec),
            clock_usec: self.load_i32(o.clock_usec),
            clock_nsec: self.load_u32(o.clock_nsec),
            receive_sec: self.load_seconds(o.receive_sec),
            receive_usec: self.load_i32(o.receive_usec),
            receive_nsec: self.load_u32(o.receive_nsec),
            leap: self.load_i32(o.leap),
            precision: self.load_i32(o.precision),
        }
    }

    fn clear_valid(&mut self) {
        self.store_i32(self.offsets.valid, 0);
    }
}

/// A System V segment attached to this process; detached on drop.
struct Attachment {
    key: ShmKey,
    id: SegmentId,
    memory: MappedShm<Attached>,
}

/// How to get a segment that may not exist yet.
#[derive(Clone, Copy)]
enum Creation {
    /// Only attach to an existing segment.
    Never,
    /// Create it with these permission bits (and our layout) when missing, as ntpd does.
    IfMissing(u32),
    /// Create it, failing if it exists (tests' writers).
    #[cfg(any(test, feature = "testing"))]
    Exclusive(u32, ShmLayout),
}

impl Attachment {
    fn open(key: ShmKey, creation: Creation) -> Result<Self, RefclockError> {
        let fail = |call, source: io::Error| match source.raw_os_error() {
            Some(errno::EACCES) | Some(errno::EPERM) => {
                RefclockError::ShmPermissionDenied { segment: key }
            }
            _ => RefclockError::ShmSystemCall { segment: key, call, source },
        };
        let id = match creation {
            Creation::Never | Creation::IfMissing(_) => match shm::get(key.0, 0, Create::Never) {
                Ok(id) => id,
                Err(error) if error.raw_os_error() == Some(errno::ENOENT) => match creation {
                    Creation::IfMissing(permissions) => {
                        let size = ShmLayout::NATIVE.size();
                        shm::get(key.0, size, Create::IfMissing(permissions))
                            .map_err(|error| fail("shmget(IPC_CREAT)", error))?
                    }
                    _ => return Err(RefclockError::ShmNotFound { segment: key }),
                },
                Err(error) => return Err(fail("shmget", error)),
            },
            #[cfg(any(test, feature = "testing"))]
            Creation::Exclusive(permissions, layout) => {
                shm::get(key.0, layout.size(), Create::Exclusive(permissions))
                    .map_err(|error| fail("shmget(IPC_CREAT | IPC_EXCL)", error))?
            }
        };

        let size = id.size().map_err(|error| fail("shmctl(IPC_STAT)", error))?;
        let layout =
            ShmLayout::from_size(size).ok_or(RefclockError::ShmWrongSize { segment: key, size })?;
        let attached = Attached::attach(id).map_err(|error| fail("shmat", error))?;
        Ok(Self { key, id, memory: MappedShm::new(attached, layout) })
    }
}

/// A reader attached to an NTP SHM segment (gpsd's, or any writer's that follows ntpd's protocol).
///
/// Poll it about once a second: each poll returns the sample written since the last one, if any.
/// Reading clears the segment's `valid` flag, as ntpd does, so only one reader may use a unit.
pub struct ShmSegment {
    attachment: Attachment,
}

impl ShmSegment {
    /// Attaches to NTP SHM unit `unit` (key `0x4E545030 + unit`).
    ///
    /// When the segment does not exist and `create` is true, creates it as ntpd does for gpsd: in
    /// this build's layout, mode 0600 for units 0 and 1 (so only root writes them) and 0666 for
    /// units 2 and up (gpsd running unprivileged). gpsd attaches to a segment that exists, so the
    /// daemon may start first. Creating needs the right to make segments, and a unit that gpsd
    /// will write as root should be created while we are still root. Attach before dropping
    /// privileges either way: units 0 and 1 are root-only.
    pub fn attach(unit: u32, create: bool) -> Result<Self, RefclockError> {
        let key = ShmKey::for_unit(unit)?;
        let permissions = if unit < 2 { 0o600 } else { 0o666 };
        let creation = if create { Creation::IfMissing(permissions) } else { Creation::Never };
        Ok(Self { attachment: Attachment::open(key, creation)? })
    }

    /// Attaches to the segment with System V key `key` (mode 0600 if `create` makes it).
    pub fn attach_key(key: i32, create: bool) -> Result<Self, RefclockError> {
        let creation = if create { Creation::IfMissing(0o600) } else { Creation::Never };
        Ok(Self { attachment: Attachment::open(ShmKey(key), creation)? })
    }

    pub fn key(&self) -> ShmKey {
        self.attachment.key
    }

    /// The writer's layout, told by the segment's size.
    pub fn layout(&self) -> ShmLayout {
        self.attachment.memory.layout
    }

    /// The sample written since the last poll, `None` if there is none.
    ///
    /// [`RefclockError::ShmChangedWhileReading`] and [`RefclockError::ShmBadSample`] lose only
    /// this sample: poll again later.
    pub fn poll(&mut self) -> Result<Option<RefSample>, RefclockError> {
        poll_memory(self.attachment.key, &mut self.attachment.memory)
    }
}

impl fmt::Debug for ShmSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmSegment")
            .field("key", &self.attachment.key)
            .field("id", &self.attachment.id.raw())
            .field("layout", &self.attachment.memory.layout)
            .finish()
    }
}

/// The writer's side, for tests: a segment of its own, written with gpsd's mode 1 protocol and
/// removed (IPC_RMID) when dropped.
#[cfg(any(test, feature = "testing"))]
pub struct ShmWriter {
    attachment: Attachment,
}

#[cfg(any(test, feature = "testing"))]
impl ShmWriter {
    /// Creates a new segment (mode 0600) at `key` in `layout`; fails if one exists there. Use
    /// [`ShmWriter::test_key`], never a key in ntpd's range, so tests leave real writers alone.
    pub fn create(key: i32, layout: ShmLayout) -> Result<Self, RefclockError> {
        let attachment = Attachment::open(ShmKey(key), Creation::Exclusive(0o600, layout))?;
        Ok(Self { attachment })
    }

    /// A key for this process's test number `index` (0 to 15): `0x5359` ("SY") in the high half,
    /// then 12 bits of the process id and the index; outside ntpd's range.
    pub fn test_key(index: u8) -> i32 {
        0x5359_0000 | ((std::process::id() as i32 & 0x0fff) << 4) | i32::from(index & 0x0f)
    }

    pub fn key(&self) -> ShmKey {
        self.attachment.key
    }

    /// Writes one sample as gpsd does (mode 1).
    pub fn write(&mut self, fields: &ShmFields) {
        self.attachment.memory.write_mode1(fields);
    }
}

#[cfg(any(test, feature = "testing"))]
impl Drop for ShmWriter {
    fn drop(&mut self) {
        // The segment goes once all detach.
        let _ = self.attachment.id.remove();
    }
}

#[cfg(test)]
mod tests;
