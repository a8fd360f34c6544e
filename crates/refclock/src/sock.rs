//! chrony's SOCK refclock protocol: a Unix datagram socket to which gpsd sends one
//! `struct sock_sample` per fix or per pulse, and the parsing of those datagrams into samples.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use syhub_ntp_proto::packet::LeapIndicator;
use syhub_ntp_proto::{NtpDuration, NtpTimestamp};
use syhub_ntp_sys::net::receive_full_length;

use crate::{RefSample, RefclockError};

/// The last field of every datagram: "SOCK" read as a native-endian 32-bit integer.
pub const SOCK_MAGIC: i32 = 0x534f_434b;

/// Permission bits of the socket file: the owner and its group may send.
const SOCKET_MODE: u32 = 0o660;

/// Offsets beyond ±2^31 s do not fit NTP's 64-bit time difference (and mean a broken sender).
const MAX_OFFSET_SECONDS: f64 = 2_147_483_648.0;

/// `struct sock_sample` from a sender whose `time_t` (and so `struct timeval`) is 64 bits.
#[repr(C)]
#[allow(dead_code)] // only its layout is used
struct SockSampleTime64 {
    tv_sec: i64,
    tv_usec: i64,
    offset: f64,
    pulse: i32,
    leap: i32,
    pad: i32,
    magic: i32,
}

/// `struct sock_sample` from a sender with a 32-bit `time_t` (32-bit ARM without `_TIME_BITS=64`).
#[repr(C)]
#[allow(dead_code)] // only its layout is used
struct SockSampleTime32 {
    tv_sec: i32,
    tv_usec: i32,
    offset: f64,
    pulse: i32,
    leap: i32,
    pad: i32,
    magic: i32,
}

// The C sizes (see the tests), checked at compile time for every target.
const _: () = assert!(size_of::<SockSampleTime64>() == 40 && size_of::<SockSampleTime32>() == 32);

/// Which `struct sock_sample` a datagram carries; its length tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockLayout {
    /// 32-bit `time_t`: 32 bytes.
    Time32,
    /// 64-bit `time_t`: 40 bytes.
    Time64,
}

/// Byte offsets of the fields that are read.
struct SockOffsets {
    tv_sec: usize,
    tv_usec: usize,
    offset: usize,
    pulse: usize,
    leap: usize,
    magic: usize,
}

macro_rules! sock_offsets {
    ($t:ty) => {
        SockOffsets {
            tv_sec: std::mem::offset_of!($t, tv_sec),
            tv_usec: std::mem::offset_of!($t, tv_usec),
            offset: std::mem::offset_of!($t, offset),
            pulse: std::mem::offset_of!($t, pulse),
            leap: std::mem::offset_of!($t, leap),
            magic: std::mem::offset_of!($t, magic),
        }
    };
}

impl SockLayout {
    /// The layout of this build's `struct timeval`.
    pub const NATIVE: Self =
        if syhub_ntp_sys::TIME_T_SIZE == 8 { Self::Time64 } else { Self::Time32 };

    /// The datagram's length in bytes.
    pub const fn size(self) -> usize {
        match self {
            Self::Time32 => size_of::<SockSampleTime32>(),
            Self::Time64 => size_of::<SockSampleTime64>(),
        }
    }

    fn from_len(len: usize) -> Option<Self> {
        [Self::Time32, Self::Time64].into_iter().find(|layout| layout.size() == len)
    }

    fn offsets(self) -> SockOffsets {
        match self {
            Self::Time32 => sock_offsets!(SockSampleTime32),
            Self::Time64 => sock_offsets!(SockSampleTime64),
        }
    }
}

/// Why a datagram is not a sample. The datagram is dropped; the next one is read as usual.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SockDatagramError {
    #[error(
        "it is {len} bytes, but a sock_sample is 40 bytes (32 from a sender with a 32-bit time_t)"
    )]
    Length { len: usize },
    #[error(
        "its magic number is {magic:#010x}, not 0x534f434b (\"SOCK\"): the sender does not speak \
         chrony's SOCK protocol, or has the other byte order"
    )]
    Magic { magic: u32 },
    #[error("its leap value {leap} is not 0 (none), 1 (insert a second) or 2 (delete one)")]
    Leap { leap: i32 },
    #[error("its microseconds {usec} are not 0 to 999999")]
    Microseconds { usec: i64 },
    #[error("its offset {offset} s is not a finite number of seconds within ±68 years")]
    Offset { offset: f64 },
}

