//! Trust scoped per CA: what each trust anchor, or CA below one, may
//! certify. The gateway trusts the HPKI roots for licensed professionals
//! and a region's institution CA for assistants; neither may certify what
//! the other does, and a CA configured for anything else (terminals,
//! servers, VPN peers) certifies no card holder at all.
//!
//! The grant of a path is the scope of the CA nearest to the end entity
//! that has one; a path through no scoped CA grants nothing. A scope names
//! its CA by subject and key, so a renewed certificate of the same CA keeps
//! the scope and no other CA can borrow it: to sign under that name and
//! key one needs that CA's private key.

use crate::holder::{CardHolder, HolderKind};
use crate::profession::Profession;
use crate::validate::cert::Cert;
use crate::validate::refusal::Refusal;

/// What a CA may certify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Licensed professionals by hcRole: every profession, or these.
    Licensed { professions: Option<Vec<Profession>> },
    /// Assistants (institution PKI cards, no hcRole) of these institutions
    /// (Subject O), or of any institution (`None`, only for a CA that IT
    /// staff run themselves, like the test hierarchy's).
    Assistants { institutions: Option<Vec<String>> },
    /// No card holder at all.
    Nothing,
}

impl Grant {
    fn describe(&self) -> String {
        match self {
            Grant::Licensed { professions: None } => "licensed professionals (hcRole)".into(),
            Grant::Licensed { professions: Some(p) } => {
                format!("licensed professionals of {}", p.iter().map(|p| p.slug()).collect::<Vec<_>>().join(", "))
            }
            Grant::Assistants { institutions: None } => "assistants without hcRole".into(),
            Grant::Assistants { institutions: Some(i) } => format!("assistants of {}", i.join(", ")),
            Grant::Nothing => "no card holders".into(),
        }
    }
}

/// One scope of the configuration: a CA certificate (DER) and its grant.
#[derive(Debug, Clone)]
pub struct TrustScope {
    pub ca: Vec<u8>,
    pub grant: Grant,
}

pub(crate) struct Scoped {
    pub ca: Cert,
    pub grant: Grant,
}

/// Whether the path grants what its end entity's holder claims.
pub(crate) fn check(scopes: &[Scoped], path: &[&Cert], holder: &CardHolder) -> Result<(), Refusal> {
    let anchor = path[path.len() - 1];
    let (grant, ca) = path[1..]
        .iter()
        .find_map(|c| scopes.iter().find(|s| s.ca.same_entity(c)).map(|s| (&s.grant, c.subject_text.clone())))
        .unwrap_or((&Grant::Nothing, anchor.subject_text.clone()));
    let institution = holder.institution.as_deref().unwrap_or("");
    let allowed = match (&holder.kind, grant) {
        (_, Grant::Nothing) => false,
        (HolderKind::Licensed(p), Grant::Licensed { professions }) => {
            professions.as_ref().is_none_or(|l| l.contains(p))
        }
        (HolderKind::Assistant, Grant::Assistants { institutions }) => {
            institutions.as_ref().is_none_or(|l| l.iter().any(|i| i == institution))
        }
        // No claim: nothing to grant, and the caller decides what such a
        // certificate is good for.
        (HolderKind::Other, _) => true,
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let claim = match &holder.kind {
        HolderKind::Licensed(p) => format!("hcRole {:?} ({})", p.hc_role(), p.slug()),
        HolderKind::Assistant => format!("to be an assistant of {institution:?}"),
        HolderKind::Other => "no card holder role".into(),
    };
    Err(Refusal::OutsideTrustScope { subject: holder.subject.clone(), claim, ca, grant: grant.describe() })
}
