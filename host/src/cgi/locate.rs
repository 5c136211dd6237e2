//! A request path in a CGI directory → the script to run and its `PATH_INFO`.
//!
//! Python's lookup (`run_cgi`): below the CGI directory, each segment that
//! is a directory and is followed by `/` is descended into; the next
//! segment names the script, whatever it is; the rest of the path is
//! `PATH_INFO`. So `/cgi-bin/tools/report.sh/2024/q1` runs
//! `cgi-bin/tools/report.sh` with `PATH_INFO=/2024/q1`. Then:
//! - no such file → 404 `No such CGI script ('/cgi-bin/x')`;
//! - a directory, a FIFO, a device → 403 `CGI script is not a plain file`;
//! - a program without an execute bit → 403 `CGI script is not executable`
//!   (a `.wasm` file needs none: it is not executed, the sandbox runs it).
//!
//! Every lookup goes through the root handle, so a symlink out of the
//! served directory is "no such script", exactly as for static files; the
//! path was already freed of `..`, encoded slashes and NULs by `safe_path`.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::HttpError;
use crate::fs_root::Root;
use crate::safe_path::UrlPath;

/// A script found in a CGI directory.
#[derive(Debug)]
pub struct Located {
    /// `SCRIPT_NAME`: the URL path of the script (`/cgi-bin/tools/report.sh`).
    pub script_name: String,
    /// `PATH_INFO`: what follows it, decoded (`""` for nothing).
    pub path_info: String,
    /// The script's path relative to the served directory.
    pub relative: PathBuf,
    /// Its metadata (size, times and inode identify a version of it).
    pub metadata: Metadata,
}

impl Located {
    /// Whether the script is a WebAssembly module, run in the sandbox.
    pub fn is_wasm(&self) -> bool {
        self.relative.extension() == Some(OsStr::new("wasm"))
    }

    /// Whether it is a non-parsed-header script (`nph-NAME`), whose output
    /// is the whole HTTP response.
    pub fn is_nph(&self) -> bool {
        self.relative
            .file_name()
            .is_some_and(|name| name.as_bytes().starts_with(b"nph-"))
    }
}

