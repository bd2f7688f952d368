//! `hpki-gateway report …` (part of the binary): the monthly review
//! (LOG-3, AUTH-9) and the configuration report for the yearly
//! self-inspection (LOG-7).

use std::process::ExitCode;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use hpki_gateway::clock::{Clock, SystemClock};
use hpki_gateway::config::Config;
use hpki_gateway::ops::report;
use hpki_gateway::store::Store;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Html,
}

#[derive(Subcommand)]
pub enum ReportCommand {
    /// What an auditor reads once a month: logins per institution and
    /// person, refusals by reason, administration and maintenance per day,
    /// alerts, terminal certificates near expiry, CRL freshness.
    Monthly {
        /// YYYY-MM (months begin at midnight, Japan time).
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// The security-relevant configuration and its state (anchors and their
    /// expiry, CRL ages, TLS settings, allowlists, rules, retention), with
    /// findings; JSON.
    Config,
}

pub async fn run(config: &Config, cmd: ReportCommand) -> Result<ExitCode> {
    let store = Store::open(&config.store_config()).await?;
    let now = SystemClock.now_ms();
    match cmd {
        ReportCommand::Monthly { month, format } => {
            let month = report::Month::parse(&month)?;
            let m = report::monthly(&store, config, month, now).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&m)?),
                Format::Html => print!("{}", report::monthly_html(&m)),
            }
        }
        ReportCommand::Config => {
            let r = report::config_report(&store, config, now).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
