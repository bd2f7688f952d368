//! A listener's audit budget for refusals (issue 18): the first
//! `per_second` refusals of each second are written one by one, as any
//! entry; the rest of that second are counted by action and reason and
//! written as one entry each (`object` = `coalesced:<count>`) when the
//! second is over. A flood of refused requests or connections then writes
//! at most `per_second` + (its kinds of refusal) entries a second, whatever
//! its rate, and cannot fill the audit disk that every clinic request needs
//! (the log fails closed).
//!
//! Only refusals are budgeted: an answer that grants anything is always
//! written, and durable before it leaves. A refusal counted here leaves
//! before its counted entry is durable; it grants nothing, and the count is
//! written within a second (or at shutdown).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use super::{AuditEvent, Outcome};

/// Kinds of refusal counted apart; more go into one `*` kind, so the
/// summaries of a second stay few whatever reasons an attacker provokes.
const MAX_KINDS: usize = 64;

/// The summaries' `terminal` for each listener.
pub const INSTITUTION_LISTENER: &str = "institution-listener";
pub const PATIENT_PORTAL: &str = "patient-portal";

pub struct RefusalBudget {
    /// Where the refusals came from, for the summaries' `terminal`
    /// (`institution-listener`, `patient-portal`).
    listener: &'static str,
    per_second: u32,
    state: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    /// The second (Unix) the counts are of.
    second: i64,
    written: u32,
    counted: BTreeMap<(String, String), u64>,
    /// Summaries of seconds that are over, not yet taken.
    due: Vec<AuditEvent>,
}

impl Window {
    fn roll(&mut self, listener: &str, second: i64) {
        if second == self.second {
            return;
        }
        for ((action, reason), count) in std::mem::take(&mut self.counted) {
            self.due.push(summary(listener, action, reason, count));
        }
        self.second = second;
        self.written = 0;
    }
}

fn summary(listener: &str, action: String, reason: String, count: u64) -> AuditEvent {
    AuditEvent {
        action,
        reason,
        terminal: listener.to_owned(),
        object: format!("coalesced:{count}"),
        outcome: Outcome::Refused.as_str().to_owned(),
        actor: "-".into(),
        institution: "-".into(),
        request_id: "-".into(),
    }
}

impl RefusalBudget {
    pub fn new(listener: &'static str, per_second: u32) -> RefusalBudget {
        RefusalBudget { listener, per_second, state: Mutex::new(Window::default()) }
    }

    /// The refusal `event` at `now_ms`: `Some(event)` to write it now (its
    /// second's budget has room), `None` when it was counted instead.
    pub fn offer(&self, event: AuditEvent, now_ms: i64) -> Option<AuditEvent> {
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        w.roll(self.listener, now_ms.div_euclid(1000));
        if w.written < self.per_second {
            w.written += 1;
            return Some(event);
        }
        let key =
            if w.counted.len() < MAX_KINDS || w.counted.contains_key(&(event.action.clone(), event.reason.clone())) {
                (event.action, event.reason)
            } else {
                ("*".to_owned(), "*".to_owned())
            };
        *w.counted.entry(key).or_insert(0) += 1;
        None
    }

    /// The summaries of the seconds that are over at `now_ms`.
    pub fn due(&self, now_ms: i64) -> Vec<AuditEvent> {
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        w.roll(self.listener, now_ms.div_euclid(1000));
        std::mem::take(&mut w.due)
    }

    /// Every count, the current second's included (at shutdown).
    pub fn drain(&self) -> Vec<AuditEvent> {
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let next = w.second + 1;
        w.roll(self.listener, next);
        std::mem::take(&mut w.due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Action;

    fn refused(reason: &str) -> AuditEvent {
        AuditEvent { reason: reason.into(), ..AuditEvent::new(Action::PatientLogin, Outcome::Refused) }
    }

    #[test]
    fn past_the_budget_refusals_are_counted_into_one_entry_per_kind_and_second() {
        let b = RefusalBudget::new("patient-portal", 3);
        let written = (0..1000).filter(|i| b.offer(refused(if i % 2 == 0 { "a" } else { "b" }), 5_000).is_some());
        assert_eq!(written.count(), 3);
        assert!(b.due(5_999).is_empty(), "the second is not over");
        let mut due = b.due(6_000);
        due.sort_by(|x, y| x.reason.cmp(&y.reason));
        let got: Vec<_> = due.iter().map(|e| (e.reason.as_str(), e.object.as_str(), e.terminal.as_str())).collect();
        // 500 "a" and 500 "b"; the first three (a, b, a) were written.
        assert_eq!(got, [("a", "coalesced:498", "patient-portal"), ("b", "coalesced:499", "patient-portal")]);
        assert!(due.iter().all(|e| e.outcome == "refused" && e.action == "patient.login"));
        // A new second has its budget again.
        assert!(b.offer(refused("a"), 6_001).is_some());
        assert!(b.due(7_000).is_empty(), "nothing was counted in that second");
    }

    #[test]
    fn the_kinds_counted_apart_are_bounded_and_shutdown_takes_the_current_second() {
        let b = RefusalBudget::new("institution-listener", 0);
        for i in 0..10_000 {
            assert!(b.offer(refused(&format!("r{i}")), 1_000).is_none());
        }
        let due = b.drain();
        assert_eq!(due.len(), MAX_KINDS + 1);
        let total: u64 =
            due.iter().map(|e| e.object.trim_start_matches("coalesced:").parse::<u64>().expect("count")).sum();
        assert_eq!(total, 10_000, "every refusal is counted once");
        assert!(due.iter().any(|e| e.reason == "*"));
    }
}
