//! Giving up root once the sockets are bound: switch to the service account, keep only
//! CAP_SYS_TIME (and only when steering the clock), and forbid gaining privileges again
//! (no_new_privs). A daemon started unprivileged with capabilities from systemd only trims them.

use crate::config::DEFAULT_USER;
use nix::sys::prctl;
use nix::unistd::{Gid, Uid, User, geteuid, setgroups, setresgid, setresuid};
use std::io;

/// Capability number of CAP_SYS_TIME (linux/capability.h).
const CAP_SYS_TIME: u32 = 25;
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapabilityHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapabilityData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

unsafe extern "C" {
    // glibc's (and musl's) wrappers of the capget/capset system calls; the libc crate does not
    // declare them.
    fn capget(header: *mut CapabilityHeader, data: *mut CapabilityData) -> libc::c_int;
    fn capset(header: *mut CapabilityHeader, data: *const CapabilityData) -> libc::c_int;
}

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "the account {0:?} ([server] user) does not exist; create it, or set user = \"\" to stay as started"
    )]
    NoSuchUser(String),
    #[error("cannot switch to the account {user:?}: {source}")]
    Switch { user: String, source: nix::Error },
    #[error("cannot set this process's capabilities: {0}")]
    Capabilities(io::Error),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivileges(nix::Error),
}

/// What the process kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privileges {
    /// The account switched to, if any.
    pub user: Option<String>,
    /// CAP_SYS_TIME is kept (to steer the clock).
    pub sys_time: bool,
}

/// Drops privileges; must run before any other thread is started (capabilities are per thread).
pub fn drop_privileges(user: &str, keep_sys_time: bool) -> Result<Privileges, PrivilegeError> {
    let mut switched = None;
    if geteuid().is_root() && !user.is_empty() {
        match User::from_name(user) {
            Ok(Some(account)) => {
                switch_user(&account.name, account.uid, account.gid)?;
                switched = Some(account.name);
            }
            Ok(None) if user == DEFAULT_USER => tracing::warn!(
                "there is no {DEFAULT_USER} account: running as root, with nothing but {}. \
                 `syhub-ntp install` creates the account.",
                if keep_sys_time { "CAP_SYS_TIME" } else { "no capabilities" }
            ),
            Ok(None) => return Err(PrivilegeError::NoSuchUser(user.to_owned())),
            Err(source) => return Err(PrivilegeError::Switch { user: user.to_owned(), source }),
        }
    }
    let sys_time = keep_only_sys_time(keep_sys_time)?;
    prctl::set_no_new_privs().map_err(PrivilegeError::NoNewPrivileges)?;
    Ok(Privileges { user: switched, sys_time })
}

/// setgroups, setresgid and setresuid, keeping the permitted capabilities across the switch.
fn switch_user(name: &str, uid: Uid, gid: Gid) -> Result<(), PrivilegeError> {
    let error = |source| PrivilegeError::Switch { user: name.to_owned(), source };
    prctl::set_keepcaps(true).map_err(error)?;
    setgroups(&[]).map_err(error)?;
    setresgid(gid, gid, gid).map_err(error)?;
    setresuid(uid, uid, uid).map_err(error)?;
    prctl::set_keepcaps(false).map_err(error)
}

/// Leaves CAP_SYS_TIME (if wanted and held) as the only capability, effective and permitted,
/// with no inheritable or ambient ones. Returns whether CAP_SYS_TIME was kept.
fn keep_only_sys_time(wanted: bool) -> Result<bool, PrivilegeError> {
    let mut header = CapabilityHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut current = [CapabilityData::default(); 2];
    // SAFETY: header and a two-element array as version 3 requires.
    if unsafe { capget(&mut header, current.as_mut_ptr()) } != 0 {
        return Err(PrivilegeError::Capabilities(io::Error::last_os_error()));
    }
    let bit = 1u32 << CAP_SYS_TIME;
    let keep = wanted && current[0].permitted & bit != 0;
    let set = if keep { bit } else { 0 };
    let data = [
        CapabilityData { effective: set, permitted: set, inheritable: 0 },
        CapabilityData::default(),
    ];
    // SAFETY: as above; the kernel reads two elements.
    if unsafe { capset(&mut header, data.as_ptr()) } != 0 {
        return Err(PrivilegeError::Capabilities(io::Error::last_os_error()));
    }
    // Ambient capabilities are gone once the permitted set is; clear them explicitly all the same.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    Ok(keep)
}
