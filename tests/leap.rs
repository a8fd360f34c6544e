//! The leap-seconds list as the daemon reads it: a valid list with a leap to come shows in the
//! status with how it will be made; a damaged or expired one is reported and ignored while the
//! daemon serves on. Lists are written by the test (history from the system's list, a leap second
//! of our own at the end of 2026, hashed with sha1sum).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use syhub_ntp_testkit::*;

const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");
const SYSTEM_LIST: &str = "/usr/share/zoneinfo/leap-seconds.list";

/// NTP seconds of 2027-01-01 00:00 UTC and 2027-06-28 00:00 UTC.
const JAN_2027: u64 = 4_007_750_400;
const JUN_2027: u64 = 4_023_129_600;
/// 2020-01-01: a list that expired then.
const JAN_2020: u64 = 3_786_825_600;

/// The (NTP seconds, TAI-UTC) lines of the system's list up to 2026.
fn history() -> Option<Vec<(u64, i32)>> {
    let text = std::fs::read_to_string(SYSTEM_LIST).ok()?;
    let entries = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
        })
        .filter(|(at, _)| *at < JAN_2027)
        .collect();
    Some(entries)
}

fn sha1_groups(covered: &str) -> String {
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha1sum");
    child.stdin.take().unwrap().write_all(covered.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let hex = String::from_utf8_lossy(&output.stdout)[..40].to_owned();
    (0..5).map(|i| &hex[i * 8..i * 8 + 8]).collect::<Vec<_>>().join(" ")
}

/// A leap-seconds list in the IERS layout, hashed.
fn list(updated: u64, expires: u64, entries: &[(u64, i32)]) -> String {
    let mut covered = format!("{updated}{expires}");
    let mut text = format!("# made up by a test\n#$\t{updated}\n#@\t{expires}\n");
    for (at, offset) in entries {
        covered.push_str(&format!("{at}{offset}"));
        text.push_str(&format!("{at}\t{offset}\t# an entry\n"));
    }
    text.push_str(&format!("#h\t{}\n", sha1_groups(&covered)));
    text
}

fn daemon_with_list(label: &str, text: &str) -> (NetNs, TempDir, Daemon) {
    let ns = NetNs::new(label);
    let dir = TempDir::new(label);
    let path = dir.write("leap-seconds.list", text);
    let config = test_config(&["127.0.0.1:123"], "", "")
        .replace("[clock]\n", &format!("[clock]\nleap_file = \"{}\"\n", path_str(&path)));
    let daemon = Daemon::start(SYHUB_NTP, &ns, &config);
    (ns, dir, daemon)
}

#[test]
fn a_valid_list_with_a_leap_to_come_is_in_the_status() {
    require_namespaces();
    let Some(mut entries) = history() else {
        println!("{SYSTEM_LIST} is missing: skipped");
        return;
    };
    let last = entries.last().unwrap().1;
    entries.push((JAN_2027, last + 1));
    let (_ns, _dir, daemon) = daemon_with_list("leap-valid", &list(JAN_2020, JUN_2027, &entries));
    let status = daemon.wait_for_status(Duration::from_secs(20), "the list read", |s| {
        s["leap_file"].as_str().is_some_and(|v| v != "not read yet")
    });
    assert_eq!(status["leap_file"], "valid until 2027-06-28", "{status}");
    assert_eq!(
        status["leap_second"], "insert before 2027-01-01 00:00:00 UTC, by the kernel",
        "{status}"
    );
    let log = daemon.stop();
    assert!(log.contains("valid until 2027-06-28"), "{log}");
}

#[test]
fn a_damaged_or_expired_list_is_reported_and_ignored() {
    require_namespaces();
    let Some(entries) = history() else {
        println!("{SYSTEM_LIST} is missing: skipped");
        return;
    };
    let good = list(JAN_2020, JUN_2027, &entries);
    // One TAI-UTC value changed after hashing.
    let damaged = good.replacen("\t37\t", "\t36\t", 1);
    assert_ne!(damaged, good);
    let expired = list(JAN_2020 - 86_400, JAN_2020, &entries);
    for (label, text, why) in
        [("leap-damaged", damaged, "hash"), ("leap-expired", expired, "expired on 2020-01-01")]
    {
        let (_ns, _dir, daemon) = daemon_with_list(label, &text);
        let status = daemon.wait_for_status(Duration::from_secs(20), "the list read", |s| {
            s["leap_file"].as_str().is_some_and(|v| v != "not read yet")
        });
        let verdict = status["leap_file"].as_str().unwrap().to_owned();
        assert!(verdict.starts_with("not used: ") && verdict.contains(why), "{label}: {verdict}");
        assert!(status["leap_second"].is_null(), "{label}: {status}");
        // It serves on, from its local clock here.
        let output = Command::new("ip")
            .args(["netns", "exec", daemon.netns(), "ntpdig", "-t", "2", "127.0.0.1"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&output.stdout).contains(" s10 "), "{label}: no answer");
        let log = daemon.stop();
        assert!(log.contains(why), "{label}: {log}");
    }
}
