//! The served directory, as an open handle that requests resolve beneath.
//!
//! Every file a request names is opened relative to this handle with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel follows
//! symlinks that stay inside the root and refuses any that leads out of it
//! (`EXDEV`), with no window between a check and the open. With
//! `--follow-symlinks`, files open with a plain `openat`, as Python opens
//! them. On a kernel without `openat2` (before Linux 5.6) the same rule is
//! kept by canonicalising the path after opening and checking that it is
//! still under the canonical root.
//!
//! Files open with `O_NONBLOCK`, so that a FIFO planted in the root cannot
//! hang a worker: it opens at once and is then refused as not a regular file.
//!
//! A directory can be hidden (the plugins directory, whose sidecars may hold
//! secrets): nothing in it opens, however the request reaches it. The check
//! compares where the opened file really is, not the request's path
//! string: a path without symlinks is checked as it stands (one `openat2`
//! with `RESOLVE_NO_SYMLINKS`, the common case, costs nothing more), and a
//! path through a symlink, or any path under `--follow-symlinks`, by the
//! kernel's own name for the open file (`/proc/self/fd`). So a symlink to
//! the plugins directory, a served directory that is the plugins directory,
//! or one inside it, all show nothing of it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How files are opened beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confinement {
    /// The kernel confines resolution (`openat2`).
    Kernel,
    /// `openat`, then a canonical-path check (kernels without `openat2`).
    Checked,
    /// `--follow-symlinks`: symlinks may lead anywhere.
    None,
}

/// The root directory that static files are served from.
#[derive(Debug)]
pub struct Root {
    dir: File,
    canonical: PathBuf,
    confinement: Confinement,
    /// A canonical directory nothing is opened in.
    hidden: Option<Hidden>,
}

/// The hidden directory, and where it lies from the root.
#[derive(Debug)]
struct Hidden {
    dir: PathBuf,
    /// Its path beneath the root, `Some("")` when it is the root or holds
    /// it, `None` when it lies elsewhere.
    beneath: Option<PathBuf>,
}

const OPEN_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY);

