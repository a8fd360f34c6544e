//! backup → restore round trip under a scratch root, and archives that must be refused without
//! anything changing: truncated, foreign, tampered, a file sent where the config does not put it or
//! listed twice, a member too large, a symbolic link on the way, or a config that does not parse;
//! modes the archive records are not applied; a config whose keys file is not one (an account
//! database) is neither backed up nor restored, and the refusal shows none of it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use syhub_ntp_testkit::*;

/// The binary under test.
const SYHUB_NTP: &str = env!("CARGO_BIN_EXE_syhub-ntp");

const CONFIG: &str = "source = []\n[local]\nstratum = 9\n[auth]\nkeys_file = \"/etc/syhub-ntp/ntp.keys\"\n[clock]\ndrift_file = \"/var/lib/syhub-ntp/drift\"\n";

fn put(root: &Path, path: &str, text: &str, mode: u32) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn prepared_root() -> (TempDir, PathBuf) {
    let dir = TempDir::new("backup");
    let root = dir.0.join("root");
    // The service's account: this process's own ids, so that restore's chown needs no privilege.
    put(&root, "etc/syhub-ntp/config.toml", CONFIG, 0o644);
    let ids = std::fs::metadata(root.join("etc/syhub-ntp/config.toml")).unwrap();
    let (uid, gid) = (ids.uid(), ids.gid());
    put(&root, "etc/passwd", &format!("syhub-ntp:x:{uid}:{gid}::/:/usr/sbin/nologin\n"), 0o644);
    put(&root, "etc/group", &format!("syhub-ntp:x:{gid}:\n"), 0o644);
    put(
        &root,
        "etc/syhub-ntp/ntp.keys",
        "1 SHA1 6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9\n",
        0o640,
    );
    put(&root, "var/lib/syhub-ntp/drift", "3.250\n", 0o644);
    (dir, root)
}

fn syhub(args: &[&str], root: &Path) -> (i32, serde_json::Value) {
    let output =
        Command::new(SYHUB_NTP).args(args).arg("--root").arg(root).arg("--json").output().unwrap();
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{args:?}: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code().unwrap_or(-1), json)
}

/// Runs `syhub-ntp ARGS`: its exit code and everything it printed, stdout then stderr.
fn run_said(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(SYHUB_NTP).args(args).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), said)
}

