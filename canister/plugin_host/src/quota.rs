//! Instruction quotas: what callers who are not admins may make the canister spend on `invoke`,
//! per fixed window of time, per caller and per plugin.
//!
//! Kept on the heap: the counts are accounting for the current window, not state a user owns,
//! so a canister upgrade starts every window afresh. The caller map forgets windows that have
//! ended once it holds [`MAX_TRACKED`] callers (principals cost nothing to make).

use std::collections::BTreeMap;

use candid::Principal;
use plugin_host_api::{QuotaExceeded, QuotaScope, QuotaUsage, Quotas};

/// Callers tracked before ended windows are dropped.
const MAX_TRACKED: usize = 10_000;

/// Use in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Window {
    /// Which window (time / window length).
    index: u64,
    /// Instructions used in it.
    used: u64,
}

/// The quotas' counts.
#[derive(Default)]
pub struct QuotaBook {
    callers: BTreeMap<Principal, Window>,
    plugins: BTreeMap<String, Window>,
}

/// What a call may still spend under the tighter of its two quotas, checked before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// Instructions left.
    pub left: u64,
    /// Whose quota is the tighter.
    pub scope: QuotaScope,
    /// That quota per window.
    pub limit: u64,
    /// When the window ends (ns since the epoch).
    pub window_ends_ns: u64,
}

impl Allowance {
    /// The error for a call that used the rest of it, `used` being its instructions.
    pub fn exceeded(&self, used: u64, now_ns: u64) -> QuotaExceeded {
        QuotaExceeded {
            scope: self.scope,
            used_instructions: self.limit.saturating_sub(self.left).saturating_add(used),
            limit_instructions: self.limit,
            retry_after_ns: self.window_ends_ns.saturating_sub(now_ns),
        }
    }
}

impl QuotaBook {
    /// Checks `caller`'s and `plugin`'s quotas at `now_ns`: what a call may still use (`None`:
    /// no quota applies), or the quota that is used up.
    pub fn allowance(
        &self,
        quotas: &Quotas,
        caller: &Principal,
        plugin: &str,
        now_ns: u64,
    ) -> Result<Option<Allowance>, QuotaExceeded> {
        let caller_left = left(
            quotas,
            QuotaScope::Caller,
            quotas.caller_instructions,
            self.callers.get(caller),
            now_ns,
        )?;
        let plugin_left = left(
            quotas,
            QuotaScope::Plugin,
            quotas.plugin_instructions,
            self.plugins.get(plugin),
            now_ns,
        )?;
        Ok(match (caller_left, plugin_left) {
            (Some(a), Some(b)) => Some(if a.left <= b.left { a } else { b }),
            (a, b) => a.or(b),
        })
    }

    /// Counts `instructions` against `caller` and `plugin` at `now_ns`.
    pub fn charge(
        &mut self,
        quotas: &Quotas,
        caller: Principal,
        plugin: &str,
        now_ns: u64,
        instructions: u64,
    ) {
        let Some(index) = window_index(quotas, now_ns) else {
            return;
        };
        if self.callers.len() >= MAX_TRACKED && !self.callers.contains_key(&caller) {
            self.callers.retain(|_, w| w.index == index);
        }
        for window in [
            self.callers.entry(caller).or_default(),
            self.plugins.entry(plugin.to_owned()).or_default(),
        ] {
            if window.index != index {
                *window = Window { index, used: 0 };
            }
            window.used = window.used.saturating_add(instructions);
        }
    }

    /// Forgets a plugin (uninstalled).
    pub fn forget(&mut self, plugin: &str) {
        self.plugins.remove(plugin);
    }

    /// A plugin's use of its quota at `now_ns`.
    pub fn plugin_usage(&self, quotas: &Quotas, plugin: &str, now_ns: u64) -> QuotaUsage {
        let Some(index) = window_index(quotas, now_ns) else {
            return QuotaUsage::default();
        };
        let used = self
            .plugins
            .get(plugin)
            .filter(|w| w.index == index)
            .map_or(0, |w| w.used);
        QuotaUsage {
            used_instructions: used,
            limit_instructions: quotas.plugin_instructions,
            window_ends_ns: (index + 1).saturating_mul(quotas.window_ns),
        }
    }
}

