//! A gateway's life: [`App::start`] is everything `hpki-gateway serve` does
//! before answering — store and schema, crash recovery, credentials, record
//! keys, the listeners, the reload watcher and housekeeping — and the tests
//! start the gateway through it too, so they run the real start-up.
//! [`Running::shutdown`] stops it gracefully: no new connections, requests in
//! flight answered (their audit entries are durable before their answers, so
//! nothing answered is unlogged), idle keep-alive connections closed, all
//! within a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::shutdown::Stop;
use tokio::task::JoinSet;

use crate::audit::checkpoint::CheckpointKey;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::LoadError;
use crate::domain::keyring::KeyError;
use crate::gateway::Gateway;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    #[error("auditing changes committed before a crash (the audit outbox): {0}")]
    Recovery(StoreError),
    #[error(transparent)]
    Credentials(#[from] LoadError),
    #[error("record keys: {0}")]
    Keys(#[from] KeyError),
    #[error("audit checkpoints: {0}")]
    Checkpoint(#[from] crate::audit::checkpoint::CheckpointError),
    #[error("cannot listen on {address} ({what}): {source}")]
    Bind { what: &'static str, address: SocketAddr, source: std::io::Error },
}

pub struct App;

/// A started gateway: where it listens, and how to stop it.
pub struct Running {
    pub gw: Arc<Gateway>,
    pub institution_address: SocketAddr,
    pub ops_address: SocketAddr,
    pub patient_address: Option<SocketAddr>,
    /// Changes found committed without their audit entry (a crash between
    /// the change's commit and the entry's), now audited from the outbox.
    pub recovered: usize,
    stop: watch::Sender<bool>,
    /// The listeners: each ends after its connections have drained.
    listeners: JoinSet<()>,
    /// Reload watcher, housekeeping, checkpoints: nothing to drain, stopped
    /// at once.
    background: JoinSet<()>,
    checkpoints: Arc<Checkpoints>,
}

/// Where and how the audit head is checkpointed, and how far it is.
struct Checkpoints {
    key: CheckpointKey,
    file: std::path::PathBuf,
    origin: String,
    last: tokio::sync::Mutex<i64>,
}

impl Checkpoints {
    /// Checkpoints the head if it moved; failures are logged (the log
    /// itself is intact; the next checkpoint covers this one's entries).
    async fn write(&self, gw: &Gateway) {
        let mut last = self.last.lock().await;
        match crate::audit::checkpoint::write_head(
            &gw.store,
            &self.key,
            &self.origin,
            &self.file,
            *last,
            gw.clock.now_ms(),
        )
        .await
        {
            Ok(seq) => *last = seq,
            Err(e) => tracing::error!(error = %e, "cannot write an audit checkpoint"),
        }
    }
}

async fn bind(what: &'static str, address: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(address).await.map_err(|source| StartError::Bind { what, address, source })
}

fn local(what: &'static str, l: &TcpListener, address: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr().map_err(|source| StartError::Bind { what, address, source })
}

impl App {
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
        let store = Store::open(&config.store_config()).await?;
        // Changes committed before a crash whose entries were not (LOG-1).
        let recovered = crate::audit::outbox::drain(&store, clock.now_ms()).await.map_err(StartError::Recovery)?;
        if !recovered.is_empty() {
            tracing::warn!(changes = recovered.len(), "audited changes whose entry was lost in a crash");
        }
        let tls = crate::credentials::server_config(&config)?;
        let validator = crate::credentials::validator(&config)?;
        let timestamper = crate::credentials::timestamper(&config)?;
        if timestamper.is_none() {
            tracing::warn!("no [timestamps]: records are signed without a time-stamp (CAdES B-B); DATA-4 needs a TSA");
        }
        let patient_tls = crate::credentials::patient_server_config(&config)?;
        let institutions = bind("institution listener", config.listener.address).await?;
        let ops = bind("ops listener", config.ops.address).await?;
        let patients = match (&config.patients, patient_tls) {
            (Some(p), Some(tls)) => Some((bind("patient listener", p.address).await?, tls)),
            _ => None,
        };
        let keys =
            crate::domain::keyring::open_or_create(&config.path(&config.records.key_file), &store, clock.now()).await?;
        let institution_address = local("institution listener", &institutions, config.listener.address)?;
        let ops_address = local("ops listener", &ops, config.ops.address)?;
        let patient_address = match (&patients, &config.patients) {
            (Some((l, _)), Some(p)) => Some(local("patient listener", l, p.address)?),
            _ => None,
        };
        tracing::info!(address = %institution_address, ops = %ops_address, patients = ?patient_address, gateway_id = %config.gateway_id, store = ?store.backend(), "gateway listening");
        let checkpoints = Arc::new(Checkpoints {
            key: CheckpointKey::open_or_create(&config.path(&config.audit.checkpoint_key))?,
            file: config.path(&config.audit.checkpoints),
            origin: format!("{}/audit", config.gateway_id),
            last: tokio::sync::Mutex::new(0),
        });
        let every = Duration::from_secs(config.audit.checkpoint_every_seconds.unsigned_abs());
        let gw = Arc::new(Gateway::new(config, store, clock, tls, validator, timestamper, Arc::new(keys)));
        // The head as found at start (recovered entries included).
        checkpoints.write(&gw).await;

        let (stop, signal) = Stop::new();
        let mut listeners = JoinSet::new();
        listeners.spawn(crate::http::institution::serve_institutions(gw.clone(), institutions, signal.clone()));
        listeners.spawn(crate::http::ops::serve_ops(gw.clone(), ops, signal.clone()));
        if let Some((l, tls)) = patients {
            listeners.spawn(crate::http::patients::serve_patients(gw.clone(), l, tls, signal.clone()));
        }
        let mut background = JoinSet::new();
        background.spawn(crate::http::reload::watch_reloads(gw.clone(), Duration::from_secs(2)));
        background.spawn(crate::http::reload::housekeeping(gw.clone(), Duration::from_secs(600)));
        let g = gw.clone();
        background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                crate::ops::break_glass::sweep(&g).await;
            }
        });
        let g = gw.clone();
        background.spawn(async move {
            // The refusals each listener counted past its audit budget, as
            // one entry per kind and second (`audit::budget`).
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                crate::routes::write_coalesced(&g, &g.institution_refusals, false).await;
                crate::routes::write_coalesced(&g, &g.patient_refusals, false).await;
            }
        });
        let (c, g) = (checkpoints.clone(), gw.clone());
        background.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                c.write(&g).await;
            }
        });
        Ok(Running {
            gw,
            institution_address,
            ops_address,
            patient_address,
            recovered: recovered.len(),
            stop,
            listeners,
            background,
            checkpoints,
        })
    }
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Every request in flight was answered.
    Drained,
    /// The deadline passed first; what was left was cut off.
    CutOff,
}

