//! The end-to-end scenarios of `e2e.rs` against PocketIC (a real replica's execution
//! environment), plus the example DAO canister calling `plugin_host` across canisters.
//!
//! They need a PocketIC 16.x server binary in `POCKET_IC_BIN`; without one every test fails
//! saying so, and `cargo xtask test` does not run them (it reports them as skipped). No PocketIC
//! server can be had on the machines this is built on, so these tests have been compiled there,
//! never run.

#![allow(missing_docs)]

#[path = "../../tests/support/mod.rs"]
mod support;

mod on_pocket_ic {
    use candid::utils::ArgumentEncoder;
    use candid::{CandidType, Deserialize, Principal, decode_one, encode_args};
    use dao_canister::{Ballot, Choice, DaoError, Decision, Outcome, Proposal};
    use plugin_host_api::{
        ByteBuf, InitArgs, InstallArgs, InstallError, InstallPolicy, InvokeError, InvokeFailure,
        InvokeOptions, InvokePolicy, InvokeReply, ListArgs, ListPage, ManageError, PluginInfo,
    };
    use pocket_ic::PocketIc;

    use crate::support::{
        admin, alice, bob, canister_wasm, dao_canister_wasm, hostile, install_args, plugin,
    };

    /// A PocketIC instance on the server `POCKET_IC_BIN` names (never a downloaded one).
    fn pocket_ic() -> PocketIc {
        assert!(
            std::env::var_os("POCKET_IC_BIN").is_some(),
            "POCKET_IC_BIN is not set: these tests need a PocketIC 16.x server binary \
             (`cargo xtask test` skips them without one)"
        );
        PocketIc::new()
    }

    /// Creates a canister controlled by `admin()`, with cycles well above `plugin_host`'s
    /// default reserve, and installs `wasm` with `arg` in it.
    fn deploy(pic: &PocketIc, wasm: Vec<u8>, arg: impl ArgumentEncoder) -> Principal {
        let id = pic.create_canister_with_settings(Some(admin()), None);
        pic.add_cycles(id, 10_000_000_000_000);
        install(pic, id, wasm, arg);
        id
    }

    /// An ingress update that `plugin_host`'s inspect_message refuses: rejected before it runs.
    #[track_caller]
    fn refused_by_inspect(
        pic: &PocketIc,
        id: Principal,
        caller: Principal,
        method: &str,
        args: impl ArgumentEncoder,
    ) {
        let args = encode_args(args).expect("encode the arguments");
        match pic.update_call(id, caller, method, args) {
            Err(reject) => assert!(
                reject.reject_message.contains("rejected the message"),
                "{method}: {reject}"
            ),
            Ok(_) => panic!("{method}: inspect_message should refuse it"),
        }
    }

    fn install(pic: &PocketIc, id: Principal, wasm: Vec<u8>, arg: impl ArgumentEncoder) {
        let arg = encode_args(arg).expect("encode the init argument");
        pic.install_canister(id, wasm, arg, Some(admin()));
    }

    /// Calls update `method` of canister `id` as `caller` and decodes its one reply value; a
    /// reject fails the test (every refusal of these canisters is a typed `Err` inside a reply).
    fn update<R>(
        pic: &PocketIc,
        id: Principal,
        caller: Principal,
        method: &str,
        args: impl ArgumentEncoder,
    ) -> R
    where
        R: CandidType + for<'de> Deserialize<'de>,
    {
        let args = encode_args(args).expect("encode the arguments");
        decoded(method, pic.update_call(id, caller, method, args))
    }

    /// The same for query `method`.
    fn query<R>(
        pic: &PocketIc,
        id: Principal,
        caller: Principal,
        method: &str,
        args: impl ArgumentEncoder,
    ) -> R
    where
        R: CandidType + for<'de> Deserialize<'de>,
    {
        let args = encode_args(args).expect("encode the arguments");
        decoded(method, pic.query_call(id, caller, method, args))
    }

    fn decoded<R, E: std::fmt::Display>(method: &str, reply: Result<Vec<u8>, E>) -> R
    where
        R: CandidType + for<'de> Deserialize<'de>,
    {
        let reply = reply.unwrap_or_else(|reject| panic!("{method} was rejected: {reject}"));
        decode_one(&reply).unwrap_or_else(|e| panic!("{method}: undecodable reply: {e}"))
    }