impl Root {
    /// Opens `dir` (already canonical) as the root.
    pub fn open_dir(dir: &Path, follow_symlinks: bool) -> io::Result<Root> {
        let handle = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let confinement = if follow_symlinks {
            Confinement::None
        } else {
            match rustix::fs::openat2(
                &handle,
                ".",
                OPEN_FLAGS,
                Mode::empty(),
                ResolveFlags::BENEATH,
            ) {
                Ok(_) => Confinement::Kernel,
                Err(Errno::NOSYS | Errno::PERM) => Confinement::Checked,
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Root {
            dir: File::from(handle),
            canonical: dir.to_path_buf(),
            confinement,
            hidden: None,
        })
    }

    /// The same root, with nothing opened in `dir` (canonical) or beneath it.
    pub fn hiding(self, dir: Option<&Path>) -> Root {
        let hidden = dir.map(|dir| Hidden {
            dir: dir.to_path_buf(),
            beneath: if self.canonical.starts_with(dir) {
                Some(PathBuf::new())
            } else {
                dir.strip_prefix(&self.canonical)
                    .ok()
                    .map(Path::to_path_buf)
            },
        });
        Root { hidden, ..self }
    }

    /// The canonical path of the root.
    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// Opens `relative` (no `..`, no leading `/`) beneath the root.
    pub fn open(&self, relative: &Path) -> io::Result<File> {
        self.open_with(relative, OPEN_FLAGS)
    }

    /// The metadata of `relative` beneath the root, under the same rule as
    /// [`Root::open`], without needing read permission on it (an
    /// execute-only CGI program can still be found).
    pub fn metadata(&self, relative: &Path) -> io::Result<std::fs::Metadata> {
        self.open_with(relative, OFlags::PATH | OFlags::CLOEXEC)?
            .metadata()
    }

    fn open_with(&self, relative: &Path, flags: OFlags) -> io::Result<File> {
        let Some(hidden) = &self.hidden else {
            return self.open_confined(relative, flags, ResolveFlags::empty());
        };
        let hidden_err = || io::Error::from(io::ErrorKind::NotFound);
        if self.confinement == Confinement::Kernel {
            // Without a symlink on the way, the path is where the file is.
            match self.open_confined(relative, flags, ResolveFlags::NO_SYMLINKS) {
                Ok(_)
                    if hidden
                        .beneath
                        .as_ref()
                        .is_some_and(|b| relative.starts_with(b)) =>
                {
                    return Err(hidden_err());
                }
                Ok(file) => return Ok(file),
                Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {}
                Err(e) => return Err(e),
            }
        }
        let file = self.open_confined(relative, flags, ResolveFlags::empty())?;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        if real.starts_with(&hidden.dir) {
            return Err(hidden_err());
        }
        Ok(file)
    }

    fn open_confined(
        &self,
        relative: &Path,
        flags: OFlags,
        extra: ResolveFlags,
    ) -> io::Result<File> {
        let fd = match self.confinement {
            Confinement::Kernel => rustix::fs::openat2(
                &self.dir,
                relative,
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | extra,
            )?,
            Confinement::None => rustix::fs::openat(&self.dir, relative, flags, Mode::empty())?,
            Confinement::Checked => {
                let fd = rustix::fs::openat(&self.dir, relative, flags, Mode::empty())?;
                let real = self.canonical.join(relative).canonicalize()?;
                if !real.starts_with(&self.canonical) {
                    return Err(Errno::XDEV.into());
                }
                fd
            }
        };
        Ok(File::from(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_with_escape(follow: bool) -> (tempfile::TempDir, tempfile::TempDir, Root) {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "s").expect("write");
        let served = tempfile::tempdir().expect("tempdir");
        std::fs::write(served.path().join("inside"), "i").expect("write");
        symlink(outside.path().join("secret"), served.path().join("escape")).expect("symlink");
        symlink("inside", served.path().join("alias")).expect("symlink");
        let canonical = served.path().canonicalize().expect("canonical");
        let root = Root::open_dir(&canonical, follow).expect("root");
        (served, outside, root)
    }

    #[test]
    fn symlink_inside_the_root_is_followed() {
        let (_s, _o, root) = root_with_escape(false);
        assert!(root.open(Path::new("alias")).is_ok());
    }

    #[test]
    fn symlink_out_of_the_root_is_refused() {
        let (_s, _o, root) = root_with_escape(false);
        assert!(root.open(Path::new("escape")).is_err());
        assert!(root.metadata(Path::new("escape")).is_err());
        assert!(root.metadata(Path::new("alias")).is_ok_and(|m| m.is_file()));
        assert!(root.metadata(Path::new(".")).is_ok_and(|m| m.is_dir()));
    }

    /// The fallback for kernels without `openat2` keeps the same rule.
    fn checked(root: Root) -> Root {
        Root {
            confinement: Confinement::Checked,
            ..root
        }
    }

    #[test]
    fn checked_fallback_follows_symlinks_inside_and_refuses_escapes() {
        let (_s, _o, root) = root_with_escape(false);
        let root = checked(root);
        assert!(root.open(Path::new("inside")).is_ok());
        assert!(root.open(Path::new("alias")).is_ok());
        assert!(root.open(Path::new("escape")).is_err());
        assert!(root.open(Path::new("missing")).is_err());
    }

    /// A hidden directory: its path, a symlink to it or to a file in it,
    /// and a root that is the hidden directory all show nothing of it.
    #[test]
    fn nothing_opens_in_a_hidden_directory_however_it_is_reached() {
        let served = tempfile::tempdir().expect("tempdir");
        let top = served.path().canonicalize().expect("canonical");
        std::fs::create_dir(top.join("plugins")).expect("mkdir");
        std::fs::write(top.join("plugins/app.toml"), "secret").expect("write");
        std::fs::write(top.join("public"), "p").expect("write");
        symlink("plugins", top.join("alias")).expect("symlink");
        symlink("plugins/app.toml", top.join("sidecar")).expect("symlink");
        symlink("public", top.join("public-alias")).expect("symlink");
        let plugins = top.join("plugins");
        for follow in [false, true] {
            for root in [
                Root::open_dir(&top, follow).expect("root"),
                checked(Root::open_dir(&top, follow).expect("root")),
            ] {
                let root = root.hiding(Some(&plugins));
                for hidden in [
                    "plugins",
                    "plugins/app.toml",
                    "alias",
                    "alias/app.toml",
                    "sidecar",
                ] {
                    assert!(root.open(Path::new(hidden)).is_err(), "{hidden} ({follow})");
                    assert!(
                        root.metadata(Path::new(hidden)).is_err(),
                        "{hidden} ({follow})"
                    );
                }
                for shown in [".", "public", "public-alias"] {
                    assert!(root.open(Path::new(shown)).is_ok(), "{shown} ({follow})");
                }
            }
            // The served directory is the plugins directory.
            let root = Root::open_dir(&plugins, follow)
                .expect("root")
                .hiding(Some(&plugins));
            assert!(root.open(Path::new("app.toml")).is_err());
            assert!(root.open(Path::new(".")).is_err());
        }
    }

    #[test]
    fn follow_symlinks_allows_escapes() {
        let (_s, _o, root) = root_with_escape(true);
        assert!(root.open(Path::new("escape")).is_ok());
    }
}
