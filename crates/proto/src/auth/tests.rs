use super::*;
use crate::packet::Mac;
use std::net::IpAddr;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn packet() -> Vec<u8> {
    (0..48).collect()
}

#[test]
fn md5_and_sha1_digest_key_then_packet() {
    // Expected values from Python's hashlib over key || bytes 0..48.
    let md5 = SymmetricKey::new(1, KeyType::Md5, b"secret").unwrap();
    assert_eq!(md5.digest(&packet())[..16], hex("a03f32571504b4138d76d44a54fe953c")[..]);
    let sha1 =
        SymmetricKey::new(2, KeyType::Sha1, &hex("00112233445566778899aabbccddeeff00112233"))
            .unwrap();
    assert_eq!(sha1.digest(&packet())[..], hex("2c448b8ad92c6809cdd79dc3a54ea8efd14251de")[..]);
}

#[test]
fn aes_cmac_matches_rfc_4493() {
    let key =
        SymmetricKey::new(3, KeyType::AesCmac, &hex("2b7e151628aed2a6abf7158809cf4f3c")).unwrap();
    assert_eq!(key.digest(&[])[..16], hex("bb1d6929e95937287fa37d129b756746")[..]);
    let message = hex("6bc1bee22e409f96e93d7e117393172a");
    assert_eq!(key.digest(&message)[..16], hex("070a16b46b4d4144f79bdd9dd04a287c")[..]);
}

#[test]
fn a_signed_packet_verifies_and_any_change_breaks_it() {
    for kind in [KeyType::Md5, KeyType::Sha1, KeyType::AesCmac] {
        let key = SymmetricKey::new(7, kind, &[0x5a; 16]).unwrap();
        let mut signed = packet();
        signed.resize(48 + key.mac_len(), 0);
        key.sign(&mut signed);
        let mac = Mac::decode(&signed[48..]).unwrap();
        assert_eq!(mac.key_id, 7);
        assert!(key.verify(&signed[..48], &mac), "{kind:?}");
        let mut altered = signed.clone();
        altered[40] ^= 1;
        assert!(!key.verify(&altered[..48], &mac), "{kind:?}: altered packet");
        let other = SymmetricKey::new(8, kind, &[0x5a; 16]).unwrap();
        assert!(!other.verify(&signed[..48], &mac), "{kind:?}: another key id");
        let short = Mac { key_id: 7, digest: &mac.digest[..mac.digest.len() - 4] };
        assert!(!key.verify(&signed[..48], &short), "{kind:?}: truncated digest");
    }
}

#[test]
fn keys_files_of_ntpd_ntpsec_and_chrony_are_read() {
    let text = "\
# ntp-keygen -M output
1 MD5 Wk<t6>PqR+eX3c.Dz]|2   # ASCII, 20 characters
2 SHA1 6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9
3 M plain
4 AES128CMAC 000102030405060708090a0b0c0d0e0f
5 aes HEX:000102030405060708090a0b0c0d0e0f
6 SHA1 ASCII:a-long-ascii-key-of-more-than-20
7 AES128 000102030405060708090A0B0C0D0E0F 10.0.0.0/8,192.168.1.7

";
    let store = KeyStore::parse(text).unwrap();
    assert_eq!(store.len(), 7);
    assert_eq!(store.key(1).unwrap().secret(), b"Wk<t6>PqR+eX3c.Dz]|2");
    assert_eq!(
        store.key(2).unwrap().secret(),
        &hex("6f2c1d0e9a8b7c6d5e4f30211203f4e5d6c7b8a9")[..]
    );
    assert_eq!(store.key(3).unwrap().kind, KeyType::Md5);
    assert_eq!(store.key(4).unwrap().kind, KeyType::AesCmac);
    assert_eq!(store.key(5).unwrap().secret(), store.key(4).unwrap().secret());
    assert_eq!(store.key(6).unwrap().secret(), b"a-long-ascii-key-of-more-than-20");
    let lan: IpAddr = "10.1.2.3".parse().unwrap();
    let outsider: IpAddr = "192.168.1.8".parse().unwrap();
    assert!(matches!(store.lookup(7, lan), KeyLookup::Usable(key) if key.id == 7));
    assert_eq!(store.lookup(7, outsider), KeyLookup::Unknown);
    assert!(matches!(store.lookup(1, outsider), KeyLookup::Usable(_)));
    assert_eq!(store.lookup(99, lan), KeyLookup::Unknown);
}

