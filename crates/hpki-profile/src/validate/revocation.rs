//! Revocation from CRLs, as RFC 5280 §6.3 describes it.
//!
//! A CRL is read once into [`Crl`]. For a certificate it is used only when
//! its *scope* covers the certificate (§5.2.5, §6.3.3 (b)): the Issuing
//! Distribution Point's distributionPoint must name one of the
//! certificate's CRL distribution points, `onlyContainsUserCerts` excludes
//! CA certificates and `onlyContainsCACerts` (an authority revocation
//! list) end entities. Among the covering CRLs signed by the issuer's key
//! and current at the validation time, the newest is used.
//!
//! Refused by name, never silently ignored: delta CRLs, indirect CRLs,
//! CRLs partitioned by reason (`onlySomeReasons`), attribute-certificate
//! CRLs, CRLs without a CRL number or nextUpdate, and any other critical
//! CRL or entry extension.

use std::collections::HashMap;

use x509_parser::extensions::ParsedExtension;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::holder::hex_serial;
use crate::oid;
use crate::signature::SignatureAlgorithm;
use crate::validate::cert::{Cert, DistributionPoint, PointName, display_name, distribution_point, sha256};
use crate::validate::memo::SignatureMemo;
use crate::validate::refusal::Refusal;
use crate::validate::{RevocationEvidence, rfc3339};

/// CRL extensions processed here (others, if critical, make a CRL unusable).
const CRL_NUMBER: &str = "2.5.29.20";
const AUTHORITY_KEY_ID: &str = "2.5.29.35";
const ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
const DELTA_CRL_INDICATOR: &str = "2.5.29.27";
/// Entry extensions processed here.
const REASON_CODE: &str = "2.5.29.21";
const INVALIDITY_DATE: &str = "2.5.29.24";
const CERTIFICATE_ISSUER: &str = "2.5.29.29";

/// Which certificates a CRL speaks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    point: Option<DistributionPoint>,
    only_user: bool,
    only_ca: bool,
}

impl Scope {
    fn describe(&self) -> String {
        let mut s = match (self.only_user, self.only_ca) {
            (true, _) => "end-entity certificates only".to_owned(),
            (_, true) => "CA certificates only (authority revocation list)".to_owned(),
            _ => "all certificates of its issuer".to_owned(),
        };
        if let Some(p) = &self.point {
            s.push_str(&format!("; distribution point {}", describe_point(p)));
        }
        s
    }
}

