//! `verify` and `inspect`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use hpki_ca::CaRole;
use hpki_profile::validate::rfc3339;
use hpki_profile::{
    AcceptedPolicies, CardHolder, DEFAULT_MAX_INTERMEDIATES, Grant, HolderKind, Oid, Purpose, Revocation, TrustScope,
    Validator, ValidatorConfig,
};
use serde::Serialize;

#[derive(Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    /// Login (authentication certificate, digitalSignature).
    Auth,
    /// Confirmation (signature certificate, nonRepudiation).
    Sign,
    /// Pure RFC 5280 path validation: no HPKI key usage, policy, hcRole or
    /// scope requirement (for anchors that are not HPKI).
    Any,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Trust the root of this CA directory (and know its CAs and test
    /// policies).
    #[arg(long, conflicts_with = "anchor")]
    dir: Option<PathBuf>,
    /// Trust anchor certificate (DER or PEM); repeatable.
    #[arg(long)]
    anchor: Vec<PathBuf>,
    /// Intermediate CA certificate; repeatable.
    #[arg(long)]
    intermediate: Vec<PathBuf>,
    /// CRL (DER or PEM); repeatable. Without one, revocation fails closed
    /// unless --no-revocation.
    #[arg(long)]
    crl: Vec<PathBuf>,
    /// Validate at this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    #[arg(long, value_enum, default_value = "auth")]
    purpose: PurposeArg,
    /// Do not check revocation (explicit relaxation).
    #[arg(long)]
    no_revocation: bool,
    /// Also accept this end-entity policy OID for the purpose; repeatable.
    #[arg(long)]
    accept_policy: Vec<String>,
    /// What a CA may certify, as KIND=FILE with KIND licensed, assistants or
    /// nothing (an anchor or intermediate certificate); repeatable. Without
    /// any, each --anchor is taken as an HPKI root (licensed professionals).
    /// With --dir, the directory's own scoping applies.
    #[arg(long, value_name = "KIND=FILE", conflicts_with = "dir")]
    scope: Vec<String>,
    #[arg(long)]
    json: bool,
    /// The certificate to validate (DER or PEM).
    cert: PathBuf,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(long)]
    json: bool,
    /// The certificate (DER or PEM).
    cert: PathBuf,
}

#[derive(Serialize)]
struct VerifyOutput {
    valid: bool,
    reason: Option<String>,
    code: Option<&'static str>,
    profession: Option<String>,
    institution: Option<String>,
    subject: Option<String>,
    purpose: &'static str,
    at: String,
    chain: Vec<String>,
    revocation_checked: bool,
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn certificate(path: &Path, what: &str) -> Result<Vec<u8>> {
    hpki_ca::certificate_from_bytes(&read_file(path, what)?)
        .map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
}

fn crl(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_file(path, "CRL")?;
    if bytes.starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes)
            .map_err(|e| anyhow::anyhow!("CRL {} is not PEM: {e}", path.display()))?;
        return Ok(pem.contents);
    }
    Ok(bytes)
}

