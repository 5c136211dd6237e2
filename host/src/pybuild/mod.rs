//! `wasmhttpd build HANDLER.py`: a Python `BaseHTTPRequestHandler` subclass,
//! unchanged, becomes a wasi:http plugin.
//!
//! componentize-py ([`toolchain`]) builds a component from three things: the
//! author's file, the bridge (`bridge.py`, which runs the real `http.server`
//! inside the guest and carries bytes between it and wasi:http), and a small
//! generated app module that imports the author's file and picks its handler
//! class. componentize-py pre-initialises the interpreter with all three
//! imported, so everything a failing build would tell (a syntax error, an
//! import that fails, no handler class or several) is found at build time:
//! the app module prints it on one line, which becomes the build's error;
//! the toolchain's own traceback is never shown (unless `--verbose`).
//!
//! The result is written beside the output under a hidden name and renamed
//! into place, so a server watching the plugins directory never loads half
//! a file.

pub mod toolchain;
pub mod wit;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;

/// Turn a Python http.server handler into a wasmhttpd plugin.
#[derive(Debug, Parser)]
#[command(
    name = "wasmhttpd build",
    max_term_width = 100,
    after_help = "The handler runs in CPython 3.14 inside the component, with the real \
                  http.server; `if __name__ == '__main__':` blocks are not run. Imports of the \
                  standard library work, and of pure-Python modules beside the file or under \
                  --path. componentize-py comes from PATH (version 0.25.1) or is installed \
                  once into the cache directory."
)]
pub struct BuildArgs {
    /// The Python file that defines a BaseHTTPRequestHandler subclass
    #[arg(value_name = "HANDLER.py")]
    pub file: PathBuf,

    /// Where to write the plugin [default: HANDLER.wasm beside the file]
    #[arg(short, long, value_name = "OUT.wasm")]
    pub output: Option<PathBuf>,

    /// The handler class to serve, when the file defines several
    #[arg(long, value_name = "CLASS")]
    pub handler: Option<String>,

    /// A directory of pure-Python modules the handler imports (a
    /// virtualenv's site-packages, say); may be given more than once
    #[arg(long = "path", value_name = "DIR")]
    pub paths: Vec<PathBuf>,

    /// Show the toolchain's own output
    #[arg(short, long)]
    pub verbose: bool,
}

/// What a build made.
#[derive(Debug)]
pub struct Built {
    /// The plugin file.
    pub output: PathBuf,
    /// The handler class it serves.
    pub class: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The bridge module, as the component imports it.
const BRIDGE: &str = include_str!("bridge.py");
/// Where the app module writes the name of the class it chose.
const CLASS_FILE: &str = "class.txt";
/// What it prints about a handler file that cannot be built.
const ERROR_LINE: &str = "wasmhttpd build error: ";

/// Builds the plugin; `cache` (a directory of its own) holds the toolchain,
/// the WIT and scratch space.
pub fn run(args: &BuildArgs, cache: &Path) -> anyhow::Result<Built> {
    let plan = Plan::new(args)?;
    let toolchain = toolchain::find_or_install(&cache.join("toolchains"))?;
    let wit = wit::write(cache)?;
    let scratch = Scratch::create(&cache.join("scratch"))?;
    std::fs::write(scratch.0.join("wasmhttpd_bridge.py"), BRIDGE)
        .context("cannot write the bridge module")?;
    std::fs::write(scratch.0.join("wasmhttpd_app.py"), plan.app_module())
        .context("cannot write the app module")?;

    eprintln!(
        "wasmhttpd build: {} -> {} (componentize-py {})...",
        args.file.display(),
        plan.output.display(),
        toolchain::COMPONENTIZE_PY
    );
    let started = Instant::now();
    let partial = plan.partial_output();
    let mut command = Command::new(&toolchain.componentize_py);
    command
        .arg("-d")
        .arg(&wit)
        .args(["-w", wit::WORLD, "componentize", "wasmhttpd_app"])
        .arg("-p")
        .arg(&scratch.0)
        .arg("-p")
        .arg(&plan.dir);
    for path in &plan.paths {
        command.arg("-p").arg(path);
    }
    command
        .arg("-p")
        .arg(&toolchain.legacy_cgi)
        .arg("-o")
        .arg(&partial)
        // Only what the command line names is bundled: not an activated
        // virtualenv's packages.
        .env_remove("VIRTUAL_ENV")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", toolchain.componentize_py.display()))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if args.verbose {
        eprint!("{said}");
    }
    if !output.status.success() || !partial.is_file() {
        let _ = std::fs::remove_file(&partial);
        if let Some(error) = said.lines().find_map(|line| line.split_once(ERROR_LINE)) {
            bail!("{}", error.1.trim());
        }
        bail!("componentize-py failed: {}", last_words(&said));
    }
    std::fs::rename(&partial, &plan.output)
        .with_context(|| format!("cannot write {}", plan.output.display()))?;
    let class = std::fs::read_to_string(scratch.0.join(CLASS_FILE))
        .ok()
        .or_else(|| args.handler.clone())
        .unwrap_or_else(|| "its handler class".into());
    let size = std::fs::metadata(&plan.output).map_or(0, |m| m.len());
    eprintln!(
        "wasmhttpd build: built {} ({class}, {:.1} MB) in {:.1} s",
        plan.output.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(Built {
        output: plan.output,
        class,
        size,
    })
}

/// What the arguments ask for, checked.
#[derive(Debug)]
struct Plan {
    /// The file as the user named it (for messages).
    shown: String,
    /// Its file name.
    file_name: String,
    /// Its directory, absolute.
    dir: PathBuf,
    /// The module name it is imported as.
    module: String,
    handler: Option<String>,
    paths: Vec<PathBuf>,
    output: PathBuf,
}

impl Plan {
    fn new(args: &BuildArgs) -> anyhow::Result<Plan> {
        let file = &args.file;
        let shown = file.display().to_string();
        if file.extension().is_none_or(|e| e != "py") {
            bail!("{shown}: not a Python file (HANDLER.py)");
        }
        let meta = std::fs::metadata(file).with_context(|| format!("cannot read {shown}"))?;
        if !meta.is_file() {
            bail!("{shown}: not a file");
        }
        let absolute =
            std::fs::canonicalize(file).with_context(|| format!("cannot read {shown}"))?;
        let dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        let file_name = absolute
            .file_name()
            .and_then(|n| n.to_str())
            .context("the file's name is not UTF-8")?
            .to_string();
        if let Some(class) = &args.handler
            && !is_identifier(class)
        {
            bail!("--handler {class:?}: not a Python class name");
        }
        let mut paths = Vec::new();
        for path in &args.paths {
            if !path.is_dir() {
                bail!("--path {}: not a directory", path.display());
            }
            paths.push(std::fs::canonicalize(path)?);
        }
        let output = args
            .output
            .clone()
            .unwrap_or_else(|| file.with_extension("wasm"));
        if output.is_dir() {
            bail!("-o {}: is a directory", output.display());
        }
        Ok(Plan {
            shown,
            module: module_name(&file_name),
            file_name,
            dir,
            handler: args.handler.clone(),
            paths,
            output,
        })
    }

