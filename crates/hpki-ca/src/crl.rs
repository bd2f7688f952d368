//! Revocation and CRL publication: one DER CRL per CA, with a stable name.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber};
use serde::{Deserialize, Serialize};

use crate::dir::{CaDir, IssuedCert, RevocationRecord, now_rfc3339};
use crate::error::CaError;
use crate::hierarchy::CaRole;
use crate::ledger::{self, LedgerEntry};

/// RFC 5280 revocation reasons an operator may give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::Unspecified,
        Reason::KeyCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::CertificateHold,
        Reason::PrivilegeWithdrawn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "key-compromise",
            Reason::AffiliationChanged => "affiliation-changed",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessation-of-operation",
            Reason::CertificateHold => "certificate-hold",
            Reason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    fn rcgen(self) -> RevocationReason {
        match self {
            Reason::Unspecified => RevocationReason::Unspecified,
            Reason::KeyCompromise => RevocationReason::KeyCompromise,
            Reason::AffiliationChanged => RevocationReason::AffiliationChanged,
            Reason::Superseded => RevocationReason::Superseded,
            Reason::CessationOfOperation => RevocationReason::CessationOfOperation,
            Reason::CertificateHold => RevocationReason::CertificateHold,
            Reason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
        }
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL.into_iter().find(|r| r.name() == s.trim()).ok_or_else(|| {
            format!(
                "unknown revocation reason {s:?}; one of: {}",
                Reason::ALL.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishedCrl {
    pub ca: CaRole,
    pub path: PathBuf,
    pub crl_number: u64,
    pub revoked: usize,
    pub this_update: String,
    pub next_update: String,
}

/// Parses `30s`, `15m`, `12h`, `4d`, `2w`.
pub fn parse_duration(text: &str) -> Result<time::Duration, CaError> {
    let t = text.trim();
    let bad = || CaError::invalid("duration", format!("{text:?} (use e.g. 30m, 12h, 4d, 2w)"));
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let d = match unit {
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        "w" => time::Duration::weeks(n),
        _ => return Err(bad()),
    };
    if d <= time::Duration::ZERO || d > time::Duration::days(366) {
        return Err(CaError::invalid("duration", format!("{text:?} must be positive and at most a year")));
    }
    Ok(d)
}

impl CaDir {
    /// Records the revocation of the certificate with this serial (hex, any
    /// case, leading zeros ignored). It takes effect at the next
    /// `publish_crls`.
    pub fn revoke(&mut self, serial: &str, reason: Reason) -> Result<IssuedCert, CaError> {
        let wanted =
            normalise_serial(serial).ok_or_else(|| CaError::invalid("--serial", format!("{serial:?} is not hex")))?;
        let date = now_rfc3339();
        let entry = self
            .state
            .issued
            .iter_mut()
            .find(|c| normalise_serial(&c.serial).as_deref() == Some(wanted.as_str()))
            .ok_or_else(|| CaError::UnknownSerial(serial.to_owned()))?;
        if let Some(r) = &entry.revoked {
            return Err(CaError::AlreadyRevoked {
                serial: entry.serial.clone(),
                reason: r.reason.name().into(),
                date: r.date.clone(),
            });
        }
        entry.revoked = Some(RevocationRecord { reason, date });
        let revoked = entry.clone();
        self.save()?;
        ledger::append(self, LedgerEntry::revoked(&revoked))?;
        Ok(revoked)
    }

    /// Signs the next CRL of `role` (not yet recorded): its number, DER and
    /// how many certificates it lists.
    pub(crate) fn render_crl(
        &self,
        role: CaRole,
        now: time::OffsetDateTime,
        next_update: time::Duration,
    ) -> Result<(u64, Vec<u8>, usize), CaError> {
        let number = self.state.cas.get(&role).map_or(0, |c| c.crl_number) + 1;
        let mut revoked = Vec::new();
        for c in self.state.issued.iter().filter(|c| c.ca == role) {
            let Some(r) = &c.revoked else { continue };
            let bytes = hex_bytes(&c.serial).ok_or_else(|| CaError::Corrupt {
                path: self.path().join("state.json"),
                detail: format!("serial {:?} is not hex", c.serial),
            })?;
            let when = time::OffsetDateTime::parse(&r.date, &time::format_description::well_known::Rfc3339)
                .map_err(|e| CaError::Corrupt { path: self.path().join("state.json"), detail: e.to_string() })?;
            revoked.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: when,
                reason_code: Some(r.reason.rcgen()),
                invalidity_date: None,
            });
        }
        let count = revoked.len();
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer(role)?)?;
        Ok((number, crl.der().to_vec(), count))
    }

    /// Writes a fresh CRL for every CA into `out_dir` as `<ca>.crl` (DER).
    pub fn publish_crls(&mut self, out_dir: &Path, next_update: time::Duration) -> Result<Vec<PublishedCrl>, CaError> {
        fs::create_dir_all(out_dir).map_err(CaError::io(out_dir))?;
        let now = time::OffsetDateTime::now_utc();
        let mut published = Vec::new();
        let mut rendered = Vec::new();
        for role in self.roles() {
            let (number, der, count) = self.render_crl(role, now, next_update)?;
            rendered.push((role, number, der, count));
        }
        // All signed: now write them and record the numbers.
        for (role, number, der, count) in rendered {
            let path = out_dir.join(format!("{}.crl", role.name()));
            let tmp = out_dir.join(format!(".{}.crl.tmp", role.name()));
            fs::write(&tmp, &der).map_err(CaError::io(&tmp))?;
            fs::rename(&tmp, &path).map_err(CaError::io(&path))?;
            if let Some(c) = self.state.cas.get_mut(&role) {
                c.crl_number = number;
            }
            published.push(PublishedCrl {
                ca: role,
                path,
                crl_number: number,
                revoked: count,
                this_update: hpki_profile::validate::rfc3339(now.unix_timestamp()),
                next_update: hpki_profile::validate::rfc3339((now + next_update).unix_timestamp()),
            });
        }
        self.save()?;
        ledger::append(self, LedgerEntry::crls_published(&published))?;
        Ok(published)
    }
}

fn normalise_serial(s: &str) -> Option<String> {
    let t = s.trim().trim_start_matches("0x").replace(':', "");
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let trimmed = t.trim_start_matches('0').to_ascii_uppercase();
    Some(if trimmed.is_empty() { "0".into() } else { trimmed })
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}
