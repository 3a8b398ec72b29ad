//! JavaScript plugins without a compiler: this one module is QuickJS (through `rquickjs`), and
//! each plugin made from it brings its own script in the config entry `script` (`plugin-host
//! install NAME --js FILE` puts it there). The canister stores the module once, however many
//! scripts use it.
//!
//! - The script is evaluated once per instance, not per call: the QuickJS heap lives in the
//!   plugin's linear memory, which plugin_host keeps between calls and across canister upgrades
//!   and rolls back when a call fails, so JavaScript globals persist exactly like Rust statics.
//!   A new `script` (via `set_config`) is evaluated in a fresh context on the next call.
//! - Every function the script defines at top level is a plugin function: plugin_host lists them
//!   (`__plugin_functions`) and calls them through `__plugin_call`, naming the function in the
//!   config entry `plugin_host.function`.
//! - A function receives the call's input as a string and returns a string (the output as is)
//!   or any other value (the output is its JSON); `undefined` gives no output. A thrown
//!   exception is the plugin's error, with its message and stack.
//! - `console.log/info/debug/warn/error` write the plugin's log lines; `config.get(key)` reads
//!   its config; `vars.get(key)` / `vars.set(key, text)` / `vars.remove(key)` its vars (text;
//!   they outlive a new script or new code, where globals start afresh); `Date.now()` is the message's IC time (WASI `clock_time_get`), and
//!   `Math.random` is seeded from it: deterministic, not secret.

use std::cell::RefCell;

use extism_pdk::*;
use rquickjs::function::Rest;
use rquickjs::{Context, Ctx, Function, Object, Runtime, Value};

/// Most memory the QuickJS heap may use: past it, allocation throws a JavaScript exception (the
/// plugin's error) before the host's page cap would trap the call.
const HEAP_LIMIT: usize = 48 * 1024 * 1024;
/// Most native stack QuickJS's recursion may use, of the 1 MiB this plugin links with
/// (`build.rs`). QuickJS's limit is the stack pointer at start minus this, so it must stay well
/// below the stack's size (at its default, 1 MiB, the subtraction wraps and every call
/// "overflows"). Low enough that deep recursion meets QuickJS's check (a `RangeError` a script
/// can catch) before wasmi's call-depth limit (a trap).
const STACK_LIMIT: usize = 128 * 1024;

/// The live JavaScript world of this instance, and the script it was made from.
struct World {
    context: Context,
    script: String,
    /// The global names that existed before the script ran (the builtins and ours).
    builtins: Vec<String>,
    // Dropped last: the context belongs to it.
    _runtime: Runtime,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// The world for the current `script`, evaluating it first if it is new.
fn with_world<T>(work: impl FnOnce(&World) -> Result<T, Error>) -> Result<T, Error> {
    let script = config::get("script")?.ok_or_else(|| {
        Error::msg(
            "no script: give it in the config entry `script` (plugin-host install NAME --js FILE)",
        )
    })?;
    WORLD.with(|cell| {
        let mut world = cell.borrow_mut();
        if world.as_ref().is_none_or(|w| w.script != script) {
            *world = None;
            *world = Some(evaluate(script)?);
        }
        match world.as_ref() {
            Some(world) => work(world),
            None => Err(Error::msg("no JavaScript world")),
        }
    })
}

fn evaluate(script: String) -> Result<World, Error> {
    let runtime = Runtime::new().map_err(js_setup)?;
    runtime.set_memory_limit(HEAP_LIMIT);
    runtime.set_max_stack_size(STACK_LIMIT);
    let context = Context::full(&runtime).map_err(js_setup)?;
    let builtins = context.with(|ctx| -> Result<Vec<String>, Error> {
        install_host_objects(&ctx).map_err(|e| thrown(&ctx, e))?;
        let names = global_names(&ctx).map_err(|e| thrown(&ctx, e))?;
        ctx.eval::<(), _>(script.as_str())
            .map_err(|e| thrown(&ctx, e))?;
        Ok(names)
    })?;
    Ok(World {
        context,
        script,
        builtins,
        _runtime: runtime,
    })
}

/// `console` and `config`, backed by the Extism host.
fn install_host_objects<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for (name, level) in [
        ("log", LogLevel::Info),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("warn", LogLevel::Warn),
        ("error", LogLevel::Error),
    ] {
        let write = move |ctx: Ctx<'js>, parts: Rest<Value<'js>>| {
            let text: Vec<String> = parts.0.iter().map(|v| display(&ctx, v)).collect();
            log!(level, "{}", text.join(" "));
        };
        console.set(name, Function::new(ctx.clone(), write)?)?;
    }
    ctx.globals().set("console", console)?;
    let config = Object::new(ctx.clone())?;
    let get = |key: String| config::get(&key).ok().flatten();
    config.set("get", Function::new(ctx.clone(), get)?)?;
    ctx.globals().set("config", config)?;
    let vars = Object::new(ctx.clone())?;
    let get = |key: String| var::get::<String>(&key).ok().flatten();
    vars.set("get", Function::new(ctx.clone(), get)?)?;
    let set = |ctx: Ctx<'js>, key: String, value: String| {
        var::set(&key, value).map_err(|e| host_error(&ctx, e))
    };
    vars.set("set", Function::new(ctx.clone(), set)?)?;
    let remove = |ctx: Ctx<'js>, key: String| var::remove(&key).map_err(|e| host_error(&ctx, e));
    vars.set("remove", Function::new(ctx.clone(), remove)?)?;
    ctx.globals().set("vars", vars)?;
    Ok(())
}

