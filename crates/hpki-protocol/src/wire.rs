//! JSON bodies of the institution listener's API. Binary values are base64
//! (standard alphabet, padded); times are RFC 3339 UTC.

use serde::{Deserialize, Serialize};

/// `POST /v1/auth/challenge` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    pub id: String,
    /// 32 random bytes, base64.
    pub nonce: String,
    pub expires_at: String,
    /// The gateway identity to put into the signed value.
    pub gateway_id: String,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub challenge_id: String,
    /// The card's authentication certificate, DER, base64.
    pub certificate: String,
    /// Intermediate CA certificates the card holds, DER, base64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intermediates: Vec<String>,
    /// PKCS#1 v1.5 SHA-256 signature over the login TBS, base64.
    pub signature: String,
}

/// `POST /v1/auth/login` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer …`.
    pub session: String,
    pub person: Person,
    pub idle_timeout_seconds: u64,
    pub expires_at: String,
}

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_kanji: Option<String>,
    /// doctor, dentist, pharmacist, nurse, dietitian, assistant.
    pub role: String,
    /// The licensed profession (absent for assistants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    pub institution: String,
}

/// `GET /v1/auth/whoami` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhoAmI {
    pub person: Person,
    pub terminal: String,
    pub session_expires_at: String,
    pub idle_expires_at: String,
}

/// Every refusal: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}
