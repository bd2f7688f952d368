//! JSON bodies of emergency operation (FLOW-7): break-glass access to one
//! patient, and the gateway's operating mode (normal, read-only, blocked)
//! that every institution request is admitted under.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How the gateway is operating. IT staff set it (`hpki-gateway admin
/// mode`); it is kept in the store, so every gateway process honours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperatingMode {
    /// Everything the roles allow.
    Normal,
    /// Reads are served; every write (patients, encounters, drafts,
    /// confirms, notes, received documents) is refused `read_only_mode`.
    ReadOnly,
    /// Only signing in and out and the break-glass path are served; every
    /// other request is refused `blocked_mode`.
    Blocked,
}

impl OperatingMode {
    pub const ALL: [OperatingMode; 3] = [OperatingMode::Normal, OperatingMode::ReadOnly, OperatingMode::Blocked];

    /// The name in the store, on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatingMode::Normal => "normal",
            OperatingMode::ReadOnly => "read-only",
            OperatingMode::Blocked => "blocked",
        }
    }
}

impl fmt::Display for OperatingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operating mode {0:?}: normal, read-only or blocked")]
pub struct UnknownMode(pub String);

impl FromStr for OperatingMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperatingMode::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

/// Why a clinician breaks the glass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakGlassReason {
    /// The patient needs treatment now and cannot wait for the usual
    /// encounter and consent.
    EmergencyTreatment,
    /// A disaster: the patient's institution or records are out of reach.
    Disaster,
    /// Anything else; the free text must say what.
    Other,
}

impl BreakGlassReason {
    pub const ALL: [BreakGlassReason; 3] =
        [BreakGlassReason::EmergencyTreatment, BreakGlassReason::Disaster, BreakGlassReason::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            BreakGlassReason::EmergencyTreatment => "emergency_treatment",
            BreakGlassReason::Disaster => "disaster",
            BreakGlassReason::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<BreakGlassReason> {
        BreakGlassReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for BreakGlassReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/break-glass`. The reason is read as text so that a missing or
/// unknown one gets its own refusal, not a JSON error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassRequest {
    pub patient: String,
    /// A [`BreakGlassReason`] name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the emergency is, in the clinician's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One break-glass access: who, to whom, why, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassAccess {
    pub id: String,
    pub patient: String,
    pub person: String,
    pub institution: String,
    pub reason: BreakGlassReason,
    pub detail: String,
    pub started_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Whether it may still be used: not ended and not expired.
    pub active: bool,
}

/// `GET /v1/status`: what a terminal's screen shows above everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayStatus {
    pub mode: OperatingMode,
    pub mode_reason: String,
    pub mode_since: String,
    /// The caller's break-glass accesses in force.
    pub break_glass: Vec<BreakGlassAccess>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_reasons_round_trip_through_their_names() {
        for m in OperatingMode::ALL {
            assert_eq!(m.as_str().parse::<OperatingMode>(), Ok(m));
            assert_eq!(serde_json::to_string(&m).expect("json"), format!("\"{m}\""));
        }
        assert!("readonly".parse::<OperatingMode>().is_err());
        for r in BreakGlassReason::ALL {
            assert_eq!(BreakGlassReason::from_name(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).expect("json"), format!("\"{r}\""));
        }
        assert_eq!(BreakGlassReason::from_name("curiosity"), None);
    }
}
