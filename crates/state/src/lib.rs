//! The files the daemon keeps and reads besides its config, for the daemon and for the commands
//! and operations that look at them too: whole-or-nothing writes, the drift file, the
//! leap-seconds list, the symmetric keys file and new keys for it, a DHCP leases file's names, and
//! the service account that must read them.
#![forbid(unsafe_code)]

pub mod atomic_file;
pub mod drift;
pub mod keygen;
pub mod keys;
pub mod leap_file;
pub mod leases;
pub mod service_account;
