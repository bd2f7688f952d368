//! Object identifiers of the HPKI profile and of this product.
//!
//! The product has no registered enterprise number, so its own identifiers
//! live under a UUID OID (ITU-T X.667, `2.25.<uuid>`), which needs no
//! registration. A UUID arc is a 128-bit number, more than the `u64` arcs of
//! the ASN.1 crates in use (yasna, rcgen, asn1-rs), hence [`Oid`]: the DER
//! content octets of an identifier, with arcs up to `u128`.

use std::fmt;

/// subjectDirectoryAttributes (RFC 5280 §4.2.1.8), where hcRole lives.
pub const SUBJECT_DIRECTORY_ATTRIBUTES: &[u64] = &[2, 5, 29, 9];
/// certificatePolicies (RFC 5280 §4.2.1.4).
pub const CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
/// subjectAltName (RFC 5280 §4.2.1.6).
pub const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
/// extendedKeyUsage (RFC 5280 §4.2.1.12).
pub const EXTENDED_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
/// id-kp-timeStamping: a time-stamping authority's key (RFC 3161 §2.3).
pub const KP_TIME_STAMPING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 8];
/// id-hcpki-at-healthcareactor (ISO/TS 17090): the hcRole attribute.
pub const HC_ROLE: &[u64] = &[1, 0, 17090, 0, 1];
/// Coding scheme of the Japanese national qualifications (MHLW).
pub const JP_QUALIFICATION_SCHEME: &[u64] = &[1, 2, 392, 100495, 1, 6, 1, 1];
/// X.520 serialNumber attribute of a distinguished name.
pub const DN_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];

/// Certificate policy of real HPKI signature (non-repudiation) certificates
/// (confirmed from issued certificates).
pub const HPKI_SIGNATURE_POLICY: &str = "1.2.392.100495.1.5.1.1.0.1";
/// Certificate policy of real HPKI authentication certificates of persons.
/// Inferred from the authentication CA's policy arc (`…1.5.1.2`), not
/// confirmed from a sample; configurable.
pub const HPKI_AUTHENTICATION_POLICY: &str = "1.2.392.100495.1.5.1.2.0.1";

/// The product's own arc.
pub const PRODUCT_ARC: &str = "2.25.144494054357711505318779169484008765990";
/// Test HPKI authentication certificates (issued by `hpki-certs`).
pub const TEST_HPKI_AUTHENTICATION_POLICY: &str = "2.25.144494054357711505318779169484008765990.1.1.1";
/// Test HPKI signature certificates (issued by `hpki-certs`).
pub const TEST_HPKI_SIGNATURE_POLICY: &str = "2.25.144494054357711505318779169484008765990.1.1.2";
/// Assistant (institution PKI) authentication certificates: the product's
/// own profile, as no national one exists.
pub const ASSISTANT_AUTHENTICATION_POLICY: &str = "2.25.144494054357711505318779169484008765990.1.2.1";
/// Assistant (institution PKI) signature-application certificates.
pub const ASSISTANT_SIGNATURE_POLICY: &str = "2.25.144494054357711505318779169484008765990.1.2.2";
/// Terminal ("connection information") certificates.
pub const TERMINAL_POLICY: &str = "2.25.144494054357711505318779169484008765990.1.3.1";

/// An object identifier, as the content octets of its DER encoding.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidError {
    #[error("{0:?} is not a dotted object identifier (like 1.2.392.100495.1.5.1.1.0.1)")]
    NotDotted(String),
    #[error("malformed object identifier encoding")]
    BadEncoding,
}

impl Oid {
    /// From arcs; the first must be 0–2 and, under 0 or 1, the second < 40.
    pub fn from_arcs(arcs: &[u128]) -> Option<Oid> {
        let (&a, rest) = arcs.split_first()?;
        let (&b, rest) = rest.split_first()?;
        if a > 2 || (a < 2 && b >= 40) {
            return None;
        }
        let mut out = Vec::new();
        push_base128(&mut out, a.checked_mul(40)?.checked_add(b)?);
        for &arc in rest {
            push_base128(&mut out, arc);
        }
        Some(Oid(out))
    }

    /// From the usual dotted text form.
    pub fn parse(dotted: &str) -> Result<Oid, OidError> {
        let bad = || OidError::NotDotted(dotted.to_owned());
        let arcs = dotted
            .trim()
            .split('.')
            .map(|a| if a.is_empty() || a.len() > 1 && a.starts_with('0') { None } else { a.parse().ok() })
            .collect::<Option<Vec<u128>>>()
            .ok_or_else(bad)?;
        Oid::from_arcs(&arcs).ok_or_else(bad)
    }

