//! The reports IT staff and auditors read: the monthly review of access
//! and operations (LOG-3, with maintenance work per day for AUTH-9) and the
//! security-relevant configuration and its state for the yearly
//! self-inspection (LOG-7). Both are built from the audit log, the store
//! and the files the configuration names; neither changes anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::store::{Store, StoreError, TerminalCertRow};

/// Months begin at midnight in Japan (UTC+9).
pub const REPORT_UTC_OFFSET_SECONDS: i64 = 9 * 3600;
/// Terminal certificates expiring within this many days are listed.
pub const NEAR_EXPIRY_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--month {0:?}: expected YYYY-MM")]
    Month(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A calendar month: its label and [from, to) in Unix ms.
#[derive(Debug, Clone, Serialize)]
pub struct Month {
    pub label: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Month {
    pub fn parse(text: &str) -> Result<Month, ReportError> {
        let bad = || ReportError::Month(text.into());
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        let (y, m): (i32, u8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if text.len() != 7 || !(1970..=9999).contains(&y) {
            return Err(bad());
        }
        let month = time::Month::try_from(m).map_err(|_| bad())?;
        let start = time::Date::from_calendar_date(y, month, 1).map_err(|_| bad())?;
        let next = if month == time::Month::December {
            time::Date::from_calendar_date(y + 1, time::Month::January, 1)
        } else {
            time::Date::from_calendar_date(y, month.next(), 1)
        }
        .map_err(|_| bad())?;
        let ms = |d: time::Date| (d.midnight().assume_utc().unix_timestamp() - REPORT_UTC_OFFSET_SECONDS) * 1000;
        Ok(Month { label: text.into(), from_ms: ms(start), to_ms: ms(next) })
    }
}

/// The label (`YYYY-MM`) of the month, Japan time, that `ms` falls in.
pub fn month_of(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000) + REPORT_UTC_OFFSET_SECONDS)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub outcome: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceDay {
    pub day: String,
    pub operator: String,
    pub actions: u64,
    pub refused: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrlState {
    pub file: String,
    pub issuer: String,
    pub this_update: String,
    pub next_update: Option<String>,
    pub fresh: bool,
    pub error: Option<String>,
}

/// One break-glass access for the auditor (FLOW-7): every access started
/// in the month and every earlier one not reviewed yet.
#[derive(Debug, Clone, Serialize)]
pub struct BreakGlassReview {
    pub id: String,
    pub person: String,
    pub terminal: String,
    pub patient: String,
    pub reason: String,
    pub detail: String,
    pub started_at: String,
    /// When it stopped being usable, and how (`ended`, `expired`,
    /// `revoked`); `None` while in force.
    pub over_at: Option<String>,
    pub end: Option<String>,
    /// Reads of the patient's records under it (`break_glass.read`, ok).
    pub reads: u64,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
    pub review_note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Monthly {
    pub month: Month,
    pub generated_at: String,
    pub audit_entries: u64,
    pub logins_ok: u64,
    pub logins_refused: u64,
    pub logins_by_institution: Vec<Count>,
    pub logins_by_person: Vec<Count>,
    /// Successful logins per day (local date).
    pub logins_by_day: Vec<Count>,
    pub refusals_by_reason: Vec<Count>,
    pub admin_actions: Vec<Line>,
    /// Maintenance and IT work per operator and day (AUTH-9).
    pub maintenance_by_day: Vec<MaintenanceDay>,
    pub alerts: Vec<Line>,
    /// Break-glass accesses to review (FLOW-7).
    pub break_glass_review: Vec<BreakGlassReview>,
    pub terminals_near_expiry: Vec<TerminalCertRow>,
    pub crls: Vec<CrlState>,
}

fn rfc3339_ms(ms: i64) -> String {
    hpki_profile::validate::rfc3339(ms.div_euclid(1000))
}

fn local_day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000) + REPORT_UTC_OFFSET_SECONDS)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn counts(map: BTreeMap<String, u64>) -> Vec<Count> {
    let mut v: Vec<Count> = map.into_iter().map(|(key, count)| Count { key, count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v
}

/// The state of every CRL the configuration names, at `now` (Unix s).
pub fn crl_states(config: &Config, now: i64) -> Vec<CrlState> {
    let files = config.listener.terminal_crls.iter().chain(config.hpki.crls.iter());
    files
        .map(|f| {
            let path = config.path(f);
            let file = path.display().to_string();
            let parsed = crate::credentials::crl(&path).map_err(|e| e.to_string()).and_then(|der| {
                let (_, crl) = x509_parser::parse_x509_crl(der.as_ref()).map_err(|e| e.to_string())?;
                Ok((crl.issuer().to_string(), crl.last_update().timestamp(), crl.next_update().map(|t| t.timestamp())))
            });
            match parsed {
                Ok((issuer, this, next)) => CrlState {
                    file,
                    issuer,
                    this_update: hpki_profile::validate::rfc3339(this),
                    next_update: next.map(hpki_profile::validate::rfc3339),
                    fresh: next.is_some_and(|n| n > now),
                    error: None,
                },
                Err(e) => CrlState {
                    file,
                    issuer: "-".into(),
                    this_update: "-".into(),
                    next_update: None,
                    fresh: false,
                    error: Some(e),
                },
            }
        })
        .collect()
}

pub async fn monthly(store: &Store, config: &Config, month: Month, now_ms: i64) -> Result<Monthly, ReportError> {
    let entries = store.audit_between(month.from_ms, month.to_ms).await?;
    let (mut by_inst, mut by_person, mut by_day, mut by_reason) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut maintenance: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let (mut ok, mut refused) = (0, 0);
    let (mut admin, mut alerts) = (Vec::new(), Vec::new());
    for r in &entries {
        let e = &r.event;
        let line = || Line {
            at: rfc3339_ms(r.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            object: e.object.clone(),
            outcome: e.outcome.clone(),
            reason: e.reason.clone(),
        };
        if e.action == "auth.login" {
            if e.outcome == "ok" {
                ok += 1;
                *by_inst.entry(e.institution.clone()).or_insert(0) += 1;
                *by_person.entry(e.actor.clone()).or_insert(0) += 1;
                *by_day.entry(local_day(r.at)).or_insert(0) += 1;
            } else {
                refused += 1;
            }
        }
        if e.outcome == "refused" {
            *by_reason.entry(format!("{} ({})", e.reason, e.action)).or_insert(0) += 1;
        }
        if let Some(operator) = e.actor.strip_prefix("admin:") {
            admin.push(line());
            let m = maintenance.entry((local_day(r.at), operator.to_owned())).or_insert((0, 0));
            m.0 += 1;
            if e.outcome == "refused" {
                m.1 += 1;
            }
        }
        if e.actor == "system:alerts" {
            alerts.push(line());
        }
    }
    let break_glass_review = break_glass_review(store, &month, now_ms).await?;
    let limit = (month.to_ms.max(now_ms)) / 1000 + NEAR_EXPIRY_DAYS * 86_400;
    let terminals_near_expiry = store.terminal_certs().await?.into_iter().filter(|t| t.not_after <= limit).collect();
    Ok(Monthly {
        generated_at: rfc3339_ms(now_ms),
        audit_entries: entries.len() as u64,
        logins_ok: ok,
        logins_refused: refused,
        logins_by_institution: counts(by_inst),
        logins_by_person: counts(by_person),
        logins_by_day: by_day.into_iter().map(|(key, count)| Count { key, count }).collect(),
        refusals_by_reason: counts(by_reason),
        admin_actions: admin,
        maintenance_by_day: maintenance
            .into_iter()
            .map(|((day, operator), (actions, refused))| MaintenanceDay { day, operator, actions, refused })
            .collect(),
        alerts,
        break_glass_review,
        terminals_near_expiry,
        crls: crl_states(config, now_ms / 1000),
        month,
    })
}

async fn break_glass_review(store: &Store, month: &Month, now_ms: i64) -> Result<Vec<BreakGlassReview>, ReportError> {
    let now = now_ms.div_euclid(1000);
    let mut out = Vec::new();
    for a in store.break_glass_for_review(month.from_ms.div_euclid(1000), month.to_ms.div_euclid(1000)).await? {
        let over = a.over_at(now);
        let reads = store.break_glass_reads(&a).await?;
        let end = match (over, a.end_reason.as_deref()) {
            (None, _) => None,
            (Some(_), Some(how)) => Some(how.to_owned()),
            (Some(_), None) => Some("expired".to_owned()),
        };
        out.push(BreakGlassReview {
            id: a.id,
            person: a.person,
            terminal: a.terminal,
            patient: a.patient_id,
            reason: a.reason.as_str().into(),
            detail: a.detail,
            started_at: hpki_profile::validate::rfc3339(a.started_at),
            over_at: over.map(hpki_profile::validate::rfc3339),
            end,
            reads,
            reviewed_by: a.reviewed_by,
            reviewed_at: a.reviewed_at.map(hpki_profile::validate::rfc3339),
            review_note: a.review_note,
        });
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A horizontal bar chart as inline SVG.
fn bars(title: &str, rows: &[Count]) -> String {
    if rows.is_empty() {
        return format!("<h3>{}</h3><p>none</p>", esc(title));
    }
    let max = rows.iter().map(|r| r.count).max().unwrap_or(1).max(1) as f64;
    let h = 22 * rows.len() + 10;
    let mut s = format!(
        "<h3>{}</h3><svg role=\"img\" aria-label=\"{}\" width=\"720\" height=\"{h}\" viewBox=\"0 0 720 {h}\">",
        esc(title),
        esc(title)
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 5 + i * 22;
        let w = (r.count as f64 / max * 380.0).max(1.0);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"260\" y=\"{y}\" width=\"{w:.0}\" height=\"16\" fill=\"#3b6ea5\"/>\
             <text x=\"{:.0}\" y=\"{}\" font-size=\"12\">{}</text>",
            y + 13,
            esc(&r.key),
            265.0 + w,
            y + 13,
            r.count
        );
    }
    s + "</svg>"
}

fn table(head: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return "<p>none</p>".into();
    }
    let mut s = String::from("<table><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", esc(&c));
        }
        s.push_str("</tr>");
    }
    s + "</table>"
}

/// The monthly report as one self-contained HTML page (no external assets).
pub fn monthly_html(m: &Monthly) -> String {
    let mut s = format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>Monthly access review {0}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #999;padding:2px 6px;font-size:13px}}.bad{{color:#a00}}</style></head><body>\
         <h1>Monthly access review {0}</h1><p>Generated {1}. {2} audit entries; {3} logins, {4} refused.</p>",
        esc(&m.month.label),
        esc(&m.generated_at),
        m.audit_entries,
        m.logins_ok,
        m.logins_refused
    );
    s += &bars("Logins per day", &m.logins_by_day);
    s += &bars("Logins per institution", &m.logins_by_institution);
    s += &bars("Logins per person", &m.logins_by_person);
    s += &bars("Refusals by reason", &m.refusals_by_reason);
    s += "<h2>Alerts (abnormal access)</h2>";
    s += &table(
        &["time", "rule / person", "terminal or detail"],
        m.alerts.iter().map(|l| vec![l.at.clone(), format!("{} {}", l.action, l.object), l.reason.clone()]).collect(),
    );
    s += "<h2>Break-glass review</h2>";
    let pending = m.break_glass_review.iter().filter(|b| b.reviewed_at.is_none()).count();
    s += &format!(
        "<p>{pending} awaiting review (<code>hpki-gateway admin break-glass review --id … --operator …</code>).</p>"
    );
    s += &table(
        &["access", "person", "patient", "reason", "started", "over", "reads", "review"],
        m.break_glass_review
            .iter()
            .map(|b| {
                vec![
                    format!("{} ({})", b.id, b.terminal),
                    b.person.clone(),
                    b.patient.clone(),
                    format!("{}: {}", b.reason, b.detail),
                    b.started_at.clone(),
                    match (&b.over_at, &b.end) {
                        (Some(at), Some(how)) => format!("{how} {at}"),
                        _ => "in force".into(),
                    },
                    b.reads.to_string(),
                    match (&b.reviewed_by, &b.reviewed_at) {
                        (Some(by), Some(at)) => {
                            format!("{by} {at}: {}", b.review_note.as_deref().unwrap_or("-"))
                        }
                        _ => "NOT REVIEWED".into(),
                    },
                ]
            })
            .collect(),
    );
    s += "<h2>Administration and maintenance per day</h2>";
    s += &table(
        &["day", "operator", "actions", "refused"],
        m.maintenance_by_day
            .iter()
            .map(|d| vec![d.day.clone(), d.operator.clone(), d.actions.to_string(), d.refused.to_string()])
            .collect(),
    );
    s += "<h2>Administrative actions</h2>";
    s += &table(
        &["time", "operator", "action", "object", "outcome"],
        m.admin_actions
            .iter()
            .map(|l| {
                vec![
                    l.at.clone(),
                    l.actor.clone(),
                    l.action.clone(),
                    l.object.clone(),
                    format!("{} {}", l.outcome, l.reason),
                ]
            })
            .collect(),
    );
    s += &format!("<h2>Terminal certificates expiring within {NEAR_EXPIRY_DAYS} days</h2>");
    s += &table(
        &["institution", "terminal", "serial", "not after"],
        m.terminals_near_expiry
            .iter()
            .map(|t| {
                vec![
                    t.institution.clone(),
                    t.name.clone(),
                    t.serial.clone(),
                    hpki_profile::validate::rfc3339(t.not_after),
                ]
            })
            .collect(),
    );
    s += "<h2>CRLs</h2>";
    s += &table(
        &["file", "issuer", "thisUpdate", "nextUpdate", "state"],
        m.crls
            .iter()
            .map(|c| {
                vec![
                    c.file.clone(),
                    c.issuer.clone(),
                    c.this_update.clone(),
                    c.next_update.clone().unwrap_or_else(|| "-".into()),
                    c.error.clone().unwrap_or_else(|| if c.fresh { "fresh".into() } else { "STALE".into() }),
                ]
            })
            .collect(),
    );
    s + "</body></html>\n"
}

#[derive(Debug, Clone, Serialize)]
pub struct CertState {
    pub file: String,
    pub subject: String,
    pub not_after: String,
    pub days_left: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub generated_at: String,
    pub gateway_id: String,
    pub store: String,
    pub institution_listener: serde_json::Value,
    pub patient_listener: Option<serde_json::Value>,
    pub ops_address: String,
    pub sessions: serde_json::Value,
    pub hpki_anchors: Vec<CertState>,
    pub hpki_intermediates: Vec<CertState>,
    pub terminal_cas: Vec<CertState>,
    pub crls: Vec<CrlState>,
    pub accept_test_policies: bool,
    pub alerts: serde_json::Value,
    pub record_keys: serde_json::Value,
    pub retention: serde_json::Value,
    /// What the self-inspection should look at first.
    pub findings: Vec<String>,
}

fn cert_states(config: &Config, files: &[std::path::PathBuf], now: i64, findings: &mut Vec<String>) -> Vec<CertState> {
    let mut out = Vec::new();
    for f in files {
        let path = config.path(f);
        match crate::credentials::certificates(&path) {
            Ok(certs) => {
                for c in certs {
                    if let Ok(h) = hpki_profile::read_holder(c.as_ref()) {
                        let days_left = (h.not_after - now).div_euclid(86_400);
                        if days_left < 90 {
                            findings.push(format!("{} expires in {days_left} days ({})", h.subject, path.display()));
                        }
                        out.push(CertState {
                            file: path.display().to_string(),
                            subject: h.subject,
                            not_after: hpki_profile::validate::rfc3339(h.not_after),
                            days_left,
                        });
                    }
                }
            }
            Err(e) => findings.push(format!("cannot read {}: {e}", path.display())),
        }
    }
    out
}

pub async fn config_report(store: &Store, config: &Config, now_ms: i64) -> Result<ConfigReport, ReportError> {
    let now = now_ms / 1000;
    let mut findings = Vec::new();
    let l = &config.listener;
    let hpki_anchors = cert_states(config, &config.hpki.anchors, now, &mut findings);
    let hpki_intermediates = cert_states(config, &config.hpki.intermediates, now, &mut findings);
    let terminal_cas = cert_states(config, &l.terminal_ca, now, &mut findings);
    let crls = crl_states(config, now);
    for c in crls.iter().filter(|c| !c.fresh) {
        findings.push(format!(
            "CRL {} is not fresh: {}",
            c.file,
            c.error.clone().unwrap_or_else(|| "past nextUpdate".into())
        ));
    }
    if config.hpki.accept_test_policies {
        findings.push("hpki.accept_test_policies is on: test cards are accepted (never in production)".into());
    }
    if l.allow.iter().any(|n| n.prefix_len() == 0) {
        findings.push("listener.allow contains a /0 network: every source may connect".into());
    }
    let alerts = match &config.alerts {
        None => {
            findings.push("no abnormal-access rules ([alerts]) are configured".into());
            serde_json::Value::Null
        }
        Some(a) => serde_json::json!({
            "webhook": a.webhook,
            "refused_logins": a.refused_logins.as_ref().map(|r| serde_json::json!({"max": r.max, "window_seconds": r.window_seconds, "suspend_terminal": r.suspend_terminal})),
            "institution_hopping": a.institution_hopping.as_ref().map(|r| serde_json::json!({"window_seconds": r.window_seconds, "suspend_person": r.suspend_person})),
            "opening_hours": a.opening_hours.as_ref().map(|r| serde_json::json!({"open": r.open, "close": r.close, "utc_offset_minutes": r.utc_offset_minutes, "suspend_person": r.suspend_person})),
        }),
    };
    let key_file = config.path(&config.records.key_file);
    let record_keys = key_file_state(&key_file, &mut findings);
    let (entries, oldest) = match store.audit_page(0, 1).await?.first() {
        Some(first) => (store.last_audit_seq().await?, Some(rfc3339_ms(first.at))),
        None => (0, None),
    };
    Ok(ConfigReport {
        generated_at: rfc3339_ms(now_ms),
        gateway_id: config.gateway_id.clone(),
        store: match &config.store.postgres_url {
            Some(_) => "postgresql (backups: pg_basebackup + WAL archiving)".into(),
            None => format!("sqlite in {}", config.path(&config.store.sqlite_dir).display()),
        },
        institution_listener: serde_json::json!({
            "address": l.address.to_string(),
            "tls": "TLS 1.3 only (rustls, ring); client certificate required; CRLs enforced, expired CRLs fail closed",
            "allow": l.allow.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            "handshake_timeout_seconds": l.handshake_timeout_seconds,
            "idle_timeout_seconds": l.idle_timeout_seconds,
            "max_connections": l.max_connections,
            "max_body_bytes": l.max_body_bytes,
            "requests_per_second_per_terminal": l.requests_per_second_per_terminal,
        }),
        patient_listener: config.patients.as_ref().map(|p| {
            serde_json::json!({
                "address": p.address.to_string(),
                "tls": "TLS 1.3 only, no client certificate; ID and password (argon2id)",
                "session_idle_seconds": p.session_idle_seconds,
                "session_max_seconds": p.session_max_seconds,
                "max_failed_logins": p.max_failed_logins,
                "lockout_seconds": p.lockout_seconds,
            })
        }),
        ops_address: config.ops.address.to_string(),
        sessions: serde_json::json!({
            "idle_timeout_seconds": config.sessions.idle_timeout_seconds,
            "max_lifetime_seconds": config.sessions.max_lifetime_seconds,
            "challenge_lifetime_seconds": config.sessions.challenge_lifetime_seconds,
            "encounter_max_seconds": config.records.encounter_max_seconds,
        }),
        hpki_anchors,
        hpki_intermediates,
        terminal_cas,
        crls,
        accept_test_policies: config.hpki.accept_test_policies,
        alerts,
        record_keys,
        retention: serde_json::json!({
            "audit_log": "append-only, hash-chained, kept without end (no deletion path)",
            "audit_entries": entries,
            "oldest_entry": oldest,
        }),
        findings,
    })
}

/// Mode and key ids of the record key file (never the keys), read as the
/// gateway reads it: a file it would refuse is a finding.
fn key_file_state(path: &Path, findings: &mut Vec<String>) -> serde_json::Value {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map(|m| format!("{:o}", m.permissions().mode() & 0o777)).ok();
    match crate::domain::keyring::Keyring::load(path) {
        Ok(k) => serde_json::json!({
            "file": path.display().to_string(), "mode": mode, "current": k.current(), "key_ids": k.ids(),
        }),
        Err(e) => {
            findings.push(format!("record key file: {e}"));
            serde_json::json!({"file": path.display().to_string(), "mode": mode, "error": e.to_string()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_of_japan_time_holds_its_instants() {
        // 2025-12-01 00:00 JST and the millisecond before it.
        for ms in [0, 1_764_514_800_000, 1_764_514_799_999, 1_796_000_000_000] {
            let m = Month::parse(&month_of(ms)).expect("a month");
            assert!(m.from_ms <= ms && ms < m.to_ms, "{ms} not in {m:?}");
        }
        assert_eq!(month_of(1_764_514_800_000), "2025-12");
        assert_eq!(month_of(1_764_514_799_999), "2025-11");
    }
}
