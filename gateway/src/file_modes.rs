//! Files only the gateway's user may read (issue 18, finding 8): the
//! store's directory and files, backups and restores. The key files refuse
//! to load when others can read them (an operator must look at a leaked
//! key); the store and backups are fixed instead, with a warning — they
//! were made by an earlier version with the default umask, and refusing to
//! start would change nothing about who has read them already.

use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// `path` as a directory of mode 0700 (created if missing); a looser one
/// is tightened with a warning. The directory may be reached through a
/// symbolic link (an operator's `/var/lib/hpki` → a data volume): the
/// mode is the target's.
pub fn private_dir(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)?;
    set_if_loose(path, fs::metadata(path)?.permissions().mode(), 0o700)
}

/// `path` as a file of mode 0600: created empty if missing, tightened with
/// a warning if looser.
pub fn private_file(path: &Path) -> io::Result<()> {
    match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten(path, 0o600),
        Err(e) => Err(e),
    }
}

/// Tightens an existing `path` to `mode` if group or others have any
/// access; a missing one is left missing.
pub fn tighten_if_present(path: &Path, mode: u32) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => tighten(path, mode),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other(format!(
            "{} is a symbolic link; the gateway's files must be its own",
            path.display()
        )));
    }
    set_if_loose(path, meta.permissions().mode(), mode)
}

/// Sets `mode` on `path` when its mode `was` gives group or others any
/// access, with a warning.
fn set_if_loose(path: &Path, was: u32, mode: u32) -> io::Result<()> {
    let was = was & 0o777;
    if was & 0o077 != 0 {
        tracing::warn!(path = %path.display(), was = format!("{was:o}"), now = format!("{mode:o}"), "others could read this; mode tightened");
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The mode bits of `path` (for tests and checks).
pub fn mode(path: &Path) -> io::Result<u32> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_directories_and_files_are_tightened_and_new_ones_are_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data");
        fs::create_dir(&dir).expect("dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let loose = dir.join("identity.db");
        fs::write(&loose, b"x").expect("write");
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).expect("chmod");
        private_dir(&dir).expect("dir");
        private_file(&loose).expect("file");
        private_file(&dir.join("health.db")).expect("new file");
        assert_eq!(mode(&dir).expect("mode"), 0o700);
        assert_eq!(mode(&loose).expect("mode"), 0o600);
        assert_eq!(mode(&dir.join("health.db")).expect("mode"), 0o600);
        assert_eq!(fs::read(&loose).expect("read"), b"x", "the content is kept");
        // A planted link is refused, not followed.
        std::os::unix::fs::symlink(&loose, dir.join("link.db")).expect("symlink");
        assert!(private_file(&dir.join("link.db")).is_err());
        // A data directory reached through a link is the operator's layout.
        let linked = root.path().join("linked");
        std::os::unix::fs::symlink(&dir, &linked).expect("symlink");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).expect("chmod");
        private_dir(&linked).expect("a linked directory");
        assert_eq!(mode(&dir).expect("mode"), 0o700);
    }

    /// The findings' test: a store opened on a world-readable directory
    /// and database is made private, and a backup and its restore are
    /// private from the start.
    #[tokio::test]
    async fn the_store_its_backups_and_restores_are_readable_by_the_gateway_only() {
        use crate::store::{Store, StoreConfig};
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data");
        fs::create_dir(&dir).expect("dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let config = StoreConfig::Sqlite { dir: dir.clone() };
        drop(Store::open(&config).await.expect("store"));
        fs::set_permissions(dir.join("identity.db"), fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = Store::open(&config).await.expect("store");
        store.add_institution("Kanazawa Clinic", None, 0).await.expect("write");
        assert_eq!(mode(&dir).expect("mode"), 0o700);
        for name in fs::read_dir(&dir).expect("list").map(|e| e.expect("entry").path()) {
            assert_eq!(mode(&name).expect("mode"), 0o600, "{}", name.display());
        }
        let out = root.path().join("backup");
        crate::ops::backup::full(&store, &config, &out, "test").await.expect("backup");
        assert_eq!(mode(&out).expect("mode"), 0o700);
        for name in fs::read_dir(&out).expect("list").map(|e| e.expect("entry").path()) {
            assert_eq!(mode(&name).expect("mode") & 0o077, 0, "{}", name.display());
        }
        let restored = root.path().join("restored");
        crate::ops::backup::restore(&out, None, &restored).expect("restore");
        assert_eq!(mode(&restored).expect("mode"), 0o700);
    }
}
