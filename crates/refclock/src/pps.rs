//! The kernel PPS API on /dev/ppsN (RFC 2783 as Linux implements it): checking the device can
//! capture assert edges, selecting that mode, and reading the system time of each new edge.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::ioctl::ioctl_num_type;
use syhub_ntp_proto::NtpTimestamp;

use crate::RefclockError;

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

// The C sizes on every target we build for, checked by `cargo check` for each target.
#[cfg(not(target_arch = "x86"))]
const _: () = assert!(
    size_of::<PpsTime>() == 16
        && size_of::<PpsInfo>() == 48
        && size_of::<PpsParams>() == 40
        && size_of::<PpsFetchData>() == 64
);

/// The ioctl request numbers. pps.h declares the argument types as pointers
/// (`_IOR('p', 0xa1, struct pps_kparams *)`), so the size encoded in each number is the size of a
/// pointer: 8 on 64-bit targets and 4 on 32-bit ARM, not the size of the struct passed.
mod request {
    use super::*;

    pub(super) const GETPARAMS: ioctl_num_type =
        nix::request_code_read!(b'p', 0xa1, size_of::<*mut PpsParams>());
    pub(super) const SETPARAMS: ioctl_num_type =
        nix::request_code_write!(b'p', 0xa2, size_of::<*mut PpsParams>());
    pub(super) const GETCAP: ioctl_num_type =
        nix::request_code_read!(b'p', 0xa3, size_of::<*mut libc::c_int>());
    pub(super) const FETCH: ioctl_num_type =
        nix::request_code_readwrite!(b'p', 0xa4, size_of::<*mut PpsFetchData>());
}

/// The calls themselves; "bad" in nix's terms because the encoded size is not the struct's.
mod call {
    use super::{PpsFetchData, PpsParams, request};

    nix::ioctl_read_bad!(
        /// # Safety
        /// `fd` must be open; `data` must be valid for writes.
        get_params,
        request::GETPARAMS,
        PpsParams
    );
    nix::ioctl_write_ptr_bad!(
        /// # Safety
        /// `fd` must be open; `data` must be valid for reads.
        set_params,
        request::SETPARAMS,
        PpsParams
    );
    nix::ioctl_read_bad!(
        /// # Safety
        /// `fd` must be open; `data` must be valid for writes.
        get_cap,
        request::GETCAP,
        libc::c_int
    );
    nix::ioctl_readwrite_bad!(
        /// # Safety
        /// `fd` must be open; `data` must be valid for reads and writes.
        fetch,
        request::FETCH,
        PpsFetchData
    );
}

/// The four PPS ioctls, so that the logic above them can be tested with a fake device.
pub trait PpsIoctl {
    /// PPS_GETCAP: the mode bits the device supports.
    fn get_cap(&self) -> io::Result<i32>;
    /// PPS_GETPARAMS.
    fn get_params(&self) -> io::Result<PpsParams>;
    /// PPS_SETPARAMS; the kernel demands CAP_SYS_TIME.
    fn set_params(&self, params: &PpsParams) -> io::Result<()>;
    /// PPS_FETCH: the latest edges. `Some(Duration::ZERO)` returns at once; a longer timeout
    /// waits up to that long for a new edge (ETIMEDOUT if none comes); `None` waits for one.
    fn fetch(&self, timeout: Option<Duration>) -> io::Result<PpsInfo>;
}

/// The real device: an open /dev/ppsN.
///
/// A 32-bit process under a 64-bit kernel goes through the kernel's compatibility layer, and some
/// arm64 kernels read PPS_FETCH's timeout there in i386's packed layout, 4 bytes early;
/// [`PpsDevice`] only fetches with a zero timeout, which is all zero bytes in either layout.
impl PpsIoctl for File {
    fn get_cap(&self) -> io::Result<i32> {
        let mut caps: libc::c_int = 0;
        // SAFETY: the file is open and `caps` is valid for writes.
        unsafe { call::get_cap(self.as_raw_fd(), &mut caps) }?;
        Ok(caps)
    }

    fn get_params(&self) -> io::Result<PpsParams> {
        let mut params = PpsParams::default();
        // SAFETY: the file is open and `params` is valid for writes.
        unsafe { call::get_params(self.as_raw_fd(), &mut params) }?;
        Ok(params)
    }

    fn set_params(&self, params: &PpsParams) -> io::Result<()> {
        // SAFETY: the file is open and `params` is valid for reads.
        unsafe { call::set_params(self.as_raw_fd(), params) }?;
        Ok(())
    }

    fn fetch(&self, timeout: Option<Duration>) -> io::Result<PpsInfo> {
        let timeout = match timeout {
            Some(timeout) => PpsTime {
                sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                nsec: timeout.subsec_nanos() as i32,
                flags: 0,
            },
            None => PpsTime { flags: PPS_TIME_INVALID, ..PpsTime::default() },
        };
        let mut data = PpsFetchData { info: PpsInfo::default(), timeout };
        // SAFETY: the file is open and `data` is valid for reads and writes.
        unsafe { call::fetch(self.as_raw_fd(), &mut data) }?;
        Ok(data.info)
    }
}

