//! `plugin-host`: deploy and drive the `plugin_host` canister in the local canister runtime, like
//! `dfx canister call` and `extism call`. State (heap and stable memory) lives in `--state DIR` and
//! persists between invocations exactly as on a replica.

mod demo;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use candid::Principal;
use clap::{Parser, Subcommand};
use ic_local_runtime::{Canister, Runtime};
use plugin_host_api::{
    ByteBuf, InitArgs, InstallArgs, InstallChunkedArgs, InvokeOptions, InvokePolicy, ListArgs,
    LogEntry, PluginInfo, UpgradePluginArgs, hex,
};
use plugin_host_local::candid_text::Interface;
use plugin_host_local::client::{CallKind, PluginHost};
pub(crate) use plugin_host_local::group_digits;
use plugin_host_local::identity::{self, DEFAULT_IDENTITY};

/// The canister module `deploy` uses unless told otherwise (built by `cargo xtask build`).
const DEFAULT_WASM: &str = "target/dist/plugin_host.wasm.gz";
/// Modules above this size are uploaded in chunks (the ingress limit is 2 MiB per message).
const CHUNKED_ABOVE: usize = 1_900_000;
/// Chunk size for chunked uploads.
const CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Parser)]
#[command(
    name = "plugin-host",
    version,
    about = "Run the plugin_host canister locally"
)]
struct Cli {
    /// Directory holding the local canister's state.
    #[arg(long, global = true, default_value = ".plugin-host")]
    state: PathBuf,
    /// Identity to call as (`anonymous` is the anonymous principal; the deployer is a controller).
    #[arg(long, global = true, default_value = DEFAULT_IDENTITY)]
    identity: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install (or with --upgrade, upgrade) the canister.
    Deploy {
        /// Upgrade the deployed canister, keeping its stable memory.
        #[arg(long)]
        upgrade: bool,
        /// Canister module (.wasm or .wasm.gz).
        #[arg(long, default_value = DEFAULT_WASM)]
        wasm: PathBuf,
        /// Init/upgrade argument as Candid text, e.g. '(opt record { install_policy = opt variant { AnyAuthenticated } })'.
        #[arg(long)]
        argument: Option<String>,
    },
    /// Call a canister method with Candid text arguments; prints the Candid reply.
    Call {
        /// Send as a query (commits nothing).
        #[arg(long)]
        query: bool,
        /// Method name.
        method: String,
        /// Arguments as Candid text, e.g. '("counter")'.
        args: Option<String>,
        /// Read the Candid text arguments from a file.
        #[arg(long, conflicts_with = "args")]
        argument_file: Option<PathBuf>,
    },
    /// Install a plugin module (uploads in chunks when it is above the ingress limit).
    Install {
        /// Plugin name: [a-z0-9_-]{1,64}.
        name: String,
        /// The plugin's .wasm file.
        file: PathBuf,
        /// Configuration entries `key=value` (repeatable).
        #[arg(long = "config", value_parser = parse_key_value)]
        config: Vec<(String, String)>,
        /// Only the owner (and admins) may invoke.
        #[arg(long)]
        owner_only: bool,
        /// Principals allowed to invoke (repeatable); implies an allow-list policy.
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// Default fuel per call.
        #[arg(long)]
        fuel: Option<u64>,
    },
    /// Invoke a plugin function; its output goes to stdout, errors to stderr.
    Invoke {
        /// Plugin name.
        name: String,
        /// Function name.
        function: String,
        /// Input text.
        #[arg(long, conflicts_with = "input_file")]
        input: Option<String>,
        /// Read the input bytes from a file.
        #[arg(long)]
        input_file: Option<PathBuf>,
        /// Fuel budget for this call.
        #[arg(long)]
        fuel: Option<u64>,
        /// Dry run as a query: commits nothing.
        #[arg(long)]
        query: bool,
        /// Print the plugin's log lines to stderr.
        #[arg(long)]
        logs: bool,
    },
    /// List installed plugins.
    List,
    /// Show everything about one plugin.
    Info {
        /// Plugin name.
        name: String,
    },
    /// Uninstall a plugin and delete its state.
    Uninstall {
        /// Plugin name.
        name: String,
    },
    /// Replace a plugin's code, keeping its state.
    UpgradePlugin {
        /// Plugin name.
        name: String,
        /// The new .wasm file.
        file: PathBuf,
        /// A function of the new module to run once as a migration.
        #[arg(long)]
        migration: Option<String>,
    },
    /// Print the principal of the current identity.
    Whoami,
    /// Deploy into a fresh state directory and run every example plugin (needs `cargo xtask build`).
    Demo,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got `{text}`"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The error text of a failed command.
type CliResult<T = ()> = Result<T, String>;

fn run(cli: Cli) -> CliResult {
    let caller = identity::principal(&cli.identity);
    match cli.command {
        Command::Deploy {
            upgrade,
            wasm,
            argument,
        } => deploy(&cli.state, &wasm, argument.as_deref(), upgrade, caller),
        Command::Whoami => {
            println!("{caller}");
            Ok(())
        }
        Command::Demo => demo::run(),
        command => {
            let mut host = open(&cli.state)?;
            let result = dispatch(&mut host, command, caller);
            save(&mut host, &cli.state)?;
            result
        }
    }
}

fn dispatch(host: &mut PluginHost, command: Command, caller: Principal) -> CliResult {
    match command {
        Command::Call {
            query,
            method,
            args,
            argument_file,
        } => {
            let text = match argument_file {
                Some(file) => read_text(&file)?,
                None => args.unwrap_or_default(),
            };
            let interface = Interface::plugin_host();
            let arg = interface
                .encode_args(&method, &text)
                .map_err(|e| e.to_string())?;
            let kind = if query || interface.is_query(&method) {
                CallKind::Query
            } else {
                CallKind::Update
            };
            let reply = host
                .call_raw(kind, &method, &arg, caller)
                .map_err(|e| e.to_string());
            report_instructions(host, &method);
            println!(
                "{}",
                interface
                    .decode_reply(&method, &reply?)
                    .map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Command::Install {
            name,
            file,
            config,
            owner_only,
            allow,
            fuel,
        } => {
            let policy = invoke_policy(owner_only, &allow)?;
            let wasm = read_bytes(&file)?;
            let installed = install(host, caller, &name, wasm, config, policy, fuel);
            report_instructions(host, "install");
            print_info(&installed?);
            Ok(())
        }
        Command::Invoke {
            name,
            function,
            input,
            input_file,
            fuel,
            query,
            logs,
        } => {
            let input = match input_file {
                Some(file) => read_bytes(&file)?,
                None => input.unwrap_or_default().into_bytes(),
            };
            let kind = if query {
                CallKind::Query
            } else {
                CallKind::Update
            };
            let options = InvokeOptions {
                fuel,
                logs: Some(logs),
            };
            let result = host.invoke(kind, caller, &name, &function, &input, Some(options));
            report_instructions(host, "invoke");
            match result.map_err(|e| e.to_string())? {
                Ok(reply) => {
                    print_logs(&reply.logs);
                    eprintln!("[fuel used: {}]", reply.fuel_used);
                    std::io::stdout()
                        .write_all(&reply.output)
                        .and_then(|()| std::io::stdout().flush())
                        .map_err(|e| e.to_string())
                }
                Err(failure) => {
                    print_logs(&failure.logs);
                    eprintln!("[fuel used: {}]", failure.fuel_used);
                    Err(failure.to_string())
                }
            }
        }
        Command::List => {
            let mut start_after = None;
            loop {
                let page = host
                    .list(
                        caller,
                        ListArgs {
                            start_after,
                            limit: None,
                        },
                    )
                    .map_err(|e| e.to_string())?;
                for info in &page.plugins {
                    println!(
                        "{:<24} {:>9} B  {:>4} pages  {:>8} calls  {}  owner {}",
                        info.name,
                        info.code_size,
                        info.memory_pages,
                        info.calls,
                        &hex(&info.code_sha256)[..16],
                        info.owner
                    );
                }
                match page.next {
                    Some(next) => start_after = Some(next),
                    None => break,
                }
            }
            report_instructions(host, "list");
            Ok(())
        }
        Command::Info { name } => {
            let info = host.get(caller, &name).map_err(|e| e.to_string())?;
            report_instructions(host, "get");
            match info {
                Some(info) => {
                    print_info(&info);
                    Ok(())
                }
                None => Err(format!("no plugin named `{name}`")),
            }
        }
        Command::Uninstall { name } => {
            let result = host.uninstall(caller, &name).map_err(|e| e.to_string())?;
            report_instructions(host, "uninstall");
            result.map_err(|e| e.to_string())
        }
        Command::UpgradePlugin {
            name,
            file,
            migration,
        } => {
            let wasm = ByteBuf::from(read_bytes(&file)?);
            let args = UpgradePluginArgs {
                name,
                wasm,
                migration,
            };
            let result = host
                .upgrade_plugin(caller, args)
                .map_err(|e| e.to_string())?;
            report_instructions(host, "upgrade_plugin");
            print_info(&result.map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Deploy { .. } | Command::Whoami | Command::Demo => {
            unreachable!("handled before the state is opened")
        }
    }
}

fn deploy(
    state: &Path,
    wasm: &Path,
    argument: Option<&str>,
    upgrade: bool,
    caller: Principal,
) -> CliResult {
    let module = read_bytes(wasm)?;
    let init: Option<InitArgs> = match argument {
        Some(text) => {
            let bytes = Interface::plugin_host()
                .encode_init(text)
                .map_err(|e| e.to_string())?;
            candid::decode_one(&bytes).map_err(|e| e.to_string())?
        }
        None => None,
    };
    let mut host = if upgrade {
        let mut host = open(state)?;
        host.upgrade_canister(&module, init, caller)
            .map_err(|e| e.to_string())?;
        host
    } else {
        if state.join("canister").exists() {
            return Err(format!(
                "a canister is deployed in {} already: use --upgrade, or remove the directory",
                state.display()
            ));
        }
        PluginHost::deploy_on(&runtime(state)?, &module, init, caller).map_err(|e| e.to_string())?
    };
    report_instructions(&host, if upgrade { "upgrade" } else { "install" });
    save(&mut host, state)?;
    eprintln!("deployed {} to {}", wasm.display(), state.display());
    Ok(())
}

/// Installs `wasm` as plugin `name`, in chunks when it is above the ingress limit.
pub(crate) fn install(
    host: &mut PluginHost,
    caller: Principal,
    name: &str,
    wasm: Vec<u8>,
    config: Vec<(String, String)>,
    invoke_policy: Option<InvokePolicy>,
    fuel_limit: Option<u64>,
) -> CliResult<PluginInfo> {
    let result = if wasm.len() <= CHUNKED_ABOVE {
        let args = InstallArgs {
            name: name.to_owned(),
            wasm: ByteBuf::from(wasm),
            config: Some(config),
            invoke_policy,
            fuel_limit,
        };
        host.install(caller, args).map_err(|e| e.to_string())?
    } else {
        let chunks: Vec<&[u8]> = wasm.chunks(CHUNK_BYTES).collect();
        let mut chunk_hashes = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            eprintln!(
                "uploading chunk {}/{} ({} bytes)",
                i + 1,
                chunks.len(),
                chunk.len()
            );
            let hash = host
                .upload_chunk(caller, chunk)
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            chunk_hashes.push(hash);
        }
        let args = InstallChunkedArgs {
            name: name.to_owned(),
            chunk_hashes,
            wasm_sha256: ByteBuf::from(sha256(&wasm)),
            config: Some(config),
            invoke_policy,
            fuel_limit,
        };
        host.install_chunked(caller, args)
            .map_err(|e| e.to_string())?
    };
    result.map_err(|e| e.to_string())
}

fn invoke_policy(owner_only: bool, allow: &[String]) -> CliResult<Option<InvokePolicy>> {
    match (owner_only, allow.is_empty()) {
        (true, false) => Err("--owner-only and --allow exclude each other".into()),
        (true, true) => Ok(Some(InvokePolicy::OwnerOnly)),
        (false, true) => Ok(None),
        (false, false) => allow
            .iter()
            .map(|text| {
                Principal::from_text(text).map_err(|e| format!("bad principal `{text}`: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(|list| Some(InvokePolicy::AllowList(list))),
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

fn open(state: &Path) -> CliResult<PluginHost> {
    if !state.join("canister").exists() {
        return Err(format!(
            "no canister deployed in {}: run `plugin-host deploy` first",
            state.display()
        ));
    }
    Canister::load_on(&runtime(state)?, &state.join("canister"))
        .map(PluginHost::from_canister)
        .map_err(|e| format!("cannot load the canister from {}: {e}", state.display()))
}

/// The local runtime, keeping compiled canister code in the state directory (`code-cache/`), so
/// that a command after the first does not compile the canister again.
fn runtime(state: &Path) -> CliResult<Runtime> {
    Runtime::with_code_cache(&state.join("code-cache")).map_err(|e| e.to_string())
}

fn save(host: &mut PluginHost, state: &Path) -> CliResult {
    host.canister()
        .save(&state.join("canister"))
        .map_err(|e| format!("cannot save the canister to {}: {e}", state.display()))
}

/// Prints the instructions the last message used, to stderr.
pub(crate) fn report_instructions(host: &PluginHost, what: &str) {
    eprintln!(
        "[{what}: {} instructions (local estimate of the replica's count)]",
        group_digits(host.last_instructions())
    );
}

fn print_logs(logs: &[LogEntry]) {
    for entry in logs {
        eprintln!("[{:?}] {}", entry.level, entry.message);
    }
}

pub(crate) fn print_info(info: &PluginInfo) {
    println!("name:          {}", info.name);
    println!("owner:         {}", info.owner);
    println!("code sha256:   {}", hex(&info.code_sha256));
    println!("code size:     {} bytes", info.code_size);
    println!("functions:     {}", info.functions.join(", "));
    println!(
        "memory:        {} pages (max {})",
        info.memory_pages,
        info.max_memory_pages
            .map_or("none".to_owned(), |m| m.to_string())
    );
    println!("fuel limit:    {}", info.fuel_limit);
    println!(
        "calls:         {} ({} fuel in total)",
        info.calls, info.fuel_used_total
    );
    println!("invoke policy: {:?}", info.invoke_policy);
    let config: Vec<String> = info
        .config
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!("config:        {}", config.join(", "));
}

fn read_bytes(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_text(path: &Path) -> CliResult<String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