impl Running {
    /// Checkpoints the audit head now (as the timer does).
    pub async fn checkpoint(&self) {
        self.checkpoints.write(&self.gw).await;
    }

    /// Stops gracefully within `deadline`.
    pub async fn shutdown(mut self, deadline: Duration) -> Shutdown {
        let _ = self.stop.send(true);
        self.background.abort_all();
        let drained =
            tokio::time::timeout(deadline, async { while self.listeners.join_next().await.is_some() {} }).await.is_ok();
        if !drained {
            self.listeners.abort_all();
        }
        // The refusals still counted, then the last entries answered,
        // checkpointed before the process ends.
        crate::routes::write_coalesced(&self.gw, &self.gw.institution_refusals, true).await;
        crate::routes::write_coalesced(&self.gw, &self.gw.patient_refusals, true).await;
        self.checkpoints.write(&self.gw).await;
        if drained { Shutdown::Drained } else { Shutdown::CutOff }
    }

    /// Serves until SIGTERM or SIGINT, then shuts down within `deadline`.
    pub async fn serve_until_signalled(self, deadline: Duration) -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        let how = self.shutdown(deadline).await;
        tracing::info!(?how, "stopped");
        Ok(how)
    }

    /// Stops at once, without draining (a test's end).
    pub fn abort(&mut self) {
        let _ = self.stop.send(true);
        self.listeners.abort_all();
        self.background.abort_all();
    }
}
