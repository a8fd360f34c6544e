//! Any bytes as a backup to restore, through every check a restore makes before it writes:
//! `read_archive` (the archive, its manifest, sums and paths) and then `plan_restore` (the config
//! and each file checked as what it is, and where the config puts it). Nothing panics, and what
//! passes is what a restore may write: absolute paths without `..`, each listed once with its
//! sum, under syhub-ntp's directories, with modes that are never set-id or world-writable. Pure:
//! nothing is read from or written to the file system.
//!
//! The first byte chooses the form of the rest: 0, a whole archive as it would be on disk
//! (tar.gz); 1, a tar the target compresses; 2 and above, a manifest and the members' contents,
//! separated by NUL bytes, that the target packs (members named after the manifest's entries, and
//! with bit 2 of the first byte, the manifest's sums made right, so the deeper checks are reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::io::Write;
use syhub_ntp_ops::backup::{parse_manifest, plan_restore, read_archive};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A tar.gz of `members`, names and contents as given.
fn pack(members: &[(String, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        // Names tar cannot hold (too long, NUL) are left out: the archive is what it is.
        let _ = tar.append_data(&mut header, name, *bytes);
    }
    gzip(&tar.into_inner().unwrap())
}

/// The archive for a manifest and member contents, named after the manifest's entries.
fn archive_of(json: &[u8], contents: &[&[u8]], fix_sums: bool) -> Vec<u8> {
    let mut manifest = json.to_vec();
    let mut names = Vec::new();
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(json) {
        if let Some(files) = value.get_mut("files").and_then(|f| f.as_array_mut()) {
            for (index, file) in files.iter_mut().enumerate() {
                names.push(file.get("name").and_then(|n| n.as_str()).map(str::to_owned));
                if let (true, Some(data), Some(entry)) =
                    (fix_sums, contents.get(index), file.as_object_mut())
                {
                    entry.insert("sha256".into(), sha256_hex(data).into());
                }
            }
        }
        if fix_sums {
            manifest = serde_json::to_vec(&value).unwrap();
        }
    }
    let mut members = vec![("manifest.json".to_owned(), manifest.as_slice())];
    for (index, data) in contents.iter().enumerate() {
        let name = names.get(index).cloned().flatten().unwrap_or_else(|| format!("m{index}"));
        members.push((name, data));
    }
    pack(&members)
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else { return };
    let archive = match form {
        0 => rest.to_vec(),
        1 => gzip(rest),
        _ => {
            let mut parts = rest.split(|&b| b == 0);
            let json = parts.next().unwrap_or_default();
            // The manifest parser alone, on the bytes as given.
            let _ = parse_manifest(json);
            let contents: Vec<&[u8]> = parts.take(12).collect();
            archive_of(json, &contents, form & 4 != 0)
        }
    };
    let Ok((manifest, files)) = read_archive(&archive) else { return };
    assert_eq!(files.len(), manifest.files.len());
    for (index, (entry, bytes)) in files.iter().enumerate() {
        assert_eq!(entry.sha256, sha256_hex(bytes), "{}", entry.name);
        assert!(entry.path.starts_with('/'), "{}", entry.path);
        assert!(!entry.path.split('/').any(|part| part == ".."), "{}", entry.path);
        for (other, _) in &files[..index] {
            assert!(other.name != entry.name && other.path != entry.path, "{} twice", entry.name);
        }
    }
    let Ok(plan) = plan_restore(&files) else { return };
    assert_eq!(plan.writes.len() + plan.left_alone.len(), files.len());
    for (entry, bytes, access) in &plan.writes {
        assert!(
            ["/etc/syhub-ntp/", "/var/lib/syhub-ntp/"].iter().any(|d| entry.path.starts_with(d)),
            "{} would be written",
            entry.path
        );
        assert!(std::str::from_utf8(bytes).is_ok(), "{} is not text", entry.name);
        for with_group in [false, true] {
            let mode = access.mode(with_group);
            assert_eq!(mode & 0o7002, 0, "{} would get mode {mode:o}", entry.name);
        }
    }
    let config = plan.writes.iter().find(|(entry, _, _)| entry.name == "config.toml");
    let config = config.expect("a plan always writes the config");
    assert!(config.0.path.starts_with("/etc/syhub-ntp/") && config.0.path.ends_with(".toml"));
});
