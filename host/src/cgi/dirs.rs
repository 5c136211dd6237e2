//! Which URL paths are CGI directories, and which request paths fall in them.
//!
//! As Python's `CGIHTTPRequestHandler.is_cgi`: a request is for a CGI
//! script when its decoded, normalised path starts with a CGI directory
//! followed by `/` (`/cgi-bin/x`, `/cgi-bin/`; not `/cgi-bin`, which is the
//! directory itself and is served as static files, nor `/cgi-binx`). Where
//! several directories match, the shortest wins, as in Python.

use crate::safe_path::UrlPath;

/// The CGI directories that `--cgi` enables when `--cgi-dir` names none.
pub const DEFAULT_DIRS: [&str; 2] = ["/cgi-bin", "/htbin"];

/// The configured CGI directories, as normalised URL paths (`/cgi-bin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgiDirs {
    dirs: Vec<String>,
}

impl CgiDirs {
    /// The directories as given on the command line (`/cgi-bin`,
    /// `/app/bin/`), normalised; an error names one that is not a URL path.
    pub fn new<S: AsRef<str>>(dirs: &[S]) -> Result<CgiDirs, String> {
        let mut normalised = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let dir = dir.as_ref();
            if !dir.starts_with('/') {
                return Err(format!(
                    "CGI directory {dir:?} is not a URL path (it must start with /, like /cgi-bin)"
                ));
            }
            let path = UrlPath::parse(dir.as_bytes())
                .map_err(|e| format!("CGI directory {dir:?}: {e}"))?;
            if std::str::from_utf8(path.as_bytes()).is_err() {
                return Err(format!("CGI directory {dir:?} is not UTF-8 once decoded"));
            }
            if path.as_bytes().is_empty() {
                return Err(format!(
                    "CGI directory {dir:?} is the whole site: name a directory, like /cgi-bin"
                ));
            }
            let display = path.display();
            let dir = display.trim_end_matches('/').to_string();
            if !normalised.contains(&dir) {
                normalised.push(dir);
            }
        }
        Ok(CgiDirs { dirs: normalised })
    }

    /// The directories, normalised, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.dirs.iter().map(String::as_str)
    }

    /// The CGI directory that `path` (decoded, normalised) falls in.
    pub fn matching(&self, path: &str) -> Option<&str> {
        self.dirs
            .iter()
            .filter(|dir| {
                path.strip_prefix(dir.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            })
            .min_by_key(|dir| dir.len())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_a_cgi_directory_match() {
        let dirs = CgiDirs::new(&DEFAULT_DIRS).expect("dirs");
        assert_eq!(dirs.matching("/cgi-bin/x.sh"), Some("/cgi-bin"));
        assert_eq!(dirs.matching("/cgi-bin/sub/x.sh/info"), Some("/cgi-bin"));
        assert_eq!(dirs.matching("/cgi-bin/"), Some("/cgi-bin"));
        assert_eq!(dirs.matching("/htbin/x"), Some("/htbin"));
        assert_eq!(dirs.matching("/cgi-bin"), None, "the directory itself");
        assert_eq!(dirs.matching("/cgi-binx/y"), None);
        assert_eq!(dirs.matching("/x/cgi-bin/y"), None);
        assert_eq!(dirs.matching("/"), None);
    }

    #[test]
    fn the_shortest_directory_wins_as_in_python() {
        let dirs = CgiDirs::new(&["/a/b", "/a"]).expect("dirs");
        assert_eq!(dirs.matching("/a/b/c"), Some("/a"));
        assert_eq!(dirs.matching("/a/c"), Some("/a"));
    }

    #[test]
    fn directories_are_normalised_and_checked() {
        let dirs =
            CgiDirs::new(&["/sub/dir/cgi-bin/", "/x/./y/../z", "/sub/dir/cgi-bin"]).expect("dirs");
        assert_eq!(
            dirs.iter().collect::<Vec<_>>(),
            ["/sub/dir/cgi-bin", "/x/z"]
        );
        for bad in ["cgi-bin", "/", "/..", "", "/a%2fb", "/%FF"] {
            assert!(CgiDirs::new(&[bad]).is_err(), "{bad:?}");
        }
    }
}
