//! What `/metrics` shows, in the Prometheus/OpenMetrics text format
//! (prometheus-client): the documented counters under their names, and
//! latency and batch histograms — requests by action, refusals by code, TLS
//! handshakes, audit and session-lookup batches (size and time).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Seconds, from 50 µs to about 26 s.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// Batch sizes 1, 2, 4 … 512.
fn sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    /// The audit action of the request (`auth.login`, `draft.confirm`, …).
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    /// `normal`, `read-only` or `blocked` (FLOW-7).
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The refusal code (`hpki_protocol::ErrorCode`).
    pub code: &'static str,
}

/// Size and duration of each batch a grouped store task ran, and how long
/// each job waited for its batch to start (the request's wait for the
/// store: the grouped tasks are how requests reach it on the hot path).
#[derive(Clone)]
pub struct BatchMetrics {
    pub size: Histogram,
    pub seconds: Histogram,
    pub wait: Histogram,
}

impl Default for BatchMetrics {
    fn default() -> Self {
        BatchMetrics::new()
    }
}

impl BatchMetrics {
    /// Histograms of their own (registered by `Metrics::new`).
    pub fn new() -> BatchMetrics {
        BatchMetrics { size: sizes(), seconds: seconds(), wait: seconds() }
    }

    pub fn observe(&self, size: usize, took: Duration) {
        self.size.observe(size as f64);
        self.seconds.observe(took.as_secs_f64());
    }
}

