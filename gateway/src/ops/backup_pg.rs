//! Recording a PostgreSQL base backup (DATA-7). The gateway does not take
//! PostgreSQL backups itself (`pg_basebackup` and WAL archiving do that, see
//! docs/backup.md), but every backup run must be in its audit log: IT staff
//! run `hpki-gateway backup record --pg-basebackup DIR` after each
//! `pg_basebackup`, and this module checks that DIR is a whole base backup
//! before the run is recorded with the manifest's SHA-256.
//!
//! What is checked: `backup_manifest` is there, is a version-1 manifest
//! whose own `Manifest-Checksum` (SHA-256 of every line before the last)
//! matches, and, for a plain-format backup, every file it lists is present
//! with its listed size. The per-file CRCs are `pg_verifybackup`'s job;
//! the docs run it first.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ops::backup::{BackupError, hex, sha256_file};

pub const MANIFEST: &str = "backup_manifest";

/// A base backup that passed the checks, as recorded in the audit log.
#[derive(Debug, Clone)]
pub struct PgBaseBackup {
    pub dir: PathBuf,
    pub manifest_sha256: String,
    pub files: usize,
    pub bytes: u64,
    /// `TIMELINE/START-END` of the WAL the backup needs.
    pub wal: String,
    /// Plain format (a data directory) or tar files.
    pub plain: bool,
}

impl PgBaseBackup {
    /// The audit entry's object: where, which manifest, which WAL.
    pub fn audit_object(&self) -> String {
        format!("{} manifest-sha256:{} wal:{}", self.dir.display(), self.manifest_sha256, self.wal)
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "PostgreSQL-Backup-Manifest-Version")]
    version: u32,
    #[serde(rename = "Files")]
    files: Vec<FileEntry>,
    #[serde(rename = "WAL-Ranges")]
    wal_ranges: Vec<WalRange>,
    #[serde(rename = "Manifest-Checksum")]
    checksum: String,
}

#[derive(Deserialize)]
struct FileEntry {
    /// Absent when the name is not UTF-8 (then `Encoded-Path` holds it).
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Encoded-Path")]
    encoded_path: Option<String>,
    #[serde(rename = "Size")]
    size: u64,
}

#[derive(Deserialize)]
struct WalRange {
    #[serde(rename = "Timeline")]
    timeline: u32,
    #[serde(rename = "Start-LSN")]
    start: String,
    #[serde(rename = "End-LSN")]
    end: String,
}

fn not_a_backup(dir: &Path, detail: impl Into<String>) -> BackupError {
    BackupError::NotABackup { path: dir.into(), detail: detail.into() }
}

/// Checks the base backup in `dir` (see the module comment).
pub fn inspect(dir: &Path) -> Result<PgBaseBackup, BackupError> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_a_backup(dir, "no backup_manifest (pg_basebackup writes one unless --no-manifest)"));
        }
        Err(source) => return Err(BackupError::Io { path, source }),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| not_a_backup(dir, format!("backup_manifest is not a PostgreSQL backup manifest: {e}")))?;
    if manifest.version != 1 {
        return Err(not_a_backup(dir, format!("backup manifest version {} is not supported", manifest.version)));
    }
    // The checksum covers every byte before the last line.
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let covered = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes[..covered]);
    if !hex(digest.as_ref()).eq_ignore_ascii_case(&manifest.checksum) {
        return Err(BackupError::Checksum { path });
    }
    let plain = dir.join("PG_VERSION").exists();
    if plain {
        for f in &manifest.files {
            let Some(name) = &f.path else {
                // Non-UTF-8 names do not occur in a data directory the
                // gateway's database lives in; say so rather than skip.
                let enc = f.encoded_path.as_deref().unwrap_or("?");
                return Err(not_a_backup(dir, format!("a file with an encoded (non-UTF-8) name: {enc}")));
            };
            let file = dir.join(name);
            match std::fs::metadata(&file) {
                Ok(m) if m.len() == f.size => {}
                Ok(m) => {
                    return Err(not_a_backup(
                        dir,
                        format!("{name} has {} bytes, the manifest says {}", m.len(), f.size),
                    ));
                }
                Err(_) => return Err(not_a_backup(dir, format!("{name} is missing"))),
            }
        }
    } else if !has_tar(dir)? {
        return Err(not_a_backup(dir, "neither a data directory (PG_VERSION) nor tar files (base.tar*)"));
    }
    let wal = match (manifest.wal_ranges.first(), manifest.wal_ranges.last()) {
        (Some(first), Some(last)) => format!("{}/{}-{}", last.timeline, first.start, last.end),
        _ => return Err(not_a_backup(dir, "the manifest names no WAL range")),
    };
    Ok(PgBaseBackup {
        dir: dir.into(),
        manifest_sha256: sha256_file(&path)?,
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        wal,
        plain,
    })
}

