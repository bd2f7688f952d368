//! `hpki-gateway serve`: the listeners, the writer tasks and the background
//! work of a running gateway.

use anyhow::{Context, Result};
use hpki_gateway::clock::{Clock, SystemClock};
use hpki_gateway::config::Config;
use hpki_gateway::gateway::Gateway;
use hpki_gateway::store::Store;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn serve(config: Config) -> Result<ExitCode> {
    let store = Store::open(&config.store_config()).await.context("opening the store")?;
    let recovered = hpki_gateway::audit::recovery::audit_unanswered_records(&store, SystemClock.now_ms())
        .await
        .context("auditing records committed before a crash")?;
    if !recovered.is_empty() {
        tracing::warn!(records = recovered.len(), "audited records whose answer was lost in a crash");
    }
    let tls = hpki_gateway::http::tls::server_config(&config)?;
    let validator = hpki_gateway::http::tls::validator(&config)?;
    let patient_tls = hpki_gateway::http::tls::patient_server_config(&config)?;
    let institutions = tokio::net::TcpListener::bind(config.listener.address)
        .await
        .with_context(|| format!("cannot listen on {}", config.listener.address))?;
    let ops = tokio::net::TcpListener::bind(config.ops.address)
        .await
        .with_context(|| format!("cannot listen on {}", config.ops.address))?;
    tracing::info!(address = %institutions.local_addr()?, ops = %ops.local_addr()?, gateway_id = %config.gateway_id, store = ?store.backend(), "gateway listening");
    let keys = hpki_gateway::domain::keyring::open_or_create(
        &config.path(&config.records.key_file),
        &store,
        SystemClock.now(),
    )
    .await?;
    let gw = Arc::new(Gateway::new(config, store, Arc::new(SystemClock), tls, validator, Arc::new(keys)));
    tokio::spawn(hpki_gateway::http::ops::serve_ops(gw.clone(), ops));
    tokio::spawn(hpki_gateway::http::reload::watch_reloads(gw.clone(), Duration::from_secs(2)));
    tokio::spawn(hpki_gateway::http::reload::housekeeping(gw.clone(), Duration::from_secs(600)));
    if let (Some(p), Some(tls)) = (&gw.config.patients, patient_tls) {
        let listener = tokio::net::TcpListener::bind(p.address)
            .await
            .with_context(|| format!("cannot listen on {}", p.address))?;
        tracing::info!(address = %listener.local_addr()?, "patient listener");
        tokio::spawn(hpki_gateway::routes::patient_portal::serve_patients(gw.clone(), listener, tls));
    }
    tokio::select! {
        _ = hpki_gateway::http::institution::serve_institutions(gw.clone(), institutions) => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
    }
    Ok(ExitCode::SUCCESS)
}