/// The window `now_ns` falls in (`None` when windows are off).
fn window_index(quotas: &Quotas, now_ns: u64) -> Option<u64> {
    (quotas.window_ns > 0).then(|| now_ns / quotas.window_ns)
}

/// What is left under one quota (`None`: it is off), or the error saying it is used up.
fn left(
    quotas: &Quotas,
    scope: QuotaScope,
    limit: u64,
    window: Option<&Window>,
    now_ns: u64,
) -> Result<Option<Allowance>, QuotaExceeded> {
    let Some(index) = window_index(quotas, now_ns) else {
        return Ok(None);
    };
    if limit == 0 {
        return Ok(None);
    }
    let used = window.filter(|w| w.index == index).map_or(0, |w| w.used);
    let window_ends_ns = (index + 1).saturating_mul(quotas.window_ns);
    if used >= limit {
        return Err(QuotaExceeded {
            scope,
            used_instructions: used,
            limit_instructions: limit,
            retry_after_ns: window_ends_ns.saturating_sub(now_ns),
        });
    }
    Ok(Some(Allowance {
        left: limit - used,
        scope,
        limit,
        window_ends_ns,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas() -> Quotas {
        Quotas {
            window_ns: 100,
            caller_instructions: 1_000,
            plugin_instructions: 1_500,
        }
    }

    fn user(n: u8) -> Principal {
        Principal::from_slice(&[n])
    }

    #[test]
    fn a_quota_refuses_until_its_window_ends() {
        let (q, mut book) = (quotas(), QuotaBook::default());
        let left = |book: &QuotaBook, who, at| {
            book.allowance(&q, &user(who), "p", at)
                .map(|a| a.map(|a| (a.left, a.scope)))
        };
        assert_eq!(left(&book, 1, 10), Ok(Some((1_000, QuotaScope::Caller))));
        book.charge(&q, user(1), "p", 10, 600);
        assert_eq!(left(&book, 1, 20), Ok(Some((400, QuotaScope::Caller))));
        book.charge(&q, user(1), "p", 30, 500);
        assert_eq!(
            book.allowance(&q, &user(1), "p", 40),
            Err(QuotaExceeded {
                scope: QuotaScope::Caller,
                used_instructions: 1_100,
                limit_instructions: 1_000,
                retry_after_ns: 60,
            })
        );
        // Another caller of the same plugin runs into the plugin's quota.
        assert_eq!(left(&book, 2, 40), Ok(Some((400, QuotaScope::Plugin))));
        book.charge(&q, user(2), "p", 40, 400);
        assert!(matches!(
            book.allowance(&q, &user(2), "p", 50),
            Err(QuotaExceeded {
                scope: QuotaScope::Plugin,
                ..
            })
        ));
        assert_eq!(
            book.plugin_usage(&q, "p", 50),
            QuotaUsage {
                used_instructions: 1_500,
                limit_instructions: 1_500,
                window_ends_ns: 100
            }
        );
        // The next window starts afresh.
        assert_eq!(left(&book, 1, 100), Ok(Some((1_000, QuotaScope::Caller))));
    }

    #[test]
    fn a_zero_quota_or_window_is_off() {
        let mut book = QuotaBook::default();
        let off = Quotas {
            caller_instructions: 0,
            plugin_instructions: 0,
            ..quotas()
        };
        book.charge(&off, user(1), "p", 1, u64::MAX);
        assert_eq!(book.allowance(&off, &user(1), "p", 2), Ok(None));
        let no_window = Quotas {
            window_ns: 0,
            ..quotas()
        };
        book.charge(&no_window, user(1), "q", 1, u64::MAX);
        assert_eq!(book.allowance(&no_window, &user(1), "q", 2), Ok(None));
    }
}
