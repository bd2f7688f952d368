//! Issuing test cards (as virtual card images) and terminal credentials.
//!
//! Every request is checked completely before anything is generated or
//! written; outputs are written next to their final place and moved there
//! once the CA state has recorded them.

use std::fs;
use std::path::{Path, PathBuf};

use hpki_card::CardVariant;
use hpki_profile::oid::{self, Oid};
use hpki_profile::{Profession, hcrole};
use rcgen::{
    CertificateParams, CrlDistributionPoint, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose,
    KeyUsagePurpose, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use virtual_card::{AppImage, CardImage};

use crate::dir::{CaDir, CertKind, IssuedCert};
use crate::error::CaError;
use crate::hierarchy::CaRole;
use crate::keys::{self, KeyKind};
use crate::ledger::{self, LedgerEntry};
use crate::pin_policy;

/// A licensed professional's test card.
#[derive(Debug, Clone)]
pub struct CardRequest {
    pub profession: Profession,
    /// Romaji name (Subject CN).
    pub name: String,
    pub name_kanji: Option<String>,
    /// Romaji institution (Subject O), if the card names one.
    pub institution: Option<String>,
    pub institution_kanji: Option<String>,
    pub license_no: String,
    /// Who checked the identity and the licence (CARD-1).
    pub verified_by: String,
    pub pin: String,
    pub variant: CardVariant,
    pub retry_limit: u8,
    pub valid_days: i64,
}

/// An assistant's institution PKI card.
#[derive(Debug, Clone)]
pub struct AssistantRequest {
    pub institution: String,
    pub institution_kanji: Option<String>,
    pub name: String,
    pub name_kanji: Option<String>,
    pub staff_id: String,
    pub pin: String,
    pub variant: CardVariant,
    pub retry_limit: u8,
    pub valid_days: i64,
}

/// A TLS server certificate for one of the gateway's listeners.
#[derive(Debug, Clone)]
pub struct ServerRequest {
    pub name: String,
    pub dns: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub valid_days: i64,
}

/// A time-stamping authority's signing certificate, for a test TSA.
#[derive(Debug, Clone)]
pub struct TsaRequest {
    pub name: String,
    pub valid_days: i64,
}

#[derive(Debug, Clone)]
pub struct TerminalRequest {
    pub institution: String,
    pub name: String,
    pub valid_days: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedCard {
    pub image: PathBuf,
    pub holder: String,
    /// Subject serialNumber: the person's stable id at the gateway.
    pub person_id: String,
    pub authentication_serial: String,
    pub signature_serial: String,
    pub not_after: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedTerminal {
    pub dir: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca_chain: PathBuf,
    pub serial: String,
    pub subject: String,
    pub not_after: String,
}

pub const DEFAULT_CARD_DAYS: i64 = 5 * 365;
pub const DEFAULT_TERMINAL_DAYS: i64 = 365;

/// A random, positive 128-bit serial with a non-zero first byte.
pub fn random_serial() -> Result<SerialNumber, CaError> {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).map_err(|_| CaError::KeyGeneration("no system randomness".into()))?;
    b[0] = (b[0] & 0x7F) | 0x40;
    Ok(SerialNumber::from_slice(&b))
}

fn serial_hex(serial: &SerialNumber) -> String {
    serial.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

/// A name as it goes into a certificate: present, at most 64 characters
/// (X.520 upper bound), no control characters.
fn check_name(field: &'static str, value: &str) -> Result<(), CaError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(CaError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > 64 {
        return Err(CaError::invalid(field, "longer than 64 characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(CaError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Romaji: printable ASCII, as Subject names of real HPKI certificates are.
fn check_romaji(field: &'static str, value: &str) -> Result<(), CaError> {
    check_name(field, value)?;
    if !value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(CaError::invalid(field, "must be romaji (ASCII letters); put kanji in the --*-kanji option"));
    }
    Ok(())
}

pub(crate) fn check_identifier(field: &'static str, value: &str) -> Result<(), CaError> {
    if value.is_empty() || value.len() > 32 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(CaError::invalid(field, "1–32 characters, letters, digits and '-' only"));
    }
    Ok(())
}

pub(crate) fn check_days(days: i64) -> Result<(), CaError> {
    if !(1..=20 * 365).contains(&days) {
        return Err(CaError::invalid("--valid-days", format!("{days} is outside 1..=7300")));
    }
    Ok(())
}

fn check_retry_limit(n: u8) -> Result<(), CaError> {
    if !(1..=virtual_card::image::MAX_RETRY_LIMIT).contains(&n) {
        return Err(CaError::invalid("--retry-limit", format!("{n} is outside 1..=15")));
    }
    Ok(())
}

fn check_new_file(path: &Path) -> Result<(), CaError> {
    if path.exists() {
        return Err(CaError::OutputExists(path.into()));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(CaError::invalid("--out", format!("directory {} does not exist", parent.display())));
    }
    Ok(())
}

/// One application's certificate and key.
pub(crate) struct LeafSpec<'a> {
    pub ca: CaRole,
    pub kind: CertKind,
    pub dn: DistinguishedName,
    pub key_usage: KeyUsagePurpose,
    pub policy: &'a str,
    pub hc_role: Option<Profession>,
    pub san: Option<Vec<u8>>,
    /// DNS names and addresses (server and VPN certificates).
    pub sans: Vec<rcgen::SanType>,
    pub valid_days: i64,
}

pub(crate) struct Leaf {
    pub der: Vec<u8>,
    pub pkcs8: Vec<u8>,
    pub record: IssuedCert,
}

impl CaDir {
    pub(crate) fn issue_leaf(&self, spec: LeafSpec<'_>, key: KeyKind) -> Result<Leaf, CaError> {
        let (pair, pkcs8) = keys::generate(key)?;
        let mut p = CertificateParams::default();
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = now + time::Duration::days(spec.valid_days);
        let serial = random_serial()?;
        p.serial_number = Some(serial.clone());
        p.distinguished_name = spec.dn;
        p.key_usages = vec![spec.key_usage];
        p.use_authority_key_identifier_extension = true;
        p.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![self.crl_url(spec.ca)] }];
        let policy = Oid::parse(spec.policy).map_err(|e| CaError::invalid("policy", e.to_string()))?;
        // Real HPKI certificates mark their policies critical; terminal
        // certificates go through webpki, which refuses what it cannot read.
        let policy_critical = !matches!(
            spec.kind,
            CertKind::Terminal | CertKind::Server | CertKind::VpnEndpoint | CertKind::TimeStamping
        );
        p.custom_extensions.push(crate::ext::custom(
            oid::CERTIFICATE_POLICIES,
            policy_critical,
            crate::ext::certificate_policies(&policy),
        ));
        if let Some(san) = spec.san.filter(|_| spec.sans.is_empty()) {
            p.custom_extensions.push(crate::ext::custom(oid::SUBJECT_ALT_NAME, false, san));
        }
        if let Some(prof) = spec.hc_role {
            p.custom_extensions.push(crate::ext::custom(
                oid::SUBJECT_DIRECTORY_ATTRIBUTES,
                false,
                hcrole::encode(prof),
            ));
        }
        match spec.kind {
            CertKind::Terminal => p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth],
            CertKind::Server => p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth],
            // IKE peers act as both; strongSwan does not insist, other
            // implementations (and RFC 4945 readers) look for these.
            CertKind::VpnEndpoint => {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
            }
            CertKind::TimeStamping => p.custom_extensions.push(crate::ext::custom(
                oid::EXTENDED_KEY_USAGE,
                true,
                crate::ext::time_stamping_eku(),
            )),
            _ => {}
        }
        p.subject_alt_names = spec.sans;
        let cert = p.signed_by(&pair, &self.issuer(spec.ca)?)?;
        let der = cert.der().to_vec();
        let holder = hpki_profile::read_holder(&der)
            .map_err(|e| CaError::KeyGeneration(format!("issued an unreadable certificate: {e}")))?;
        Ok(Leaf {
            der,
            pkcs8,
            record: IssuedCert {
                serial: serial_hex(&serial),
                ca: spec.ca,
                kind: spec.kind,
                subject: holder.subject,
                not_after: hpki_profile::validate::rfc3339(holder.not_after),
                revoked: None,
            },
        })
    }

    /// Issues a licensed professional's card and writes it as a virtual card
    /// image to `out`; the issuance goes into the ledger.
    pub fn issue_card(&mut self, req: &CardRequest, out: &Path) -> Result<IssuedCard, CaError> {
        check_romaji("--name", &req.name)?;
        if let Some(k) = &req.name_kanji {
            check_name("--name-kanji", k)?;
        }
        if let Some(i) = &req.institution {
            check_romaji("--institution", i)?;
        }
        if let Some(k) = &req.institution_kanji {
            check_name("--institution-kanji", k)?;
        }
        check_identifier("--license-no", &req.license_no)?;
        check_name("--verified-by", &req.verified_by)?;
        pin_policy::check(&req.pin, &[&req.license_no])?;
        check_retry_limit(req.retry_limit)?;
        check_days(req.valid_days)?;
        check_new_file(out)?;

        let person_id = format!("{}-{}", req.profession.qualification().code, req.license_no);
        let dn = person_dn(req.institution.as_deref(), &req.name, &person_id);
        let san = crate::ext::directory_name_san(
            req.institution_kanji.as_deref(),
            req.name_kanji.as_deref(),
            Some(&person_id),
        );
        let auth = self.issue_leaf(
            LeafSpec {
                ca: CaRole::HpkiAuth,
                kind: CertKind::CardAuthentication,
                dn: dn.clone(),
                key_usage: KeyUsagePurpose::DigitalSignature,
                policy: oid::TEST_HPKI_AUTHENTICATION_POLICY,
                hc_role: Some(req.profession),
                san: san.clone(),
                sans: Vec::new(),
                valid_days: req.valid_days,
            },
            KeyKind::Rsa2048,
        )?;
        let sign = self.issue_leaf(
            LeafSpec {
                ca: CaRole::HpkiSign,
                kind: CertKind::CardSignature,
                dn,
                key_usage: KeyUsagePurpose::ContentCommitment,
                policy: oid::TEST_HPKI_SIGNATURE_POLICY,
                hc_role: Some(req.profession),
                san,
                sans: Vec::new(),
                valid_days: req.valid_days,
            },
            KeyKind::Rsa2048,
        )?;
        let label = format!("{} ({})", req.name, req.profession.slug());
        let issued = self.commit_card(&auth, &sign, req.variant, &req.pin, req.retry_limit, &label, out, &person_id)?;
        ledger::append(self, LedgerEntry::card_issued(req, &issued, &auth.record, &sign.record, out))?;
        Ok(issued)
    }

    /// Issues an assistant's institution card.
    pub fn issue_assistant_card(&mut self, req: &AssistantRequest, out: &Path) -> Result<IssuedCard, CaError> {
        check_romaji("--institution", &req.institution)?;
        check_romaji("--name", &req.name)?;
        if let Some(k) = &req.name_kanji {
            check_name("--name-kanji", k)?;
        }
        if let Some(k) = &req.institution_kanji {
            check_name("--institution-kanji", k)?;
        }
        check_identifier("--staff-id", &req.staff_id)?;
        pin_policy::check(&req.pin, &[&req.staff_id])?;
        check_retry_limit(req.retry_limit)?;
        check_days(req.valid_days)?;
        check_new_file(out)?;

        let dn = person_dn(Some(&req.institution), &req.name, &req.staff_id);
        let san = crate::ext::directory_name_san(
            req.institution_kanji.as_deref(),
            req.name_kanji.as_deref(),
            Some(&req.staff_id),
        );
        let spec = |kind, key_usage, policy| LeafSpec {
            ca: CaRole::Institution,
            kind,
            dn: dn.clone(),
            key_usage,
            policy,
            hc_role: None,
            san: san.clone(),
            sans: Vec::new(),
            valid_days: req.valid_days,
        };
        let auth = self.issue_leaf(
            spec(
                CertKind::AssistantAuthentication,
                KeyUsagePurpose::DigitalSignature,
                oid::ASSISTANT_AUTHENTICATION_POLICY,
            ),
            KeyKind::Rsa2048,
        )?;
        let sign = self.issue_leaf(
            spec(CertKind::AssistantSignature, KeyUsagePurpose::ContentCommitment, oid::ASSISTANT_SIGNATURE_POLICY),
            KeyKind::Rsa2048,
        )?;
        let label = format!("{} (assistant, {})", req.name, req.institution);
        let issued =
            self.commit_card(&auth, &sign, req.variant, &req.pin, req.retry_limit, &label, out, &req.staff_id)?;
        ledger::append(self, LedgerEntry::assistant_card_issued(req, &issued, &auth.record, &sign.record, out))?;
        Ok(issued)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_card(
        &mut self,
        auth: &Leaf,
        sign: &Leaf,
        variant: CardVariant,
        pin: &str,
        retry_limit: u8,
        label: &str,
        out: &Path,
        person_id: &str,
    ) -> Result<IssuedCard, CaError> {
        let mut image = CardImage::new(
            variant,
            AppImage::new(auth.der.clone(), auth.pkcs8.clone(), pin, retry_limit),
            AppImage::new(sign.der.clone(), sign.pkcs8.clone(), pin, retry_limit),
        );
        image.label = label.to_owned();
        image.validate().map_err(|e| CaError::KeyGeneration(e.to_string()))?;
        let tmp = temp_beside(out);
        image
            .save(&tmp)
            .map_err(|e| CaError::Io { path: tmp.clone(), source: std::io::Error::other(e.to_string()) })?;
        self.state.issued.push(auth.record.clone());
        self.state.issued.push(sign.record.clone());
        if let Err(e) = self.save() {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, out).map_err(CaError::io(out))?;
        Ok(IssuedCard {
            image: out.to_path_buf(),
            holder: label.to_owned(),
            person_id: person_id.to_owned(),
            authentication_serial: auth.record.serial.clone(),
            signature_serial: sign.record.serial.clone(),
            not_after: auth.record.not_after.clone(),
        })
    }

    /// Issues a terminal certificate and key (mTLS "connection information")
    /// into `out_dir` (created; must not exist or be empty).
    pub fn issue_terminal(&mut self, req: &TerminalRequest, out_dir: &Path) -> Result<IssuedTerminal, CaError> {
        check_romaji("--institution", &req.institution)?;
        check_romaji("--name", &req.name)?;
        // The gateway names a terminal `institution/name`: a '/' in either
        // would let two terminals share that name.
        for (field, value) in [("--institution", &req.institution), ("--name", &req.name)] {
            if value.contains('/') {
                return Err(CaError::invalid(field, "a terminal's institution and name may not contain '/'"));
            }
        }
        check_days(req.valid_days)?;
        check_empty_dir(out_dir)?;
        let credentials = Credentials {
            ca: CaRole::Terminal,
            kind: CertKind::Terminal,
            organisation: &req.institution,
            name: &req.name,
            sans: Vec::new(),
            valid_days: req.valid_days,
        };
        let issued = self.issue_credentials(credentials, out_dir, "terminal")?;
        ledger::append(self, LedgerEntry::terminal_issued(&req.institution, &req.name, &issued))?;
        Ok(issued)
    }

    /// A key (ECDSA P-256) and a certificate (C=JP, O, CN; digitalSignature;
    /// the purpose of `kind`) issued by `ca`, written by `write_credentials`.
    fn issue_credentials(&mut self, c: Credentials<'_>, out_dir: &Path, stem: &str) -> Result<IssuedTerminal, CaError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "JP");
        dn.push(DnType::OrganizationName, c.organisation.trim());
        dn.push(DnType::CommonName, c.name.trim());
        let spec = LeafSpec {
            ca: c.ca,
            kind: c.kind,
            dn,
            key_usage: KeyUsagePurpose::DigitalSignature,
            policy: oid::TERMINAL_POLICY,
            hc_role: None,
            san: None,
            sans: c.sans,
            valid_days: c.valid_days,
        };
        let leaf = self.issue_leaf(spec, KeyKind::EcdsaP256)?;
        self.write_credentials(&leaf, out_dir, c.ca, stem)
    }

    /// Writes TLS credentials into `out_dir`: `<stem>.pem`, `<stem>.key`
    /// (0600) and `ca-chain.pem` (the issuing CA and the root), and records
    /// the certificate.
    fn write_credentials(
        &mut self,
        leaf: &Leaf,
        out_dir: &Path,
        ca: CaRole,
        stem: &str,
    ) -> Result<IssuedTerminal, CaError> {
        fs::create_dir_all(out_dir).map_err(CaError::io(out_dir))?;
        let cert_path = out_dir.join(format!("{stem}.pem"));
        let key_path = out_dir.join(format!("{stem}.key"));
        let chain_path = out_dir.join("ca-chain.pem");
        let chain = keys::pem("CERTIFICATE", &self.ca_cert_der(ca)?)
            + &keys::pem("CERTIFICATE", &self.ca_cert_der(CaRole::Root)?);
        keys::write_private(&key_path, keys::pem("PRIVATE KEY", &leaf.pkcs8).as_bytes())?;
        fs::write(&cert_path, keys::pem("CERTIFICATE", &leaf.der)).map_err(CaError::io(&cert_path))?;
        fs::write(&chain_path, chain).map_err(CaError::io(&chain_path))?;
        self.state.issued.push(leaf.record.clone());
        self.save()?;
        Ok(IssuedTerminal {
            dir: out_dir.into(),
            certificate: cert_path,
            key: key_path,
            ca_chain: chain_path,
            serial: leaf.record.serial.clone(),
            subject: leaf.record.subject.clone(),
            not_after: leaf.record.not_after.clone(),
        })
    }

    /// Issues a TLS server certificate (ECDSA P-256, serverAuth) for the
    /// gateway into `out_dir`: `server.pem`, `server.key` (0600) and
    /// `ca-chain.pem` (service CA and root, which clients trust).
    pub fn issue_server(&mut self, req: &ServerRequest, out_dir: &Path) -> Result<IssuedTerminal, CaError> {
        check_romaji("--name", &req.name)?;
        check_days(req.valid_days)?;
        if req.dns.is_empty() && req.ips.is_empty() {
            return Err(CaError::invalid("--dns/--ip", "give at least one DNS name or IP address"));
        }
        check_empty_dir(out_dir)?;
        let mut sans = Vec::new();
        for d in &req.dns {
            let name = rcgen::string::Ia5String::try_from(d.clone())
                .map_err(|_| CaError::invalid("--dns", format!("{d:?}")))?;
            sans.push(rcgen::SanType::DnsName(name));
        }
        sans.extend(req.ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
        let credentials = Credentials {
            ca: CaRole::Service,
            kind: CertKind::Server,
            organisation: crate::hierarchy::TEST_ORGANISATION,
            name: &req.name,
            sans,
            valid_days: req.valid_days,
        };
        let issued = self.issue_credentials(credentials, out_dir, "server")?;
        ledger::append(self, LedgerEntry::terminal_issued("-", &req.name, &issued))?;
        Ok(issued)
    }

    /// Issues a time-stamping authority's certificate (ECDSA P-256, the
    /// critical extendedKeyUsage id-kp-timeStamping that RFC 3161 requires)
    /// from the service CA into `out_dir`: `tsa.pem`, `tsa.key` (0600) and
    /// `ca-chain.pem` (service CA and root: what a verifier of its tokens
    /// trusts). For a test TSA (e.g. `openssl ts -reply`), not a production
    /// one: records that must be kept are timestamped by an accredited TSA.
    pub fn issue_tsa(&mut self, req: &TsaRequest, out_dir: &Path) -> Result<IssuedTerminal, CaError> {
        check_romaji("--name", &req.name)?;
        check_days(req.valid_days)?;
        check_empty_dir(out_dir)?;
        let credentials = Credentials {
            ca: CaRole::Service,
            kind: CertKind::TimeStamping,
            organisation: crate::hierarchy::TEST_ORGANISATION,
            name: &req.name,
            sans: Vec::new(),
            valid_days: req.valid_days,
        };
        let issued = self.issue_credentials(credentials, out_dir, "tsa")?;
        ledger::append(self, LedgerEntry::tsa_issued(&req.name, &issued))?;
        Ok(issued)
    }

    /// A new key and certificate for the terminal that `old_cert` (PEM or
    /// DER) names; the old certificate stays valid until it expires or is
    /// revoked.
    pub fn renew_terminal(
        &mut self,
        old_cert: &Path,
        out_dir: &Path,
        valid_days: i64,
    ) -> Result<IssuedTerminal, CaError> {
        let der = crate::read_certificate_file(old_cert)?;
        let holder = hpki_profile::read_holder(&der).map_err(|e| CaError::invalid("--cert", e.to_string()))?;
        let serial = holder.certificate_serial.clone();
        let known = self.state.issued.iter().find(|c| c.serial == serial && c.kind == CertKind::Terminal);
        if known.is_none() {
            return Err(CaError::invalid(
                "--cert",
                format!("{} is not a terminal certificate of this CA directory", old_cert.display()),
            ));
        }
        let institution =
            holder.institution.ok_or_else(|| CaError::invalid("--cert", "no institution (O) in the certificate"))?;
        let name = holder.name.ok_or_else(|| CaError::invalid("--cert", "no terminal name (CN) in the certificate"))?;
        self.issue_terminal(&TerminalRequest { institution, name, valid_days }, out_dir)
    }
}

/// What `issue_credentials` issues.
struct Credentials<'a> {
    ca: CaRole,
    kind: CertKind,
    organisation: &'a str,
    name: &'a str,
    sans: Vec<rcgen::SanType>,
    valid_days: i64,
}

/// Credentials go into a new or empty directory only.
fn check_empty_dir(out_dir: &Path) -> Result<(), CaError> {
    if out_dir.exists() && fs::read_dir(out_dir).map_err(CaError::io(out_dir))?.next().is_some() {
        return Err(CaError::OutputExists(out_dir.into()));
    }
    Ok(())
}

fn person_dn(institution: Option<&str>, name: &str, serial: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    if let Some(i) = institution {
        dn.push(DnType::OrganizationName, i.trim());
    }
    dn.push(DnType::CommonName, name.trim());
    // serialNumber is a PrintableString (X.520).
    let printable = rcgen::string::PrintableString::try_from(serial.to_string())
        .map(DnValue::PrintableString)
        .unwrap_or_else(|_| DnValue::Utf8String(serial.to_string()));
    dn.push(DnType::CustomDnType(oid::DN_SERIAL_NUMBER.to_vec()), printable);
    dn
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
