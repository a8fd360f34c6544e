//! Giving up root once the sockets are bound: hand the daemon's own directories to the service
//! account, switch to it, keep only CAP_SYS_TIME (and only when steering the clock), and forbid
//! gaining privileges again (no_new_privs). A daemon started unprivileged with capabilities from
//! systemd only trims them.

use crate::config::DEFAULT_USER;
use std::io;
use std::path::{Path, PathBuf};
use syhub_ntp_sys::privileges::{self as sys, CAP_SYS_TIME, CapabilitySets};

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "the account {0:?} ([server] user) does not exist; create it, or set user = \"\" to stay as started"
    )]
    NoSuchUser(String),
    #[error("cannot switch to the account {user:?}: {source}")]
    Switch { user: String, source: io::Error },
    #[error("cannot set this process's capabilities: {0}")]
    Capabilities(io::Error),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivileges(io::Error),
}

/// What the process kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Privileges {
    /// The account switched to, if any.
    pub user: Option<String>,
    /// CAP_SYS_TIME is kept (to steer the clock).
    pub sys_time: bool,
}

/// Drops privileges; must run before any other thread is started (capabilities are per thread).
///
/// `own` are the files the daemon writes (drift, NTS keys, control socket): each that lies in a
/// directory of its own called `syhub-ntp` (`/var/lib/syhub-ntp`, `/run/syhub-ntp`), and that
/// directory, are given to the account first, as systemd would have made them for `User=`.
pub(crate) fn drop_privileges(
    user: &str,
    keep_sys_time: bool,
    own: &[&Path],
) -> Result<Privileges, PrivilegeError> {
    let mut switched = None;
    if sys::effective_uid() == 0 && !user.is_empty() {
        match sys::find_account(user) {
            Ok(Some(account)) => {
                hand_over(own, &account);
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
    sys::set_no_new_privileges().map_err(PrivilegeError::NoNewPrivileges)?;
    Ok(Privileges { user: switched, sys_time })
}

/// Gives the daemon's own directories (and its files in them) to `account`; a failure is logged
/// and the start goes on (the daemon then says what it cannot write when it writes).
fn hand_over(own: &[&Path], account: &sys::Account) {
    let mut given = Vec::new();
    for file in own {
        let Some(directory) =
            file.parent().filter(|d| d.file_name() == Some(OWN_DIRECTORY.as_ref()))
        else {
            continue;
        };
        for path in [directory, file] {
            // Never through a link: only what is really there, as it is.
            let real = std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_symlink());
            if !real || given.iter().any(|g: &PathBuf| g == path) {
                continue;
            }
            match std::os::unix::fs::lchown(path, Some(account.uid), Some(account.gid)) {
                Ok(()) => given.push(path.to_owned()),
                Err(error) => tracing::warn!(
                    "cannot give {} to {}: {error}; the daemon may not be able to write there",
                    path.display(),
                    account.name
                ),
            }
        }
    }
    if !given.is_empty() {
        let list: Vec<String> = given.iter().map(|p| p.display().to_string()).collect();
        tracing::info!("gave {} to {}", list.join(", "), account.name);
    }
}

/// The name of the directories that are the daemon's own, whatever their parent.
const OWN_DIRECTORY: &str = "syhub-ntp";

/// setgroups, setresgid and setresuid, keeping the permitted capabilities across the switch.
fn switch_user(name: &str, uid: u32, gid: u32) -> Result<(), PrivilegeError> {
    let error = |source| PrivilegeError::Switch { user: name.to_owned(), source };
    sys::set_keep_capabilities(true).map_err(error)?;
    sys::clear_supplementary_groups().map_err(error)?;
    sys::set_all_group_ids(gid).map_err(error)?;
    sys::set_all_user_ids(uid).map_err(error)?;
    sys::set_keep_capabilities(false).map_err(error)
}

/// Leaves CAP_SYS_TIME (if wanted and held) as the only capability, effective and permitted,
/// with no inheritable or ambient ones. Returns whether CAP_SYS_TIME was kept.
fn keep_only_sys_time(wanted: bool) -> Result<bool, PrivilegeError> {
    let current = sys::capabilities().map_err(PrivilegeError::Capabilities)?;
    let bit = CapabilitySets::bit(CAP_SYS_TIME);
    let keep = wanted && current.permitted & bit != 0;
    let set = if keep { bit } else { 0 };
    sys::set_capabilities(CapabilitySets { effective: set, permitted: set, inheritable: 0 })
        .map_err(PrivilegeError::Capabilities)?;
    // Ambient capabilities are gone once the permitted set is; clear them explicitly all the same.
    let _ = sys::clear_ambient_capabilities();
    Ok(keep)
}