fn describe_point(p: &DistributionPoint) -> String {
    match p {
        DistributionPoint::Full(names) => names
            .iter()
            .map(|n| match n {
                PointName::Uri(u) => u.clone(),
                PointName::Directory(_) => "(a directory name)".into(),
                PointName::Other(o) => o.clone(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        DistributionPoint::RelativeToIssuer(_) => "(a name relative to the CRL issuer)".into(),
    }
}

struct Entry {
    revoked_at: i64,
    reason: Option<u8>,
    /// A critical entry extension not processed, or a certificateIssuer.
    unusable: Option<String>,
}

pub(crate) struct Crl {
    pub issuer: Vec<u8>,
    issuer_text: String,
    aki: Option<Vec<u8>>,
    digest: [u8; 32],
    der: std::sync::Arc<[u8]>,
    tbs: Vec<u8>,
    signature_algorithm: Result<SignatureAlgorithm, String>,
    signature: Vec<u8>,
    this_update: i64,
    next_update: Option<i64>,
    number: Option<String>,
    scope: Scope,
    /// Why this CRL can never be used, named.
    unusable: Option<String>,
    /// By serial without leading zeros.
    entries: HashMap<Vec<u8>, Entry>,
}

impl Crl {
    pub fn parse(der: &[u8]) -> Result<Crl, String> {
        let (rest, crl) = x509_parser::parse_x509_crl(der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} bytes after the CRL", rest.len()));
        }
        Ok(Crl::read(&crl, der))
    }

    fn read(crl: &CertificateRevocationList<'_>, der: &[u8]) -> Crl {
        let mut unusable: Vec<String> = Vec::new();
        let mut scope = Scope::default();
        let mut aki = None;
        let mut has_number = false;
        if crl.tbs_cert_list.extensions_map().is_err() {
            unusable.push("an extension appears more than once".into());
        }
        for ext in crl.extensions() {
            let id = ext.oid.to_id_string();
            match id.as_str() {
                CRL_NUMBER => {
                    has_number = true;
                    if ext.critical {
                        unusable.push("its CRL number is marked critical (RFC 5280 §5.2.3)".into());
                    }
                }
                AUTHORITY_KEY_ID => {
                    if let ParsedExtension::AuthorityKeyIdentifier(a) = ext.parsed_extension() {
                        aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                    }
                }
                ISSUING_DISTRIBUTION_POINT => match ext.parsed_extension() {
                    ParsedExtension::IssuingDistributionPoint(idp) => {
                        if idp.indirect_crl {
                            unusable.push("it is an indirect CRL, which is not supported".into());
                        }
                        if idp.only_some_reasons.is_some() {
                            unusable
                                .push("it covers only some reasons (onlySomeReasons), which is not supported".into());
                        }
                        if idp.only_contains_attribute_certs {
                            unusable.push("it lists attribute certificates only".into());
                        }
                        if idp.only_contains_user_certs && idp.only_contains_ca_certs {
                            unusable.push("its scope is both user and CA certificates only (RFC 5280 §5.2.5)".into());
                        }
                        scope = Scope {
                            point: idp.distribution_point.as_ref().map(distribution_point),
                            only_user: idp.only_contains_user_certs,
                            only_ca: idp.only_contains_ca_certs,
                        };
                    }
                    _ => unusable.push("its issuing distribution point is malformed".into()),
                },
                DELTA_CRL_INDICATOR => unusable.push("it is a delta CRL, which is not supported".into()),
                _ if ext.critical => unusable.push(format!("critical extension {}", oid::display(&ext.oid))),
                _ => {}
            }
        }
        if !has_number {
            unusable.push("it has no CRL number (RFC 5280 §5.2.3)".into());
        }
        let next_update = crl.next_update().map(|t| t.timestamp());
        if next_update.is_none() {
            unusable.push("it has no nextUpdate".into());
        }
        let mut entries = HashMap::new();
        for e in crl.iter_revoked_certificates() {
            let mut entry_unusable = None;
            for x in e.extensions() {
                let id = x.oid.to_id_string();
                if id == CERTIFICATE_ISSUER {
                    entry_unusable = Some("an entry names another certificate issuer (indirect CRL)".to_owned());
                } else if x.critical && id != REASON_CODE && id != INVALIDITY_DATE {
                    entry_unusable = Some(format!("entry with critical extension {}", oid::display(&x.oid)));
                }
            }
            entries.insert(
                strip_zeros(e.raw_serial()).to_vec(),
                Entry {
                    revoked_at: e.revocation_date.timestamp(),
                    reason: e.reason_code().map(|(_, r)| r.0),
                    unusable: entry_unusable,
                },
            );
        }
        Crl {
            issuer: crl.issuer().as_raw().to_vec(),
            issuer_text: display_name(crl.issuer()),
            aki,
            digest: sha256(der),
            der: der.into(),
            tbs: crl.tbs_cert_list.as_ref().to_vec(),
            signature_algorithm: SignatureAlgorithm::from_identifier(&crl.signature_algorithm)
                .map_err(|e| e.to_string()),
            signature: crl.signature_value.data.to_vec(),
            this_update: crl.last_update().timestamp(),
            next_update,
            number: crl.crl_number().map(|n| hex_serial(&n.to_bytes_be())),
            scope,
            unusable: (!unusable.is_empty()).then(|| unusable.join("; ")),
            entries,
        }
    }

    /// §6.3.3 (b): does this CRL speak for `cert`?
    fn covers(&self, cert: &Cert) -> bool {
        if (self.scope.only_user && cert.is_ca()) || (self.scope.only_ca && !cert.is_ca()) {
            return false;
        }
        match &self.scope.point {
            None => true,
            Some(point) => cert
                .crl_distribution_points
                .iter()
                .filter(|dp| !dp.indirect)
                .any(|dp| dp.name.as_ref().is_some_and(|n| points_match(n, point))),
        }
    }
}

fn points_match(a: &DistributionPoint, b: &DistributionPoint) -> bool {
    match (a, b) {
        (DistributionPoint::Full(x), DistributionPoint::Full(y)) => x.iter().any(|n| y.contains(n)),
        (DistributionPoint::RelativeToIssuer(x), DistributionPoint::RelativeToIssuer(y)) => x == y,
        _ => false,
    }
}

/// Checks that `cert`, issued by `issuer` (the next certificate of the
/// path), is not revoked at `at`.
pub(crate) fn check(
    cert: &Cert,
    issuer: &Cert,
    at: i64,
    crls: &[Crl],
    memo: &SignatureMemo,
) -> Result<RevocationEvidence, Refusal> {
    let issuer_name = issuer.subject_text.clone();
    // The most telling reason met so far, should no CRL serve: a CRL
    // that covers the certificate and is signed but not current says more
    // than one with a bad signature, which says more than an unusable
    // one, which says more than none whose scope covers it.
    let mut reason: Option<(u8, Refusal)> = None;
    let mut note = |rank: u8, r: Refusal| {
        if reason.as_ref().is_none_or(|(k, _)| rank > *k) {
            reason = Some((rank, r));
        }
    };
    let mut best: Option<&Crl> = None;
    let issuer_may_sign = issuer.key_usage.is_none_or(|ku| ku.crl_sign());
    for crl in crls.iter().filter(|c| c.issuer == cert.issuer) {
        // Another key of the same CA name (a CA that renewed its key, or
        // a CRL that is not this CA's at all): not signed by this key.
        if let (Some(a), Some(s)) = (&crl.aki, &issuer.ski)
            && a != s
        {
            note(2, Refusal::CrlBadSignature { issuer: issuer_name.clone() });
            continue;
        }
        if let Some(why) = &crl.unusable {
            note(1, Refusal::CrlUnusable { issuer: issuer_name.clone(), detail: why.clone() });
            continue;
        }
        if !crl.covers(cert) {
            note(0, no_info(&issuer_name, " whose scope covers this certificate"));
            continue;
        }
        let signed = match (&crl.signature_algorithm, &issuer.key) {
            (Ok(alg), Ok(key)) => memo.verify(crl.digest, issuer.spki_digest, key, *alg, &crl.signature, &crl.tbs),
            _ => false,
        };
        if !signed {
            note(2, Refusal::CrlBadSignature { issuer: issuer_name.clone() });
            continue;
        }
        if !issuer_may_sign {
            note(
                3,
                Refusal::CrlUnusable {
                    issuer: issuer_name.clone(),
                    detail: "its issuer may not sign CRLs (no cRLSign)".into(),
                },
            );
            continue;
        }
        if at < crl.this_update {
            note(4, Refusal::CrlNotYetValid { issuer: issuer_name.clone(), this_update: rfc3339(crl.this_update) });
            continue;
        }
        let next = crl.next_update.unwrap_or(i64::MIN);
        if at > next {
            note(4, Refusal::StaleCrl { issuer: issuer_name.clone(), next_update: rfc3339(next) });
            continue;
        }
        if best.is_none_or(|b| crl.this_update > b.this_update) {
            best = Some(crl);
        }
    }
    let Some(crl) = best else {
        return Err(reason.map(|(_, r)| r).unwrap_or_else(|| no_info(&issuer_name, "")));
    };
    if let Some(entry) = crl.entries.get(strip_zeros(&cert.serial)) {
        if let Some(why) = &entry.unusable {
            return Err(Refusal::CrlUnusable { issuer: issuer_name, detail: why.clone() });
        }
        // removeFromCRL (8) lifts a hold; a revocation dated after `at`
        // did not exist at `at`.
        if entry.reason != Some(8) && entry.revoked_at <= at {
            return Err(Refusal::Revoked {
                subject: cert.subject_text.clone(),
                serial: hex_serial(&cert.serial),
                reason: entry.reason.map(|r| reason_name(r).to_owned()),
                date: rfc3339(entry.revoked_at),
            });
        }
    }
    Ok(RevocationEvidence {
        issuer: crl.issuer_text.clone(),
        crl_number: crl.number.clone(),
        this_update: crl.this_update,
        next_update: crl.next_update.unwrap_or(i64::MAX),
        scope: crl.scope.describe(),
        crl: crl.der.clone(),
    })
}

fn no_info(issuer: &str, detail: &str) -> Refusal {
    Refusal::NoRevocationInfo { issuer: issuer.to_owned(), detail: detail.to_owned() }
}

fn strip_zeros(raw: &[u8]) -> &[u8] {
    let n = raw.iter().take_while(|b| **b == 0).count();
    &raw[n..]
}

/// RFC 5280 §5.3.1 reason names.
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown reason",
    }
}
