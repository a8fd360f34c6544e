//! The error numbers callers compare `io::Error::raw_os_error` with, where the standard library's
//! `ErrorKind` does not tell them apart (EPERM from EACCES, ENOTTY, EADDRNOTAVAIL).

pub const EPERM: i32 = libc::EPERM;
pub const ENOENT: i32 = libc::ENOENT;
pub const EACCES: i32 = libc::EACCES;
pub const ENODEV: i32 = libc::ENODEV;
pub const EINVAL: i32 = libc::EINVAL;
pub const ENOTTY: i32 = libc::ENOTTY;
pub const ENOSYS: i32 = libc::ENOSYS;
pub const EADDRINUSE: i32 = libc::EADDRINUSE;
pub const EADDRNOTAVAIL: i32 = libc::EADDRNOTAVAIL;
pub const EAFNOSUPPORT: i32 = libc::EAFNOSUPPORT;
pub const ETIMEDOUT: i32 = libc::ETIMEDOUT;
