//! The on-disk cache of compiled components: `<dir>/<sha256 of the wasm>-<wasmtime
//! version>.cwasm`, written atomically. Any cache failure falls back to
//! compiling, with a warning; the cache never makes a load fail.
//!
//! A compiled artifact is native code that wasmtime maps and runs without
//! checking it, so the cache must hold only what this host compiled. Every
//! entry ends with an HMAC-SHA256 tag over the component's digest and the
//! artifact, keyed by a random key the host creates in the cache directory
//! (0600, the directory 0700) on first use. A file that a plugin, a SQL model
//! or another tenant wrote or swapped in, and any file from before the tags,
//! fails the check and is compiled again. The tag is checked on the bytes in
//! memory that are then deserialized, so the file cannot change in between.
//!
//! The tags are only as good as the key, so the cache is used only while
//! its directory (after symlinks) is this user's and no one else may write
//! it, and the key file is this user's, not a symlink, and no one else may
//! read or write it (`0600`): a directory someone else could write may hold
//! a key they planted. Otherwise every plugin is compiled, with a warning
//! that says how to fix the directory.
//!
//! The cache is bounded: a load marks its entry used (its mtime), and after
//! each store the entries unused for [`MAX_UNUSED`] go, then the least
//! recently used ones until the directory holds at most [`MAX_CACHE_BYTES`]
//! (every rebuilt plugin is a new entry; a pod's state volume is small).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The wasmtime version compiled artifacts are tied to (the cache key's suffix).
const WASMTIME_VERSION: &str = "48.0.8";
/// The key's file name in the cache directory.
const KEY_FILE: &str = "cache.key";
const KEY_BYTES: usize = 32;
const TAG_BYTES: usize = 32;
/// Most bytes of compiled plugins one cache directory keeps.
const MAX_CACHE_BYTES: u64 = 512 << 20;
/// Entries unused for this long are removed.
const MAX_UNUSED: Duration = Duration::from_secs(30 * 24 * 3600);

pub(super) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{WASMTIME_VERSION}.cwasm"))
    }

    /// The artifact cached for the component with digest `sha256`, if there
    /// is one and its tag proves that this host wrote it.
    pub(super) fn load(&self, sha256: &str) -> Option<Vec<u8>> {
        let path = self.path_for(sha256);
        if !path.is_file() {
            return None;
        }
        let key = match private(&self.dir).and_then(|()| self.key()) {
            Ok(key) => key,
            Err(err) => {
                tracing::warn!(dir = %self.dir.display(), error = %err,
                    "Cannot read the compile cache's key; compiling the plugin instead.");
                return None;
            }
        };
        let mut bytes = std::fs::read(&path).ok()?;
        if bytes.len() < TAG_BYTES {
            return None;
        }
        let tag = bytes.split_off(bytes.len() - TAG_BYTES);
        if mac(&key, sha256, &bytes).verify_slice(&tag).is_err() {
            tracing::warn!(path = %path.display(),
                "Ignoring a compiled plugin in the cache that this host did not write (its tag does not match); recompiling.");
            return None;
        }
        // Used now: the last to go when the cache is trimmed (best effort).
        if let Ok(file) = std::fs::File::options().write(true).open(&path) {
            let _ = file.set_modified(SystemTime::now());
        }
        Some(bytes)
    }

    /// Writes `artifact` for the component with digest `sha256`, tagged.
    pub(super) fn store(&self, sha256: &str, artifact: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        private(&self.dir)?;
        let key = self.key()?;
        let tag = mac(&key, sha256, artifact).finalize().into_bytes();
        let path = self.path_for(sha256);
        let tmp = self.dir.join(format!(".{sha256}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut file = private_file(&tmp)?;
            file.write_all(artifact)?;
            file.write_all(&tag)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        if result.is_ok() {
            self.trim(&path, MAX_CACHE_BYTES, MAX_UNUSED);
        }
        result
    }

    /// Removes the entries (other than `keep`) unused for `max_unused`, then
    /// the least recently used until the entries total at most `max_bytes`.
    /// Best effort: an entry another host removes first is skipped, and one
    /// it is reading stays readable (the file is unlinked, not truncated).
    fn trim(&self, keep: &Path, max_bytes: u64, max_unused: Duration) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let now = SystemTime::now();
        let mut kept: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if path.extension().is_none_or(|e| e != "cwasm") || !meta.is_file() || path == keep {
                continue;
            }
            let used = meta.modified().unwrap_or(now);
            if now.duration_since(used).is_ok_and(|age| age > max_unused) {
                let _ = std::fs::remove_file(&path);
            } else {
                kept.push((used, meta.len(), path));
            }
        }
        let mut total: u64 =
            kept.iter().map(|(_, len, _)| len).sum::<u64>() + std::fs::metadata(keep).map_or(0, |m| m.len());
        kept.sort();
        for (_, len, path) in kept {
            if total <= max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }

    /// The cache's key, created on first use. Two hosts that start at once
    /// race on a hard link, which only one wins; the other reads its key.
    fn key(&self) -> std::io::Result<[u8; KEY_BYTES]> {
        let path = self.dir.join(KEY_FILE);
        if let Some(bytes) = read_private(&path)?
            && let Ok(key) = <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
        {
            return Ok(key);
        }
        create_private_dir(&self.dir)?;
        let mut key = [0u8; KEY_BYTES];
        getrandom::fill(&mut key).map_err(|e| std::io::Error::other(format!("no randomness for the key: {e}")))?;
        let tmp = self.dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
        let mut file = private_file(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
        drop(file);
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = read_private(&path)?.unwrap_or_default();
                <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
                    .map_err(|_| std::io::Error::other(format!("{} is not a cache key", path.display())))
            }
            Err(e) => Err(e),
        }
    }
}

