//! JSON bodies of patients' rights (FLOW-9, FLOW-4): disclosure of
//! everything held about oneself (also as a FHIR R4 Bundle, built by the
//! gateway), correction requests and their staff queue, and the suspension
//! of use — a patient's sharing consent per institution, withdrawn or
//! restored by the patient.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::workflow::{Patient, Record};

/// Patient listener: `POST /p/v1/corrections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectionRequest {
    pub record: String,
    /// What the patient says is wrong, and what it should say.
    pub text: String,
}

/// Where a correction request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionStatus {
    /// In the originating institution's queue.
    Pending,
    /// Staff wrote a correction: a new record that references the old one.
    Accepted,
    /// Staff found the record right as it stands, and said why.
    Rejected,
}

impl CorrectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CorrectionStatus::Pending => "pending",
            CorrectionStatus::Accepted => "accepted",
            CorrectionStatus::Rejected => "rejected",
        }
    }

    pub fn from_name(name: &str) -> Option<CorrectionStatus> {
        [CorrectionStatus::Pending, CorrectionStatus::Accepted, CorrectionStatus::Rejected]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

impl fmt::Display for CorrectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A correction request, as the patient and the staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    pub id: String,
    /// The patient id (staff) or the patient's own (patient).
    pub patient: String,
    pub record: String,
    /// The record's originating institution, whose staff answer.
    pub institution: String,
    pub status: CorrectionStatus,
    pub text: String,
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// What staff answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// The correcting record, when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction_record: Option<String>,
}

/// A list of correction requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Corrections {
    pub corrections: Vec<Correction>,
}

/// `POST /v1/corrections/{id}/resolve` (staff of the record's institution).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveCorrection {
    /// `accepted` (a correcting record is written with `text`) or
    /// `rejected` (`text` says why).
    pub decision: CorrectionStatus,
    pub text: String,
}

/// Patient listener: `POST /p/v1/consents` — share what `institution`
/// records with the others (`true`), or stop (`false`: suspension of use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentChange {
    pub institution: String,
    pub share: bool,
}

/// One institution's sharing, as the patient sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentState {
    pub institution: String,
    pub shared: bool,
    /// When it was last granted or withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consents {
    pub consents: Vec<ConsentState>,
}

/// A person named on one's records: who entered or confirmed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordPerson {
    pub id: String,
    pub name: String,
    pub role: String,
    pub institution: String,
}

/// A record in one's disclosure: the record, and who entered and who
/// confirmed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosedRecord {
    pub record: Record,
    pub entered_by: RecordPerson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<RecordPerson>,
}

/// Someone's access to one's records, from the audit log: when, from
/// which institution, in which role — not who (other people's data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntry {
    pub at: String,
    /// The audit action (`records.read`, `break_glass.read`, …).
    pub action: String,
    /// The institution, or `-` (the patient, IT staff).
    pub institution: String,
    /// doctor, nurse, …, patient (oneself), administrator.
    pub role: String,
    pub outcome: String,
    /// Whether it was an emergency (break-glass) access.
    pub break_glass: bool,
}

/// Patient listener: `GET /p/v1/disclosure` — everything held about
/// oneself (the FHIR form is `GET /p/v1/disclosure/fhir`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    pub generated_at: String,
    pub patient: Patient,
    pub records: Vec<DisclosedRecord>,
    pub accesses: Vec<AccessEntry>,
    pub consents: Vec<ConsentState>,
    pub corrections: Vec<Correction>,
}
