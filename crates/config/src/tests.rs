//! Config tests: the embedded default, every example in docs/examples, and the error messages.

use super::*;

#[test]
fn embedded_default_parses_to_the_built_in_defaults() {
    let parsed = Config::parse(DEFAULT_CONFIG_TOML, "embedded").unwrap();
    assert_eq!(parsed, Config::default());
    assert_eq!(parsed.local.stratum.get(), 10);
    assert_eq!(parsed.clock.mode, ClockMode::Steer);
    assert_eq!(parsed.server.listen.as_slice().len(), 2);
}

#[test]
fn every_key_of_the_embedded_default_has_a_comment() {
    let lines: Vec<&str> = DEFAULT_CONFIG_TOML.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_key = line.contains('=') && !line.trim_start().starts_with('#');
        if is_key {
            assert!(
                i > 0 && lines[i - 1].trim_start().starts_with('#'),
                "no comment above `{line}`"
            );
        }
    }
}

#[test]
fn empty_file_means_all_defaults() {
    assert_eq!(Config::parse("", "empty").unwrap(), Config::default());
}

#[test]
fn example_configs_in_docs_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            Config::parse(&text, &path.display().to_string())
                .unwrap_or_else(|e| panic!("{} does not validate: {e}", path.display()));
            count += 1;
        }
    }
    assert!(count >= 2, "expected example configs in docs/examples");
}

/// Asserts that `text` is refused at `line:column` with a message naming every fragment.
fn assert_refused(text: &str, position: &str, fragments: &[&str]) {
    let origin = "/etc/syhub-ntp/config.toml";
    let message = Config::parse(text, origin).unwrap_err().to_string();
    assert!(message.starts_with(&format!("{origin}:{position}: ")), "{message}");
    for fragment in fragments {
        assert!(message.contains(fragment), "{fragment:?} missing from: {message}");
    }
}

#[test]
fn unknown_key_names_file_line_column_and_the_expected_keys() {
    let text = "[server]\nlisten = []\n\n[local]\nstartum = 9\n";
    assert_refused(text, "5:1", &["startum", "enabled", "stratum"]);
}

#[test]
fn out_of_range_stratum_is_refused_with_its_position() {
    assert_refused("[local]\nstratum = 16\n", "2:11", &["expected 1 to 15"]);
}

#[test]
fn bad_values_say_what_was_expected() {
    assert_refused("[clock]\nmode = \"slew\"\n", "2:8", &["steer", "observe"]);
    let twice = "[server]\nlisten = [\"0.0.0.0:123\", \"0.0.0.0:123\"]\n";
    assert_refused(twice, "2:26", &["listed twice"]);
    assert_refused("[server]\nlisten = [\"hub.local\"]\n", "2:11", &["socket address"]);
    assert_refused("[local]\nenabled = \"yes\"\n", "2:11", &["bool"]);
}

