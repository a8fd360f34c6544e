//! The kernel PPS API's ioctls on /dev/ppsN (linux/pps.h): the structs they carry, their request
//! numbers, and one safe function per call. Deciding the mode and reading edges is the refclock
//! crate's business.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// The only API version Linux has (`PPS_API_VERS_1`).
pub const PPS_API_VERS: i32 = 1;
/// Mode and capability bit: capture assert (leading) edges.
pub const PPS_CAPTUREASSERT: i32 = 0x01;
/// Mode and capability bit: timestamps as seconds and nanoseconds.
pub const PPS_TSFMT_TSPEC: i32 = 0x1000;
/// Flag of a [`PpsTime`] timeout: there is none, wait for the next event.
const PPS_TIME_INVALID: u32 = 1 << 0;

/// A time as the PPS API carries it (`struct pps_ktime`): 16 bytes everywhere.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PpsTime {
    pub sec: i64,
    pub nsec: i32,
    pub flags: u32,
}

/// What PPS_FETCH reports (`struct pps_kinfo`): 48 bytes, with 4 of padding at the end.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PpsInfo {
    /// Counts assert edges since the device appeared; wraps.
    pub assert_sequence: u32,
    pub clear_sequence: u32,
    /// System time (CLOCK_REALTIME) of the latest assert edge.
    pub assert_tu: PpsTime,
    pub clear_tu: PpsTime,
    pub current_mode: i32,
}

/// The device's parameters (`struct pps_kparams`): 40 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PpsParams {
    pub api_version: i32,
    pub mode: i32,
    /// Offset compensation, applied only with PPS_OFFSETASSERT / PPS_OFFSETCLEAR in `mode`.
    pub assert_off_tu: PpsTime,
    pub clear_off_tu: PpsTime,
}

/// PPS_FETCH's argument (`struct pps_fdata`): 64 bytes, the timeout at offset 48.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct PpsFetchData {
    info: PpsInfo,
    timeout: PpsTime,
}

// The C sizes on every target we build for, checked by `cargo check` for each target (i386
// alone packs 64-bit fields at 4 bytes).
#[cfg(not(target_arch = "x86"))]
const _: () = assert!(
    size_of::<PpsTime>() == 16
        && size_of::<PpsInfo>() == 48
        && size_of::<PpsParams>() == 40
        && size_of::<PpsFetchData>() == 64
);

/// The ioctl request numbers, encoded as asm-generic/ioctl.h does (and as the architectures with
/// a 3-bit direction field, mips, powerpc and sparc, do with their own values). pps.h declares the
/// argument types as pointers (`_IOR('p', 0xa1, struct pps_kparams *)`), so the size encoded in
/// each number is the size of a pointer: 8 on 64-bit targets and 4 on 32-bit ARM, not the size of
/// the struct passed. Numbers 'p' 0xa1 to 0xa5 belong to pps.h alone (ioctl-number.rst).
mod request {
    /// The read and write direction bits, and the width of the size field.
    #[cfg(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))]
    const DIRECTION: (u32, u32, u32) = (2, 4, 13);
    #[cfg(not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "sparc",
        target_arch = "sparc64"
    )))]
    const DIRECTION: (u32, u32, u32) = (2, 1, 14);
    const READ: u32 = DIRECTION.0;
    const WRITE: u32 = DIRECTION.1;
    const SIZE_BITS: u32 = DIRECTION.2;

    const fn encode(direction: u32, number: u32) -> u32 {
        let size = size_of::<*mut u8>() as u32;
        direction << (16 + SIZE_BITS) | size << 16 | (b'p' as u32) << 8 | number
    }

    pub(super) const GETPARAMS: u32 = encode(READ, 0xa1);
    pub(super) const SETPARAMS: u32 = encode(WRITE, 0xa2);
    pub(super) const GETCAP: u32 = encode(READ, 0xa3);
    pub(super) const FETCH: u32 = encode(READ | WRITE, 0xa4);
}

