//! `hpki-gateway audit`: verify the hash chain, export entries.

use anyhow::{Context, Result};
use clap::Subcommand;
use hpki_gateway::audit::checkpoint;
use hpki_gateway::config::Config;
use hpki_gateway::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain, says where it breaks; with --checkpoints, also
    /// that no checkpointed entry was removed or rewritten.
    Verify {
        /// The checkpoint file (default: the configured one, if it exists).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The public key the checkpoints are signed with (the `.pub` file;
        /// default: beside the configured key).
        #[arg(long)]
        checkpoint_key: Option<PathBuf>,
    },
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
        AuditCommand::Verify { checkpoints, checkpoint_key } => {
            match store.verify_audit_chain().await? {
                Ok(n) => println!("audit chain intact: {n} entries"),
                Err((_, e)) => {
                    println!("audit chain BROKEN: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
            let configured = config.path(&config.audit.checkpoints);
            let file = match checkpoints {
                Some(f) => f,
                None if configured.exists() => configured,
                None => {
                    println!("no checkpoints to compare with ({} does not exist)", configured.display());
                    return Ok(ExitCode::SUCCESS);
                }
            };
            let key = checkpoint_key
                .unwrap_or_else(|| checkpoint::public_key_path(&config.path(&config.audit.checkpoint_key)));
            let public = checkpoint::read_public_key(&key)?;
            let list = checkpoint::read_all(&file)?;
            let finding = checkpoint::check(&store, &list, &public).await?;
            match finding {
                checkpoint::Finding::Consistent { .. } => {
                    println!("{}: {finding}", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                _ => {
                    println!("audit log CUT OR REWRITTEN: {finding}");
                    Ok(ExitCode::from(1))
                }
            }
        }
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
