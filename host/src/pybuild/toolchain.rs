//! The Python toolchain `wasmhttpd build` drives: componentize-py (from
//! PATH when it is the pinned version, otherwise installed once into the
//! cache from PyPI) and legacy-cgi (the maintained fork of the `cgi` module
//! Python 3.13 removed), installed beside it.
//!
//! Installing takes a lock on the cache's toolchain directory, so that
//! builds started together install once; a directory is used only once its
//! install has finished (a marker file says so).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The componentize-py release the bridge is written against (CPython 3.14
/// inside).
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// The legacy-cgi release bundled for `import cgi`.
pub const LEGACY_CGI: &str = "2.6.4";
/// Written last into a directory whose install finished.
const DONE: &str = ".installed";

/// What a build runs.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The `componentize-py` executable.
    pub componentize_py: PathBuf,
    /// A directory holding `cgi.py` and `cgitb.py`.
    pub legacy_cgi: PathBuf,
}

/// Finds the toolchain, installing what is missing under `dir`.
pub fn find_or_install(dir: &Path) -> anyhow::Result<Toolchain> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _lock = Lock::take(&dir.join(".lock"))?;
    let venv = dir.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let componentize_py = match on_path() {
        Some(found) => found,
        None => {
            if !venv.join(DONE).is_file() {
                install_componentize_py(&venv)?;
            }
            venv.join("bin/componentize-py")
        }
    };
    let legacy_cgi = dir.join(format!("legacy-cgi-{LEGACY_CGI}"));
    if !legacy_cgi.join(DONE).is_file() {
        install_legacy_cgi(&legacy_cgi, &venv)?;
    }
    Ok(Toolchain {
        componentize_py,
        legacy_cgi,
    })
}

/// `componentize-py` on PATH, if it is the pinned version.
fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("componentize-py"))
        .find(|candidate| candidate.is_file())?;
    let output = Command::new(&found).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&output.stdout);
    if version.split_whitespace().nth(1) == Some(COMPONENTIZE_PY) {
        return Some(found);
    }
    eprintln!(
        "wasmhttpd build: {} is version {}, not {COMPONENTIZE_PY}: using the pinned one",
        found.display(),
        version.split_whitespace().nth(1).unwrap_or("unknown")
    );
    None
}

fn install_componentize_py(venv: &Path) -> anyhow::Result<()> {
    eprintln!(
        "wasmhttpd build: installing componentize-py {COMPONENTIZE_PY} from PyPI into {} (once)...",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(venv);
    run(
        Command::new("python3").arg("-m").arg("venv").arg(venv),
        "python3 -m venv (wasmhttpd build needs python3 with venv, or componentize-py on PATH)",
    )?;
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY}")),
        "pip install componentize-py",
    )?;
    mark_done(venv)
}

fn install_legacy_cgi(target: &Path, venv: &Path) -> anyhow::Result<()> {
    eprintln!("wasmhttpd build: installing legacy-cgi {LEGACY_CGI} from PyPI (once)...");
    let _ = std::fs::remove_dir_all(target);
    let pip = venv.join("bin/pip");
    let mut command = if pip.is_file() {
        Command::new(pip)
    } else {
        let mut command = Command::new("python3");
        command.args(["-m", "pip"]);
        command
    };
    run(
        command
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
            ])
            .arg(target)
            .arg(format!("legacy-cgi=={LEGACY_CGI}")),
        "pip install legacy-cgi",
    )?;
    mark_done(target)
}

fn mark_done(dir: &Path) -> anyhow::Result<()> {
    std::fs::write(dir.join(DONE), "")
        .with_context(|| format!("cannot write {}", dir.join(DONE).display()))
}

/// Runs an install step; its failure is its last line of output.
fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no output");
    bail!("{what} failed: {}", last.trim())
}

/// An exclusive lock on a file, released when dropped.
struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> anyhow::Result<Lock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&self.0, rustix::fs::FlockOperation::Unlock);
    }
}
