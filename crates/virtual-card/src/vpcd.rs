//! The link to the vpcd reader driver inside pcscd.
//!
//! vpcd listens; the card connects. Frames both ways are a 2-byte big-endian
//! length and that many bytes. A 1-byte frame from vpcd is a control byte
//! (`00` power off, `01` power on, `02` reset, `04` get ATR — only `04` is
//! answered); anything longer is a command APDU that gets exactly one framed
//! response. The card is "inserted" while the socket is connected.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use socket2::SockRef;

use crate::apdu_log::ApduLog;
use crate::card::VirtualCard;

/// Reconnection backoff when pcscd (and so vpcd) is not there yet.
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What the control socket may change while the card runs.
#[derive(Default)]
pub struct ControlState {
    /// The card should be in the reader.
    pub inserted: bool,
    pub quit: bool,
    /// Connected to vpcd right now.
    pub connected: bool,
    /// Drop the connection instead of answering the next APDU with this INS
    /// (a card pulled out in the middle of an operation).
    pub vanish_on: Option<u8>,
    /// Answer the next APDU with this INS with these raw bytes (a
    /// misbehaving card). Empty bytes mean "no answer" (a removal to vpcd).
    pub respond_next: Vec<(u8, Vec<u8>)>,
    /// A clone of the live connection, so a control command can cut it.
    pub stream: Option<TcpStream>,
}

#[derive(Default)]
pub struct Shared {
    state: Mutex<ControlState>,
    changed: Condvar,
}

impl Shared {
    pub fn new(inserted: bool) -> Shared {
        Shared { state: Mutex::new(ControlState { inserted, ..ControlState::default() }), changed: Condvar::new() }
    }

    pub fn lock(&self) -> MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `f` to the state and wakes the link.
    pub fn update<R>(&self, f: impl FnOnce(&mut ControlState) -> R) -> R {
        let r = f(&mut self.lock());
        self.changed.notify_all();
        r
    }

    /// Cuts the live connection, if any: vpcd sees the card leave.
    pub fn disconnect(state: &mut ControlState) {
        if let Some(s) = state.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

pub struct LinkConfig {
    pub host: String,
    pub port: u16,
    /// Skip the latency fix (benchmarks only).
    pub naive_socket: bool,
}

enum Ended {
    /// vpcd closed the connection (pcscd stopped).
    ByReader,
    /// We closed it (removal, vanish, quit).
    ByCard,
}

/// Runs the card until `quit`: connects (with backoff), serves, and
/// reconnects after pcscd goes away, for as long as the card is inserted.
pub fn run(card: &mut VirtualCard, link: &LinkConfig, shared: &Shared, log: &mut ApduLog) {
    let mut backoff = BACKOFF_START;
    loop {
        {
            let mut st = shared.lock();
            while !st.quit && !st.inserted {
                st = shared.changed.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if st.quit {
                return;
            }
        }
        let stream = match TcpStream::connect((link.host.as_str(), link.port)) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, port = link.port, "vpcd not reachable; retrying");
                // Wait out the backoff, but wake at once for quit/removal.
                let st = shared.lock();
                let _ = shared.changed.wait_timeout(st, backoff).unwrap_or_else(PoisonError::into_inner);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_START;
        if link.naive_socket {
            tracing::warn!("naive socket: every APDU will wait for delayed ACKs");
        } else if let Err(e) = tune(&stream) {
            tracing::warn!(error = %e, "cannot tune the vpcd socket; latency will suffer");
        }
        let registered = shared.update(|st| {
            if st.quit || !st.inserted {
                return false;
            }
            st.stream = stream.try_clone().ok();
            st.connected = true;
            true
        });
        if !registered {
            continue;
        }
        tracing::info!(host = %link.host, port = link.port, "card inserted (connected to vpcd)");
        let ended = serve(card, stream, shared, log, !link.naive_socket);
        card.reset();
        shared.update(|st| {
            st.connected = false;
            st.stream = None;
        });
        match ended {
            Ended::ByReader => tracing::info!("vpcd closed the connection; reconnecting"),
            Ended::ByCard => tracing::info!("card removed"),
        }
    }
}

/// The latency trap: vpcd writes length and body in two `send()` calls, so
/// Nagle plus delayed ACK cost ~40 ms per APDU. No Nagle, one write per frame,
/// and quick ACKs (re-armed after every read, the kernel clears it).
fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    SockRef::from(stream).set_tcp_quickack(true)
}

fn read_frame(stream: &mut TcpStream, tuned: bool) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    if tuned {
        let _ = SockRef::from(&*stream).set_tcp_quickack(true);
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body)?;
    if tuned {
        let _ = SockRef::from(&*stream).set_tcp_quickack(true);
    }
    Ok(body)
}

fn write_frame(stream: &mut TcpStream, body: &[u8], tuned: bool) -> io::Result<()> {
    let len = u16::try_from(body.len()).map_err(|_| io::Error::other("response longer than 65535 bytes"))?;
    if !tuned {
        stream.write_all(&len.to_be_bytes())?;
        return stream.write_all(body);
    }
    let mut frame = Vec::with_capacity(2 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame)
}

fn serve(card: &mut VirtualCard, mut stream: TcpStream, shared: &Shared, log: &mut ApduLog, tuned: bool) -> Ended {
    loop {
        let frame = match read_frame(&mut stream, tuned) {
            Ok(f) => f,
            Err(_) => {
                let st = shared.lock();
                return if st.quit || !st.inserted || st.stream.is_none() { Ended::ByCard } else { Ended::ByReader };
            }
        };
        let reply = match frame.as_slice() {
            [0x00] | [0x01] | [0x02] => {
                card.reset();
                continue;
            }
            [0x04] => card.atr(),
            [_] => continue,
            apdu => {
                let ins = apdu.get(1).copied().unwrap_or_default();
                let fault = shared.update(|st| {
                    if st.vanish_on == Some(ins) {
                        st.vanish_on = None;
                        st.inserted = false;
                        st.stream = None;
                        return Some(None);
                    }
                    let pos = st.respond_next.iter().position(|(i, _)| *i == ins)?;
                    Some(Some(st.respond_next.remove(pos).1))
                });
                match fault {
                    Some(None) => {
                        tracing::info!(ins = format_args!("{ins:02X}"), "card pulled out during a command");
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                        return Ended::ByCard;
                    }
                    Some(Some(raw)) => {
                        log.record(apdu, &raw);
                        raw
                    }
                    None => {
                        let reply = card.process(apdu);
                        log.record(apdu, &reply);
                        reply
                    }
                }
            }
        };
        if write_frame(&mut stream, &reply, tuned).is_err() {
            return Ended::ByReader;
        }
    }
}
