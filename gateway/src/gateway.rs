//! The gateway's shared state: configuration, store, clock, TLS and HPKI
//! validation (swappable on reload), metrics, the store readers the layers
//! use and the per-terminal rate limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use hpki_profile::Validator;
use ring::rand::SystemRandom;
use rustls::ServerConfig;

use crate::audit::budget::RefusalBudget;
use crate::audit::writer::AuditWriter;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::keyring::Keyring;
use crate::domain::password_pool::PasswordPool;
use crate::domain::rate_limit::RateLimiter;
use crate::signatures::Timestamper;

use crate::store::Store;
use crate::store::login_writer::LoginWriter;
use crate::store::session_reader::SessionReader;
use crate::store::snapshot::SnapshotReader;

pub struct Gateway {
    pub config: Config,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub tls: ArcSwap<ServerConfig>,
    pub validator: ArcSwap<Validator>,
    /// The TSA confirm signatures are stamped by (`[timestamps]`); none:
    /// records are CAdES B-B. Rebuilt on reload with the TSA's CRLs.
    pub timestamper: ArcSwapOption<Timestamper>,
    /// Record keys; reloaded when the key file changes (rotation).
    keys: ArcSwap<Keyring>,
    pub metrics: Arc<Metrics>,
    pub rng: SystemRandom,
    /// Group-committing audit writer for requests.
    pub audit: AuditWriter,
    /// Grouped session lookups for requests, cached per store generation.
    pub sessions: SessionReader,
    /// The store's generation and suspended terminals, read per batch.
    pub snapshots: SnapshotReader,
    pub rate_limiter: Arc<RateLimiter>,
    /// Grouped login writes: challenges, and sessions taking them.
    pub logins: LoginWriter,
    /// Earliest nextUpdate (Unix s) of the CRLs in force, for readiness.
    pub crl_next_update: AtomicI64,
    /// Each listener's audit budget for refusals (`audit::budget`).
    pub institution_refusals: Arc<RefusalBudget>,
    pub patient_refusals: Arc<RefusalBudget>,
    /// The patient listener's password checks, bounded.
    pub passwords: PasswordPool,
    /// Patient sign-ins per source address and per patient ID.
    pub patient_sources: RateLimiter,
    pub patient_ids: RateLimiter,
    /// When each terminal certificate (by serial) was last recorded.
    terminal_certs_noted: Mutex<HashMap<String, i64>>,
}

/// The terminal of a connection, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub institution: String,
    pub name: String,
    /// `institution/name`, made once per connection: every request names
    /// its terminal several times (span, rate limit, session, audit).
    key: String,
}

impl Terminal {
    pub fn new(institution: String, name: String) -> Terminal {
        let key = format!("{institution}/{name}");
        Terminal { institution, name, key }
    }

    pub fn key(&self) -> &str {
        &self.key
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

pub use crate::metrics::Metrics;

impl Gateway {
    /// A random id for one request (logs, audit, `x-request-id`).
    pub fn request_id(&self) -> String {
        let mut b = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&self.rng, &mut b);
        hex::encode(b)
    }

    pub fn new(
        config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
        tls: Arc<ServerConfig>,
        validator: Arc<Validator>,
        timestamper: Option<Arc<Timestamper>>,
        keys: Arc<Keyring>,
    ) -> Gateway {
        // The same files the TLS and HPKI configuration were just built from;
        // unreadable now means not ready.
        let next =
            crate::credentials::earliest_crl_next_update(&config).map(|n| n.unwrap_or(i64::MAX)).unwrap_or(i64::MIN);
        let metrics = Arc::new(Metrics::new());
        store.observe_writes(metrics.write_groups.clone());
        // Starts the audit writer and the session reader: call inside a Tokio runtime.
        let limits = config.patients.as_ref().map(|p| p.limits.clone()).unwrap_or_default();
        Gateway {
            institution_refusals: Arc::new(RefusalBudget::new(
                crate::audit::budget::INSTITUTION_LISTENER,
                config.listener.refusal_entries_per_second,
            )),
            patient_refusals: Arc::new(RefusalBudget::new(
                crate::audit::budget::PATIENT_PORTAL,
                limits.refusal_entries_per_second,
            )),
            passwords: PasswordPool::new(limits.password_workers, limits.password_queue),
            patient_sources: RateLimiter::per_minute(
                limits.logins_per_minute_per_source,
                limits.login_burst,
                100_000,
                clock.clone(),
                metrics.patient_logins_throttled.clone(),
            ),
            patient_ids: RateLimiter::per_minute(
                limits.logins_per_minute_per_id,
                limits.login_burst,
                100_000,
                clock.clone(),
                metrics.patient_logins_throttled.clone(),
            ),
            crl_next_update: AtomicI64::new(next),
            audit: AuditWriter::start(store.clone(), metrics.audit_batches.clone()),
            sessions: SessionReader::start(
                store.clone(),
                config.sessions.idle_timeout_seconds,
                metrics.session_batches.clone(),
            ),
            logins: LoginWriter::start(store.clone(), metrics.login_batches.clone()),
            snapshots: SnapshotReader::start(store.clone(), metrics.admission_batches.clone()),
            rate_limiter: Arc::new(RateLimiter::new(
                config.listener.requests_per_second_per_terminal,
                clock.clone(),
                metrics.rate_limited.clone(),
            )),
            config,
            store,
            clock,
            tls: ArcSwap::new(tls),
            validator: ArcSwap::new(validator),
            timestamper: ArcSwapOption::new(timestamper),
            keys: ArcSwap::new(keys),
            metrics,
            rng: SystemRandom::new(),
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
}