/// One datagram's sample, and whether it was a pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockSample {
    /// `local` is the sender's system time of the event; `reference` is `local + offset`.
    /// `precision` is `None`: the protocol does not carry one.
    pub sample: RefSample,
    /// True for a PPS pulse: the reference is known only to be on a whole second, so the offset
    /// means something only modulo 1 s (the daemon must find the second from another source).
    pub pulse: bool,
}

/// Parses one datagram, in either layout, in this machine's byte order.
pub fn parse_sock_sample(datagram: &[u8]) -> Result<SockSample, SockDatagramError> {
    let layout = SockLayout::from_len(datagram.len())
        .ok_or(SockDatagramError::Length { len: datagram.len() })?;
    let o = layout.offsets();
    let magic = read_i32(datagram, o.magic);
    if magic != SOCK_MAGIC {
        return Err(SockDatagramError::Magic { magic: magic as u32 });
    }
    let leap = match read_i32(datagram, o.leap) {
        0 => LeapIndicator::NoWarning,
        1 => LeapIndicator::InsertSecond,
        2 => LeapIndicator::DeleteSecond,
        leap => return Err(SockDatagramError::Leap { leap }),
    };
    let (tv_sec, tv_usec) = match layout {
        SockLayout::Time32 => {
            (i64::from(read_i32(datagram, o.tv_sec)), i64::from(read_i32(datagram, o.tv_usec)))
        }
        SockLayout::Time64 => (read_i64(datagram, o.tv_sec), read_i64(datagram, o.tv_usec)),
    };
    let usec = u32::try_from(tv_usec)
        .ok()
        .filter(|usec| *usec < 1_000_000)
        .ok_or(SockDatagramError::Microseconds { usec: tv_usec })?;
    let offset = f64::from_ne_bytes(field(datagram, o.offset));
    if !offset.is_finite() || offset.abs() >= MAX_OFFSET_SECONDS {
        return Err(SockDatagramError::Offset { offset });
    }
    let local = NtpTimestamp::from_unix(tv_sec, usec * 1000);
    let sample = RefSample {
        reference: local + NtpDuration::from_seconds_f64(offset),
        local,
        leap,
        precision: None,
    };
    Ok(SockSample { sample, pulse: read_i32(datagram, o.pulse) != 0 })
}

/// `N` bytes at `offset`; the callers' offsets come from a layout whose size was checked.
fn field<const N: usize>(datagram: &[u8], offset: usize) -> [u8; N] {
    let mut bytes = [0; N];
    if let Some(slice) = datagram.get(offset..offset + N) {
        bytes.copy_from_slice(slice);
    }
    bytes
}

fn read_i32(datagram: &[u8], offset: usize) -> i32 {
    i32::from_ne_bytes(field(datagram, offset))
}

fn read_i64(datagram: &[u8], offset: usize) -> i64 {
    i64::from_ne_bytes(field(datagram, offset))
}

/// A datagram as a sender in `layout` would build it (the test side of the protocol).
#[cfg(any(test, feature = "testing"))]
pub fn encode_sock_sample(
    layout: SockLayout,
    tv_sec: i64,
    tv_usec: i64,
    offset: f64,
    pulse: bool,
    leap: i32,
) -> Vec<u8> {
    let o = layout.offsets();
    let mut datagram = vec![0; layout.size()];
    let mut put = |at: usize, bytes: &[u8]| datagram[at..at + bytes.len()].copy_from_slice(bytes);
    match layout {
        SockLayout::Time32 => {
            put(o.tv_sec, &(tv_sec as i32).to_ne_bytes());
            put(o.tv_usec, &(tv_usec as i32).to_ne_bytes());
        }
        SockLayout::Time64 => {
            put(o.tv_sec, &tv_sec.to_ne_bytes());
            put(o.tv_usec, &tv_usec.to_ne_bytes());
        }
    }
    put(o.offset, &offset.to_ne_bytes());
    put(o.pulse, &i32::from(pulse).to_ne_bytes());
    put(o.leap, &leap.to_ne_bytes());
    put(o.magic, &SOCK_MAGIC.to_ne_bytes());
    datagram
}