    /// From DER content octets (checked: minimal base-128, no overflow).
    pub fn from_content(content: &[u8]) -> Result<Oid, OidError> {
        let oid = Oid(content.to_vec());
        oid.try_arcs().ok_or(OidError::BadEncoding)?;
        Ok(oid)
    }

    pub fn from_u64_arcs(arcs: &[u64]) -> Option<Oid> {
        Oid::from_arcs(&arcs.iter().map(|&a| u128::from(a)).collect::<Vec<_>>())
    }

    pub fn content(&self) -> &[u8] {
        &self.0
    }

    /// The complete DER TLV (tag 06).
    pub fn to_der(&self) -> Vec<u8> {
        let mut out = vec![0x06];
        let len = self.0.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(&self.0);
        out
    }

    /// Whether `x509_parser`'s OID is this one.
    pub fn matches(&self, other: &x509_parser::der_parser::oid::Oid<'_>) -> bool {
        other.as_bytes() == self.0.as_slice()
    }

    fn try_arcs(&self) -> Option<Vec<u128>> {
        let mut values = Vec::new();
        let mut acc: u128 = 0;
        let mut started = false;
        for &b in &self.0 {
            if !started && b == 0x80 {
                return None; // non-minimal encoding
            }
            started = true;
            if acc.leading_zeros() < 7 {
                return None;
            }
            acc = (acc << 7) | u128::from(b & 0x7F);
            if b & 0x80 == 0 {
                values.push(acc);
                acc = 0;
                started = false;
            }
        }
        if started || values.is_empty() {
            return None;
        }
        let first = values[0];
        let (a, b) = match first {
            0..=39 => (0, first),
            40..=79 => (1, first - 40),
            _ => (2, first - 80),
        };
        let mut arcs = vec![a, b];
        arcs.extend_from_slice(&values[1..]);
        Some(arcs)
    }
}

fn push_base128(out: &mut Vec<u8>, mut v: u128) {
    let mut tmp = vec![(v & 0x7F) as u8];
    v >>= 7;
    while v > 0 {
        tmp.push(0x80 | (v & 0x7F) as u8);
        v >>= 7;
    }
    out.extend(tmp.iter().rev());
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_arcs() {
            Some(arcs) => {
                let text: Vec<String> = arcs.iter().map(u128::to_string).collect();
                f.write_str(&text.join("."))
            }
            None => write!(f, "<malformed OID {:02X?}>", self.0),
        }
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

/// Dotted text of a parsed OID, big arcs included.
pub fn display(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    Oid::from_content(oid.as_bytes()).map(|o| o.to_string()).unwrap_or_else(|_| oid.to_id_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // 1.2.840.113549 encodes as 2A 86 48 86 F7 0D (X.690 example).
        assert_eq!(Oid::parse("1.2.840.113549").expect("valid").content(), &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D]);
        let uuid = Oid::parse(TEST_HPKI_AUTHENTICATION_POLICY).expect("valid");
        assert_eq!(uuid.to_string(), TEST_HPKI_AUTHENTICATION_POLICY);
        assert_eq!(uuid.to_der()[0], 0x06);
    }

    #[test]
    fn refusals() {
        for bad in ["", "1", "3.1", "1.40", "1..2", "1.2.x", "1.02", "1.2.340282366920938463463374607431768211456"] {
            assert!(Oid::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Oid::from_content(&[0x2A, 0x80, 0x01]), Err(OidError::BadEncoding));
        assert_eq!(Oid::from_content(&[0x2A, 0x86]), Err(OidError::BadEncoding));
    }

    #[test]
    fn agrees_with_asn1_rs_for_u64_arcs() {
        let ours = Oid::from_u64_arcs(HC_ROLE).expect("valid");
        let theirs = x509_parser::der_parser::oid::Oid::from(HC_ROLE).expect("valid");
        assert!(ours.matches(&theirs));
        assert_eq!(ours.to_string(), theirs.to_id_string());
    }

    proptest! {
        #[test]
        fn dotted_round_trip(a in 0u128..3, b in 0u128..40, rest in proptest::collection::vec(any::<u128>(), 0..6)) {
            let mut arcs = vec![a, b];
            arcs.extend(rest);
            let text = arcs.iter().map(u128::to_string).collect::<Vec<_>>().join(".");
            let oid = Oid::parse(&text).expect("valid");
            prop_assert_eq!(oid.to_string(), text);
            prop_assert_eq!(Oid::from_content(oid.content()), Ok(oid));
        }

        #[test]
        fn arbitrary_content_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Oid::from_content(&bytes).map(|o| o.to_string());
        }
    }
}
