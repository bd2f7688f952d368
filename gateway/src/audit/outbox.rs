//! The audit outbox (issue 18, LOG-1): no committed change without its
//! audit entry.
//!
//! A change cannot share a transaction with its entry: entries are chained
//! and group-committed by one writer (`audit::writer`), and on SQLite the
//! health area is another file, which a WAL transaction does not cover
//! atomically. So a change writes the entry it owes — a [`Staged`] entry —
//! into the outbox of its own area, inside its own transaction. The
//! request's entry clears the row: in the identity area the INSERT that
//! chains the entry deletes it (a trigger, so entry and clearing are one
//! commit); in the health area the same trigger deletes it on PostgreSQL
//! (one database), while on SQLite, whose health file a trigger cannot
//! reach, the writer deletes it after the entry's commit. A
//! crash between the change's commit and the entry's leaves the row; the
//! next start ([`drain`]) appends the entry it stands for, with the reason
//! `committed_unanswered`, unless the chain holds the request's entry
//! already (the crash came between the entry and the row's deletion).

use crate::audit::{Action, AuditEvent, Outcome};
use crate::store::{Store, StoreError};

/// The reason of an entry the outbox supplied after a crash.
pub const COMMITTED_UNANSWERED: &str = "committed_unanswered";

/// How far before the oldest staged entry the chain is searched for the
/// request's own entry (which follows the change; a clock step back is
/// the only way it can be earlier).
const SEARCH_MARGIN_MS: i64 = 60_000;

/// The actions whose requests may stage an entry (the audit layer hands
/// their handlers a [`Staging`]).
pub const STAGING: &[Action] = &[
    Action::AuthLogin,
    Action::AuthLogout,
    Action::PatientRegister,
    Action::EncounterOpen,
    Action::EncounterClose,
    Action::DraftCreate,
    Action::DispensingCreate,
    Action::DraftEdit,
    Action::DraftConfirm,
    Action::DraftConfirmBatch,
    Action::NoteAdd,
    Action::SignedDocumentReceive,
    Action::BreakGlassStart,
    Action::BreakGlassEnd,
    Action::PatientLogin,
    Action::PatientPassword,
    Action::PatientLogout,
    Action::PatientCorrectionRequest,
    Action::PatientConsentChange,
    Action::CorrectionResolve,
    // The gateway's own: sessions of revoked cards (`http::reload`), the
    // alert rules' cut-offs (`ops::alerts`).
    Action::SessionRevoked,
    Action::TerminalSuspend,
    Action::PersonDeactivate,
    Action::BreakGlassExpire,
];

/// The actions whose changes run in the health area and so stage their
/// entries in the health outbox (`store::workflow`), whose rows the writer
/// deletes itself; the identity outbox's rows go with their entries' INSERT
/// (a trigger). A health action missing here leaves its rows behind: the
/// story tests' empty-outbox checks and `hpki_audit_outbox_stale` show it.
pub const STAGING_IN_HEALTH: &[Action] = &[
    Action::EncounterOpen,
    Action::EncounterClose,
    Action::DraftCreate,
    Action::DispensingCreate,
    Action::DraftEdit,
    Action::DraftConfirm,
    Action::DraftConfirmBatch,
    Action::NoteAdd,
    Action::SignedDocumentReceive,
    Action::PatientCorrectionRequest,
    Action::CorrectionResolve,
    Action::AdminRecordErase,
];

/// Whether an entry of `action` may have a staged row in the health
/// outbox to delete.
pub fn stages_in_health(action: &str) -> bool {
    STAGING_IN_HEALTH.iter().any(|a| a.as_str() == action)
}

/// Which area's transaction a change runs in, so which outbox its entry
/// goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Identity,
    Health,
}

/// What the audit layer knows of a request before its handler runs; the
/// handler completes it into a [`Staged`] entry once it knows the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    pub request_id: String,
    pub terminal: String,
    pub institution: String,
    pub action: Action,
}

impl Staging {
    pub fn stage(&self, actor: &str, object: impl Into<String>, at_ms: i64) -> Staged {
        Staged {
            request_id: self.request_id.clone(),
            at: at_ms,
            actor: actor.to_owned(),
            terminal: self.terminal.clone(),
            institution: self.institution.clone(),
            action: self.action.as_str().to_owned(),
            object: object.into(),
        }
    }
}

/// The audit entry a change owes, written with the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub request_id: String,
    /// Unix ms.
    pub at: i64,
    pub actor: String,
    pub terminal: String,
    pub institution: String,
    /// An [`Action`]'s name (as stored).
    pub action: String,
    pub object: String,
}

impl Staged {
    /// The entry appended for this row when its request's entry is missing.
    pub fn recovered_event(&self) -> AuditEvent {
        AuditEvent {
            actor: self.actor.clone(),
            terminal: self.terminal.clone(),
            institution: self.institution.clone(),
            action: self.action.clone(),
            object: self.object.clone(),
            outcome: Outcome::Ok.as_str().into(),
            reason: COMMITTED_UNANSWERED.into(),
            request_id: self.request_id.clone(),
        }
    }
}

/// At start, before serving: appends the entry of every staged change whose
/// request's entry is not in the chain, then deletes those rows. Returns
/// the rows whose entries it appended.
///
/// Rows another gateway process (PostgreSQL) staged for a request still in
/// flight look the same as a crashed one's: their entries may then be
/// written twice (once here, once by that request) — twice, never not.
pub async fn drain(store: &Store, now_ms: i64) -> Result<Vec<Staged>, StoreError> {
    let rows = store.outbox_rows().await?;
    let Some(oldest) = rows.iter().map(|r| r.at).min() else {
        return Ok(Vec::new());
    };
    // The requests' own entries, looked for from the newest back to the
    // oldest row's time: a page at a time, so that an old row (a gateway up
    // for months since an audit failure) does not load months of log.
    let mut pending: std::collections::HashSet<(String, String)> =
        rows.iter().map(|r| (r.request_id.clone(), r.action.clone())).collect();
    let mut before = i64::MAX;
    'back: while !pending.is_empty() {
        let page = store.audit_page_back(before, 1000).await?;
        let Some(last) = page.last() else { break };
        before = last.seq;
        for e in &page {
            if e.at < oldest - SEARCH_MARGIN_MS {
                break 'back;
            }
            pending.remove(&(e.event.request_id.clone(), e.event.action.clone()));
        }
    }
    let (missing, present): (Vec<&Staged>, Vec<&Staged>) =
        rows.iter().partition(|r| pending.contains(&(r.request_id.clone(), r.action.clone())));
    if !missing.is_empty() {
        let events: Vec<_> = missing.iter().map(|r| (r.recovered_event(), now_ms)).collect();
        store.append_audit_batch(&events).await?;
        for r in &missing {
            tracing::warn!(action = %r.action, object = %r.object, request_id = %r.request_id,
                "a change committed before a crash had no audit entry; recorded now");
        }
    }
    // Only now: a crash before this line finds the entries and just clears.
    // By request: rows another gateway process staged meanwhile stay.
    let done: Vec<&str> = present.iter().chain(&missing).map(|r| r.request_id.as_str()).collect();
    store.clear_outbox(&done).await?;
    Ok(missing.into_iter().cloned().collect())
}
