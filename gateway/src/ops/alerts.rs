//! Abnormal access (LOG-4): rules over what the audit log records, each
//! raising an alert (log line, metric, audit entry, optional webhook) and,
//! where configured, cutting the offender off at once: the terminal is
//! suspended (every further request refused) or the person deactivated
//! (their sessions end). IT staff lift either with `hpki-gateway admin`.
//!
//! The rules read the shared audit log, not process memory, so they hold
//! across restarts and across several gateways on one PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::audit::{Action, AuditEvent, Outcome};
use crate::config::AlertsSection;
use crate::gateway::{ConnInfo, Gateway};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    RefusedLogins,
    InstitutionHopping,
    OutsideHours,
    /// A break-glass access started (FLOW-7): always raised, whatever
    /// `[alerts]` configures.
    BreakGlass,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::RefusedLogins => "refused_logins",
            Rule::InstitutionHopping => "institution_hopping",
            Rule::OutsideHours => "outside_hours",
            Rule::BreakGlass => "break_glass",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CutOff {
    /// `institution/name`, as the audit log names terminals.
    Terminal {
        terminal: String,
    },
    Person {
        person: String,
    },
}

/// What a rule found: the rule, what was seen, and whom to cut off.
type Finding = (Rule, String, Option<CutOff>);

/// One alert, as the webhook receives it.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub rule: Rule,
    pub at_ms: i64,
    pub terminal: String,
    pub person: String,
    pub detail: String,
    pub cut_off: Option<CutOff>,
}

/// Looks at one answered login; raises what the rules find. Runs after the
/// login's own audit entry is durable, so the rules see it.
pub async fn observe(gw: &Arc<Gateway>, conn: &ConnInfo, refused: bool, actor: &str) {
    let Some(rules) = &gw.config.alerts else { return };
    let now = gw.clock.now_ms();
    let terminal = conn.terminal.key().to_owned();
    let found = if refused {
        refused_logins(gw, rules, &terminal, now).await
    } else {
        let mut found = hopping(gw, rules, actor, &conn.terminal.institution, now).await;
        if found.is_none() {
            found = outside_hours(rules, actor, now);
        }
        found
    };
    let Some((rule, detail, cut_off)) = found else { return };
    raise(gw, Alert { rule, at_ms: now, terminal, person: actor.to_owned(), detail, cut_off }).await;
}

async fn refused_logins(gw: &Gateway, rules: &AlertsSection, terminal: &str, now: i64) -> Option<Finding> {
    let r = rules.refused_logins.as_ref()?;
    let since = now - r.window_seconds * 1000;
    let counted = async {
        let n = gw.store.refused_logins_since(terminal, since).await?;
        // At or past the threshold — refusals answered together can step
        // over it — and once per window, not once per further attempt.
        let due =
            n >= i64::from(r.max) && !gw.store.alert_raised_since(terminal, Rule::RefusedLogins.name(), since).await?;
        Ok::<_, crate::store::StoreError>((n, due))
    };
    let (n, due) = match counted.await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "abnormal-access rule refused_logins could not read the audit log");
            return None;
        }
    };
    due.then(|| {
        (
            Rule::RefusedLogins,
            format!("{n} refused logins within {} s", r.window_seconds),
            r.suspend_terminal.then(|| CutOff::Terminal { terminal: terminal.to_owned() }),
        )
    })
}

async fn hopping(gw: &Gateway, rules: &AlertsSection, person: &str, institution: &str, now: i64) -> Option<Finding> {
    let r = rules.institution_hopping.as_ref()?;
    match gw.store.login_elsewhere_since(person, institution, now - r.window_seconds * 1000).await {
        Ok(Some(other)) => Some((
            Rule::InstitutionHopping,
            format!("card used at {other:?} and {institution:?} within {} s", r.window_seconds),
            r.suspend_person.then(|| CutOff::Person { person: person.to_owned() }),
        )),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "abnormal-access rule institution_hopping could not read the audit log");
            None
        }
    }
}

fn outside_hours(rules: &AlertsSection, person: &str, now_ms: i64) -> Option<Finding> {
    let r = rules.opening_hours.as_ref()?;
    let local = now_ms.div_euclid(1000) + i64::from(r.utc_offset_minutes) * 60;
    let minute = local.rem_euclid(86_400) / 60;
    let (open, close) = (i64::from(r.open_minute()), i64::from(r.close_minute()));
    let inside = if open <= close { (open..close).contains(&minute) } else { minute >= open || minute < close };
    (!inside).then(|| {
        (
            Rule::OutsideHours,
            format!("login at {:02}:{:02} local time, outside {}–{}", minute / 60, minute % 60, r.open, r.close),
            r.suspend_person.then(|| CutOff::Person { person: person.to_owned() }),
        )
    })
}