/// `--scope KIND=FILE`.
fn scope_arg(text: &str) -> Result<TrustScope> {
    let (kind, file) = text
        .split_once('=')
        .with_context(|| format!("--scope {text:?}: write KIND=FILE, e.g. assistants=institution-root.pem"))?;
    let grant = match kind {
        "licensed" => Grant::Licensed { professions: None },
        "assistants" => Grant::Assistants { institutions: None },
        "nothing" => Grant::Nothing,
        other => anyhow::bail!("--scope {text:?}: {other:?} is not licensed, assistants or nothing"),
    };
    Ok(TrustScope { ca: certificate(Path::new(file), "--scope CA")?, grant })
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let leaf = certificate(&args.cert, "certificate")?;
    let purpose = match args.purpose {
        PurposeArg::Auth => Purpose::Authentication,
        PurposeArg::Sign => Purpose::Signature,
        PurposeArg::Any => Purpose::Any,
    };
    let mut policies = AcceptedPolicies::hpki();
    let (anchors, mut intermediates, scopes) = match &args.dir {
        Some(dir) => {
            let ca = hpki_ca::CaDir::open(dir)?;
            policies = policies.with_test_policies();
            let mids = CaRole::ALL
                .iter()
                .filter(|r| **r != CaRole::Root)
                .map(|r| ca.ca_cert_der(*r))
                .collect::<Result<Vec<_>, _>>()?;
            // The directory's own scoping: its HPKI CAs certify licensed
            // professionals, its institution CA assistants only, the rest
            // (root, terminal, service, VPN) no card holder.
            let scopes = CaRole::ALL
                .iter()
                .map(|r| Ok(TrustScope { ca: ca.ca_cert_der(*r)?, grant: r.grant() }))
                .collect::<Result<Vec<_>>>()?;
            (vec![ca.ca_cert_der(CaRole::Root)?], mids, scopes)
        }
        None => {
            anyhow::ensure!(!args.anchor.is_empty(), "give --dir DIR or at least one --anchor FILE");
            let anchors: Vec<Vec<u8>> = args.anchor.iter().map(|p| certificate(p, "anchor")).collect::<Result<_>>()?;
            let scopes = if args.scope.is_empty() {
                anchors
                    .iter()
                    .map(|a| TrustScope { ca: a.clone(), grant: Grant::Licensed { professions: None } })
                    .collect()
            } else {
                args.scope.iter().map(|s| scope_arg(s)).collect::<Result<Vec<_>>>()?
            };
            (anchors, Vec::new(), scopes)
        }
    };
    for p in &args.intermediate {
        intermediates.push(certificate(p, "intermediate")?);
    }
    for text in &args.accept_policy {
        policies.accept(purpose, Oid::parse(text)?);
    }
    let crls = args.crl.iter().map(|p| crl(p)).collect::<Result<Vec<_>>>()?;
    let at = match &args.at {
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("--at {t:?} is not an RFC 3339 time (like 2026-11-21T09:00:00Z)"))?
            .unix_timestamp(),
        None => time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let revocation = if args.no_revocation { Revocation::NotChecked } else { Revocation::Required };
    let validator = Validator::new(ValidatorConfig {
        anchors,
        intermediates,
        crls,
        policies,
        revocation,
        scopes,
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })?;
    let result = validator.validate(&leaf, &[], purpose, at);
    let holder = hpki_profile::read_holder(&leaf).ok();
    let out = VerifyOutput {
        valid: result.is_ok(),
        reason: result.as_ref().err().map(ToString::to_string),
        code: result.as_ref().err().map(|r| r.code()),
        profession: holder.as_ref().and_then(CardHolder::profession).map(|p| p.slug().to_owned()),
        institution: holder.as_ref().and_then(|h| h.institution.clone()),
        subject: holder.as_ref().map(|h| h.subject.clone()),
        purpose: purpose.name(),
        at: rfc3339(at),
        chain: result.as_ref().map(|v| v.chain.clone()).unwrap_or_default(),
        revocation_checked: revocation == Revocation::Required,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if let Ok(v) = &result {
        println!("VALID for {} at {}: {}", purpose.name(), out.at, v.holder.subject);
        match &v.holder.kind {
            HolderKind::Licensed(p) => {
                println!("  profession   {} ({}, hcRole {:?})", p.slug(), p.japanese(), p.hc_role())
            }
            HolderKind::Assistant => println!("  assistant of {}", v.holder.institution.as_deref().unwrap_or("?")),
            HolderKind::Other => println!("  (no HPKI role)"),
        }
        for (i, c) in v.chain.iter().enumerate() {
            println!("  chain[{i}]     {c}");
        }
        for e in &v.revocation {
            println!(
                "  not revoked  per CRL of {} #{} (next update {}; scope: {})",
                e.issuer,
                e.crl_number.as_deref().unwrap_or("-"),
                rfc3339(e.next_update),
                e.scope
            );
        }
        if !out.revocation_checked {
            println!("  revocation NOT checked (--no-revocation)");
        }
    } else if let Some(reason) = &out.reason {
        println!("REFUSED ({}): {reason}", out.code.unwrap_or("-"));
    }
    Ok(if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[derive(Serialize)]
struct InspectOutput<'a> {
    kind: &'static str,
    profession: Option<&'static str>,
    profession_japanese: Option<&'static str>,
    hc_role: Option<&'static str>,
    name: &'a Option<String>,
    name_kanji: &'a Option<String>,
    institution: &'a Option<String>,
    institution_kanji: &'a Option<String>,
    serial_number: &'a Option<String>,
    subject: &'a str,
    issuer: &'a str,
    certificate_serial: &'a str,
    not_before: String,
    not_after: String,
    key_usage: Vec<&'static str>,
    key_usage_critical: bool,
    policies: Vec<String>,
    crl_distribution_points: &'a [String],
}

pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let der = certificate(&args.cert, "certificate")?;
    let h = hpki_profile::read_holder(&der).with_context(|| format!("{}", args.cert.display()))?;
    let p = h.profession();
    let out = InspectOutput {
        kind: match h.kind {
            HolderKind::Licensed(_) => "licensed",
            HolderKind::Assistant => "assistant",
            HolderKind::Other => "other",
        },
        profession: p.map(|p| p.slug()),
        profession_japanese: p.map(|p| p.japanese()),
        hc_role: p.map(|p| p.hc_role()),
        name: &h.name,
        name_kanji: &h.name_kanji,
        institution: &h.institution,
        institution_kanji: &h.institution_kanji,
        serial_number: &h.serial_number,
        subject: &h.subject,
        issuer: &h.issuer,
        certificate_serial: &h.certificate_serial,
        not_before: rfc3339(h.not_before),
        not_after: rfc3339(h.not_after),
        key_usage: h.key_usage.names(),
        key_usage_critical: h.key_usage.critical,
        policies: h.policies.iter().map(policy_label).collect(),
        crl_distribution_points: &h.crl_distribution_points,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let show = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            println!("{k:<20}{v}");
        }
    };
    show("kind", Some(out.kind));
    if let Some(p) = p {
        println!("{:<20}{} ({}, hcRole {:?})", "profession", p.slug(), p.japanese(), p.hc_role());
    }
    show("name", h.name.as_deref());
    show("name (kanji)", h.name_kanji.as_deref());
    show("institution", h.institution.as_deref());
    show("institution (kanji)", h.institution_kanji.as_deref());
    show("serialNumber", h.serial_number.as_deref());
    show("subject", Some(&h.subject));
    show("issuer", Some(&h.issuer));
    show("serial", Some(&h.certificate_serial));
    println!("{:<20}{} .. {}", "validity", out.not_before, out.not_after);
    println!(
        "{:<20}{}{}",
        "key usage",
        out.key_usage.join(", "),
        if h.key_usage.critical { " (critical)" } else { "" }
    );
    for p in &out.policies {
        println!("{:<20}{p}", "policy");
    }
    for d in &h.crl_distribution_points {
        println!("{:<20}{d}", "CRL");
    }
    Ok(ExitCode::SUCCESS)
}

fn policy_label(oid: &Oid) -> String {
    use hpki_profile::oid as o;
    let text = oid.to_string();
    let name = match text.as_str() {
        o::HPKI_SIGNATURE_POLICY => "HPKI signature",
        o::HPKI_AUTHENTICATION_POLICY => "HPKI authentication (inferred)",
        o::TEST_HPKI_AUTHENTICATION_POLICY => "test HPKI authentication",
        o::TEST_HPKI_SIGNATURE_POLICY => "test HPKI signature",
        o::ASSISTANT_AUTHENTICATION_POLICY => "assistant card authentication",
        o::ASSISTANT_SIGNATURE_POLICY => "assistant card signature",
        o::TERMINAL_POLICY => "terminal",
        _ => return text,
    };
    format!("{text} ({name})")
}
