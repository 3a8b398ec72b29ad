//! `canister_inspect_message`: refuses ingress messages whose caller has no right to what they
//! ask, before the canister pays for them. It runs only for ingress (not for calls from other
//! canisters), and a replica may skip it: every endpoint checks again.
//!
//! Refused: install methods without the install right, `set_settings` without admin rights,
//! managing an existing plugin without the right to, invoking an existing plugin its policy
//! closes to the caller, and (for callers who are not admins) invoking while the cycles are below
//! the reserve or a quota is used up; `invoke_query` called as an update, unless by an admin.
//! Messages about plugins that do not exist pass, to get their typed error; so do the other
//! queries (called as updates they change nothing and cost little).

use candid::utils::decode_args;

use crate::access::Rules;
use crate::args;
use crate::plugins::Message;
use crate::state::State;

impl State {
    /// Whether an ingress message to `method` with `arg` may be accepted.
    pub fn admits(&self, message: &Message, method: &str, arg: &[u8]) -> bool {
        let caller = &message.caller;
        let manages = |name: &str| match self.owner_of(name) {
            Some((owner, _)) => self.settings.authorize_manage(caller, &owner).is_ok(),
            None => true,
        };
        match method {
            "install" | "install_chunked" | "upload_chunk" | "clear_chunks" => {
                self.settings.authorize_install(caller).is_ok()
            }
            "set_settings" => self.settings.authorize_admin(caller).is_ok(),
            "uninstall" | "set_config" | "set_invoke_policy" => {
                decode_args::<(String,)>(arg).is_ok_and(|(name,)| manages(&name))
            }
            "upgrade_plugin" => decode_args::<(plugin_host_api::UpgradePluginArgs,)>(arg)
                .is_ok_and(|(args,)| manages(&args.name)),
            "invoke" => match args::decode(arg) {
                Some(args) => self.may_invoke(message, &args.plugin),
                None => false,
            },
            // Ingress only reaches a query as an update (replicated): as such invoke_query is
            // for admins (see `State::invoke`); the others cost little and change nothing.
            "invoke_query" => self.settings.is_admin(caller),
            "get" | "list" | "settings" | "stored_chunks" | "version" | "whoami" => true,
            #[cfg(feature = "bench")]
            "bench_native" | "bench_native_workload" => true,
            _ => false,
        }
    }

    fn may_invoke(&self, message: &Message, plugin: &str) -> bool {
        let Some((owner, policy)) = self.owner_of(plugin) else {
            return true;
        };
        let caller = &message.caller;
        if self
            .settings
            .authorize_invoke(caller, &owner, &policy)
            .is_err()
        {
            return false;
        }
        self.settings.is_admin(caller)
            || (message.cycle_balance >= self.settings.cycles_reserve
                && self
                    .quotas
                    .allowance(
                        &self.settings.quotas,
                        &caller.principal,
                        plugin,
                        message.now_ns,
                    )
                    .is_ok())
    }
}
