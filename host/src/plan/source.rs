//! Where an ingest step may read its `source`: a regular file that, once
//! every symlink is resolved, lies inside the project directory or a root
//! the platform allows (`sources.allowed_roots`), and never inside the
//! secrets or state directory. Data engineers write floe.yaml; the mounted
//! platform credentials and the catalog must stay out of their tables.
//!
//! The check runs when the plan is built (for sources without
//! `{partition}`) and again when the step opens its file, which is opened
//! without blocking and then checked through its descriptor: a FIFO or a
//! device is refused before a read could hang on it, and a symlink swapped
//! in after the check is not followed.

use std::fs::{File, FileType};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The directories a source may and may not resolve into, canonical.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceRoots {
    /// The project directory, then the platform's `sources.allowed_roots`.
    pub allowed: Vec<PathBuf>,
    /// Never read, even inside an allowed root: (what, where).
    pub protected: Vec<(String, PathBuf)>,
}

/// Why a source cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceProblem {
    #[error("source file `{path}` does not exist")]
    Missing { path: String },
    #[error("source `{path}` resolves to `{resolved}`, outside {allowed}")]
    Outside { path: String, resolved: String, allowed: String },
    #[error("source `{path}` resolves to `{resolved}`, inside {what}, which no step may read")]
    Protected { path: String, resolved: String, what: String },
    #[error("source `{path}` is {kind}, not a regular file")]
    NotAFile { path: String, kind: &'static str },
    #[error("cannot read source `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl SourceProblem {
    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            SourceProblem::Missing { .. } => "paths are relative to the directory of floe.yaml",
            SourceProblem::Outside { .. } => {
                "put the file inside the project directory, or ask the platform team to list its folder in \
                 `sources.allowed_roots` of platform.yaml"
            }
            SourceProblem::Protected { .. } => "point `source` at a data file",
            SourceProblem::NotAFile { .. } => "point `source` at a regular file",
            SourceProblem::Io { .. } => "check the file's permissions",
        }
    }

    /// Whether a later attempt may succeed (the file may yet arrive or
    /// become readable); the others are configuration errors.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceProblem::Missing { .. } | SourceProblem::Io { .. })
    }
}

impl SourceRoots {
    /// `project` and `allowed_roots` may read; `protected` may not. Paths
    /// that do not exist yet are kept as given (made absolute).
    pub fn new(project: &Path, allowed_roots: &[PathBuf], protected: Vec<(String, PathBuf)>) -> Self {
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| std::path::absolute(p).unwrap_or(p.into()));
        SourceRoots {
            allowed: std::iter::once(project)
                .chain(allowed_roots.iter().map(PathBuf::as_path))
                .map(canonical)
                .collect(),
            protected: protected.into_iter().map(|(what, p)| (what, canonical(&p))).collect(),
        }
    }

    /// The source's canonical path, if it may be read; its type is not checked.
    fn resolve(&self, path: &Path) -> Result<PathBuf, SourceProblem> {
        let shown = path.display().to_string();
        let resolved = path.canonicalize().map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => SourceProblem::Missing { path: shown.clone() },
            _ => SourceProblem::Io { path: shown.clone(), source },
        })?;
        if let Some((what, _)) = self.protected.iter().find(|(_, dir)| resolved.starts_with(dir)) {
            return Err(SourceProblem::Protected {
                path: shown,
                resolved: resolved.display().to_string(),
                what: what.clone(),
            });
        }
        if !self.allowed.iter().any(|root| resolved.starts_with(root)) {
            let mut roots = self.allowed.iter().map(|r| format!("`{}`", r.display()));
            let project = roots.next().unwrap_or_default();
            let others: Vec<String> = roots.collect();
            let allowed = if others.is_empty() {
                format!("the project directory {project}")
            } else {
                format!("the project directory {project} and the allowed roots {}", others.join(", "))
            };
            return Err(SourceProblem::Outside { path: shown, resolved: resolved.display().to_string(), allowed });
        }
        Ok(resolved)
    }

    /// Checks `path` without opening it: where it resolves, and that it is a
    /// regular file.
    pub fn check(&self, path: &Path) -> Result<(), SourceProblem> {
        let resolved = self.resolve(path)?;
        let metadata =
            resolved.metadata().map_err(|source| SourceProblem::Io { path: path.display().to_string(), source })?;
        regular(path, metadata.file_type())
    }

    /// Opens `path` for reading, if it may be read and is a regular file.
    pub fn open(&self, path: &Path) -> Result<File, SourceProblem> {
        let resolved = self.resolve(path)?;
        let io = |source| SourceProblem::Io { path: path.display().to_string(), source };
        // O_NONBLOCK: opening a FIFO does not wait for a writer; O_NOFOLLOW:
        // the resolved path's last part is not swapped for a symlink.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&resolved)
            .map_err(io)?;
        regular(path, file.metadata().map_err(io)?.file_type())?;
        Ok(file)
    }
}

