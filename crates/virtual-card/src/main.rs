//! `virtual-card`: runs one emulated HPKI card against vpcd.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use virtual_card::apdu_log::ApduLog;
use virtual_card::vpcd::{self, LinkConfig, Shared};
use virtual_card::{VirtualCard, control};

/// Emulates an HPKI card (JMA or JAHIS variant) in the vpcd reader of a
/// running pcscd. The card is inserted while this runs and removed when it
/// stops. For tests and demos only: vpcd accepts cards from any host.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Card image (JSON, see docs/virtual-card.md); retry counters are
    /// written back to it.
    #[arg(long)]
    image: PathBuf,
    /// Host where vpcd (inside pcscd) listens.
    #[arg(long, default_value = "127.0.0.1")]
    vpcd_host: String,
    /// vpcd port: CHANNELID + slot of the reader (35963 = "Virtual PCD 00 00"
    /// with Debian's configuration).
    #[arg(long, default_value_t = 35963)]
    vpcd_port: u16,
    /// Unix socket for control commands (remove, insert, faults).
    #[arg(long)]
    control: Option<PathBuf>,
    /// Append one line per APDU (header, lengths, status word; never data).
    #[arg(long)]
    apdu_log: Option<PathBuf>,
    /// Start removed; `insert` on the control socket inserts the card.
    #[arg(long)]
    removed: bool,
    /// Benchmark aid: leave Nagle and delayed ACK alone and write frames in
    /// two parts, to measure the latency trap the default avoids.
    #[arg(long, hide = true)]
    naive_socket: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "virtual_card=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut card = VirtualCard::from_file(args.image.clone())?;
    let mut log = match &args.apdu_log {
        Some(p) => ApduLog::open(p).with_context(|| format!("cannot open APDU log {}", p.display()))?,
        None => ApduLog::disabled(),
    };
    let shared = Arc::new(Shared::new(!args.removed));
    if let Some(path) = &args.control {
        let listener =
            control::listen(path).with_context(|| format!("cannot listen on control socket {}", path.display()))?;
        let (shared, image) = (shared.clone(), Arc::new(args.image.clone()));
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || control::serve(listener, shared, image))
            .context("cannot start the control thread")?;
    }
    tracing::info!(
        variant = %card.image().variant,
        image = %args.image.display(),
        port = args.vpcd_port,
        "virtual card ready"
    );
    let link = LinkConfig { host: args.vpcd_host, port: args.vpcd_port, naive_socket: args.naive_socket };
    vpcd::run(&mut card, &link, &shared, &mut log);
    Ok(())
}
