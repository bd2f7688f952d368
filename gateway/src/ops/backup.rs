//! Backups of the embedded SQLite store (DATA-7): consistent online full
//! copies, differentials against a full backup, restore into an empty data
//! directory, and verification of a backup's checksums and audit chain.
//!
//! A snapshot is taken while the gateway runs: one connection holds the
//! write lock of both files (`BEGIN IMMEDIATE` covers every attached
//! database), so writers wait for a moment and the two files are copied as
//! one consistent state together with their WAL; the copies are then
//! checkpointed on their own into plain database files. Because SQLite
//! keeps pages at their page numbers, a differential holds only the pages
//! that differ from the full backup it names (and the new length).
//!
//! PostgreSQL is backed up with its own tools (`pg_basebackup` and WAL
//! archiving, see docs/backup.md); these functions refuse it.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::{Connection, Executor};

use crate::store::{Backend, Store, StoreConfig};

pub const FORMAT: &str = "hpki-gateway-backup/1";
pub const MANIFEST: &str = "manifest.json";
/// The store's files, in the order they are written and checked.
const FILES: [&str; 2] = ["identity.db", "health.db"];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "the store is PostgreSQL: back it up with pg_basebackup and WAL archiving, and record each base backup \
         with `backup record --pg-basebackup DIR` (docs/backup.md)"
    )]
    Postgres,
    #[error("{0} exists and is not empty")]
    NotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a backup of this gateway: {detail}")]
    NotABackup { path: PathBuf, detail: String },
    #[error("{path}: checksum mismatch: the backup is damaged or was changed")]
    Checksum { path: PathBuf },
    #[error("{0} is a differential backup; --since needs a full backup")]
    SinceNotFull(PathBuf),
    #[error("the full backup at {path} is not the one this differential was made from")]
    WrongBase { path: PathBuf },
    #[error("snapshot failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.into(), source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    Full,
    Diff,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub kind: BackupKind,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    pub operator: String,
    /// The full backup a differential was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRef>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseRef {
    /// Where the full backup was when the differential was made.
    pub path: PathBuf,
    /// SHA-256 of its manifest: identifies it wherever it is moved.
    pub manifest_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    /// Length and SHA-256 of the database file as it is restored.
    pub size: u64,
    pub sha256: String,
    /// The file in the backup directory holding the data: the whole
    /// database (full) or the changed pages, concatenated (differential).
    pub data: String,
    pub data_sha256: String,
    /// Differential only: the page size and the numbers (from 0) of the
    /// pages in `data`, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<u64>>,
}

/// A backup written: where, its manifest and the manifest's SHA-256 (the
/// checksum that goes into the audit log).
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub dir: PathBuf,
    pub manifest_sha256: String,
    pub manifest: Manifest,
}

fn sqlite_dir(config: &StoreConfig) -> Result<&Path, BackupError> {
    match config {
        StoreConfig::Sqlite { dir } => Ok(dir),
        StoreConfig::Postgres { .. } => Err(BackupError::Postgres),
    }
}

/// Creates `dir` or accepts it empty.
fn empty_dir(dir: &Path) -> Result<(), BackupError> {
    if dir.exists() && fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(BackupError::NotEmpty(dir.into()));
    }
    crate::file_modes::private_dir(dir).map_err(io(dir))
}

pub fn sha256_file(path: &Path) -> Result<String, BackupError> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_rfc3339() -> String {
    hpki_profile::validate::rfc3339(time::OffsetDateTime::now_utc().unix_timestamp())
}

/// Copies both store files (and their WALs) into `into` as one consistent
/// state, then folds each WAL into its file.
async fn snapshot(store: &Store, data_dir: &Path, into: &Path) -> Result<(), BackupError> {
    let mut conn = store.pool().acquire().await?;
    // Writers wait (busy_timeout) while the write lock is held; readers
    // go on.
    conn.execute("BEGIN IMMEDIATE").await?;
    let copied = (|| {
        for name in FILES {
            for suffix in ["", "-wal"] {
                let from = data_dir.join(format!("{name}{suffix}"));
                if suffix.is_empty() || from.exists() {
                    let to = into.join(format!("{name}{suffix}"));
                    fs::copy(&from, &to).map_err(io(&from))?;
                }
            }
        }
        Ok::<(), BackupError>(())
    })();
    conn.execute("ROLLBACK").await?;
    drop(conn);
    copied?;
    for name in FILES {
        let path = into.join(name);
        let url = format!("sqlite://{}?mode=rw", path.display());
        let mut c = sqlx::AnyConnection::connect_with(&sqlx::any::AnyConnectOptions::from_str(&url)?).await?;
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        c.execute("PRAGMA journal_mode = DELETE").await?;
        c.close().await?;
        for suffix in ["-wal", "-shm"] {
            let _ = fs::remove_file(into.join(format!("{name}{suffix}")));
        }
    }
    Ok(())
}

