//! The issuance ledger (CARD-1, AUTH-3): one JSON line per issuance,
//! revocation and CRL publication — who, when, which card, and who checked
//! the holder's identity and licence. Only ever appended to.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::crl::PublishedCrl;
use crate::dir::{CaDir, IssuedCert, LEDGER_FILE, now_rfc3339};
use crate::error::CaError;
use crate::issue::{AssistantRequest, CardRequest, IssuedCard, IssuedTerminal};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub time: String,
    /// The account that ran the tool.
    pub operator: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<String>,
    /// Who checked identity and licence before issuance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
    /// Serial numbers of the certificates concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serials: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl LedgerEntry {
    fn new(action: &str) -> LedgerEntry {
        LedgerEntry {
            time: now_rfc3339(),
            operator: operator(),
            action: action.into(),
            holder: None,
            person_id: None,
            profession: None,
            institution: None,
            license_no: None,
            staff_id: None,
            verified_by: None,
            serials: Vec::new(),
            output: None,
            detail: None,
        }
    }

    pub(crate) fn card_issued(
        req: &CardRequest,
        card: &IssuedCard,
        auth: &IssuedCert,
        sign: &IssuedCert,
        out: &Path,
    ) -> Self {
        LedgerEntry {
            holder: Some(match &req.name_kanji {
                Some(k) => format!("{} ({k})", req.name),
                None => req.name.clone(),
            }),
            person_id: Some(card.person_id.clone()),
            profession: Some(req.profession.slug().into()),
            institution: req.institution.clone(),
            license_no: Some(req.license_no.clone()),
            verified_by: Some(req.verified_by.clone()),
            serials: vec![auth.serial.clone(), sign.serial.clone()],
            output: Some(out.display().to_string()),
            ..LedgerEntry::new("card-issue")
        }
    }

    pub(crate) fn assistant_card_issued(
        req: &AssistantRequest,
        card: &IssuedCard,
        auth: &IssuedCert,
        sign: &IssuedCert,
        out: &Path,
    ) -> Self {
        LedgerEntry {
            holder: Some(req.name.clone()),
            person_id: Some(card.person_id.clone()),
            institution: Some(req.institution.clone()),
            staff_id: Some(req.staff_id.clone()),
            serials: vec![auth.serial.clone(), sign.serial.clone()],
            output: Some(out.display().to_string()),
            ..LedgerEntry::new("assistant-card-issue")
        }
    }

    pub(crate) fn terminal_issued(institution: &str, name: &str, t: &IssuedTerminal) -> Self {
        LedgerEntry {
            holder: Some(name.into()),
            institution: Some(institution.into()),
            serials: vec![t.serial.clone()],
            output: Some(t.dir.display().to_string()),
            detail: Some(format!("valid until {}", t.not_after)),
            ..LedgerEntry::new("terminal-issue")
        }
    }

    pub(crate) fn tsa_issued(name: &str, t: &IssuedTerminal) -> Self {
        LedgerEntry {
            holder: Some(name.into()),
            serials: vec![t.serial.clone()],
            output: Some(t.dir.display().to_string()),
            detail: Some(format!("time-stamping authority, valid until {}", t.not_after)),
            ..LedgerEntry::new("tsa-issue")
        }
    }

    pub(crate) fn vpn_issued(site: &str, v: &crate::vpn::IssuedVpn) -> Self {
        LedgerEntry {
            holder: Some(format!("{} / {}", v.clinic.id, v.dc.id)),
            institution: Some(site.into()),
            serials: vec![v.clinic.serial.clone(), v.dc.serial.clone()],
            output: Some(v.out.display().to_string()),
            detail: Some(format!("IKE certificates, valid until {}", v.clinic.not_after)),
            ..LedgerEntry::new("vpn-issue")
        }
    }

    pub(crate) fn revoked(c: &IssuedCert) -> Self {
        LedgerEntry {
            holder: Some(c.subject.clone()),
            serials: vec![c.serial.clone()],
            detail: c.revoked.as_ref().map(|r| format!("reason {}", r.reason.name())),
            ..LedgerEntry::new("revoke")
        }
    }

    pub(crate) fn crls_published(crls: &[PublishedCrl]) -> Self {
        LedgerEntry {
            detail: Some(
                crls.iter()
                    .map(|c| format!("{} #{} ({} revoked)", c.ca, c.crl_number, c.revoked))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            output: crls.first().and_then(|c| c.path.parent()).map(|p| p.display().to_string()),
            ..LedgerEntry::new("crl-publish")
        }
    }
}

fn operator() -> String {
    std::env::var("HPKI_OPERATOR")
        .or_else(|_| std::env::var("SUDO_USER"))
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

pub(crate) fn append(ca: &CaDir, entry: LedgerEntry) -> Result<(), CaError> {
    let path = ca.path().join(LEDGER_FILE);
    let mut line =
        serde_json::to_string(&entry).map_err(|e| CaError::Corrupt { path: path.clone(), detail: e.to_string() })?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).map_err(CaError::io(&path))?;
    f.write_all(line.as_bytes()).map_err(CaError::io(&path))?;
    f.sync_all().map_err(CaError::io(&path))
}

impl CaDir {
    /// Every ledger entry, oldest first.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>, CaError> {
        let path = self.path().join(LEDGER_FILE);
        let text = std::fs::read_to_string(&path).map_err(CaError::io(&path))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| CaError::Corrupt { path: path.clone(), detail: format!("line {}: {e}", i + 1) })
            })
            .collect()
    }
}
