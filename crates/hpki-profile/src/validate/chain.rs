//! The checks of RFC 5280 §6.1 on one complete candidate path, from the
//! end entity (index 0) to the trust anchor (last). Signatures were
//! verified while the path was built ([`super::path`]).

use crate::validate::cert::Cert;
use crate::validate::memo::SignatureMemo;
use crate::validate::names::{self, MAX_NAME_COMPARISONS};
use crate::validate::refusal::Refusal;
use crate::validate::rfc3339;

/// What the path's certificates allow: the span of time in which all of
/// them are valid.
pub(crate) struct Span {
    pub from: i64,
    pub until: i64,
}

pub(crate) fn check(path: &[&Cert], at: i64, max_intermediates: usize, memo: &SignatureMemo) -> Result<Span, Refusal> {
    let anchor = path.len() - 1;
    let malformed = |c: &Cert, what: &str| Refusal::Malformed(format!("{}: {what}", c.subject_text));

    // §4 rules that hold for any certificate used, and the version: only
    // a trust anchor may be anything but v3 (v1 roots still exist).
    for (i, c) in path.iter().enumerate() {
        if let Some(d) = &c.defect {
            return Err(malformed(c, d));
        }
        if let Some(oid) = &c.unknown_critical {
            return Err(Refusal::UnknownCriticalExtension { subject: c.subject_text.clone(), oid: oid.clone() });
        }
        if i < anchor && c.version != 2 {
            let v = c.version + 1;
            return Err(malformed(c, &format!("a v{v} certificate; only a trust anchor may be older than v3")));
        }
        if i < anchor
            && let Some(d) = &c.serial_defect
        {
            return Err(malformed(c, d));
        }
        // §4.2.1.1: every issued certificate but a self-signed one names
        // the key that signed it, and a self-signed one names its own.
        if i < anchor && c.aki.is_none() && !self_signed(c, memo) {
            return Err(malformed(c, "no authorityKeyIdentifier keyIdentifier (RFC 5280 §4.2.1.1)"));
        }
        if let (Some(a), Some(s)) = (&c.aki, &c.ski)
            && a != s
            && self_signed(c, memo)
        {
            return Err(malformed(
                c,
                "self-signed, but its authorityKeyIdentifier names another key (RFC 5280 §4.2.1.1)",
            ));
        }
    }
    if let Err(e) = &path[0].key {
        return Err(Refusal::UnsupportedKey { subject: path[0].subject_text.clone(), detail: e.clone() });
    }

    // §6.1.3 (a)(2): validity, both ends inclusive (§4.1.2.5).
    let mut span = Span { from: i64::MIN, until: i64::MAX };
    for c in path {
        if at < c.not_before {
            return Err(Refusal::NotYetValid { subject: c.subject_text.clone(), not_before: rfc3339(c.not_before) });
        }
        if at > c.not_after {
            return Err(Refusal::Expired { subject: c.subject_text.clone(), not_after: rfc3339(c.not_after) });
        }
        span.from = span.from.max(c.not_before);
        span.until = span.until.min(c.not_after);
    }

    // §6.1.4: every certificate above the end entity is a CA allowed to
    // sign certificates, with room below it for the CAs that follow.
    // Self-issued certificates (key rollover links, renewals) do not count.
    let mut counted_below = 0usize;
    for (i, ca) in path.iter().enumerate().skip(1) {
        let v1_anchor = i == anchor && ca.version == 0;
        if !v1_anchor {
            match ca.basic {
                Some(b) if b.ca => {
                    if !b.critical {
                        return Err(malformed(ca, "basicConstraints of a CA is not critical (RFC 5280 §4.2.1.9)"));
                    }
                    if let Some(limit) = b.path_len
                        && counted_below > limit as usize
                    {
                        return Err(Refusal::PathTooLong {
                            subject: ca.subject_text.clone(),
                            limit,
                            below: counted_below,
                        });
                    }
                }
                _ => return Err(Refusal::NotACa { subject: ca.subject_text.clone() }),
            }
            if ca.key_usage.is_some_and(|ku| !ku.key_cert_sign()) {
                return Err(Refusal::CaKeyUsage { subject: ca.subject_text.clone() });
            }
            if ca.ski.is_none() {
                return Err(malformed(ca, "a CA certificate without subjectKeyIdentifier (RFC 5280 §4.2.1.2)"));
            }
        }
        if ca.subject_empty {
            return Err(malformed(ca, "a CA with an empty subject (RFC 5280 §4.1.2.6)"));
        }
        if i < anchor && !ca.self_issued() {
            counted_below += 1;
        }
    }
    if counted_below > max_intermediates {
        return Err(Refusal::TooManyIntermediates { limit: max_intermediates });
    }

    // §6.1.3 (b)-(c), §6.1.4 (g): each CA's name constraints hold for the
    // certificates below it (self-issued intermediates excepted).
    let mut budget = MAX_NAME_COMPARISONS;
    for (i, ca) in path.iter().enumerate().skip(1) {
        let Some(nc) = &ca.name_constraints else { continue };
        for (j, below) in path[..i].iter().enumerate() {
            if j > 0 && below.self_issued() {
                continue;
            }
            names::check(nc, &below.names, &below.subject_text, &mut budget)?;
        }
    }
    Ok(span)
}

/// Self-issued and signed by its own key.
fn self_signed(c: &Cert, memo: &SignatureMemo) -> bool {
    c.self_issued()
        && match (&c.key, &c.signature_algorithm) {
            (Ok(key), Ok(alg)) => {
                alg.fits(key.kind) && memo.verify(c.digest, c.spki_digest, key, *alg, &c.signature, &c.tbs)
            }
            _ => false,
        }
}
