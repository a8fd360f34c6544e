//! Every system call of syhub-ntp that Rust's standard library does not make, behind safe and thin
//! functions: batched UDP with kernel timestamps and destination addresses (`net`), process
//! privileges (`privileges`), the open files limit (`limits`), clock_adjtime (`timex`), System V
//! shared memory (`shm`), the kernel PPS ioctls (`pps`), the interfaces' addresses (`interfaces`)
//! and waiting on sockets (`poll`).
//! The only crate of the product with `unsafe`: each block says why it is sound, and the callers
//! keep the logic (what to set, when, and what a failure means).

pub mod errno;
pub mod interfaces;
pub mod limits;
pub mod net;
pub mod poll;
pub mod pps;
pub mod privileges;
pub mod shm;
pub mod timex;

/// Bytes of this build's `time_t`: 4 on 32-bit ARM (before Debian's 64-bit time transition), 8
/// elsewhere. The C layouts of gpsd's SHM segment and chrony's SOCK sample depend on it.
pub const TIME_T_SIZE: usize = size_of::<libc::time_t>();

/// Bytes of this build's `struct timeval` (two `time_t`-wide fields on 32-bit ARM).
pub const TIMEVAL_SIZE: usize = size_of::<libc::timeval>();
