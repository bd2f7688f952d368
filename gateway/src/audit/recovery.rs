//! At start: records whose answer was lost in a crash get their audit entry.
//!
//! A confirm commits the draft → record transaction, then its audit entry
//! (SQLite keeps the two in different files, and WAL mode does not make a
//! transaction across attached files atomic), and answers only after both.
//! A crash between the two commits leaves a record nobody was told about and
//! that the audit log does not name. Before serving, the gateway looks at the
//! records made shortly before its newest audit entry and after it, and
//! appends a `record.recovered` entry for each one no entry names, with the
//! signer (or author) as the actor and `committed_unanswered` as the reason.

use crate::audit::{Action, AuditEvent, Outcome};
use crate::store::{Store, StoreError};

/// How far before the newest audit entry records are looked at. A record's
/// own entry follows its commit by one group commit; a minute is ample.
pub const WINDOW_SECONDS: i64 = 60;

/// Appends a `record.recovered` entry for every recent record no audit
/// entry names; the ids of those records.
pub async fn audit_unanswered_records(store: &Store, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let since = match store.last_audit_at().await? {
        Some(at) => at.div_euclid(1000) - WINDOW_SECONDS,
        None => 0,
    };
    let records = store.records_since(since).await?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    // A record's entry comes after the record's commit; created_at is in
    // whole seconds.
    let entries = store.audit_since(since * 1000).await?;
    let unnamed: Vec<_> =
        records.into_iter().filter(|r| !entries.iter().any(|e| e.event.object.contains(&r.id))).collect();
    let events: Vec<(AuditEvent, i64)> = unnamed
        .iter()
        .map(|r| {
            let event = AuditEvent {
                actor: r.signer.clone().unwrap_or_else(|| r.author.clone()),
                institution: r.institution.clone(),
                object: format!("{} record:{}", r.origin_reference, r.id),
                reason: "committed_unanswered".into(),
                ..AuditEvent::new(Action::RecordRecovered, Outcome::Ok)
            };
            (event, now_ms)
        })
        .collect();
    if !events.is_empty() {
        store.append_audit_batch(&events).await?;
    }
    Ok(unnamed
        .into_iter()
        .map(|r| {
            tracing::warn!(record = %r.id, origin = %r.origin_reference, "a record committed before a crash had no audit entry; recorded now");
            r.id
        })
        .collect())
}
