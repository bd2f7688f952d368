//! De-identified exports for research (FLOW-8): the records of a period,
//! of patients with a sharing consent in force who did not object to
//! secondary use, as CSV rows with
//!
//! - no direct identifier: the patient appears as a keyed pseudonym
//!   (HMAC-SHA256 of the store's pseudonym under a key drawn fresh for each
//!   export unless one is given), so two exports cannot be linked without
//!   the same key;
//! - quasi-identifiers generalised: the month (Japan time) instead of the
//!   date, 10-year age bands (90+) instead of the birth date, the region
//!   `[research] regions` gives the institution (`unspecified` otherwise);
//! - content reduced to the `[research] keep_fields` whose values are
//!   scalars: free text leaves only when a field list allows it;
//! - rows suppressed until every combination of the quasi-identifiers
//!   (age band, region, month, kind) occurs at least k times.
//!
//! The report says what was done; `cli::export` writes it next to the file
//! and audits the export with the report's hash.

use std::collections::{BTreeMap, HashMap, HashSet};

use ring::hmac;
use serde::Serialize;

use crate::config::ResearchSection;
use crate::domain::keyring::Keyring;
use crate::store::{RecordRow, ResearchPatient, SealedTable, Store, StoreError};

/// The quasi-identifier columns, in the CSV's order after the pseudonym.
pub const QUASI_IDENTIFIERS: [&str; 4] = ["age_band", "region", "month", "kind"];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a record cannot be opened: {0}")]
    Key(#[from] crate::domain::keyring::KeyError),
    #[error("k must be at least 2 (k = 1 is no anonymity)")]
    K,
    #[error("--from must be before --to")]
    Period,
    #[error("writing the CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// What one export did.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub from: String,
    pub to: String,
    pub k: usize,
    /// Whether every quasi-identifier combination in the file occurs at
    /// least k times (always, by suppression; false only for no rows).
    pub k_reached: bool,
    pub smallest_group: Option<usize>,
    pub groups: usize,
    pub records_in_period: usize,
    pub rows_exported: usize,
    pub rows_suppressed: usize,
    pub patients_exported: usize,
    pub patients_opted_out: usize,
    pub patients_without_consent: usize,
    pub quasi_identifiers: Vec<String>,
    pub fields_kept: Vec<String>,
    /// Whether the pseudonym key was given (linkable with other exports
    /// under it) or drawn for this export alone.
    pub key_given: bool,
    /// SHA-256 of the CSV file, hex.
    pub file_sha256: String,
}

pub struct Export {
    pub csv: Vec<u8>,
    pub report: ExportReport,
}

/// One row before suppression.
struct Row {
    pseudonym: String,
    qi: [String; 4],
    fields: Vec<String>,
}

/// The 10-year band of the age on `on` (YYYY-MM-DD) of someone born on
/// `born`; `unknown` for a date that does not parse.
pub fn age_band(born: &str, on: time::Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(b) = time::Date::parse(born, &format) else { return "unknown".into() };
    let mut age = on.year() - b.year();
    if (on.month() as u8, on.day()) < (b.month() as u8, b.day()) {
        age -= 1;
    }
    match age {
        a if a < 0 => "unknown".into(),
        a if a >= 90 => "90+".into(),
        a => format!("{}-{}", a / 10 * 10, a / 10 * 10 + 9),
    }
}

fn date_of(unix: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(unix + crate::ops::report::REPORT_UTC_OFFSET_SECONDS)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}

/// The content fields of a record that `keep` allows, as text ("" when
/// absent or not a scalar).
fn kept_fields(keys: &Keyring, r: &RecordRow, keep: &[String]) -> Result<Vec<String>, ExportError> {
    if keep.is_empty() {
        return Ok(Vec::new());
    }
    let plain = keys.open(&r.key_id, &SealedTable::Records.aad(&r.id), &r.content)?;
    let value: serde_json::Value = serde_json::from_slice(&plain).unwrap_or(serde_json::Value::Null);
    // A signed record's sealed bytes are its whole signed document; the
    // content is inside.
    let content = match value.get("content") {
        Some(c) if value.get("domain").is_some() => c.clone(),
        _ => value,
    };
    Ok(keep
        .iter()
        .map(|f| match content.get(f) {
            Some(serde_json::Value::String(s)) => spreadsheet_safe(s),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
            _ => String::new(),
        })
        .collect())
}

