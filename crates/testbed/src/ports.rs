//! Free TCP ports for vpcd, which listens on every interface.

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

/// A port `p` with `p..p + count` all free on 0.0.0.0, below the kernel's
/// ephemeral range so outgoing connections do not take it meanwhile.
pub fn free_port_block(count: u16) -> anyhow::Result<u16> {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for attempt in 0..200u32 {
        let base = 20_000 + ((seed.wrapping_add(attempt.wrapping_mul(7_919))) % 10_000) as u16;
        let held: Vec<_> = (0..count).map_while(|i| TcpListener::bind(("0.0.0.0", base + i)).ok()).collect();
        if held.len() == usize::from(count) {
            return Ok(base);
        }
    }
    anyhow::bail!("no block of {count} free ports found in 20000..30000")
}

/// Whether something listens on `port` (read from /proc, without connecting:
/// a connection to vpcd would be a card insertion).
pub fn is_listening(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).ends_with(&needle) && cols[3] == "0A"
            })
        })
    })
}