/// Every file under `root` with its mode and contents.
fn tree(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
                files.push((path.display().to_string(), mode, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn sh(script: &str) {
    let status = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
}

#[test]
fn a_backup_restores_what_it_saved_and_keeps_what_it_replaced() {
    let (dir, root) = prepared_root();
    let archive = dir.0.join("hub.tar.gz");
    let (code, json) = syhub(&["backup", archive.to_str().unwrap()], &root);
    assert_eq!(code, 0, "{json}");
    assert_eq!(std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777, 0o600);
    let saved: Vec<&str> = json["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        saved,
        ["/etc/syhub-ntp/config.toml", "/etc/syhub-ntp/ntp.keys", "/var/lib/syhub-ntp/drift"]
    );

    let original = tree(&root);
    put(&root, "etc/syhub-ntp/config.toml", "source = []\n[local]\nstratum = 12\n", 0o600);
    std::fs::remove_file(root.join("var/lib/syhub-ntp/drift")).unwrap();

    let (code, json) = syhub(&["restore", archive.to_str().unwrap()], &root);
    assert_eq!(code, 0, "{json}");
    let restored = tree(&root);
    for file in &original {
        assert!(restored.contains(file), "{} not restored as it was", file.0);
    }
    let kept =
        std::fs::read_to_string(root.join("etc/syhub-ntp/config.toml.before-restore")).unwrap();
    assert!(kept.contains("stratum = 12"), "the replaced config was not kept");
}

#[test]
fn damaged_foreign_or_unsafe_archives_are_refused_and_nothing_changes() {
    let (dir, root) = prepared_root();
    let good = dir.0.join("good.tar.gz");
    assert_eq!(syhub(&["backup", good.to_str().unwrap()], &root).0, 0);
    let before = tree(&root);
    let refused = |archive: &Path, why: &str| {
        let (code, json) = syhub(&["restore", archive.to_str().unwrap()], &root);
        assert_eq!(code, 1, "{why}: {json}");
        assert_eq!(json["ok"], false);
        assert_eq!(tree(&root), before, "{why}: the tree changed");
        json["error"].as_str().unwrap().to_owned()
    };

    // Truncated to half.
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.0.join("truncated.tar.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(refused(&truncated, "truncated").contains("not a syhub-ntp backup, or damaged"));

    // Someone else's tarball.
    let foreign = dir.0.join("foreign.tar.gz");
    sh(&format!(
        "cd {} && echo hello > note.txt && tar czf {} note.txt",
        dir.0.display(),
        foreign.display()
    ));
    assert!(refused(&foreign, "foreign").contains("no manifest.json"));

    // Unpacked, altered and packed again: each change must be caught.
    let repack = |name: &str, edit: &str| -> PathBuf {
        let work = dir.0.join(name);
        std::fs::create_dir_all(&work).unwrap();
        let archive = dir.0.join(format!("{name}.tar.gz"));
        sh(&format!(
            "cd {w} && tar xzf {g} && {edit} && tar czf {a} manifest.json config.toml keys drift",
            w = work.display(),
            g = good.display(),
            a = archive.display()
        ));
        archive
    };
    // Set-id and world-writable modes in the manifest are not applied (it restores, as 0644).
    let setid = repack("setid", "sed -i 's/\"mode\": [0-9]*/\"mode\": 4095/' manifest.json");
    let (code, json) = syhub(&["restore", setid.to_str().unwrap(), "--dry-run"], &root);
    assert_eq!(code, 0, "{json}");
    assert!(!json.to_string().contains("4095"), "{json}");

    let tampered = repack("tampered", "sed -i 's/stratum = 9/stratum = 3/' config.toml");
    assert!(refused(&tampered, "tampered").contains("does not match its checksum"));

    let escaping =
        repack("escaping", "sed -i 's#/var/lib/syhub-ntp/drift#/etc/cron.d/evil#' manifest.json");
    assert!(refused(&escaping, "escaping").contains("not where the config in the backup puts it"));

    // A drift entry aimed at the config: refused by what it is, not by its name.
    let swapped = repack(
        "swapped",
        "sed -i 's#/var/lib/syhub-ntp/drift#/etc/syhub-ntp/config.toml#' manifest.json",
    );
    assert!(refused(&swapped, "swapped").contains("listed twice"));

    // A member far larger than any file of a hub's (16 MB of zeros, 16 kB packed).
    let large = repack("large", "head -c 16000000 /dev/zero > drift");
    assert!(refused(&large, "large").contains("larger than any file"));

    // A config that does not parse, with a checksum to match.
    let invalid = repack(
        "invalid",
        "old=$(sha256sum config.toml | cut -d' ' -f1) && echo 'stratum = \"high\"' >> config.toml && \
         new=$(sha256sum config.toml | cut -d' ' -f1) && sed -i \"s/$old/$new/\" manifest.json",
    );
    assert!(refused(&invalid, "invalid config").contains("(in the backup)"));

    // A symbolic link on the way out of the root.
    let outside = dir.0.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::rename(root.join("var/lib/syhub-ntp"), dir.0.join("state-moved")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("var/lib/syhub-ntp")).unwrap();
    let (code, json) = syhub(&["restore", good.to_str().unwrap()], &root);
    assert_eq!(code, 1, "{json}");
    assert!(json["error"].as_str().unwrap().contains("symbolic link"), "{json}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "written through the link");
}

#[test]
fn a_config_naming_a_file_that_is_not_a_keys_file_is_not_restored() {
    let (dir, root) = prepared_root();
    let good = dir.0.join("good.tar.gz");
    assert_eq!(syhub(&["backup", good.to_str().unwrap()], &root).0, 0);
    // A shadow-format file already on the hub, and an account database by its own name.
    let hash = "$6$Kp2xQ9v1$Zr8sT3mW6nB0cV5xL2kJ9hG4fD7sA1qP0oI8uY6tR3eW5qZ2xC4vB7nM9lK1jH3gF6dS8aP0oI2uY4tR6eW";
    put(&root, "etc/hub-users", &format!("root:{hash}:19000:0:99999:7:::\n"), 0o600);
    let before = tree(&root);
    for (name, keys_path) in [("elsewhere", "/etc/hub-users"), ("shadow", "/etc/shadow")] {
        let work = dir.0.join(name);
        std::fs::create_dir_all(&work).unwrap();
        let archive = dir.0.join(format!("{name}.tar.gz"));
        sh(&format!(
            "cd {w} && tar xzf {g} && \
             old=$(sha256sum config.toml | cut -d' ' -f1) && \
             sed -i 's#/etc/syhub-ntp/ntp.keys#{keys_path}#' config.toml manifest.json && \
             new=$(sha256sum config.toml | cut -d' ' -f1) && sed -i \"s/$old/$new/\" manifest.json && \
             tar czf {a} manifest.json config.toml keys drift",
            w = work.display(),
            g = good.display(),
            a = archive.display()
        ));
        for dry_run in [true, false] {
            let mut args = vec!["restore", archive.to_str().unwrap()];
            if dry_run {
                args.push("--dry-run");
            }
            args.extend(["--root", root.to_str().unwrap(), "--json"]);
            let (code, said) = run_said(&args);
            assert_eq!(code, Some(1), "{name}: {said}");
            assert!(
                said.contains("not an ntpd keys file")
                    || said.contains("system account database, not a keys file"),
                "{name}: {said}"
            );
            assert!(!said.contains(hash) && !said.contains("$6$"), "{name}: {said}");
            assert_eq!(tree(&root), before, "{name}: the tree changed");
        }
    }
    // Nor is such a file put into a backup.
    let config = CONFIG.replace("/etc/syhub-ntp/ntp.keys", "/etc/hub-users");
    put(&root, "etc/syhub-ntp/config.toml", &config, 0o644);
    let archive = dir.0.join("refused.tar.gz");
    let (code, said) =
        run_said(&["backup", archive.to_str().unwrap(), "--root", root.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("not an ntpd keys file") && !said.contains("$6$"), "{said}");
    assert!(!archive.exists());
}