pub struct Metrics {
    registry: Registry,
    pub connections_accepted: Counter,
    pub connections_refused_source: Counter,
    pub connections_refused_limit: Counter,
    pub handshakes_failed: Counter,
    pub handshake_timeouts: Counter,
    pub requests: Counter,
    pub requests_refused: Counter,
    pub logins_ok: Counter,
    pub logins_refused: Counter,
    pub rate_limited: Counter,
    pub bodies_too_large: Counter,
    pub reloads: Counter,
    pub reload_failures: Counter,
    pub alerts_refused_logins: Counter,
    pub alerts_institution_hopping: Counter,
    pub alerts_outside_hours: Counter,
    pub alerts_break_glass: Counter,
    pub alert_webhook_failures: Counter,
    /// 1 for the operating mode in force at the last scrape, 0 for the others.
    pub operating_mode: Family<ModeLabel, prometheus_client::metrics::gauge::Gauge>,
    pub audit_failures: Counter,
    /// Staged audit entries (`audit::outbox`) older than a minute at the
    /// last look: changes whose entries could not be written, waiting for
    /// the next start. Should be 0.
    pub audit_outbox_stale: prometheus_client::metrics::gauge::Gauge,
    /// Refusals counted into a `coalesced:N` entry instead of one each.
    pub audit_refusals_coalesced: Counter,
    pub bodies_timed_out: Counter,
    pub patient_connections_refused: Counter,
    pub patient_logins_throttled: Counter,
    pub password_checks_busy: Counter,
    /// Time from a request's arrival to its answer, by action.
    pub request_seconds: Family<ActionLabel, Histogram, fn() -> Histogram>,
    /// Refused requests by refusal code.
    pub refusals: Family<CodeLabel, Counter>,
    /// Successful TLS handshakes of the institution listener.
    pub handshake_seconds: Histogram,
    pub audit_batches: BatchMetrics,
    pub session_batches: BatchMetrics,
    pub admission_batches: BatchMetrics,
    pub login_batches: BatchMetrics,
    /// SQLite: the writer lane's groups (jobs committed together).
    pub write_groups: BatchMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            // prometheus-client adds the `_total` of a counter's name.
            registry.register(name, help, c.clone());
            c
        };
        let connections_accepted = counter("hpki_connections_accepted", "TLS connections accepted");
        let connections_refused_source =
            counter("hpki_connections_refused_source", "connections refused before TLS: source not allowed");
        let connections_refused_limit =
            counter("hpki_connections_refused_limit", "connections refused: maximum reached");
        let handshakes_failed = counter("hpki_handshakes_failed", "TLS handshakes refused or failed");
        let handshake_timeouts = counter("hpki_handshake_timeouts", "TLS handshakes that timed out");
        let requests = counter("hpki_requests", "requests served");
        let requests_refused = counter("hpki_requests_refused", "requests refused");
        let logins_ok = counter("hpki_logins", "successful logins");
        let logins_refused = counter("hpki_logins_refused", "refused logins");
        let rate_limited = counter("hpki_rate_limited", "requests over the per-terminal rate");
        let bodies_too_large = counter("hpki_bodies_too_large", "requests over the body size limit");
        let reloads = counter("hpki_reloads", "certificate and CRL reloads");
        let reload_failures = counter("hpki_reload_failures", "reloads refused (old files kept)");
        let alerts_refused_logins =
            counter("hpki_alerts_refused_logins", "alerts: repeated refused logins from one terminal");
        let alerts_institution_hopping =
            counter("hpki_alerts_institution_hopping", "alerts: one card at two institutions within the window");
        let alerts_outside_hours = counter("hpki_alerts_outside_hours", "alerts: logins outside opening hours");
        let alerts_break_glass = counter("hpki_alerts_break_glass", "alerts: break-glass accesses started");
        let alert_webhook_failures =
            counter("hpki_alert_webhook_failures", "alert webhooks that could not be delivered");
        let audit_refusals_coalesced =
            counter("hpki_audit_refusals_coalesced", "refusals past the audit budget, counted into coalesced entries");
        let bodies_timed_out = counter("hpki_bodies_timed_out", "request bodies that did not arrive in time");
        let patient_connections_refused =
            counter("hpki_patient_connections_refused", "patient connections refused: a limit reached");
        let patient_logins_throttled =
            counter("hpki_patient_logins_throttled", "patient sign-ins over the per-source or per-ID rate");
        let password_checks_busy =
            counter("hpki_password_checks_busy", "password checks turned away: the pool's queue was full");
        let audit_failures = counter(
            "hpki_audit_failures",
            "audit entries that could not be written (their requests were answered 503)",
        );
        let audit_outbox_stale = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "hpki_audit_outbox_stale",
            "staged audit entries older than a minute: changes whose entries are not written yet (should be 0)",
            audit_outbox_stale.clone(),
        );
        let operating_mode = Family::<ModeLabel, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "hpki_operating_mode",
            "the operating mode in force (1) and the others (0): normal, read-only, blocked",
            operating_mode.clone(),
        );
        let request_seconds = Family::<ActionLabel, Histogram, fn() -> Histogram>::new_with_constructor(seconds);
        registry.register(
            "hpki_request_duration_seconds",
            "time from request to answer, by action",
            request_seconds.clone(),
        );
        let refusals = Family::<CodeLabel, Counter>::default();
        registry.register("hpki_refusals", "refused requests by refusal code", refusals.clone());
        let handshake_seconds = seconds();
        registry.register(
            "hpki_tls_handshake_duration_seconds",
            "successful TLS handshakes",
            handshake_seconds.clone(),
        );
        // Each grouped store task: (its histograms' names, what they count).
        let mut batches = |size: (&str, &str), seconds: (&str, &str), wait: (&str, &str)| {
            let b = BatchMetrics::new();
            registry.register(size.0, size.1, b.size.clone());
            registry.register(seconds.0, seconds.1, b.seconds.clone());
            registry.register(wait.0, wait.1, b.wait.clone());
            b
        };
        let audit_batches = batches(
            ("hpki_audit_batch_size", "audit entries committed per batch"),
            ("hpki_audit_batch_commit_seconds", "time to commit one audit batch"),
            ("hpki_store_wait_audit_seconds", "time an audit entry waited for its commit to start"),
        );
        let session_batches = batches(
            ("hpki_session_batch_size", "session lookups per grouped query"),
            ("hpki_session_batch_seconds", "time of one grouped session lookup"),
            ("hpki_store_wait_session_seconds", "time a session lookup waited for its query to start"),
        );
        let admission_batches = batches(
            ("hpki_admission_batch_size", "requests per read of the store's generation and suspended terminals"),
            ("hpki_admission_batch_seconds", "time of one read of the store's generation"),
            ("hpki_store_wait_admission_seconds", "time a request waited for its generation read to start"),
        );
        let login_batches = batches(
            ("hpki_login_batch_size", "login writes per transaction"),
            ("hpki_login_batch_seconds", "time of one login-write transaction"),
            ("hpki_store_wait_login_seconds", "time a login write waited for its transaction to start"),
        );
        let write_groups = batches(
            ("hpki_store_write_group_size", "SQLite: jobs (audit batches, login batches) committed in one transaction"),
            ("hpki_store_write_group_seconds", "SQLite: time of one writer transaction, commit included"),
            ("hpki_store_wait_write_seconds", "SQLite: time a job waited for the writer to take it up"),
        );
        Metrics {
            registry,
            connections_accepted,
            connections_refused_source,
            connections_refused_limit,
            handshakes_failed,
            handshake_timeouts,
            requests,
            requests_refused,
            logins_ok,
            logins_refused,
            rate_limited,
            bodies_too_large,
            reloads,
            reload_failures,
            alerts_refused_logins,
            alerts_institution_hopping,
            alerts_outside_hours,
            alerts_break_glass,
            alert_webhook_failures,
            operating_mode,
            audit_failures,
            audit_outbox_stale,
            audit_refusals_coalesced,
            bodies_timed_out,
            patient_connections_refused,
            patient_logins_throttled,
            password_checks_busy,
            request_seconds,
            refusals,
            handshake_seconds,
            audit_batches,
            session_batches,
            admission_batches,
            login_batches,
            write_groups,
        }
    }

    pub fn inc(counter: &Counter) {
        counter.inc();
    }

    /// A refused request, counted by its code.
    pub fn refused(&self, code: &'static str) {
        self.requests_refused.inc();
        self.refusals.get_or_create(&CodeLabel { code }).inc();
    }

    /// The operating mode in force: its gauge 1, the others 0.
    pub fn set_mode(&self, mode: hpki_protocol::emergency::OperatingMode) {
        for m in hpki_protocol::emergency::OperatingMode::ALL {
            self.operating_mode.get_or_create(&ModeLabel { mode: m.as_str() }).set(i64::from(m == mode));
        }
    }

    /// How long a request took, by action.
    pub fn answered(&self, action: &'static str, took: Duration) {
        self.request_seconds.get_or_create(&ActionLabel { action }).observe(took.as_secs_f64());
    }

    /// The text for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode the metrics");
        }
        out
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
