//! `hpki-gateway backup …` (part of the binary): each run of a backup is
//! recorded in the audit log with who ran it, what it wrote and the
//! manifest's SHA-256 (DATA-7); a PostgreSQL base backup, taken with
//! PostgreSQL's own tools, is recorded with `backup record`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use hpki_gateway::config::Config;
use hpki_gateway::ops::backup::{self, BackupKind};
use hpki_gateway::ops::backup_pg;
use hpki_gateway::store::{Store, StoreConfig};

use crate::cli::{Operator, admin_audit};
use hpki_gateway::audit::Action;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// A consistent copy of the running store (SQLite) into a new directory.
    Full {
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        op: Operator,
    },
    /// What changed since the full backup SINCE, into a new directory.
    Diff {
        /// The full backup to compare with.
        #[arg(long)]
        since: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        op: Operator,
    },
    /// Restore a backup (full, or differential with its full backup) into
    /// the configured data directory, which must be absent or empty.
    Restore {
        #[arg(long)]
        from: PathBuf,
        /// The full backup of a differential, if it has moved since.
        #[arg(long)]
        full: Option<PathBuf>,
        #[command(flatten)]
        op: Operator,
    },
    /// Record a PostgreSQL base backup taken with pg_basebackup in the audit
    /// log, after checking its manifest and files (DATA-7).
    Record {
        /// The directory pg_basebackup wrote (plain or tar format).
        #[arg(long = "pg-basebackup", value_name = "DIR")]
        pg_basebackup: PathBuf,
        #[command(flatten)]
        op: Operator,
    },
    /// Check a backup's checksums (and its full backup's) and the audit
    /// chain it holds; exit 1 if anything is wrong.
    Verify {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        full: Option<PathBuf>,
    },
}

pub async fn run(config: &Config, cmd: BackupCommand) -> Result<ExitCode> {
    let store_config = config.store_config();
    match cmd {
        BackupCommand::Full { out, op } => {
            let operator = op.name()?;
            let store = Store::open(&store_config).await?;
            let r = backup::full(&store, &store_config, &out, &operator).await;
            recorded(&store, &operator, Action::BackupFull, &out, r).await
        }
        BackupCommand::Diff { since, out, op } => {
            let operator = op.name()?;
            let store = Store::open(&store_config).await?;
            let r = backup::diff(&store, &store_config, &since, &out, &operator).await;
            recorded(&store, &operator, Action::BackupDiff, &out, r).await
        }
        BackupCommand::Restore { from, full, op } => {
            let operator = op.name()?;
            let StoreConfig::Sqlite { dir } = &store_config else {
                anyhow::bail!("{}", backup::BackupError::Postgres);
            };
            let (m, sha) = match backup::restore(&from, full.as_deref(), dir) {
                Ok(r) => r,
                Err(e) => {
                    // A store in the way is the one to tell; with no store
                    // there is no log to write (making one would fill the
                    // directory the restore needs empty).
                    if dir.join("identity.db").exists() {
                        let store = Store::open(&store_config).await?;
                        let what = format!("from:{}", from.display());
                        admin_audit(&store, &operator, Action::BackupRestore, &what, Err(e.to_string())).await?;
                    }
                    return Err(e.into());
                }
            };
            let store = Store::open(&store_config).await.context("opening the restored store")?;
            let what = format!("from:{} manifest-sha256:{sha}", from.display());
            admin_audit(&store, &operator, Action::BackupRestore, &what, Ok(())).await?;
            println!("restored the {} backup of {} into {}", kind(m.kind), m.created_at, dir.display());
            // Records erased since the backup was taken are due again: the
            // retention policy is applied before anyone reads (DATA-8).
            let now = hpki_gateway::clock::Clock::now(&hpki_gateway::clock::SystemClock);
            let (report, failed) = crate::cli::records::erase_expired(config, &store, &operator, now, false).await?;
            let erased = report["erased"].as_array().map_or(0, Vec::len);
            println!("retention re-applied: {erased} records past their retention erased again, {failed} failed");
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        BackupCommand::Record { pg_basebackup, op } => {
            let operator = op.name()?;
            if matches!(store_config, StoreConfig::Sqlite { .. }) {
                anyhow::bail!(
                    "the store is SQLite: its backups are `backup full` and `backup diff`, recorded as they run"
                );
            }
            let store = Store::open(&store_config).await?;
            match backup_pg::inspect(&pg_basebackup) {
                Ok(b) => {
                    admin_audit(&store, &operator, Action::BackupPgBasebackup, &b.audit_object(), Ok(())).await?;
                    let format = if b.plain { "plain" } else { "tar" };
                    println!(
                        "backup.pg_basebackup: {} ({format}, {} files, {} bytes, WAL {}), manifest sha256 {}",
                        b.dir.display(),
                        b.files,
                        b.bytes,
                        b.wal,
                        b.manifest_sha256
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    let what = pg_basebackup.display().to_string();
                    admin_audit(&store, &operator, Action::BackupPgBasebackup, &what, Err(e.to_string())).await?;
                    Err(e.into())
                }
            }
        }
        BackupCommand::Verify { from, full } => {
            let v = backup::verify(&from, full.as_deref()).await?;
            match v.chain_break {
                None => {
                    println!(
                        "{} backup of {}: checksums match, audit chain intact ({} entries)",
                        kind(v.kind),
                        v.created_at,
                        v.audit_entries
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(e) => {
                    println!("{} backup of {}: audit chain BROKEN: {e}", kind(v.kind), v.created_at);
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

fn kind(k: BackupKind) -> &'static str {
    match k {
        BackupKind::Full => "full",
        BackupKind::Diff => "differential",
    }
}

/// Audits a backup run, successful or not, then reports it.
async fn recorded(
    store: &Store,
    operator: &str,
    action: Action,
    out: &std::path::Path,
    r: Result<backup::Written, backup::BackupError>,
) -> Result<ExitCode> {
    match r {
        Ok(w) => {
            let what = format!("{} manifest-sha256:{}", w.dir.display(), w.manifest_sha256);
            admin_audit(store, operator, action, &what, Ok(())).await?;
            let bytes: u64 = w
                .manifest
                .files
                .iter()
                .map(|f| std::fs::metadata(w.dir.join(&f.data)).map(|m| m.len()).unwrap_or(0))
                .sum();
            println!("{action}: {} ({bytes} bytes), manifest sha256 {}", w.dir.display(), w.manifest_sha256);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // Recorded as refused; admin_audit then hands the error back.
            admin_audit(store, operator, action, &out.display().to_string(), Err(e.to_string())).await?;
            Err(e.into())
        }
    }
}
