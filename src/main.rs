//! `plugin-host`: deploy and drive the `plugin_host` canister in the local canister runtime, like
//! `dfx canister call` and `extism call`. State (heap and stable memory) lives in `--state DIR` and
//! persists between invocations exactly as on a replica.

mod demo;
mod json;
mod progress;
mod templates;

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
use plugin_host_local::client::{CallError, CallKind, PluginHost};
pub(crate) use plugin_host_local::group_digits;
use plugin_host_local::identity::{self, DEFAULT_IDENTITY};

/// The canister module `deploy` uses unless told otherwise (built by `cargo xtask build`), relative
/// to the working directory or, failing that, to this executable's `target/` directory.
const DEFAULT_WASM: &str = "target/dist/plugin_host.wasm.gz";
/// The QuickJS runtime plugin `install --js` installs (built by `cargo xtask build-plugins`),
/// found like [`DEFAULT_WASM`].
const JS_RUNTIME: &str = "target/plugins/js_runtime.wasm";
/// The config entry that holds a JavaScript plugin's script (what `js_runtime` reads).
pub(crate) const JS_SCRIPT_KEY: &str = "script";
/// Modules above this size are uploaded in chunks (the ingress limit is 2 MiB per message).
const CHUNKED_ABOVE: usize = 1_900_000;
/// Chunk size for chunked uploads.
const CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Parser)]
#[command(
    name = "plugin-host",
    version,
    about = "Run the plugin_host canister locally",
    after_help = "Exit codes: 0 ok; 1 the plugin or the operation failed (a plugin error, trap or \
out of fuel, a typed refusal such as an unknown plugin or a missing right, a failed plugin build); \
2 usage (bad arguments, unreadable files, no canister deployed); 3 the canister or the local \
runtime failed (a reject, a canister trap, a state directory that cannot be read or written)."
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
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// Init/upgrade argument as Candid text, e.g. '(opt record { install_policy = opt variant { AnyAuthenticated } })'.
        #[arg(long)]
        argument: Option<String>,
    },
    /// Write a new plugin project (a counter with a test and a README) into NAME/ or --dir.
    New {
        /// Plugin name: a lowercase letter, then [a-z0-9_-].
        name: String,
        /// The project's language.
        #[arg(long, value_enum)]
        lang: templates::Language,
        /// Directory to create (default: NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build the plugin project in DIR (default: here) into DIR/plugin.wasm.
    Build {
        /// The project's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
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
        /// The plugin's .wasm file (or .wat text); with --js, the JavaScript runtime module
        /// (default: the built js_runtime.wasm).
        #[arg(required_unless_present = "js")]
        file: Option<PathBuf>,
        /// A JavaScript plugin: this script, run by the QuickJS runtime plugin (stored once
        /// for all scripts); the functions it defines become the plugin's functions.
        #[arg(long)]
        js: Option<PathBuf>,
        /// A WASI plugin's argument (repeatable; config `wasi.args`, words split on whitespace).
        #[arg(long = "wasi-arg", allow_hyphen_values = true)]
        wasi_args: Vec<String>,
        /// A WASI plugin's environment variable `KEY=VALUE` (repeatable; config `wasi.env.KEY`).
        #[arg(long = "wasi-env", value_parser = parse_key_value)]
        wasi_env: Vec<(String, String)>,
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
        /// Print the result as JSON on stdout: output (text and base64), fuel, instructions,
        /// logs, or the typed error.
        #[arg(long)]
        json: bool,
    },
    /// List installed plugins.
    List {
        /// Print a JSON array of the plugins' details.
        #[arg(long)]
        json: bool,
    },
    /// Show everything about one plugin.
    Info {
        /// Plugin name.
        name: String,
        /// Print the details as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Uninstall a plugin and delete its state.
    Uninstall {
        /// Plugin name.
        name: String,
    },
    /// Replace a plugin's code (or a JavaScript plugin's script), keeping its vars and config.
    UpgradePlugin {
        /// Plugin name.
        name: String,
        /// The new .wasm file (or .wat text).
        #[arg(required_unless_present = "js")]
        file: Option<PathBuf>,
        /// A JavaScript plugin's new script.
        #[arg(long)]
        js: Option<PathBuf>,
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
        Err(error) => {
            let (code, message) = match error {
                CliError::Plugin(message) => (1, message),
                CliError::Usage(message) => (2, message),
                CliError::Canister(message) => (3, message),
            };
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            ExitCode::from(code)
        }
    }
}

/// Why a command failed; each kind has its exit code (the `after_help` text above lists them).
#[derive(Debug)]
pub(crate) enum CliError {
    /// Exit code 1: the plugin or the operation failed: a typed error from the canister, or a
    /// failed plugin build. Empty when the failure was already printed (`invoke --json`).
    Plugin(String),
    /// Exit code 2: bad arguments or files, or no canister to talk to.
    Usage(String),
    /// Exit code 3: the canister rejected or trapped, or the local runtime or state failed.
    Canister(String),
}

impl CliError {
    /// A typed error the canister replied with.
    fn failed(error: impl std::fmt::Display) -> Self {
        Self::Plugin(error.to_string())
    }
}

impl From<CallError> for CliError {
    fn from(error: CallError) -> Self {
        Self::Canister(error.to_string())
    }
}

/// The result of a command.
pub(crate) type CliResult<T = ()> = Result<T, CliError>;

fn run(cli: Cli) -> CliResult {
    let caller = identity::principal(&cli.identity);
    match cli.command {
        Command::Deploy {
            upgrade,
            wasm,
            argument,
        } => deploy(&cli.state, wasm, argument.as_deref(), upgrade, caller),
        Command::New { name, lang, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            templates::create(&name, lang, &dir)
        }
        Command::Build { dir } => templates::build(&dir).map(drop),
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
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let kind = if query || interface.is_query(&method) {
                CallKind::Query
            } else {
                CallKind::Update
            };
            let reply = progress::spinner(&format!("calling {method}"), || {
                host.call_raw(kind, &method, &arg, caller)
            });
            report_instructions(host, &method);
            println!(
                "{}",
                interface
                    .decode_reply(&method, &reply?)
                    .map_err(|e| CliError::Canister(e.to_string()))?
            );
            Ok(())
        }
        Command::Install {
            name,
            file,
            js,
            wasi_args,
            wasi_env,
            mut config,
            owner_only,
            allow,
            fuel,
        } => {
            let policy = invoke_policy(owner_only, &allow)?;
            if !wasi_args.is_empty() {
                config.push(("wasi.args".to_owned(), wasi_args.join(" ")));
            }
            for (key, value) in wasi_env {
                config.push((format!("wasi.env.{key}"), value));
            }
            let file = match (file, &js) {
                (Some(file), _) => file,
                (None, _) => built_artifact(JS_RUNTIME),
            };
            if let Some(script) = js {
                config.push((JS_SCRIPT_KEY.to_owned(), read_text(&script)?));
            }
            let wasm = read_module(&file)?;
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
            json,
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
            let result = progress::spinner(&format!("calling {name}.{function}"), || {
                host.invoke(kind, caller, &name, &function, &input, Some(options))
            });
            report_instructions(host, "invoke");
            let instructions = host.last_instructions();
            match result? {
                Ok(reply) if json => print_json(&json::invoke_ok(
                    &reply.output,
                    reply.fuel_used,
                    instructions,
                    &reply.logs,
                )),
                Err(failure) if json => {
                    print_json(&json::invoke_failed(
                        &failure.error,
                        failure.fuel_used,
                        instructions,
                        &failure.logs,
                    ))?;
                    Err(CliError::Plugin(String::new()))
                }
                Ok(reply) => {
                    print_logs(&reply.logs);
                    eprintln!("[fuel used: {}]", reply.fuel_used);
                    std::io::stdout()
                        .write_all(&reply.output)
                        .and_then(|()| std::io::stdout().flush())
                        .map_err(|e| CliError::Usage(format!("cannot write the output: {e}")))
                }
                Err(failure) => {
                    print_logs(&failure.logs);
                    eprintln!("[fuel used: {}]", failure.fuel_used);
                    Err(CliError::failed(failure))
                }
            }
        }
        Command::List { json } => {
            let mut start_after = None;
            let mut listed = Vec::new();
            loop {
                let page = host.list(
                    caller,
                    ListArgs {
                        start_after,
                        limit: None,
                    },
                )?;
                for info in &page.plugins {
                    if json {
                        listed.push(json::plugin(info));
                        continue;
                    }
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
            if json {
                print_json(&serde_json::Value::Array(listed))?;
            }
            Ok(())
        }
        Command::Info { name, json } => {
            let info = host.get(caller, &name)?;
            report_instructions(host, "get");
            match info {
                Some(info) if json => print_json(&json::plugin(&info)),
                Some(info) => {
                    print_info(&info);
                    Ok(())
                }
                None => Err(CliError::Plugin(format!("no plugin named `{name}`"))),
            }
        }
        Command::Uninstall { name } => {
            let result = host.uninstall(caller, &name)?;
            report_instructions(host, "uninstall");
            result.map_err(CliError::failed)
        }
        Command::UpgradePlugin {
            name,
            file,
            js,
            migration,
        } => {
            let mut info = None;
            if let Some(file) = file {
                let args = UpgradePluginArgs {
                    name: name.clone(),
                    wasm: ByteBuf::from(read_module(&file)?),
                    migration,
                };
                let result = progress::spinner(&format!("upgrading {name}"), || {
                    host.upgrade_plugin(caller, args)
                })?;
                report_instructions(host, "upgrade_plugin");
                info = Some(result.map_err(CliError::failed)?);
            }
            if let Some(script) = js {
                // A new script is a new config entry: the runtime evaluates it afresh.
                let script = read_text(&script)?;
                let current = host
                    .get(caller, &name)?
                    .ok_or_else(|| CliError::Plugin(format!("no plugin named `{name}`")))?;
                let mut config = current.config;
                config.retain(|(key, _)| key != JS_SCRIPT_KEY);
                config.push((JS_SCRIPT_KEY.to_owned(), script));
                let result = host.set_config(caller, &name, config)?;
                report_instructions(host, "set_config");
                info = Some(result.map_err(CliError::failed)?);
            }
            if let Some(info) = info {
                print_info(&info);
            }
            Ok(())
        }
        Command::Deploy { .. }
        | Command::New { .. }
        | Command::Build { .. }
        | Command::Whoami
        | Command::Demo => {
            unreachable!("handled before the state is opened")
        }
    }
}

fn deploy(
    state: &Path,
    wasm: Option<PathBuf>,
    argument: Option<&str>,
    upgrade: bool,
    caller: Principal,
) -> CliResult {
    let wasm = wasm.unwrap_or_else(|| built_artifact(DEFAULT_WASM));
    let module = read_bytes(&wasm)?;
    let init: Option<InitArgs> = match argument {
        Some(text) => {
            let bytes = Interface::plugin_host()
                .encode_init(text)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            candid::decode_one(&bytes).map_err(|e| CliError::Usage(e.to_string()))?
        }
        None => None,
    };
    let mut host = if upgrade {
        let mut host = open(state)?;
        progress::spinner("upgrading the canister", || {
            host.upgrade_canister(&module, init, caller)
        })?;
        host
    } else {
        if state.join("canister").exists() {
            return Err(CliError::Usage(format!(
                "a canister is deployed in {} already: use --upgrade, or remove the directory",
                state.display()
            )));
        }
        let runtime = runtime()?;
        progress::spinner("deploying the canister", || {
            PluginHost::deploy_on(&runtime, &module, init, caller)
        })?
    };
    report_instructions(
        &host,
        if upgrade {
            "canister upgrade"
        } else {
            "deploy"
        },
    );
    save(&mut host, state)?;
    eprintln!("deployed {} to {}", wasm.display(), state.display());
    Ok(())
}

/// A build output (`target/...`) in the working directory if it is there, else in the `target/`
/// directory this executable was built into (so that a plugin project elsewhere finds it).
fn built_artifact(path: &str) -> PathBuf {
    let here = PathBuf::from(path);
    let beside_executable = std::env::current_exe().ok().and_then(|exe| {
        // target/<profile>/plugin-host -> target/<path>
        let target = exe.parent()?.parent()?;
        Some(target.join(Path::new(path).strip_prefix("target").ok()?))
    });
    match beside_executable {
        Some(path) if !here.exists() && path.exists() => path,
        _ => here,
    }
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
    let installing = format!("installing {name}");
    let result = if wasm.len() <= CHUNKED_ABOVE {
        let args = InstallArgs {
            name: name.to_owned(),
            wasm: ByteBuf::from(wasm),
            config: Some(config),
            invoke_policy,
            fuel_limit,
        };
        progress::spinner(&installing, || host.install(caller, args))?
    } else {
        let bar = progress::upload(wasm.len() as u64);
        let mut chunk_hashes = Vec::new();
        for chunk in wasm.chunks(CHUNK_BYTES) {
            let hash = host
                .upload_chunk(caller, chunk)?
                .map_err(CliError::failed)?;
            chunk_hashes.push(hash);
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let args = InstallChunkedArgs {
            name: name.to_owned(),
            chunk_hashes,
            wasm_sha256: ByteBuf::from(sha256(&wasm)),
            config: Some(config),
            invoke_policy,
            fuel_limit,
        };
        progress::spinner(&installing, || host.install_chunked(caller, args))?
    };
    result.map_err(CliError::failed)
}

fn invoke_policy(owner_only: bool, allow: &[String]) -> CliResult<Option<InvokePolicy>> {
    match (owner_only, allow.is_empty()) {
        (true, false) => Err(CliError::Usage(
            "--owner-only and --allow exclude each other".into(),
        )),
        (true, true) => Ok(Some(InvokePolicy::OwnerOnly)),
        (false, true) => Ok(None),
        (false, false) => allow
            .iter()
            .map(|text| {
                Principal::from_text(text)
                    .map_err(|e| CliError::Usage(format!("bad principal `{text}`: {e}")))
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
        return Err(CliError::Usage(format!(
            "no canister deployed in {}: run `plugin-host deploy` first",
            state.display()
        )));
    }
    let runtime = runtime()?;
    progress::spinner("loading the canister", || {
        Canister::load_on(&runtime, &state.join("canister"))
    })
    .map(PluginHost::from_canister)
    .map_err(|e| {
        CliError::Canister(format!(
            "cannot load the canister from {}: {e}",
            state.display()
        ))
    })
}

/// The local runtime, keeping compiled canister code in the user's cache directory
/// ([`code_cache_dir`]), so that no command after the first compiles the same canister again,
/// whatever its state directory.
fn runtime() -> CliResult<Runtime> {
    Runtime::with_code_cache(&code_cache_dir()).map_err(|e| CliError::Canister(e.to_string()))
}

/// `$PLUGIN_HOST_CACHE`, else `$XDG_CACHE_HOME/plugin-host`, else `~/.cache/plugin-host`, else
/// `.plugin-host-cache` here. Entries are named and checked by hash, so every state directory
/// and every process can share them.
fn code_cache_dir() -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    var("PLUGIN_HOST_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|dir| dir.join("plugin-host")))
        .or_else(|| var("HOME").map(|home| home.join(".cache/plugin-host")))
        .unwrap_or_else(|| PathBuf::from(".plugin-host-cache"))
}

fn save(host: &mut PluginHost, state: &Path) -> CliResult {
    host.canister().save(&state.join("canister")).map_err(|e| {
        CliError::Canister(format!(
            "cannot save the canister to {}: {e}",
            state.display()
        ))
    })
}

fn print_json(value: &serde_json::Value) -> CliResult {
    let mut out = std::io::stdout();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(|e| CliError::Usage(format!("cannot write the output: {e}")))
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
    std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

/// A plugin module from a `.wasm` file, or from a `.wat` file (WebAssembly text, compiled here).
pub(crate) fn read_module(path: &Path) -> CliResult<Vec<u8>> {
    if path.extension().is_some_and(|ext| ext == "wat") {
        wat::parse_file(path).map_err(|e| CliError::Usage(e.to_string()))
    } else {
        read_bytes(path)
    }
}

fn read_text(path: &Path) -> CliResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}
