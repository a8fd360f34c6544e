//! The kernel PPS API on /dev/ppsN (RFC 2783 as Linux implements it): checking the device can
//! capture assert edges, selecting that mode, and reading the system time of each new edge.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_sys::errno;
use syhub_ntp_sys::pps;
pub use syhub_ntp_sys::pps::{
    PPS_API_VERS, PPS_CAPTUREASSERT, PPS_TSFMT_TSPEC, PpsInfo, PpsParams, PpsTime,
};

use crate::RefclockError;

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

/// The real device: an open /dev/ppsN, through the ioctls in `syhub_ntp_sys::pps`.
///
/// A 32-bit process under a 64-bit kernel goes through the kernel's compatibility layer, and some
/// arm64 kernels read PPS_FETCH's timeout there in i386's packed layout, 4 bytes early;
/// [`PpsDevice`] only fetches with a zero timeout, which is all zero bytes in either layout.
impl PpsIoctl for File {
    fn get_cap(&self) -> io::Result<i32> {
        pps::get_cap(self.as_fd())
    }

    fn get_params(&self) -> io::Result<PpsParams> {
        pps::get_params(self.as_fd())
    }

    fn set_params(&self, params: &PpsParams) -> io::Result<()> {
        pps::set_params(self.as_fd(), params)
    }

    fn fetch(&self, timeout: Option<Duration>) -> io::Result<PpsInfo> {
        pps::fetch(self.as_fd(), timeout)
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
            Err(error) if error.raw_os_error() == Some(errno::ETIMEDOUT) => return Ok(None),
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
        Some(errno::EPERM) | Some(errno::EACCES) => {
            " (setting the PPS mode needs root or CAP_SYS_TIME: open the device before dropping \
             privileges)"
        }
        Some(errno::ENOTTY) | Some(errno::EINVAL) => " (is it a PPS device?)",
        _ => "",
    }
}

#[cfg(test)]
mod tests;