fn has_tar(dir: &Path) -> Result<bool, BackupError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BackupError::Io { path: dir.into(), source })?;
    Ok(entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with("base.tar")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest the way pg_basebackup lays it out, with a right checksum.
    fn manifest(files: &str) -> Vec<u8> {
        let body = format!(
            "{{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n{files}\n],\n\"WAL-Ranges\": [\n\
             {{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }}\n],\n"
        );
        let sum = hex(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref());
        format!("{body}\"Manifest-Checksum\": \"{sum}\"}}\n").into_bytes()
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hpki-pgbb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_whole_plain_backup_is_accepted_and_described() {
        let d = scratch("ok");
        std::fs::write(d.join("PG_VERSION"), "15\n").unwrap();
        let m = manifest(r#"{ "Path": "PG_VERSION", "Size": 3, "Checksum-Algorithm": "CRC32C", "Checksum": "0" }"#);
        std::fs::write(d.join(MANIFEST), &m).unwrap();
        let b = inspect(&d).unwrap();
        assert_eq!((b.files, b.bytes, b.wal.as_str(), b.plain), (1, 3, "1/0/2000028-0/2000100", true));
        assert_eq!(b.manifest_sha256, hex(ring::digest::digest(&ring::digest::SHA256, &m).as_ref()));
    }

    #[test]
    fn a_changed_manifest_a_missing_file_and_a_short_file_are_refused() {
        let d = scratch("bad");
        std::fs::write(d.join("PG_VERSION"), "15\n").unwrap();
        let listed = r#"{ "Path": "PG_VERSION", "Size": 3 },
{ "Path": "global/pg_control", "Size": 8192 }"#;
        let m = manifest(listed);
        std::fs::write(d.join(MANIFEST), &m).unwrap();
        let e = inspect(&d).unwrap_err().to_string();
        assert!(e.contains("global/pg_control is missing"), "{e}");

        std::fs::create_dir_all(d.join("global")).unwrap();
        std::fs::write(d.join("global/pg_control"), [0u8; 100]).unwrap();
        let e = inspect(&d).unwrap_err().to_string();
        assert!(e.contains("global/pg_control has 100 bytes, the manifest says 8192"), "{e}");

        let changed = String::from_utf8(m).unwrap().replace("\"Size\": 8192", "\"Size\": 100");
        std::fs::write(d.join(MANIFEST), changed).unwrap();
        let e = inspect(&d).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
    }

    #[test]
    fn a_directory_without_a_manifest_is_not_a_base_backup() {
        let d = scratch("none");
        let e = inspect(&d).unwrap_err().to_string();
        assert!(e.contains("no backup_manifest"), "{e}");
        std::fs::write(d.join(MANIFEST), b"{\"format\": \"hpki-gateway-backup/1\"}").unwrap();
        let e = inspect(&d).unwrap_err().to_string();
        assert!(e.contains("not a PostgreSQL backup manifest"), "{e}");
    }
}
