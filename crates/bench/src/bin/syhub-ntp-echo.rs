//! `syhub-ntp-echo ADDRESS`: a recvmmsg/sendmmsg UDP echo, the ceiling the benchmark compares
//! NTP servers with. Runs until ended.

#![forbid(unsafe_code)]

fn main() {
    let Some(address) = std::env::args().nth(1).and_then(|a| a.parse().ok()) else {
        eprintln!("usage: syhub-ntp-echo ADDRESS:PORT");
        std::process::exit(2);
    };
    if let Err(error) = syhub_ntp_bench::echo::serve(address) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
