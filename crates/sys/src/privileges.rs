//! The calls that give up privileges: looking up an account (getpwnam_r), switching user and group
//! ids, the thread's capability sets (capget/capset, version 3), ambient capabilities,
//! PR_SET_KEEPCAPS and no_new_privs. Which to keep is the daemon's decision.

use std::ffi::{CStr, CString};
use std::io;

/// Capability number of CAP_SYS_TIME (linux/capability.h).
pub const CAP_SYS_TIME: u32 = 25;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`, which the libc crate does not declare.
#[repr(C)]
struct CapabilityHeader {
    version: u32,
    /// 0: the calling thread.
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: one 32-bit word of each set.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapabilityData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// A thread's capability sets, one bit per capability number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilitySets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

impl CapabilitySets {
    /// The bit of capability `number` in a set.
    pub const fn bit(number: u32) -> u64 {
        1 << number
    }
}

/// A user account from the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The effective user id of the process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective group id of the process.
pub fn effective_gid() -> u32 {
    // SAFETY: getegid has no arguments and cannot fail.
    unsafe { libc::getegid() }
}

/// The account called `name`, `None` if there is none (getpwnam_r).
pub fn find_account(name: &str) -> io::Result<Option<Account>> {
    let c_name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "an account name without NUL"))?;
    let mut buffer = vec![0u8; 1024];
    loop {
        // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: the name is NUL-terminated; `entry`, `buffer` (with its length) and `result`
        // are live and writable for the call. The strings `entry` points to live in `buffer`.
        let error = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut result,
            )
        };
        if error == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 2, 0);
            continue;
        }
        if error != 0 {
            return Err(io::Error::from_raw_os_error(error));
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: on success `entry.pw_name` is a NUL-terminated string inside `buffer`, which is
        // still alive and unchanged.
        let name = unsafe { CStr::from_ptr(entry.pw_name) }.to_string_lossy().into_owned();
        return Ok(Some(Account { name, uid: entry.pw_uid, gid: entry.pw_gid }));
    }
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// PR_SET_KEEPCAPS: whether the permitted capabilities survive a switch away from uid 0.
pub fn set_keep_capabilities(keep: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(keep), 0, 0, 0) })
}

/// Leaves the process in no supplementary group (setgroups with an empty list).
pub fn clear_supplementary_groups() -> io::Result<()> {
    // SAFETY: an empty list: the kernel reads no memory.
    check(unsafe { libc::setgroups(0, std::ptr::null()) })
}

/// Sets the real, effective and saved group ids to `gid` (setresgid, for every thread).
pub fn set_all_group_ids(gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::setresgid(gid, gid, gid) })
}

/// Sets the real, effective and saved user ids to `uid` (setresuid, for every thread).
pub fn set_all_user_ids(uid: u32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::setresuid(uid, uid, uid) })
}

/// PR_SET_NO_NEW_PRIVS: neither this process nor its children can gain privileges again (by
/// set-user-id programs or file capabilities).
pub fn set_no_new_privileges() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) })
}

/// The calling thread's capability sets (capget).
pub fn capabilities() -> io::Result<CapabilitySets> {
    let mut header = CapabilityHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapabilityData::default(); 2];
    // SAFETY: a header and the two-element array version 3 requires, both live and writable.
    let result = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |low: u32, high: u32| u64::from(low) | u64::from(high) << 32;
    Ok(CapabilitySets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// Sets the calling thread's capability sets (capset): the kernel refuses to add to the permitted
/// set, or to make effective what is not permitted.
pub fn set_capabilities(sets: CapabilitySets) -> io::Result<()> {
    let mut header = CapabilityHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let word = |set: u64, high: bool| if high { (set >> 32) as u32 } else { set as u32 };
    let data = [false, true].map(|high| CapabilityData {
        effective: word(sets.effective, high),
        permitted: word(sets.permitted, high),
        inheritable: word(sets.inheritable, high),
    });
    // SAFETY: a header and the two-element array version 3 requires; the kernel reads the array
    // and may write the header's version.
    let result = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    if result == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Clears the ambient capability set (PR_CAP_AMBIENT_CLEAR_ALL).
pub fn clear_ambient_capabilities() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_nonsense_is_not() {
        let root = find_account("root").unwrap().expect("a root account");
        assert_eq!((root.name.as_str(), root.uid, root.gid), ("root", 0, 0));
        assert_eq!(find_account("no-such-account-syhub").unwrap(), None);
        assert!(find_account("ro\0ot").is_err());
    }

    #[test]
    fn the_capability_sets_read_back_as_set() {
        // Setting the sets we already have changes nothing and is always allowed.
        let sets = capabilities().unwrap();
        assert_eq!(sets.effective & !sets.permitted, 0, "{sets:?}");
        set_capabilities(sets).unwrap();
        assert_eq!(capabilities().unwrap(), sets);
        if effective_uid() == 0 {
            assert_ne!(sets.permitted & CapabilitySets::bit(CAP_SYS_TIME), 0);
        }
    }

    #[test]
    fn asking_for_more_than_permitted_is_refused() {
        let sets = capabilities().unwrap();
        let missing = (0..40).map(CapabilitySets::bit).find(|bit| sets.permitted & bit == 0);
        if let Some(bit) = missing {
            let more = CapabilitySets { permitted: sets.permitted | bit, ..sets };
            assert!(set_capabilities(more).is_err());
            assert_eq!(capabilities().unwrap(), sets);
        }
    }
}