fn mac(key: &[u8; KEY_BYTES], sha256: &str, artifact: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(sha256.as_bytes());
    mac.update(&[0]);
    mac.update(WASMTIME_VERSION.as_bytes());
    mac.update(&[0]);
    mac.update(artifact);
    mac
}

/// Fails unless `dir` (after symlinks) is a directory of this user that no
/// one else may write; the error says how to fix it.
fn private(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir)?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
            return Err(std::io::Error::other(format!(
                "{} is not a directory of this user that only it may write (owner {}, mode {:o}): anyone who can \
                 write it could plant the key that vouches for compiled code; make it owned by uid {me} and \
                 `chmod 700`, and delete its {KEY_FILE}",
                dir.display(),
                meta.uid(),
                meta.mode() & 0o7777,
            )));
        }
    }
    Ok(())
}

/// The bytes of the private file `path` (this user's, `0600` or narrower,
/// not a symlink), or `None` if there is none.
fn read_private(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(std::io::Error::other(format!("cannot open {}: {e}", path.display()))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        // SAFETY: geteuid has no preconditions.
        if !meta.is_file() || meta.uid() != unsafe { libc::geteuid() } || meta.mode() & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "{} is not a private file of this user (mode {:o}); delete it",
                path.display(),
                meta.mode() & 0o7777
            )));
        }
    }
    let mut bytes = Vec::new();
    file.take(1 << 10).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_drops_unused_then_least_recently_used_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let day = Duration::from_secs(24 * 3600);
        let now = SystemTime::now();
        let mut paths = Vec::new();
        for (i, age_days) in [40u64, 3, 2, 1].into_iter().enumerate() {
            let sha = format!("{i:064}");
            cache.store(&sha, &[0u8; 100]).unwrap();
            let path = cache.path_for(&sha);
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(now - day * age_days as u32).unwrap();
            paths.push(path);
        }
        // Each entry is 100 bytes and a 32-byte tag. The 40-day-old one is
        // unused too long; then room for two more besides the new one.
        let newest = cache.dir.join("new.cwasm");
        std::fs::write(&newest, [0u8; 132]).unwrap();
        cache.trim(&newest, 3 * 132, Duration::from_secs(30 * 24 * 3600));
        let left: Vec<bool> = paths.iter().map(|p| p.exists()).collect();
        assert_eq!(left, [false, false, true, true], "the oldest went first");
        assert!(newest.exists() && dir.path().join("cache").join(KEY_FILE).exists());
        // A load marks an entry used: it outlives an older one.
        assert!(cache.load(&format!("{:064}", 2)).is_some());
        cache.trim(&newest, 2 * 132, Duration::from_secs(30 * 24 * 3600));
        assert_eq!([paths[2].exists(), paths[3].exists()], [true, false]);
    }

    #[test]
    fn version_constant_matches_the_linked_wasmtime() {
        // Keeps the cache key honest when wasmtime is upgraded.
        let lock = include_str!("../../../Cargo.lock");
        let needle = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"");
        assert!(lock.contains(&needle), "update WASMTIME_VERSION to the wasmtime in Cargo.lock");
    }

    /// What the host wrote reads back; a swapped or edited file, or one
    /// tagged under another key, does not.
    #[test]
    fn only_entries_this_host_wrote_are_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        assert_eq!(cache.load(&a), None);
        cache.store(&a, b"compiled a").unwrap();
        cache.store(&b, b"compiled b").unwrap();
        assert_eq!(cache.load(&a).as_deref(), Some(&b"compiled a"[..]));

        // Another component's entry under this digest's name.
        std::fs::copy(cache.path_for(&b), cache.path_for(&a)).unwrap();
        assert_eq!(cache.load(&a), None);
        // An artifact edited in place, tag kept.
        cache.store(&a, b"compiled a").unwrap();
        let mut bytes = std::fs::read(cache.path_for(&a)).unwrap();
        bytes[0] ^= 1;
        std::fs::write(cache.path_for(&a), &bytes).unwrap();
        assert_eq!(cache.load(&a), None);
        // A file written without the key, as a plugin or model would have to.
        std::fs::write(cache.path_for(&a), [b"evil".as_slice(), &[0u8; TAG_BYTES]].concat()).unwrap();
        assert_eq!(cache.load(&a), None);
        // A new key (the key file replaced) invalidates every entry.
        cache.store(&a, b"compiled a").unwrap();
        std::fs::remove_file(dir.path().join("cache").join(KEY_FILE)).unwrap();
        assert_eq!(cache.load(&a), None);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            cache.store(&a, b"compiled a").unwrap();
            assert_eq!(mode(&dir.path().join("cache")), 0o700);
            assert_eq!(mode(&dir.path().join("cache").join(KEY_FILE)), 0o600);
            assert_eq!(mode(&cache.path_for(&a)), 0o600);
        }
    }

    /// A directory or key file someone else could have written is not
    /// trusted: nothing is loaded from it and nothing stored in it.
    #[cfg(unix)]
    #[test]
    fn a_cache_others_could_write_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        let cache = CompileCache::new(cache_dir.clone());
        let a = "a".repeat(64);
        cache.store(&a, b"compiled a").unwrap();
        assert!(cache.load(&a).is_some());

        let chmod = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        chmod(&cache_dir, 0o777);
        assert_eq!(cache.load(&a), None, "a world-writable cache was trusted");
        let err = cache.store(&a, b"compiled a").unwrap_err().to_string();
        assert!(
            err.contains("is not a directory of this user that only it may write") && err.contains("mode 777"),
            "{err}"
        );
        chmod(&cache_dir, 0o700);
        assert!(cache.load(&a).is_some());

        // A key file others may read, or a symlink in its place.
        let key = cache_dir.join(KEY_FILE);
        chmod(&key, 0o644);
        assert_eq!(cache.load(&a), None);
        let err = cache.store(&a, b"compiled a").unwrap_err().to_string();
        assert!(err.contains("is not a private file of this user (mode 644)"), "{err}");
        let elsewhere = dir.path().join("planted.key");
        std::fs::rename(&key, &elsewhere).unwrap();
        chmod(&elsewhere, 0o600);
        std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
        assert_eq!(cache.load(&a), None, "a symlinked key was trusted");
        assert!(cache.store(&a, b"compiled a").is_err());

        // The directory behind a symlink is what counts.
        std::fs::remove_file(&key).unwrap();
        let real = dir.path().join("real");
        std::fs::rename(&cache_dir, &real).unwrap();
        std::os::unix::fs::symlink(&real, &cache_dir).unwrap();
        cache.store(&a, b"compiled a").unwrap();
        assert!(cache.load(&a).is_some());
        chmod(&real, 0o775);
        assert_eq!(cache.load(&a), None, "a group-writable cache behind a symlink was trusted");
    }
}
