//! The protocol core of syhub-ntp: NTP time types, the packet codec, the server's answer to a request
//! and the client's evaluation of a response. It takes time and bytes as arguments and returns
//! decisions and bytes; it never reads a clock, opens a socket or touches a file.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod leap;
pub mod nts;
pub mod packet;
pub mod server;
pub mod source;
pub mod sync;
pub mod system;
pub mod time;

pub use packet::{
    DecodeError, ExtensionField, LeapIndicator, Mac, Mode, NtpHeader, NtpPacket, ReferenceId,
};
pub use time::{NtpDuration, NtpShort, NtpTimestamp};
