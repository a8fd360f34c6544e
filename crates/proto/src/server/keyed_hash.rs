//! SipHash of one client address under a secret key, written out for a 16-byte message: what the
//! client log hashes for every request. The standard library's hasher reaches the same function
//! through a byte-buffering `Hasher`, at several times the instructions.

/// SipHash-c-d (c compression rounds per word, d finalisation rounds) of the 16-byte message
/// `low` ‖ `high` (little-endian words, as the byte string `low.to_le_bytes() ‖ high.to_le_bytes()`).
fn siphash<const C: usize, const D: usize>(k0: u64, k1: u64, low: u64, high: u64) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let round = |v: &mut [u64; 4]| {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    };
    // The two message words, then the final word holding the length (16) in its top byte.
    for word in [low, high, 16 << 56] {
        v[3] ^= word;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= word;
    }
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// SipHash-1-3 (the standard library's choice for hash tables) of a 128-bit value.
pub(crate) fn siphash13(key: (u64, u64), value: u128) -> u64 {
    siphash::<1, 3>(key.0, key.1, value as u64, (value >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hasher;

    #[test]
    #[allow(deprecated)] // SipHasher (2-4) is the standard library's reference to compare with.
    fn the_written_out_siphash_matches_the_standard_librarys() {
        for (k0, k1, value) in [
            (0u64, 0u64, 0u128),
            (
                0x0706_0504_0302_0100,
                0x0f0e_0d0c_0b0a_0908,
                0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100,
            ),
            (42, 7, u128::MAX),
            (u64::MAX, 1, 0x0000_0000_0000_0000_0000_ffff_c0a8_0101),
        ] {
            let mut reference = std::hash::SipHasher::new_with_keys(k0, k1);
            reference.write(&value.to_le_bytes());
            let ours = siphash::<2, 4>(k0, k1, value as u64, (value >> 64) as u64);
            assert_eq!(ours, reference.finish(), "keys {k0:x} {k1:x}, value {value:x}");
        }
    }

    #[test]
    fn the_key_changes_every_hash() {
        let value = 0xffff_c0a8_0101u128;
        assert_ne!(siphash13((1, 2), value), siphash13((1, 3), value));
        assert_ne!(siphash13((1, 2), value), siphash13((2, 2), value));
        assert_ne!(siphash13((1, 2), value), siphash13((1, 2), value + 1));
    }
}
