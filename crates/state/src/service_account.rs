//! The service's account (`syhub-ntp`): its ids under a root, the files it must read written so
//! it can (0640, group `syhub-ntp`), and whether it can read a file as things stand.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use syhub_ntp_config::Config;

/// The account the service runs as (the unit's `User=`), and its group.
pub const ACCOUNT: &str = "syhub-ntp";

/// The service account's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAccount {
    pub uid: u32,
    pub gid: u32,
}

impl ServiceAccount {
    /// The account in the account files under `root` (`/` for this system); `None` when it does
    /// not exist (a development machine, a daemon run by hand as root).
    pub fn under(root: &Path) -> Option<Self> {
        let uid = id_in(&root.join("etc/passwd"), ACCOUNT)?;
        let gid = id_in(&root.join("etc/group"), ACCOUNT)?;
        Some(Self { uid, gid })
    }

    /// Why this account cannot read `path`, judged by the permission bits of the file and of
    /// every directory above it (ACLs are not read); `None` when it can, or when `path` does not
    /// exist (that is reported where the file is loaded).
    pub fn cannot_read(&self, path: &Path) -> Option<String> {
        let file = std::fs::canonicalize(path).ok()?;
        let metadata = std::fs::metadata(&file).ok()?;
        let blocked = file
            .ancestors()
            .skip(1)
            .find(|dir| std::fs::metadata(dir).is_ok_and(|m| !self.allowed(&m, 0o1)));
        let (what, metadata, fix) = match blocked {
            Some(dir) => {
                let m = std::fs::metadata(dir).ok()?;
                (dir.to_owned(), m, format!("chmod o+x {}", dir.display()))
            }
            None if self.allowed(&metadata, 0o4) => return None,
            None => {
                let fix = format!("chgrp {ACCOUNT} {0} && chmod 0640 {0}", file.display());
                (file, metadata, fix)
            }
        };
        Some(format!(
            "the service's account {ACCOUNT} cannot read {}: {} is mode {:04o}, owner {}, group {}; \
             run `{fix}`",
            path.display(),
            what.display(),
            metadata.mode() & 0o7777,
            name_in(Path::new("/etc/passwd"), metadata.uid()),
            name_in(Path::new("/etc/group"), metadata.gid()),
        ))
    }

    /// Whether the bits of `metadata` give this account `bit` (4 read, 1 search).
    fn allowed(&self, metadata: &std::fs::Metadata, bit: u32) -> bool {
        let shift = if metadata.uid() == self.uid {
            6
        } else if metadata.gid() == self.gid {
            3
        } else {
            0
        };
        metadata.mode() & (bit << shift) != 0
    }
}

/// The files the config names that the daemon reads, each with the name backups give it.
pub fn files_read(config: &Config) -> Vec<(&'static str, &Path)> {
    let named = [
        ("keys", config.auth.keys_file.as_deref()),
        ("drift", config.clock.drift_file.as_deref()),
        ("nts-certificate", config.nts.certificate.as_deref()),
        ("nts-key", config.nts.private_key.as_deref()),
        ("nts-cookie-keys", Some(config.nts.keys_file.as_path())),
        ("mqtt-password", config.mqtt.password_file.as_deref()),
        ("leap-seconds", config.clock.leap_file.as_deref()),
        ("leases", config.clients.leases_file.as_deref()),
    ];
    named.into_iter().filter_map(|(name, path)| Some((name, path?))).collect()
}

/// Writes a file the service reads but must not change (keys, an NTS private key, a password)
/// whole: owned by the caller, mode 0640 and group `syhub-ntp` when that account exists under
/// `root`, else 0600. Returns the mode written.
pub fn write_secret(path: &Path, contents: &[u8], root: &Path) -> io::Result<u32> {
    let account = ServiceAccount::under(root);
    let mode = if account.is_some() { 0o640 } else { 0o600 };
    crate::atomic_file::write_with_group(path, contents, mode, account.map(|a| a.gid))?;
    Ok(mode)
}

/// `path` as an operator gave it, for a command that writes under `root`: an absolute path is
/// taken inside `root`, a relative one from the current directory.
pub fn under_root(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(inside) => root.join(inside),
        Err(_) => path.to_owned(),
    }
}

/// The numeric id of `name` in an account file (passwd or group).
pub fn id_in(file: &Path, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name)).then(|| fields.nth(1)?.parse().ok()).flatten()
    })
}

/// The name of numeric `id` in an account file (passwd or group).
pub fn name_of(file: &Path, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse() == Ok(id)).then(|| name.to_owned())
    })
}

/// The name of numeric `id` in an account file, or the number when it has none there.
fn name_in(file: &Path, id: u32) -> String {
    name_of(file, id).unwrap_or_else(|| id.to_string())
}