    /// `plugin_host` deployed in PocketIC, with the calls the scenarios make.
    struct Host {
        pic: PocketIc,
        id: Principal,
    }

    impl Host {
        /// A fresh canister in which any authenticated caller may install.
        fn new() -> Self {
            Self::with(Some(InitArgs {
                admins: None,
                install_policy: Some(InstallPolicy::AnyAuthenticated),
                ..InitArgs::default()
            }))
        }

        fn with(init: Option<InitArgs>) -> Self {
            let pic = pocket_ic();
            let id = deploy(&pic, canister_wasm(), (init,));
            Self { pic, id }
        }

        fn install(
            &self,
            caller: Principal,
            args: InstallArgs,
        ) -> Result<PluginInfo, InstallError> {
            update(&self.pic, self.id, caller, "install", (args,))
        }

        #[track_caller]
        fn install_ok(&self, caller: Principal, name: &str, wasm: Vec<u8>) -> PluginInfo {
            self.install(caller, install_args(name, wasm))
                .unwrap_or_else(|e| panic!("installing {name} failed: {e}"))
        }

        fn invoke(
            &self,
            caller: Principal,
            plugin: &str,
            function: &str,
            input: &str,
            options: Option<InvokeOptions>,
        ) -> Result<InvokeReply, InvokeFailure> {
            let args = (plugin, function, ByteBuf::from(input.as_bytes()), options);
            update(&self.pic, self.id, caller, "invoke", args)
        }

        /// Invokes as alice and returns the output as text, failing the test on an error.
        #[track_caller]
        fn ok(&self, plugin: &str, function: &str, input: &str) -> String {
            match self.invoke(alice(), plugin, function, input, None) {
                Ok(reply) => String::from_utf8(reply.output.into_vec()).expect("utf-8 output"),
                Err(failure) => panic!("{plugin}.{function}({input:?}) failed: {failure}"),
            }
        }

        /// Invokes as alice with `options` and returns the error, failing the test on success.
        #[track_caller]
        fn err_with(
            &self,
            plugin: &str,
            function: &str,
            options: Option<InvokeOptions>,
        ) -> InvokeError {
            match self.invoke(alice(), plugin, function, "", options) {
                Ok(reply) => panic!(
                    "{plugin}.{function} should fail, returned {:?}",
                    String::from_utf8_lossy(&reply.output)
                ),
                Err(failure) => failure.error,
            }
        }

        #[track_caller]
        fn err(&self, plugin: &str, function: &str) -> InvokeError {
            self.err_with(plugin, function, None)
        }

        fn get(&self, name: &str) -> Option<PluginInfo> {
            query(&self.pic, self.id, alice(), "get", (name,))
        }

        fn upgrade_canister(&self) {
            let arg = encode_args((None::<InitArgs>,)).expect("encode the upgrade argument");
            self.pic
                .upgrade_canister(self.id, canister_wasm(), arg, Some(admin()))
                .unwrap_or_else(|reject| panic!("canister upgrade rejected: {reject}"));
        }
    }

    #[test]
    fn install_invoke_list() {
        let host = Host::new();
        let info = host.install_ok(alice(), "counter", plugin("counter"));
        assert_eq!(info.owner, alice());
        assert!(info.functions.contains(&"increment".to_owned()), "{info:?}");

        assert_eq!(host.ok("counter", "increment", ""), "1");
        assert_eq!(host.ok("counter", "increment", "5"), "6");

        let page: ListPage = query(&host.pic, host.id, bob(), "list", (ListArgs::default(),));
        assert_eq!(page.plugins.len(), 1);
        assert_eq!(page.plugins[0].name, "counter");
        assert_eq!(page.plugins[0].calls, 2);
        assert_eq!(page.next, None);
        let me: Principal = query(&host.pic, host.id, bob(), "whoami", ());
        assert_eq!(me, bob());
    }

