//! Whether the kernel would let this process steer the clock, found without trying: by reading the
//! effective capabilities in /proc/self/status for CAP_SYS_TIME.

use std::fmt;

/// Bit of CAP_SYS_TIME in the capability sets (linux/capability.h).
const CAP_SYS_TIME: u32 = 25;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SteerPermission {
    Permitted,
    /// The kernel will refuse with EPERM; the text says why.
    Refused(String),
}

impl fmt::Display for SteerPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Permitted => write!(f, "permitted"),
            Self::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// Reads this process's effective capabilities and reports whether CAP_SYS_TIME is among them.
pub fn steer_permission() -> SteerPermission {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => permission_from_status(&status),
        Err(error) => SteerPermission::Refused(format!("cannot read /proc/self/status: {error}")),
    }
}

fn permission_from_status(status: &str) -> SteerPermission {
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    match effective {
        Some(caps) if caps & (1 << CAP_SYS_TIME) != 0 => SteerPermission::Permitted,
        Some(_) => SteerPermission::Refused(
            "this process lacks CAP_SYS_TIME (run as root, or give the service CAP_SYS_TIME)"
                .into(),
        ),
        None => SteerPermission::Refused("no CapEff line in /proc/self/status".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cap_sys_time_from_the_effective_set() {
        let root = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert_eq!(permission_from_status(root), SteerPermission::Permitted);
        let without_sys_time = format!("CapEff:\t{:016x}\n", 0x1ff_ffff_ffffu64 & !(1 << 25));
        assert!(matches!(permission_from_status(&without_sys_time), SteerPermission::Refused(_)));
        assert!(matches!(permission_from_status("Name: x\n"), SteerPermission::Refused(_)));
    }
}