    /// Where the toolchain writes, before the rename.
    fn partial_output(&self) -> PathBuf {
        let name = self
            .output
            .file_name()
            .map_or_else(|| "plugin".into(), |n| n.to_string_lossy().into_owned());
        self.output.with_file_name(format!(".{name}.partial"))
    }

    /// The module componentize-py wraps: it imports the author's file,
    /// picks the handler class and exports the bridge's `IncomingHandler`.
    fn app_module(&self) -> String {
        let literal = python_string;
        format!(
            r#""""Generated by wasmhttpd build: serves {file} as a wasi:http plugin."""
import importlib.util
import os
import sys

import wasmhttpd_bridge as bridge


def load():
    shown = {shown}
    name = {module}
    for entry in sys.path:
        path = os.path.join(entry, {file})
        if os.path.isfile(path):
            break
    else:
        bridge.report_build_error(shown + ": not found on the build's path")
    if name in sys.modules:
        name = "wasmhttpd_handler"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        bridge.report_build_error(bridge.describe_import_error(shown, error))
    handler = bridge.find_handler(module, shown, {handler})
    # Tells wasmhttpd build which class it chose.
    try:
        with open(os.path.join(os.path.dirname(bridge.__file__), {class_file}), "w") as f:
            f.write(handler.__name__)
    except OSError:
        pass
    return handler


IncomingHandler = bridge.make_incoming_handler(load())
"#,
            file = literal(&self.file_name),
            shown = literal(&self.shown),
            module = literal(&self.module),
            handler = self.handler.as_deref().map_or("None".into(), literal),
            class_file = literal(CLASS_FILE),
        )
    }
}

/// `text` as a Python string literal.
fn python_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\U{:08x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The name the author's file is imported as: its stem, made an
/// identifier (`my-handler.py` is `my_handler`).
fn module_name(file_name: &str) -> String {
    let stem = file_name.strip_suffix(".py").unwrap_or(file_name);
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The last line of the toolchain's output that says something.
fn last_words(said: &str) -> String {
    said.lines()
        .map(str::trim)
        .rfind(|line| {
            !line.is_empty()
                && !line.starts_with("Stack backtrace")
                && !line.starts_with(|c: char| c.is_ascii_digit())
                && !line.starts_with("at ")
        })
        .unwrap_or("no output")
        .to_string()
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create(parent: &Path) -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = parent.join(format!("{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_identifiers() {
        assert_eq!(module_name("get.py"), "get");
        assert_eq!(module_name("my-handler.py"), "my_handler");
        assert_eq!(module_name("2fa.py"), "_2fa");
    }

    #[test]
    fn the_app_module_quotes_what_it_is_given() {
        let plan = Plan {
            shown: "dir/it's \"here\".py".into(),
            file_name: "it's \"here\".py".into(),
            dir: PathBuf::from("/x"),
            module: module_name("it's \"here\".py"),
            handler: Some("Handler".into()),
            paths: Vec::new(),
            output: PathBuf::from("out.wasm"),
        };
        let app = plan.app_module();
        assert!(app.contains(r#"shown = "dir/it's \"here\".py""#), "{app}");
        assert!(
            app.contains(r#"find_handler(module, shown, "Handler")"#),
            "{app}"
        );
        assert_eq!(plan.partial_output(), PathBuf::from(".out.wasm.partial"));
    }

    #[test]
    fn the_toolchains_last_words_skip_its_backtrace() {
        let said = "Traceback\nError: cannot parse WIT\n\nStack backtrace:\n   0: anyhow\n             at src/x.rs:1\n";
        assert_eq!(last_words(said), "Error: cannot parse WIT");
    }
}