    #[test]
    fn state_survives_calls_and_a_canister_upgrade() {
        let host = Host::new();
        host.install_ok(alice(), "counter", plugin("counter"));
        for _ in 0..3 {
            host.ok("counter", "increment", "");
        }
        host.ok("counter", "put", "colour=blue");
        let before = host.get("counter").expect("installed");

        host.upgrade_canister();

        assert_eq!(host.ok("counter", "get", ""), "3");
        assert_eq!(host.ok("counter", "get_key", "colour"), "blue");
        assert_eq!(host.ok("counter", "increment", ""), "4");
        let after = host.get("counter").expect("installed");
        assert_eq!(after.code_sha256, before.code_sha256);
        assert_eq!(after.calls, before.calls + 3);
    }

    #[test]
    fn unknown_plugins_and_functions_are_typed_errors() {
        let host = Host::new();
        host.install_ok(alice(), "counter", plugin("counter"));
        assert!(matches!(
            host.err("nothing", "run"),
            InvokeError::UnknownPlugin { name } if name == "nothing"
        ));
        match host.err("counter", "nothing") {
            InvokeError::UnknownFunction { available, .. } => {
                assert!(available.contains(&"increment".to_owned()), "{available:?}")
            }
            other => panic!("expected UnknownFunction, got {other:?}"),
        }
        assert!(host.get("nothing").is_none());
    }

    #[test]
    fn out_of_fuel_and_traps_are_typed_errors_and_harm_nobody() {
        let host = Host::new();
        host.install_ok(alice(), "counter", plugin("counter"));
        host.ok("counter", "increment", "1");

        host.install_ok(alice(), "loop", hostile("infinite_loop"));
        let fuel = Some(InvokeOptions {
            fuel: Some(1_000_000),
            logs: None,
        });
        assert!(matches!(
            host.err_with("loop", "run", fuel),
            InvokeError::OutOfFuel {
                fuel_limit: 1_000_000,
                ..
            }
        ));
        // Without an explicit budget, the plugin's default fuel or the IC instruction budget stops it.
        assert!(matches!(
            host.err("loop", "run"),
            InvokeError::OutOfFuel { .. } | InvokeError::InstructionLimit { .. }
        ));
        host.install_ok(alice(), "trap", hostile("trap"));
        assert!(matches!(host.err("trap", "run"), InvokeError::Trap { .. }));
        host.install_ok(alice(), "spoiler", hostile("state_then_trap"));
        assert!(matches!(
            host.err("spoiler", "run"),
            InvokeError::Trap { .. }
        ));
        assert!(matches!(
            host.err("spoiler", "run"),
            InvokeError::Trap { .. }
        ));

        assert_eq!(host.ok("counter", "get", ""), "1");
    }

    /// Ingress the caller has no right to is refused by inspect_message (the endpoints' own
    /// typed refusals, for calls from canisters, are checked by `the_dao_canister_...` and by
    /// the local runtime's `tests/access.rs`).
    #[test]
    fn access_control() {
        // Default install policy: admins only; the deployer (a controller) is an admin.
        let host = Host::with(None);
        let args = (install_args("counter", plugin("counter")),);
        refused_by_inspect(&host.pic, host.id, alice(), "install", args);
        host.install_ok(admin(), "counter", plugin("counter"));

        let host = Host::new();
        let mut args = install_args("counter", plugin("counter"));
        args.invoke_policy = Some(InvokePolicy::OwnerOnly);
        host.install(alice(), args).expect("install");
        let invoke = (
            "counter",
            "increment",
            ByteBuf::new(),
            None::<InvokeOptions>,
        );
        refused_by_inspect(&host.pic, host.id, bob(), "invoke", invoke);
        assert!(
            host.invoke(alice(), "counter", "increment", "", None)
                .is_ok()
        );
        assert!(
            host.invoke(admin(), "counter", "increment", "", None)
                .is_ok()
        );
        let anon = (install_args("anon", plugin("counter")),);
        refused_by_inspect(&host.pic, host.id, Principal::anonymous(), "install", anon);
        refused_by_inspect(&host.pic, host.id, bob(), "uninstall", ("counter",));
        let policy: Result<PluginInfo, ManageError> = update(
            &host.pic,
            host.id,
            alice(),
            "set_invoke_policy",
            ("counter", InvokePolicy::AllowList(vec![bob()])),
        );
        policy.expect("the owner may set the policy");
        assert!(host.invoke(bob(), "counter", "increment", "", None).is_ok());
        let uninstall: Result<(), ManageError> =
            update(&host.pic, host.id, alice(), "uninstall", ("counter",));
        uninstall.expect("the owner may uninstall");
        assert!(host.get("counter").is_none());
    }