/// Where gpsd sends SOCK samples for `device` when it runs as root: `/run/chrony.<name>.sock`,
/// `<name>` being the device's file name (`/dev/ttyAMA0` gives `/run/chrony.ttyAMA0.sock`, and
/// its PPS `/dev/pps0` gives `/run/chrony.pps0.sock`). `None` for a path without a file name.
pub fn gpsd_socket_path(device: impl AsRef<Path>) -> Option<PathBuf> {
    let name = device.as_ref().file_name()?.to_str()?;
    Some(PathBuf::from(format!("/run/chrony.{name}.sock")))
}

/// A bound, non-blocking SOCK socket. The socket file is removed on drop (if it is still ours).
///
/// Wrap it in tokio's `AsyncFd` (it implements [`AsFd`]) and call [`SockListener::try_recv`]
/// until it returns `Ok(None)` each time it is readable.
#[derive(Debug)]
pub struct SockListener {
    socket: UnixDatagram,
    path: PathBuf,
    /// Device and inode of the socket file we made, to remove only that file.
    identity: (u64, u64),
}

impl SockListener {
    /// Binds a datagram socket at `path` with mode 0660 (owner and group may send; give the group
    /// to the sender, or make the daemon's user the owner, when gpsd does not run as root).
    ///
    /// A socket file left at `path` by a process that is gone is replaced. A socket that another
    /// process still listens on, or a file that is not a socket, is left alone and is an error.
    pub fn bind(path: impl AsRef<Path>) -> Result<Self, RefclockError> {
        let path = path.as_ref().to_path_buf();
        let bind_error = |source| RefclockError::SockBind { path: path.clone(), source };
        match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_socket() => {
                if is_listened_on(&path) {
                    return Err(RefclockError::SockInUse { path });
                }
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(bind_error(error)),
                }
            }
            Ok(_) => return Err(RefclockError::SockPathTaken { path }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(bind_error(error)),
        }
        let socket = UnixDatagram::bind(&path).map_err(bind_error)?;
        let listener_path = path.clone();
        let cleanup_on_error = |error| {
            let _ = fs::remove_file(&listener_path);
            bind_error(error)
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(cleanup_on_error)?;
        socket.set_nonblocking(true).map_err(cleanup_on_error)?;
        let metadata = fs::symlink_metadata(&path).map_err(cleanup_on_error)?;
        Ok(Self { socket, path, identity: (metadata.dev(), metadata.ino()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next datagram's sample, or `None` when none is waiting. Never blocks.
    ///
    /// A malformed datagram is consumed and reported as [`RefclockError::SockBadDatagram`]; call
    /// again for the next one.
    pub fn try_recv(&self) -> Result<Option<SockSample>, RefclockError> {
        // Bigger than either layout, so that a longer datagram shows as too long.
        let mut buffer = [0u8; 64];
        let received = loop {
            // MSG_TRUNC: the datagram's full length even when it is longer than the buffer.
            match receive_full_length(self.socket.as_fd(), &mut buffer) {
                Ok(received) => break received,
                Err(error) => match error.kind() {
                    io::ErrorKind::WouldBlock => return Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        return Err(RefclockError::SockReceive {
                            path: self.path.clone(),
                            source: error,
                        });
                    }
                },
            }
        };
        let parsed = match buffer.get(..received) {
            Some(datagram) => parse_sock_sample(datagram),
            None => Err(SockDatagramError::Length { len: received }),
        };
        parsed
            .map(Some)
            .map_err(|problem| RefclockError::SockBadDatagram { path: self.path.clone(), problem })
    }
}

/// Whether a process is bound to the socket at `path`: a datagram socket can connect to it only
/// then (a socket file whose owner has gone refuses the connection).
fn is_listened_on(path: &Path) -> bool {
    UnixDatagram::unbound().and_then(|probe| probe.connect(path)).is_ok()
}

impl AsFd for SockListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for SockListener {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Drop for SockListener {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == self.identity);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests;
