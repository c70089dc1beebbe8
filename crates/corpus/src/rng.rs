//! A small, portable, seeded PRNG (xoshiro256** seeded through SplitMix64).
//! Written out here rather than taken from `rand` so that a seed means the same
//! corpus on every platform and every dependency version, for ever.

/// Folds `s` into the hash `h` (FNV-1a steps): a stable key for [`Rng::derive`] from
/// names, so the same names always give the same stream.
pub(crate) fn mix(h: u64, s: &str) -> u64 {
    s.bytes()
        .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Deterministic random stream. Not cryptographic.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) const UPPER_B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const HEX: &[u8] = b"0123456789abcdef";
pub(crate) const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Rng {
    /// A stream for `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let mut x = seed;
        let s = [
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
        ];
        Rng { s }
    }

    /// An independent stream for (`seed`, `stream`): the same pair always gives the
    /// same stream, whatever else was drawn elsewhere.
    pub(crate) fn derive(seed: u64, stream: u64) -> Self {
        let mut x = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mixed = splitmix64(&mut x) ^ stream;
        Rng::new(mixed)
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`; the multiply-shift bias is below 2^-40 for our `n`).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform index into a collection of `n` items.
    #[inline]
    pub(crate) fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
    }

    /// One element of a non-empty slice.
    #[inline]
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// One string of a non-empty list.
    #[inline]
    pub(crate) fn pick_str<'a, S: AsRef<str>>(&mut self, items: &'a [S]) -> &'a str {
        items[self.index(items.len())].as_ref()
    }

    /// An index drawn with the given relative weights.
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w as u64 {
                return i;
            }
            x -= w as u64;
        }
        weights.len() - 1
    }

    /// Appends `n` characters drawn from `charset` (ASCII).
    pub(crate) fn push_chars(&mut self, out: &mut String, n: usize, charset: &[u8]) {
        for _ in 0..n {
            out.push(charset[self.index(charset.len())] as char);
        }
    }

    /// `n` characters drawn from `charset`.
    pub(crate) fn chars(&mut self, n: usize, charset: &[u8]) -> String {
        let mut s = String::with_capacity(n);
        self.push_chars(&mut s, n, charset);
        s
    }

    /// Appends a random version-4 UUID in lowercase hex.
    pub(crate) fn push_uuid(&mut self, out: &mut String) {
        let a = self.next_u64();
        let b = self.next_u64();
        let bytes: [u8; 16] = {
            let mut x = [0u8; 16];
            x[..8].copy_from_slice(&a.to_le_bytes());
            x[8..].copy_from_slice(&b.to_le_bytes());
            x[6] = (x[6] & 0x0f) | 0x40;
            x[8] = (x[8] & 0x3f) | 0x80;
            x
        };
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(HEX[(byte >> 4) as usize] as char);
            out.push(HEX[(byte & 0x0f) as usize] as char);
        }
    }

    /// A random version-4 UUID.
    pub(crate) fn uuid(&mut self) -> String {
        let mut s = String::with_capacity(36);
        self.push_uuid(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::derive(7, 1).next_u64(), Rng::derive(7, 2).next_u64());
    }

    #[test]
    fn uuid_shape() {
        let u = Rng::new(3).uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(u.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            assert_ne!(r.weighted(&[5, 0, 5]), 1);
        }
    }
}