/// A new file only the gateway's user can read (mode 0600).
fn private_create(path: &Path) -> Result<File, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io(path))
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<String, BackupError> {
    let path = dir.join(MANIFEST);
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| BackupError::NotABackup { path: path.clone(), detail: e.to_string() })?;
    let mut f = private_create(&path)?;
    f.write_all(&text).map_err(io(&path))?;
    f.sync_all().map_err(io(&path))?;
    Ok(hex(ring::digest::digest(&ring::digest::SHA256, &text).as_ref()))
}

/// Writes the manifest of the backup in `out` and reports it.
fn seal(
    out: &Path,
    kind: BackupKind,
    operator: &str,
    base: Option<BaseRef>,
    files: Vec<FileEntry>,
) -> Result<Written, BackupError> {
    let manifest =
        Manifest { format: FORMAT.into(), kind, created_at: now_rfc3339(), operator: operator.into(), base, files };
    let manifest_sha256 = write_manifest(out, &manifest)?;
    Ok(Written { dir: out.into(), manifest_sha256, manifest })
}

/// Runs `work`, which writes into `out`; a failure leaves nothing there.
async fn removing_on_error(
    out: &Path,
    work: impl std::future::Future<Output = Result<Written, BackupError>>,
) -> Result<Written, BackupError> {
    let result = work.await;
    if result.is_err() {
        let _ = fs::remove_dir_all(out);
    }
    result
}

/// Reads and checks the manifest of the backup in `dir`; with its SHA-256.
pub fn read_manifest(dir: &Path) -> Result<(Manifest, String), BackupError> {
    let path = dir.join(MANIFEST);
    let bytes = fs::read(&path).map_err(io(&path))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::NotABackup { path: path.clone(), detail: e.to_string() })?;
    if m.format != FORMAT {
        return Err(BackupError::NotABackup { path, detail: format!("format {:?}, expected {FORMAT:?}", m.format) });
    }
    let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    if names != FILES {
        return Err(BackupError::NotABackup { path, detail: format!("files {names:?}, expected {FILES:?}") });
    }
    for f in &m.files {
        if f.data.contains('/') || f.data.starts_with('.') {
            return Err(BackupError::NotABackup { path, detail: format!("data file name {:?}", f.data) });
        }
    }
    Ok((m, hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())))
}

/// A full backup of the running store into `out` (absent or empty).
pub async fn full(store: &Store, config: &StoreConfig, out: &Path, operator: &str) -> Result<Written, BackupError> {
    let data_dir = sqlite_dir(config)?;
    empty_dir(out)?;
    removing_on_error(out, async {
        snapshot(store, data_dir, out).await?;
        let mut files = Vec::new();
        for name in FILES {
            let path = out.join(name);
            let size = fs::metadata(&path).map_err(io(&path))?.len();
            let sha = sha256_file(&path)?;
            File::open(&path).and_then(|f| f.sync_all()).map_err(io(&path))?;
            files.push(FileEntry {
                name: name.into(),
                size,
                sha256: sha.clone(),
                data: name.into(),
                data_sha256: sha,
                page_size: None,
                pages: None,
            });
        }
        seal(out, BackupKind::Full, operator, None, files)
    })
    .await
}

