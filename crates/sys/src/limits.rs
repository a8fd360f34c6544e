//! The process's resource limits (getrlimit): how many files it may have open, which the daemon
//! divides among its connection caps.

/// The soft limit on open file descriptors (RLIMIT_NOFILE), or `None` when there is none or it
/// cannot be read.
pub fn open_files() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `struct rlimit` through the valid pointer it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if read != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    #[allow(clippy::useless_conversion)] // rlim_t is 32 bits on 32-bit ARM
    Some(u64::from(limit.rlim_cur))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_files_limit_is_read() {
        // Every process has one; test runners keep it at a few hundred at least.
        assert!(super::open_files().is_some_and(|limit| limit >= 64));
    }
}
