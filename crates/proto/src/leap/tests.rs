use super::*;
use crate::packet::LeapIndicator;
use crate::time::{NtpDuration, NtpTimestamp, UNIX_EPOCH_IN_NTP_SECONDS, days_from_civil};
use sha1::{Digest, Sha1};

const SYSTEM_LIST: &str = "/usr/share/zoneinfo/leap-seconds.list";

/// Unix seconds at 00:00 UTC of a date.
pub(crate) fn unix_day(year: i64, month: i64, day: i64) -> i64 {
    days_from_civil(year, month as u32, day as u32) * 86_400
}

/// NTP seconds (counted on past 2036, as the file does) at 00:00 UTC of a date.
pub(crate) fn ntp_day(year: i64, month: i64, day: i64) -> i64 {
    unix_day(year, month, day) + UNIX_EPOCH_IN_NTP_SECONDS
}

pub(crate) fn at_day(year: i64, month: i64, day: i64) -> NtpTimestamp {
    NtpTimestamp::from_unix(unix_day(year, month, day), 0)
}

fn seconds(seconds: i64) -> NtpDuration {
    NtpDuration::from_seconds(seconds)
}

/// The `#h` value over update time, expiry and entries, computed here independently of the parser.
fn hash_line(updated: i64, expires: i64, entries: &[(i64, i32)]) -> String {
    let mut covered = format!("{updated}{expires}");
    for (ntp_seconds, tai_offset) in entries {
        covered.push_str(&format!("{ntp_seconds}{tai_offset}"));
    }
    let digest = Sha1::digest(covered.as_bytes());
    let words: Vec<String> = digest
        .chunks(4)
        .map(|w| format!("{:02x}{:02x}{:02x}{:02x}", w[0], w[1], w[2], w[3]))
        .collect();
    format!("#h\t{}", words.join(" "))
}

/// A valid leap-seconds.list text in the layout the IERS uses, with comments in between.
pub(crate) fn build_file(updated: i64, expires: i64, entries: &[(i64, i32)]) -> String {
    let mut text = String::from("#\n#\tA leap second list made up for tests.\n#\n");
    text.push_str(&format!("#$\t{updated}\n#\n#@\t{expires}\n#\n#NTP Time\tDTAI\n"));
    for (ntp_seconds, tai_offset) in entries {
        text.push_str(&format!("{ntp_seconds}\t{tai_offset}\t# an entry\n"));
    }
    text.push_str(&format!("#\n{}\n", hash_line(updated, expires, entries)));
    text
}

/// A made-up history: the 1972 start and three insertions.
fn history() -> Vec<(i64, i32)> {
    vec![
        (ntp_day(1972, 1, 1), 10),
        (ntp_day(1972, 7, 1), 11),
        (ntp_day(1980, 1, 1), 12),
        (ntp_day(2000, 7, 1), 13),
    ]
}

fn updated() -> i64 {
    ntp_day(2025, 7, 1)
}

fn expiry() -> i64 {
    ntp_day(2026, 6, 28)
}

fn valid_file() -> String {
    build_file(updated(), expiry(), &history())
}

/// The text with line `number` (from 1) replaced by `replacement`, or removed if it is `None`.
fn edit_line(text: &str, number: usize, replacement: Option<&str>) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    match replacement {
        Some(line) => lines[number - 1] = line,
        None => {
            lines.remove(number - 1);
        }
    }
    lines.join("\n") + "\n"
}

fn line_number_of(text: &str, prefix: &str) -> usize {
    text.lines().position(|line| line.starts_with(prefix)).expect("line present") + 1
}

#[test]
fn parses_a_built_file_and_keeps_its_entries() {
    let table = LeapTable::parse(&valid_file()).unwrap();
    let expected: Vec<LeapEntry> = history()
        .iter()
        .map(|&(ntp_seconds, tai_offset)| LeapEntry {
            at: NtpTimestamp::from_unix(ntp_seconds - UNIX_EPOCH_IN_NTP_SECONDS, 0),
            tai_offset,
        })
        .collect();
    assert_eq!(table.entries(), &expected[..]);
    assert_eq!(table.entries()[0].at, at_day(1972, 1, 1));
    assert_eq!(table.expires(), at_day(2026, 6, 28));
}

#[test]
fn parses_crlf_line_ends() {
    let text = valid_file().replace('\n', "\r\n");
    assert_eq!(LeapTable::parse(&text).unwrap().entries().len(), 4);
}