/// Whether the account `uid` is listed as a member of group `gid` in the account files under
/// `root` (supplementary membership; a primary group is the account's own gid).
pub fn listed_in_group(root: &Path, uid: u32, gid: u32) -> bool {
    let Some(name) = name_of(&root.join("etc/passwd"), uid) else { return false };
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    group.lines().any(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        fields.get(2).and_then(|id| id.parse().ok()) == Some(gid)
            && fields.get(3).is_some_and(|members| members.split(',').any(|m| m == name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("syhub-account-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        dir
    }

    #[test]
    fn the_account_is_read_from_the_roots_account_files() {
        let root = scratch("ids");
        assert_eq!(ServiceAccount::under(&root), None);
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nsyhub-ntp:x:990:985::/:/usr/sbin/nologin\n",
        )
        .unwrap();
        assert_eq!(ServiceAccount::under(&root), None, "no group yet");
        std::fs::write(root.join("etc/group"), "root:x:0:\nsyhub-ntp:x:985:\n").unwrap();
        assert_eq!(ServiceAccount::under(&root), Some(ServiceAccount { uid: 990, gid: 985 }));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn supplementary_members_are_read_from_the_group_file() {
        let root = scratch("members");
        std::fs::write(
            root.join("etc/passwd"),
            "ann:x:1000:1000::/:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "syhub-ntp:x:985:bob,carl\n").unwrap();
        assert!(listed_in_group(&root, 1001, 985));
        assert!(!listed_in_group(&root, 1000, 985));
        assert!(!listed_in_group(&root, 1001, 986));
        assert_eq!(name_of(&root.join("etc/passwd"), 1000).as_deref(), Some("ann"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn readability_follows_owner_group_and_other_bits_and_the_directories_above() {
        let root = scratch("read");
        let file = root.join("etc/secret");
        std::fs::write(&file, "x").unwrap();
        let me = std::fs::metadata(&file).unwrap();
        let set = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        // Not the file's owner nor in its group: only "other" bits count.
        let stranger = ServiceAccount { uid: me.uid() + 1000, gid: me.gid() + 1000 };
        set(&file, 0o640);
        let why = stranger.cannot_read(&file).expect("0640 is not readable by others");
        assert!(why.contains("mode 0640") && why.contains("chmod 0640"), "{why}");
        set(&file, 0o644);
        assert_eq!(stranger.cannot_read(&file), None);
        // In the file's group: the group bits count.
        let member = ServiceAccount { uid: me.uid() + 1000, gid: me.gid() };
        set(&file, 0o640);
        assert_eq!(member.cannot_read(&file), None);
        set(&file, 0o600);
        assert!(member.cannot_read(&file).is_some());
        // A directory above that it cannot search hides the file.
        set(&file, 0o644);
        set(&root.join("etc"), 0o700);
        let why = stranger.cannot_read(&file).expect("a closed directory");
        assert!(why.contains("chmod o+x"), "{why}");
        set(&root.join("etc"), 0o755);
        // A missing file is not this check's business.
        assert_eq!(stranger.cannot_read(&root.join("etc/none")), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_secret_is_0640_in_the_services_group_when_the_account_exists_else_0600() {
        let root = scratch("secret");
        let path = root.join("etc/keys");
        assert_eq!(write_secret(&path, b"1 AES128CMAC 00\n", &root).unwrap(), 0o600);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        // The caller's own group stands in for the service's: any process may chown a file it
        // owns to one of its own groups.
        let gid = std::fs::metadata(&root).unwrap().gid();
        std::fs::write(root.join("etc/passwd"), "syhub-ntp:x:990:990::/:/bin/false\n").unwrap();
        std::fs::write(root.join("etc/group"), format!("syhub-ntp:x:{gid}:\n")).unwrap();
        assert_eq!(write_secret(&path, b"1 AES128CMAC 01\n", &root).unwrap(), 0o640);
        let written = std::fs::metadata(&path).unwrap();
        assert_eq!((written.mode() & 0o7777, written.gid()), (0o640, gid));
        assert_eq!(std::fs::read(&path).unwrap(), b"1 AES128CMAC 01\n");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_absolute_path_goes_under_the_root_and_a_relative_one_stays_relative() {
        let root = Path::new("/tmp/scratch");
        assert_eq!(
            under_root(root, Path::new("/etc/x.keys")),
            Path::new("/tmp/scratch/etc/x.keys")
        );
        assert_eq!(under_root(root, Path::new("keys/ntp.keys")), Path::new("keys/ntp.keys"));
        assert_eq!(under_root(root, Path::new("./x.keys")), Path::new("./x.keys"));
    }
}
