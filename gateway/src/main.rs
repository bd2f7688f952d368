//! `hpki-gateway`: serve, migrate, administer, audit, back up, report.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, run};

/// mimalloc instead of glibc's malloc: a request allocates a few dozen small
/// objects across threads, where glibc's arenas cost about a fifth of the
/// gateway's CPU (profile in issue 17's note).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hpki-gateway: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hpki-gateway: {e:#}");
            ExitCode::from(2)
        }
    }
}