#[test]
fn hash_rule_matches_the_system_leap_seconds_list() {
    let Ok(text) = std::fs::read_to_string(SYSTEM_LIST) else {
        println!("skipped: {SYSTEM_LIST} is not on this machine");
        return;
    };
    let table = LeapTable::parse(&text).unwrap();
    let entries = table.entries();
    assert_eq!(entries.len(), 28);
    assert_eq!(entries[0], LeapEntry { at: at_day(1972, 1, 1), tai_offset: 10 });
    assert_eq!(entries[27], LeapEntry { at: at_day(2017, 1, 1), tai_offset: 37 });
    assert!(entries.windows(2).all(|pair| pair[1].tai_offset == pair[0].tai_offset + 1));
}

#[test]
fn comments_are_not_covered_by_the_hash() {
    let text = valid_file().replace("an entry", "another entry, 12345");
    assert!(LeapTable::parse(&text).is_ok());
    let indented = edit_line(&text, 2, Some("  \t# an indented comment 42"));
    assert!(LeapTable::parse(&indented).is_ok());
}

#[test]
fn flipped_digit_is_a_hash_mismatch() {
    let text = valid_file();
    let expiry_line = format!("#@\t{}", expiry());
    let flipped = format!("#@\t{}", expiry() + 86_400);
    let err = LeapTable::parse(&text.replace(&expiry_line, &flipped)).unwrap_err();
    assert!(matches!(err, LeapFileError::HashMismatch { .. }), "{err:?}");

    let entry = format!("{}\t12", ntp_day(1980, 1, 1));
    let flipped = format!("{}\t12", ntp_day(1980, 1, 1) + 86_400 * 10);
    let err = LeapTable::parse(&text.replace(&entry, &flipped)).unwrap_err();
    assert!(matches!(err, LeapFileError::HashMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("fetch a fresh copy"), "{err}");
}

#[test]
fn hash_groups_without_leading_zeros_are_read() {
    // Find an update time whose hash has a word with a leading zero, then drop the zeros.
    let (update, hash) = (0..)
        .map(|day| updated() + day * 86_400)
        .map(|update| (update, hash_line(update, expiry(), &history())))
        .find(|(_, hash)| hash["#h\t".len()..].split(' ').any(|group| group.starts_with('0')))
        .unwrap();
    let text = build_file(update, expiry(), &history());
    let groups: Vec<&str> = hash["#h\t".len()..]
        .split(' ')
        .map(|group| group.trim_start_matches('0'))
        .map(|group| if group.is_empty() { "0" } else { group })
        .collect();
    let short = format!("#h\t{}", groups.join(" "));
    assert_ne!(short, hash);
    assert!(LeapTable::parse(&text.replace(&hash, &short)).is_ok());
}

#[test]
fn missing_hash_line_is_refused() {
    let text = valid_file();
    let without = edit_line(&text, line_number_of(&text, "#h"), None);
    assert_eq!(LeapTable::parse(&without), Err(LeapFileError::MissingHash));
}

#[test]
fn malformed_hash_lines_are_refused_with_their_line_number() {
    let text = valid_file();
    let line = line_number_of(&text, "#h");
    for bad in ["#h", "#h\tnot a hash", "#h\t1 2 3 4", "#h\t1 2 3 4 5 6", "#h\t123456789 1 2 3 4"] {
        let err = LeapTable::parse(&edit_line(&text, line, Some(bad))).unwrap_err();
        assert_eq!(err, LeapFileError::BadHash { line, text: bad.to_string() });
    }
}

#[test]
fn missing_expiry_line_is_refused() {
    let text = valid_file();
    let without = edit_line(&text, line_number_of(&text, "#@"), None);
    assert_eq!(LeapTable::parse(&without), Err(LeapFileError::MissingExpiry));
}

#[test]
fn missing_update_line_is_refused() {
    let text = valid_file();
    let without = edit_line(&text, line_number_of(&text, "#$"), None);
    assert_eq!(LeapTable::parse(&without), Err(LeapFileError::MissingUpdateTime));
}

#[test]
fn garbage_lines_are_refused_with_their_line_number() {
    let text = valid_file();
    let garbage = [
        "hello",
        "2272060800",
        "2272060800 10 11",
        "-2272060800 10",
        "2272060800 +10",
        "22720608OO 10",
        "2272060800 99999999999",
        "99999999999999999999999 10",
        "#@",
        "#$ soon",
        "#@ 3991593600 3991593600",
    ];
    for bad in garbage {
        let err = LeapTable::parse(&edit_line(&text, 2, Some(bad))).unwrap_err();
        let LeapFileError::BadLine { line, text, .. } = &err else {
            panic!("{bad:?} gave {err:?}");
        };
        assert_eq!((*line, text.as_str()), (2, bad));
        assert!(err.to_string().starts_with("line 2: "), "{err}");
    }
}

#[test]
fn repeated_special_lines_are_refused() {
    let text = valid_file();
    let expiry_line = format!("#@\t{}", expiry());
    let err = LeapTable::parse(&edit_line(&text, 2, Some(&expiry_line))).unwrap_err();
    assert!(matches!(err, LeapFileError::BadLine { .. }), "{err:?}");
}

#[test]
fn out_of_order_entries_are_refused() {
    let mut entries = history();
    entries.swap(2, 3);
    entries[2].1 = 12;
    entries[3].1 = 13;
    let text = build_file(updated(), expiry(), &entries);
    let err = LeapTable::parse(&text).unwrap_err();
    assert!(matches!(err, LeapFileError::OutOfOrder { .. }), "{err:?}");

    let mut repeated = history();
    repeated[2].0 = repeated[1].0;
    let err = LeapTable::parse(&build_file(updated(), expiry(), &repeated)).unwrap_err();
    assert!(matches!(err, LeapFileError::OutOfOrder { .. }), "{err:?}");
}

#[test]
fn offset_step_of_two_is_refused() {
    let mut entries = history();
    entries[3].1 = 14;
    let text = build_file(updated(), expiry(), &entries);
    let line = line_number_of(&text, &ntp_day(2000, 7, 1).to_string());
    let err = LeapTable::parse(&text).unwrap_err();
    assert_eq!(err, LeapFileError::BadOffsetStep { line, previous: 12, tai_offset: 14 });
    assert!(err.to_string().contains("exactly one second"), "{err}");
}

#[test]
fn first_entry_must_be_10_seconds_at_1972() {
    let later_start = &history()[1..];
    let err = LeapTable::parse(&build_file(updated(), expiry(), later_start)).unwrap_err();
    assert!(matches!(err, LeapFileError::BadFirstEntry { tai_offset: 11, .. }), "{err:?}");
}

#[test]
fn entries_must_start_at_midnight() {
    let mut entries = history();
    entries[2].0 += 3600;
    let err = LeapTable::parse(&build_file(updated(), expiry(), &entries)).unwrap_err();
    assert!(matches!(err, LeapFileError::BadLine { .. }), "{err:?}");
}

#[test]
fn a_file_without_entries_is_refused() {
    let err = LeapTable::parse(&build_file(updated(), expiry(), &[])).unwrap_err();
    assert_eq!(err, LeapFileError::NoEntries);
    assert_eq!(LeapTable::parse(""), Err(LeapFileError::MissingUpdateTime));
}

/// A table whose last entry is a future insertion at 2027-01-01, valid until 2027-06-28.
fn table_with_future_leap(tai_offset: i32) -> LeapTable {
    let mut entries = history();
    entries.push((ntp_day(2027, 1, 1), tai_offset));
    LeapTable::parse(&build_file(ntp_day(2026, 7, 6), ntp_day(2027, 6, 28), &entries)).unwrap()
}

#[test]
fn next_leap_finds_a_future_insertion() {
    let table = table_with_future_leap(14);
    let insertion = Leap { at: at_day(2027, 1, 1), kind: LeapKind::Insert };
    assert_eq!(table.next_leap(at_day(2026, 7, 10)), Some(insertion));
    assert_eq!(table.next_leap(at_day(2027, 1, 1) - seconds(1)), Some(insertion));
    assert_eq!(table.next_leap(at_day(2027, 1, 1)), None, "a leap at `now` is past");
    // Long ago, the next one was the first leap of the table, not its 1972 start.
    let first = Leap { at: at_day(1972, 7, 1), kind: LeapKind::Insert };
    assert_eq!(table.next_leap(at_day(1971, 3, 1)), Some(first));
    assert_eq!(table.next_leap(at_day(1990, 1, 1)).map(|leap| leap.at), Some(at_day(2000, 7, 1)));
}

#[test]
fn next_leap_finds_a_future_deletion() {
    let table = table_with_future_leap(12);
    let deletion = Leap { at: at_day(2027, 1, 1), kind: LeapKind::Delete };
    assert_eq!(table.next_leap(at_day(2026, 12, 31)), Some(deletion));
}

#[test]
fn expired_file_says_nothing_about_leaps() {
    let table = table_with_future_leap(14);
    let expiry = at_day(2027, 6, 28);
    assert!(!table.is_expired(expiry - seconds(1)));
    assert!(table.is_expired(expiry));
    assert!(table.is_expired(at_day(2030, 1, 1)));
    // Even a leap the file lists is not reported once the file has expired.
    let early_expiry = ntp_day(2026, 12, 28);
    let mut entries = history();
    entries.push((ntp_day(2027, 1, 1), 14));
    let table = LeapTable::parse(&build_file(updated(), early_expiry, &entries)).unwrap();
    assert!(table.next_leap(at_day(2026, 12, 27)).is_some());
    assert_eq!(table.next_leap(at_day(2026, 12, 28)), None);
    assert_eq!(table.next_leap(at_day(2026, 12, 31)), None);
}

#[test]
fn next_leap_works_in_era_1() {
    // After 2036-02-07 the file's NTP seconds pass 2^32 while timestamps wrap to era 1.
    let mut entries = history();
    entries.push((ntp_day(2037, 1, 1), 14));
    assert!(ntp_day(2037, 1, 1) > 1 << 32);
    let table =
        LeapTable::parse(&build_file(ntp_day(2036, 7, 1), ntp_day(2037, 6, 28), &entries)).unwrap();
    let now = at_day(2036, 12, 1);
    let leap = table.next_leap(now).unwrap();
    assert_eq!(leap.kind, LeapKind::Insert);
    assert_eq!(leap.at.to_unix_near(unix_day(2036, 12, 1)), (unix_day(2037, 1, 1), 0));
    assert!(!table.is_expired(now));
    assert!(table.is_expired(at_day(2037, 6, 28)));
}

#[test]
fn announce_only_during_the_last_day_before_the_leap() {
    let leap = Leap { at: at_day(2027, 1, 1), kind: LeapKind::Insert };
    assert!(!announce(&leap, leap.at - seconds(86_401)));
    assert!(announce(&leap, leap.at - seconds(86_400)));
    assert!(announce(&leap, leap.at - seconds(1)));
    assert!(announce(&leap, leap.at - NtpDuration::from_nanos(1)));
    assert!(!announce(&leap, leap.at));
    assert!(!announce(&leap, leap.at + seconds(1)));
}

#[test]
fn leap_indicator_follows_the_announcement() {
    let insert = Leap { at: at_day(2027, 1, 1), kind: LeapKind::Insert };
    let delete = Leap { kind: LeapKind::Delete, ..insert };
    let last_day = insert.at - seconds(3600);
    let week_before = insert.at - seconds(7 * 86_400);
    assert_eq!(leap_indicator_for(Some(&insert), last_day), LeapIndicator::InsertSecond);
    assert_eq!(leap_indicator_for(Some(&delete), last_day), LeapIndicator::DeleteSecond);
    assert_eq!(leap_indicator_for(Some(&insert), week_before), LeapIndicator::NoWarning);
    assert_eq!(leap_indicator_for(Some(&insert), insert.at), LeapIndicator::NoWarning);
    assert_eq!(leap_indicator_for(None, last_day), LeapIndicator::NoWarning);
}

/// Walks a simulated kernel clock that performs `kind` at `at` through the smear in 10 ms steps of
/// real time, from the reading `at - window` to `at + window`, and checks the served time.
fn walk_through_smear(kind: LeapKind, window: f64) {
    const STEP_NANOS: i64 = 10_000_000;
    let at_unix = unix_day(2027, 1, 1);
    let smear = Smear { leap: Leap { at: NtpTimestamp::from_unix(at_unix, 0), kind }, window };
    let window_nanos = (window * 1e9) as i64;
    let start_nanos = at_unix * 1_000_000_000 - window_nanos;
    // Real time since the start at which the kernel steps, and by how much.
    let (step_at, step) = match kind {
        LeapKind::Insert => (window_nanos, -1_000_000_000),
        LeapKind::Delete => (window_nanos - 1_000_000_000, 1_000_000_000),
    };
    let rate = match kind {
        LeapKind::Insert => (window - 1.0) / window,
        LeapKind::Delete => (window + 1.0) / window,
    };
    let step_seconds = STEP_NANOS as f64 / 1e9;

    let mut previous: Option<(f64, bool)> = None;
    let mut active_steps = 0;
    let mut elapsed = 0;
    loop {
        let after_leap = elapsed >= step_at;
        let reading_nanos = start_nanos + elapsed + if after_leap { step } else { 0 };
        if reading_nanos >= (at_unix + window as i64) * 1_000_000_000 {
            break;
        }
        let clock = NtpTimestamp::from_unix(
            reading_nanos.div_euclid(1_000_000_000),
            reading_nanos.rem_euclid(1_000_000_000) as u32,
        );
        let correction = smear.correction(clock, after_leap);
        let active = smear.is_active(clock, after_leap);
        let served = (clock - smear.leap.at).to_seconds_f64() + correction;
        if !active {
            assert_eq!(correction, 0.0, "served time is the clock outside the window");
        } else {
            active_steps += 1;
            assert!(correction.abs() <= 0.5, "correction {correction} at {elapsed} ns");
        }
        if let Some((before, was_active)) = previous {
            let advance = served - before;
            assert!(advance > 0.0, "served time went back by {advance} s at {elapsed} ns");
            assert!(advance <= 0.011, "served time jumped by {advance} s at {elapsed} ns");
            let expected = if was_active { step_seconds * rate } else { step_seconds };
            assert!((advance - expected).abs() < 1e-9, "advance {advance} at {elapsed} ns");
        }
        previous = Some((served, active));
        elapsed += STEP_NANOS;
    }
    assert_eq!(active_steps, (window * 100.0).round() as i64, "the window lasts `window` seconds");
}

#[test]
fn smeared_insertion_is_continuous_monotonic_and_steady() {
    walk_through_smear(LeapKind::Insert, 600.0);
    walk_through_smear(LeapKind::Insert, 61.0);
}

#[test]
fn smeared_deletion_is_continuous_monotonic_and_steady() {
    walk_through_smear(LeapKind::Delete, 600.0);
    walk_through_smear(LeapKind::Delete, 61.0);
}

#[test]
fn smear_correction_is_half_a_second_at_the_step() {
    let at = at_day(2027, 1, 1);
    let just = NtpDuration::from_nanos(1);
    let insert = Smear { leap: Leap { at, kind: LeapKind::Insert }, window: 86_400.0 };
    assert_eq!(insert.correction(at - seconds(43_200), false), 0.0);
    assert_eq!(insert.correction(at - seconds(43_201), false), 0.0);
    assert!(!insert.is_active(at - seconds(43_201), false));
    assert!((insert.correction(at - just, false) + 0.5).abs() < 1e-6);
    assert!((insert.correction(at - seconds(1), true) - 0.5).abs() < 1e-12);
    assert!(insert.is_active(at + seconds(43_198), true));
    assert!(!insert.is_active(at + seconds(43_199), true));

    let delete = Smear { leap: Leap { at, kind: LeapKind::Delete }, ..insert };
    assert!((delete.correction(at - seconds(1) - just, false) - 0.5).abs() < 1e-6);
    assert!((delete.correction(at, true) + 0.5).abs() < 1e-12);
    assert!(!delete.is_active(at + seconds(43_200), true));
}

#[test]
fn smear_without_a_usable_window_does_nothing() {
    let at = at_day(2027, 1, 1);
    for window in [0.0, 1.0, -5.0, f64::NAN, f64::INFINITY] {
        let smear = Smear { leap: Leap { at, kind: LeapKind::Insert }, window };
        assert_eq!(smear.correction(at - NtpDuration::from_nanos(1), false), 0.0);
        assert!(!smear.is_active(at - seconds(1), true));
    }
}

/// Deterministic pseudo-random numbers (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn arbitrary_text_never_panics() {
    const ALPHABET: &[char] =
        &['0', '1', '2', '9', ' ', '\t', '\n', '\r', '#', '$', '@', 'h', 'a', 'f', '+', '-', 'é'];
    let mut rng = Rng(0x5eed_1ea9_2026_0001);
    let valid = valid_file();
    for round in 0..600 {
        let text: String = if round % 2 == 0 {
            let len = rng.below(200);
            (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect()
        } else {
            // A valid file with a few characters replaced and perhaps cut short.
            let mut chars: Vec<char> = valid.chars().collect();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(chars.len());
                chars[at] = ALPHABET[rng.below(ALPHABET.len())];
            }
            let keep = if rng.below(4) == 0 { rng.below(chars.len()) } else { chars.len() };
            chars[..keep].iter().collect()
        };
        let _ = LeapTable::parse(&text);
    }
}
