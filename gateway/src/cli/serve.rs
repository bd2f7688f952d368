//! `hpki-gateway serve`: start the gateway (`App::start`) and serve until
//! SIGTERM or SIGINT, then stop gracefully.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use hpki_gateway::app::{App, Shutdown};
use hpki_gateway::clock::SystemClock;
use hpki_gateway::config::Config;

/// How long requests in flight get to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(20);

pub(crate) async fn serve(config: Config) -> Result<ExitCode> {
    let running = App::start(config, Arc::new(SystemClock)).await?;
    Ok(match running.serve_until_signalled(DRAIN).await? {
        Shutdown::Drained => ExitCode::SUCCESS,
        Shutdown::CutOff => {
            tracing::warn!("requests still in flight after {DRAIN:?} were cut off");
            ExitCode::from(1)
        }
    })
}
