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

use std::fs::File;
use std::io;
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
        })
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
        let fd = match self.confinement {
            Confinement::Kernel => rustix::fs::openat2(
                &self.dir,
                relative,
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
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

    #[test]
    fn follow_symlinks_allows_escapes() {
        let (_s, _o, root) = root_with_escape(true);
        assert!(root.open(Path::new("escape")).is_ok());
    }
}
