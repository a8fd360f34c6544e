//! Symmetric keys against real peers, in network namespaces the tests create: chronyd and ntpsec's
//! ntpdig accept our signed answers and refuse them under a wrong key; our daemon synchronises
//! from chronyd with a key; keys files are checked before anything starts; `keygen` writes keys
//! that all of them read.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// Key 1: SHA-1; key 2: AES-128-CMAC; key 3: MD5 (ASCII); in ntpd's spelling.
const KEYS: &str = "\
1 SHA1 6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9
2 AES128CMAC 000102030405060708090a0b0c0d0e0f
3 MD5 Wk<t6>PqR+eX3c.Dz]|2
";
/// The same keys as chrony writes them.
const CHRONY_KEYS: &str = "\
1 SHA1 HEX:6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9
2 AES128 HEX:000102030405060708090a0b0c0d0e0f
3 MD5 ASCII:Wk<t6>PqR+eX3c.Dz]|2
";
/// Key ids 1 and 2 with other secrets.
const WRONG_CHRONY_KEYS: &str = "\
1 SHA1 HEX:0000000000000000000000000000000000000000
2 AES128 HEX:ffffffffffffffffffffffffffffffff
";

/// Writes `text` to `dir/name` with mode 0600.
fn private_file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.write(name, text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A config serving 127.0.0.1:123 with `keys` as its keys file.
fn server_config(keys: &Path, sources: &str) -> String {
    test_config(&["127.0.0.1:123"], sources, "")
        + &format!("\n[auth]\nkeys_file = \"{}\"\n", path_str(keys))
}

/// chronyd -Q against 127.0.0.1:123 with `keyfile` and `key id`: its stderr, and whether it
/// took the time.
fn chronyd_query(ns: &NetNs, keyfile: &Path, id: u32) -> (bool, String) {
    let keyfile = format!("keyfile {}", path_str(keyfile));
    let server = format!("server 127.0.0.1 port 123 iburst key {id} minpoll -6 maxpoll -6");
    let output = ns.run(
        "chronyd",
        &["-Q", "-t", "6", "-f", "/dev/null", &keyfile, &server],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success() && stderr.contains("System clock wrong by"), stderr)
}

#[test]
fn chronyd_accepts_our_sha1_aes_and_md5_signed_answers_and_refuses_a_wrong_key() {
    let ns = NetNs::new("authchrony");
    let dir = TempDir::new("authchrony");
    let ours = private_file(&dir, "ntp.keys", KEYS);
    let theirs = private_file(&dir, "chrony.keys", CHRONY_KEYS);
    let wrong = private_file(&dir, "wrong.keys", WRONG_CHRONY_KEYS);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &server_config(&ours, ""));
    for id in [1, 2, 3] {
        let (accepted, stderr) = chronyd_query(&ns, &theirs, id);
        assert!(accepted, "chronyd refused our answer signed with key {id}:\n{stderr}");
    }
    for id in [1, 2] {
        let (accepted, stderr) = chronyd_query(&ns, &wrong, id);
        assert!(!accepted, "chronyd took time under a wrong key {id}:\n{stderr}");
    }
    let log = daemon.stop();
    assert!(log.contains("wrong MAC"), "our daemon did not report the wrong MACs:\n{log}");
}

#[test]
fn ntpdig_accepts_our_signed_answers_and_refuses_a_wrong_key() {
    let ns = NetNs::new("authdig");
    let dir = TempDir::new("authdig");
    let ours = private_file(&dir, "ntp.keys", KEYS);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &server_config(&ours, ""));
    let ntpdig = |keys: &Path, id: &str| {
        let args = ["-j", "-t", "3", "-k", path_str(keys), "-a", id, "127.0.0.1"];
        let output = ns.run("ntpdig", &args, Duration::from_secs(15));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success() && stdout.contains("\"offset\""), format!("{stdout}{stderr}"))
    };
    // ntpdig reads ntpd's keys file format.
    for id in ["1", "2", "3"] {
        let (accepted, output) = ntpdig(&ours, id);
        assert!(accepted, "ntpdig refused our answer signed with key {id}: {output}");
    }
    let wrong =
        private_file(&dir, "wrong.keys", "1 SHA1 0000000000000000000000000000000000000000\n");
    let (accepted, output) = ntpdig(&wrong, "1");
    assert!(!accepted, "ntpdig took time under a wrong key: {output}");
    daemon.stop();
}

