//! Waiting on sockets with a fine timeout: ppoll(2) for readability, and the thread's timer slack
//! (prctl PR_SET_TIMERSLACK), which otherwise rounds every sleep up by 50 µs.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// Sleeps until one of `sockets` is readable or `timeout` passes. Returns how many are readable
/// (0 after the timeout).
pub fn wait_readable<S: AsFd>(sockets: &[S], timeout: Duration) -> io::Result<usize> {
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd { fd: s.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect();
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: ppoll on a live array of pollfd of the length given (the descriptors are open for
    // the borrow of `sockets`), with a valid timespec and no signal mask.
    let ready = unsafe {
        libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &timeout, std::ptr::null())
    };
    if ready < 0 { Err(io::Error::last_os_error()) } else { Ok(ready as usize) }
}

/// Sets the calling thread's timer slack to `nanos` (at least 1): how late the kernel may wake it
/// from a sleep or poll, to group wake-ups.
pub fn set_timer_slack(nanos: u64) -> io::Result<()> {
    let nanos = libc::c_ulong::try_from(nanos.max(1)).unwrap_or(libc::c_ulong::MAX);
    // SAFETY: prctl(PR_SET_TIMERSLACK) with an integer argument only changes this thread's slack.
    if unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, nanos) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Instant;

    #[test]
    fn waiting_ends_with_a_datagram_or_the_timeout() {
        set_timer_slack(1).unwrap();
        let sockets =
            [UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap()];
        let start = Instant::now();
        assert_eq!(wait_readable(&sockets, Duration::from_millis(20)).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
        sockets[0].send_to(b"x", sockets[1].local_addr().unwrap()).unwrap();
        assert_eq!(wait_readable(&sockets, Duration::from_secs(5)).unwrap(), 1);
    }
}