/// A break-glass access started: `object` names it and its patient.
pub async fn break_glass_started(gw: &Arc<Gateway>, conn: &ConnInfo, person: &str, object: &str) {
    let alert = Alert {
        rule: Rule::BreakGlass,
        at_ms: gw.clock.now_ms(),
        terminal: conn.terminal.key().to_owned(),
        person: person.to_owned(),
        detail: format!("break-glass access started: {object}"),
        cut_off: None,
    };
    raise(gw, alert).await;
}

/// Logs, counts, cuts off, audits and (in the background) posts the alert.
pub async fn raise(gw: &Arc<Gateway>, alert: Alert) {
    let counter = match alert.rule {
        Rule::RefusedLogins => &gw.metrics.alerts_refused_logins,
        Rule::InstitutionHopping => &gw.metrics.alerts_institution_hopping,
        Rule::OutsideHours => &gw.metrics.alerts_outside_hours,
        Rule::BreakGlass => &gw.metrics.alerts_break_glass,
    };
    counter.inc();
    tracing::warn!(rule = alert.rule.name(), terminal = %alert.terminal, person = %alert.person, detail = %alert.detail, cut_off = ?alert.cut_off, "ALERT: abnormal access");
    let now = alert.at_ms;
    let institution = alert.terminal.split_once('/').map_or(alert.terminal.as_str(), |(i, _)| i).to_owned();
    // The cut-off is a change: its entry is staged with it (`audit::outbox`).
    let request_id = gw.request_id();
    let stage = |action: Action, object: &str| {
        crate::audit::outbox::Staging {
            request_id: request_id.clone(),
            terminal: alert.terminal.clone(),
            institution: institution.clone(),
            action,
        }
        .stage("system:alerts", object, now)
    };
    let cut = match &alert.cut_off {
        None => None,
        Some(CutOff::Terminal { terminal }) => {
            let (institution, name) = terminal.split_once('/').unwrap_or((terminal.as_str(), ""));
            let reason = format!("alert {}: {}", alert.rule.name(), alert.detail);
            let staged = stage(Action::TerminalSuspend, terminal);
            Some((
                Action::TerminalSuspend,
                terminal.clone(),
                gw.store.set_terminal_suspended_staged(institution, name, true, &reason, now, Some(&staged)).await,
            ))
        }
        Some(CutOff::Person { person }) => {
            let staged = stage(Action::PersonDeactivate, person);
            Some((
                Action::PersonDeactivate,
                person.clone(),
                gw.store.set_person_active_staged(person, false, now, Some(&staged)).await,
            ))
        }
    };
    let mut events = vec![AuditEvent {
        actor: "system:alerts".into(),
        terminal: alert.terminal.clone(),
        institution: institution.clone(),
        object: format!("rule:{} person:{}", alert.rule.name(), alert.person),
        reason: alert.detail.clone(),
        request_id: request_id.clone(),
        ..AuditEvent::new(Action::AlertRaised, Outcome::Ok)
    }];
    if let Some((action, object, result)) = cut {
        events.push(AuditEvent {
            actor: "system:alerts".into(),
            terminal: alert.terminal.clone(),
            institution,
            object,
            reason: match &result {
                Ok(()) => format!("alert {}", alert.rule.name()),
                Err(e) => e.to_string(),
            },
            request_id: request_id.clone(),
            ..AuditEvent::new(action, Outcome::of(&result))
        });
    }
    for e in events {
        if let Err(err) = gw.audit.append(e, now).await {
            tracing::error!(error = %err, "cannot audit an alert");
        }
    }
    if let Some(url) = gw.config.alerts.as_ref().and_then(|a| a.webhook.clone()) {
        let gw = gw.clone();
        tokio::spawn(async move {
            if let Err(e) = post_webhook(&url, &alert).await {
                gw.metrics.alert_webhook_failures.inc();
                tracing::error!(error = %e, %url, "alert webhook failed");
            }
        });
    }
}

/// POSTs the alert as JSON to an `http://` URL (an alert relay on the
/// management network), within 5 seconds.
async fn post_webhook(url: &str, alert: &Alert) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let host = uri.host().ok_or("no host in the webhook URL")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let body = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::post(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("the webhook answered {}", resp.status()));
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(5), work).await.map_err(|_| "timed out".to_string())?
}
