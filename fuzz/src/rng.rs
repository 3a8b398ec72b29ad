//! The one source of randomness of a case: a small PRNG (SplitMix64) seeded from the target's
//! name, the run's seed and the case's index, so that `(target, seed, case)` replays a case.

/// A deterministic random number generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of case `case` of `target` in the run seeded `seed`.
    pub fn for_case(target: &str, seed: u64, case: u64) -> Self {
        // FNV-1a of the target's name, so that targets draw different streams.
        let name = target.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut rng = Self(name ^ seed.rotate_left(17) ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Mix the state a few rounds so that neighbouring cases diverge at once.
        for _ in 0..4 {
            rng.next_u64();
        }
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// An index into a collection of `len` items (0 when empty).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Between `lo` and `hi` random bytes.
    pub fn bytes_in(&mut self, lo: u64, hi: u64) -> Vec<u8> {
        let len = self.range(lo, hi) as usize;
        self.bytes(len)
    }

    /// A value that is often at an edge: 0, 1, a power of two (±1), the maximum, or anything.
    pub fn edgy_u64(&mut self) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => 1,
            2 => 1u64 << self.below(64),
            3 => (1u64 << self.below(64)).wrapping_sub(1),
            4 => u64::MAX - self.below(3),
            _ => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_case_replays_and_cases_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::for_case("engine", 7, 3);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::for_case("engine", 7, 3);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::for_case("engine", 7, 4).next_u64(),
            Rng::for_case("engine", 7, 3).next_u64()
        );
        assert_ne!(
            Rng::for_case("store", 7, 3).next_u64(),
            Rng::for_case("engine", 7, 3).next_u64()
        );
    }
}