/// A differential backup into `out`: the pages of each file that differ
/// from the full backup in `since`.
pub async fn diff(
    store: &Store,
    config: &StoreConfig,
    since: &Path,
    out: &Path,
    operator: &str,
) -> Result<Written, BackupError> {
    let data_dir = sqlite_dir(config)?;
    let (base, base_sha) = read_manifest(since)?;
    if base.kind != BackupKind::Full {
        return Err(BackupError::SinceNotFull(since.into()));
    }
    check_data(since, &base)?;
    empty_dir(out)?;
    removing_on_error(out, async {
        let snap = out.join(".snapshot");
        fs::create_dir(&snap).map_err(io(&snap))?;
        snapshot(store, data_dir, &snap).await?;
        let mut files = Vec::new();
        for name in FILES {
            let current = snap.join(name);
            let page_size = page_size(&current)?;
            let data = format!("{name}.pages");
            let pages = changed_pages(&since.join(name), &current, page_size, &out.join(&data))?;
            let data_path = out.join(&data);
            File::open(&data_path).and_then(|f| f.sync_all()).map_err(io(&data_path))?;
            files.push(FileEntry {
                name: name.into(),
                size: fs::metadata(&current).map_err(io(&current))?.len(),
                sha256: sha256_file(&current)?,
                data_sha256: sha256_file(&data_path)?,
                data,
                page_size: Some(page_size),
                pages: Some(pages),
            });
        }
        fs::remove_dir_all(&snap).map_err(io(&snap))?;
        let base = BaseRef { path: fs::canonicalize(since).map_err(io(since))?, manifest_sha256: base_sha };
        seal(out, BackupKind::Diff, operator, Some(base), files)
    })
    .await
}

/// The page size of an SQLite database (header bytes 16–17; 1 means 65536).
fn page_size(path: &Path) -> Result<u64, BackupError> {
    let mut header = [0u8; 100];
    File::open(path).and_then(|mut f| f.read_exact(&mut header)).map_err(io(path))?;
    if &header[..16] != b"SQLite format 3\0" {
        return Err(BackupError::NotABackup { path: path.into(), detail: "not an SQLite database".into() });
    }
    Ok(match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => return Err(BackupError::NotABackup { path: path.into(), detail: format!("page size {n}") }),
    })
}

