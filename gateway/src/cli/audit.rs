//! `hpki-gateway audit`: verify the hash chain, export entries.

use anyhow::{Context, Result};
use clap::Subcommand;
use hpki_gateway::config::Config;
use hpki_gateway::store::Store;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain; says where it breaks.
    Verify,
    /// A user's complete history (LOG-2).
    Export {
        #[arg(long)]
        person: String,
        /// From (RFC 3339); default: the beginning.
        #[arg(long)]
        from: Option<String>,
        /// To (RFC 3339); default: now.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn parse_time(text: &str) -> Result<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{text:?} is not an RFC 3339 time"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

pub(crate) async fn audit(config: &Config, cmd: AuditCommand) -> Result<ExitCode> {
    let store = Store::open(&config.store_config()).await?;
    match cmd {
        AuditCommand::Verify => match store.verify_audit_chain().await? {
            Ok(n) => {
                println!("audit chain intact: {n} entries");
                Ok(ExitCode::SUCCESS)
            }
            Err((_, e)) => {
                println!("audit chain BROKEN: {e}");
                Ok(ExitCode::from(1))
            }
        },
        AuditCommand::Export { person, from, to, json } => {
            let from = from.as_deref().map(parse_time).transpose()?.unwrap_or(0);
            let to = to.as_deref().map(parse_time).transpose()?.unwrap_or(i64::MAX);
            let entries = store.audit_of_actor(&person, from, to).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in &entries {
                    let at = hpki_profile::validate::rfc3339(e.at.div_euclid(1000));
                    let ev = &e.event;
                    println!(
                        "{:>6} {at} {:<24} {:<8} {:<28} terminal {} object {}",
                        e.seq, ev.action, ev.outcome, ev.reason, ev.terminal, ev.object
                    );
                }
                println!("{} entries for {person}", entries.len());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
