//! The files the service reads, as the service's account sees them: `keygen` and
//! `nts-certificate` write them readable by its group, `restore` gives them back their owner and
//! mode (never the archive's), and `config check` judges them as that account, in a mount
//! namespace whose account files name it. Scratch roots only; the account ids stand in for the
//! real ones and need no account on this machine.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

/// Ids no account on this machine has: the service's account in the scratch roots.
const UID: u32 = 64_917;
const GID: u32 = 64_918;

fn syhub(args: &[&str], dir: &Path) -> Output {
    let output = Command::new(SYHUB_NTP).args(args).current_dir(dir).output().unwrap();
    eprintln!(
        "{args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A scratch root whose account files hold the service's account.
fn root_with_account(dir: &TempDir) -> std::path::PathBuf {
    let root = dir.0.join("root");
    std::fs::create_dir_all(root.join("etc/syhub-ntp")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        format!("root:x:0:0::/root:/bin/sh\nsyhub-ntp:x:{UID}:{GID}::/:/usr/sbin/nologin\n"),
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), format!("root:x:0:\nsyhub-ntp:x:{GID}:\n")).unwrap();
    root
}

fn mode_and_owner(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn keygen_and_nts_certificate_write_what_the_service_can_read_and_nobody_else() {
    let dir = TempDir::new("svcfiles");
    let root = root_with_account(&dir);
    let me = my_ids();

    assert!(syhub(&["keygen", "--root", path_str(&root), "--count", "2"], &dir.0).status.success());
    let keys = root.join("etc/syhub-ntp/ntp.keys");
    assert_eq!(mode_and_owner(&keys), (0o640, me.0, GID));

    assert!(
        syhub(&["nts-certificate", "--self-signed", "hub.lan", "--root", path_str(&root)], &dir.0)
            .status
            .success()
    );
    assert_eq!(mode_and_owner(&root.join("etc/syhub-ntp/key.pem")), (0o640, me.0, GID));
    assert_eq!(mode_and_owner(&root.join("etc/syhub-ntp/cert.pem")).0, 0o644);

    // A relative --out is from the current directory, wherever --root points.
    let work = dir.0.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let relative = syhub(&["keygen", "--root", path_str(&root), "--out", "keys/new.keys"], &work);
    assert!(relative.status.success());
    assert!(work.join("keys/new.keys").exists());
    assert!(!root.join("keys/new.keys").exists() && !Path::new("/keys/new.keys").exists());
    // Without the account (this work directory's "root" has none): owner only.
    let plain = dir.0.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    assert!(
        syhub(&["keygen", "--root", path_str(&plain), "--out", "/k.keys"], &dir.0).status.success()
    );
    assert_eq!(mode_and_owner(&plain.join("k.keys")).0, 0o600);
}

/// This process's uid and gid, read from a file it creates (no libc call needed).
fn my_ids() -> (u32, u32) {
    let probe = std::env::temp_dir().join(format!("svcfiles-ids-{}", std::process::id()));
    std::fs::write(&probe, "").unwrap();
    let m = std::fs::metadata(&probe).unwrap();
    std::fs::remove_file(&probe).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn restore_gives_every_file_the_config_names_its_owner_and_mode_back() {
    let dir = TempDir::new("svcrestore");
    let root = root_with_account(&dir);
    let config = "source = []\n[auth]\nkeys_file = \"/etc/syhub-ntp/ntp.keys\"\n\
                  [clock]\ndrift_file = \"/var/lib/syhub-ntp/drift\"\n\
                  [nts]\ncertificate = \"/etc/syhub-ntp/cert.pem\"\nprivate_key = \"/etc/syhub-ntp/key.pem\"\n\
                  [mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nusername = \"hub\"\npassword_file = \"/etc/syhub-ntp/mqtt.password\"\n";
    std::fs::write(root.join("etc/syhub-ntp/config.toml"), config).unwrap();
    assert!(syhub(&["keygen", "--root", path_str(&root)], &dir.0).status.success());
    assert!(
        syhub(&["nts-certificate", "--self-signed", "hub.lan", "--root", path_str(&root)], &dir.0)
            .status
            .success()
    );
    std::fs::create_dir_all(root.join("var/lib/syhub-ntp")).unwrap();
    std::fs::write(root.join("var/lib/syhub-ntp/drift"), "-4.125\n").unwrap();
    let password = root.join("etc/syhub-ntp/mqtt.password");
    std::fs::write(&password, "s3cret\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();

    let archive = dir.0.join("hub.tar.gz");
    let saved = syhub(&["backup", path_str(&archive), "--root", path_str(&root), "--json"], &dir.0);
    assert!(saved.status.success());
    let json: serde_json::Value = serde_json::from_slice(&saved.stdout).unwrap();
    let names: Vec<&str> = json["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["config.toml", "keys", "drift", "nts-certificate", "nts-key", "mqtt-password"]
    );

    // The files lose their owner and mode (as root's own tools leave them), then come back.
    for name in ["ntp.keys", "key.pem", "mqtt.password", "cert.pem"] {
        let path = root.join("etc/syhub-ntp").join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let restored = syhub(&["restore", path_str(&archive), "--root", path_str(&root)], &dir.0);
    assert!(restored.status.success());
    let me = my_ids();
    for name in ["ntp.keys", "key.pem", "mqtt.password"] {
        assert_eq!(
            mode_and_owner(&root.join("etc/syhub-ntp").join(name)),
            (0o640, me.0, GID),
            "{name}"
        );
    }
    assert_eq!(mode_and_owner(&root.join("etc/syhub-ntp/cert.pem")).0, 0o644);
    let drift = mode_and_owner(&root.join("var/lib/syhub-ntp/drift"));
    assert_eq!((drift.0, drift.1, drift.2), (0o644, UID, GID), "the drift file is the service's");
}

#[test]
fn config_check_judges_the_files_as_the_services_account() {
    for tool in ["unshare", "mount"] {
        assert!(Command::new("which").arg(tool).output().unwrap().status.success(), "no {tool}");
    }
    let dir = TempDir::new("svccheck");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let passwd = dir.write(
        "passwd",
        &format!("root:x:0:0::/root:/bin/sh\nsyhub-ntp:x:{UID}:{GID}::/:/usr/sbin/nologin\n"),
    );
    let group = dir.write("group", &format!("root:x:0:\nsyhub-ntp:x:{GID}:\n"));
    let keys = dir.write("ntp.keys", "1 SHA1 6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9\n");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.write(
        "config.toml",
        &format!("source = []\n[auth]\nkeys_file = \"{}\"\n", path_str(&keys)),
    );
    // Only this process's view of /etc/passwd and /etc/group changes.
    let check = || {
        let script = format!(
            "mount --bind {} /etc/passwd && mount --bind {} /etc/group && exec {SYHUB_NTP} config check --config {}",
            path_str(&passwd),
            path_str(&group),
            path_str(&config)
        );
        let output = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) = check();
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("syhub-ntp cannot read") && said.contains("chgrp syhub-ntp"), "{said}");
    assert!(!said.contains("6f2c1d0e"), "the key itself is never printed: {said}");

    std::os::unix::fs::chown(&keys, None, Some(GID)).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, said) = check();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("config OK"), "{said}");

    // Without the account (the machine's own account files), nothing is judged this way.
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = Command::new(SYHUB_NTP)
        .args(["config", "check", "--config", path_str(&config)])
        .output()
        .unwrap();
    let has_account = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("syhub-ntp:"));
    if !has_account {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
}