/// Writes the pages of `current` that differ from `base` (or lie beyond
/// its end) to `out`; their numbers.
fn changed_pages(base: &Path, current: &Path, page_size: u64, out: &Path) -> Result<Vec<u64>, BackupError> {
    let mut b = File::open(base).map_err(io(base))?;
    let mut c = File::open(current).map_err(io(current))?;
    let mut o = private_create(out)?;
    let size = c.metadata().map_err(io(current))?.len();
    let mut pages = Vec::new();
    let (mut pb, mut pc) = (vec![0u8; page_size as usize], vec![0u8; page_size as usize]);
    for n in 0..size.div_ceil(page_size) {
        pc.fill(0);
        let got = read_up_to(&mut c, &mut pc).map_err(io(current))?;
        pb.fill(0);
        let had = read_up_to(&mut b, &mut pb).map_err(io(base))?;
        if had != got || pb[..had] != pc[..got] {
            o.write_all(&pc[..got]).map_err(io(out))?;
            pages.push(n);
        }
    }
    Ok(pages)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Checks the data files of the backup in `dir` against its manifest.
fn check_data(dir: &Path, m: &Manifest) -> Result<(), BackupError> {
    for f in &m.files {
        let path = dir.join(&f.data);
        if sha256_file(&path)? != f.data_sha256 {
            return Err(BackupError::Checksum { path });
        }
    }
    Ok(())
}

/// The full backup a differential needs: `full` when given, else where the
/// manifest says; it must be the very one the differential was made from.
fn base_of(diff: &Manifest, full: Option<&Path>) -> Result<(PathBuf, Manifest), BackupError> {
    let base = diff.base.as_ref().ok_or_else(|| BackupError::NotABackup {
        path: PathBuf::from(MANIFEST),
        detail: "a differential without its base".into(),
    })?;
    let path = full.map(Path::to_path_buf).unwrap_or_else(|| base.path.clone());
    let (m, sha) = read_manifest(&path)?;
    if sha != base.manifest_sha256 || m.kind != BackupKind::Full {
        return Err(BackupError::WrongBase { path });
    }
    Ok((path, m))
}

/// Rebuilds the database files of the backup in `from` into `into` (which
/// exists) and checks each against the manifest; the manifest and its
/// SHA-256.
fn rebuild(from: &Path, full: Option<&Path>, into: &Path) -> Result<(Manifest, String), BackupError> {
    let (m, sha) = read_manifest(from)?;
    check_data(from, &m)?;
    match m.kind {
        BackupKind::Full => {
            for f in &m.files {
                let to = into.join(&f.name);
                fs::copy(from.join(&f.data), &to).map_err(io(&to))?;
            }
        }
        BackupKind::Diff => {
            let (base_dir, base) = base_of(&m, full)?;
            check_data(&base_dir, &base)?;
            for f in &m.files {
                let to = into.join(&f.name);
                fs::copy(base_dir.join(&f.name), &to).map_err(io(&to))?;
                let (Some(page_size), Some(pages)) = (f.page_size, &f.pages) else {
                    return Err(BackupError::NotABackup { path: from.join(MANIFEST), detail: "pages missing".into() });
                };
                let mut data = File::open(from.join(&f.data)).map_err(io(from))?;
                let mut db = fs::OpenOptions::new().write(true).open(&to).map_err(io(&to))?;
                let mut page = vec![0u8; page_size as usize];
                for n in pages {
                    let len = page_size.min(f.size.saturating_sub(n * page_size)) as usize;
                    data.read_exact(&mut page[..len]).map_err(io(from))?;
                    db.seek(SeekFrom::Start(n * page_size)).map_err(io(&to))?;
                    db.write_all(&page[..len]).map_err(io(&to))?;
                }
                db.set_len(f.size).map_err(io(&to))?;
                db.sync_all().map_err(io(&to))?;
            }
        }
    }
    for f in &m.files {
        let path = into.join(&f.name);
        if sha256_file(&path)? != f.sha256 {
            return Err(BackupError::Checksum { path });
        }
    }
    Ok((m, sha))
}

/// Restores the backup in `from` (full, or differential with its full
/// backup) into the data directory `target`, which must be absent or
/// empty. Nothing is put in place unless every checksum matches. The
/// manifest and its SHA-256.
pub fn restore(from: &Path, full: Option<&Path>, target: &Path) -> Result<(Manifest, String), BackupError> {
    if target.exists() && fs::read_dir(target).map_err(io(target))?.next().is_some() {
        return Err(BackupError::NotEmpty(target.into()));
    }
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io(parent))?;
    let staging = parent.join(format!(
        ".{}.restore-{}",
        target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging).map_err(io(&staging))?;
    crate::file_modes::private_dir(&staging).map_err(io(&staging))?;
    let restored = match rebuild(from, full, &staging) {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if target.exists() {
        fs::remove_dir(target).map_err(io(target))?;
    }
    fs::rename(&staging, target).map_err(io(target))?;
    Ok(restored)
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub kind: BackupKind,
    pub created_at: String,
    pub audit_entries: u64,
    /// Where the audit chain breaks, if it does.
    pub chain_break: Option<String>,
}

/// Checks every checksum of the backup in `from` (and of its full backup),
/// rebuilds it in a scratch directory and verifies its audit chain.
pub async fn verify(from: &Path, full: Option<&Path>) -> Result<Verified, BackupError> {
    // A fresh directory of a random name, mode 0700, that nobody else made:
    // the database copy in it is health data, and a directory planted under
    // a predictable name could redirect the copy.
    let tmp = std::env::temp_dir();
    let scratch_dir = tempfile::Builder::new().prefix("hpki-backup-verify-").tempdir_in(&tmp).map_err(io(&tmp))?;
    let scratch = scratch_dir.path().to_path_buf();
    let result = async {
        let (m, _) = rebuild(from, full, &scratch)?;
        let store = Store::connect(&StoreConfig::Sqlite { dir: scratch.clone() }).await?;
        if store.backend() != Backend::Sqlite {
            return Err(BackupError::Postgres);
        }
        let chain = store.verify_audit_chain().await?;
        store.close().await;
        let (audit_entries, chain_break) = match chain {
            Ok(n) => (n, None),
            Err((n, e)) => (n, Some(e)),
        };
        Ok(Verified { kind: m.kind, created_at: m.created_at, audit_entries, chain_break })
    }
    .await;
    drop(scratch_dir);
    result
}

#[cfg(test)]
mod scratch_tests {
    use super::*;

    #[tokio::test]
    async fn backup_verify_uses_a_private_scratch_directory() {
        // What a local user could plant under the name the scratch
        // directory used to have.
        let planted = std::env::temp_dir().join(format!("hpki-backup-verify-{}", std::process::id()));
        fs::create_dir_all(&planted).expect("plant");
        fs::write(planted.join("theirs"), b"x").expect("plant");
        let missing = std::env::temp_dir().join("hpki-no-such-backup-here");
        assert!(verify(&missing, None).await.is_err());
        assert!(planted.join("theirs").exists(), "verify touched a directory it did not make");
        let _ = fs::remove_dir_all(&planted);
    }
}