fn regular(path: &Path, file_type: FileType) -> Result<(), SourceProblem> {
    let kind = if file_type.is_file() {
        return Ok(());
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(SourceProblem::NotAFile { path: path.display().to_string(), kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dir: &Path) -> SourceRoots {
        std::fs::create_dir_all(dir.join("project/data")).unwrap();
        std::fs::create_dir_all(dir.join("landing")).unwrap();
        std::fs::create_dir_all(dir.join("project/secrets")).unwrap();
        std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
        SourceRoots::new(
            &dir.join("project"),
            &[dir.join("landing")],
            vec![("the secrets directory".into(), dir.join("project/secrets"))],
        )
    }

    #[test]
    fn a_source_resolves_inside_the_project_or_an_allowed_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let roots = roots(dir.path());
        let project = dir.path().join("project");
        std::fs::write(project.join("data/a.csv"), "x\n").unwrap();
        std::fs::write(dir.path().join("landing/b.csv"), "x\n").unwrap();
        std::fs::write(dir.path().join("elsewhere/c.csv"), "x\n").unwrap();
        std::fs::write(project.join("secrets/token"), "s3cr3t").unwrap();
        assert!(roots.open(&project.join("data/a.csv")).is_ok());
        assert!(roots.open(&dir.path().join("landing/b.csv")).is_ok());
        for outside in [dir.path().join("elsewhere/c.csv"), project.join("../elsewhere/c.csv")] {
            let err = roots.open(&outside).unwrap_err();
            assert!(matches!(err, SourceProblem::Outside { .. }), "{err}");
            assert!(err.to_string().contains("outside the project directory"), "{err}");
        }
        // A symlink inside the project to a file outside it, or to a secret.
        std::os::unix::fs::symlink(dir.path().join("elsewhere/c.csv"), project.join("data/link.csv")).unwrap();
        assert!(matches!(roots.open(&project.join("data/link.csv")), Err(SourceProblem::Outside { .. })));
        std::os::unix::fs::symlink(project.join("secrets/token"), project.join("data/token.csv")).unwrap();
        let err = roots.open(&project.join("data/token.csv")).unwrap_err();
        assert!(err.to_string().contains("inside the secrets directory, which no step may read"), "{err}");
        assert!(!err.is_transient());
        let missing = roots.open(&project.join("data/none.csv")).unwrap_err();
        assert!(matches!(missing, SourceProblem::Missing { .. }) && missing.is_transient());
    }

    #[test]
    fn only_regular_files_are_read_and_a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let roots = roots(dir.path());
        let project = dir.path().join("project");
        let fifo = project.join("data/pipe.csv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, kind) in [(fifo, "a FIFO (named pipe)"), (project.join("data"), "a directory")] {
            let err = roots.open(&path).unwrap_err();
            assert_eq!(err.to_string(), format!("source `{}` is {kind}, not a regular file", path.display()));
            assert!(roots.check(&path).is_err());
        }
        let err = roots.check(Path::new("/dev/null")).unwrap_err();
        assert!(matches!(err, SourceProblem::Outside { .. }), "{err}");
    }
}
