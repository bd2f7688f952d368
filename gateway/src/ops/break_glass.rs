//! Break-glass accesses past their expiry (FLOW-7): each is ended in the
//! store and audited `break_glass.expire` by the gateway, so the log shows
//! every access's end — ended by its clinician, revoked, or expired — and
//! the review sees when it stopped. Runs every 30 s beside serving; a read
//! after the expiry is refused whether or not the sweep ran yet (the
//! expiry is checked at the read).

use crate::audit::outbox::Staging;
use crate::audit::{Action, AuditEvent, Outcome};
use crate::gateway::Gateway;

/// Who ends expired accesses, in the log.
pub const ACTOR: &str = "system:break_glass";

/// Ends and audits every access past its expiry; how many it ended.
pub async fn sweep(gw: &Gateway) -> usize {
    let now = gw.clock.now();
    let expired = match gw.store.expired_break_glass(now).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot look for expired break-glass accesses");
            return 0;
        }
    };
    let mut ended = 0;
    for r in expired {
        let object = r.audit_object();
        let staging = Staging {
            request_id: gw.request_id(),
            terminal: r.terminal.clone(),
            institution: r.institution.clone(),
            action: Action::BreakGlassExpire,
        };
        let staged = staging.stage(ACTOR, &object, gw.clock.now_ms());
        match gw.store.end_break_glass(&r.id, r.expires_at, "expired", Some(&staged)).await {
            // Another gateway on the same store ended it first.
            Ok(false) => continue,
            Ok(true) => ended += 1,
            Err(e) => {
                tracing::error!(error = %e, access = %r.id, "cannot end an expired break-glass access");
                continue;
            }
        }
        tracing::warn!(access = %r.id, person = %r.person, patient = %r.patient_id, "break-glass access expired");
        let event = AuditEvent {
            actor: ACTOR.into(),
            terminal: r.terminal,
            institution: r.institution,
            object,
            reason: format!("expired at {}", hpki_profile::validate::rfc3339(r.expires_at)),
            request_id: staging.request_id,
            ..AuditEvent::new(Action::BreakGlassExpire, Outcome::Ok)
        };
        // Unwritten, the staged row stays and the next start writes it.
        if let Err(e) = gw.audit.append(event, gw.clock.now_ms()).await {
            tracing::error!(error = %e, "cannot audit an expired break-glass access");
        }
    }
    ended
}