    #[test]
    fn a_dry_run_commits_nothing() {
        let host = Host::new();
        host.install_ok(alice(), "counter", plugin("counter"));
        host.ok("counter", "increment", "2");
        let args = (
            "counter",
            "increment",
            ByteBuf::new(),
            None::<InvokeOptions>,
        );
        let dry: Result<InvokeReply, InvokeFailure> =
            query(&host.pic, host.id, alice(), "invoke_query", args);
        assert_eq!(dry.expect("dry run succeeds").output.as_slice(), b"3");
        assert_eq!(host.ok("counter", "get", ""), "2");
        assert_eq!(host.get("counter").expect("installed").calls, 2);
    }

    fn ballot(voter: &str, weight: u64, choice: Choice) -> Ballot {
        Ballot {
            voter: voter.to_owned(),
            weight,
            choice,
        }
    }

    /// The DAO canister installs its voting module into `plugin_host` through the typed client
    /// and asks it for decisions; nobody else may invoke the module.
    #[test]
    fn the_dao_canister_installs_its_voting_module_and_decides() {
        let pic = pocket_ic();
        let dao = pic.create_canister_with_settings(Some(admin()), None);
        let init = InitArgs {
            admins: None,
            install_policy: Some(InstallPolicy::AllowList(vec![dao])),
            ..InitArgs::default()
        };
        let host = deploy(&pic, canister_wasm(), (Some(init),));
        install(&pic, dao, dao_canister_wasm(), (host,));

        let install_module = |caller| -> Result<PluginInfo, DaoError> {
            let args = (ByteBuf::from(plugin("dao_voting")), "quadratic");
            update(&pic, dao, caller, "install_voting_module", args)
        };
        assert_eq!(install_module(alice()), Err(DaoError::NotController));
        let module = install_module(admin()).expect("the DAO installs its module");
        assert_eq!(module.owner, dao);
        assert_eq!(module.invoke_policy, InvokePolicy::AllowList(vec![dao]));
        assert!(
            module.functions.contains(&"decide".to_owned()),
            "{module:?}"
        );

        let decide = |ballots| -> Result<Decision, DaoError> {
            let proposal = Proposal {
                id: "treasury-42".to_owned(),
                total_supply: Some(1000),
                ballots,
            };
            update(&pic, dao, alice(), "decide", (proposal,))
        };
        let decision = decide(vec![
            ballot("a", 400, Choice::Yes),
            ballot("b", 100, Choice::No),
            ballot("c", 81, Choice::No),
        ])
        .expect("a decision");
        assert_eq!(decision.proposal, "treasury-42");
        assert_eq!(decision.rule, "quadratic");
        assert_eq!(decision.outcome, Outcome::Passed);
        assert_eq!((decision.yes, decision.no), (20.0, 19.0));

        match decide(vec![
            ballot("a", 1, Choice::Yes),
            ballot("a", 2, Choice::No),
        ]) {
            Err(DaoError::VotingFailed(InvokeError::PluginError { message, .. })) => {
                assert!(message.contains("duplicate"), "{message}")
            }
            other => panic!("expected the module's error, got {other:?}"),
        }

        // An outsider calling plugin_host directly is refused by the module's invoke policy
        // (as ingress, by inspect_message before it runs).
        let input = ByteBuf::from(br#"{"ballots":[]}"#.to_vec());
        let outsider = (&module.name, "decide", input, None::<InvokeOptions>);
        refused_by_inspect(&pic, host, bob(), "invoke", outsider);
        // Nor may anyone but the DAO install plugins.
        let mine = (install_args("mine", plugin("counter")),);
        refused_by_inspect(&pic, host, bob(), "install", mine);
    }
}
