//! The CLI's output when its reader goes away (`syhub-ntp clients | head -1`): no panic, no
//! message, and the exit code the command would have had. Stdout here is a pipe whose reading
//! end is closed before the command starts, so every write fails at once, deterministically. The
//! daemon for the commands that ask one runs in a network namespace of the test's own.

use std::process::{Command, Output, Stdio};
use std::time::Duration;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// Runs `syhub-ntp ARGS` with stdout a pipe nobody reads any more; killed (by its PID) after
/// 20 s.
fn with_stdout_closed(args: &[&str]) -> Output {
    use std::io::Read as _;
    let (reader, writer) = nix::unistd::pipe().expect("a pipe");
    drop(reader);
    let mut child = Command::new(SYHUB_NTP)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = Vec::new();
    child.stderr.take().expect("stderr").read_to_end(&mut stderr).expect("stderr");
    let output = Output { status, stdout: Vec::new(), stderr };
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!text.contains("panicked"), "{args:?} panicked: {text}");
    assert!(!matches!(output.status.code(), Some(101 | 134) | None), "{args:?}: {output:?}");
    output
}

#[test]
fn a_closed_stdout_ends_commands_quietly_without_a_daemon() {
    for args in
        [&["config", "default"][..], &["clients-config", "--address", "192.168.1.2"], &["--help"]]
    {
        let output = with_stdout_closed(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert!(output.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    // A failing command keeps its own exit code and still says why on stderr.
    let dir = TempDir::new("cliout");
    let bad = dir.write("bad.toml", "[local]\nstratum = 42\n");
    let output = with_stdout_closed(&["config", "check", "--config", path_str(&bad)]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("stratum 42"), "{output:?}");
    let output = with_stdout_closed(&["config", "check", "--json", "--config", path_str(&bad)]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
}

#[test]
fn a_closed_stdout_ends_daemon_commands_quietly_and_the_local_clock_is_not_a_measurement() {
    let ns = NetNs::new("cliout");
    // No sources, the local clock served from the start: nothing is ever measured.
    let daemon = Daemon::start(SYHUB_NTP, &ns, &test_config(&["127.0.0.1:123"], "", ""));
    ns.run("ntpdig", &["-t", "2", "127.0.0.1"], Duration::from_secs(10));
    let socket = daemon.dir().join("control.sock");
    let socket = path_str(&socket);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["peers"],
        &["peers", "--json"],
        &["clients"],
        &["clients", "--json"],
    ] {
        let mut full = args.to_vec();
        full.extend(["--socket", socket]);
        let output = with_stdout_closed(&full);
        assert_eq!(output.status.code(), Some(0), "{full:?}: {output:?}");
        assert!(output.stderr.is_empty(), "{full:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    let config = daemon.dir().join("config.toml");
    for args in
        [&["info", "--config", path_str(&config)][..], &["test", "--config", path_str(&config)]]
    {
        let output = with_stdout_closed(args);
        assert!(matches!(output.status.code(), Some(0 | 1)), "{args:?}: {output:?}");
    }
    // sync-check's verdict (1: serving the local clock, not synchronised) survives the pipe.
    let output = with_stdout_closed(&["sync-check", "--socket", socket]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");

    let status = Command::new(SYHUB_NTP).args(["status", "--socket", socket]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("state            local clock"), "{text}");
    assert!(text.contains("system offset    not measured (serving the local clock)"), "{text}");
    assert!(!text.contains("1000.0"), "{text}");
    let json =
        Command::new(SYHUB_NTP).args(["status", "--json", "--socket", socket]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(json["offset_uncertainty_seconds"].is_null(), "{json}");
    daemon.stop();
}
