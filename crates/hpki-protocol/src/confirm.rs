//! What a doctor's signature card signs to confirm a draft (FLOW-2): one
//! JSON document, serialised with the JSON Canonicalization Scheme
//! (RFC 8785), so the gateway, the agent and any later verifier derive the
//! same bytes from the same content.
//!
//! ```text
//! {"assistant":…, "content":{…}, "domain":"HPKI-GATEWAY-CONFIRM-V2",
//!  "draft":…, "encounter":…, "gateway":…, "institution":…, "kind":…,
//!  "patient":…, "signer":…, "version":…}
//! ```
//!
//! V2 documents are signed in CAdES (`hpki_cades`): the card signs, with
//! the key of its *signature* application (its own PIN, nonRepudiation),
//! the DER of signed attributes whose messageDigest is SHA-256 of these
//! bytes. V1 documents (records confirmed before) were signed directly:
//! PKCS#1 v1.5 over SHA-256 of the bytes; they stay readable. The `domain`
//! member keeps these bytes apart from everything else a card signs: a
//! login value starts with `HPKI-GATEWAY-LOGIN-V1` and is not JSON.

use serde::{Deserialize, Serialize};

/// Domain separation inside the signed document: what a card signs today
/// (through CAdES signed attributes).
pub const CONFIRM_DOMAIN: &str = "HPKI-GATEWAY-CONFIRM-V2";
/// Documents of records confirmed before CAdES, signed directly.
pub const CONFIRM_DOMAIN_V1: &str = "HPKI-GATEWAY-CONFIRM-V1";

/// The kind of a draft, and so of the record a confirm creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftKind {
    /// Entered by an assistant for a linked doctor or dentist, who confirms.
    Medical,
    /// A pharmacist's own dispensing record, signed by that pharmacist.
    Dispensing,
}

impl DraftKind {
    pub fn name(self) -> &'static str {
        match self {
            DraftKind::Medical => "medical",
            DraftKind::Dispensing => "dispensing",
        }
    }

    pub fn from_name(name: &str) -> Option<DraftKind> {
        [DraftKind::Medical, DraftKind::Dispensing].into_iter().find(|k| k.name() == name)
    }
}

/// The signed document of one draft version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmDocument {
    /// [`CONFIRM_DOMAIN`], or [`CONFIRM_DOMAIN_V1`] in an old record.
    pub domain: String,
    /// The gateway's identity (`gateway_id`), as in the login value.
    pub gateway: String,
    pub draft: String,
    pub version: i64,
    pub kind: DraftKind,
    /// The patient's pseudonymous key (never the name).
    pub patient: String,
    pub encounter: String,
    /// The institution where the draft was entered.
    pub institution: String,
    /// Who entered it (an assistant, or the pharmacist themself).
    pub assistant: String,
    /// Who must sign it.
    pub signer: String,
    /// What was entered: a JSON object.
    pub content: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmDocumentError {
    #[error("the document cannot be canonicalised: {0}")]
    Canonical(String),
    #[error("not a confirm document: {0}")]
    Parse(String),
    #[error("not a confirm document: domain is {0:?}")]
    Domain(String),
    #[error("the bytes are not in canonical form (RFC 8785)")]
    NotCanonical,
}

impl ConfirmDocument {
    /// The exact bytes to sign: RFC 8785 canonical JSON.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, ConfirmDocumentError> {
        serde_json_canonicalizer::to_vec(self).map_err(|e| ConfirmDocumentError::Canonical(e.to_string()))
    }

    /// Reads signed bytes back, refusing anything that is not a confirm
    /// document (either version) in canonical form. The agent also checks
    /// the version is [`CONFIRM_DOMAIN`] before a card signs.
    pub fn from_canonical(bytes: &[u8]) -> Result<ConfirmDocument, ConfirmDocumentError> {
        let doc: ConfirmDocument =
            serde_json::from_slice(bytes).map_err(|e| ConfirmDocumentError::Parse(e.to_string()))?;
        if doc.domain != CONFIRM_DOMAIN && doc.domain != CONFIRM_DOMAIN_V1 {
            return Err(ConfirmDocumentError::Domain(doc.domain));
        }
        if doc.canonical_bytes()? != bytes {
            return Err(ConfirmDocumentError::NotCanonical);
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(content: serde_json::Value) -> ConfirmDocument {
        ConfirmDocument {
            domain: CONFIRM_DOMAIN.into(),
            gateway: "gw.example".into(),
            draft: "d1".into(),
            version: 2,
            kind: DraftKind::Medical,
            patient: "p".into(),
            encounter: "e".into(),
            institution: "Clinic".into(),
            assistant: "Clinic/A1".into(),
            signer: "MD1".into(),
            content,
        }
    }

    #[test]
    fn members_are_sorted_and_numbers_and_strings_canonical() {
        let bytes = doc(json!({"z": 1.0, "a": "血圧 120/80", "m": [3, 1e2]})).canonical_bytes().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        // RFC 8785: keys in UTF-16 order at every level, 1.0 → 1, 1e2 → 100,
        // non-ASCII kept as UTF-8, no whitespace.
        assert!(
            text.starts_with(r#"{"assistant":"Clinic/A1","content":{"a":"血圧 120/80","m":[3,100],"z":1},"domain":"#)
        );
        assert!(!text.replace("血圧 120/80", "").contains(' '), "no whitespace outside strings: {text}");
        assert!(text.ends_with(r#""signer":"MD1","version":2}"#));
    }

    #[test]
    fn round_trip_and_refusals() {
        let bytes = doc(json!({"note": "x"})).canonical_bytes().unwrap();
        assert_eq!(ConfirmDocument::from_canonical(&bytes).unwrap(), doc(json!({"note": "x"})));
        // Same document, not canonical (pretty-printed).
        let pretty = serde_json::to_vec_pretty(&doc(json!({"note": "x"}))).unwrap();
        assert!(matches!(ConfirmDocument::from_canonical(&pretty), Err(ConfirmDocumentError::NotCanonical)));
        // Another domain.
        let mut other = doc(json!({}));
        other.domain = "HPKI-GATEWAY-LOGIN-V1".into();
        let b = other.canonical_bytes().unwrap();
        assert!(matches!(ConfirmDocument::from_canonical(&b), Err(ConfirmDocumentError::Domain(_))));
        // A login value is not JSON at all.
        assert!(matches!(
            ConfirmDocument::from_canonical(b"HPKI-GATEWAY-LOGIN-V1\0"),
            Err(ConfirmDocumentError::Parse(_))
        ));
    }
}