#[test]
fn our_daemon_synchronises_from_chronyd_with_a_key_and_not_with_a_wrong_one() {
    let ns = NetNs::new("authsync");
    let dir = TempDir::new("authsync");
    let theirs = private_file(&dir, "chrony.keys", CHRONY_KEYS);
    let _chronyd = Chronyd::server_with(&ns, 11123, 1, &format!("keyfile {}", path_str(&theirs)));
    let source = |id: u32| {
        format!(
            "[[source]]\nmode = \"server\"\naddress = \"127.0.0.1:11123\"\nminpoll = 1\nmaxpoll = 1\nkey = {id}\n\n"
        )
    };
    for id in [1, 2] {
        let ours = private_file(&dir, "ntp.keys", KEYS);
        let daemon = Daemon::start(SYHUB_NTP, &ns, &server_config(&ours, &source(id)));
        daemon.wait_for_status(Duration::from_secs(30), "synchronised", |s| {
            s["synchronised"] == true
        });
        daemon.stop();
    }
    // Our key 1 with another secret: chronyd's answers fail our check and are never used.
    let wrong =
        private_file(&dir, "wrong.keys", "1 SHA1 0000000000000000000000000000000000000000\n");
    let daemon = Daemon::start(SYHUB_NTP, &ns, &server_config(&wrong, &source(1)));
    std::thread::sleep(Duration::from_secs(8));
    let status = daemon.status();
    assert_eq!(status["synchronised"], false, "synchronised under a wrong key: {status}");
    assert_eq!(status["peers"][0]["reach"], "0", "{status}");
    daemon.stop();
}

#[test]
fn a_mac_of_the_wrong_length_gets_no_answer() {
    let ns = NetNs::new("authlen");
    let dir = TempDir::new("authlen");
    let ours = private_file(&dir, "ntp.keys", KEYS);
    let daemon = Daemon::start(SYHUB_NTP, &ns, &server_config(&ours, ""));
    let socket = ns.udp_socket("127.0.0.1:0");
    socket.set_read_timeout(Some(Duration::from_millis(800))).unwrap();
    let mut request = vec![0u8; 48];
    request[0] = 0x23;
    request[40..48].copy_from_slice(&42u64.to_be_bytes());
    let mut buf = [0u8; 128];
    // Key 1 is SHA-1 (a 20-byte digest): 16 bytes, then 12 (DES-sized), then 3 (no MAC at all).
    for digest_len in [16, 8, 3] {
        let mut packet = request.clone();
        packet.extend_from_slice(&1u32.to_be_bytes());
        packet.extend(std::iter::repeat_n(0xab, digest_len));
        socket.send_to(&packet, "127.0.0.1:123").unwrap();
        assert!(socket.recv_from(&mut buf).is_err(), "a {digest_len}-byte digest was answered");
    }
    // An unknown key gets a crypto-NAK: the header and a bare zero key id.
    let mut packet = request.clone();
    packet.extend_from_slice(&99u32.to_be_bytes());
    packet.extend_from_slice(&[0xab; 20]);
    socket.send_to(&packet, "127.0.0.1:123").unwrap();
    let (len, _) = socket.recv_from(&mut buf).expect("a crypto-NAK");
    assert_eq!((len, &buf[48..52]), (52, &[0u8; 4][..]));
    daemon.stop();
}

