//! A programmable NFT: a creature whose behaviour is code. `mint` once (the caller becomes its
//! owner; traits come from the per-call seed), then `feed` and `play` make it grow; `metadata`
//! returns JSON and `image` an SVG. State lives in the plugin's own memory and survives calls and
//! canister upgrades; only the owner may interact.

mod creature;

use std::sync::Mutex;

use extism_pdk::*;
use ic_plugin_kit::{caller, hex, seed, time_ns};

use crate::creature::Creature;

static CREATURE: Mutex<Option<Creature>> = Mutex::new(None);

fn with_creature<T>(f: impl FnOnce(&mut Creature) -> Result<T, Error>) -> Result<T, Error> {
    let mut guard = CREATURE.lock().map_err(|_| Error::msg("poisoned"))?;
    let creature = guard
        .as_mut()
        .ok_or_else(|| Error::msg("no creature yet: call `mint` first"))?;
    f(creature)
}

fn owned_by_caller(creature: &Creature) -> Result<(), Error> {
    if creature.owner == hex(&caller()) {
        Ok(())
    } else {
        Err(Error::msg("only the owner may interact with this creature"))
    }
}

/// Creates the creature; the caller becomes its owner.
#[plugin_fn]
pub fn mint() -> FnResult<String> {
    let mut guard = CREATURE.lock().map_err(|_| Error::msg("poisoned"))?;
    if guard.is_some() {
        return Err(Error::msg("already minted").into());
    }
    let creature = Creature::mint(&seed(), hex(&caller()), time_ns());
    let json = serde_json::to_string(&creature)?;
    *guard = Some(creature);
    Ok(json)
}

/// Feeds it: less hunger, a little xp.
#[plugin_fn]
pub fn feed() -> FnResult<String> {
    Ok(with_creature(|c| {
        owned_by_caller(c)?;
        c.hunger = c.hunger.saturating_sub(3);
        c.xp += 2;
        c.update_mood(time_ns());
        Ok(format!("{} munches happily (hunger {})", c.name, c.hunger))
    })?)
}

/// Plays with it: more xp, more hunger.
#[plugin_fn]
pub fn play() -> FnResult<String> {
    Ok(with_creature(|c| {
        owned_by_caller(c)?;
        c.hunger += 2;
        c.xp += 7;
        c.update_mood(time_ns());
        Ok(format!("{} plays (level {}, xp {})", c.name, c.level, c.xp))
    })?)
}

/// The creature's metadata as JSON.
#[plugin_fn]
pub fn metadata() -> FnResult<String> {
    Ok(with_creature(|c| Ok(serde_json::to_string(c)?))?)
}

/// The creature as an SVG image: it grows with its level.
#[plugin_fn]
pub fn image() -> FnResult<String> {
    Ok(with_creature(|c| {
        let r = 20 + 5 * c.level.min(12);
        let eyes = if c.mood == "grumpy" { "–" } else { "•" };
        Ok(format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><circle cx="100" cy="100" r="{r}" fill="{}"/><text x="100" y="105" text-anchor="middle" font-size="20">{eyes} {eyes}</text><text x="100" y="190" text-anchor="middle" font-size="14">{} · {} · L{}</text></svg>"#,
            c.colour, c.name, c.pattern, c.level
        ))
    })?)
}
