//! Which records are due for erasure (DATA-8): a record of a kind the
//! `[retention]` lists is due once its years have passed since the
//! patient's last encounter at the record's institution — or since the
//! record itself, when there is no encounter (a received document) or the
//! record is the later. Years are of 365.2425 days. The erasure itself is
//! `store::erasure`, run by `hpki-gateway records erase --expired`.

use serde::Serialize;

use crate::config::RetentionSection;
use crate::store::ErasureCandidate;

/// A Gregorian year in seconds.
pub const YEAR_SECONDS: i64 = 31_556_952;

/// A record due for erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    pub record: String,
    pub kind: String,
    pub institution: String,
    #[serde(skip)]
    pub patient: String,
    pub created_at: i64,
    pub last_encounter_at: Option<i64>,
    pub retention_years: i64,
    /// When its retention ended.
    pub due_at: i64,
}

/// The candidates whose retention ended before `now`.
pub fn due(candidates: Vec<ErasureCandidate>, retention: &RetentionSection, now: i64) -> Vec<Due> {
    candidates
        .into_iter()
        .filter_map(|c| {
            let years = *retention.years.get(&c.kind)?;
            let from = c.last_encounter_at.map_or(c.created_at, |e| e.max(c.created_at));
            let due_at = from.saturating_add(years.saturating_mul(YEAR_SECONDS));
            (due_at <= now).then_some(Due {
                record: c.id,
                kind: c.kind,
                institution: c.institution,
                patient: c.patient,
                created_at: c.created_at,
                last_encounter_at: c.last_encounter_at,
                retention_years: years,
                due_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(kind: &str, created_at: i64, last_encounter_at: Option<i64>) -> ErasureCandidate {
        ErasureCandidate {
            id: format!("rec_{kind}_{created_at}"),
            kind: kind.into(),
            patient: "ps".into(),
            institution: "Clinic".into(),
            created_at,
            last_encounter_at,
        }
    }

    #[test]
    fn retention_counts_from_the_last_encounter_per_kind() {
        let r = RetentionSection::default();
        let t0 = 1_000_000_000;
        let five = t0 + 5 * YEAR_SECONDS;
        let due_at = |c: ErasureCandidate, now: i64| due(vec![c], &r, now).first().map(|d| d.due_at);
        // Medical: 5 years after the last encounter, not after the record.
        assert_eq!(due_at(candidate("medical", t0, Some(t0 + 100)), five), None);
        assert_eq!(due_at(candidate("medical", t0, Some(t0 + 100)), five + 100), Some(five + 100));
        // Dispensing: 3 years.
        assert_eq!(due_at(candidate("dispensing", t0, Some(t0)), t0 + 3 * YEAR_SECONDS), Some(t0 + 3 * YEAR_SECONDS));
        // No encounter: from the record.
        assert_eq!(due_at(candidate("received", t0, None), five), Some(five));
        // A kind the configuration does not list is never due.
        assert_eq!(due_at(candidate("something_new", t0, None), i64::MAX), None);
    }
}
