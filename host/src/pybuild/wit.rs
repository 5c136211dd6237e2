//! The wasi:http 0.2 WIT that a Python plugin is built against, carried in
//! the binary (componentize-py brings none): the files of the
//! `wasmtime-wasi-http` crate the server links, so that what a plugin
//! imports is exactly what the server provides. `run-tests` checks that
//! `host/wit/` still matches that crate.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The world a Python handler's component targets.
pub const WORLD: &str = "wasi:http/proxy@0.2.12";

/// The WIT files, by path below the package directory.
const FILES: &[(&str, &str)] = &[
    (
        "world.wit",
        include_str!("../../wit/wasi-http-0.2/world.wit"),
    ),
    (
        "deps/cli.wit",
        include_str!("../../wit/wasi-http-0.2/deps/cli.wit"),
    ),
    (
        "deps/clocks.wit",
        include_str!("../../wit/wasi-http-0.2/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../wit/wasi-http-0.2/deps/filesystem.wit"),
    ),
    (
        "deps/http.wit",
        include_str!("../../wit/wasi-http-0.2/deps/http.wit"),
    ),
    (
        "deps/io.wit",
        include_str!("../../wit/wasi-http-0.2/deps/io.wit"),
    ),
    (
        "deps/random.wit",
        include_str!("../../wit/wasi-http-0.2/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../wit/wasi-http-0.2/deps/sockets.wit"),
    ),
];

/// Writes the WIT under `dir` (once per version of the binary: the files
/// are compared, not trusted) and returns the package directory.
pub fn write(dir: &Path) -> anyhow::Result<PathBuf> {
    let package = dir.join(concat!("wit-", env!("CARGO_PKG_VERSION")));
    let current = FILES.iter().all(|(name, text)| {
        std::fs::read(package.join(name)).is_ok_and(|found| found == text.as_bytes())
    });
    if current {
        return Ok(package);
    }
    // Written beside, then renamed into place: a build running at the same
    // time sees the old files or the new, never half of them.
    let staging = dir.join(format!(".wit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    for (name, text) in FILES {
        let path = staging.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let _ = std::fs::remove_dir_all(&package);
    if let Err(error) = std::fs::rename(&staging, &package) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another build put the same files there first.
        if !package.join("world.wit").is_file() {
            return Err(error).with_context(|| format!("cannot write {}", package.display()));
        }
    }
    Ok(package)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_the_one_the_files_define() {
        let http = FILES
            .iter()
            .find(|(name, _)| *name == "deps/http.wit")
            .map(|(_, text)| *text)
            .expect("http.wit");
        let version = WORLD.rsplit('@').next().expect("version");
        assert!(http.contains(&format!("package wasi:http@{version};")));
        assert!(http.contains("world proxy {"));
    }

    #[test]
    fn writes_once_and_rewrites_what_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let package = write(dir.path()).expect("write");
        let http = package.join("deps/http.wit");
        assert!(http.is_file());
        std::fs::write(&http, "changed").expect("change");
        assert_eq!(write(dir.path()).expect("rewrite"), package);
        assert_ne!(std::fs::read(&http).expect("read"), b"changed");
    }
}
