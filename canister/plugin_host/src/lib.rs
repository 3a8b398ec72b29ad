//! The plugin_host canister (work in progress).
