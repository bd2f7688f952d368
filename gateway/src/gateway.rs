//! The gateway's shared state: configuration, store, clock, TLS and HPKI
//! validation (swappable on reload), metrics and rate limits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use hpki_profile::Validator;
use ring::rand::SystemRandom;
use rustls::ServerConfig;

use crate::audit::writer::AuditWriter;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::keyring::Keyring;

use crate::store::Store;
use crate::store::session_reader::SessionReader;

pub struct Gateway {
    pub config: Config,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub tls: ArcSwap<ServerConfig>,
    pub validator: ArcSwap<Validator>,
    /// Record keys; reloaded when the key file changes (rotation).
    keys: ArcSwap<Keyring>,
    pub metrics: Metrics,
    pub rng: SystemRandom,
    /// Group-committing audit writer for requests.
    pub audit: AuditWriter,
    /// Grouped session lookups for requests.
    pub sessions: SessionReader,
    /// Earliest nextUpdate (Unix s) of the CRLs in force, for readiness.
    pub crl_next_update: AtomicI64,
    rate: Mutex<HashMap<String, Bucket>>,
    /// When each terminal certificate (by serial) was last recorded.
    terminal_certs_noted: Mutex<HashMap<String, i64>>,
}

/// The terminal of a connection, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub institution: String,
    pub name: String,
}

impl Terminal {
    pub fn key(&self) -> String {
        format!("{}/{}", self.institution, self.name)
    }
}

/// What the listener knows of a connection.
/// The TLS channel binding a login signs (`docs/protocol.md`).
pub type ChannelBinding = [u8; hpki_protocol::CHANNEL_BINDING_LEN];

#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub terminal: Terminal,
    pub channel_binding: ChannelBinding,
}

/// Counters shown on /metrics (Prometheus text format).
#[derive(Default)]
pub struct Metrics {
    pub connections_accepted: AtomicU64,
    pub connections_refused_source: AtomicU64,
    pub connections_refused_limit: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub requests: AtomicU64,
    pub requests_refused: AtomicU64,
    pub logins_ok: AtomicU64,
    pub logins_refused: AtomicU64,
    pub rate_limited: AtomicU64,
    pub bodies_too_large: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub alerts_refused_logins: AtomicU64,
    pub alerts_institution_hopping: AtomicU64,
    pub alerts_outside_hours: AtomicU64,
    pub alert_webhook_failures: AtomicU64,
    pub audit_failures: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64); 18] = [
            ("hpki_connections_accepted_total", "TLS connections accepted", &self.connections_accepted),
            (
                "hpki_connections_refused_source_total",
                "connections refused before TLS: source not allowed",
                &self.connections_refused_source,
            ),
            (
                "hpki_connections_refused_limit_total",
                "connections refused: maximum reached",
                &self.connections_refused_limit,
            ),
            ("hpki_handshakes_failed_total", "TLS handshakes refused or failed", &self.handshakes_failed),
            ("hpki_handshake_timeouts_total", "TLS handshakes that timed out", &self.handshake_timeouts),
            ("hpki_requests_total", "requests served", &self.requests),
            ("hpki_requests_refused_total", "requests refused", &self.requests_refused),
            ("hpki_logins_total", "successful logins", &self.logins_ok),
            ("hpki_logins_refused_total", "refused logins", &self.logins_refused),
            ("hpki_rate_limited_total", "requests over the per-terminal rate", &self.rate_limited),
            ("hpki_bodies_too_large_total", "requests over the body size limit", &self.bodies_too_large),
            ("hpki_reloads_total", "certificate and CRL reloads", &self.reloads),
            ("hpki_reload_failures_total", "reloads refused (old files kept)", &self.reload_failures),
            (
                "hpki_alerts_refused_logins_total",
                "alerts: repeated refused logins from one terminal",
                &self.alerts_refused_logins,
            ),
            (
                "hpki_alerts_institution_hopping_total",
                "alerts: one card at two institutions within the window",
                &self.alerts_institution_hopping,
            ),
            ("hpki_alerts_outside_hours_total", "alerts: logins outside opening hours", &self.alerts_outside_hours),
            ("hpki_alert_webhook_failures_total", "alerts the webhook did not take", &self.alert_webhook_failures),
            (
                "hpki_audit_failures_total",
                "audit entries that could not be written (their requests were answered 503)",
                &self.audit_failures,
            ),
        ];
        let mut out = String::new();
        for (name, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

struct Bucket {
    tokens: f64,
    last_ms: i64,
}

impl Gateway {
    /// A random id for one request (logs, audit, `x-request-id`).
    pub fn request_id(&self) -> String {
        let mut b = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&self.rng, &mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub fn new(
        config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
        tls: Arc<ServerConfig>,
        validator: Arc<Validator>,
        keys: Arc<Keyring>,
    ) -> Gateway {
        // The same files the TLS and HPKI configuration were just built from;
        // unreadable now means not ready.
        let next =
            crate::credentials::earliest_crl_next_update(&config).map(|n| n.unwrap_or(i64::MAX)).unwrap_or(i64::MIN);
        // Starts the audit writer and the session reader: call inside a Tokio runtime.
        Gateway {
            crl_next_update: AtomicI64::new(next),
            audit: AuditWriter::start(store.clone()),
            sessions: SessionReader::start(store.clone(), config.sessions.idle_timeout_seconds),
            config,
            store,
            clock,
            tls: ArcSwap::new(tls),
            validator: ArcSwap::new(validator),
            keys: ArcSwap::new(keys),
            metrics: Metrics::default(),
            rng: SystemRandom::new(),
            rate: Mutex::new(HashMap::new()),
            terminal_certs_noted: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the terminal certificate `serial` is due to be recorded
    /// again (first sight, or an hour since); marks it recorded.
    pub fn terminal_cert_due(&self, serial: &str, now_ms: i64) -> bool {
        let Ok(mut seen) = self.terminal_certs_noted.lock() else { return false };
        match seen.get(serial) {
            Some(t) if now_ms - t < 3_600_000 => false,
            _ => {
                seen.insert(serial.to_owned(), now_ms);
                true
            }
        }
    }

    /// The record keys in force.
    pub fn keys(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.keys.load()
    }

    /// Re-reads the key file (after `admin rotate-key`); a broken file keeps
    /// the keys in force.
    pub fn reload_keys(&self) -> Result<(), crate::domain::keyring::KeyError> {
        let path = self.config.path(&self.config.records.key_file);
        let ring = Keyring::load(&path)?;
        if ring.current() != self.keys.load().current() || ring.ids() != self.keys.load().ids() {
            tracing::info!(current = ring.current(), "record keys reloaded");
        }
        self.keys.store(Arc::new(ring));
        Ok(())
    }

    /// Token bucket per terminal: `false` when over the configured rate.
    pub fn take_rate_token(&self, terminal: &str) -> bool {
        let rate = f64::from(self.config.listener.requests_per_second_per_terminal.max(1));
        let now = self.clock.now_ms();
        let mut buckets = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        let b = buckets.entry(terminal.to_owned()).or_insert(Bucket { tokens: rate, last_ms: now });
        b.tokens = (b.tokens + (now - b.last_ms).max(0) as f64 / 1000.0 * rate).min(rate);
        b.last_ms = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
