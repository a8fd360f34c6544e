//! The files `install` puts in place: the systemd units and the sysusers entry, as shipped in the
//! Debian package too.

/// The daemon's unit: `Type=notify` with a watchdog, hardened, no restart after a panic exit.
pub const SERVICE: &str = include_str!("../units/syhub-ntp.service");
/// Holds `time-sync.target` until synchronised, for services that need correct time.
pub const WAIT_SYNC_SERVICE: &str = include_str!("../units/syhub-ntp-wait-sync.service");
/// A drop-in for hubs with a reference clock: start as root to open root's devices, segments and
/// sockets; the daemon drops to its account itself.
pub const REFCLOCK_DROP_IN: &str = include_str!("../units/syhub-ntp-refclocks.conf");
pub const REFCLOCK_DROP_IN_PATH: &str = "/etc/systemd/system/syhub-ntp.service.d/refclocks.conf";
/// The account, for systemd-sysusers.
pub const SYSUSERS: &str = include_str!("../units/syhub-ntp.sysusers");

pub const SERVICE_NAME: &str = "syhub-ntp.service";
pub const WAIT_SYNC_NAME: &str = "syhub-ntp-wait-sync.service";
pub const UNIT_DIR: &str = "/etc/systemd/system";
pub const SYSUSERS_PATH: &str = "/etc/sysusers.d/syhub-ntp.conf";
/// Where the Debian package puts the units and the sysusers entry: `install` then adds neither.
pub const PACKAGED_UNIT_DIRS: [&str; 2] = ["/lib/systemd/system", "/usr/lib/systemd/system"];
pub const PACKAGED_SYSUSERS_PATH: &str = "/usr/lib/sysusers.d/syhub-ntp.conf";
pub use syhub_ntp_state::service_account::ACCOUNT;