/// A new assert edge: when the system clock saw the pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PpsEdge {
    /// The system clock at the edge, as the kernel stamped it in its interrupt handler.
    pub local: NtpTimestamp,
    /// The device's assert sequence number of this edge.
    pub sequence: u32,
    /// Edges that came and went since the one reported before (polled too slowly, or the device
    /// was busy): 0 normally.
    pub missed: u32,
}

/// A PPS device set to capture assert edges with timespec timestamps.
#[derive(Debug)]
pub struct PpsDevice<D: PpsIoctl = File> {
    device: D,
    path: PathBuf,
    /// The assert sequence number last seen; edges up to it are not reported again.
    last_sequence: u32,
}

impl PpsDevice<File> {
    /// Opens `/dev/ppsN` and sets it up (see [`PpsDevice::with_device`]). Needs root or
    /// CAP_SYS_TIME, which the kernel demands to set the mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RefclockError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| RefclockError::PpsOpen { path: path.to_path_buf(), source })?;
        Self::with_device(file, path)
    }
}

impl<D: PpsIoctl> PpsDevice<D> {
    /// Checks that `device` can capture assert edges with timespec timestamps, selects that mode,
    /// and takes the current sequence number as seen, so that an edge from before the call (which
    /// may be long ago) is never reported. `path` names the device in errors.
    pub fn with_device(device: D, path: impl Into<PathBuf>) -> Result<Self, RefclockError> {
        let path = path.into();
        let failed = |call| {
            let path = path.clone();
            move |source| RefclockError::PpsIoctl { path, call, source }
        };
        let caps = device.get_cap().map_err(failed("PPS_GETCAP"))?;
        if caps & PPS_CAPTUREASSERT == 0 {
            return Err(RefclockError::PpsNoAssertCapture { path, caps });
        }
        if caps & PPS_TSFMT_TSPEC == 0 {
            return Err(RefclockError::PpsNoTimespec { path, caps });
        }
        let mut params = device.get_params().map_err(failed("PPS_GETPARAMS"))?;
        params.api_version = PPS_API_VERS;
        params.mode = PPS_CAPTUREASSERT | PPS_TSFMT_TSPEC;
        device.set_params(&params).map_err(failed("PPS_SETPARAMS"))?;
        let info = device.fetch(Some(Duration::ZERO)).map_err(failed("PPS_FETCH"))?;
        Ok(Self { device, path, last_sequence: info.assert_sequence })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The assert edge that came since the last call, if one did. Never waits: poll it a few
    /// times a second. When several edges came, the latest is returned and `missed` counts the
    /// others.
    pub fn next_edge(&mut self) -> Result<Option<PpsEdge>, RefclockError> {
        let info = match self.device.fetch(Some(Duration::ZERO)) {
            Ok(info) => info,
            // A zero timeout should never time out; a kernel whose compatibility layer misreads
            // the timeout can, and it means no edge.
            Err(error) if error.raw_os_error() == Some(libc::ETIMEDOUT) => return Ok(None),
            Err(source) => {
                return Err(RefclockError::PpsIoctl {
                    path: self.path.clone(),
                    call: "PPS_FETCH",
                    source,
                });
            }
        };
        if info.assert_sequence == self.last_sequence {
            return Ok(None);
        }
        let missed = info.assert_sequence.wrapping_sub(self.last_sequence).wrapping_sub(1);
        self.last_sequence = info.assert_sequence;
        let time = info.assert_tu;
        let nanos = u32::try_from(time.nsec).ok().filter(|nanos| *nanos < 1_000_000_000);
        let Some(nanos) = nanos else {
            return Err(RefclockError::PpsBadTime {
                path: self.path.clone(),
                seconds: time.sec,
                nanos: time.nsec,
            });
        };
        Ok(Some(PpsEdge {
            local: NtpTimestamp::from_unix(time.sec, nanos),
            sequence: info.assert_sequence,
            missed,
        }))
    }
}

/// A hint for a failed open: what usually causes it on a Raspberry Pi.
pub(crate) fn open_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::NotFound => {
            " (is a PPS source set up? for a GPIO pin: dtoverlay=pps-gpio,gpiopin=N in \
             config.txt; for a serial line's DCD: ldattach pps)"
        }
        io::ErrorKind::PermissionDenied => " (run as root, or give the daemon's user the device)",
        _ => "",
    }
}

/// A hint for a failed ioctl.
pub(crate) fn ioctl_hint(error: &io::Error) -> &'static str {
    match error.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (setting the PPS mode needs root or CAP_SYS_TIME: open the device before dropping \
             privileges)"
        }
        Some(libc::ENOTTY) | Some(libc::EINVAL) => " (is it a PPS device?)",
        _ => "",
    }
}

#[cfg(test)]
mod tests;
