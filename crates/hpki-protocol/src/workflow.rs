//! JSON bodies of the workflow API: patients, encounters, drafts, confirm,
//! records (institution listener) and the patient listener's sign-in.
//! Binary values are base64 (standard, padded); times are RFC 3339 UTC.

use serde::{Deserialize, Serialize};

use crate::confirm::DraftKind;

/// `POST /v1/patients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPatient {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_kanji: Option<String>,
    /// YYYY-MM-DD.
    pub birth_date: String,
}

/// A patient as institution staff see them (identity area).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_kanji: Option<String>,
    pub birth_date: String,
}

/// `POST /v1/encounters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenEncounter {
    pub patient: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encounter {
    pub id: String,
    pub patient: String,
    pub institution: String,
    pub opened_by: String,
    pub opened_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
}

/// `POST /v1/drafts` (an assistant, for a linked doctor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDraft {
    pub encounter: String,
    /// The person id of the doctor or dentist who is to confirm.
    pub doctor: String,
    /// A JSON object.
    pub content: serde_json::Value,
}

/// `POST /v1/dispensing` (a pharmacist's own record, confirmed by the same
/// pharmacist's signature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDispensing {
    pub encounter: String,
    pub content: serde_json::Value,
}

/// `PUT /v1/drafts/{id}`: replaces the content of `version`, giving
/// `version + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditDraft {
    pub version: i64,
    pub content: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftStatus {
    Pending,
    Confirmed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub id: String,
    pub kind: DraftKind,
    pub version: i64,
    pub status: DraftStatus,
    pub patient: String,
    pub encounter: String,
    pub institution: String,
    pub assistant: String,
    pub signer: String,
    pub content: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// `GET /v1/queue`: what awaits the logged-in signer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub drafts: Vec<Draft>,
}

/// `GET /v1/drafts`: the pending drafts the logged-in assistant wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drafts {
    pub drafts: Vec<Draft>,
}

/// A doctor or dentist an assistant may draft for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkedDoctor {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_kanji: Option<String>,
    /// doctor or dentist.
    pub role: String,
}

/// `GET /v1/doctors`: the active doctors and dentists the logged-in
/// assistant is linked to (FLOW-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkedDoctors {
    pub doctors: Vec<LinkedDoctor>,
}

/// `GET /v1/drafts/{id}/signing-bytes?version=N`: the exact bytes to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningBytes {
    pub draft: String,
    pub version: i64,
    /// RFC 8785 canonical JSON of the [`crate::ConfirmDocument`], base64.
    pub document: String,
    /// SHA-256 of those bytes, hex: what the card signs.
    pub sha256: String,
}

/// `POST /v1/drafts/{id}/signed-attributes`: the CAdES signed attributes
/// for a draft version and the certificate that will sign it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedAttributesRequest {
    pub version: i64,
    /// The card's signature certificate, DER, base64.
    pub certificate: String,
}

/// The answer: the document as in [`SigningBytes`], and the DER of the
/// signed attributes (contentType, messageDigest = SHA-256 of the document,
/// signingTime, signing-certificate-v2) the card is to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedAttributesAnswer {
    pub draft: String,
    pub version: i64,
    /// RFC 8785 canonical JSON of the [`crate::ConfirmDocument`], base64.
    pub document: String,
    /// SHA-256 of the document, hex: what the doctor reviewed.
    pub sha256: String,
    /// DER `SET OF Attribute`, base64. The card signs SHA-256 of it.
    pub signed_attributes: String,
}

/// `POST /v1/drafts/{id}/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub version: i64,
    /// The card's signature certificate, DER, base64.
    pub certificate: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intermediates: Vec<String>,
    /// The signed attributes the gateway handed out, base64 DER, as signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_attributes: Option<String>,
    /// PKCS#1 v1.5 SHA-256 over the signed attributes' DER, base64.
    pub signature: String,
}

/// One item of a batch confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub draft: String,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_attributes: Option<String>,
    pub signature: String,
}

/// `POST /v1/confirm-batch`: several drafts, one certificate, one signature
/// each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBatch {
    pub certificate: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intermediates: Vec<String>,
    pub items: Vec<BatchItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchResult {
    pub draft: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::wire::ErrorBody>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBatchResponse {
    pub results: Vec<BatchResult>,
}

/// `POST /v1/notes` (a clinician's own note, within an encounter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub encounter: String,
    pub content: serde_json::Value,
}

/// `POST /v1/signed-documents`: a document signed elsewhere with an HPKI
/// card (say, another hospital's referral letter), received within an
/// encounter and kept as a record with its signature made long-term
/// (DATA-5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSignedDocument {
    pub encounter: String,
    /// The document's bytes exactly as signed, base64.
    pub document: String,
    /// Its CAdES signature: a detached CMS SignedData, DER, base64.
    pub signature: String,
    /// Where the original is (DATA-3): the institution that made it and
    /// its reference there.
    pub origin_institution: String,
    pub origin_reference: String,
}

/// The CRL that showed a certificate unrevoked when it was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationEvidence {
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_number: Option<String>,
    pub this_update: String,
    /// What the CRL speaks for (its Issuing Distribution Point), in words;
    /// absent in records confirmed before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A record: confirmed content, or a clinician's note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub id: String,
    /// medical, dispensing or note.
    pub kind: String,
    pub patient: String,
    /// The originating institution (DATA-3).
    pub institution: String,
    /// The original's reference at that institution (DATA-3): the draft id
    /// and version, or the note id.
    pub origin_reference: String,
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    pub content: serde_json::Value,
    pub created_at: String,
    /// The signed document's SHA-256, hex (absent for notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation: Vec<RevocationEvidence>,
    /// The signature's format and CAdES level, e.g. "CAdES B-LT"; absent
    /// for notes and for records signed before CAdES.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_format: Option<String>,
    /// genTime of the signature time-stamp, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_stamped_at: Option<String>,
}

/// `GET /v1/patients/{id}/records`, and the patient's own view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Records {
    pub patient: String,
    pub records: Vec<Record>,
}

/// Patient listener: `POST /p/v1/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientLogin {
    pub id: String,
    pub password: String,
}

impl std::fmt::Debug for PatientLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientLogin").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientSession {
    pub session: String,
    /// The initial password must be replaced before anything else works.
    pub must_change_password: bool,
    pub expires_at: String,
}

/// Patient listener: `POST /p/v1/password`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { .. }")
    }
}