/// A text field as a spreadsheet will not run: one that starts like a
/// formula (`=`, `+`, `-`, `@`, tab, carriage return) gets a leading `'`
/// (the OWASP advice against CSV injection). Numbers are written as
/// numbers and never changed.
pub fn spreadsheet_safe(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What to export.
pub struct ExportRequest {
    /// Records created in `[from, to)`, Unix s.
    pub from: i64,
    pub to: i64,
    pub k: usize,
    /// The pseudonym key; `None`: a fresh one, forgotten after.
    pub key: Option<[u8; 32]>,
}

/// The export `req` asks for.
pub async fn export(
    store: &Store,
    keys: &Keyring,
    research: &ResearchSection,
    req: ExportRequest,
    rng: &dyn ring::rand::SecureRandom,
) -> Result<Export, ExportError> {
    let ExportRequest { from, to, k, key } = req;
    if k < 2 {
        return Err(ExportError::K);
    }
    if from >= to {
        return Err(ExportError::Period);
    }
    let key_given = key.is_some();
    let key = match key {
        Some(k) => k,
        None => {
            let mut b = [0u8; 32];
            rng.fill(&mut b).map_err(|_| StoreError::Invalid("the system random generator failed".into()))?;
            b
        }
    };
    let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let patients: HashMap<String, ResearchPatient> =
        store.research_patients().await?.into_iter().map(|p| (p.pseudonym.clone(), p)).collect();
    let records = store.records_between(from, to).await?;
    let (mut opted_out, mut unconsented) = (HashSet::new(), HashSet::new());
    let mut rows = Vec::new();
    for r in &records {
        let Some(p) = patients.get(&r.patient) else { continue };
        if p.opted_out {
            opted_out.insert(p.pseudonym.clone());
            continue;
        }
        if !p.consented {
            unconsented.insert(p.pseudonym.clone());
            continue;
        }
        let tag = hmac::sign(&mac_key, p.pseudonym.as_bytes());
        let on = date_of(r.created_at);
        rows.push(Row {
            pseudonym: hex(&tag.as_ref()[..16]),
            qi: [
                age_band(&p.birth_date, on),
                research.regions.get(&r.institution).cloned().unwrap_or_else(|| "unspecified".into()),
                crate::ops::report::month_of(r.created_at * 1000),
                r.kind.clone(),
            ],
            fields: kept_fields(keys, r, &research.keep_fields)?,
        });
    }
    let mut groups: BTreeMap<&[String; 4], usize> = BTreeMap::new();
    for r in &rows {
        *groups.entry(&r.qi).or_insert(0) += 1;
    }
    // The combinations that stay; every row of another is suppressed.
    groups.retain(|_, n| *n >= k);
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["pseudonym".to_owned()];
    header.extend(QUASI_IDENTIFIERS.iter().map(|s| (*s).to_owned()));
    header.extend(research.keep_fields.iter().cloned());
    out.write_record(&header)?;
    let (mut exported, mut patients_out) = (0, HashSet::new());
    for r in rows.iter().filter(|r| groups.contains_key(&r.qi)) {
        let mut line = vec![r.pseudonym.clone()];
        line.extend(r.qi.iter().cloned());
        line.extend(r.fields.iter().cloned());
        out.write_record(&line)?;
        exported += 1;
        patients_out.insert(r.pseudonym.clone());
    }
    let csv = out.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    let report = ExportReport {
        from: hpki_profile::validate::rfc3339(from),
        to: hpki_profile::validate::rfc3339(to),
        k,
        k_reached: !groups.is_empty(),
        smallest_group: groups.values().min().copied(),
        groups: groups.len(),
        records_in_period: records.len(),
        rows_exported: exported,
        rows_suppressed: rows.len() - exported,
        patients_exported: patients_out.len(),
        patients_opted_out: opted_out.len(),
        patients_without_consent: unconsented.len(),
        quasi_identifiers: QUASI_IDENTIFIERS.iter().map(|s| (*s).to_owned()).collect(),
        fields_kept: research.keep_fields.clone(),
        key_given,
        file_sha256: hex(ring::digest::digest(&ring::digest::SHA256, &csv).as_ref()),
    };
    Ok(Export { csv, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_a_spreadsheet_would_run_is_quoted() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("vital_signs"), "vital_signs");
        assert_eq!(spreadsheet_safe(""), "");
    }

    #[test]
    fn ages_fall_in_ten_year_bands() {
        let d =
            |y, m, day| time::Date::from_calendar_date(y, time::Month::try_from(m).expect("month"), day).expect("date");
        assert_eq!(age_band("1950-04-01", d(2026, 3, 31)), "70-79", "75 the day before the birthday");
        assert_eq!(age_band("1950-04-01", d(2026, 4, 1)), "70-79");
        assert_eq!(age_band("1946-12-06", d(2026, 12, 6)), "80-89");
        assert_eq!(age_band("1930-01-01", d(2026, 1, 1)), "90+");
        assert_eq!(age_band("2026-05-05", d(2026, 12, 6)), "0-9");
        assert_eq!(age_band("someday", d(2026, 12, 6)), "unknown");
        assert_eq!(age_band("2030-01-01", d(2026, 12, 6)), "unknown");
    }
}