/// ioctl(2) with a pointer argument.
///
/// # Safety
/// `request` must be one of [`request`]'s numbers and `argument` must point at a live value of
/// the type that request carries, writable if the request writes it.
unsafe fn ioctl<T>(fd: BorrowedFd<'_>, request: u32, argument: *mut T) -> io::Result<()> {
    // SAFETY: `fd` is open for the borrow; the caller vouches for the request and the argument.
    // The request number is passed as the C type of this libc (unsigned long on glibc, int on
    // musl), bit for bit.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::Ioctl, argument) };
    if result == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// PPS_GETCAP: the mode bits the device supports.
pub fn get_cap(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut caps: libc::c_int = 0;
    // SAFETY: PPS_GETCAP writes one int, to a live one.
    unsafe { ioctl(fd, request::GETCAP, &raw mut caps) }?;
    Ok(caps)
}

/// PPS_GETPARAMS.
pub fn get_params(fd: BorrowedFd<'_>) -> io::Result<PpsParams> {
    let mut params = PpsParams::default();
    // SAFETY: PPS_GETPARAMS writes a pps_kparams, to a live one.
    unsafe { ioctl(fd, request::GETPARAMS, &raw mut params) }?;
    Ok(params)
}

/// PPS_SETPARAMS; the kernel demands CAP_SYS_TIME.
pub fn set_params(fd: BorrowedFd<'_>, params: &PpsParams) -> io::Result<()> {
    let mut params = *params;
    // SAFETY: PPS_SETPARAMS reads a pps_kparams, from a live one.
    unsafe { ioctl(fd, request::SETPARAMS, &raw mut params) }
}

/// PPS_FETCH: the latest edges. `Some(Duration::ZERO)` returns at once; a longer timeout waits up
/// to that long for a new edge (ETIMEDOUT if none comes); `None` waits for one.
///
/// A 32-bit process under a 64-bit kernel goes through the kernel's compatibility layer, and some
/// arm64 kernels read the timeout there in i386's packed layout, 4 bytes early; a zero timeout is
/// all zero bytes in either layout.
pub fn fetch(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<PpsInfo> {
    let timeout = match timeout {
        Some(timeout) => PpsTime {
            sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            nsec: timeout.subsec_nanos() as i32,
            flags: 0,
        },
        None => PpsTime { flags: PPS_TIME_INVALID, ..PpsTime::default() },
    };
    let mut data = PpsFetchData { info: PpsInfo::default(), timeout };
    // SAFETY: PPS_FETCH reads and writes a pps_fdata, a live one.
    unsafe { ioctl(fd, request::FETCH, &raw mut data) }?;
    Ok(data.info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;
    use std::os::fd::AsFd;

    #[test]
    fn request_numbers_match_pps_h() {
        // _IOR/_IOW/_IOWR('p', nr, pointer): direction << 30 | sizeof(pointer) << 16 | 'p' << 8 |
        // nr, worked out by hand from linux/pps.h and checked against gcc's values of
        // PPS_GETPARAMS etc.
        #[cfg(target_pointer_width = "64")]
        let expected: [u32; 4] = [0x8008_70a1, 0x4008_70a2, 0x8008_70a3, 0xc008_70a4];
        #[cfg(target_pointer_width = "32")]
        let expected: [u32; 4] = [0x8004_70a1, 0x4004_70a2, 0x8004_70a3, 0xc004_70a4];
        let actual = [request::GETPARAMS, request::SETPARAMS, request::GETCAP, request::FETCH];
        assert_eq!(actual, expected);
    }

    #[test]
    fn structs_match_pps_h() {
        assert_eq!(size_of::<PpsTime>(), 16);
        assert_eq!(size_of::<PpsInfo>(), 48);
        assert_eq!(offset_of!(PpsInfo, assert_tu), 8);
        assert_eq!(offset_of!(PpsInfo, current_mode), 40);
        assert_eq!(size_of::<PpsParams>(), 40);
        assert_eq!(offset_of!(PpsParams, assert_off_tu), 8);
        assert_eq!(size_of::<PpsFetchData>(), 64);
        assert_eq!(offset_of!(PpsFetchData, timeout), 48);
    }

    #[test]
    fn a_file_that_is_not_a_pps_device_refuses_every_call() {
        // A regular file answers ENOTTY (qemu-user, which runs these tests for the Pi, does not
        // pass unknown ioctls on: ENOSYS).
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let refused = |error: io::Error| {
            let code = error.raw_os_error();
            assert!(code == Some(libc::ENOTTY) || code == Some(libc::ENOSYS), "{error}");
        };
        refused(get_cap(file.as_fd()).unwrap_err());
        refused(get_params(file.as_fd()).unwrap_err());
        refused(set_params(file.as_fd(), &PpsParams::default()).unwrap_err());
        refused(fetch(file.as_fd(), Some(Duration::ZERO)).unwrap_err());
    }
}
