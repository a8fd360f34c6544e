//! Leap seconds: the IERS/NIST leap-seconds.list table, when a server announces the next leap in
//! its leap indicator, and smearing the leap into served time. Takes text and times; no I/O.

mod announce;
mod error;
mod file;
mod smear;
mod table;

pub use announce::{announce, leap_indicator_for};
pub use error::LeapFileError;
pub use smear::Smear;
pub use table::{Leap, LeapEntry, LeapKind, LeapTable};

#[cfg(test)]
pub(crate) mod tests;
