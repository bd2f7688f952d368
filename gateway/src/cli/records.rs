//! `hpki-gateway records …`: a signed record taken out for a verifier
//! outside the gateway (`export`, audited: the document is patient data),
//! and its signature checked again from the container (`verify`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgGroup, Args, Subcommand};
use hpki_gateway::audit::Action;
use hpki_gateway::config::Config;
use hpki_gateway::domain::keyring::Keyring;
use hpki_gateway::signatures::{check, export};
use hpki_gateway::store::Store;

use crate::cli::{Operator, admin_audit};

/// The exported files, as `export` writes them and `verify --dir` reads them.
const DOCUMENT: &str = "document.json";
const SIGNATURE: &str = "signature.p7s";

#[derive(Subcommand)]
pub enum RecordsCommand {
    /// Write a record's signed document (the exact bytes the card signed)
    /// and its CAdES signature (detached CMS, DER) into a new directory,
    /// with a README saying how to check them with OpenSSL.
    Export {
        #[arg(long)]
        record: String,
        /// A directory that does not exist yet.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        operator: Operator,
    },
    /// Check a record's signature from its container alone: the CMS
    /// signature, each time-stamp, and the signer's and TSA's certificates
    /// at the time-stamp's genTime against the configured anchors with the
    /// CRLs the container carries. Prints what it found (JSON).
    Verify(VerifyArgs),
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["record", "dir"])))]
pub struct VerifyArgs {
    /// A record in the store.
    #[arg(long)]
    record: Option<String>,
    /// A directory `records export` wrote.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub async fn run(config: &Config, cmd: RecordsCommand) -> Result<ExitCode> {
    match cmd {
        RecordsCommand::Export { record, out, operator } => {
            let operator = operator.name()?;
            if out.exists() {
                anyhow::bail!("{} exists: give a new directory", out.display());
            }
            let store = Store::open(&config.store_config()).await?;
            let signed = signed_record(config, &store, &record).await;
            let written = signed.and_then(|s| write_export(&out, &s).map(|()| s));
            let outcome = written.as_ref().map(|_| ()).map_err(|e| format!("{e:#}"));
            admin_audit(&store, &operator, Action::AdminRecordExport, &format!("record:{record}"), outcome).await?;
            let signed = written?;
            println!("record {} ({}) written to {}", signed.id, signed.level, out.display());
        }
        RecordsCommand::Verify(VerifyArgs { record, dir }) => {
            let (document, container) = match (record, dir) {
                (Some(id), _) => {
                    let store = Store::open(&config.store_config()).await?;
                    let s = signed_record(config, &store, &id).await?;
                    (s.document, s.container)
                }
                (None, Some(dir)) => (read(&dir, DOCUMENT)?, read(&dir, SIGNATURE)?),
                (None, None) => anyhow::bail!("give --record ID or --dir DIR"),
            };
            let verdict = check::check(config, &document, &container).context("the record's signature")?;
            println!("{}", serde_json::to_string_pretty(&verdict)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn signed_record(config: &Config, store: &Store, id: &str) -> Result<export::SignedRecord> {
    let keys = Keyring::load(&config.path(&config.records.key_file)).context("the record keys")?;
    Ok(export::signed_record(store, &keys, id).await?)
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    std::fs::read(dir.join(name)).with_context(|| format!("{}", dir.join(name).display()))
}

fn write_export(out: &Path, s: &export::SignedRecord) -> Result<()> {
    // The document is patient data in the clear: the directory is the
    // operator's alone (0700), as the store's is the gateway's.
    hpki_gateway::file_modes::private_dir(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join(DOCUMENT), &s.document)?;
    std::fs::write(out.join(SIGNATURE), &s.container)?;
    let readme = format!(
        "Record {id}: {level}\n\n\
         {DOCUMENT}   the confirm document the doctor's card signed (RFC 8785 JSON; patient data)\n\
         {SIGNATURE}  its CAdES signature: detached CMS SignedData, DER, with the signer's chain and\n\
         \x20              CRLs, and for B-T/B-LT the RFC 3161 signature time-stamp and the TSA's chain\n\n\
         With OpenSSL (root.pem: the HPKI root the gateway trusts):\n\
         \x20 openssl cms -verify -binary -inform DER -in {SIGNATURE} -content {DOCUMENT} \\\n\
         \x20   -CAfile root.pem -purpose any -crl_check_all -out /dev/null\n\
         With the gateway's configuration:\n\
         \x20 hpki-gateway records verify --dir .\n",
        id = s.id,
        level = s.level,
    );
    std::fs::write(out.join("README.txt"), readme)?;
    Ok(())
}
