//! Benchmark tools, not part of the installed daemon: the NTP load generator ([`load`]), the UDP
//! echo that marks the machine's ceiling ([`echo`]) and the side-by-side server comparison
//! ([`compare`], run by `scripts/bench.sh`).

#![forbid(unsafe_code)]

pub mod compare;
pub mod echo;
pub mod load;
pub mod stats;
