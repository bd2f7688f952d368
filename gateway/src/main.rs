//! `hpki-gateway`: serve, migrate, administer, audit, back up, report.

mod cli_backup;
mod cli_report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hpki_gateway::audit::AuditEvent;
use hpki_gateway::clock::{Clock, SystemClock};
use hpki_gateway::config::Config;
use hpki_gateway::gateway::Gateway;
use hpki_gateway::roles::Role;
use hpki_gateway::store::{NewPerson, Store};

/// The HPKI medical-institution gateway.
#[derive(Parser)]
#[command(name = "hpki-gateway", version)]
struct Cli {
    /// Configuration file (TOML, see docs/gateway.md).
    #[arg(long, global = true, default_value = "/etc/hpki-gateway/gateway.toml", env = "HPKI_GATEWAY_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    Backup(cli_backup::BackupCommand),
    /// Reports: the monthly review and the configuration for the yearly
    /// self-inspection (LOG-3, LOG-7, AUTH-9).
    #[command(subcommand)]
    Report(cli_report::ReportCommand),
}

#[derive(Args)]
pub(crate) struct Operator {
    /// Who is doing this (recorded in the audit log).
    #[arg(long, env = "HPKI_OPERATOR")]
    operator: Option<String>,
}

impl Operator {
    pub(crate) fn name(&self) -> Result<String> {
        let n =
            self.operator.clone().or_else(|| std::env::var("SUDO_USER").ok()).or_else(|| std::env::var("USER").ok());
        let n = n.filter(|n| !n.trim().is_empty()).context("say who you are: --operator NAME (or HPKI_OPERATOR)")?;
        Ok(n)
    }
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Register a participating institution (FLOW-6).
    AddInstitution {
        /// Name in romaji, exactly as in its certificates (Subject O).
        #[arg(long)]
        name: String,
        #[arg(long)]
        name_kanji: Option<String>,
        #[command(flatten)]
        op: Operator,
    },
    /// Register a person, from their card certificate or by hand.
    AddPerson {
        /// The person's authentication certificate (DER or PEM): id, role,
        /// names and (for assistants) institution are read from it.
        #[arg(long, conflicts_with_all = ["id", "role", "name"])]
        cert: Option<PathBuf>,
        /// Subject serialNumber (licensed) or institution/staff id (assistant).
        #[arg(long)]
        id: Option<String>,
        /// doctor, dentist, pharmacist, nurse, dietitian, assistant.
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        name_kanji: Option<String>,
        /// The institution the person works at.
        #[arg(long)]
        institution: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Link an assistant to a doctor or dentist who instructs them (FLOW-1).
    Link {
        #[arg(long)]
        assistant: String,
        #[arg(long)]
        doctor: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Deactivate a person (leave, transfer); their sessions end (FLOW-6).
    Deactivate {
        #[arg(long)]
        person: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Reactivate a person.
    Activate {
        #[arg(long)]
        person: String,
        #[command(flatten)]
        op: Operator,
    },
    /// End the link between an assistant and a doctor (FLOW-1): pending
    /// drafts for that doctor can no longer be confirmed.
    Unlink {
        #[arg(long)]
        assistant: String,
        #[arg(long)]
        doctor: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Patients: register, consent, enrol for the patient listener.
    #[command(subcommand)]
    Patient(PatientCommand),
    /// Make a fresh record key current and re-encrypt every sealed draft and
    /// record under it (DATA-1). Running gateways reload the key file.
    RotateKey {
        /// Seconds to wait for running gateways to pick up the new key
        /// before the final pass (they check the file every 2 s).
        #[arg(long, default_value_t = 5)]
        settle_seconds: u64,
        #[command(flatten)]
        op: Operator,
    },
    /// Suspend a terminal at once (lost, compromised); lift with --lift.
    SuspendTerminal {
        #[arg(long)]
        institution: String,
        /// Terminal name (its certificate's CN).
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "suspended by IT")]
        reason: String,
        #[arg(long)]
        lift: bool,
        #[command(flatten)]
        op: Operator,
    },
}

#[derive(Subcommand)]
enum PatientCommand {
    /// Register a patient; prints the patient ID.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        name_kanji: Option<String>,
        /// YYYY-MM-DD.
        #[arg(long)]
        birth_date: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Record the patient's consent to share what an institution records
    /// (FLOW-4); --withdraw ends it.
    Consent {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        institution: String,
        #[arg(long)]
        withdraw: bool,
        #[command(flatten)]
        op: Operator,
    },
    /// After consent: issue the patient's sign-in ID and an initial password
    /// that must be replaced at the first sign-in (AUTH-4). Prints both, once.
    Enroll {
        #[arg(long)]
        patient: String,
        /// Institutions whose records the patient consents to see and share
        /// (repeat); needed unless a consent is already recorded.
        #[arg(long = "consent")]
        consent: Vec<String>,
        #[command(flatten)]
        op: Operator,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hpki-gateway: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hpki-gateway: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
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
        Command::Backup(cmd) => cli_backup::run(&config, cmd).await,
        Command::Report(cmd) => cli_report::run(&config, cmd).await,
    }
}

async fn serve(config: Config) -> Result<ExitCode> {
    let store = Store::open(&config.store_config()).await.context("opening the store")?;
    let recovered = hpki_gateway::crash_recovery::audit_unanswered_records(&store, SystemClock.now_ms())
        .await
        .context("auditing records committed before a crash")?;
    if !recovered.is_empty() {
        tracing::warn!(records = recovered.len(), "audited records whose answer was lost in a crash");
    }
    let tls = hpki_gateway::tls::server_config(&config)?;
    let validator = hpki_gateway::tls::validator(&config)?;
    let patient_tls = hpki_gateway::tls::patient_server_config(&config)?;
    let institutions = tokio::net::TcpListener::bind(config.listener.address)
        .await
        .with_context(|| format!("cannot listen on {}", config.listener.address))?;
    let ops = tokio::net::TcpListener::bind(config.ops.address)
        .await
        .with_context(|| format!("cannot listen on {}", config.ops.address))?;
    tracing::info!(address = %institutions.local_addr()?, ops = %ops.local_addr()?, gateway_id = %config.gateway_id, store = ?store.backend(), "gateway listening");
    let keys = hpki_gateway::keyring::open_or_create(&config.path(&config.records.key_file), &store, SystemClock.now())
        .await?;
    let gw = Arc::new(Gateway::new(config, store, Arc::new(SystemClock), tls, validator, Arc::new(keys)));
    tokio::spawn(hpki_gateway::server::serve_ops(gw.clone(), ops));
    tokio::spawn(hpki_gateway::server::watch_reloads(gw.clone(), Duration::from_secs(2)));
    tokio::spawn(hpki_gateway::server::housekeeping(gw.clone(), Duration::from_secs(600)));
    if let (Some(p), Some(tls)) = (&gw.config.patients, patient_tls) {
        let listener = tokio::net::TcpListener::bind(p.address)
            .await
            .with_context(|| format!("cannot listen on {}", p.address))?;
        tracing::info!(address = %listener.local_addr()?, "patient listener");
        tokio::spawn(hpki_gateway::patient_portal::serve_patients(gw.clone(), listener, tls));
    }
    tokio::select! {
        _ = hpki_gateway::server::serve_institutions(gw.clone(), institutions) => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn admin_audit(
    store: &Store,
    operator: &str,
    action: &str,
    object: &str,
    outcome: Result<(), String>,
) -> Result<()> {
    let event = AuditEvent {
        actor: format!("admin:{operator}"),
        terminal: "-".into(),
        institution: "-".into(),
        action: action.into(),
        object: object.into(),
        outcome: if outcome.is_ok() { "ok".into() } else { "refused".into() },
        reason: outcome.as_ref().err().cloned().unwrap_or_else(|| "-".into()),
        request_id: "-".into(),
    };
    store.append_audit(&event, SystemClock.now_ms()).await?;
    outcome.map_err(anyhow::Error::msg)
}

async fn admin(config: &Config, cmd: AdminCommand) -> Result<ExitCode> {
    let store = Store::open(&config.store_config()).await?;
    let now = SystemClock.now();
    let (op, action, object, result): (Operator, &str, String, Result<Option<String>, String>) = match cmd {
        AdminCommand::Unlink { assistant, doctor, op } => {
            let r = store.unlink_assistant(&assistant, &doctor).await.map(|_| None).map_err(|e| e.to_string());
            (op, "admin.unlink", format!("{assistant}->{doctor}"), r)
        }
        AdminCommand::Patient(cmd) => patient_admin(&store, cmd, now).await,
        AdminCommand::RotateKey { settle_seconds, op } => {
            let path = config.path(&config.records.key_file);
            let r = hpki_gateway::key_rotation::rotate(&path, &store, now, Duration::from_secs(settle_seconds))
                .await
                .map(|r| {
                    Some(format!(
                        "key {} is current; re-encrypted {} drafts and {} records",
                        r.new_key, r.drafts, r.records
                    ))
                })
                .map_err(|e| e.to_string());
            (op, "admin.key.rotate", path.display().to_string(), r)
        }
        AdminCommand::AddInstitution { name, name_kanji, op } => {
            let r = store
                .add_institution(name.trim(), name_kanji.as_deref(), now)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            (op, "admin.institution.add", name, r)
        }
        AdminCommand::AddPerson { cert, id, role, name, name_kanji, institution, op } => {
            let person = person_from(cert.as_deref(), id, role, name, name_kanji, &institution);
            let (object, r) = match person {
                Ok(p) => (p.id.clone(), store.add_person(&p, now).await.map(|_| None).map_err(|e| e.to_string())),
                Err(e) => ("-".into(), Err(e)),
            };
            (op, "admin.person.add", object, r)
        }
        AdminCommand::Link { assistant, doctor, op } => {
            let r = store.link_assistant(&assistant, &doctor, now).await.map(|_| None).map_err(|e| e.to_string());
            (op, "admin.link", format!("{assistant}->{doctor}"), r)
        }
        AdminCommand::Deactivate { person, op } => {
            let r = store.set_person_active(&person, false, now).await.map(|_| None).map_err(|e| e.to_string());
            (op, "admin.person.deactivate", person, r)
        }
        AdminCommand::Activate { person, op } => {
            let r = store.set_person_active(&person, true, now).await.map(|_| None).map_err(|e| e.to_string());
            (op, "admin.person.activate", person, r)
        }
        AdminCommand::SuspendTerminal { institution, name, reason, lift, op } => {
            let r = store
                .set_terminal_suspended(&institution, &name, !lift, &reason, now)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            (
                op,
                if lift { "admin.terminal.unsuspend" } else { "admin.terminal.suspend" },
                format!("{institution}/{name}"),
                r,
            )
        }
    };
    let operator = op.name()?;
    let output = result.as_ref().ok().cloned().flatten();
    admin_audit(&store, &operator, action, &object, result.map(|_| ())).await?;
    match output {
        Some(text) => println!("{text}"),
        None => println!("{action} {object}: done"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn patient_admin(
    store: &Store,
    cmd: PatientCommand,
    now: i64,
) -> (Operator, &'static str, String, Result<Option<String>, String>) {
    match cmd {
        PatientCommand::Add { name, name_kanji, birth_date, op } => {
            let req = hpki_protocol::workflow::NewPatient { name, name_kanji, birth_date };
            let rng = ring::rand::SystemRandom::new();
            match hpki_gateway::workflow_api::new_patient_row(&rng, now, &req) {
                Ok(row) => {
                    let by = op.name().unwrap_or_else(|_| "-".into());
                    let r = store.add_patient(&row, &format!("admin:{by}"), now).await;
                    (
                        op,
                        "admin.patient.add",
                        format!("patient:{}", row.id),
                        r.map(|_| Some(row.id)).map_err(|e| e.to_string()),
                    )
                }
                Err(r) => (op, "admin.patient.add", "-".into(), Err(r.message)),
            }
        }
        PatientCommand::Consent { patient, institution, withdraw, op } => {
            let by = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
            let r = if withdraw {
                match store.withdraw_consent(&patient, &institution, now).await {
                    Ok(true) => Ok(None),
                    Ok(false) => Err(format!("no consent of {patient} for {institution:?} in force")),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                store.grant_consent(&patient, &institution, &by, now).await.map(|_| None).map_err(|e| e.to_string())
            };
            let action = if withdraw { "admin.patient.consent.withdraw" } else { "admin.patient.consent" };
            (op, action, format!("patient:{patient} institution:{institution}"), r)
        }
        PatientCommand::Enroll { patient, consent, op } => {
            let object = format!("patient:{patient}");
            let by = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
            let r = enroll(store, &patient, &consent, &by, now).await;
            (op, "admin.patient.enroll", object, r.map(Some))
        }
    }
}

/// Consent first, then the account with an initial password (AUTH-4).
async fn enroll(store: &Store, patient: &str, consent: &[String], by: &str, now: i64) -> Result<String, String> {
    if store.patient(patient).await.map_err(|e| e.to_string())?.is_none() {
        return Err(format!("no patient {patient:?}; register with `admin patient add` first"));
    }
    for institution in consent {
        store.grant_consent(patient, institution, by, now).await.map_err(|e| e.to_string())?;
    }
    if store.consented_institutions(patient).await.map_err(|e| e.to_string())?.is_empty() {
        return Err("record the patient's consent first: --consent INSTITUTION".into());
    }
    let password = hpki_gateway::passwords::initial_password().map_err(|e| e.to_string())?;
    let hash = hpki_gateway::passwords::hash(&password).map_err(|e| e.to_string())?;
    store.set_initial_password(patient, &hash, now).await.map_err(|e| e.to_string())?;
    Ok(format!(
        "patient ID: {patient}\ninitial password: {}\n(hand it over once; it must be replaced at the first sign-in)",
        password.as_str()
    ))
}

/// A person from a card certificate, or from the flags.
fn person_from(
    cert: Option<&Path>,
    id: Option<String>,
    role: Option<String>,
    name: Option<String>,
    name_kanji: Option<String>,
    institution: &str,
) -> Result<NewPerson, String> {
    if let Some(path) = cert {
        let certs = hpki_gateway::tls::certificates(path).map_err(|e| e.to_string())?;
        let der = certs.first().ok_or("no certificate in the file")?;
        let holder = hpki_profile::read_holder(der.as_ref()).map_err(|e| e.to_string())?;
        if holder.serial_number.is_none() {
            return Err("the certificate has no subject serialNumber".into());
        }
        let role = match holder.kind {
            hpki_profile::HolderKind::Licensed(p) => {
                Role::of_profession(p).ok_or_else(|| format!("{} has no role at this gateway", p.slug()))?
            }
            hpki_profile::HolderKind::Assistant => {
                let inst = holder.institution.as_deref().unwrap_or_default();
                if inst != institution {
                    return Err(format!("the card names institution {inst:?}, not {institution:?}"));
                }
                Role::Assistant
            }
            hpki_profile::HolderKind::Other => return Err("not an HPKI or assistant card certificate".into()),
        };
        let id = holder.person_id().ok_or("the certificate has no subject serialNumber")?;
        return Ok(NewPerson {
            id,
            role: role.name().into(),
            name: holder.name.unwrap_or_default(),
            name_kanji: name_kanji.or(holder.name_kanji),
            institution: institution.into(),
        });
    }
    let id = id.filter(|s| !s.trim().is_empty()).ok_or("give --cert FILE, or --id, --role and --name")?;
    let role = role.ok_or("--role is required without --cert")?;
    let role = Role::from_name(&role)
        .filter(|r| !matches!(r, Role::Patient | Role::Admin))
        .ok_or_else(|| format!("unknown role {role:?}: doctor, dentist, pharmacist, nurse, dietitian or assistant"))?;
    let name = name.filter(|s| !s.trim().is_empty()).ok_or("--name is required without --cert")?;
    Ok(NewPerson { id, role: role.name().into(), name, name_kanji, institution: institution.into() })
}

fn parse_time(text: &str) -> Result<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{text:?} is not an RFC 3339 time"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

async fn audit(config: &Config, cmd: AuditCommand) -> Result<ExitCode> {
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
