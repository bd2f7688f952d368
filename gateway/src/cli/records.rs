//! `hpki-gateway records …`: a signed record taken out for a verifier
//! outside the gateway (`export`, audited: the document is patient data),
//! its signature checked again from the container (`verify`), and archive
//! time-stamps renewed before their TSA certificates expire
//! (`renew-timestamps`, audited per record), and records erased at the
//! end of their retention (`erase --expired`, audited per record, DATA-8).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgGroup, Args, Subcommand};
use hpki_gateway::audit::Action;
use hpki_gateway::audit::outbox::Staging;
use hpki_gateway::clock::{Clock, SystemClock};
use hpki_gateway::config::Config;
use hpki_gateway::domain::keyring::Keyring;
use hpki_gateway::signatures::{check, export, renew};
use hpki_gateway::store::{SignatureRow, Store};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Operator, admin_audit, admin_audit_of, admin_entry, cli_request_id};

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
    /// Check a record's signature from its container alone, at a date:
    /// the CMS signature, each time-stamp and its place in the chain, each
    /// TSA's certificate when the next time-stamp vouches for it (the
    /// newest at the date), and the signer's at the signature time-stamp's
    /// genTime, with the CRLs the container carries. Prints what it found
    /// (JSON); names the link that fails.
    Verify(VerifyArgs),
    /// Add an archive time-stamp to every record whose newest time-stamp's
    /// TSA certificate expires before DATE, or whose hash is weak. Each
    /// record is its own transaction with its own audit entry: an
    /// interrupted run is resumed by running it again.
    RenewTimestamps {
        /// YYYY-MM-DD or RFC 3339; default: a year from now.
        #[arg(long)]
        before: Option<String>,
        #[command(flatten)]
        operator: Operator,
    },
    /// Erase for good the health content of every record whose retention
    /// ended (`[retention]`, DATA-8): its content, signature containers,
    /// draft and correction requests go; a tombstone keeps its id, kind,
    /// dates and the erasure's audit seq. A patient left with no record
    /// has their identity data wiped too. The audit log is never erased.
    /// Prints the erasure report (JSON).
    #[command(group(ArgGroup::new("which").required(true).args(["expired"])))]
    Erase {
        /// Every record past its retention.
        #[arg(long)]
        expired: bool,
        /// Say what would be erased, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        operator: Operator,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["record", "dir", "file"])))]
pub struct VerifyArgs {
    /// A record in the store.
    #[arg(long)]
    record: Option<String>,
    /// A directory `records export` wrote.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A signature.p7s (detached CMS, DER) ...
    #[arg(long)]
    file: Option<PathBuf>,
    /// ... over this document (default: document.json beside it).
    #[arg(long, requires = "file")]
    document: Option<PathBuf>,
    /// Check as at this date (YYYY-MM-DD or RFC 3339); default: now.
    #[arg(long)]
    at: Option<String>,
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
        RecordsCommand::Verify(VerifyArgs { record, dir, file, document, at }) => {
            let at = at.as_deref().map(parse_date).transpose()?.unwrap_or_else(|| SystemClock.now());
            let (document, container) = match (record, dir, file) {
                (Some(id), _, _) => {
                    let store = Store::open(&config.store_config()).await?;
                    let s = signed_record(config, &store, &id).await?;
                    (s.document, s.container)
                }
                (None, Some(dir), _) => (read(&dir.join(DOCUMENT))?, read(&dir.join(SIGNATURE))?),
                (None, None, Some(file)) => {
                    let doc = document.unwrap_or_else(|| file.with_file_name(DOCUMENT));
                    (read(&doc)?, read(&file)?)
                }
                (None, None, None) => anyhow::bail!("give --record ID, --dir DIR or --file P7S"),
            };
            let verdict = check::check(config, &document, &container, at).context("the record's signature")?;
            println!("{}", serde_json::to_string_pretty(&verdict)?);
        }
        RecordsCommand::RenewTimestamps { before, operator } => {
            let now = SystemClock.now();
            let before = match before {
                Some(text) => parse_date(&text)?,
                None => now + 365 * 86_400,
            };
            return renew_all(config, &operator.name()?, now, before).await;
        }
        RecordsCommand::Erase { expired: _, dry_run, operator } => {
            let store = Store::open(&config.store_config()).await?;
            let (report, failed) = erase_expired(config, &store, &operator.name()?, SystemClock.now(), dry_run).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `records erase --expired`: the report, and how many erasures failed.
/// Also run by `backup restore`, so that a restored backup does not bring
/// back records erased after it was taken.
pub(crate) async fn erase_expired(
    config: &Config,
    store: &Store,
    operator: &str,
    now: i64,
    dry_run: bool,
) -> Result<(serde_json::Value, usize)> {
    use hpki_gateway::ops::erasure;
    use hpki_gateway::store::Tombstone;
    let due = erasure::due(store.erasure_candidates().await?, &config.retention, now);
    let when = hpki_profile::validate::rfc3339;
    if dry_run {
        let object = format!("due:{}", due.len());
        admin_audit(store, operator, Action::AdminRecordErasePlan, &object, Ok(())).await?;
        let report = serde_json::json!({
            "dry_run": true, "at": when(now), "retention_years": config.retention.years, "due": due,
            "audit_log": "never erased",
        });
        return Ok((report, 0));
    }
    let bar = ProgressBar::new(due.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records erased {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut erased, mut patients, mut failed) = (Vec::new(), Vec::new(), 0usize);
    for d in due {
        bar.inc(1);
        let request_id = cli_request_id();
        let object = format!("record:{} kind:{}", d.record, d.kind);
        let actor = format!("admin:{operator}");
        let staged = Staging {
            request_id: request_id.clone(),
            terminal: "-".into(),
            institution: "-".into(),
            action: Action::AdminRecordErase,
        }
        .stage(&actor, object.as_str(), SystemClock.now_ms());
        let tombstone = Tombstone {
            id: d.record.clone(),
            kind: d.kind.clone(),
            institution: d.institution.clone(),
            created_at: d.created_at,
            last_encounter_at: d.last_encounter_at,
            retention_years: d.retention_years,
            erased_at: now,
            erased_by: actor.clone(),
            audit_request: request_id.clone(),
            audit_seq: None,
        };
        let last = match store.erase_record(&tombstone, &d.patient, &staged).await {
            Ok(last) => last,
            Err(e) => {
                bar.suspend(|| eprintln!("record {}: {e}", d.record));
                admin_entry(store, &request_id, operator, Action::AdminRecordErase, &object, &Err(e.to_string()))
                    .await?;
                failed += 1;
                continue;
            }
        };
        let seq = admin_entry(store, &request_id, operator, Action::AdminRecordErase, &object, &Ok(())).await?;
        store.note_erasure_seq(&request_id, seq).await?;
        erased.push(serde_json::json!({
            "record": d.record, "kind": d.kind, "institution": d.institution, "created_at": when(d.created_at),
            "last_encounter_at": d.last_encounter_at.map(when), "retention_years": d.retention_years,
            "due_at": when(d.due_at), "audit_seq": seq,
        }));
        if last && let Some(p) = store.patient_by_pseudonym(&d.patient).await? {
            let request_id = cli_request_id();
            let object = format!("patient:{}", p.id);
            let staged = Staging {
                request_id: request_id.clone(),
                terminal: "-".into(),
                institution: "-".into(),
                action: Action::AdminPatientErase,
            }
            .stage(&actor, object.as_str(), SystemClock.now_ms());
            let outcome = store.erase_patient_identity(&p.id, now, &staged).await.map_err(|e| e.to_string());
            if outcome.is_err() {
                failed += 1;
            } else {
                patients.push(p.id.clone());
            }
            admin_entry(store, &request_id, operator, Action::AdminPatientErase, &object, &outcome).await?;
        }
    }
    bar.finish_and_clear();
    let report = serde_json::json!({
        "dry_run": false, "at": when(now), "retention_years": config.retention.years, "erased": erased,
        "patients_erased": patients, "failed": failed, "audit_log": "never erased",
    });
    Ok((report, failed))
}

/// What a renewal run did, record by record.
#[derive(Default)]
struct Tally {
    renewed: usize,
    current: usize,
    unstamped: usize,
    failed: usize,
}

async fn renew_all(config: &Config, operator: &str, now: i64, before: i64) -> Result<ExitCode> {
    let timestamper = hpki_gateway::credentials::timestamper(config)?
        .context("[timestamps] names no TSA: a renewal needs one to apply archive time-stamps")?;
    let store = Store::open(&config.store_config()).await?;
    let keys = Keyring::load(&config.path(&config.records.key_file)).context("the record keys")?;
    let rng = ring::rand::SystemRandom::new();
    let ids = store.signed_record_ids().await?;
    let bar = ProgressBar::new(ids.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut tally = Tally::default();
    for id in ids {
        bar.inc(1);
        // One record that cannot be read is reported and counted; the run
        // goes on with the others.
        let signed = match export::signed_record(&store, &keys, &id).await {
            Ok(s) => s,
            Err(e) => {
                bar.suspend(|| eprintln!("record {id}: {e}"));
                tally.failed += 1;
                continue;
            }
        };
        let opened = match hpki_cades::open(&signed.container, &signed.document) {
            Ok(o) => o,
            Err(e) => {
                bar.suspend(|| eprintln!("record {id}: its signature does not open: {e}"));
                tally.failed += 1;
                continue;
            }
        };
        let Some(reason) = renew::due(&opened, before) else {
            if opened.timestamps.is_empty() {
                tally.unstamped += 1;
            } else {
                tally.current += 1;
            }
            continue;
        };
        bar.set_message(id.clone());
        let request_id = cli_request_id();
        let object = format!("record:{id}");
        let outcome = match renew::renew(config, &timestamper, &signed.document, &signed.container, now, &rng).await {
            Ok(r) => {
                let row = SignatureRow {
                    record: id.clone(),
                    seq: signed.seq + 1,
                    level: r.level.into(),
                    time_stamped_at: opened.timestamps.first().map(|t| t.gen_time),
                    container: r.container,
                    created_at: now,
                };
                let staged = Staging {
                    request_id: request_id.clone(),
                    terminal: "-".into(),
                    institution: "-".into(),
                    action: Action::AdminRecordRenewTimestamp,
                }
                .stage(&format!("admin:{operator}"), &object, SystemClock.now_ms());
                store.append_record_signature(&row, &staged).await.map_err(|e| format!("{e}"))
            }
            Err(e) => Err(format!("{e}")),
        };
        let failed = outcome.as_ref().err().cloned();
        let audited =
            admin_audit_of(&store, &request_id, operator, Action::AdminRecordRenewTimestamp, &object, outcome);
        match (audited.await, failed) {
            (Ok(()), None) => {
                bar.suspend(|| println!("record {id}: renewed ({reason})"));
                tally.renewed += 1;
            }
            (_, Some(e)) => {
                bar.suspend(|| eprintln!("record {id}: not renewed ({reason}): {e}"));
                tally.failed += 1;
            }
            (Err(e), None) => {
                return Err(e.context(format!("record {id} was renewed but its audit entry was not written")));
            }
        }
    }
    bar.finish_and_clear();
    println!(
        "renewed {}, good past {}: {}, without time-stamps (B-B): {}, failed: {}",
        tally.renewed,
        hpki_profile::validate::rfc3339(before),
        tally.current,
        tally.unstamped,
        tally.failed
    );
    Ok(if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// YYYY-MM-DD (midnight UTC) or RFC 3339, as Unix seconds.
fn parse_date(text: &str) -> Result<i64> {
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(text, &day) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{text:?} is neither YYYY-MM-DD nor an RFC 3339 time"))?;
    Ok(t.unix_timestamp())
}

async fn signed_record(config: &Config, store: &Store, id: &str) -> Result<export::SignedRecord> {
    let keys = Keyring::load(&config.path(&config.records.key_file)).context("the record keys")?;
    Ok(export::signed_record(store, &keys, id).await?)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}", path.display()))
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
