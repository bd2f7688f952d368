//! Work a running gateway does beside answering: reloading certificates,
//! CRLs and keys when their files change (nothing in flight is dropped),
//! ending the sessions whose card a new CRL revokes, and housekeeping
//! (expired challenges; the revocation check again).

use crate::gateway::{Gateway, Metrics};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Rebuilds TLS and HPKI validation from the files; a broken file keeps the
/// old configuration in force and is reported.
pub fn reload(gw: &Gateway) -> Result<(), String> {
    if let Err(e) = gw.reload_keys() {
        Metrics::inc(&gw.metrics.reload_failures);
        tracing::error!(error = %e, "record keys not reloaded; the keys in force stay");
    }
    let built = crate::credentials::server_config(&gw.config).and_then(|t| {
        let v = crate::credentials::validator(&gw.config)?;
        let ts = crate::credentials::timestamper(&gw.config)?;
        let next = crate::credentials::earliest_crl_next_update(&gw.config)?;
        Ok((t, v, ts, next))
    });
    match built.map_err(|e| e.to_string()) {
        Ok((t, v, ts, next)) => {
            gw.tls.store(t);
            gw.validator.store(v);
            gw.timestamper.store(ts);
            gw.crl_next_update.store(next.unwrap_or(i64::MAX), std::sync::atomic::Ordering::Relaxed);
            Metrics::inc(&gw.metrics.reloads);
            tracing::info!("certificates and CRLs reloaded");
            Ok(())
        }
        Err(e) => {
            Metrics::inc(&gw.metrics.reload_failures);
            tracing::error!(error = %e, "reload refused; the previous certificates and CRLs stay in force");
            Err(e)
        }
    }
}

/// The files whose change triggers a reload.
pub(crate) fn watched_files(gw: &Gateway) -> Vec<std::path::PathBuf> {
    let c = &gw.config;
    let l = &c.listener;
    let h = &c.hpki;
    [&l.certificate, &l.key]
        .into_iter()
        .chain(l.terminal_ca.iter())
        .chain(l.terminal_crls.iter())
        .chain(h.anchors.iter())
        .chain(h.intermediates.iter())
        .chain(h.crls.iter())
        .chain(h.scope.iter().map(|s| &s.ca))
        .chain(c.timestamps.iter().flat_map(|t| t.anchors.iter().chain(&t.intermediates).chain(&t.crls)))
        .chain(std::iter::once(&c.records.key_file))
        .map(|p| c.path(p))
        .collect()
}

pub(crate) fn stamps(files: &[std::path::PathBuf]) -> Vec<Option<SystemTime>> {
    files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
}

/// Reloads on SIGHUP and when a watched file changes (checked every
/// `every`).
pub async fn watch_reloads(gw: Arc<Gateway>, every: Duration) {
    let files = watched_files(&gw);
    let mut last = stamps(&files);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let by_signal = async {
            match hup.as_mut() {
                Some(s) => s.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            true = by_signal => {
                if reload(&gw).is_ok() {
                    end_revoked_sessions(&gw).await;
                }
                last = stamps(&files);
            }
            _ = tokio::time::sleep(every) => {
                let now = stamps(&files);
                if now != last {
                    last = now;
                    if reload(&gw).is_ok() {
                        end_revoked_sessions(&gw).await;
                    }
                }
            }
        }
    }
}

/// Periodic clean-up: challenges are needed only until they expire (a
/// replay after that is refused as unknown), so expired ones are deleted.
pub async fn housekeeping(gw: Arc<Gateway>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match gw.store.purge_challenges(gw.clock.now()).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "expired challenges deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot purge expired challenges"),
        }
        end_revoked_sessions(&gw).await;
        watch_outbox(&gw).await;
    }
}

/// Staged audit entries older than a minute are changes whose entries
/// failed (the request was answered `audit_unavailable`): the next start
/// writes them; until then the operator is told (log and
/// `hpki_audit_outbox_stale`).
pub async fn watch_outbox(gw: &Gateway) {
    match gw.store.stale_outbox_rows(gw.clock.now_ms() - 60_000).await {
        Ok(n) => {
            gw.metrics.audit_outbox_stale.set(n);
            if n > 0 {
                tracing::error!(staged = n, "changes without their audit entry yet; the next start writes them");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot look at the audit outbox"),
    }
}

/// Ends every open session whose card certificate the CRLs in force now
/// revoke, and audits each (a session was checked against the CRLs only at
/// its login; without this a revoked card would keep its session up to its
/// 12 h end). Only `revoked` ends a session here: a CRL that has gone stale
/// refuses new logins but does not log everyone out.
pub async fn end_revoked_sessions(gw: &Gateway) -> usize {
    let now = gw.clock.now();
    let open = match gw.store.open_session_certificates(now).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open sessions' certificates");
            return 0;
        }
    };
    let validator = gw.validator.load_full();
    let mut ended = 0;
    for (token_hash, der) in open {
        let Err(refusal) = validator.validate(&der, &[], hpki_profile::Purpose::Authentication, now) else { continue };
        if refusal.code() != "revoked" {
            continue;
        }
        let person = hpki_profile::read_holder(&der).ok().and_then(|h| h.person_id()).unwrap_or_else(|| "-".into());
        let object = format!("session:{}", &hex::encode(&token_hash)[..16]);
        let request_id = gw.request_id();
        let staged = crate::audit::outbox::Staging {
            request_id: request_id.clone(),
            terminal: "-".into(),
            institution: "-".into(),
            action: crate::audit::Action::SessionRevoked,
        }
        .stage(&person, object.as_str(), gw.clock.now_ms());
        match gw.store.end_session_staged(&token_hash, now, "certificate_revoked", Some(&staged)).await {
            Ok(true) => {
                ended += 1;
                tracing::warn!(person = %person, "session ended: its card certificate was revoked");
                let event = crate::audit::AuditEvent {
                    actor: person,
                    object,
                    reason: refusal.code().into(),
                    request_id,
                    ..crate::audit::AuditEvent::new(crate::audit::Action::SessionRevoked, crate::audit::Outcome::Ok)
                };
                let _ = crate::routes::record(&gw.audit, &gw.metrics, event, gw.clock.now_ms()).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot end a revoked card's session"),
        }
    }
    ended
}
