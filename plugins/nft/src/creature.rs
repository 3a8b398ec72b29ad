//! The creature and how it is minted and grows: plain Rust, no host calls (the plugin passes the
//! caller, time and seed in), so the bench build of the canister compiles this same file natively
//! (benchmark P8; it includes the file by path: this crate stays a `cdylib` alone, since adding
//! an `rlib` crate type makes the module 10 KiB larger).

use serde::Serialize;

/// A creature: what `metadata` returns as JSON.
#[derive(Serialize, Clone)]
pub struct Creature {
    /// Its name, from the seed.
    pub name: String,
    /// The minter's principal, lowercase hex.
    pub owner: String,
    /// When it was minted, IC time in nanoseconds.
    pub born_ns: u64,
    /// When its owner last fed it or played with it.
    pub last_interaction_ns: u64,
    /// Level: one more per `10 * (level + 1)` xp.
    pub level: u32,
    /// Experience towards the next level.
    pub xp: u32,
    /// Hunger: feeding lowers it, playing raises it.
    pub hunger: u32,
    /// `happy`, `content` or `grumpy`, from the hunger.
    pub mood: &'static str,
    /// `#rrggbb`, from the seed.
    pub colour: String,
    /// One of the patterns, from the seed.
    pub pattern: &'static str,
}

const PATTERNS: [&str; 4] = ["spots", "stripes", "stars", "plain"];
const NAMES: [&str; 6] = ["Pixel", "Nibble", "Quark", "Motes", "Byte", "Glint"];

impl Creature {
    /// A new creature owned by `owner` (hex), born at `now_ns`, its traits from `seed`.
    pub fn mint(seed: &[u8; 32], owner: String, now_ns: u64) -> Creature {
        Creature {
            name: NAMES[seed[0] as usize % NAMES.len()].to_owned(),
            owner,
            born_ns: now_ns,
            last_interaction_ns: now_ns,
            level: 1,
            xp: 0,
            hunger: 5,
            mood: "content",
            colour: format!("#{:02x}{:02x}{:02x}", seed[1], seed[2], seed[3]),
            pattern: PATTERNS[seed[4] as usize % PATTERNS.len()],
        }
    }

    /// After an interaction at `now_ns`: the mood follows the hunger, xp turns into levels.
    pub fn update_mood(&mut self, now_ns: u64) {
        self.mood = match self.hunger {
            0..=2 => "happy",
            3..=6 => "content",
            _ => "grumpy",
        };
        while self.xp >= 10 * (self.level + 1) {
            self.xp -= 10 * (self.level + 1);
            self.level += 1;
        }
        self.last_interaction_ns = now_ns;
    }
}
