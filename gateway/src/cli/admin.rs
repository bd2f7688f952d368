//! `hpki-gateway admin`: institutions, people, links, patients, record keys and
//! terminal suspension, each audited with the operator.

use crate::cli::{Operator, admin_audit_of};
use anyhow::Result;
use clap::Subcommand;
use hpki_gateway::audit::Action;
use hpki_gateway::audit::outbox::{Staged, Staging};
use hpki_gateway::clock::{Clock, SystemClock};
use hpki_gateway::config::Config;
use hpki_gateway::domain::roles::Role;
use hpki_gateway::store::{ModeRow, NewPerson, Store};
use hpki_protocol::emergency::OperatingMode;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
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
    /// Break-glass (FLOW-7): designate who may break the glass, and record
    /// the review of an access after use.
    #[command(subcommand)]
    BreakGlass(BreakGlassCommand),
    /// Set the operating mode (FLOW-7): normal, read-only (reads served,
    /// writes refused) or blocked (only sign-in and break-glass served).
    /// Every gateway on the store honours it from its next request.
    Mode {
        #[arg(value_parser = parse_mode)]
        mode: OperatingMode,
        /// Why (shown on the terminals' banner and on /readyz).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        op: Operator,
    },
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
pub(crate) enum BreakGlassCommand {
    /// Designate a clinician (doctor, dentist, pharmacist, nurse) to break
    /// the glass. Off by default: nobody is designated.
    Grant {
        #[arg(long)]
        person: String,
        #[command(flatten)]
        op: Operator,
    },
    /// End a designation; the person's accesses in force end with it.
    Revoke {
        #[arg(long)]
        person: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Record an auditor's review of an access that is over; until then it
    /// appears in every monthly report's break-glass review.
    Review {
        /// The access id (`bg_…`, in the report and the audit log).
        #[arg(long)]
        id: String,
        /// What the review found.
        #[arg(long, default_value = "reviewed")]
        note: String,
        #[command(flatten)]
        op: Operator,
    },
}

fn parse_mode(s: &str) -> Result<OperatingMode, String> {
    s.parse().map_err(|e: hpki_protocol::emergency::UnknownMode| e.to_string())
}

#[derive(Subcommand)]
pub(crate) enum PatientCommand {
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
    /// The patient objects to secondary use of their records (FLOW-8):
    /// never in a research export; --undo lifts it.
    OptOut {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        undo: bool,
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

pub(crate) async fn admin(config: &Config, cmd: AdminCommand) -> Result<ExitCode> {
    let store = Store::open(&config.store_config()).await?;
    let now = SystemClock.now();
    let request_id = super::cli_request_id();
    let (op, action, object, result): (Operator, Action, String, Result<Option<String>, String>) = match cmd {
        AdminCommand::Unlink { assistant, doctor, op } => {
            let object = format!("{assistant}->{doctor}");
            let s = staged(&request_id, &op, Action::AdminUnlink, &object);
            let r =
                store.unlink_assistant(&assistant, &doctor, Some(&s)).await.map(|_| None).map_err(|e| e.to_string());
            (op, Action::AdminUnlink, object, r)
        }
        AdminCommand::Patient(cmd) => patient_admin(&store, cmd, now, &request_id).await,
        AdminCommand::BreakGlass(cmd) => break_glass_admin(&store, cmd, now, &request_id).await,
        AdminCommand::Mode { mode, reason, op } => {
            let object = format!("mode:{mode}");
            let r = match reason.trim() {
                "" => Err("say why: --reason TEXT (the terminals show it)".to_owned()),
                why => {
                    let s = staged(&request_id, &op, Action::AdminMode, &object);
                    let by = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
                    let row = ModeRow { mode, reason: why.to_owned(), changed_by: by, changed_at: now };
                    store
                        .set_operating_mode(&row, Some(&s))
                        .await
                        .map(|_| {
                            Some(format!(
                                "operating mode: {mode} ({why}); every gateway applies it from its next request"
                            ))
                        })
                        .map_err(|e| e.to_string())
                }
            };
            (op, Action::AdminMode, object, r)
        }
        AdminCommand::RotateKey { settle_seconds, op } => {
            let path = config.path(&config.records.key_file);
            let r = hpki_gateway::ops::key_rotation::rotate(&path, &store, now, Duration::from_secs(settle_seconds))
                .await
                .map(|r| {
                    Some(format!(
                        "key {} is current; re-encrypted {} drafts, {} records and {} correction requests",
                        r.new_key, r.drafts, r.records, r.corrections
                    ))
                })
                .map_err(|e| e.to_string());
            (op, Action::AdminKeyRotate, path.display().to_string(), r)
        }
        AdminCommand::AddInstitution { name, name_kanji, op } => {
            let s = staged(&request_id, &op, Action::AdminInstitutionAdd, &name);
            let r = store
                .add_institution_staged(name.trim(), name_kanji.as_deref(), now, Some(&s))
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            (op, Action::AdminInstitutionAdd, name, r)
        }
        AdminCommand::AddPerson { cert, id, role, name, name_kanji, institution, op } => {
            let person = person_from(cert.as_deref(), id, role, name, name_kanji, &institution);
            let (object, r) = match person {
                Ok(p) => {
                    let s = staged(&request_id, &op, Action::AdminPersonAdd, &p.id);
                    (
                        p.id.clone(),
                        store.add_person_staged(&p, now, Some(&s)).await.map(|_| None).map_err(|e| e.to_string()),
                    )
                }
                Err(e) => ("-".into(), Err(e)),
            };
            (op, Action::AdminPersonAdd, object, r)
        }
        AdminCommand::Link { assistant, doctor, op } => {
            let object = format!("{assistant}->{doctor}");
            let s = staged(&request_id, &op, Action::AdminLink, &object);
            let r = store
                .link_assistant_staged(&assistant, &doctor, now, Some(&s))
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            (op, Action::AdminLink, object, r)
        }
        AdminCommand::Deactivate { person, op } => {
            let s = staged(&request_id, &op, Action::AdminPersonDeactivate, &person);
            let r = store
                .set_person_active_staged(&person, false, now, Some(&s))
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            (op, Action::AdminPersonDeactivate, person, r)
        }
        AdminCommand::Activate { person, op } => {
            let s = staged(&request_id, &op, Action::AdminPersonActivate, &person);
            let r = store
                .set_person_active_staged(&person, true, now, Some(&s))
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            (op, Action::AdminPersonActivate, person, r)
        }
        AdminCommand::SuspendTerminal { institution, name, reason, lift, op } => {
            let action = if lift { Action::AdminTerminalUnsuspend } else { Action::AdminTerminalSuspend };
            let object = format!("{institution}/{name}");
            let s = staged(&request_id, &op, action, &object);
            let r = store
                .set_terminal_suspended_staged(&institution, &name, !lift, &reason, now, Some(&s))
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            (op, action, object, r)
        }
    };
    let operator = op.name()?;
    let output = result.as_ref().ok().cloned().flatten();
    admin_audit_of(&store, &request_id, &operator, action, &object, result.map(|_| ())).await?;
    match output {
        Some(text) => println!("{text}"),
        None => println!("{action} {object}: done"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn patient_admin(
    store: &Store,
    cmd: PatientCommand,
    now: i64,
    request_id: &str,
) -> (Operator, Action, String, Result<Option<String>, String>) {
    match cmd {
        PatientCommand::Add { name, name_kanji, birth_date, op } => {
            let req = hpki_protocol::workflow::NewPatient { name, name_kanji, birth_date };
            let rng = ring::rand::SystemRandom::new();
            match hpki_gateway::routes::patients::new_patient_row(&rng, now, &req) {
                Ok(row) => {
                    let by = op.name().unwrap_or_else(|_| "-".into());
                    let s = staged(request_id, &op, Action::AdminPatientAdd, &format!("patient:{}", row.id));
                    let r = store.add_patient(&row, &format!("admin:{by}"), now, &s).await;
                    (
                        op,
                        Action::AdminPatientAdd,
                        format!("patient:{}", row.id),
                        r.map(|_| Some(row.id)).map_err(|e| e.to_string()),
                    )
                }
                Err(r) => (op, Action::AdminPatientAdd, "-".into(), Err(r.message)),
            }
        }
        PatientCommand::Consent { patient, institution, withdraw, op } => {
            let by = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
            let action = if withdraw { Action::AdminPatientConsentWithdraw } else { Action::AdminPatientConsent };
            let object = format!("patient:{patient} institution:{institution}");
            let s = staged(request_id, &op, action, &object);
            let r = if withdraw {
                match store.withdraw_consent(&patient, &institution, now, Some(&s)).await {
                    Ok(true) => Ok(None),
                    Ok(false) => Err(format!("no consent of {patient} for {institution:?} in force")),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                store
                    .grant_consent(&patient, &institution, &by, now, Some(&s))
                    .await
                    .map(|_| None)
                    .map_err(|e| e.to_string())
            };
            (op, action, object, r)
        }
        PatientCommand::OptOut { patient, undo, op } => {
            let action = if undo { Action::AdminPatientOptIn } else { Action::AdminPatientOptOut };
            let object = format!("patient:{patient}");
            let s = staged(request_id, &op, action, &object);
            let r = store
                .set_research_opt_out(&patient, !undo, now, Some(&s))
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            (op, action, object, r)
        }
        PatientCommand::Enroll { patient, consent, op } => {
            let object = format!("patient:{patient}");
            let by = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
            let s = staged(request_id, &op, Action::AdminPatientEnroll, &object);
            let r = enroll(store, &patient, &consent, &by, now, &s).await;
            (op, Action::AdminPatientEnroll, object, r.map(Some))
        }
    }
}

pub(crate) async fn break_glass_admin(
    store: &Store,
    cmd: BreakGlassCommand,
    now: i64,
    request_id: &str,
) -> (Operator, Action, String, Result<Option<String>, String>) {
    match cmd {
        BreakGlassCommand::Grant { person, op } => {
            let object = format!("person:{person}");
            let by = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
            let r = async {
                let p = store.person(&person).await.map_err(|e| e.to_string())?.ok_or_else(|| {
                    format!("no person {person:?}; register them with `admin add-person` first")
                })?;
                let role = Role::from_name(&p.role).ok_or_else(|| format!("{person} has the unknown role {:?}", p.role))?;
                if !hpki_gateway::domain::roles::allowed(role, hpki_gateway::domain::roles::Action::BreakGlass) {
                    return Err(format!(
                        "a {role} may not break the glass: the role table allows doctors, dentists, pharmacists and nurses"
                    ));
                }
                let s = staged(request_id, &op, Action::AdminBreakGlassGrant, &object);
                store.designate_break_glass(&person, &by, now, Some(&s)).await.map_err(|e| match e {
                    hpki_gateway::store::StoreError::Conflict(_) => format!("{person} is designated already"),
                    e => e.to_string(),
                })?;
                Ok(Some(format!("{person} may break the glass (accesses last as [break_glass] configures)")))
            }
            .await;
            (op, Action::AdminBreakGlassGrant, object, r)
        }
        BreakGlassCommand::Revoke { person, op } => {
            let object = format!("person:{person}");
            let by = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
            let s = staged(request_id, &op, Action::AdminBreakGlassRevoke, &object);
            let r = match store.revoke_break_glass(&person, &by, now, Some(&s)).await {
                Ok(true) => Ok(None),
                Ok(false) => Err(format!("{person} is not designated to break the glass")),
                Err(e) => Err(e.to_string()),
            };
            (op, Action::AdminBreakGlassRevoke, object, r)
        }
        BreakGlassCommand::Review { id, note, op } => {
            let object = format!("break_glass:{id}");
            let by = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
            let s = staged(request_id, &op, Action::AdminBreakGlassReview, &object);
            let r = match note.trim() {
                "" => Err("say what the review found: --note TEXT".to_owned()),
                note => {
                    store.review_break_glass(&id, &by, note, now, Some(&s)).await.map(|_| None).map_err(|e| match e {
                        hpki_gateway::store::StoreError::Conflict(_) => {
                            format!("break-glass access {id} is reviewed already")
                        }
                        e => e.to_string(),
                    })
                }
            };
            (op, Action::AdminBreakGlassReview, object, r)
        }
    }
}

/// The entry a CLI change owes, staged with it (`audit::outbox`): the run's
/// request id, the operator, the command's action and object — what
/// `admin_audit_of` writes once the command is done.
fn staged(request_id: &str, op: &Operator, action: Action, object: &str) -> Staged {
    let actor = format!("admin:{}", op.name().unwrap_or_else(|_| "-".into()));
    Staging { request_id: request_id.into(), terminal: "-".into(), institution: "-".into(), action }.stage(
        &actor,
        object,
        SystemClock.now_ms(),
    )
}

/// Consent first, then the account with an initial password (AUTH-4).
pub(crate) async fn enroll(
    store: &Store,
    patient: &str,
    consent: &[String],
    by: &str,
    now: i64,
    staged: &Staged,
) -> Result<String, String> {
    if store.patient(patient).await.map_err(|e| e.to_string())?.is_none() {
        return Err(format!("no patient {patient:?}; register with `admin patient add` first"));
    }
    for institution in consent {
        store.grant_consent(patient, institution, by, now, Some(staged)).await.map_err(|e| e.to_string())?;
    }
    if store.consented_institutions(patient).await.map_err(|e| e.to_string())?.is_empty() {
        return Err("record the patient's consent first: --consent INSTITUTION".into());
    }
    let password = hpki_gateway::domain::passwords::initial_password().map_err(|e| e.to_string())?;
    let hash = hpki_gateway::domain::passwords::hash(&password).map_err(|e| e.to_string())?;
    store.set_initial_password(patient, &hash, now, Some(staged)).await.map_err(|e| e.to_string())?;
    Ok(format!(
        "patient ID: {patient}\ninitial password: {}\n(hand it over once; it must be replaced at the first sign-in)",
        password.as_str()
    ))
}

/// A person from a card certificate, or from the flags.
pub(crate) fn person_from(
    cert: Option<&Path>,
    id: Option<String>,
    role: Option<String>,
    name: Option<String>,
    name_kanji: Option<String>,
    institution: &str,
) -> Result<NewPerson, String> {
    if let Some(path) = cert {
        let certs = hpki_gateway::credentials::certificates(path).map_err(|e| e.to_string())?;
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