/// The names of the global object's own properties.
fn global_names(ctx: &Ctx<'_>) -> rquickjs::Result<Vec<String>> {
    ctx.globals().keys::<String>().collect()
}

/// The functions the script defined at top level, sorted.
fn script_functions(world: &World) -> Result<Vec<String>, Error> {
    world.context.with(|ctx| {
        let mut names = Vec::new();
        for name in global_names(&ctx).map_err(|e| thrown(&ctx, e))? {
            if world.builtins.contains(&name) {
                continue;
            }
            let value: Value = ctx.globals().get(&name).map_err(|e| thrown(&ctx, e))?;
            if value.is_function() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    })
}

/// The script's functions, one name per line: what plugin_host lists as this plugin's
/// functions.
#[plugin_fn]
pub fn __plugin_functions() -> FnResult<String> {
    Ok(with_world(script_functions)?.join("\n"))
}

/// Calls the script's function named in `plugin_host.function` with the input as a string.
#[plugin_fn]
pub fn __plugin_call(input: Vec<u8>) -> FnResult<Vec<u8>> {
    let name = config::get("plugin_host.function")?
        .ok_or_else(|| Error::msg("no function named: plugin_host calls __plugin_call itself"))?;
    let input = String::from_utf8(input)
        .map_err(|_| Error::msg("the input of a JavaScript function must be UTF-8 text"))?;
    let output = with_world(|world| {
        world.context.with(|ctx| {
            let value: Value = ctx.globals().get(&name).map_err(|e| thrown(&ctx, e))?;
            let function = value
                .into_function()
                .ok_or_else(|| Error::msg(format!("the script defines no function `{name}`")))?;
            let result: Value = function.call((input,)).map_err(|e| thrown(&ctx, e))?;
            if let Some(text) = result.as_string() {
                return text.to_string().map_err(|e| thrown(&ctx, e));
            }
            if result.is_undefined() {
                return Ok(String::new());
            }
            let json = ctx.json_stringify(result).map_err(|e| thrown(&ctx, e))?;
            Ok(json
                .map(|s| s.to_string())
                .transpose()
                .map_err(|e| thrown(&ctx, e))?
                .unwrap_or_default())
        })
    })?;
    Ok(output.into_bytes())
}

/// A JavaScript error as the plugin's error: the exception's message and stack.
fn thrown(ctx: &Ctx<'_>, error: rquickjs::Error) -> Error {
    if !error.is_exception() {
        return Error::msg(error.to_string());
    }
    let exception = ctx.catch();
    let Some(object) = exception.as_object() else {
        return Error::msg(display(ctx, &exception));
    };
    // An Error's own fields, read without calling into JavaScript (its `toString` may throw).
    let field = |key: &str| object.get::<_, Option<String>>(key).ok().flatten();
    let mut text = match (field("name"), field("message")) {
        (Some(name), Some(message)) => format!("{name}: {message}"),
        (None, Some(message)) => message,
        _ => display(ctx, &exception),
    };
    if let Some(stack) = field("stack").filter(|stack| !stack.is_empty()) {
        text = format!("{text}\n{}", stack.trim_end());
    }
    Error::msg(text)
}

/// A host error (e.g. a var over the host's limits) thrown into JavaScript.
fn host_error(ctx: &Ctx<'_>, error: Error) -> rquickjs::Error {
    rquickjs::Exception::throw_message(ctx, &error.to_string())
}

/// `String(value)`, as `console.log` shows a value.
fn display(ctx: &Ctx<'_>, value: &Value<'_>) -> String {
    if let Some(text) = value.as_string() {
        return text.to_string().unwrap_or_default();
    }
    let coerced: rquickjs::Result<rquickjs::Coerced<String>> = value.get();
    match coerced {
        Ok(text) => text.0,
        Err(_) => {
            // A throwing toString: clear the pending exception, show a placeholder.
            ctx.catch();
            "<unprintable>".into()
        }
    }
}

fn js_setup(error: rquickjs::Error) -> Error {
    Error::msg(format!("cannot start QuickJS: {error}"))
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI's clock: plugin_host answers with the message's IC time.
    #[link_name = "clock_time_get"]
    fn wasi_clock_time_get(clock: u32, precision: u64, time: *mut u64) -> u32;
}

/// The one clock rquickjs-sys asks its host for (microseconds since the epoch): `Date.now()`
/// and `Math.random`'s seed. From WASI's realtime clock, i.e. the IC's time of the message.
#[unsafe(no_mangle)]
pub extern "C" fn __rquickjs_host_now_us() -> f64 {
    const REALTIME: u32 = 0;
    let mut nanos: u64 = 0;
    // SAFETY: `nanos` is a valid, aligned u64 for the host to write.
    let errno = unsafe { wasi_clock_time_get(REALTIME, 1_000, &mut nanos) };
    if errno == 0 {
        (nanos / 1_000) as f64
    } else {
        0.0
    }
}
