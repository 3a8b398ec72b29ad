//! `plugin-host new` writes a plugin project from a template (`templates/`); `plugin-host build`
//! builds one into `plugin.wasm`, ready to install.
//!
//! Every template is the same small plugin, a counter kept in a var with a test script, so that
//! the loop new → build → install → invoke → change → upgrade-plugin works the same in each
//! language.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{CliError, CliResult};

/// A template's language.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Language {
    /// Rust with `extism-pdk`.
    Rust,
    /// C without libc or PDK (clang and wasm-ld).
    C,
    /// AssemblyScript with `@extism/as-pdk` (npm).
    Assemblyscript,
    /// JavaScript, run by the QuickJS runtime plugin: nothing to compile.
    Js,
}

/// What every built project leaves behind, in its directory.
pub(crate) const BUILT: &str = "plugin.wasm";

const README: &str = include_str!("../templates/README.md.tmpl");
const TEST_SCRIPT: &str = include_str!("../templates/test.sh.tmpl");

impl Language {
    /// The language's own files: (path in the project, template text).
    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Language::Rust => &[
                (
                    "Cargo.toml",
                    include_str!("../templates/rust/Cargo.toml.tmpl"),
                ),
                (
                    "src/lib.rs",
                    include_str!("../templates/rust/src/lib.rs.tmpl"),
                ),
                (".gitignore", "/target\n/plugin.wasm\n/.plugin-host\n"),
            ],
            Language::C => &[
                ("plugin.c", include_str!("../templates/c/plugin.c.tmpl")),
                (".gitignore", "/plugin.wasm\n/.plugin-host\n"),
            ],
            Language::Assemblyscript => &[
                (
                    "package.json",
                    include_str!("../templates/assemblyscript/package.json.tmpl"),
                ),
                (
                    "asconfig.json",
                    include_str!("../templates/assemblyscript/asconfig.json.tmpl"),
                ),
                (
                    "assembly/index.ts",
                    include_str!("../templates/assemblyscript/assembly/index.ts.tmpl"),
                ),
                (".gitignore", "/node_modules\n/plugin.wasm\n/.plugin-host\n"),
            ],
            Language::Js => &[
                ("plugin.js", include_str!("../templates/js/plugin.js.tmpl")),
                (".gitignore", "/.plugin-host\n"),
            ],
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::C => "C",
            Language::Assemblyscript => "AssemblyScript",
            Language::Js => "JavaScript",
        }
    }

    /// What `install` and `upgrade-plugin` take after the plugin's name.
    fn module_arguments(self) -> &'static str {
        match self {
            Language::Js => "--js plugin.js",
            Language::Rust | Language::C | Language::Assemblyscript => BUILT,
        }
    }

    /// The build command `plugin-host build` runs, as the project's README shows it.
    fn build_command(self) -> &'static str {
        match self {
            Language::Rust => {
                "cargo build --release --target wasm32-unknown-unknown, then copies the .wasm to plugin.wasm"
            }
            Language::C => {
                "clang --target=wasm32-unknown-unknown -O2 -nostdlib -Wl,--no-entry -o plugin.wasm plugin.c"
            }
            Language::Assemblyscript => "npm install (once), then npm run build",
            Language::Js => {
                "nothing: the canister's QuickJS runtime plugin runs plugin.js as it is"
            }
        }
    }

    /// The language of the project in `dir`, by the file its build starts from.
    fn of_project(dir: &Path) -> Option<Self> {
        [
            ("Cargo.toml", Language::Rust),
            ("package.json", Language::Assemblyscript),
            ("plugin.c", Language::C),
            ("plugin.js", Language::Js),
        ]
        .into_iter()
        .find(|(file, _)| dir.join(file).is_file())
        .map(|(_, language)| language)
    }
}

