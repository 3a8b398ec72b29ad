//! Local canister runtime (work in progress).