#[test]
fn listen_addresses_that_cannot_work_are_refused() {
    let listen = |list: &str| format!("[server]\nlisten = {list}\n");
    assert_refused(&listen(r#"["0.0.0.0:123", "192.168.1.5:123"]"#), "2:26", &["overlaps"]);
    assert_refused(&listen(r#"["[::1]:123", "[::]:123"]"#), "2:24", &["overlaps"]);
    assert_refused(&listen(r#"["0.0.0.0:0"]"#), "2:11", &["port 0"]);
    assert_refused(&listen(r#"["224.0.1.1:123"]"#), "2:11", &["multicast"]);
    assert_refused(&listen(r#"["255.255.255.255:123"]"#), "2:11", &["broadcast"]);
    assert_refused(&listen(r#"["[::ffff:10.0.0.1]:123"]"#), "2:11", &["IPv4-mapped"]);
    // Different ports, or a wildcard of the other family, are fine.
    let fine = listen(r#"["0.0.0.0:123", "192.168.1.5:1123", "[::1]:123"]"#);
    assert!(Config::parse(&fine, "x").is_ok());
}

#[test]
fn syntax_errors_point_at_the_spot() {
    assert_refused("[server\nlisten = []\n", "1:8", &["]"]);
}

#[test]
fn explicit_missing_file_is_an_error_not_the_default() {
    let error = Config::load(Some(std::path::Path::new("/nonexistent/syhub.toml"))).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/syhub.toml"), "{error}");
}

#[test]
fn sources_are_checked_with_their_position() {
    let source = |body: &str| format!("[[source]]\n{body}\n");
    assert_refused(
        &source("mode = \"pool\"\naddress = \"pool.ntp.org\"\nminpoll = 4"),
        "4:11",
        &["minpoll", "one query a minute"],
    );
    assert_refused(
        &source("mode = \"server\"\naddress = \"10.0.0.1\"\nmax_sources = 2"),
        "4:15",
        &["applies to mode"],
    );
    assert_refused(
        &source("mode = \"server\"\naddress = \"10.0.0.1\"\nminpoll = 8\nmaxpoll = 6"),
        "4:11",
        &["above maxpoll"],
    );
    assert_refused(
        &source("mode = \"server\"\naddress = \"10.0.0.1\"\nminpoll = 20"),
        "4:11",
        &["0 to 17"],
    );
    assert_refused(&source("mode = \"server\"\naddress = \"a b\""), "3:11", &["address"]);
    // A missing key has no value to point at: the table's header it is.
    assert_refused(&source("mode = \"server\""), "1:1", &["address is missing"]);
    assert_refused(&source("mode = \"peer\"\naddress = \"10.0.0.1\""), "2:8", &["server", "pool"]);
    assert_refused(
        &source("mode = \"server\"\naddress = \"10.0.0.1\"\nnoselect = true"),
        "4:1",
        &["noselect"],
    );
    // A LAN pool of the hub's own may poll faster than the public one.
    let lan = source("mode = \"pool\"\naddress = \"ntp.factory.lan\"\nminpoll = 1\nmaxpoll = 2");
    assert!(Config::parse(&lan, "x").is_ok());
}

#[test]
fn no_sources_and_default_sources() {
    assert!(Config::parse("source = []\n", "x").unwrap().sources.is_empty());
    let defaults = Config::parse("", "x").unwrap().sources;
    assert_eq!(defaults, default_sources());
    assert_eq!(defaults[0].address, "pool.ntp.org");
    assert!(defaults[1].fallback && defaults[2].fallback && !defaults[0].fallback);
}

#[test]
fn clock_thresholds_are_checked() {
    assert_refused(
        "[clock]\nstep_threshold = 2.0\npanic_threshold = 1.5\n",
        "3:19",
        &["below step_threshold"],
    );
    assert_refused("[clock]\npanic_threshold = 0.5\n", "2:19", &["at least 1"]);
    assert_refused("[clock]\nstep_threshold = -1\n", "2:18", &["step_threshold"]);
    assert_refused("[clock]\ndrift_file = \"drift\"\n", "2:14", &["absolute path"]);
    assert_refused("[clock]\nstepout = \"long\"\n", "2:11", &["f64"]);
    let config = Config::parse("[clock]\npanic_threshold = 5\ndrift_file = \"\"\n", "x").unwrap();
    assert_eq!(config.clock.panic_threshold, 5.0);
    assert_eq!(config.clock.drift_file, None);
}

#[test]
fn broadcast_tables_are_checked() {
    let refused = |text: &str, fragment: &str| {
        let message = Config::parse(text, "c.toml").unwrap_err().to_string();
        assert!(message.contains(fragment), "{fragment:?} missing from: {message}");
    };
    refused("[[broadcast]]\naddress = \"fd00::1\"\n", "IPv6 has no broadcast");
    refused("[[broadcast]]\naddress = \"hub.lan\"\n", "expected an IP address");
    refused("[[broadcast]]\naddress = \"127.0.0.1\"\n", "not a broadcast or multicast address");
    refused("[[broadcast]]\naddress = \"10.0.0.255\"\ninterval = 0\n", "expected 1 to 65536");
    refused("[[broadcast]]\naddress = \"224.0.1.1\"\nttl = 300\n", "expected 1 to 255");
    let config = Config::parse("[[broadcast]]\naddress = \"10.0.0.255\"\n", "c.toml").unwrap();
    let broadcast = &config.broadcasts[0];
    assert_eq!((broadcast.interval, broadcast.ttl, broadcast.poll_exponent()), (64, 1, 6));
}

#[test]
fn broadcast_sources_must_be_signed_unless_told_otherwise() {
    let source =
        |extra: &str| format!("[[source]]\nmode = \"broadcast\"\naddress = \"224.0.1.1\"\n{extra}");
    let message = Config::parse(&source(""), "c.toml").unwrap_err().to_string();
    assert!(message.contains("needs key = N"), "{message}");
    assert!(Config::parse(&source("key = 1\n"), "c.toml").is_ok());
    let insecure = Config::parse(&source("insecure_unauthenticated = true\n"), "c.toml").unwrap();
    assert!(insecure.sources[0].insecure_unauthenticated);
    let message = Config::parse(
        "[[source]]\nmode = \"broadcast\"\naddress = \"[ff05::101]:123\"\nkey = 1\n",
        "c.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("no port"), "{message}");
    let message = Config::parse(
        "[[source]]\nmode = \"server\"\naddress = \"10.0.0.1\"\ninterface = \"eth0\"\n",
        "c.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("mode = \"broadcast\" only"), "{message}");
}

#[test]
fn reference_clocks_parse_with_their_defaults() {
    let text = "[[source]]\nmode = \"gpsd-shm\"\noffset = 0.12\nprefer = true\n\n\
                [[source]]\nmode = \"pps\"\npath = \"/dev/pps0\"\npair = \"GPS\"\n\n\
                [[source]]\nmode = \"sock\"\naddress = \"gpsd\"\npath = \"/run/chrony.ttyAMA0.sock\"\nrefid = \"NMEA\"\nstratum = 1\n";
    let config = Config::parse(text, "test").unwrap();
    let shm = &config.sources[0];
    assert_eq!((shm.mode, shm.address.as_str(), shm.prefer), (SourceMode::GpsdShm, "SHM(0)", true));
    let settings = shm.refclock.as_ref().unwrap();
    assert_eq!(
        (
            settings.unit,
            settings.refid.as_str(),
            settings.stratum,
            settings.precision,
            settings.poll
        ),
        (0, "GPS", 0, -10, 4)
    );
    assert!((settings.offset() - 0.12).abs() < 1e-12);
    let pps = config.sources[1].refclock.as_ref().unwrap();
    assert_eq!((pps.refid.as_str(), pps.precision, pps.pair.as_deref()), ("PPS", -20, Some("GPS")));
    assert_eq!(config.sources[1].address, "/dev/pps0");
    let sock = &config.sources[2];
    assert_eq!(sock.address, "gpsd");
    assert_eq!(sock.refclock.as_ref().map(|r| (r.refid.as_str(), r.stratum)), Some(("NMEA", 1)));
}

#[test]
fn reference_clock_settings_are_checked() {
    let source = |body: &str| format!("[[source]]\n{body}\n");
    for (body, fragments) in [
        ("mode = \"pps\"\npath = \"/dev/pps0\"", &["needs pair"][..]),
        ("mode = \"pps\"\npair = \"GPS\"", &["needs path", "/dev/pps0"]),
        ("mode = \"sock\"", &["needs path", "/run/chrony"]),
        ("mode = \"sock\"\npath = \"run/x.sock\"", &["absolute path"]),
        ("mode = \"gpsd-shm\"\nunit = 300", &["unit = 300"]),
        ("mode = \"gpsd-shm\"\npath = \"/x\"", &["uses unit"]),
        ("mode = \"gpsd-shm\"\nrefid = \"TOOLONG\"", &["refid", "1 to 4"]),
        ("mode = \"gpsd-shm\"\nstratum = 16", &["stratum = 16"]),
        ("mode = \"gpsd-shm\"\noffset = 2.5", &["offset = 2.5"]),
        ("mode = \"gpsd-shm\"\nminpoll = 4", &["minpoll does not apply to a reference clock"]),
        (
            "mode = \"gpsd-shm\"\npair = \"GPS\"",
            &["pair applies to mode = \"pps\" and \"sock\" only"],
        ),
        ("mode = \"server\"\naddress = \"192.0.2.1\"\nunit = 1", &["reference clocks only"]),
        ("mode = \"server\"", &["address is missing"]),
    ] {
        let message = Config::parse(&source(body), "test").unwrap_err().to_string();
        for fragment in fragments {
            assert!(message.contains(fragment), "{body:?}: {fragment:?} missing from: {message}");
        }
    }
}

#[test]
fn a_value_refused_by_its_table_points_at_the_value() {
    // The cases of issue 22: each was reported at its table's header.
    let source = "[[source]]\nmode = \"server\"\naddress = \"10.0.0.1\"\n";
    assert_refused(&format!("{source}minpoll = 200\n"), "4:11", &["minpoll = 200"]);
    assert_refused(
        &format!("source = []\n\n{}", "[server.rate_limit]\naverage = 5000\n"),
        "4:11",
        &["average = 5000"],
    );
    assert_refused("[server.rate_limit]\nclients = 5\n", "2:11", &["clients = 5"]);
    assert_refused("[server.rate_limit]\nburst = 0\n", "2:9", &["burst = 0"]);
    assert_refused(
        "[server]\nrate_limit = { enabled = true, burst = 0 }\n",
        "2:40",
        &["burst = 0"],
    );
    assert_refused("[clock]\nstepout = -5\n", "2:11", &["stepout = -5"]);
    assert_refused("[mqtt]\nurl = \"http://broker\"\n", "2:7", &["url = ", "mqtt://HOST"]);
    assert_refused("[mqtt]\ntopic = \"a/#\"\n", "2:9", &["topic"]);
    // The second source of two, and a key inside it, not the first table with that key.
    let two = format!("{source}minpoll = 6\n\n{source}minpoll = 7\nmaxpoll = 5\n");
    assert_refused(&two, "9:11", &["minpoll (7) is above maxpoll (5)"]);
    let refclock = "[[source]]\nmode = \"gpsd-shm\"\nstratum = 3\nkey = 4\n";
    assert_refused(refclock, "4:7", &["key does not apply to a reference clock"]);
    let nts_key = "[[source]]\nmode = \"nts\"\naddress = \"nts.example\"\nkey = 4\n";
    assert_refused(nts_key, "4:7", &["key does not apply to an NTS source"]);
}

#[test]
fn nan_and_infinity_are_refused_at_the_key() {
    for value in ["nan", "+nan", "-nan", "inf", "+inf", "-inf"] {
        assert_refused(
            &format!("[clock]\nstep_threshold = {value}\n"),
            "2:18",
            &[&format!("step_threshold = {value}"), "finite"],
        );
    }
    assert_refused("[clock]\nstepout = inf\n", "2:11", &["stepout = inf"]);
    assert_refused("[server.rate_limit]\naverage = nan\n", "2:11", &["average = nan"]);
    assert_refused("[clients]\nin_sync_within = inf\n", "2:18", &["in_sync_within = inf"]);
    let refclock = "[[source]]\nmode = \"gpsd-shm\"\noffset = -inf\n";
    assert_refused(refclock, "3:10", &["offset = -inf"]);
}

#[test]
fn host_bits_in_an_access_rule_are_refused_with_the_network_meant() {
    assert_refused(
        "[server]\nallow = [\"10.0.0.0/8\", \"10.0.0.1/8\"]\n",
        "2:24",
        &["10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"],
    );
    assert_refused(
        "[server]\ndeny = [\"fd00::1/64\"]\n",
        "2:9",
        &["fd00::1/64 has host bits set; did you mean fd00::/64?"],
    );
    assert!(Config::parse("[server]\nallow = [\"10.0.0.1\", \"10.0.0.0/8\"]\n", "x").is_ok());
}

#[test]
fn the_control_socket_needs_an_absolute_path_a_socket_can_have() {
    assert_refused("[control]\nsocket = \"\"\n", "2:10", &["needs a path"]);
    assert_refused("[control]\nsocket = \"control.sock\"\n", "2:10", &["absolute path"]);
    let long = format!("[control]\nsocket = \"/run/{}.sock\"\n", "x".repeat(120));
    assert_refused(&long, "2:10", &["107 bytes"]);
    let fine = Config::parse("[control]\nsocket = \"/tmp/hub/control.sock\"\n", "x").unwrap();
    assert_eq!(fine.control.socket, std::path::Path::new("/tmp/hub/control.sock"));
}

#[test]
fn an_account_database_is_refused_as_the_keys_file() {
    for path in ["/etc/shadow", "/etc/gshadow", "/etc/passwd", "/etc//shadow"] {
        assert_refused(
            &format!("[auth]\nkeys_file = \"{path}\"\n"),
            "2:13",
            &["system account database, not a keys file"],
        );
    }
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte() {
    let mut bytes = b"[local]\nstratum = 3\n# caf".to_vec();
    bytes.extend([0xE9, b'\n']);
    let message = Config::parse_bytes(&bytes, "c.toml").unwrap_err().to_string();
    assert!(
        message.starts_with("c.toml:3:6: byte 0xE9 (at byte offset 25) is not UTF-8"),
        "{message}"
    );
    assert!(Config::parse_bytes(b"[local]\nstratum = 3\n", "c.toml").is_ok());
}

#[test]
fn a_long_line_is_shown_once_and_cut_around_the_error() {
    let long = "a".repeat(1 << 20);
    let text = format!("[[source]]\nmode = \"server\"\naddress = \"{long}\"\nminpoll = 99\n");
    let message = Config::parse(&text, "c.toml").unwrap_err().to_string();
    assert!(message.len() < 2_000, "{} bytes", message.len());
    // A long value refused for itself: the message quotes it cut short, the excerpt a window.
    let text = format!("[server]\nuser = {}\n", "9".repeat(1 << 20));
    let message = Config::parse(&text, "c.toml").unwrap_err().to_string();
    assert!(message.len() < 2_000, "{} bytes: {}", message.len(), &message[..200]);
    let text = format!("[control]\nsocket = \"/{long}\"\n");
    let message = Config::parse(&text, "c.toml").unwrap_err().to_string();
    assert!(message.len() < 2_000, "{} bytes", message.len());
    assert!(message.contains('…'), "{message}");
    // The caret still points at the column, inside the window.
    let text = format!("[local]\n{}stratum = 99\n", " ".repeat(500));
    let message = Config::parse(&text, "c.toml").unwrap_err().to_string();
    let lines: Vec<&str> = message.lines().collect();
    assert!(lines[0].starts_with("c.toml:2:511: "), "{message}");
    let caret = lines[2].chars().position(|c| c == '^').unwrap();
    assert_eq!(lines[1].chars().nth(caret), Some('9'), "{message}");
}