#[test]
fn keys_files_that_are_readable_by_others_or_malformed_are_refused_before_anything_starts() {
    let ns = NetNs::new("authbad");
    let dir = TempDir::new("authbad");
    let check = |keys: &Path, extra: &str| {
        let config = dir.write_config("config.toml", &(server_config(keys, "") + extra));
        let checked = std::process::Command::new(SYHUB_NTP)
            .args(["config", "check", "--config", path_str(&config)])
            .output()
            .unwrap();
        let ran =
            ns.run(SYHUB_NTP, &["run", "--config", path_str(&config)], Duration::from_secs(10));
        assert_eq!(checked.status.code(), Some(1));
        assert_eq!(ran.status.code(), Some(1), "the daemon started");
        // The daemon logs the same message `config check` prints.
        let stderr = String::from_utf8_lossy(&checked.stderr).into_owned();
        let message = stderr.trim().trim_start_matches("syhub-ntp: ");
        assert!(String::from_utf8_lossy(&ran.stderr).contains(message), "{stderr}");
        stderr
    };

    let open = dir.write("open.keys", KEYS);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = check(&open, "");
    assert!(stderr.contains("has mode 0644: it must be private"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");

    let bad = private_file(
        &dir,
        "bad.keys",
        "1 SHA1 6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9\n2 RC4 oops\n",
    );
    let stderr = check(&bad, "");
    assert!(
        stderr.contains("bad.keys: line 2, column 3: field 2, the key type, is not one"),
        "{stderr}"
    );
    assert!(!stderr.contains("oops"), "the key was quoted: {stderr}");

    let good = private_file(&dir, "good.keys", KEYS);
    let stderr = check(&good, "trusted_keys = [1, 7]\n");
    assert!(stderr.contains("trusted_keys names key 7"), "{stderr}");

    // 0640 (readable by the service's group) is private enough.
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o640)).unwrap();
    let config = dir.write_config("config.toml", &server_config(&good, ""));
    let checked = std::process::Command::new(SYHUB_NTP)
        .args(["config", "check", "--config", path_str(&config)])
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
}

#[test]
fn a_shadow_file_as_keys_file_is_refused_without_showing_a_line_of_it() {
    let ns = NetNs::new("authshadow");
    let dir = TempDir::new("authshadow");
    let hash = "$y$j9T$Xq1dWf9kP0nZs3bC8vHy2/$R7mKpL4tQ9wE2xZ6cV1bN8sA3dF5gH0jU7iO4yT2rE6";
    let shadow = private_file(
        &dir,
        "shadow",
        &format!("root:{hash}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"),
    );
    let config = dir.write_config("config.toml", &server_config(&shadow, ""));
    for json in [false, true] {
        let mut args = vec!["config", "check", "--config", path_str(&config)];
        if json {
            args.push("--json");
        }
        let checked = std::process::Command::new(SYHUB_NTP).args(&args).output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
        assert_eq!(checked.status.code(), Some(1), "{said}");
        assert!(said.contains("line 1, column 1: not an ntpd keys file"), "{said}");
        for fragment in [hash, "$y$", "root:", "99999"] {
            assert!(!said.contains(fragment), "{fragment:?} shown: {said}");
        }
    }
    // The daemon refuses it the same way, and logs none of it either.
    let ran = ns.run(SYHUB_NTP, &["run", "--config", path_str(&config)], Duration::from_secs(10));
    let log = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(1), "{log}");
    assert!(log.contains("not an ntpd keys file") && !log.contains("$y$"), "{log}");
    // Named as itself, an account database is refused by the config, at the value.
    let named = dir.write_config(
        "named.toml",
        &(test_config(&["127.0.0.1:123"], "", "") + "\n[auth]\nkeys_file = \"/etc/shadow\"\n"),
    );
    let checked = std::process::Command::new(SYHUB_NTP)
        .args(["config", "check", "--config", path_str(&named)])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("system account database, not a keys file"), "{stderr}");
}

#[test]
fn keygen_writes_a_private_file_that_we_and_chronyd_use() {
    let ns = NetNs::new("authgen");
    let dir = TempDir::new("authgen");
    let keys = dir.0.join("new.keys");
    for kind in ["aes128cmac", "sha1", "md5"] {
        let output = std::process::Command::new(SYHUB_NTP)
            .args(["keygen", "--type", kind, "--count", "3", "--force", "--json", "--out"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&keys).unwrap();
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 3);

        // chronyd, given the line keygen printed for it, accepts our answers under key 1.
        let chrony = private_file(&dir, "chrony.keys", json["chrony_line"].as_str().unwrap());
        let daemon = Daemon::start(SYHUB_NTP, &ns, &server_config(&keys, ""));
        let (accepted, stderr) = chronyd_query(&ns, &chrony, 1);
        assert!(accepted, "{kind}: chronyd refused a keygen key:\n{stderr}");
        daemon.stop();
    }
    // Without --force an existing file is kept.
    let before = std::fs::read(&keys).unwrap();
    let output = std::process::Command::new(SYHUB_NTP)
        .args(["keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(std::fs::read(&keys).unwrap(), before);
}
