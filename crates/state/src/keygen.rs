//! New symmetric keys, as `ntp-keygen -M` makes them: random secrets from the kernel, written as
//! an ntpd keys file, with the lines each kind of client needs to use them.

use syhub_ntp_proto::auth::{KeyType, SymmetricKey};

/// Characters of a generated MD5 key: printable ASCII without space and `#` (a comment).
const ASCII_KEY_CHARS: &[u8] =
    b"!\"$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// `count` new keys of `kind` with ids 1 to `count`: MD5 keys are 20 random printable characters
/// (as `ntp-keygen` writes them), SHA-1 keys 20 random bytes, AES-128-CMAC keys 16.
pub fn generate(kind: KeyType, count: u32) -> Result<Vec<SymmetricKey>, String> {
    (1..=count)
        .map(|id| {
            let secret = match kind {
                KeyType::Md5 => {
                    let mut raw = [0u8; 20];
                    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
                    raw.map(|b| ASCII_KEY_CHARS[usize::from(b) % ASCII_KEY_CHARS.len()]).to_vec()
                }
                KeyType::Sha1 | KeyType::AesCmac => {
                    let mut raw = vec![0u8; if kind == KeyType::Sha1 { 20 } else { 16 }];
                    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
                    raw
                }
            };
            SymmetricKey::new(id, kind, &secret)
        })
        .collect()
}

/// How the secret is written in an ntpd keys file: ASCII for MD5 keys, hex otherwise.
pub fn ntpd_secret(key: &SymmetricKey) -> String {
    match key.kind {
        KeyType::Md5 => String::from_utf8_lossy(key.secret()).into_owned(),
        _ => hex(key.secret()),
    }
}

/// The key's line in an ntpd or NTPsec keys file (which syhub-ntp reads too).
pub fn ntpd_line(key: &SymmetricKey) -> String {
    format!("{} {} {}", key.id, key.kind.name(), ntpd_secret(key))
}

/// The key's line in chrony's keyfile, whose hex keys carry a `HEX:` prefix.
pub fn chrony_line(key: &SymmetricKey) -> String {
    format!("{} {} HEX:{}", key.id, key.kind.chrony_name(), hex(key.secret()))
}

/// A whole keys file.
pub fn keys_file(keys: &[SymmetricKey], comment: &str) -> String {
    let mut text = format!("# {comment}\n# keyid type key\n");
    for key in keys {
        text.push_str(&ntpd_line(key));
        text.push('\n');
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use syhub_ntp_proto::auth::KeyStore;

    #[test]
    fn generated_files_read_back_as_the_same_keys() {
        for kind in [KeyType::Md5, KeyType::Sha1, KeyType::AesCmac] {
            let keys = generate(kind, 10).unwrap();
            let store = KeyStore::parse(&keys_file(&keys, "test")).unwrap();
            assert_eq!(store.keys().copied().collect::<Vec<_>>(), keys, "{kind:?}");
            // chrony's spelling reads back too.
            let chrony: String = keys.iter().map(|k| chrony_line(k) + "\n").collect();
            let store = KeyStore::parse(&chrony).unwrap();
            assert_eq!(store.keys().copied().collect::<Vec<_>>(), keys, "{kind:?} (chrony)");
        }
    }

    #[test]
    fn keys_differ() {
        let keys = generate(KeyType::AesCmac, 2).unwrap();
        assert_ne!(keys[0].secret(), keys[1].secret());
    }
}
