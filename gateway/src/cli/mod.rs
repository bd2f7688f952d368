//! The command line of `hpki-gateway`: one file per command group (`serve`,
//! `admin`, `audit`, `backup`, `report`, `records`); `main.rs` only parses and calls
//! [`run`].

pub mod admin;
pub mod audit;
pub mod backup;
pub mod export;
pub mod records;
pub mod report;
pub mod serve;

use crate::cli::admin::{AdminCommand, admin};
use crate::cli::audit::{AuditCommand, audit};
use crate::cli::serve::serve;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hpki_gateway::audit::{Action, AuditEvent, Outcome};
use hpki_gateway::clock::{Clock, SystemClock};
use hpki_gateway::config::Config;
use hpki_gateway::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

/// The HPKI medical-institution gateway.
#[derive(Parser)]
#[command(name = "hpki-gateway", version)]
pub struct Cli {
    /// Configuration file (TOML, see docs/gateway.md).
    #[arg(long, global = true, default_value = "/etc/hpki-gateway/gateway.toml", env = "HPKI_GATEWAY_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the institution listener and the operations listener.
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Administration by IT staff on the data-centre host (audited).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Backups of the SQLite store: full, differential, restore, verify
    /// (DATA-7; PostgreSQL: pg_basebackup, see docs/backup.md).
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Reports: the monthly review and the configuration for the yearly
    /// self-inspection (LOG-3, LOG-7, AUTH-9).
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Signed records: export one for an outside verifier, or check its
    /// signature again from its container (DATA-4).
    #[command(subcommand)]
    Records(records::RecordsCommand),
    /// De-identified exports for research (FLOW-8).
    #[command(subcommand)]
    Export(export::ExportCommand),
}

#[derive(Args)]
pub(crate) struct Operator {
    /// Who is doing this (recorded in the audit log).
    #[arg(long, env = "HPKI_OPERATOR")]
    operator: Option<String>,
}

pub(crate) async fn run(cli: Cli) -> Result<ExitCode> {
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let store = Store::open(&config.store_config()).await?;
            println!("schema up to date ({:?})", store.backend());
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(cmd) => admin(&config, cmd).await,
        Command::Audit(cmd) => audit(&config, cmd).await,
        Command::Backup(cmd) => backup::run(&config, cmd).await,
        Command::Report(cmd) => report::run(&config, cmd).await,
        Command::Records(cmd) => records::run(&config, cmd).await,
        Command::Export(cmd) => export::run(&config, cmd).await,
    }
}

pub(crate) async fn admin_audit(
    store: &Store,
    operator: &str,
    action: Action,
    object: &str,
    outcome: Result<(), String>,
) -> Result<()> {
    admin_audit_of(store, "-", operator, action, object, outcome).await
}

/// [`admin_audit`] for the run `request_id`, whose change may have staged
/// its entry (`audit::outbox`): the staged row is deleted once the entry
/// is in the chain.
pub(crate) async fn admin_audit_of(
    store: &Store,
    request_id: &str,
    operator: &str,
    action: Action,
    object: &str,
    outcome: Result<(), String>,
) -> Result<()> {
    admin_entry(store, request_id, operator, action, object, &outcome).await?;
    outcome.map_err(anyhow::Error::msg)
}

/// Appends the entry of [`admin_audit_of`] (and clears the run's staged
/// rows); its seq.
pub(crate) async fn admin_entry(
    store: &Store,
    request_id: &str,
    operator: &str,
    action: Action,
    object: &str,
    outcome: &Result<(), String>,
) -> Result<i64> {
    let event = AuditEvent {
        actor: format!("admin:{operator}"),
        object: object.into(),
        reason: outcome.as_ref().err().cloned().unwrap_or_else(|| "-".into()),
        request_id: request_id.into(),
        ..AuditEvent::new(action, Outcome::of(outcome))
    };
    let written = store.append_audit(&event, SystemClock.now_ms()).await?;
    if request_id != "-"
        && let Err(e) = store.clear_outbox(&[request_id]).await
    {
        tracing::warn!(error = %e, "cannot clear the audit outbox; the gateway's next start will");
    }
    Ok(written.seq)
}

/// The id of one CLI run, in its audit entry (and staged rows).
pub(crate) fn cli_request_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    // For correlation only, as the listener's request ids.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    format!("cli-{}", hex::encode(b))
}

impl Operator {
    pub(crate) fn name(&self) -> Result<String> {
        let n =
            self.operator.clone().or_else(|| std::env::var("SUDO_USER").ok()).or_else(|| std::env::var("USER").ok());
        let n = n.filter(|n| !n.trim().is_empty()).context("say who you are: --operator NAME (or HPKI_OPERATOR)")?;
        Ok(n)
    }
}