#[test]
fn a_bad_line_refuses_the_file_and_names_line_and_column() {
    let cases = [
        ("1 MD5 ok\n2 SHA1\n", (2, 1), "2 field(s)"),
        ("0 MD5 zero\n", (1, 1), "field 1, the key id, is not a number from 1 to 65534"),
        ("65535 MD5 big\n", (1, 1), "from 1 to 65534"),
        ("x MD5 key\n", (1, 1), "is not a number"),
        ("\n\n1 DES key\n", (3, 3), "field 2, the key type, is not one this server knows"),
        ("1 SHA1 0123456789abcdef0123456789abcdef0123456z\n", (1, 8), "not a hex digit"),
        ("1 SHA1 0123456789abcdef0123456789abcdef0123456\n", (1, 8), "odd number of hex digits"),
        ("1 AES 0011\n", (1, 7), "must be 16 bytes"),
        ("1 MD5 a\n  1 MD5 b\n", (2, 3), "key id 1 appears twice"),
        ("1 MD5 key 10.0.0.0/99\n", (1, 11), "prefix length beyond"),
        ("1 MD5 key 10.0.0.1/8\n", (1, 11), "host bits"),
        ("1 MD5 key 10.0.0.1 10.0.0.2\n", (1, 20), "separate the addresses with commas"),
    ];
    for (text, (line, column), message) in cases {
        let error = KeyStore::parse(text).unwrap_err();
        assert_eq!((error.line, error.column), (line, column), "{text:?}: {error}");
        assert!(error.to_string().contains(message), "{text:?}: {error}");
    }
}

#[test]
fn errors_never_quote_the_key_or_anything_else_on_the_line() {
    // Each line is wrong in one field; the secret-looking text must not appear in the message.
    let secret = "Sup3rS3cretKeyMaterial0123456789";
    let lines = [
        format!("1 MD5 {secret}"),
        format!("1 MD5 HEX:{secret}"),
        format!("{secret} MD5 abc"),
        format!("1 {secret} abc"),
        format!("1 MD5 abc {secret}"),
        format!("1 MD5 abc 10.0.0.0/8 {secret}"),
        format!("1 {secret}"),
        format!("1 AES ASCII:{secret}"),
        format!("99999 MD5 {secret}"),
        format!("1 MD5 my secret {secret}"),
    ];
    for line in &lines {
        let error = KeyStore::parse(&format!("# keys\n{line}\n")).unwrap_err();
        let message = error.to_string();
        assert_eq!(error.line, 2, "{message}");
        for fragment in [secret, "Sup3r", "0123456789"] {
            assert!(!message.contains(fragment), "{line:?} gave {message:?}");
        }
    }
}

#[test]
fn a_passwd_or_shadow_file_is_named_as_not_a_keys_file_without_quoting_it() {
    let hash = "$y$j9T$Qx0cS7zN0eWk1rQ9d8YpT/$w1Hq3pYbXo2kZc9m6r5tU7vL8aN4sD0fG2hJ1kE3qW7";
    let files = [
        format!("root:{hash}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"),
        "root:x:0:0:root:/root:/bin/bash\njohn:x:1000:1000:John Smith,,,:/home/john:/bin/bash\n"
            .to_owned(),
        format!("shadow:x:42:\nsudo:{hash}::john\n"),
    ];
    for text in &files {
        let error = KeyStore::parse(text).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("not an ntpd keys file"), "{message}");
        assert_eq!((error.line, error.column), (1, 1), "{message}");
        for fragment in [hash, "$y$", "root", "john", "/bin/bash"] {
            assert!(!message.contains(fragment), "{fragment:?} in {message:?}");
        }
    }
}

#[test]
fn trusted_keys_narrow_the_store() {
    let mut store = KeyStore::parse("1 MD5 a\n2 MD5 b\n3 MD5 c\n").unwrap();
    assert_eq!(store.trust_only(&[4]), Err(4));
    store.trust_only(&[1, 3]).unwrap();
    assert_eq!(store.keys().map(|k| k.id).collect::<Vec<_>>(), [1, 3]);
}

#[test]
fn debug_output_hides_the_secret() {
    let key = SymmetricKey::new(1, KeyType::Md5, b"hunter2").unwrap();
    assert!(!format!("{key:?}").contains("hunter2"));
}