/// Finds the script for `url`, which lies in CGI directory `dir` (as
/// `CgiDirs::matching` returned it: `/cgi-bin`).
pub fn locate(root: &Root, url: &UrlPath, dir: &str) -> Result<Located, HttpError> {
    let path = url.as_bytes();
    let dir_bytes = dir.as_bytes().get(1..).unwrap_or_default(); // without its `/`
    let dir_len = dir_bytes.len();
    // Routing matched the path as text; the bytes must match too.
    let inside = path.starts_with(dir_bytes) && path.get(dir_len).is_none_or(|&b| b == b'/');
    if !inside {
        return Err(HttpError::NoSuchScript(url.display()));
    }
    let rest = path.get(dir_len..).unwrap_or_default();
    let rest = rest.strip_prefix(b"/").unwrap_or(rest);
    // The segments after the directory; a trailing `/` is an empty last one.
    let mut segments: Vec<&[u8]> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(|&b| b == b'/').collect()
    };
    if url.trailing_slash || segments.is_empty() {
        segments.push(b"");
    }

    let mut current = path[..dir_len].to_vec();
    let mut index = 0;
    while index + 1 < segments.len() {
        let candidate = join(&current, segments[index]);
        match root.metadata(as_path(&candidate)) {
            Ok(meta) if meta.is_dir() => {
                current = candidate;
                index += 1;
            }
            _ => break,
        }
    }
    let script = segments[index];
    let relative = join(&current, script);
    let mut script_name = format!("/{}", String::from_utf8_lossy(&relative));
    if script.is_empty() {
        script_name.push('/');
    }
    let path_info = if index + 1 < segments.len() {
        format!(
            "/{}",
            String::from_utf8_lossy(&segments[index + 1..].join(&b'/'))
        )
    } else {
        String::new()
    };

    let metadata = match root.metadata(as_path(&relative)) {
        Ok(metadata) => metadata,
        Err(_) => return Err(HttpError::NoSuchScript(script_name)),
    };
    let located = Located {
        script_name,
        path_info,
        relative: as_path(&relative).to_path_buf(),
        metadata,
    };
    let forbidden = |why| {
        Err(HttpError::ScriptForbidden {
            script: located.script_name.clone(),
            why,
        })
    };
    if !located.metadata.is_file() {
        return forbidden("not a plain file");
    }
    if !located.is_wasm() && located.metadata.permissions().mode() & 0o111 == 0 {
        return forbidden("not executable");
    }
    Ok(located)
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut joined = Vec::with_capacity(dir.len() + 1 + name.len());
    joined.extend_from_slice(dir);
    if !name.is_empty() {
        joined.push(b'/');
        joined.extend_from_slice(name);
    }
    joined
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn site() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().expect("tempdir");
        let make = |relative: &str, mode: u32| {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        make("cgi-bin/run.sh", 0o755);
        make("cgi-bin/tools/deep/report.sh", 0o700);
        make("cgi-bin/plain.txt", 0o644);
        make("cgi-bin/app.wasm", 0o644);
        make("cgi-bin/nph-raw", 0o755);
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("x"), "").expect("write");
        symlink(outside.path().join("x"), dir.path().join("cgi-bin/escape")).expect("symlink");
        let root =
            Root::open_dir(&dir.path().canonicalize().expect("canonical"), false).expect("root");
        (dir, root)
    }

    fn find(root: &Root, path: &str) -> Result<Located, HttpError> {
        let url = UrlPath::parse(path.as_bytes()).expect("url");
        locate(root, &url, "/cgi-bin")
    }

    fn found(root: &Root, path: &str) -> (String, String) {
        let located = find(root, path).unwrap_or_else(|e| panic!("{path}: {e}"));
        (located.script_name, located.path_info)
    }

    #[test]
    fn the_first_segment_that_is_not_a_directory_is_the_script() {
        let (_d, root) = site();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(found(&root, "/cgi-bin/run.sh"), pair("/cgi-bin/run.sh", ""));
        assert_eq!(
            found(&root, "/cgi-bin/run.sh/a/b%20c"),
            pair("/cgi-bin/run.sh", "/a/b c")
        );
        assert_eq!(
            found(&root, "/cgi-bin/run.sh/"),
            pair("/cgi-bin/run.sh", "/")
        );
        assert_eq!(
            found(&root, "/cgi-bin/tools/deep/report.sh/x"),
            pair("/cgi-bin/tools/deep/report.sh", "/x")
        );
    }

    #[test]
    fn missing_scripts_are_404_and_non_scripts_403() {
        let (_d, root) = site();
        let status = |path: &str| find(&root, path).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            status("/cgi-bin/nothere.sh"),
            Err("No such CGI script ('/cgi-bin/nothere.sh')".into())
        );
        assert_eq!(
            status("/cgi-bin/tools/nothere/x"),
            Err("No such CGI script ('/cgi-bin/tools/nothere')".into())
        );
        assert_eq!(
            status("/cgi-bin/escape"),
            Err("No such CGI script ('/cgi-bin/escape')".into()),
            "a symlink out of the root"
        );
        assert_eq!(
            status("/cgi-bin/"),
            Err("CGI script is not a plain file ('/cgi-bin/')".into())
        );
        assert_eq!(
            status("/cgi-bin/tools"),
            Err("CGI script is not a plain file ('/cgi-bin/tools')".into())
        );
        assert_eq!(
            status("/cgi-bin/tools/"),
            Err("CGI script is not a plain file ('/cgi-bin/tools/')".into())
        );
        assert_eq!(
            status("/cgi-bin/plain.txt"),
            Err("CGI script is not executable ('/cgi-bin/plain.txt')".into())
        );
        assert_eq!(status("/cgi-bin/app.wasm"), Ok(()), "no execute bit needed");
        let elsewhere = UrlPath::parse(b"/cgi-binx/run.sh").expect("url");
        assert!(
            matches!(
                locate(&root, &elsewhere, "/cgi-bin"),
                Err(HttpError::NoSuchScript(_))
            ),
            "a path outside the directory is never looked up in it"
        );
    }

    #[test]
    fn kinds() {
        let (_d, root) = site();
        let wasm = find(&root, "/cgi-bin/app.wasm").expect("wasm");
        assert!(wasm.is_wasm() && !wasm.is_nph());
        let nph = find(&root, "/cgi-bin/nph-raw").expect("nph");
        assert!(nph.is_nph() && !nph.is_wasm());
    }
}
