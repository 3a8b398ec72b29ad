//! Named identities, as with `dfx --identity NAME`: each name maps to a fixed principal.

use candid::Principal;

/// The identity used when none is named.
pub const DEFAULT_IDENTITY: &str = "default";

/// The principal of identity `name`: the anonymous principal for `anonymous`, otherwise a
/// self-authenticating principal derived from the name (stable across runs, distinct per name).
pub fn principal(name: &str) -> Principal {
    if name == "anonymous" {
        Principal::anonymous()
    } else {
        Principal::self_authenticating(format!("plugin-host local identity {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_stable_distinct_principals() {
        assert_eq!(principal("anonymous"), Principal::anonymous());
        assert_eq!(principal("alice"), principal("alice"));
        assert_ne!(principal("alice"), principal("bob"));
        assert_ne!(principal("alice"), Principal::anonymous());
    }
}