/// Writes a new project for plugin `name` into `dir` (which must not exist yet, or be empty).
pub(crate) fn create(name: &str, language: Language, dir: &Path) -> CliResult {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(CliError::Usage(format!(
            "`{name}` cannot name a plugin project: use a lowercase letter, then [a-z0-9_-], at most 64 in all"
        )));
    }
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(CliError::Usage(format!(
            "{} exists and is not empty",
            dir.display()
        )));
    }
    let test_note = match language {
        Language::Rust => " `cargo test` runs the logic's unit tests natively.",
        Language::C | Language::Assemblyscript | Language::Js => "",
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{language}}", language.display_name())
            .replace("{{build}}", language.build_command())
            .replace("{{module}}", language.module_arguments())
            .replace("{{test_note}}", test_note)
    };
    let common = [("README.md", README), ("test.sh", TEST_SCRIPT)];
    for (path, template) in language.files().iter().chain(&common) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| write_error(parent, &e))?;
        }
        std::fs::write(&path, fill(template)).map_err(|e| write_error(&path, &e))?;
    }
    make_executable(&dir.join("test.sh"))?;
    println!(
        "created {} ({}): a counter plugin with a test\n\nnext:\n  cd {}\n  plugin-host deploy                 # a local canister, state in ./.plugin-host\n  plugin-host build                  # {}\n  plugin-host install {name} {}\n  plugin-host invoke {name} increment --input 5\n  ./test.sh                          # build, install and call it in a fresh local canister",
        dir.display(),
        language.display_name(),
        dir.display(),
        language.build_command(),
        language.module_arguments(),
    );
    Ok(())
}

/// Builds the project in `dir` into `dir/plugin.wasm` and returns that path.
pub(crate) fn build(dir: &Path) -> CliResult<PathBuf> {
    let language = Language::of_project(dir).ok_or_else(|| {
        CliError::Usage(format!(
            "no plugin project in {}: expected Cargo.toml (Rust), package.json (AssemblyScript) or plugin.c (C), as `plugin-host new` writes",
            dir.display()
        ))
    })?;
    let target = dir.join(BUILT);
    match language {
        Language::Js => {
            eprintln!("plugin.js needs no build: install it with --js plugin.js");
            return Ok(dir.join("plugin.js"));
        }
        Language::Rust => {
            let output = run_tool(Command::new("cargo").current_dir(dir).args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--message-format=json-render-diagnostics",
            ]))?;
            let built = rust_artifact(&output).ok_or_else(|| {
                CliError::Plugin("cargo built no .wasm: is the crate a cdylib?".into())
            })?;
            std::fs::copy(&built, &target).map_err(|e| write_error(&target, &e))?;
        }
        Language::C => {
            run_tool(Command::new("clang").current_dir(dir).args([
                "--target=wasm32-unknown-unknown",
                "-O2",
                "-nostdlib",
                "-Wl,--no-entry",
                "-o",
                BUILT,
                "plugin.c",
            ]))?;
        }
        Language::Assemblyscript => {
            if !dir.join("node_modules").is_dir() {
                run_tool(Command::new("npm").current_dir(dir).args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                ]))?;
            }
            run_tool(Command::new("npm").current_dir(dir).args(["run", "build"]))?;
        }
    }
    let size = std::fs::metadata(&target)
        .map_err(|e| CliError::Plugin(format!("the build left no {}: {e}", target.display())))?
        .len();
    eprintln!("built {} ({size} bytes)", target.display());
    Ok(target)
}

/// The `.wasm` of the cdylib among cargo's JSON messages (`--message-format=json`): found this
/// way, the build honours `CARGO_TARGET_DIR` and any crate name.
fn rust_artifact(messages: &[u8]) -> Option<PathBuf> {
    String::from_utf8_lossy(messages)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "cdylib"))
        })
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .find(|file| file.extension().is_some_and(|ext| ext == "wasm"))
}

/// Runs a build tool with its diagnostics on our stderr; returns its stdout.
fn run_tool(command: &mut Command) -> CliResult<Vec<u8>> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| CliError::Usage(format!("cannot run `{program}` ({e}): is it installed?")))?;
    if !output.status.success() {
        // npm and clang print their diagnostics on stdout too.
        if program != "cargo" {
            eprint!("{}", String::from_utf8_lossy(&output.stdout));
        }
        return Err(CliError::Plugin(format!(
            "`{program}` failed ({})",
            output.status
        )));
    }
    Ok(output.stdout)
}

fn write_error(path: &Path, error: &std::io::Error) -> CliError {
    CliError::Usage(format!("cannot write {}: {error}", path.display()))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> CliResult {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| write_error(path, &e))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> CliResult {
    Ok(())
}
